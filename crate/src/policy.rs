//! The tensor policy: which tensors a quantization run quantizes, and with which scheme when the
//! requested one cannot split a tensor's rows. One implementation, shared by the file export
//! ([`crate::io::export`]: `quantlab quantize` and the web lab) and the in-memory
//! [`crate::model::quantize_model`]. It uses only [`crate::formats`], so `io` and `model` can both
//! use it without depending on each other.
//!
//! # Which tensors
//!
//! A tensor is quantized when it has 2 or more dimensions, its stored type can be decoded, and
//! (unless [`TensorPolicy::all_tensors`]) its name ends in `weight` and does not contain `norm`,
//! `ffn_gate_inp`, `pos_embd`, `position_embd` or `token_types` ([`name_is_quantizable`]).
//! `token_embd.weight` and `output.weight` are quantized like every other weight. 1-D tensors
//! are copied. A tensor already in the (actual) target ggml type is copied unchanged.
//!
//! # Rows the requested scheme cannot split (fallbacks)
//!
//! Values are never truncated or padded. When the row length (ggml's `ne[0]`) is not a multiple
//! of the scheme's block or group:
//!
//! - **K-quants** (256-value super-blocks) fall back like llama.cpp's `tensor_type_fallback`
//!   (`src/llama-quant.cpp`): Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, and Q2_K / Q3_K → Q4_0.
//!   As in llama.cpp, if the fallback's 32-value block does not divide the row either, the
//!   tensor becomes F16.
//! - **int `gN`, nf4/fp4 `bN`** fall back to the largest power-of-two group `g < N` with
//!   `g ≥ 32` that divides the row (e.g. `int4-asym-g128` on a 576-wide row → `int4-asym-g64`):
//!   the same value type and mapping, slightly more scale overhead, every row whole groups (so
//!   each row decodes on its own). With no such group the tensor is treated like the next case.
//! - **anything else** (q4_0 … q8_0 on a row not a multiple of 32, or no group found above):
//!   the tensor is kept as it is when stored as F32/F16/BF16, otherwise stored as F16 (again
//!   llama.cpp's last resort).
//!
//! Every fallback comes with a note naming the tensor, the row length, the requested and the
//! actual scheme, and why.
//!
//! # llama.cpp's file types
//!
//! With [`TypeMix::LlamaCpp`], [`TensorPolicy::decide_in`] gives each selected tensor the type
//! `llama-quantize` gives it under that file type ([`presets`](crate::formats::ggml::presets): the output, `attn_v`,
//! `ffn_down` … rules and the same row fallbacks), with a note for each tensor whose type
//! differs from the file type's default. [`TypeMix::Pure`] is one type everywhere (llama-quantize's
//! `--pure`), with the fallbacks above.
//!
//! # Per-tensor schemes (recipes)
//!
//! [`TensorPolicy::per_tensor`] names tensors whose scheme replaces the run's (a recipe's
//! entries, [`crate::recipe`]): such a tensor is decided as under [`TypeMix::Pure`] with its own
//! scheme, so the row fallbacks above still apply and are reported; the other tensors are
//! decided as without it.

use crate::formats::ggml::presets::{self, LlamaFileType, ModelShape};

use std::collections::BTreeMap;

use crate::formats::{GgmlType, Granularity, QuantScheme, SchemeError, ValueType};

/// How the selected tensors' types are chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TypeMix {
    /// The requested scheme for every tensor (row fallbacks aside): llama-quantize's `--pure`.
    #[default]
    Pure,
    /// llama.cpp's per-tensor rules of this file type.
    LlamaCpp(LlamaFileType),
}

/// What a run is asked for, as the CLI and the lab name it: a scheme, and llama.cpp's per-tensor
/// rules when the name is one of llama-quantize's file types (`q4_k_m`, and the plain ggml type
/// names `q4_0` … `q6_k`, `iq4_nl`, `f16`, which llama-quantize also takes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The requested scheme (a file type's default type).
    pub scheme: QuantScheme,
    pub mix: TypeMix,
}

