//! A Hugging Face LLaMA checkpoint (config.json, safetensors shards, tokenizer.json) written as
//! a GGUF model llama.cpp loads: what llama.cpp's `convert_hf_to_gguf.py` does for
//! `LlamaForCausalLM`, with the tensors then quantized by the shared [`TensorPolicy`] exactly as
//! a GGUF input would be (llama-quantize's per-tensor rules apply to the GGUF names).
//!
//! - Tensors: `llama_tensors` (`model.embed_tokens` → `token_embd`, `model.layers.N.*` →
//!   `blk.N.attn_norm` … `ffn_up`, `model.norm` → `output_norm`, `lm_head` → `output`, absent
//!   when tied), every name and shape checked as `Model::from_hf_checkpoint` checks them, the
//!   q/k rows permuted as `LlamaModel.permute` does (`RowOrder::apply`, shared with the
//!   loader). 1-D tensors (norms) are stored F32, as convert_hf_to_gguf.py stores them.
//! - Metadata, in convert_hf_to_gguf.py's order: `general.architecture` "llama",
//!   `general.type` "model", `general.name` (the directory's name: convert derives name,
//!   basename, size label… from the model card and directory name by heuristics; only the name
//!   and `general.size_label` are written here), the `llama.*` hyper-parameters,
//!   `general.file_type`, `general.quantization_version`, then the tokenizer ([`hf_vocab`]).
//!   `llama.rope.freq_base` and `llama.attention.key_length`/`value_length` are written when
//!   config.json has `rope_theta` / `head_dim`, as convert does; `context_length` and
//!   `layer_norm_rms_epsilon` always (transformers' defaults when config.json omits them:
//!   llama.cpp needs both).
//! - Streaming: tensor data is produced one tensor at a time inside the GGUF writer's callback
//!   (read from the memory-mapped shards, permuted, quantized, written), so memory holds one
//!   tensor's values and bytes, never the model.

use std::io::Write;

use serde_json::Value;

use super::hf::{check_tensor_names, float_type, llama_tensors, LlamaTensor};
use super::hf_vocab::{self, HfTokenizerFiles};
use super::{Config, ModelError};
use crate::formats::ggml::presets::ModelShape;
use crate::formats::saturation::Saturation;
use crate::formats::{dequantize_row, GgmlType, QuantScheme, QuantizedTensor, TensorShape};
use crate::gguf::MetadataValue;
use crate::io::export::{
    check_container, quantize_named_with, write_gguf, ExportError, ExportKind, ExportProgress, ExportSummary,
    SaturationLog, TensorMethod,
};
use crate::io::gguf_writer::{llama_ftype, GgufWriteError, GgufWriter, GGML_QNT_VERSION};
use crate::io::safetensors::{Checkpoint, CheckpointTensor};
use crate::policy::{Action, TensorFacts, TensorPolicy, TypeMix};

/// Why a checkpoint could not be converted: the model (config, tensors, tokenizer) or the
/// quantization and writing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HfConvertError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Export(#[from] ExportError),
}

/// What to convert: the checkpoint, its directory's name (`general.name`) and tokenizer files.
pub struct HfSource<'a> {
    pub checkpoint: &'a Checkpoint,
    pub name: &'a str,
    pub tokenizer: &'a HfTokenizerFiles,
}

/// How the tensors are quantized: the requested scheme, the policy, the overflow policy and
/// the method choosing the codes.
pub struct HfQuantize<'a> {
    pub scheme: &'a QuantScheme,
    pub policy: &'a TensorPolicy<'a>,
    pub saturation: Saturation,
    pub method: &'a mut dyn TensorMethod,
}

/// One output tensor: where it comes from and what happens to it.
struct Planned<'a> {
    spec: LlamaTensor,
    input: &'a CheckpointTensor,
    stored: GgmlType,
    action: Action,
}

