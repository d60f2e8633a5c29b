//! LLaMA models from Hugging Face checkpoints: `config.json` + safetensors (one file or shards).
//!
//! [`Config::from_hf_config`] reads the hyper-parameters of a `LlamaForCausalLM` config (the
//! transformers 4 keys `rope_theta` / `rope_scaling` and the transformers 5 `rope_parameters`
//! object); anything that would make the forward compute a different model (biases, RoPE
//! scaling, another activation, a pre-quantized checkpoint) is refused naming the key.
//! [`Model::from_hf_checkpoint`] maps the tensors (`model.layers.N.self_attn.q_proj.weight` →
//! `wq`, ...) after checking every name and shape, keeping F16/BF16 tensors packed as
//! [`Matrix::Quantized`] (2 bytes a weight, like the file) and F32 ones as [`Matrix::F32`].
//!
//! **Q/K rows.** Hugging Face LLaMA applies RoPE with `rotate_half`, pairing dimension `i` of a
//! head with `i + head_dim/2`; our forward pairs adjacent dimensions (the GGUF layout, see
//! `forward`). The two are the same model once the rows of `q_proj` and `k_proj` are permuted
//! per head exactly as llama.cpp's `convert_hf_to_gguf.py` does (`LlamaModel.permute`):
//! new row `h·hd + 2i + a` = HF row `h·hd + a·hd/2 + i` for `a ∈ {0, 1}`, `i < hd/2`.
//! Only whole rows move, so it is done on the stored bytes whatever the dtype.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;

use super::config::{head_dim, HeadsProblem, MAX_DIM};
use super::weights::{Layer, Matrix, Weights};
use super::{Config, Model, ModelError};
use crate::formats::{dequantize_row, quantized::GgmlTensor, GgmlType, QuantizedTensor, TensorShape};
use crate::io::safetensors::{Checkpoint, SafetensorsError};
use ::safetensors::Dtype;

/// The `architectures` entry (and `model_type`) [`Config::from_hf_config`] accepts.
pub const SUPPORTED_HF_ARCHITECTURES: &[&str] = &["LlamaForCausalLM"];

