//! The format registry: one table, [`FORMATS`], that says for every family of [`QuantScheme`]
//! what the rest of the lab needs to know about it — its name (or name pattern), bits per
//! weight, which GPU kernel runs it, whether GGUF can store it, what happens to rows it cannot
//! split, and whether the lab's lists suggest it. `can_quantize` / `can_dequantize`, the
//! parser's "producible" check, `gpu::repack`'s choice of kernel, `listFormats()` (wasm) and
//! `quantlab formats` all read this table, so adding a format means one family module and one
//! entry here.
//!
//! A *family* is a scheme with its parameters (bits, group size, range rule, block size) left
//! open: `int-sym-g<N>` is one family, `q4_k` another. [`Family::of`] finds a scheme's family.

use serde::Serialize;

use super::ggml::presets::LlamaFileType;
use super::scheme::{Granularity, Mapping, QuantScheme, ValueType};
use super::GgmlType;
use super::TensorShape;

/// Which weights share a scale, without the group size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub enum GranularityKind {
    Tensor,
    Channel,
    Group,
}

/// How bitsandbytes stores the per-block absmax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub enum AbsmaxStorage {
    /// One f32 per block.
    F32,
    /// Double quantization: 8-bit codes with a nested f32 absmax per 256 blocks and an offset.
    DoubleQuant,
}

/// A family of schemes: a [`QuantScheme`] with its parameters left open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Family {
    Int { mapping: Mapping, granularity: GranularityKind },
    Bnb4 { value: ValueType, absmax: AbsmaxStorage },
    Fp8 { value: ValueType },
    Ggml { ty: GgmlType },
}

impl Family {
    pub fn of(scheme: &QuantScheme) -> Family {
        match scheme.value {
            ValueType::Int { .. } => Family::Int {
                mapping: scheme.mapping,
                granularity: match scheme.granularity {
                    Granularity::Tensor => GranularityKind::Tensor,
                    Granularity::Channel => GranularityKind::Channel,
                    Granularity::Group(_) => GranularityKind::Group,
                },
            },
            value @ (ValueType::Nf4 | ValueType::Fp4) => Family::Bnb4 {
                value,
                absmax: if scheme.double_quant.is_some() { AbsmaxStorage::DoubleQuant } else { AbsmaxStorage::F32 },
            },
            value @ (ValueType::Fp8E4M3 | ValueType::Fp8E5M2) => Family::Fp8 { value },
            ValueType::Ggml { ty } => Family::Ggml { ty },
        }
    }
}

/// What the lab can do with a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub enum Support {
    /// Quantize to it and decode it.
    Quantize,
    /// Decode only (ggml types read from GGUF files that the lab cannot produce).
    DecodeOnly,
}

/// A GPU weight layout without parameters, each read by its own matmul kernel
/// (`gpu::repack::Layout::Fixed`): the float types and the ggml block types with a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub enum FixedLayout {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Iq4Nl,
    Iq4Xs,
    Mxfp4,
    Q4K,
    Q5K,
    Q6K,
    Q3K,
    Q2K,
}

/// A GPU matmul kernel with its own repacked weight layout (`shaders/matmul_<name>.wgsl`,
/// `gpu::repack::Layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(tag = "kind", content = "layout", rename_all = "camelCase")]
pub enum DedicatedKernel {
    Fixed(FixedLayout),
    /// INT codes with per-row or per-group scales (the layout takes bits, group, mapping).
    Int,
    /// NF4/FP4 codebook with an absmax per block (the layout takes the block).
    Codebook,
    /// FP8 E4M3/E5M2 codes with an f32 scale per tensor or row (the layout takes the variant).
    Fp8,
}

/// When a family's dedicated kernel applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub enum GpuCondition {
    /// Always (ggml layouts: rows are whole blocks by construction).
    Always,
    /// Rows a multiple of 8 and the group (the row, per channel or per tensor) a multiple of 8
    /// that divides the row: the kernels decode whole 8-code chunks (a row then starts on a byte
    /// of the bit stream; INT4/INT8 read 8 codes per word or two, INT2/3/5/6/7 across word
    /// boundaries) and index groups within a row.
    IntWholeGroupsOf8,
    /// The block divides the row (bitsandbytes blocks run over the flattened tensor; the kernel
    /// indexes them per row).
    WholeBlocksPerRow,
}

