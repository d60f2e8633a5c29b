//! One integer-quantized linear layer in the two safetensors layouts Hugging Face transformers
//! loads pre-quantized: AutoGPTQ's (`quant_method: "gptq"`, `checkpoint_format: "gptq"`, what
//! optimum / GPTQModel read) and AutoAWQ's GEMM layout (`quant_method: "awq"`, `version:
//! "gemm"`). The whole checkpoint (names, config.json) is [`crate::model::hf_layout`].
//!
//! A linear layer has `out` output channels (our rows) and `in` inputs (our columns), groups of
//! `g` consecutive inputs, codes `q` in `0..2^b`, and per (group, output) a scale `s` and an
//! integer zero `z`; it decodes `w = s · (q − z)`. Symmetric schemes are the case `z = 2^(b−1)`
//! (our offset-binary codes, see [`crate::formats::int`]). Words are little-endian int32 holding
//! `32/b` codes, the first in the lowest bits.
//!
//! | key (`<linear>.…`) | GPTQ                              | AWQ (GEMM, 4-bit only)        |
//! |--------------------|-----------------------------------|-------------------------------|
//! | `qweight` I32      | `[in·b/32, out]`, packed along in | `[in, out·b/32]`, along out   |
//! | `qzeros` I32       | `[in/g, out·b/32]`, stores `z − 1`| `[in/g, out·b/32]`, stores `z`|
//! | `scales` F16       | `[in/g, out]`                     | `[in/g, out]`                 |
//! | `g_idx` I32        | `[in]`, the group of each input   | —                             |
//!
//! AWQ packs the 8 outputs of a word in the order `[0, 2, 4, 6, 1, 3, 5, 7]` (nibble `k` holds
//! output `ORDER[k]`), for its GEMM kernel; GPTQ in natural order. GPTQ's "v1" zeros are stored
//! minus one (the readers add it back), so a zero point of 0 cannot be stored: it is an error
//! here, never a wrapped value. `g_idx` is `i / g` for ordinary groups; act-order without static
//! groups gives each input the group of its place in the processing order, which
//! [`IntLinear::with_group_index`] accepts.

use half::f16;
use safetensors::Dtype;

use super::safetensors::Entry;
use crate::formats::int::IntTensor;
use crate::formats::{Granularity, Mapping, QuantScheme, ValueType};

/// Which loader's layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// AutoGPTQ / optimum / GPTQModel, `checkpoint_format: "gptq"`.
    Gptq,
    /// AutoAWQ GEMM, `version: "gemm"`.
    Awq,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Gptq => "GPTQ",
            Layout::Awq => "AWQ",
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// AutoAWQ's order of the 8 outputs inside one int32 word (`WQLinear_GEMM` packing).
pub const AWQ_ORDER: [usize; 8] = [0, 2, 4, 6, 1, 3, 5, 7];

/// Why a layer (or format) cannot be written in a layout; each names what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "{scheme} is not an integer format: the {layout} layout stores INT2/INT4/INT8 codes (e.g. -f int4-asym-g128)"
    )]
    NotInteger { scheme: String, layout: Layout },
    #[error(
        "{scheme} has one f32 scale per {what}: the {layout} layout stores f16 scales per group of inputs; use a group \
         format such as {suggestion}"
    )]
    NotGrouped { scheme: String, layout: Layout, what: &'static str, suggestion: String },
    #[error("{bits}-bit codes cannot be written in the {layout} layout: {reason}")]
    Bits { bits: u8, layout: Layout, reason: &'static str },
    #[error("tensor '{tensor}': {what} is {n}, not a multiple of {multiple} as the {layout} layout needs ({why})")]
    Shape { tensor: String, what: &'static str, n: usize, multiple: usize, layout: Layout, why: &'static str },
    #[error(
        "tensor '{tensor}': {groups} group(s) have zero point 0 (first: output {output}, group {group}); the GPTQ v1 \
         layout stores zero − 1, so 0 cannot be written (AutoGPTQ would wrap it); use a symmetric format or the AWQ layout"
    )]
    ZeroPoint { tensor: String, groups: usize, output: usize, group: usize },
    #[error(
        "tensor '{tensor}': {groups} group scale(s) exceed the f16 maximum 65504 (first: group {first}), so they would \
         decode wrong"
    )]
    Saturated { tensor: String, groups: usize, first: usize },
    #[error("tensor '{tensor}': the AWQ layout has no g_idx, so every input must be in group input / group size")]
    GroupOrder { tensor: String },
    #[error("tensor '{tensor}': {what}")]
    Invalid { tensor: String, what: String },
}