impl Config {
    /// Reads and checks a Hugging Face LLaMA `config.json`. Errors name the key.
    pub fn from_hf_config(json: &Value) -> Result<Config, ModelError> {
        let bad = |key: &str, reason: String| ModelError::HfConfig { key: key.into(), reason };
        if !json.is_object() {
            return Err(bad("(root)", "is not a JSON object".into()));
        }
        check_architecture(json)?;

        let opt_u = |key: &str| -> Result<Option<usize>, ModelError> {
            match json.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if (1..=MAX_DIM).contains(&n) => Ok(Some(n as usize)),
                    _ => Err(bad(key, format!("is {v}, expected an integer in 1..={MAX_DIM}"))),
                },
            }
        };
        let req_u = |key: &str| opt_u(key)?.ok_or_else(|| bad(key, "is missing (needed by the forward pass)".into()));
        let opt_f = |key: &str, v: Option<&Value>, default: f32| -> Result<f32, ModelError> {
            match v {
                None | Some(Value::Null) => Ok(default),
                Some(v) => match v.as_f64() {
                    Some(x) if x.is_finite() && x > 0.0 => Ok(x as f32),
                    _ => Err(bad(key, format!("is {v}, expected a positive finite number"))),
                },
            }
        };
        let flag = |key: &str| json.get(key).and_then(Value::as_bool).unwrap_or(false);

        for key in ["attention_bias", "mlp_bias"] {
            if flag(key) {
                return Err(bad(key, "is true: the llama forward has no biases (supported: false)".into()));
            }
        }
        if let Some(act) = json.get("hidden_act").filter(|v| !v.is_null()) {
            if act.as_str() != Some("silu") {
                return Err(bad(
                    "hidden_act",
                    format!("is {act}; the llama forward uses SwiGLU (supported: \"silu\")"),
                ));
            }
        }
        if let Some(q) = json.get("quantization_config").filter(|v| !v.is_null()) {
            let method = q.get("quant_method").and_then(Value::as_str).unwrap_or("unknown");
            return Err(bad(
                "quantization_config",
                format!(
                    "says the checkpoint is pre-quantized ({method}); load the f32/f16/bf16 checkpoint and \
                     quantize with --format instead"
                ),
            ));
        }
        if let Some(f) = json.get("partial_rotary_factor").and_then(Value::as_f64) {
            if f != 1.0 {
                return Err(bad("partial_rotary_factor", format!("is {f}; only full-width RoPE (1.0) is supported")));
            }
        }
        if let Some(w) = json.get("sliding_window").filter(|v| !v.is_null()) {
            return Err(bad("sliding_window", format!("is {w}; sliding-window attention is not supported")));
        }

        let dim = req_u("hidden_size")?;
        let hidden_dim = req_u("intermediate_size")?;
        let n_layers = req_u("num_hidden_layers")?;
        let n_heads = req_u("num_attention_heads")?;
        let n_kv_heads = opt_u("num_key_value_heads")?.unwrap_or(n_heads);
        let head_dim = head_dim(dim, n_heads, n_kv_heads, opt_u("head_dim")?).map_err(|p| match p {
            HeadsProblem::KvHeads(r) => bad("num_key_value_heads", r),
            HeadsProblem::Heads(r) => bad("num_attention_heads", r),
            HeadsProblem::HeadDim(r) => bad("head_dim", r),
        })?;
        if head_dim % 2 != 0 {
            return Err(bad("head_dim", format!("is {head_dim}; RoPE needs an even head width")));
        }
        let rope_theta = rope_theta(json)?;
        Ok(Config {
            dim,
            hidden_dim,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_dim: head_dim,
            vocab_size: req_u("vocab_size")?,
            seq_len: opt_u("max_position_embeddings")?.unwrap_or(2048),
            rope_theta,
            // LlamaConfig's defaults.
            rms_eps: opt_f("rms_norm_eps", json.get("rms_norm_eps"), 1e-6)?,
            tied_embeddings: flag("tie_word_embeddings"),
        })
    }
}

fn check_architecture(json: &Value) -> Result<(), ModelError> {
    let archs: Vec<&str> = json
        .get("architectures")
        .and_then(Value::as_array)
        .map_or(Vec::new(), |a| a.iter().filter_map(Value::as_str).collect());
    let model_type = json.get("model_type").and_then(Value::as_str);
    let arch_ok = archs.iter().any(|a| SUPPORTED_HF_ARCHITECTURES.contains(a));
    let type_ok = model_type == Some("llama");
    // A config may omit one of the two; the one present must say llama, and neither may say otherwise.
    let ok = match (archs.is_empty(), model_type) {
        (true, None) => false,
        (true, Some(_)) => type_ok,
        (false, None) => arch_ok,
        (false, Some(_)) => arch_ok && type_ok,
    };
    if ok {
        return Ok(());
    }
    let found = match (archs.is_empty(), model_type) {
        (true, None) => "neither \"architectures\" nor \"model_type\" is set".to_string(),
        _ => format!(
            "architectures {archs:?}, model_type {}",
            model_type.map_or("(none)".into(), |t| format!("\"{t}\""))
        ),
    };
    Err(ModelError::UnsupportedHfArchitecture { found })
}

/// `rope_theta` from `rope_parameters` (transformers 5) or the top level (transformers 4),
/// refusing every RoPE scaling type but the default.
fn rope_theta(json: &Value) -> Result<f32, ModelError> {
    let bad = |key: &str, reason: String| ModelError::HfConfig { key: key.into(), reason };
    let mut theta = json.get("rope_theta");
    for key in ["rope_scaling", "rope_parameters"] {
        let Some(p) = json.get(key).filter(|v| !v.is_null()) else { continue };
        let Some(obj) = p.as_object() else {
            return Err(bad(key, format!("is {p}, expected an object or null")));
        };
        let ty = obj.get("rope_type").or_else(|| obj.get("type")).and_then(Value::as_str).unwrap_or("default");
        if ty != "default" {
            return Err(bad(
                key,
                format!("asks for RoPE scaling type \"{ty}\"; only the default (unscaled) RoPE is supported"),
            ));
        }
        if key == "rope_parameters" && obj.contains_key("rope_theta") {
            theta = obj.get("rope_theta");
        }
    }
    match theta {
        None | Some(Value::Null) => Ok(10000.0),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Ok(x as f32),
            _ => Err(bad("rope_theta", format!("is {v}, expected a positive finite number"))),
        },
    }
}