/// Which GPU path runs a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(tag = "path", rename_all = "camelCase")]
pub enum GpuRule {
    /// Its own kernel when `when` holds, the generic path otherwise.
    Dedicated { kernel: DedicatedKernel, when: GpuCondition },
    /// Rows are dequantized on the CPU at upload and run by the f16 (or f32) kernel.
    Generic,
}

/// The GPU path one tensor takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(tag = "path", content = "kernel", rename_all = "camelCase")]
pub enum GpuKernel {
    Dedicated(DedicatedKernel),
    Generic,
}

/// What `policy` does, in order, to a tensor whose rows the scheme cannot split. The
/// policy implements these; `tests/rust/registry.rs` checks the two agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(tag = "kind", content = "ty", rename_all = "camelCase")]
pub enum RowFallback {
    /// Another ggml type (llama.cpp's K-quant fallbacks).
    Ggml(GgmlType),
    /// The largest power-of-two group ≥ 32, smaller than the requested one, dividing the row.
    SmallerGroup,
    /// The last resort: kept as it is when stored as F32/F16/BF16, otherwise stored as F16.
    KeepOrF16,
}

/// Where Compare offers a suggested name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub enum CompareRole {
    /// Only in the format box.
    NotOffered,
    /// A checkbox in Compare, unticked by default.
    Offered,
    /// A checkbox in Compare, ticked by default.
    DefaultPick,
}

/// A name the lab's lists offer (any other valid name can still be typed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// As the lists show it and users type it (a short name, before defaults are filled in).
    pub name: &'static str,
    pub compare: CompareRole,
}

/// One family of formats.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub struct FormatEntry {
    pub family: Family,
    /// The name, or its pattern for a parametrised family.
    pub pattern: &'static str,
    /// A canonical name of the family ([`QuantScheme::name`] prints it back unchanged).
    pub example: &'static str,
    pub description: &'static str,
    pub support: Support,
    pub gpu: GpuRule,
    /// The GGUF tensor type that stores it, when GGUF can.
    pub gguf: Option<GgmlType>,
    /// What happens to rows the scheme cannot split; empty when every row length fits.
    pub row_fallbacks: &'static [RowFallback],
    /// Names the lab's format lists offer, in list order.
    pub suggested: &'static [Suggestion],
}

const fn dedicated(layout: FixedLayout) -> GpuRule {
    GpuRule::Dedicated { kernel: DedicatedKernel::Fixed(layout), when: GpuCondition::Always }
}

const INT_GPU: GpuRule = GpuRule::Dedicated { kernel: DedicatedKernel::Int, when: GpuCondition::IntWholeGroupsOf8 };
const FP8_GPU: GpuRule = GpuRule::Dedicated { kernel: DedicatedKernel::Fp8, when: GpuCondition::Always };
const CODEBOOK_GPU: GpuRule =
    GpuRule::Dedicated { kernel: DedicatedKernel::Codebook, when: GpuCondition::WholeBlocksPerRow };
const GROUP_FALLBACKS: &[RowFallback] = &[RowFallback::SmallerGroup, RowFallback::KeepOrF16];
const BLOCK_FALLBACKS: &[RowFallback] = &[RowFallback::KeepOrF16];
/// llama.cpp's K-quant fallbacks (`tensor_type_fallback`, `policy::k_quant_fallback`).
const fn k_fallbacks(ty: GgmlType) -> &'static [RowFallback] {
    match ty {
        GgmlType::Q4_0 => &[RowFallback::Ggml(GgmlType::Q4_0), RowFallback::KeepOrF16],
        GgmlType::Q5_0 => &[RowFallback::Ggml(GgmlType::Q5_0), RowFallback::KeepOrF16],
        GgmlType::Q5_1 => &[RowFallback::Ggml(GgmlType::Q5_1), RowFallback::KeepOrF16],
        GgmlType::Q8_0 => &[RowFallback::Ggml(GgmlType::Q8_0), RowFallback::KeepOrF16],
        _ => panic!("not a K-quant fallback type"),
    }
}