/// Converts `src` to a GGUF model written to `out`; `progress` is called after each tensor.
pub fn convert_hf_to_gguf(
    src: &HfSource,
    q: HfQuantize,
    out: &mut dyn Write,
    progress: ExportProgress<'_>,
) -> Result<ExportSummary, HfConvertError> {
    check_container(q.scheme, ExportKind::Gguf)?;
    let ck = src.checkpoint;
    let json = ck.config.as_ref().ok_or(ModelError::NoHfConfig)?;
    let c = Config::from_hf_config(json)?;
    check_tensor_names(&c, ck)?;
    let tokenizer = hf_vocab::tokenizer_metadata(json, c.vocab_size, src.tokenizer)?;

    let specs = llama_tensors(&c);
    let shape = ModelShape::from_names(
        specs.iter().map(|s| s.gguf.as_str()),
        c.n_layers as u32,
        c.n_heads as u32,
        c.n_kv_heads as u32,
    );
    let mut summary = ExportSummary::default();
    let mut plan = Vec::with_capacity(specs.len());
    for spec in specs {
        let input = ck.tensor(&spec.hf).ok_or_else(|| ModelError::MissingTensor { name: spec.hf.clone() })?;
        if input.shape != spec.shape {
            return Err(ModelError::BadTensorShape {
                name: spec.hf.clone(),
                expected: spec.shape,
                got: input.shape.clone(),
            }
            .into());
        }
        let stored = float_type(input)?;
        let action = if spec.shape.len() == 1 {
            match stored {
                GgmlType::F32 => Action::Copy,
                _ => Action::Quantize(QuantScheme::ggml(GgmlType::F32)),
            }
        } else {
            let facts = TensorFacts {
                name: &spec.gguf,
                n_dims: spec.shape.len(),
                row_len: spec.shape[1] as u64,
                decodable: true,
                plain_float: true,
                stored: Some(stored),
            };
            let d = q.policy.decide_in(&facts, q.scheme, Some(&shape));
            summary.notes.extend(d.note);
            d.action
        };
        summary.before.add(stored.to_string(), input.n_elements() as u64, input.n_bytes() as u64);
        plan.push(Planned { spec, input, stored, action });
    }

    let werr = |e: GgufWriteError| HfConvertError::Export(ExportError::Write(e.to_string()));
    let target = q.scheme.ggml_type().expect("checked: a GGUF output has a ggml type");
    let ftype = match q.policy.mix {
        TypeMix::LlamaCpp(ft) => ft.id(),
        TypeMix::Pure => llama_ftype(target).expect("every producible ggml type has an ftype"),
    };
    let n_params: u64 = plan.iter().map(|p| p.input.n_elements() as u64).sum();
    let mut gw = GgufWriter::new();
    for (k, v) in model_metadata(json, &c, src.name, n_params, ftype) {
        gw.set(&k, v).map_err(werr)?;
    }
    for (k, v) in tokenizer {
        gw.set(&k, v).map_err(werr)?;
    }
    for p in &plan {
        let ty = match &p.action {
            Action::Copy => p.stored,
            Action::Quantize(s) => s.ggml_type().expect("a ggml target falls back to ggml types"),
            Action::ToF16 => GgmlType::F16,
        };
        let dims: Vec<u64> = p.spec.shape.iter().rev().map(|&d| d as u64).collect();
        let info = gw.add_tensor(&p.spec.gguf, &dims, ty).map_err(werr)?;
        summary.after.add(ty.to_string(), info.n_elements(), info.n_bytes());
    }

    let mut log = SaturationLog::new(q.saturation);
    let total = plan.len();
    let method = q.method;
    let tensor_bytes = |i: usize| -> Result<Vec<u8>, ExportError> {
        let p = &plan[i];
        let cols = *p.spec.shape.last().expect("tensors have a dimension");
        let rows = p.input.n_elements() / cols;
        let bytes = p.spec.order.apply(ck.raw(p.input), cols * p.stored.type_size());
        let out = match &p.action {
            Action::Copy => bytes.into_owned(),
            Action::Quantize(s) => {
                let mut values = vec![0f32; p.input.n_elements()];
                dequantize_row(p.stored, &bytes, &mut values)
                    .map_err(|e| ExportError::Tensor(format!("tensor '{}': {e}", p.spec.hf)))?;
                drop(bytes);
                let shape = TensorShape::new(rows, cols);
                match quantize_named_with(&p.spec.gguf, s, &values, shape, &mut log, &mut *method)? {
                    QuantizedTensor::Ggml(g) => g.data,
                    _ => unreachable!("ggml schemes give ggml tensors"),
                }
            }
            Action::ToF16 => unreachable!("the policy keeps plain floats it cannot quantize"),
        };
        if !progress(i + 1, total, &p.spec.gguf) {
            return Err(ExportError::Cancelled { done: i + 1, total });
        }
        Ok(out)
    };
    summary.bytes_written = write_gguf(&gw, out, tensor_bytes)?;
    summary.saturated = log;
    Ok(summary)
}

