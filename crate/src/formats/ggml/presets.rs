//! llama.cpp's file types ("presets") and their per-tensor type rules, as `llama-quantize`
//! applies them to a LLaMA-architecture model without an importance matrix: a port of
//! `llama_tensor_get_type` and `tensor_type_fallback` in `src/llama-quant.cpp` of the llama.cpp
//! that llama-cpp-python 0.3.36 vendors (the version `scripts/dev/build-llama-cpp.sh` builds).
//!
//! A file type names a default tensor type (`Q4_K_M` → Q4_K) and rules that give some tensors
//! more bits: the output matrix (and the token embedding when it is tied to the output),
//! `attn_v`, `ffn_down` and `attn_output`, depending on the layer. Rows that the chosen type
//! cannot split fall back to a 32-value type, then to F16.
//!
//! Not ported (other architectures and options): Falcon's and MoE models' rules, the 70B
//! `attn_v` bump, the IQ1/IQ2/IQ3/TQ file types, `--output-tensor-type`,
//! `--token-embedding-type`, `--tensor-type` overrides, and the imatrix-only rules (Q4_0/Q5_0
//! `ffn_down` in the first eighth of the layers, and the IQ4_NL `ffn_down` rule's imatrix case).
//!
//! The layer index of a rule is llama.cpp's running count of tensors of that kind. llama.cpp
//! visits tensors ordered by layer number, so for a dense model the count equals the `blk.N`
//! number, which is what [`layer_of`] reads.

use serde::Serialize;

use crate::formats::GgmlType;

/// A llama.cpp file type (`llama_ftype`) the lab produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[allow(non_camel_case_types)] // llama.cpp's names
pub enum LlamaFileType {
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K_S,
    Q3_K_M,
    Q3_K_L,
    Q4_K_S,
    Q4_K_M,
    Q5_K_S,
    Q5_K_M,
    Q6_K,
    IQ4_NL,
}

impl LlamaFileType {
    /// Every file type, in `llama-quantize --help`'s order (roughly by size).
    pub const ALL: [LlamaFileType; 17] = {
        use LlamaFileType::*;
        [
            Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, IQ4_NL, Q4_0, Q4_1, Q4_K_S, Q4_K_M, Q5_0, Q5_1, Q5_K_S, Q5_K_M, Q6_K, Q8_0,
            F16, BF16,
        ]
    };

    /// The lower-case name the CLI and the lab take (`q4_k_m`).
    pub const fn name(self) -> &'static str {
        use LlamaFileType::*;
        match self {
            F16 => "f16",
            BF16 => "bf16",
            Q4_0 => "q4_0",
            Q4_1 => "q4_1",
            Q5_0 => "q5_0",
            Q5_1 => "q5_1",
            Q8_0 => "q8_0",
            Q2_K => "q2_k",
            Q3_K_S => "q3_k_s",
            Q3_K_M => "q3_k_m",
            Q3_K_L => "q3_k_l",
            Q4_K_S => "q4_k_s",
            Q4_K_M => "q4_k_m",
            Q5_K_S => "q5_k_s",
            Q5_K_M => "q5_k_m",
            Q6_K => "q6_k",
            IQ4_NL => "iq4_nl",
        }
    }

    /// The file type `name` means to `llama-quantize` (case-insensitive), including its aliases
    /// `q3_k` = Q3_K_M, `q4_k` = Q4_K_M and `q5_k` = Q5_K_M.
    pub fn parse(name: &str) -> Option<LlamaFileType> {
        let lower = name.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "q3_k" => Some(LlamaFileType::Q3_K_M),
            "q4_k" => Some(LlamaFileType::Q4_K_M),
            "q5_k" => Some(LlamaFileType::Q5_K_M),
            _ => None,
        };
        alias.or_else(|| Self::ALL.into_iter().find(|f| f.name() == lower))
    }

    /// llama.cpp's `llama_ftype_get_default_type`: the type of every tensor no rule changes.
    pub const fn default_type(self) -> GgmlType {
        use LlamaFileType::*;
        match self {
            F16 => GgmlType::F16,
            BF16 => GgmlType::BF16,
            Q4_0 => GgmlType::Q4_0,
            Q4_1 => GgmlType::Q4_1,
            Q5_0 => GgmlType::Q5_0,
            Q5_1 => GgmlType::Q5_1,
            Q8_0 => GgmlType::Q8_0,
            Q2_K => GgmlType::Q2_K,
            Q3_K_S | Q3_K_M | Q3_K_L => GgmlType::Q3_K,
            Q4_K_S | Q4_K_M => GgmlType::Q4_K,
            Q5_K_S | Q5_K_M => GgmlType::Q5_K,
            Q6_K => GgmlType::Q6_K,
            IQ4_NL => GgmlType::IQ4_NL,
        }
    }

    /// The `llama_ftype` number GGUF files record in `general.file_type`.
    pub const fn id(self) -> u32 {
        use LlamaFileType::*;
        match self {
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q8_0 => 7,
            Q5_0 => 8,
            Q5_1 => 9,
            Q2_K => 10,
            Q3_K_S => 11,
            Q3_K_M => 12,
            Q3_K_L => 13,
            Q4_K_S => 14,
            Q4_K_M => 15,
            Q5_K_S => 16,
            Q5_K_M => 17,
            Q6_K => 18,
            IQ4_NL => 25,
            BF16 => 32,
        }
    }
}