/// The bits a layout packs, or why not.
pub fn check_bits(layout: Layout, bits: u8) -> Result<(), LayoutError> {
    let reason = match (layout, bits) {
        (Layout::Gptq, 2 | 4 | 8) | (Layout::Awq, 4) => return Ok(()),
        (Layout::Gptq, 3) => "AutoGPTQ packs 3-bit codes across word boundaries, which this export does not write",
        (Layout::Gptq, _) => "AutoGPTQ packs 2, 4 or 8 bits",
        (Layout::Awq, _) => "AutoAWQ's GEMM kernels read 4-bit codes only",
    };
    Err(LayoutError::Bits { bits, layout, reason })
}

/// Checks that `scheme` is an integer scheme with groups the layout can hold; returns
/// `(bits, group length, symmetric)`.
pub fn check_scheme(scheme: &QuantScheme, layout: Layout) -> Result<(u8, usize, bool), LayoutError> {
    let ValueType::Int { bits } = scheme.value else {
        return Err(LayoutError::NotInteger { scheme: scheme.name(), layout });
    };
    let symmetric = scheme.mapping == Mapping::Symmetric;
    let group = match scheme.granularity {
        Granularity::Group(n) => n as usize,
        Granularity::Channel | Granularity::Tensor => {
            let what = if scheme.granularity == Granularity::Channel { "output channel" } else { "tensor" };
            let mapping = if symmetric { "sym" } else { "asym" };
            let suggestion = format!("int{bits}-{mapping}-g128");
            return Err(LayoutError::NotGrouped { scheme: scheme.name(), layout, what, suggestion });
        }
    };
    check_bits(layout, bits)?;
    Ok((bits, group, symmetric))
}

/// One integer linear layer, layout-neutral: row-major `[out, in]` codes, `[out, n_groups]`
/// scales (f16 values) and zeros, and the group of each input.
#[derive(Debug, Clone, PartialEq)]
pub struct IntLinear {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub bits: u8,
    pub group_len: usize,
    codes: Vec<u8>,
    scales: Vec<f32>,
    zeros: Vec<u8>,
    g_idx: Vec<u32>,
}

impl IntLinear {
    /// The layer of a group-wise [`IntTensor`] called `name` (groups along each row).
    pub fn from_int_tensor(name: &str, t: &IntTensor) -> Result<IntLinear, LayoutError> {
        let invalid = |what: String| LayoutError::Invalid { tensor: name.to_string(), what };
        if !matches!(t.scheme.granularity, Granularity::Group(_)) {
            return Err(invalid(format!("{} is not a group-wise scheme", t.scheme.name())));
        }
        if let Some(&first) = t.saturated_groups.first() {
            return Err(LayoutError::Saturated { tensor: name.to_string(), groups: t.saturated_groups.len(), first });
        }
        let (rows, cols) = (t.shape.rows, t.shape.cols);
        let zeros = match t.scheme.mapping {
            Mapping::Symmetric => vec![1u8 << (t.bits - 1); t.scales.len()],
            _ => t.zero_points.clone(),
        };
        let g_idx = (0..cols).map(|c| (c / t.group_len) as u32).collect();
        Self::checked(name, (rows, cols), t.bits, t.group_len, t.codes(), t.scales.clone(), zeros, g_idx)
    }

    /// The same codes, scales and zeros with input `c` in group `g_idx[c]` (act-order without
    /// static groups); each group still holds `group_len` inputs.
    pub fn with_group_index(self, g_idx: Vec<u32>) -> Result<IntLinear, LayoutError> {
        let IntLinear { name, rows, cols, bits, group_len, codes, scales, zeros, .. } = self;
        Self::checked(&name, (rows, cols), bits, group_len, codes, scales, zeros, g_idx)
    }

