//! The typed description of a quantization format: value type × mapping × granularity ×
//! range rule (+ bitsandbytes' double quantization). One `QuantScheme` value names any format
//! the lab supports; the CLI, the wasm bindings and the UI all parse and print the same names.
//!
//! Canonical names (parsed case-insensitively by [`QuantScheme::parse`]):
//!
//! | name                     | meaning                                                        |
//! |--------------------------|----------------------------------------------------------------|
//! | `int8-sym-channel`       | INT8, symmetric, one scale per output channel (row)            |
//! | `int4-asym-g128`         | INT4, scale + zero point per group of 128 inputs along a row   |
//! | `int4-sym-tensor-mse`    | one scale for the whole tensor, clip range by MSE search       |
//! | `int3-asym-g64-p99.9`    | clip range at the 99.9th percentile of |x| (or of x for asym)  |
//! | `nf4`, `nf4-b64-dq`      | bitsandbytes NF4, blocks of 64, optional double quantization   |
//! | `fp4-b128`               | bitsandbytes FP4, blocks of 128                                |
//! | `fp8-e4m3`, `fp8-e5m2-channel` | FP8 codes with an f32 scale per tensor or per channel    |
//! | `q8_0`, `q4_k`, …        | a ggml block type, layout fixed by ggml                        |

use serde::{Deserialize, Serialize};

use crate::formats::GgmlType;

/// What one stored code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
pub enum ValueType {
    /// Integer codes of `bits` bits (2..=8): signed for symmetric, unsigned for asymmetric.
    Int { bits: u8 },
    /// bitsandbytes' 4-bit NormalFloat codebook (16 quantiles of N(0,1), normalised to [-1, 1]).
    Nf4,
    /// bitsandbytes' 4-bit float codebook (sign + 2-bit exponent + 1-bit mantissa, bnb's table).
    Fp4,
    /// OCP FP8 E4M3: finite max 448, no infinities, saturating conversion.
    Fp8E4M3,
    /// FP8 E5M2: max 57344, IEEE-like.
    Fp8E5M2,
    /// A ggml block type; its mapping and block size are fixed by ggml.
    Ggml { ty: GgmlType },
}

/// How codes map back to real values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
pub enum Mapping {
    /// x ≈ s · q, zero maps exactly to code 0.
    Symmetric,
    /// x ≈ s · (q − z) (or d · q + m for ggml's `_1`/K types): a scale and an offset per group.
    Asymmetric,
    /// x ≈ absmax · codebook[q]: the levels are a fixed table (NF4, FP4) or a float format (FP8).
    Codebook,
}

/// Which weights share one scale (and zero point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "size", rename_all = "snake_case")]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
pub enum Granularity {
    /// One scale for the whole tensor.
    Tensor,
    /// One scale per output channel (per row of the `[rows, cols]` matrix).
    Channel,
    /// One scale per `n` consecutive inputs along a row (n a power of two). bitsandbytes' blocks
    /// run over the flattened tensor; for tensors whose row length is a multiple of `n` (every
    /// LLaMA projection) the two are the same.
    Group(u32),
}

/// How the clipping range of a group is chosen before rounding.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
pub enum RangeRule {
    /// The full range: absmax (symmetric) or min..max (asymmetric).
    MinMax,
    /// Clip at this percentile (in percent, e.g. 99.9) of |x| (symmetric) or of x at both
    /// ends (asymmetric).
    Percentile(f32),
    /// Shrink the range over a fixed grid of candidates and keep the one with the smallest
    /// squared rounding error on the group.
    MseSearch,
}