/// llama.cpp's `tensor_category`: what the rules key on, from the tensor's GGUF name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TensorKind {
    TokenEmbd,
    Output,
    AttnQ,
    AttnK,
    AttnV,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Other,
}

impl TensorKind {
    /// `tensor_get_category`: exact names for the output and embeddings, substrings for the rest,
    /// tested in llama.cpp's order.
    pub fn of(name: &str) -> TensorKind {
        use TensorKind::*;
        if name == "output.weight" {
            return Output;
        }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
            return TokenEmbd;
        }
        const BY_SUBSTRING: [(&str, TensorKind); 9] = [
            ("attn_qkv.weight", AttnQkv),
            ("attn_kv_b.weight", AttnKvB),
            ("attn_v.weight", AttnV),
            ("attn_k.weight", AttnK),
            ("attn_q.weight", AttnQ),
            ("attn_output.weight", AttnOutput),
            ("ffn_up", FfnUp),
            ("ffn_gate", FfnGate),
            ("ffn_down", FfnDown),
        ];
        BY_SUBSTRING.iter().find(|(s, _)| name.contains(s)).map_or(Other, |&(_, k)| k)
    }

    /// `category_is_attn_v`: the kinds the `attn_v` rules (and counter) cover.
    fn is_attn_v(self) -> bool {
        matches!(self, TensorKind::AttnV | TensorKind::AttnQkv | TensorKind::AttnKvB)
    }
}

/// The `blk.N.` layer number of a tensor name (0 for tensors outside the blocks).
pub fn layer_of(name: &str) -> u32 {
    name.strip_prefix("blk.").and_then(|r| r.split('.').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Whether the output matrix is stored on its own or is the token embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OutputMatrix {
    /// `output.weight` exists.
    Separate,
    /// No `output.weight`: the token embedding is also the output (llama.cpp then gives
    /// `token_embd.weight` the output's type).
    TiedToEmbedding,
}

/// What the rules need to know about the model as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModelShape {
    /// Transformer blocks (`n_layer`; llama.cpp's `n_ffn_down`).
    pub n_layer: u32,
    /// Tensors of the `attn_v` kinds (llama.cpp's `n_attention_wv`).
    pub n_attn_v: u32,
    /// Query heads per key/value head (`n_gqa`).
    pub n_gqa: u32,
    pub output: OutputMatrix,
}

impl ModelShape {
    /// From the model's tensor names, its head counts and block count.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>, n_layer: u32, n_head: u32, n_head_kv: u32) -> Self {
        let mut n_attn_v = 0;
        let mut output = OutputMatrix::TiedToEmbedding;
        for name in names {
            match TensorKind::of(name) {
                TensorKind::Output => output = OutputMatrix::Separate,
                k if k.is_attn_v() => n_attn_v += 1,
                _ => {}
            }
        }
        ModelShape { n_layer, n_attn_v, n_gqa: n_head.checked_div(n_head_kv).unwrap_or(1), output }
    }
}

