//! Activation quantization of every linear layer's input on the CPU forward ([`ActQuant`]):
//! the rows a layer is about to read are quantized and dequantized in place (simulated, "fake"
//! quantization: the products still run in f32 on the dequantized values; integer kernels are
//! a later step of #15). Both forwards apply it at the same point, right after the input is
//! shown to an observer, so [`super::forward()`] and [`super::forward_batch()`] stay equal.
//!
//! # The rules (symmetric absmax, as SmoothQuant and ZeroQuant define them)
//!
//! A value type with `L` levels per sign (INT8: 127, INT4: 7) and a scale `s`:
//! `q = round_half_even(x · (1/s))` clamped to ±L, `x̂ = q · s` (the KV cache's int8 rule);
//! FP8 E4M3: `x̂ = e4m3(x / s) · s` with saturation at ±448 ([`crate::formats::fp8`]). `s = 0`
//! (an all-zero row or tensor) gives zeros. The scale, per granularity:
//!
//! | granularity | `s` |
//! |---|---|
//! | per-token dynamic (`-token`) | `max|x| / L` over the row (one position) |
//! | per-tensor dynamic (`-tensor`) | `max|x| / L` over every row the product reads at once |
//! | per-tensor static (`-static`) | `T / L`, `T` a threshold calibrated per linear input ([`ActRanges`]) |
//!
//! with `L = 448` for FP8. **LLM.int8()** (`llm-int8`, [`ActGranularity::PerTokenOutliers`]) is
//! per-token INT8 whose scale leaves out the values at or above a threshold (default 6.0), and
//! whose columns holding such a value anywhere in the rows read at once stay in float; its rules
//! and its int8 vector-wise weights are in [`super::llm_int8`].
//! "Every row the product reads at once" is one position in the
//! per-position forward and the block's positions in the batched forward (an eval window runs
//! in blocks of [`super::forward_batch::DEFAULT_BLOCK`]): per-tensor dynamic scales therefore
//! depend on the block, as they do in a serving engine's batched prefill, and the two forwards
//! agree on them only with blocks of one position. Per-token and static scales do not depend on
//! the block, so the forwards agree bit for bit (tests/rust/act_quant.rs).
//!
//! The classifier's input is left in f32 unless [`ActHead::Quantized`] says otherwise (LLM
//! W8A8 recipes keep the LM head in higher precision).

use std::collections::BTreeMap;

use super::forward::LinearInput;
use super::llm_int8::{TokenCodes, DEFAULT_THRESHOLD};
use crate::formats::fp8::{encode_scaled, Fp8Format};

/// The number format activations are rounded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActType {
    Int8,
    Int4,
    /// OCP FP8 E4M3 (max 448).
    Fp8E4M3,
}

impl ActType {
    pub const ALL: [ActType; 3] = [ActType::Int8, ActType::Int4, ActType::Fp8E4M3];

    pub fn name(self) -> &'static str {
        match self {
            ActType::Int8 => "int8",
            ActType::Int4 => "int4",
            ActType::Fp8E4M3 => "fp8",
        }
    }

    /// The largest code magnitude: `s = T / levels` maps a threshold `T` to the grid's end.
    pub fn levels(self) -> f32 {
        match self {
            ActType::Int8 => 127.0,
            ActType::Int4 => 7.0,
            ActType::Fp8E4M3 => Fp8Format::E4M3.max(),
        }
    }

    /// `x̂` of one value at scale `s` (`inv = 1/s`, or 0 when `s = 0`).
    #[inline]
    pub fn round(self, x: f32, s: f32, inv: f32) -> f32 {
        match self {
            ActType::Int8 | ActType::Int4 => {
                let l = self.levels();
                (x * inv).round_ties_even().clamp(-l, l) * s
            }
            ActType::Fp8E4M3 => Fp8Format::E4M3.decode(encode_scaled(Fp8Format::E4M3, x, s)) * s,
        }
    }

    /// Quantizes and dequantizes `xs` in place at scale `s`.
    pub fn fake_quant(self, xs: &mut [f32], s: f32) {
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        if s == 0.0 {
            xs.fill(0.0);
            return;
        }
        for x in xs {
            *x = self.round(*x, s, inv);
        }
    }
}

/// Which values share one activation scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActGranularity {
    /// One scale per position, from that row's max |x|.
    PerToken,
    /// One scale per product, from the max |x| of every row it reads.
    PerTensorDynamic,
    /// One scale per linear input, from a calibrated threshold.
    PerTensorStatic,
    /// LLM.int8(): per token, with outlier columns kept in float (INT8 only).
    PerTokenOutliers,
}

impl ActGranularity {
    pub const ALL: [ActGranularity; 3] =
        [ActGranularity::PerToken, ActGranularity::PerTensorDynamic, ActGranularity::PerTensorStatic];

    pub fn name(self) -> &'static str {
        match self {
            ActGranularity::PerToken => "token",
            ActGranularity::PerTensorDynamic => "tensor",
            ActGranularity::PerTensorStatic => "static",
            ActGranularity::PerTokenOutliers => "outliers",
        }
    }
}

