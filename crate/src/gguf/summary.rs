//! A model-level summary of a GGUF header: architecture, hyper-parameters, tokenizer, sizes.
//!
//! Keys follow llama.cpp's naming (`<arch>.embedding_length`, `<arch>.attention.head_count`,
//! ...). Every field is optional because architectures differ in what they record; a
//! per-layer array (some models vary `head_count` per layer) reads as absent here.

use super::metadata::MetadataValue;
use super::reader::GgufFile;
use crate::formats::GgmlType;
use serde::Serialize;

/// What `quantlab info` prints above the tensor table (and the web lab's model card).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
// Field names are camelCase across the wasm boundary (snake_case in the CLI's JSON).
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct ModelSummary {
    pub architecture: Option<String>,
    pub name: Option<String>,
    /// `general.file_type` as llama.cpp's ftype name, e.g. "MOSTLY_Q4_1".
    pub file_type: Option<String>,
    pub file_type_id: Option<u64>,
    pub context_length: Option<u64>,
    pub embedding_length: Option<u64>,
    pub block_count: Option<u64>,
    pub feed_forward_length: Option<u64>,
    pub head_count: Option<u64>,
    pub head_count_kv: Option<u64>,
    pub rope_freq_base: Option<f64>,
    pub rms_norm_eps: Option<f64>,
    /// `<arch>.vocab_size`, else the length of `tokenizer.ggml.tokens`.
    pub vocab_size: Option<u64>,
    /// `tokenizer.ggml.model`, e.g. "gpt2" (BPE) or "llama" (SentencePiece).
    pub tokenizer_model: Option<String>,
    /// `tokenizer.ggml.pre`, the pre-tokenizer regex family, e.g. "smollm".
    pub tokenizer_pre: Option<String>,
    pub merges: Option<u64>,
    /// Sum of all tensors' element counts.
    pub parameter_count: u64,
    /// Sum of all tensors' stored bytes.
    pub tensor_bytes: u64,
    pub tensor_count: usize,
    pub metadata_count: usize,
    /// `tensor_bytes * 8 / parameter_count` (0 for a file without tensors).
    pub bits_per_weight: f64,
    /// One entry per tensor type present, in type-id order.
    pub types: Vec<TypeStats>,
}

/// How much of the model is stored in one tensor type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
// Field names are camelCase across the wasm boundary (snake_case in the CLI's JSON).
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct TypeStats {
    #[serde(rename = "type")]
    pub ty: GgmlType,
    pub tensors: usize,
    pub elements: u64,
    pub bytes: u64,
}

impl ModelSummary {
    pub fn from_gguf(f: &GgufFile) -> ModelSummary {
        let arch_u64 = |s: &str| f.arch_get(s).and_then(MetadataValue::as_u64);
        let arch_f64 = |s: &str| f.arch_get(s).and_then(float);
        let file_type_id = f.get_u64("general.file_type");
        let mut types: Vec<TypeStats> = Vec::new();
        for t in &f.tensors {
            let i = match types.iter().position(|s| s.ty == t.ty) {
                Some(i) => i,
                None => {
                    types.push(TypeStats { ty: t.ty, tensors: 0, elements: 0, bytes: 0 });
                    types.len() - 1
                }
            };
            let s = &mut types[i];
            s.tensors += 1;
            s.elements = s.elements.saturating_add(t.n_elements());
            s.bytes = s.bytes.saturating_add(t.n_bytes());
        }
        types.sort_by_key(|s| s.ty.id());
        let parameter_count = types.iter().fold(0u64, |a, s| a.saturating_add(s.elements));
        let tensor_bytes = types.iter().fold(0u64, |a, s| a.saturating_add(s.bytes));
        let vocab_size =
            arch_u64("vocab_size").or_else(|| f.get_array("tokenizer.ggml.tokens").map(|a| a.len() as u64));
        ModelSummary {
            architecture: f.architecture().map(str::to_string),
            name: f.get_str("general.name").map(str::to_string),
            file_type: file_type_id.map(|id| match ftype_name(id) {
                Some(n) => n.to_string(),
                None => format!("unknown ({id})"),
            }),
            file_type_id,
            context_length: arch_u64("context_length"),
            embedding_length: arch_u64("embedding_length"),
            block_count: arch_u64("block_count"),
            feed_forward_length: arch_u64("feed_forward_length"),
            head_count: arch_u64("attention.head_count"),
            head_count_kv: arch_u64("attention.head_count_kv"),
            rope_freq_base: arch_f64("rope.freq_base"),
            rms_norm_eps: arch_f64("attention.layer_norm_rms_epsilon"),
            vocab_size,
            tokenizer_model: f.get_str("tokenizer.ggml.model").map(str::to_string),
            tokenizer_pre: f.get_str("tokenizer.ggml.pre").map(str::to_string),
            merges: f.get_array("tokenizer.ggml.merges").map(|a| a.len() as u64),
            parameter_count,
            tensor_bytes,
            tensor_count: f.tensors.len(),
            metadata_count: f.metadata.len(),
            bits_per_weight: if parameter_count == 0 {
                0.0
            } else {
                tensor_bytes as f64 * 8.0 / parameter_count as f64
            },
            types,
        }
    }
}