impl Target {
    /// A file type's name gives its default type with [`TypeMix::LlamaCpp`]; any other scheme
    /// name gives that scheme, [`TypeMix::Pure`].
    pub fn parse(name: &str) -> Result<Target, SchemeError> {
        match LlamaFileType::parse(name) {
            Some(ft) => Ok(Target { scheme: QuantScheme::ggml(ft.default_type()), mix: TypeMix::LlamaCpp(ft) }),
            None => Ok(Target { scheme: QuantScheme::parse(name)?, mix: TypeMix::Pure }),
        }
    }

    /// The same scheme on every tensor (llama-quantize's `--pure`).
    pub fn pure(self) -> Target {
        Target { mix: TypeMix::Pure, ..self }
    }

    /// The name reports show: the file type's (`q4_k_m`) or the scheme's.
    pub fn name(&self) -> String {
        match self.mix {
            TypeMix::LlamaCpp(ft) => ft.name().to_string(),
            TypeMix::Pure => self.scheme.name(),
        }
    }
}

/// The policy's options.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TensorPolicy<'a> {
    /// Quantize every tensor with 2 or more dimensions, whatever its name (1-D ones are still
    /// copied).
    pub all_tensors: bool,
    pub mix: TypeMix,
    /// Schemes that replace the run's for the tensors they name (see the module docs).
    pub per_tensor: Option<&'a TensorSchemes>,
}

/// Schemes by exact tensor name (GGUF names, e.g. `blk.0.ffn_down.weight`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorSchemes {
    by_name: BTreeMap<String, QuantScheme>,
}

impl TensorSchemes {
    /// One scheme per name; a later pair for the same name replaces the earlier one (a recipe
    /// refuses duplicates before it gets here).
    pub fn new(pairs: impl IntoIterator<Item = (String, QuantScheme)>) -> TensorSchemes {
        TensorSchemes { by_name: pairs.into_iter().collect() }
    }

    pub fn get(&self, name: &str) -> Option<&QuantScheme> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &QuantScheme)> {
        self.by_name.iter().map(|(n, s)| (n.as_str(), s))
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// A tensor as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct TensorFacts<'a> {
    pub name: &'a str,
    pub n_dims: usize,
    /// Values per row (ggml's `ne[0]`, PyTorch's last dimension).
    pub row_len: u64,
    /// The stored type can be decoded to f32.
    pub decodable: bool,
    /// Stored as F32, F16 or BF16 (kept as it is when no scheme fits).
    pub plain_float: bool,
    /// The stored ggml type, if the tensor is stored in one.
    pub stored: Option<GgmlType>,
}

/// What happens to one tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Quantize with this scheme (the requested one, or its fallback).
    Quantize(QuantScheme),
    /// Keep the stored bytes unchanged.
    Copy,
    /// Convert to F16 (nothing fits and the stored type is not a plain float).
    ToF16,
}

/// The policy's decision for one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub action: Action,
    /// Why the tensor does not get the requested scheme (fallback, kept, F16), when it doesn't.
    pub note: Option<String>,
}

/// Whether the default policy quantizes a tensor with this name.
pub fn name_is_quantizable(name: &str) -> bool {
    name.ends_with("weight")
        && !["norm", "ffn_gate_inp", "pos_embd", "position_embd", "token_types"].iter().any(|s| name.contains(s))
}

/// The block (or group) size rows must be a multiple of for `scheme` (1 when rows are free).
pub fn block_of(scheme: &QuantScheme) -> u64 {
    match scheme.value {
        ValueType::Ggml { ty } => ty.block_size() as u64,
        ValueType::Fp8E4M3 | ValueType::Fp8E5M2 => 1,
        _ => scheme.group_size().unwrap_or(1) as u64,
    }
}