    /// A layer from its parts (tests and other quantizers), every length and range checked.
    #[allow(clippy::too_many_arguments)]
    pub fn checked(
        name: &str,
        (rows, cols): (usize, usize),
        bits: u8,
        group_len: usize,
        codes: Vec<u8>,
        scales: Vec<f32>,
        zeros: Vec<u8>,
        g_idx: Vec<u32>,
    ) -> Result<IntLinear, LayoutError> {
        let invalid = |what: String| Err(LayoutError::Invalid { tensor: name.to_string(), what });
        if !(2..=8).contains(&bits) || group_len == 0 || !cols.is_multiple_of(group_len) {
            return invalid(format!("{bits} bits with groups of {group_len} over {cols} inputs"));
        }
        let n_groups = cols / group_len;
        if codes.len() != rows * cols || scales.len() != rows * n_groups || zeros.len() != rows * n_groups {
            return invalid(format!(
                "{} codes, {} scales, {} zeros for {rows}×{cols} in {n_groups} groups",
                codes.len(),
                scales.len(),
                zeros.len()
            ));
        }
        if g_idx.len() != cols {
            return invalid(format!("g_idx has {} entries for {cols} inputs", g_idx.len()));
        }
        let mut members = vec![0usize; n_groups];
        for &g in &g_idx {
            match members.get_mut(g as usize) {
                Some(m) => *m += 1,
                None => return invalid(format!("g_idx names group {g} of {n_groups}")),
            }
        }
        if members.iter().any(|&m| m != group_len) {
            return invalid(format!("g_idx does not put {group_len} inputs in every group"));
        }
        let limit = 1u16 << bits;
        if codes.iter().chain(&zeros).any(|&c| u16::from(c) >= limit) {
            return invalid(format!("a code or zero point is not below 2^{bits}"));
        }
        if let Some(s) = scales.iter().find(|s| !s.is_finite() || f16::from_f32(**s).to_f32() != **s) {
            return invalid(format!("scale {s} is not an f16 value"));
        }
        Ok(IntLinear { name: name.to_string(), rows, cols, bits, group_len, codes, scales, zeros, g_idx })
    }

    pub fn n_groups(&self) -> usize {
        self.cols / self.group_len
    }

    pub fn codes(&self) -> &[u8] {
        &self.codes
    }

    pub fn g_idx(&self) -> &[u32] {
        &self.g_idx
    }

    fn param(&self, row: usize, col: usize) -> (f32, u8) {
        let k = row * self.n_groups() + self.g_idx[col] as usize;
        (self.scales[k], self.zeros[k])
    }