const fn s(name: &'static str, compare: CompareRole) -> Suggestion {
    Suggestion { name, compare }
}

/// An entry that fits any row length and runs on the generic GPU path until
/// [`FormatEntry::falls_back`] and [`FormatEntry::runs_on`] say otherwise.
const fn base(
    family: Family,
    pattern: &'static str,
    example: &'static str,
    description: &'static str,
    gguf: Option<GgmlType>,
) -> FormatEntry {
    let (support, gpu, row_fallbacks, suggested) = (Support::Quantize, GpuRule::Generic, &[], &[]);
    FormatEntry { family, pattern, example, description, support, gpu, gguf, row_fallbacks, suggested }
}

/// A ggml type the lab quantizes to; GGUF stores it as itself. `name` is its lower-case name.
const fn ggml(ty: GgmlType, name: &'static str, description: &'static str) -> FormatEntry {
    let entry = base(Family::Ggml { ty }, name, name, description, Some(ty));
    // Blocks of one value (the float types) fit any row.
    if ty.block_size() == 1 {
        entry
    } else {
        entry.falls_back(BLOCK_FALLBACKS)
    }
}

/// A family of the lab's own formats (GGUF cannot store them).
const fn family(
    family: Family,
    pattern: &'static str,
    example: &'static str,
    description: &'static str,
) -> FormatEntry {
    base(family, pattern, example, description, None)
}

impl FormatEntry {
    const fn runs_on(self, gpu: GpuRule) -> Self {
        Self { gpu, ..self }
    }

    const fn falls_back(self, row_fallbacks: &'static [RowFallback]) -> Self {
        Self { row_fallbacks, ..self }
    }

    const fn suggest(self, suggested: &'static [Suggestion]) -> Self {
        Self { suggested, ..self }
    }

    /// A ggml type read from GGUF files only.
    const fn decode_only(self) -> Self {
        Self { support: Support::DecodeOnly, ..self }
    }
}

const fn int(mapping: Mapping, granularity: GranularityKind) -> Family {
    Family::Int { mapping, granularity }
}

const fn bnb(value: ValueType, absmax: AbsmaxStorage) -> Family {
    Family::Bnb4 { value, absmax }
}

const fn fp8(value: ValueType) -> Family {
    Family::Fp8 { value }
}