/// llama.cpp's fallback for a K-quant whose rows are not whole 256-value super-blocks, and a
/// note on the substitution when it differs from llama.cpp's.
pub fn k_quant_fallback(ty: GgmlType) -> Option<(GgmlType, &'static str)> {
    match ty {
        GgmlType::Q2_K | GgmlType::Q3_K => Some((GgmlType::Q4_0, "llama.cpp's fallback")),
        GgmlType::Q4_K => Some((GgmlType::Q5_0, "llama.cpp's fallback")),
        GgmlType::Q5_K => Some((GgmlType::Q5_1, "llama.cpp's fallback")),
        GgmlType::Q6_K => Some((GgmlType::Q8_0, "llama.cpp's fallback")),
        _ => None,
    }
}

/// The scheme `scheme` becomes for rows of `row_len` values: `Some((scheme, None))` when it fits,
/// `Some((fallback, Some(why)))` for a fallback, `None` when nothing of the family fits.
pub fn fit(scheme: &QuantScheme, row_len: u64) -> Option<(QuantScheme, Option<String>)> {
    let block = block_of(scheme);
    if row_len.is_multiple_of(block) {
        return Some((*scheme, None));
    }
    match scheme.value {
        ValueType::Ggml { ty } => {
            let (fb, why) = k_quant_fallback(ty)?;
            if !row_len.is_multiple_of(fb.block_size() as u64) {
                return None;
            }
            Some((QuantScheme::ggml(fb), Some(why.to_string())))
        }
        ValueType::Int { .. } | ValueType::Nf4 | ValueType::Fp4 => {
            let mut g = block / 2;
            while g >= 32 {
                if row_len.is_multiple_of(g) {
                    let s = QuantScheme { granularity: Granularity::Group(g as u32), ..*scheme };
                    return Some((s, Some(format!("the largest power-of-two group ≥ 32 dividing the row is {g}"))));
                }
                g /= 2;
            }
            None
        }
        _ => None,
    }
}