impl Model {
    /// Loads a LLaMA model from a safetensors checkpoint whose `config.json` was read with it
    /// ([`Checkpoint::open`] on a Hugging Face model directory, or
    /// [`Checkpoint::from_shard_bytes`] with the parsed config).
    pub fn from_hf_checkpoint(ck: &Checkpoint) -> Result<Model, ModelError> {
        let json = ck.config.as_ref().ok_or(ModelError::NoHfConfig)?;
        let config = Config::from_hf_config(json)?;
        let weights = Weights::from_hf_checkpoint(&config, ck)?;
        Ok(Model { config, weights })
    }

    /// Opens a Hugging Face model directory (or a `.safetensors` / `.index.json` inside one)
    /// and loads it ([`Model::from_hf_checkpoint`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_hf_path(path: &std::path::Path) -> Result<Model, ModelError> {
        Model::from_hf_checkpoint(&Checkpoint::open(path)?)
    }
}

/// A block's tensors: the HF name (after `model.layers.N.`, before `.weight`), the GGUF name
/// `convert_hf_to_gguf.py` gives it (after `blk.N.`) and its role, in [`Layer`] field order.
pub(crate) const HF_LAYER_TENSORS: [(&str, &str, Role); 9] = [
    ("input_layernorm", "attn_norm", Role::Norm),
    ("self_attn.q_proj", "attn_q", Role::Query),
    ("self_attn.k_proj", "attn_k", Role::Key),
    ("self_attn.v_proj", "attn_v", Role::Value),
    ("self_attn.o_proj", "attn_output", Role::AttnOut),
    ("post_attention_layernorm", "ffn_norm", Role::Norm),
    ("mlp.gate_proj", "ffn_gate", Role::FfnIn),
    ("mlp.down_proj", "ffn_down", Role::FfnOut),
    ("mlp.up_proj", "ffn_up", Role::FfnIn),
];

/// What a block tensor is, which fixes its shape and row order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Norm,
    Query,
    Key,
    Value,
    AttnOut,
    /// gate and up: `[hidden, dim]`.
    FfnIn,
    FfnOut,
}

/// One tensor of a LLaMA checkpoint: its HF name, its GGUF name, its PyTorch shape and how its
/// stored rows map onto the forward's (and GGUF's) rows.
pub(crate) struct LlamaTensor {
    pub hf: String,
    pub gguf: String,
    pub shape: Vec<usize>,
    pub order: RowOrder,
}

/// Every tensor a checkpoint with `config` must hold, in GGUF file order: the embedding, the
/// blocks in order, the final norm and (untied) the output matrix.
pub(crate) fn llama_tensors(c: &Config) -> Vec<LlamaTensor> {
    let (dim, hidden, q_dim, kv_dim) = (c.dim, c.hidden_dim, c.q_dim(), c.kv_dim());
    let t = |hf: String, gguf: &str, shape: &[usize], order| LlamaTensor {
        hf,
        gguf: gguf.to_string(),
        shape: shape.to_vec(),
        order,
    };
    let rope_rows = |heads| RowOrder::RopePairs { heads, head_dim: c.head_dim };
    let mut out =
        vec![t("model.embed_tokens.weight".into(), "token_embd.weight", &[c.vocab_size, dim], RowOrder::AsStored)];
    for l in 0..c.n_layers {
        for (hf, gguf, role) in HF_LAYER_TENSORS {
            let (shape, order): (&[usize], _) = match role {
                Role::Norm => (&[dim], RowOrder::AsStored),
                Role::Query => (&[q_dim, dim], rope_rows(c.n_heads)),
                Role::Key => (&[kv_dim, dim], rope_rows(c.n_kv_heads)),
                Role::Value => (&[kv_dim, dim], RowOrder::AsStored),
                Role::AttnOut => (&[dim, q_dim], RowOrder::AsStored),
                Role::FfnIn => (&[hidden, dim], RowOrder::AsStored),
                Role::FfnOut => (&[dim, hidden], RowOrder::AsStored),
            };
            out.push(t(format!("model.layers.{l}.{hf}.weight"), &format!("blk.{l}.{gguf}.weight"), shape, order));
        }
    }
    out.push(t("model.norm.weight".into(), "output_norm.weight", &[dim], RowOrder::AsStored));
    if !c.tied_embeddings {
        out.push(t("lm_head.weight".into(), "output.weight", &[c.vocab_size, dim], RowOrder::AsStored));
    }
    out
}