/// Every family, in the order the lab's lists show their suggestions.
#[rustfmt::skip]
pub const FORMATS: &[FormatEntry] = {
    use CompareRole::{DefaultPick, NotOffered, Offered};
    use FixedLayout as K;
    use GgmlType as G;
    use GranularityKind as Gk;
    use Mapping::{Asymmetric as Asym, Symmetric as Sym};
    use ValueType::{Fp4, Fp8E4M3, Fp8E5M2, Nf4};
    use AbsmaxStorage::{DoubleQuant, F32 as Plain};
    &[
    ggml(G::Q8_0, "q8_0", "ggml 8-bit, blocks of 32 with an f16 scale").runs_on(dedicated(K::Q8_0)).suggest(&[s("q8_0", DefaultPick)]),
    ggml(G::Q6_K, "q6_k", "ggml 6-bit K-quant, 256-value super-blocks").runs_on(dedicated(K::Q6K)).falls_back(k_fallbacks(G::Q8_0)).suggest(&[s("q6_k", DefaultPick)]),
    ggml(G::Q5_K, "q5_k", "ggml 5-bit K-quant, scale and min per 32 values").runs_on(dedicated(K::Q5K)).falls_back(k_fallbacks(G::Q5_1)).suggest(&[s("q5_k", Offered)]),
    ggml(G::Q5_1, "q5_1", "ggml 5-bit, blocks of 32 with f16 scale and min").runs_on(dedicated(K::Q5_1)).suggest(&[s("q5_1", NotOffered)]),
    ggml(G::Q5_0, "q5_0", "ggml 5-bit, blocks of 32 with an f16 scale").runs_on(dedicated(K::Q5_0)).suggest(&[s("q5_0", Offered)]),
    ggml(G::Q4_K, "q4_k", "ggml 4-bit K-quant, scale and min per 32 values").runs_on(dedicated(K::Q4K)).falls_back(k_fallbacks(G::Q5_0)).suggest(&[s("q4_k", DefaultPick)]),
    ggml(G::Q4_1, "q4_1", "ggml 4-bit, blocks of 32 with f16 scale and min").runs_on(dedicated(K::Q4_1)).suggest(&[s("q4_1", Offered)]),
    ggml(G::Q4_0, "q4_0", "ggml 4-bit, blocks of 32 with an f16 scale").runs_on(dedicated(K::Q4_0)).suggest(&[s("q4_0", DefaultPick)]),
    ggml(G::Q3_K, "q3_k", "ggml 3-bit K-quant, 256-value super-blocks").runs_on(dedicated(K::Q3K)).falls_back(k_fallbacks(G::Q4_0)).suggest(&[s("q3_k", Offered)]),
    ggml(G::Q2_K, "q2_k", "ggml 2-bit K-quant, 256-value super-blocks").runs_on(dedicated(K::Q2K)).falls_back(k_fallbacks(G::Q4_0)).suggest(&[s("q2_k", Offered)]),
    family(bnb(Nf4, Plain), "nf4[-b<N>]", "nf4-b64", "bitsandbytes NormalFloat4, f32 absmax per block of N (64 by default)").runs_on(CODEBOOK_GPU).falls_back(GROUP_FALLBACKS).suggest(&[s("nf4", DefaultPick)]),
    family(bnb(Nf4, DoubleQuant), "nf4[-b<N>]-dq", "nf4-b64-dq", "bitsandbytes NF4, absmax double-quantized to 8 bits").runs_on(CODEBOOK_GPU).falls_back(GROUP_FALLBACKS).suggest(&[s("nf4-b64-dq", NotOffered)]),
    family(bnb(Fp4, Plain), "fp4[-b<N>]", "fp4-b64", "bitsandbytes FP4, f32 absmax per block of N (64 by default)").runs_on(CODEBOOK_GPU).falls_back(GROUP_FALLBACKS).suggest(&[s("fp4", Offered)]),
    family(bnb(Fp4, DoubleQuant), "fp4[-b<N>]-dq", "fp4-b64-dq", "bitsandbytes FP4, absmax double-quantized to 8 bits").runs_on(CODEBOOK_GPU).falls_back(GROUP_FALLBACKS),
    family(fp8(Fp8E4M3), "fp8-e4m3[-tensor|-channel]", "fp8-e4m3-tensor", "OCP FP8 E4M3 codes, f32 scale per tensor or channel").runs_on(FP8_GPU).suggest(&[s("fp8-e4m3", Offered)]),
    family(fp8(Fp8E5M2), "fp8-e5m2[-tensor|-channel]", "fp8-e5m2-tensor", "FP8 E5M2 codes, f32 scale per tensor or channel").runs_on(FP8_GPU).suggest(&[s("fp8-e5m2", NotOffered)]),
    family(int(Sym, Gk::Channel), "int{2..8}-sym-channel[-p<pct>|-mse]", "int8-sym-channel", "symmetric integer, f32 scale per output channel").runs_on(INT_GPU).suggest(&[s("int8-sym-channel", Offered), s("int4-sym-channel", NotOffered)]),
    family(int(Sym, Gk::Group), "int{2..8}-sym-g<N>[-p<pct>|-mse]", "int4-sym-g64", "symmetric integer, f16 scale per group of N inputs").runs_on(INT_GPU).falls_back(GROUP_FALLBACKS).suggest(&[s("int4-sym-g64", NotOffered)]),
    family(int(Asym, Gk::Group), "int{2..8}-asym-g<N>[-p<pct>|-mse]", "int4-asym-g128", "asymmetric integer, f16 scale and zero point per group of N inputs").runs_on(INT_GPU).falls_back(GROUP_FALLBACKS).suggest(&[s("int4-asym-g128", Offered), s("int3-asym-g64", NotOffered)]),
    family(int(Asym, Gk::Channel), "int{2..8}-asym-channel[-p<pct>|-mse]", "int8-asym-channel", "asymmetric integer, f32 scale and zero point per output channel").runs_on(INT_GPU),
    family(int(Sym, Gk::Tensor), "int{2..8}-sym-tensor[-p<pct>|-mse]", "int8-sym-tensor", "symmetric integer, one f32 scale for the tensor").runs_on(INT_GPU),
    family(int(Asym, Gk::Tensor), "int{2..8}-asym-tensor[-p<pct>|-mse]", "int8-asym-tensor", "asymmetric integer, one f32 scale and zero point for the tensor").runs_on(INT_GPU),
    ggml(G::F16, "f16", "IEEE half precision").runs_on(dedicated(K::F16)),
    ggml(G::BF16, "bf16", "bfloat16").runs_on(dedicated(K::Bf16)),
    ggml(G::F32, "f32", "IEEE single precision").runs_on(dedicated(K::F32)),
    ggml(G::F64, "f64", "IEEE double precision").decode_only(),
    ggml(G::Q8_K, "q8_k", "ggml 8-bit K-quant (for activations)").decode_only(),
    ggml(G::IQ4_NL, "iq4_nl", "ggml 4-bit non-linear grid, blocks of 32").runs_on(dedicated(K::Iq4Nl)).suggest(&[s("iq4_nl", NotOffered)]),
    ggml(G::IQ4_XS, "iq4_xs", "ggml 4-bit non-linear grid, 256-value super-blocks").runs_on(dedicated(K::Iq4Xs)).decode_only(),
    ggml(G::MXFP4, "mxfp4", "OCP MX FP4 (E2M1), blocks of 32 with an E8M0 scale").runs_on(dedicated(K::Mxfp4)).decode_only(),
    ggml(G::TQ1_0, "tq1_0", "ggml ternary, 256-value blocks packed base 3").decode_only(),
    ggml(G::TQ2_0, "tq2_0", "ggml ternary, 256-value blocks of 2-bit codes").decode_only(),
    ]
};