impl TensorPolicy<'_> {
    /// The scheme asked for tensor `name` when the run asks for `scheme`: its own entry in
    /// [`Self::per_tensor`], else `scheme`.
    pub fn scheme_for(&self, name: &str, scheme: &QuantScheme) -> QuantScheme {
        self.per_tensor.and_then(|p| p.get(name)).copied().unwrap_or(*scheme)
    }

    /// Whether the policy quantizes `t` at all (before any scheme is considered).
    pub fn selects(&self, t: &TensorFacts) -> bool {
        t.n_dims >= 2 && t.decodable && (self.all_tensors || name_is_quantizable(t.name))
    }

    /// Decides what happens to tensor `t` of a model shaped `model`: under
    /// [`TypeMix::LlamaCpp`], llama.cpp's type for it; otherwise (or with no model shape, e.g.
    /// a safetensors checkpoint whose names the rules do not know) [`Self::decide`].
    pub fn decide_in(&self, t: &TensorFacts, scheme: &QuantScheme, model: Option<&ModelShape>) -> Decision {
        let own_scheme = self.per_tensor.is_some_and(|p| p.get(t.name).is_some());
        let (TypeMix::LlamaCpp(ft), Some(model), false) = (self.mix, model, own_scheme) else {
            return self.decide(t, scheme);
        };
        if !self.selects(t) {
            return Decision { action: Action::Copy, note: None };
        }
        let choice = presets::tensor_type_by_name(ft, t.name, model, t.row_len);
        let note = choice
            .reason
            .map(|why| format!("{}: {} instead of {} ({why})", t.name, choice.ty.name(), ft.default_type().name()));
        if Some(choice.ty) == t.stored {
            return Decision { action: Action::Copy, note };
        }
        Decision { action: Action::Quantize(QuantScheme::ggml(choice.ty)), note }
    }

    /// Decides what happens to tensor `t` when the run asks for `scheme` (one type for every
    /// tensor, row fallbacks aside; a tensor of [`Self::per_tensor`] gets its own scheme).
    pub fn decide(&self, t: &TensorFacts, scheme: &QuantScheme) -> Decision {
        if !self.selects(t) {
            return Decision { action: Action::Copy, note: None };
        }
        let scheme = &self.scheme_for(t.name, scheme);
        let block = block_of(scheme);
        let (actual, note) = match fit(scheme, t.row_len) {
            Some((s, None)) => (s, None),
            Some((s, Some(why))) => {
                let note = format!(
                    "{}: row length {} is not a multiple of the {block}-value block of {}; using {} ({why})",
                    t.name,
                    t.row_len,
                    scheme.name(),
                    s.name()
                );
                (s, Some(note))
            }
            None => {
                let kept = if t.plain_float { "kept as it is" } else { "stored as F16" };
                let note = format!(
                    "{}: row length {} is not a multiple of the {block}-value block of {}; {kept}",
                    t.name,
                    t.row_len,
                    scheme.name()
                );
                let action = if t.plain_float { Action::Copy } else { Action::ToF16 };
                return Decision { action, note: Some(note) };
            }
        };
        if actual.ggml_type().is_some() && actual.ggml_type() == t.stored {
            return Decision { action: Action::Copy, note };
        }
        Decision { action: Action::Quantize(actual), note }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str, row_len: u64, stored: GgmlType) -> TensorFacts<'_> {
        TensorFacts {
            name,
            n_dims: 2,
            row_len,
            decodable: true,
            plain_float: matches!(stored, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16),
            stored: Some(stored),
        }
    }

    #[test]
    fn k_quant_fallbacks_follow_llama_cpp() {
        let p = TensorPolicy::default();
        let t = facts("blk.0.attn_q.weight", 576, GgmlType::Q4_1);
        for (k, fb) in [
            (GgmlType::Q2_K, GgmlType::Q4_0),
            (GgmlType::Q3_K, GgmlType::Q4_0),
            (GgmlType::Q4_K, GgmlType::Q5_0),
            (GgmlType::Q5_K, GgmlType::Q5_1),
            (GgmlType::Q6_K, GgmlType::Q8_0),
        ] {
            let d = p.decide(&t, &QuantScheme::ggml(k));
            assert_eq!(d.action, Action::Quantize(QuantScheme::ggml(fb)), "{k}");
            assert!(d.note.unwrap().contains(&format!("using {}", fb.name().to_lowercase())));
        }
        // 1536 = 6·256 fits.
        let d = p.decide(&facts("blk.0.ffn_down.weight", 1536, GgmlType::Q4_1), &QuantScheme::ggml(GgmlType::Q4_K));
        assert_eq!((d.action, d.note), (Action::Quantize(QuantScheme::ggml(GgmlType::Q4_K)), None));
        // 48 is not a multiple of 32 either: F16 (kept for an F32 tensor).
        let d = p.decide(&facts("x.weight", 48, GgmlType::Q8_0), &QuantScheme::ggml(GgmlType::Q4_K));
        assert_eq!(d.action, Action::ToF16);
        let d = p.decide(&facts("x.weight", 48, GgmlType::F32), &QuantScheme::ggml(GgmlType::Q4_K));
        assert_eq!(d.action, Action::Copy);
    }

    #[test]
    fn groups_fall_back_to_a_dividing_power_of_two() {
        let p = TensorPolicy::default();
        let t = facts("blk.0.attn_q.weight", 576, GgmlType::Q4_1);
        let d = p.decide(&t, &QuantScheme::parse("int4-asym-g128").unwrap());
        assert_eq!(d.action, Action::Quantize(QuantScheme::parse("int4-asym-g64").unwrap()));
        let d = p.decide(&t, &QuantScheme::parse("nf4-b256-dq").unwrap());
        assert_eq!(d.action, Action::Quantize(QuantScheme::parse("nf4-b64-dq").unwrap()));
        // 48 = 16·3: no group ≥ 32 divides it.
        let d = p.decide(&facts("x.weight", 48, GgmlType::Q4_1), &QuantScheme::parse("int4-sym-g64").unwrap());
        assert_eq!(d.action, Action::ToF16);
        // Norms and 1-D tensors are copied.
        let d = p.decide(&facts("blk.0.attn_norm.weight", 576, GgmlType::F32), &QuantScheme::ggml(GgmlType::Q8_0));
        assert_eq!(d.action, Action::Copy);
    }
}