/// An activation format: value type × granularity, named `TYPE-GRANULARITY` (`int8-token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActQuant {
    pub ty: ActType,
    pub granularity: ActGranularity,
}

impl ActQuant {
    /// LLM.int8() ([`super::llm_int8`]).
    pub const LLM_INT8: ActQuant = ActQuant { ty: ActType::Int8, granularity: ActGranularity::PerTokenOutliers };

    /// Per-token dynamic INT8, the one activation format the GPU forward multiplies in integers
    /// (`gpu::int8_dot4`).
    pub const INT8_TOKEN: ActQuant = ActQuant { ty: ActType::Int8, granularity: ActGranularity::PerToken };

    /// Every format, in the order the CLI lists them.
    pub const ALL: [ActQuant; 10] = {
        let mut all = [ActQuant::LLM_INT8; 10];
        let mut i = 0;
        while i < 9 {
            all[i] = ActQuant { ty: ActType::ALL[i / 3], granularity: ActGranularity::ALL[i % 3] };
            i += 1;
        }
        all
    };

    /// `TYPE-GRANULARITY`, e.g. `int8-token`.
    pub fn name(self) -> &'static str {
        use ActGranularity::*;
        match (self.ty, self.granularity) {
            (ActType::Int8, PerToken) => "int8-token",
            (ActType::Int8, PerTensorDynamic) => "int8-tensor",
            (ActType::Int8, PerTensorStatic) => "int8-static",
            (ActType::Int4, PerToken) => "int4-token",
            (ActType::Int4, PerTensorDynamic) => "int4-tensor",
            (ActType::Int4, PerTensorStatic) => "int4-static",
            (ActType::Fp8E4M3, PerToken) => "fp8-token",
            (ActType::Fp8E4M3, PerTensorDynamic) => "fp8-tensor",
            (ActType::Fp8E4M3, PerTensorStatic) => "fp8-static",
            (ActType::Int8, PerTokenOutliers) => "llm-int8",
            // Not in `ALL`: `ActQuantizer::new` refuses them.
            (ActType::Int4, PerTokenOutliers) => "int4-outliers",
            (ActType::Fp8E4M3, PerTokenOutliers) => "fp8-outliers",
        }
    }

    /// Parses `TYPE-GRANULARITY` or `llm-int8` (case-insensitive).
    pub fn parse(s: &str) -> Result<ActQuant, ActQuantError> {
        let lower = s.to_ascii_lowercase();
        ActQuant::ALL
            .into_iter()
            .find(|a| a.name() == lower)
            .ok_or_else(|| ActQuantError::Unknown { name: s.to_string() })
    }

    /// Whether the format needs calibrated thresholds ([`ActRanges`]).
    pub fn is_static(self) -> bool {
        self.granularity == ActGranularity::PerTensorStatic
    }
}

impl std::fmt::Display for ActQuant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the classifier (LM head) input is quantized too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActHead {
    /// Left in f32 (the default).
    #[default]
    Float,
    Quantized,
}

/// Calibrated thresholds `T` (the largest |x| the grid covers) per linear input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActRanges {
    pub thresholds: BTreeMap<LinearInput, f32>,
}

/// Why an activation format cannot be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActQuantError {
    #[error(
        "unknown activation format '{name}' (expected TYPE-GRANULARITY: int8, int4 or fp8 with token, tensor or \
         static, e.g. int8-token; or llm-int8)"
    )]
    Unknown { name: String },
    #[error("activation format {format}: outlier columns (LLM.int8()) are defined for int8 only")]
    OutliersNeedInt8 { format: String },
    #[error("LLM.int8() threshold {threshold} is not a positive number (the default is 6.0; inf turns outliers off)")]
    BadThreshold { threshold: f32 },
    #[error("activation format {format} uses static scales: calibrate its ranges first (--act-range)")]
    NoRanges { format: String },
    #[error("no calibrated range for the input of {input:?}: the ranges belong to another model")]
    MissingRange { input: LinearInput },
    #[error("calibrated range {threshold} for the input of {input:?} is not a finite positive number")]
    BadRange { input: LinearInput, threshold: f32 },
}

/// A ready-to-apply activation quantization: the format, the LM head policy and, for static
/// scales, one scale per linear input.
#[derive(Debug, Clone, PartialEq)]
pub struct ActQuantizer {
    pub quant: ActQuant,
    pub head: ActHead,
    /// Static scales `T / L` per input (empty for dynamic formats).
    scales: BTreeMap<LinearInput, f32>,
    /// LLM.int8()'s outlier threshold (unused by the other formats).
    threshold: f32,
}