/// The entry of `family`, if the lab knows it.
pub fn entry(family: Family) -> Option<&'static FormatEntry> {
    FORMATS.iter().find(|e| e.family == family)
}

/// The entry of a ggml type, if the lab can at least decode it.
pub fn ggml_entry(ty: GgmlType) -> Option<&'static FormatEntry> {
    entry(Family::Ggml { ty })
}

/// The GPU path a tensor of `scheme` and `shape` takes.
pub fn gpu_kernel(scheme: &QuantScheme, shape: TensorShape) -> GpuKernel {
    let Some(FormatEntry { gpu: GpuRule::Dedicated { kernel, when }, .. }) = entry(Family::of(scheme)) else {
        return GpuKernel::Generic;
    };
    let cols = shape.cols;
    let fits = match when {
        GpuCondition::Always => true,
        GpuCondition::IntWholeGroupsOf8 => {
            let group = match scheme.granularity {
                Granularity::Channel | Granularity::Tensor => cols,
                Granularity::Group(g) => g as usize,
            };
            group > 0 && cols.is_multiple_of(8) && group.is_multiple_of(8) && cols.is_multiple_of(group)
        }
        GpuCondition::WholeBlocksPerRow => scheme.group_size().is_some_and(|b| cols.is_multiple_of(b as usize)),
    };
    if fits {
        GpuKernel::Dedicated(*kernel)
    } else {
        GpuKernel::Generic
    }
}