/// Checks that every tensor of `ck` is one [`llama_tensors`] lists, except the ones
/// transformers itself ignores: `rotary_emb.inv_freq` buffers, and `lm_head.weight` when the
/// embeddings are tied. (Missing tensors are found when each is looked up.)
pub(crate) fn check_tensor_names(c: &Config, ck: &Checkpoint) -> Result<(), ModelError> {
    // Each layer needs its tensors in the checkpoint: checked before the name set (sized by
    // the layer count) is built.
    if c.n_layers.saturating_mul(HF_LAYER_TENSORS.len()) > ck.tensors.len() {
        return Err(ModelError::HfConfig {
            key: "num_hidden_layers".into(),
            reason: format!(
                "is {}: that many layers need {} tensors each, but the checkpoint holds {} tensors",
                c.n_layers,
                HF_LAYER_TENSORS.len(),
                ck.tensors.len()
            ),
        });
    }
    let expected: HashSet<String> = llama_tensors(c).into_iter().map(|t| t.hf).collect();
    for t in &ck.tensors {
        let ignored = t.name.ends_with(".rotary_emb.inv_freq") || (c.tied_embeddings && t.name == "lm_head.weight");
        if !expected.contains(&t.name) && !ignored {
            return Err(ModelError::UnexpectedTensor { name: t.name.clone(), reason: unexpected_reason(&t.name) });
        }
    }
    Ok(())
}

impl Weights {
    /// Maps a Hugging Face LLaMA checkpoint's tensors onto the forward's weights, permuting the
    /// q/k rows to the adjacent-pair RoPE layout (module docs). Every tensor must be used (a
    /// bias or an unknown tensor is an error; see [`check_tensor_names`]).
    pub fn from_hf_checkpoint(config: &Config, ck: &Checkpoint) -> Result<Weights, ModelError> {
        let c = config;
        check_tensor_names(c, ck)?;

        // Taken in llama_tensors' order, which is the field order below.
        let mut specs = llama_tensors(c).into_iter();
        let mut next = || specs.next().expect("llama_tensors lists every weight");
        let matrix = |s: LlamaTensor| hf_matrix(ck, &s.hf, s.shape[0], s.shape[1], s.order);
        let vector = |s: LlamaTensor| hf_vector(ck, &s.hf, s.shape[0]);
        let token_embd = matrix(next())?;
        let mut layers = Vec::with_capacity(c.n_layers);
        for _ in 0..c.n_layers {
            layers.push(Layer {
                attn_norm: vector(next())?,
                wq: matrix(next())?,
                wk: matrix(next())?,
                wv: matrix(next())?,
                wo: matrix(next())?,
                ffn_norm: vector(next())?,
                w_gate: matrix(next())?,
                w_down: matrix(next())?,
                w_up: matrix(next())?,
            });
        }
        let output_norm = vector(next())?;
        let output = match c.tied_embeddings {
            true => None,
            false => Some(matrix(next())?),
        };
        Ok(Weights { token_embd, layers, output_norm, output })
    }
}

fn unexpected_reason(name: &str) -> String {
    if name.ends_with(".bias") {
        "biases are not part of the llama architecture this forward implements".into()
    } else if name.starts_with("model.layers.") {
        "unknown tensor name, or a layer beyond num_hidden_layers".into()
    } else if name == "lm_head.weight" {
        "unreachable: lm_head is expected when the embeddings are untied".into()
    } else {
        "not a tensor of a Hugging Face LlamaForCausalLM checkpoint".into()
    }
}