    /// `s · (q − z)` for every weight, row-major, in f32 (as [`IntTensor::dequantize`]).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.codes.len());
        for r in 0..self.rows {
            for c in 0..self.cols {
                let (s, z) = self.param(r, c);
                out.push(s * (i32::from(self.codes[r * self.cols + c]) - i32::from(z)) as f32);
            }
        }
        out
    }

    /// The layer with its output rows reordered: new row `r` is old row `from[r]` (undoing
    /// llama.cpp's q/k row permutation moves whole output channels).
    pub fn reorder_rows(&self, from: &[usize]) -> IntLinear {
        assert_eq!(from.len(), self.rows, "a row order has one entry per row");
        let take = |v: &[u8], w: usize| from.iter().flat_map(|&r| v[r * w..(r + 1) * w].iter().copied()).collect();
        let ng = self.n_groups();
        IntLinear {
            name: self.name.clone(),
            codes: take(&self.codes, self.cols),
            zeros: take(&self.zeros, ng),
            scales: from.iter().flat_map(|&r| self.scales[r * ng..(r + 1) * ng].iter().copied()).collect(),
            g_idx: self.g_idx.clone(),
            ..*self
        }
    }

    fn shape_error(&self, layout: Layout, what: &'static str, n: usize, why: &'static str) -> LayoutError {
        let multiple = 32 / self.bits as usize;
        LayoutError::Shape { tensor: self.name.clone(), what, n, multiple, layout, why }
    }

    /// The four GPTQ tensors of this layer under `prefix` (`model.layers.0.self_attn.q_proj`).
    pub fn gptq_entries(&self, prefix: &str) -> Result<Vec<Entry>, LayoutError> {
        check_bits(Layout::Gptq, self.bits)?;
        let (b, per) = (self.bits as usize, 32 / self.bits as usize);
        if !self.cols.is_multiple_of(per) {
            return Err(self.shape_error(Layout::Gptq, "the input count", self.cols, "qweight packs inputs"));
        }
        if !self.rows.is_multiple_of(per) {
            return Err(self.shape_error(Layout::Gptq, "the output count", self.rows, "qzeros packs outputs"));
        }
        let ng = self.n_groups();
        let zero_groups: Vec<usize> = (0..self.zeros.len()).filter(|&k| self.zeros[k] == 0).collect();
        if let Some(&k) = zero_groups.first() {
            return Err(LayoutError::ZeroPoint {
                tensor: self.name.clone(),
                groups: zero_groups.len(),
                output: k / ng,
                group: k % ng,
            });
        }
        let mut qweight = vec![0u32; self.cols / per * self.rows];
        for c in 0..self.cols {
            for r in 0..self.rows {
                qweight[c / per * self.rows + r] |= u32::from(self.codes[r * self.cols + c]) << (b * (c % per));
            }
        }
        let mut qzeros = vec![0u32; ng * self.rows / per];
        for g in 0..ng {
            for r in 0..self.rows {
                qzeros[g * self.rows / per + r / per] |= u32::from(self.zeros[r * ng + g] - 1) << (b * (r % per));
            }
        }
        Ok(vec![
            (format!("{prefix}.qweight"), Dtype::I32, vec![self.cols / per, self.rows], words(&qweight)),
            (format!("{prefix}.qzeros"), Dtype::I32, vec![ng, self.rows / per], words(&qzeros)),
            (format!("{prefix}.scales"), Dtype::F16, vec![ng, self.rows], self.scales_by_group()),
            (format!("{prefix}.g_idx"), Dtype::I32, vec![self.cols], words(&self.g_idx)),
        ])
    }

    /// The three AWQ GEMM tensors of this layer under `prefix`.
    pub fn awq_entries(&self, prefix: &str) -> Result<Vec<Entry>, LayoutError> {
        check_bits(Layout::Awq, self.bits)?;
        if self.g_idx.iter().enumerate().any(|(c, &g)| g as usize != c / self.group_len) {
            return Err(LayoutError::GroupOrder { tensor: self.name.clone() });
        }
        if !self.rows.is_multiple_of(AWQ_ORDER.len()) {
            return Err(self.shape_error(
                Layout::Awq,
                "the output count",
                self.rows,
                "qweight and qzeros pack outputs",
            ));
        }
        let (ng, words_per_row) = (self.n_groups(), self.rows / AWQ_ORDER.len());
        let pack = |value: &dyn Fn(usize) -> u8| -> Vec<u32> {
            (0..words_per_row)
                .map(|w| {
                    AWQ_ORDER.iter().enumerate().fold(0u32, |acc, (k, &o)| acc | u32::from(value(w * 8 + o)) << (4 * k))
                })
                .collect()
        };
        let mut qweight = Vec::with_capacity(self.cols * words_per_row);
        for c in 0..self.cols {
            qweight.extend(pack(&|r| self.codes[r * self.cols + c]));
        }
        let mut qzeros = Vec::with_capacity(ng * words_per_row);
        for g in 0..ng {
            qzeros.extend(pack(&|r| self.zeros[r * ng + g]));
        }
        Ok(vec![
            (format!("{prefix}.qweight"), Dtype::I32, vec![self.cols, words_per_row], words(&qweight)),
            (format!("{prefix}.qzeros"), Dtype::I32, vec![ng, words_per_row], words(&qzeros)),
            (format!("{prefix}.scales"), Dtype::F16, vec![ng, self.rows], self.scales_by_group()),
        ])
    }

    /// This layer's tensors in `layout`.
    pub fn entries(&self, layout: Layout, prefix: &str) -> Result<Vec<Entry>, LayoutError> {
        match layout {
            Layout::Gptq => self.gptq_entries(prefix),
            Layout::Awq => self.awq_entries(prefix),
        }
    }

    /// `[n_groups, out]` f16 bytes (exact: the scales are f16 values).
    fn scales_by_group(&self) -> Vec<u8> {
        let ng = self.n_groups();
        (0..ng)
            .flat_map(|g| (0..self.rows).map(move |r| (g, r)))
            .flat_map(|(g, r)| f16::from_f32(self.scales[r * ng + g]).to_le_bytes())
            .collect()
    }
}

fn words(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn read_i32(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect()
}

/// One layer's stored tensors, as little-endian bytes (`g_idx` for GPTQ only).
pub struct Packed<'a> {
    pub qweight: &'a [u8],
    pub qzeros: &'a [u8],
    pub scales: &'a [u8],
    pub g_idx: Option<&'a [u8]>,
}