/// The `general.*` and `llama.*` keys in convert_hf_to_gguf.py's order (module docs).
fn model_metadata(json: &Value, c: &Config, name: &str, n_params: u64, ftype: u32) -> Vec<(String, MetadataValue)> {
    let u = |n: usize| MetadataValue::U32(u32::try_from(n).unwrap_or(u32::MAX));
    let s = |t: &str| MetadataValue::String(t.to_string());
    let present = |v: Option<&Value>| v.is_some_and(|v| !v.is_null());
    let rope_theta_given = present(json.get("rope_theta"))
        || ["rope_parameters", "rope_scaling"].iter().any(|k| present(json.get(k).and_then(|p| p.get("rope_theta"))));
    let mut m: Vec<(&str, MetadataValue)> = vec![
        ("general.architecture", s("llama")),
        ("general.type", s("model")),
        ("general.name", s(name)),
        ("general.size_label", s(&size_label(n_params))),
        ("llama.block_count", u(c.n_layers)),
        ("llama.context_length", u(c.seq_len)),
        ("llama.embedding_length", u(c.dim)),
        ("llama.feed_forward_length", u(c.hidden_dim)),
        ("llama.attention.head_count", u(c.n_heads)),
    ];
    if present(json.get("num_key_value_heads")) {
        m.push(("llama.attention.head_count_kv", u(c.n_kv_heads)));
    }
    if rope_theta_given {
        m.push(("llama.rope.freq_base", MetadataValue::F32(c.rope_theta)));
    }
    m.push(("llama.attention.layer_norm_rms_epsilon", MetadataValue::F32(c.rms_eps)));
    if present(json.get("head_dim")) {
        m.push(("llama.attention.key_length", u(c.head_dim)));
        m.push(("llama.attention.value_length", u(c.head_dim)));
    }
    m.push(("general.file_type", MetadataValue::U32(ftype)));
    m.push(("llama.vocab_size", u(c.vocab_size)));
    m.push(("llama.rope.dimension_count", u(c.rope_dim)));
    m.push(("general.quantization_version", MetadataValue::U32(GGML_QNT_VERSION)));
    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// gguf-py's `size_label` for a dense model: the parameter count in K/M/B/T with at least two
/// significant digits ("107K", "1.2B", "135M").
pub fn size_label(n_params: u64) -> String {
    let n = n_params as f64;
    let (scaled, suffix) = match n {
        _ if n > 1e12 => (n * 1e-12, "T"),
        _ if n > 1e9 => (n * 1e-9, "B"),
        _ if n > 1e6 => (n * 1e-6, "M"),
        _ => (n * 1e-3, "K"),
    };
    // Digits of the rounded value (0 has none), as gguf-py counts them.
    let rounded = scaled.round_ties_even() as u64;
    let digits = if rounded == 0 { 0 } else { rounded.to_string().len() };
    format!("{scaled:.prec$}{suffix}", prec = 2usize.saturating_sub(digits))
}

#[cfg(test)]
mod tests {
    use super::size_label;

    #[test]
    fn size_labels_as_gguf_py() {
        assert_eq!(size_label(106_816), "107K");
        assert_eq!(size_label(134_515_008), "135M");
        assert_eq!(size_label(1_235_814_400), "1.2B");
        assert_eq!(size_label(6_738_415_616), "6.7B");
        assert_eq!(size_label(500), "0.50K");
    }
}