impl ActQuantizer {
    /// A dynamic format (`ranges` unused) or a static one with a range for every input of a
    /// model of `n_layers` layers (and for the classifier when `head` quantizes it).
    pub fn new(
        quant: ActQuant,
        head: ActHead,
        ranges: Option<&ActRanges>,
        n_layers: usize,
    ) -> Result<ActQuantizer, ActQuantError> {
        let mut scales = BTreeMap::new();
        if quant.granularity == ActGranularity::PerTokenOutliers && quant.ty != ActType::Int8 {
            return Err(ActQuantError::OutliersNeedInt8 { format: quant.name().to_string() });
        }
        if quant.is_static() {
            let ranges = ranges.ok_or_else(|| ActQuantError::NoRanges { format: quant.name().to_string() })?;
            let head_input = (head == ActHead::Quantized).then_some(LinearInput::Classifier);
            for input in (0..n_layers).flat_map(layer_inputs).chain(head_input) {
                let &threshold = ranges.thresholds.get(&input).ok_or(ActQuantError::MissingRange { input })?;
                if !(threshold.is_finite() && threshold > 0.0) {
                    return Err(ActQuantError::BadRange { input, threshold });
                }
                scales.insert(input, threshold / quant.ty.levels());
            }
        }
        Ok(ActQuantizer { quant, head, scales, threshold: DEFAULT_THRESHOLD })
    }

    /// The same quantizer with LLM.int8()'s outlier threshold set to `threshold` (> 0; `∞`: no
    /// outlier columns).
    pub fn with_threshold(mut self, threshold: f32) -> Result<ActQuantizer, ActQuantError> {
        if threshold.is_nan() || threshold <= 0.0 {
            return Err(ActQuantError::BadThreshold { threshold });
        }
        self.threshold = threshold;
        Ok(self)
    }

    /// LLM.int8()'s outlier threshold.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The per-token INT8 codes of `rows` for the integer path: `Some` for `int8-token` and
    /// `llm-int8` at an input they quantize, `None` otherwise.
    pub fn token_codes(&self, input: LinearInput, rows: &[f32], width: usize) -> Option<TokenCodes> {
        if input == LinearInput::Classifier && self.head == ActHead::Float {
            return None;
        }
        match (self.quant.ty, self.quant.granularity) {
            (ActType::Int8, ActGranularity::PerToken) => Some(TokenCodes::per_token(rows, width)),
            (_, ActGranularity::PerTokenOutliers) => Some(TokenCodes::llm_int8(rows, width, self.threshold)),
            _ => None,
        }
    }

    /// Quantizes and dequantizes `rows` (rows of `width` values, the input of the layers named
    /// by `input`) in place, by the rules of the module docs.
    pub fn apply(&self, input: LinearInput, rows: &mut [f32], width: usize) {
        if input == LinearInput::Classifier && self.head == ActHead::Float {
            return;
        }
        let ty = self.quant.ty;
        let amax = |xs: &[f32]| xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        match self.quant.granularity {
            ActGranularity::PerToken => {
                for row in rows.chunks_exact_mut(width) {
                    let s = amax(row) / ty.levels();
                    ty.fake_quant(row, s);
                }
            }
            ActGranularity::PerTensorDynamic => {
                let s = amax(rows) / ty.levels();
                ty.fake_quant(rows, s);
            }
            ActGranularity::PerTensorStatic => {
                // `new` checked that every input the forward shows has its scale.
                let s = self.scales.get(&input).copied().unwrap_or(0.0);
                ty.fake_quant(rows, s);
            }
            ActGranularity::PerTokenOutliers => {
                TokenCodes::llm_int8(rows, width, self.threshold).dequantize_into(rows);
            }
        }
    }
}

/// The four inputs of layer `layer`, in forward order.
pub fn layer_inputs(layer: usize) -> [LinearInput; 4] {
    [
        LinearInput::Attention { layer },
        LinearInput::AttentionOutput { layer },
        LinearInput::Ffn { layer },
        LinearInput::FfnDown { layer },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for a in ActQuant::ALL {
            assert_eq!(ActQuant::parse(&a.name().to_uppercase()), Ok(a));
        }
        assert_eq!(ActQuant::ALL.iter().filter(|a| a.is_static()).count(), 3);
        assert_eq!(ActQuant::parse("LLM-int8"), Ok(ActQuant::LLM_INT8));
        assert!(matches!(ActQuant::parse("int8"), Err(ActQuantError::Unknown { .. })));
    }

    #[test]
    fn int8_token_by_hand() {
        // Row [1.27, -0.5, 0.005]: s = 0.01; -0.5/0.01 = -50, 0.005/0.01 = 0.5 → 0 (ties to even).
        let q = ActQuantizer::new(
            ActQuant { ty: ActType::Int8, granularity: ActGranularity::PerToken },
            ActHead::Float,
            None,
            1,
        )
        .unwrap();
        let mut rows = [1.27f32, -0.5, 0.005, 0.0, 0.0, 0.0];
        q.apply(LinearInput::Attention { layer: 0 }, &mut rows, 3);
        assert!((rows[0] - 1.27).abs() < 1e-6 && (rows[1] + 0.5).abs() < 1e-6);
        assert_eq!(&rows[2..], &[0.0; 4]);
        // The classifier is left alone by default.
        let mut head = [0.123f32, 7.0];
        q.apply(LinearInput::Classifier, &mut head, 2);
        assert_eq!(head, [0.123, 7.0]);
    }
}