/// How the stored rows map onto the forward's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowOrder {
    AsStored,
    /// q/k: HF `rotate_half` halves → adjacent pairs, per head (module docs).
    RopePairs {
        heads: usize,
        head_dim: usize,
    },
}

impl RowOrder {
    /// `raw` (rows of `row_bytes` bytes each) in the forward's row order: borrowed when nothing
    /// moves. Only whole rows move, so this works on the stored bytes of any dtype.
    pub(crate) fn apply(self, raw: &[u8], row_bytes: usize) -> Cow<'_, [u8]> {
        match self {
            RowOrder::AsStored => Cow::Borrowed(raw),
            RowOrder::RopePairs { heads, head_dim } => {
                let half = head_dim / 2;
                let mut out = Vec::with_capacity(raw.len());
                for h in 0..heads {
                    for i in 0..half {
                        for a in 0..2 {
                            let src = h * head_dim + a * half + i;
                            out.extend_from_slice(&raw[src * row_bytes..(src + 1) * row_bytes]);
                        }
                    }
                }
                Cow::Owned(out)
            }
        }
    }
}

impl RowOrder {
    /// For each Hugging Face row (in order), the forward's (GGUF's) row holding it: the inverse
    /// of [`RowOrder::apply`], for writing a GGUF model's rows back in the checkpoint's order.
    pub(crate) fn gguf_rows(self, rows: usize) -> Vec<usize> {
        match self {
            RowOrder::AsStored => (0..rows).collect(),
            RowOrder::RopePairs { heads, head_dim } => {
                let half = head_dim / 2;
                let mut from = vec![0; rows];
                for h in 0..heads {
                    for i in 0..half {
                        for a in 0..2 {
                            from[h * head_dim + a * half + i] = h * head_dim + 2 * i + a;
                        }
                    }
                }
                from
            }
        }
    }
}

fn find<'a>(ck: &'a Checkpoint, name: &str) -> Result<&'a crate::io::CheckpointTensor, ModelError> {
    ck.tensor(name).ok_or_else(|| ModelError::MissingTensor { name: name.into() })
}

/// The ggml type holding a safetensors float dtype's values unchanged.
pub(crate) fn float_type(t: &crate::io::CheckpointTensor) -> Result<GgmlType, ModelError> {
    match t.dtype {
        Dtype::F32 => Ok(GgmlType::F32),
        Dtype::F16 => Ok(GgmlType::F16),
        Dtype::BF16 => Ok(GgmlType::BF16),
        other => Err(SafetensorsError::UnsupportedDtype { tensor: t.name.clone(), dtype: other.to_string() }.into()),
    }
}

/// A `[rows, cols]` matrix, F32 decoded and F16/BF16 kept as stored, rows reordered by `order`.
fn hf_matrix(ck: &Checkpoint, name: &str, rows: usize, cols: usize, order: RowOrder) -> Result<Matrix, ModelError> {
    let t = find(ck, name)?;
    if t.shape != [rows, cols] {
        return Err(ModelError::BadTensorShape { name: name.into(), expected: vec![rows, cols], got: t.shape.clone() });
    }
    let ty = float_type(t)?;
    let raw = ck.raw(t);
    let row_bytes = cols * ty.type_size();
    debug_assert_eq!(raw.len(), rows * row_bytes, "safetensors checks sizes against shapes");
    let bytes = order.apply(raw, row_bytes).into_owned();
    let shape = TensorShape::new(rows, cols);
    if ty == GgmlType::F32 {
        let mut data = vec![0f32; rows * cols];
        dequantize_row(ty, &bytes, &mut data).map_err(crate::formats::QuantError::from)?;
        return Ok(Matrix::F32 { shape, data });
    }
    Ok(Matrix::Quantized(QuantizedTensor::Ggml(GgmlTensor { ty, shape, data: bytes })))
}