/// A complete, validated description of one quantization format.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
// Field names are camelCase across the wasm boundary (snake_case in the CLI's JSON).
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct QuantScheme {
    pub value: ValueType,
    pub mapping: Mapping,
    pub granularity: Granularity,
    pub range: RangeRule,
    /// bitsandbytes double quantization: the per-block absmax values, minus their mean, are
    /// stored as 8-bit codes in blocks of this size (256 in bitsandbytes). NF4/FP4 only.
    pub double_quant: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemeError {
    #[error("unknown format '{name}'. Valid formats: {valid}")]
    Unknown { name: String, valid: String },
    #[error("invalid format '{name}': {reason}")]
    Invalid { name: String, reason: String },
}

/// A summary of valid names, for error messages and `--help`. `tests/rust/registry.rs` checks it
/// names every family in [`super::registry::FORMATS`] the lab can produce.
pub const VALID_FORMATS: &str = "int{2..8}-{sym|asym}-{tensor|channel|g<N>}[-p<percentile>|-mse] \
(e.g. int8-sym-channel, int4-asym-g128), nf4[-b<N>][-dq], fp4[-b<N>][-dq], \
fp8-{e4m3|e5m2}[-tensor|-channel], and the ggml types q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k \
q5_k q6_k iq4_nl f16 bf16 f32 (llama.cpp's file types q2_k … q6_k, e.g. q4_k_m, apply its per-tensor rules)";

impl QuantScheme {
    /// Integer round-to-nearest with the full (min–max) range.
    pub fn int(bits: u8, mapping: Mapping, granularity: Granularity) -> Self {
        Self { value: ValueType::Int { bits }, mapping, granularity, range: RangeRule::MinMax, double_quant: None }
    }

    /// bitsandbytes NF4 with blocks of `block` (64 is bitsandbytes' default).
    pub fn nf4(block: u32, double_quant: bool) -> Self {
        Self::bnb(ValueType::Nf4, block, double_quant)
    }

    /// bitsandbytes FP4 with blocks of `block`.
    pub fn fp4(block: u32, double_quant: bool) -> Self {
        Self::bnb(ValueType::Fp4, block, double_quant)
    }

    fn bnb(value: ValueType, block: u32, double_quant: bool) -> Self {
        Self {
            value,
            mapping: Mapping::Codebook,
            granularity: Granularity::Group(block),
            range: RangeRule::MinMax,
            double_quant: double_quant.then_some(256),
        }
    }

    /// FP8 codes with an f32 scale per tensor or per channel.
    pub fn fp8(value: ValueType, granularity: Granularity) -> Self {
        Self { value, mapping: Mapping::Codebook, granularity, range: RangeRule::MinMax, double_quant: None }
    }

    /// A ggml block type, with the mapping and block size ggml fixes for it.
    pub fn ggml(ty: GgmlType) -> Self {
        use GgmlType::*;
        let mapping = match ty {
            Q4_1 | Q5_1 | Q2_K | Q4_K | Q5_K => Mapping::Asymmetric,
            F32 | F16 | BF16 => Mapping::Codebook,
            _ => Mapping::Symmetric,
        };
        let block = ty.block_size() as u32;
        let granularity = if block == 1 { Granularity::Tensor } else { Granularity::Group(block) };
        Self { value: ValueType::Ggml { ty }, mapping, granularity, range: RangeRule::MinMax, double_quant: None }
    }

    pub fn with_range(mut self, range: RangeRule) -> Self {
        self.range = range;
        self
    }

    /// The ggml type when this scheme is one (it can then be written to GGUF as is).
    pub fn ggml_type(&self) -> Option<GgmlType> {
        match self.value {
            ValueType::Ggml { ty } => Some(ty),
            _ => None,
        }
    }

    /// The group/block size values share a scale over, if any.
    pub fn group_size(&self) -> Option<u32> {
        match self.granularity {
            Granularity::Group(n) => Some(n),
            _ => None,
        }
    }

    /// Checks that the parts fit together; every constructor's output passes.
    pub fn validate(&self) -> Result<(), String> {
        if let Granularity::Group(n) = self.granularity {
            if n < 2 || !n.is_power_of_two() {
                return Err(format!("group size must be a power of two ≥ 2, got {n}"));
            }
        }
        if let RangeRule::Percentile(p) = self.range {
            if !(p > 50.0 && p <= 100.0) {
                return Err(format!("percentile must be in (50, 100], got {p}"));
            }
        }
        match self.value {
            ValueType::Int { bits } => {
                if !(2..=8).contains(&bits) {
                    return Err(format!("integer formats have 2 to 8 bits, got {bits}"));
                }
                if self.mapping == Mapping::Codebook {
                    return Err("integer formats are symmetric or asymmetric, not codebook".into());
                }
                if self.double_quant.is_some() {
                    return Err("double quantization applies to nf4/fp4 only".into());
                }
            }
            ValueType::Nf4 | ValueType::Fp4 => {
                let Granularity::Group(block) = self.granularity else {
                    return Err("nf4/fp4 quantize in blocks (b<N>)".into());
                };
                if !(32..=4096).contains(&block) {
                    return Err(format!("nf4/fp4 block size must be 32..4096 (bitsandbytes' range), got {block}"));
                }
                if self.mapping != Mapping::Codebook || self.range != RangeRule::MinMax {
                    return Err("nf4/fp4 use bitsandbytes' absmax codebook mapping only".into());
                }
                if let Some(dq) = self.double_quant {
                    if dq < 2 || !dq.is_power_of_two() {
                        return Err(format!("double-quant block size must be a power of two, got {dq}"));
                    }
                }
            }
            ValueType::Fp8E4M3 | ValueType::Fp8E5M2 => {
                if matches!(self.granularity, Granularity::Group(_)) {
                    return Err("fp8 scales are per tensor or per channel".into());
                }
                if self.double_quant.is_some() || self.mapping != Mapping::Codebook {
                    return Err("fp8 is a codebook (float) format with one f32 scale".into());
                }
            }
            ValueType::Ggml { ty } => {
                if *self != Self::ggml(ty) {
                    return Err(format!("{} has a fixed layout; it takes no options", ty.name().to_lowercase()));
                }
            }
        }
        Ok(())
    }

    /// The canonical name, which [`QuantScheme::parse`] reads back to an equal scheme.
    pub fn name(&self) -> String {
        let range = match self.range {
            RangeRule::MinMax => String::new(),
            RangeRule::Percentile(p) => format!("-p{p}"),
            RangeRule::MseSearch => "-mse".into(),
        };
        let granularity = match self.granularity {
            Granularity::Tensor => "tensor".to_string(),
            Granularity::Channel => "channel".to_string(),
            Granularity::Group(n) => format!("g{n}"),
        };
        match self.value {
            ValueType::Int { bits } => {
                let m = if self.mapping == Mapping::Symmetric { "sym" } else { "asym" };
                format!("int{bits}-{m}-{granularity}{range}")
            }
            ValueType::Nf4 | ValueType::Fp4 => {
                let base = if self.value == ValueType::Nf4 { "nf4" } else { "fp4" };
                let block = self.group_size().unwrap_or(64);
                let dq = match self.double_quant {
                    None => String::new(),
                    Some(256) => "-dq".into(),
                    Some(n) => format!("-dq{n}"),
                };
                format!("{base}-b{block}{dq}")
            }
            ValueType::Fp8E4M3 | ValueType::Fp8E5M2 => {
                let base = if self.value == ValueType::Fp8E4M3 { "fp8-e4m3" } else { "fp8-e5m2" };
                format!("{base}-{granularity}")
            }
            ValueType::Ggml { ty } => ty.name().to_lowercase(),
        }
    }

    /// Parses a format name (see the module docs); errors list the valid names.
    pub fn parse(name: &str) -> Result<Self, SchemeError> {
        let lower = name.trim().to_ascii_lowercase();
        let unknown = || SchemeError::Unknown { name: name.to_string(), valid: VALID_FORMATS.to_string() };
        let invalid = |reason: String| SchemeError::Invalid { name: name.to_string(), reason };
        let scheme = if let Some(ty) = GgmlType::from_name(&lower) {
            if !super::can_quantize(ty) {
                return Err(invalid(format!("{} can be read but not produced; {VALID_FORMATS}", ty.name())));
            }
            Self::ggml(ty)
        } else {
            let parts: Vec<&str> = lower.split('-').collect();
            match parts.as_slice() {
                [head, rest @ ..] if head.starts_with("int") => {
                    let bits: u8 = head[3..].parse().map_err(|_| unknown())?;
                    let [mapping, granularity, tail @ ..] = rest else {
                        return Err(invalid(
                            "integer formats need a mapping and a granularity, e.g. int4-asym-g128".into(),
                        ));
                    };
                    let mapping = match *mapping {
                        "sym" => Mapping::Symmetric,
                        "asym" => Mapping::Asymmetric,
                        other => return Err(invalid(format!("mapping '{other}' is not sym or asym"))),
                    };
                    let granularity = parse_granularity(granularity).ok_or_else(|| {
                        invalid(format!("granularity '{granularity}' is not tensor, channel or g<N>"))
                    })?;
                    let range = match tail {
                        [] => RangeRule::MinMax,
                        ["mse"] => RangeRule::MseSearch,
                        [p] if p.starts_with('p') => {
                            RangeRule::Percentile(p[1..].parse().map_err(|_| invalid(format!("bad percentile '{p}'")))?)
                        }
                        _ => return Err(invalid(format!("unexpected suffix '{}'", tail.join("-")))),
                    };
                    Self::int(bits, mapping, granularity).with_range(range)
                }
                [base @ ("nf4" | "fp4"), rest @ ..] => {
                    let mut block = 64;
                    let mut dq = None;
                    for part in rest {
                        if let Some(n) = part.strip_prefix("dq") {
                            dq = Some(if n.is_empty() { 256 } else { n.parse().map_err(|_| unknown())? });
                        } else if let Some(n) = part.strip_prefix('b') {
                            block = n.parse().map_err(|_| invalid(format!("bad block size '{part}'")))?;
                        } else {
                            return Err(invalid(format!("unexpected part '{part}' (use b<N> and/or dq)")));
                        }
                    }
                    let value = if *base == "nf4" { ValueType::Nf4 } else { ValueType::Fp4 };
                    Self { double_quant: dq, ..Self::bnb(value, block, false) }
                }
                ["fp8", kind, rest @ ..] => {
                    let value = match *kind {
                        "e4m3" => ValueType::Fp8E4M3,
                        "e5m2" => ValueType::Fp8E5M2,
                        other => return Err(invalid(format!("fp8 kind '{other}' is not e4m3 or e5m2"))),
                    };
                    let granularity = match rest {
                        [] => Granularity::Tensor,
                        [g] => parse_granularity(g).ok_or_else(|| invalid(format!("bad granularity '{g}'")))?,
                        _ => return Err(unknown()),
                    };
                    Self::fp8(value, granularity)
                }
                _ => return Err(unknown()),
            }
        };
        scheme.validate().map_err(invalid)?;
        Ok(scheme)
    }
}

fn parse_granularity(s: &str) -> Option<Granularity> {
    match s {
        "tensor" => Some(Granularity::Tensor),
        "channel" => Some(Granularity::Channel),
        _ => s.strip_prefix('g')?.parse().ok().map(Granularity::Group),
    }
}

impl std::fmt::Display for QuantScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::str::FromStr for QuantScheme {
    type Err = SchemeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "int8-sym-channel",
            "int4-asym-g128",
            "int4-sym-tensor-mse",
            "int3-asym-g64-p99.9",
            "int2-sym-g32",
            "nf4-b64",
            "nf4-b64-dq",
            "fp4-b128",
            "nf4-b4096-dq",
            "fp8-e4m3-tensor",
            "fp8-e5m2-channel",
            "q8_0",
            "q4_k",
            "q6_k",
            "f16",
        ] {
            let scheme = QuantScheme::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(scheme.name(), name);
            assert_eq!(QuantScheme::parse(&scheme.name()).unwrap(), scheme);
        }
    }

    #[test]
    fn short_names_get_defaults() {
        assert_eq!(QuantScheme::parse("NF4").unwrap(), QuantScheme::nf4(64, false));
        assert_eq!(QuantScheme::parse("nf4-dq").unwrap().double_quant, Some(256));
        assert_eq!(QuantScheme::parse("fp8-e4m3").unwrap().granularity, Granularity::Tensor);
        assert_eq!(QuantScheme::parse("Q4_K").unwrap().granularity, Granularity::Group(256));
        assert_eq!(QuantScheme::parse("q4_1").unwrap().mapping, Mapping::Asymmetric);
    }

    #[test]
    fn bad_names_explain_themselves() {
        let e = QuantScheme::parse("int4").unwrap_err().to_string();
        assert!(e.contains("mapping and a granularity"), "{e}");
        let e = QuantScheme::parse("int9-sym-g32").unwrap_err().to_string();
        assert!(e.contains("2 to 8 bits"), "{e}");
        let e = QuantScheme::parse("int4-sym-g100").unwrap_err().to_string();
        assert!(e.contains("power of two"), "{e}");
        let e = QuantScheme::parse("nf4-b16").unwrap_err().to_string();
        assert!(e.contains("32..4096"), "{e}");
        let e = QuantScheme::parse("awq").unwrap_err().to_string();
        assert!(e.contains("Valid formats") && e.contains("int8-sym-channel") && e.contains("q4_k"), "{e}");
        let e = QuantScheme::parse("iq2_xxs").unwrap_err().to_string();
        assert!(e.contains("not produced"), "{e}");
        assert!(QuantScheme::parse("fp8-e4m3-g32").is_err());
    }

    #[test]
    fn schemes_serialise() {
        let json = serde_json::to_string(&QuantScheme::parse("int4-asym-g128").unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"value":{"kind":"int","bits":4},"mapping":"asymmetric","granularity":{"kind":"group","size":128},"range":{"kind":"min_max"},"double_quant":null}"#
        );
        let back: QuantScheme = serde_json::from_str(&json).unwrap();
        assert_eq!(back.name(), "int4-asym-g128");
    }
}