/// Why a tensor's type differs from the file type's default type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reason {
    /// The output matrix (or the token embedding tied to it) gets Q6_K, or Q8_0 when its rows
    /// are not whole blocks of the default type.
    OutputMatrix,
    /// A per-kind rule of the file type (`attn_v`, `ffn_down`, `attn_output`) for this layer.
    LayerRule,
    /// The rule's type cannot split the rows; llama.cpp's fallback type.
    RowFallback { wanted: GgmlType, row_len: u64 },
    /// Neither the type nor its fallback splits the rows: F16.
    RowFallbackF16 { wanted: GgmlType, row_len: u64 },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::OutputMatrix => write!(f, "llama.cpp's rule for the output matrix"),
            Reason::LayerRule => write!(f, "llama.cpp's per-layer rule for this tensor kind"),
            Reason::RowFallback { wanted, row_len } => write!(
                f,
                "row length {row_len} is not a multiple of {wanted}'s {}-value block; llama.cpp's fallback",
                wanted.block_size()
            ),
            Reason::RowFallbackF16 { wanted, row_len } => {
                write!(f, "row length {row_len} fits neither {wanted} nor its fallback; F16 as in llama.cpp")
            }
        }
    }
}

/// A tensor's type under a file type, and why it is not the default type when it isn't.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub ty: GgmlType,
    pub reason: Option<Reason>,
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third one
/// between them.
fn use_more_bits(i_layer: u32, n_layers: u32) -> bool {
    let (i, n) = (i_layer as i64, n_layers as i64);
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// The rules of `llama_tensor_get_type_impl` (LLaMA, no imatrix) for the kinds they cover.
fn rule_type(ft: LlamaFileType, kind: TensorKind, i_layer: u32, model: &ModelShape, row_len: u64) -> GgmlType {
    use GgmlType as G;
    use LlamaFileType as F;
    let default = ft.default_type();
    let n = model.n_layer;
    let output_like =
        kind == TensorKind::Output || (model.output == OutputMatrix::TiedToEmbedding && kind == TensorKind::TokenEmbd);
    if output_like {
        return if !row_len.is_multiple_of(default.block_size() as u64) {
            G::Q8_0
        } else if default != G::Q8_0 {
            G::Q6_K
        } else {
            default
        };
    }
    if kind.is_attn_v() {
        let i = i_layer;
        return match ft {
            F::Q2_K if model.n_gqa >= 4 => G::Q4_K,
            F::Q2_K => G::Q3_K,
            F::Q3_K_M if i < 2 => G::Q5_K,
            F::Q3_K_M => G::Q4_K,
            F::Q3_K_L => G::Q5_K,
            F::IQ4_NL if model.n_gqa >= 4 => G::Q5_K,
            F::Q4_K_M | F::Q5_K_M if use_more_bits(i, model.n_attn_v) => G::Q6_K,
            F::Q4_K_S if i < 4 => G::Q5_K,
            _ => default,
        };
    }
    match kind {
        TensorKind::FfnDown => {
            let i = i_layer;
            match ft {
                F::Q2_K => G::Q3_K,
                F::Q3_K_M if i < n / 16 => G::Q5_K,
                F::Q3_K_M => G::Q4_K,
                F::Q3_K_L => G::Q5_K,
                F::Q4_K_M if use_more_bits(i, n) => G::Q6_K,
                F::IQ4_NL if i < n / 8 => G::Q5_K,
                F::Q5_K_M if use_more_bits(i, n) => G::Q6_K,
                F::Q4_K_S if i < n / 8 => G::Q5_K,
                _ => default,
            }
        }
        TensorKind::AttnOutput => match ft {
            F::Q2_K => G::Q3_K,
            F::Q3_K_M => G::Q4_K,
            F::Q3_K_L => G::Q5_K,
            _ => default,
        },
        _ => default,
    }
}

/// `tensor_type_fallback`: the type for rows of `row_len` values when `ty`'s block does not
/// divide them.
fn fallback(ty: GgmlType, row_len: u64) -> Choice {
    let fits = |t: GgmlType| row_len.is_multiple_of(t.block_size() as u64);
    if fits(ty) {
        return Choice { ty, reason: None };
    }
    let to = match ty {
        GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::TQ1_0 | GgmlType::TQ2_0 => GgmlType::Q4_0,
        GgmlType::IQ4_XS => GgmlType::IQ4_NL,
        GgmlType::Q4_K => GgmlType::Q5_0,
        GgmlType::Q5_K => GgmlType::Q5_1,
        GgmlType::Q6_K => GgmlType::Q8_0,
        // A 32-value type has nothing smaller to go to.
        other => other,
    };
    if fits(to) {
        Choice { ty: to, reason: Some(Reason::RowFallback { wanted: ty, row_len }) }
    } else {
        Choice { ty: GgmlType::F16, reason: Some(Reason::RowFallbackF16 { wanted: ty, row_len }) }
    }
}

/// The type `llama-quantize` gives a quantizable tensor (2-D, a weight, not a norm: the caller
/// selects those) of `kind` in layer `i_layer` with rows of `row_len` values, under file type
/// `ft`. F16 and BF16 file types have no rules: every such tensor gets the default type.
pub fn tensor_type(ft: LlamaFileType, kind: TensorKind, i_layer: u32, model: &ModelShape, row_len: u64) -> Choice {
    let default = ft.default_type();
    if default.block_size() == 1 {
        return Choice { ty: default, reason: None };
    }
    let ruled = rule_type(ft, kind, i_layer, model, row_len);
    let fell = fallback(ruled, row_len);
    let rule_reason = (ruled != default).then_some(match kind {
        TensorKind::Output | TensorKind::TokenEmbd => Reason::OutputMatrix,
        _ => Reason::LayerRule,
    });
    Choice { ty: fell.ty, reason: fell.reason.or(rule_reason) }
}

/// [`tensor_type`] for a tensor named `name` (its kind and layer read from the name).
pub fn tensor_type_by_name(ft: LlamaFileType, name: &str, model: &ModelShape, row_len: u64) -> Choice {
    tensor_type(ft, TensorKind::of(name), layer_of(name), model, row_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_more_bits_matches_llama_cpp_for_30_layers() {
        let picked: Vec<u32> = (0..30).filter(|&i| use_more_bits(i, 30)).collect();
        // n/8 = 3, 7n/8 = 26: layers 0-2, 26-29, and 5, 8, ... (every third after 3).
        assert_eq!(picked, vec![0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29]);
    }

    #[test]
    fn names_parse_with_llama_quantize_aliases() {
        assert_eq!(LlamaFileType::parse("q4_k"), Some(LlamaFileType::Q4_K_M));
        assert_eq!(LlamaFileType::parse("Q3_K_S"), Some(LlamaFileType::Q3_K_S));
        assert_eq!(LlamaFileType::parse("int4-sym-g64"), None);
        for f in LlamaFileType::ALL {
            assert_eq!(LlamaFileType::parse(f.name()), Some(f));
        }
    }

    #[test]
    fn tied_embedding_of_a_q4_0_file_is_q8_0() {
        let m = ModelShape { n_layer: 30, n_attn_v: 30, n_gqa: 3, output: OutputMatrix::TiedToEmbedding };
        // Q6_K by the output rule, then Q8_0 because 576 is not a multiple of 256.
        let c = tensor_type_by_name(LlamaFileType::Q4_0, "token_embd.weight", &m, 576);
        assert_eq!(c.ty, GgmlType::Q8_0);
        let c = tensor_type_by_name(LlamaFileType::Q4_K_M, "token_embd.weight", &m, 576);
        assert_eq!((c.ty, c.reason), (GgmlType::Q8_0, Some(Reason::OutputMatrix)));
    }
}