/// A float that prints as written: an f32 `1e-5` becomes the f64 `1e-5`, not
/// `9.999999747378752e-6`, by going through f32's shortest decimal form.
fn float(v: &MetadataValue) -> Option<f64> {
    match *v {
        MetadataValue::F32(x) => x.to_string().parse().ok().or(Some(f64::from(x))),
        _ => v.as_f64(),
    }
}

/// llama.cpp's `llama_ftype` names (`general.file_type`), including retired ids so old files
/// still say what they are.
pub fn ftype_name(id: u64) -> Option<&'static str> {
    Some(match id {
        0 => "ALL_F32",
        1 => "MOSTLY_F16",
        2 => "MOSTLY_Q4_0",
        3 => "MOSTLY_Q4_1",
        4 => "MOSTLY_Q4_1_SOME_F16",
        5 => "MOSTLY_Q4_2",
        6 => "MOSTLY_Q4_3",
        7 => "MOSTLY_Q8_0",
        8 => "MOSTLY_Q5_0",
        9 => "MOSTLY_Q5_1",
        10 => "MOSTLY_Q2_K",
        11 => "MOSTLY_Q3_K_S",
        12 => "MOSTLY_Q3_K_M",
        13 => "MOSTLY_Q3_K_L",
        14 => "MOSTLY_Q4_K_S",
        15 => "MOSTLY_Q4_K_M",
        16 => "MOSTLY_Q5_K_S",
        17 => "MOSTLY_Q5_K_M",
        18 => "MOSTLY_Q6_K",
        19 => "MOSTLY_IQ2_XXS",
        20 => "MOSTLY_IQ2_XS",
        21 => "MOSTLY_Q2_K_S",
        22 => "MOSTLY_IQ3_XS",
        23 => "MOSTLY_IQ3_XXS",
        24 => "MOSTLY_IQ1_S",
        25 => "MOSTLY_IQ4_NL",
        26 => "MOSTLY_IQ3_S",
        27 => "MOSTLY_IQ3_M",
        28 => "MOSTLY_IQ2_S",
        29 => "MOSTLY_IQ2_M",
        30 => "MOSTLY_IQ4_XS",
        31 => "MOSTLY_IQ1_M",
        32 => "MOSTLY_BF16",
        33 => "MOSTLY_Q4_0_4_4",
        34 => "MOSTLY_Q4_0_4_8",
        35 => "MOSTLY_Q4_0_8_8",
        36 => "MOSTLY_TQ1_0",
        37 => "MOSTLY_TQ2_0",
        38 => "MOSTLY_MXFP4_MOE",
        1024 => "GUESSED",
        _ => return None,
    })
}

/// Keeps the llama.cpp name table honest against the tensor-type table for the plain types.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftype_names_cover_common_types() {
        assert_eq!(ftype_name(3), Some("MOSTLY_Q4_1"));
        assert_eq!(ftype_name(15), Some("MOSTLY_Q4_K_M"));
        assert_eq!(ftype_name(999), None);
        for (ftype, ty) in [(0, GgmlType::F32), (1, GgmlType::F16), (7, GgmlType::Q8_0)] {
            assert!(ftype_name(ftype).is_some_and(|n| n.ends_with(ty.name())));
        }
    }

    #[test]
    fn f32_floats_keep_their_short_form() {
        assert_eq!(float(&MetadataValue::F32(1e-5)), Some(1e-5));
        assert_eq!(float(&MetadataValue::U32(100000)), Some(100000.0));
    }
}