/// A 1-D vector (norm weights), decoded to f32.
fn hf_vector(ck: &Checkpoint, name: &str, n: usize) -> Result<Vec<f32>, ModelError> {
    let t = find(ck, name)?;
    if t.shape != [n] {
        return Err(ModelError::BadTensorShape { name: name.into(), expected: vec![n], got: t.shape.clone() });
    }
    float_type(t)?;
    Ok(ck.tensor_f32(t)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn llama() -> Value {
        json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "vocab_size": 256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
            "max_position_embeddings": 512, "tie_word_embeddings": true
        })
    }

    #[test]
    fn gguf_rows_undo_the_rope_row_permutation() {
        let order = RowOrder::RopePairs { heads: 3, head_dim: 4 };
        let raw: Vec<u8> = (0..12).collect();
        let gguf = order.apply(&raw, 1);
        // HF row 1 (head 0, first half, i = 1) is GGUF row 2, HF row 2 (second half, i = 0) row 1.
        assert_eq!(&gguf[..4], &[0, 2, 1, 3]);
        let back: Vec<u8> = order.gguf_rows(12).iter().map(|&r| gguf[r]).collect();
        assert_eq!(back, raw);
        assert_eq!(RowOrder::AsStored.gguf_rows(3), vec![0, 1, 2]);
    }

    #[test]
    fn reads_transformers_4_and_5_configs() {
        let c = Config::from_hf_config(&llama()).unwrap();
        assert_eq!((c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads), (64, 128, 2, 4, 2));
        assert_eq!((c.head_dim, c.rope_dim, c.vocab_size, c.seq_len), (16, 16, 256, 512));
        assert_eq!((c.rope_theta, c.rms_eps, c.tied_embeddings), (500000.0, 1e-5, true));
        let mut v5 = llama();
        v5.as_object_mut().unwrap().remove("rope_theta");
        v5["rope_parameters"] = json!({"rope_theta": 250.0, "rope_type": "default"});
        v5["head_dim"] = json!(8);
        assert_eq!(Config::from_hf_config(&v5).unwrap().rope_theta, 250.0);
        assert_eq!(Config::from_hf_config(&v5).unwrap().q_dim(), 32);
    }

    #[test]
    fn refuses_what_the_forward_would_compute_wrongly() {
        let cases: [(&str, Value, &str); 8] = [
            ("rope_scaling", json!({"rope_type": "llama3", "factor": 8.0}), "llama3"),
            ("rope_scaling", json!({"type": "linear", "factor": 2.0}), "linear"),
            ("rope_parameters", json!({"rope_type": "yarn", "rope_theta": 1e4}), "yarn"),
            ("attention_bias", json!(true), "no biases"),
            ("mlp_bias", json!(true), "no biases"),
            ("hidden_act", json!("gelu"), "silu"),
            ("num_key_value_heads", json!(3), "does not divide"),
            ("quantization_config", json!({"quant_method": "gptq"}), "gptq"),
        ];
        for (key, value, words) in cases {
            let mut j = llama();
            j[key] = value;
            let e = Config::from_hf_config(&j).unwrap_err();
            assert!(matches!(&e, ModelError::HfConfig { key: k, .. } if k == key), "{key}: {e}");
            assert!(e.to_string().contains(words), "{key}: {e}");
        }
        let mut j = llama();
        j.as_object_mut().unwrap().remove("vocab_size");
        assert!(Config::from_hf_config(&j).unwrap_err().to_string().contains("'vocab_size' is missing"));
    }

    #[test]
    fn refuses_other_architectures() {
        for (archs, ty) in [(json!(["MistralForCausalLM"]), json!("mistral")), (json!(null), json!(null))] {
            let mut j = llama();
            j["architectures"] = archs;
            j["model_type"] = ty;
            let e = Config::from_hf_config(&j).unwrap_err();
            assert!(matches!(e, ModelError::UnsupportedHfArchitecture { .. }), "{e}");
            assert!(e.to_string().contains("LlamaForCausalLM"), "{e}");
        }
        // model_type alone is enough.
        let mut j = llama();
        j.as_object_mut().unwrap().remove("architectures");
        assert!(Config::from_hf_config(&j).is_ok());
    }
}