/// Reads a layer back from its layout tensors as the loaders unpack them: masks `b` bits per
/// field, adds 1 to GPTQ zeros, undoes AWQ's order. `rows × cols`, `bits` and the group length
/// come from the config; the byte lengths, codes and g_idx are checked.
pub fn unpack(
    name: &str,
    layout: Layout,
    (rows, cols): (usize, usize),
    bits: u8,
    group_len: usize,
    p: &Packed,
) -> Result<IntLinear, LayoutError> {
    check_bits(layout, bits)?;
    let invalid = |what: String| LayoutError::Invalid { tensor: name.to_string(), what };
    let (b, per) = (bits as usize, 32 / bits as usize);
    if group_len == 0 || !cols.is_multiple_of(group_len) || !cols.is_multiple_of(per) || !rows.is_multiple_of(per) {
        return Err(invalid(format!("{rows}×{cols} does not fit {bits}-bit words and groups of {group_len}")));
    }
    let ng = cols / group_len;
    let (qweight, qzeros) = (read_i32(p.qweight), read_i32(p.qzeros));
    let want = (cols * rows / per, ng * rows / per, ng * rows * 2);
    if (qweight.len(), qzeros.len(), p.scales.len()) != want {
        return Err(invalid(format!(
            "{} qweight words, {} qzeros words, {} scale bytes; expected {want:?}",
            qweight.len(),
            qzeros.len(),
            p.scales.len()
        )));
    }
    let mask = (1u32 << b) - 1;
    let field = |w: u32, k: usize| ((w >> (b * k)) & mask) as u8;
    let mut codes = vec![0u8; rows * cols];
    let mut zeros = vec![0u8; rows * ng];
    let g_idx = match layout {
        Layout::Gptq => {
            for c in 0..cols {
                for r in 0..rows {
                    codes[r * cols + c] = field(qweight[c / per * rows + r], c % per);
                }
            }
            for g in 0..ng {
                for r in 0..rows {
                    // v1 zeros are stored minus one; the readers add it back (in b bits).
                    let z = u32::from(field(qzeros[g * rows / per + r / per], r % per)) + 1;
                    zeros[r * ng + g] = u8::try_from(z).map_err(|_| invalid(format!("zero {z} exceeds 8 bits")))?;
                }
            }
            let raw = p.g_idx.ok_or_else(|| invalid("the GPTQ layout needs g_idx".into()))?;
            read_i32(raw).into_iter().collect()
        }
        Layout::Awq => {
            let wpr = rows / per;
            for c in 0..cols {
                for (k, &o) in AWQ_ORDER.iter().enumerate() {
                    for w in 0..wpr {
                        codes[(w * 8 + o) * cols + c] = field(qweight[c * wpr + w], k);
                    }
                }
            }
            for g in 0..ng {
                for (k, &o) in AWQ_ORDER.iter().enumerate() {
                    for w in 0..wpr {
                        zeros[(w * 8 + o) * ng + g] = field(qzeros[g * wpr + w], k);
                    }
                }
            }
            (0..cols).map(|c| (c / group_len) as u32).collect()
        }
    };
    let scales_gr: Vec<f32> = p.scales.chunks_exact(2).map(|h| f16::from_le_bytes([h[0], h[1]]).to_f32()).collect();
    let scales = (0..rows).flat_map(|r| (0..ng).map(move |g| (r, g))).map(|(r, g)| scales_gr[g * rows + r]).collect();
    IntLinear::checked(name, (rows, cols), bits, group_len, codes, scales, zeros, g_idx)
}

/// Whether columns were processed in act-order (`desc_act`), as the config records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DescAct {
    No,
    /// Act-order with static groups: the groups stay `i / g`, so `g_idx` is trivial.
    StaticGroups,
}

/// The `quantization_config` object of config.json for a model written in `layout`.
pub fn quantization_config(
    layout: Layout,
    bits: u8,
    group_len: usize,
    symmetric: bool,
    act: DescAct,
) -> serde_json::Value {
    match layout {
        Layout::Gptq => serde_json::json!({
            "quant_method": "gptq",
            "bits": bits,
            "group_size": group_len,
            "desc_act": act == DescAct::StaticGroups,
            "static_groups": act == DescAct::StaticGroups,
            "sym": symmetric,
            "true_sequential": true,
            "checkpoint_format": "gptq",
        }),
        // AutoAWQ always stores zero points; a symmetric scheme is written with z = 2^(b−1),
        // which decodes the same values.
        Layout::Awq => serde_json::json!({
            "quant_method": "awq",
            "bits": bits,
            "group_size": group_len,
            "zero_point": true,
            "version": "gemm",
        }),
    }
}