/// Stored bits per weight of a `shape` tensor in `scheme`, counting every byte
/// `QuantizedTensor::storage_bytes` counts (codes, scales, zero points, nested absmax).
pub fn bits_per_weight(scheme: &QuantScheme, shape: TensorShape) -> f64 {
    let n = shape.len();
    if n == 0 {
        return 0.0;
    }
    let bytes = match scheme.value {
        ValueType::Int { bits } => {
            let groups = match scheme.granularity {
                Granularity::Tensor => 1,
                Granularity::Channel => shape.rows,
                Granularity::Group(g) => n.div_ceil(g as usize),
            };
            let scale_bytes = if matches!(scheme.granularity, Granularity::Group(_)) { 2 } else { 4 };
            let zero_points =
                if scheme.mapping == Mapping::Asymmetric { (groups * bits as usize).div_ceil(8) } else { 0 };
            (n * bits as usize).div_ceil(8) + groups * scale_bytes + zero_points
        }
        ValueType::Nf4 | ValueType::Fp4 => {
            let blocks = n.div_ceil(scheme.group_size().unwrap_or(64) as usize);
            let absmax = match scheme.double_quant {
                None => 4 * blocks,
                Some(dq) => blocks + 4 * blocks.div_ceil(dq as usize) + 4,
            };
            n.div_ceil(2) + absmax
        }
        ValueType::Fp8E4M3 | ValueType::Fp8E5M2 => {
            let scales = if scheme.granularity == Granularity::Channel { shape.rows } else { 1 };
            n + 4 * scales
        }
        ValueType::Ggml { ty } => return ty.bits_per_weight(),
    };
    bytes as f64 * 8.0 / n as f64
}

/// The shape [`FormatInfo::bits_per_weight`] is given for: a 4096-wide projection, where
/// per-row and per-tensor overheads are small.
pub const REFERENCE_SHAPE: TensorShape = TensorShape { rows: 4096, cols: 4096 };

/// A suggested name with what the lists show for it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub struct SuggestionInfo {
    pub name: &'static str,
    /// [`QuantScheme::name`] of the parsed name (defaults filled in).
    pub canonical: String,
    pub bits_per_weight: f64,
    pub compare: CompareRole,
}

/// One registry entry as `listFormats()` and `quantlab formats --json` report it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub struct FormatInfo {
    #[serde(flatten)]
    pub entry: FormatEntry,
    /// Of `example` on a [`REFERENCE_SHAPE`] matrix; null for decode-only types.
    pub bits_per_weight: Option<f64>,
    pub suggestions: Vec<SuggestionInfo>,
}

/// The whole registry, with names resolved and bits per weight computed.
pub fn list() -> Vec<FormatInfo> {
    FORMATS
        .iter()
        .map(|e| FormatInfo {
            entry: *e,
            bits_per_weight: QuantScheme::parse(e.example).ok().map(|s| bits_per_weight(&s, REFERENCE_SHAPE)),
            suggestions: e
                .suggested
                .iter()
                .map(|s| {
                    let scheme =
                        QuantScheme::parse(s.name).expect("registry suggestions parse (tests/rust/registry.rs)");
                    SuggestionInfo {
                        name: s.name,
                        canonical: scheme.name(),
                        bits_per_weight: bits_per_weight(&scheme, REFERENCE_SHAPE),
                        compare: s.compare,
                    }
                })
                .collect(),
        })
        .collect()
}

/// One of llama.cpp's file types as `listPresets()` and `quantlab formats` report it: a name
/// the CLI (`-f`) and the lab take, whose tensors get llama-quantize's per-tensor types
/// ([`crate::formats::ggml::presets`]).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(rename_all = "camelCase")]
pub struct PresetInfo {
    pub name: &'static str,
    pub file_type: LlamaFileType,
    /// The type of every tensor no rule changes.
    pub default_type: GgmlType,
    /// `general.file_type` of the GGUF files it writes.
    pub llama_ftype: u32,
}

/// llama.cpp's file types, in llama-quantize's order.
pub fn presets() -> Vec<PresetInfo> {
    LlamaFileType::ALL
        .iter()
        .map(|&f| PresetInfo { name: f.name(), file_type: f, default_type: f.default_type(), llama_ftype: f.id() })
        .collect()
}
