//! A GGUF LLaMA model quantized to an integer grid, written as a Hugging Face checkpoint that
//! transformers loads pre-quantized: `model.safetensors` in the GPTQ or AWQ layout
//! ([`crate::io::gptq_layout`]) and a `LlamaForCausalLM` `config.json` with its
//! `quantization_config`.
//!
//! - What is quantized: the seven linear layers of every block (q/k/v/o, gate/up/down), each in
//!   the requested group scheme through the given [`TensorMethod`] (round to nearest, or the
//!   result of a GPTQ/AWQ/HQQ calibration), as GPTQ and AWQ tools quantize them. The token
//!   embedding and an untied `lm_head` are written F16 and the norms F32, from the GGUF
//!   model's own (dequantized) values; AutoGPTQ/AutoAWQ keep them in the model's float dtype.
//!   One group size serves the whole model (the config has one), so it must divide every
//!   linear's input count: there is no per-tensor fallback here.
//! - Names and rows: HF names ([`llama_tensors`]: `model.layers.N.self_attn.q_proj`, …), and
//!   llama.cpp's q/k row permutation undone ([`RowOrder::gguf_rows`]). Rows are output channels,
//!   so the permutation moves whole columns of `qweight`, `scales` and `qzeros`; codes and
//!   groups are unchanged, since groups run along inputs.
//! - config.json: the hyper-parameters [`Config::from_hf_config`] reads back, `torch_dtype`
//!   float16, the tokenizer's BOS/EOS ids when the GGUF names them.

use std::collections::{BTreeMap, HashMap};

use half::f16;
use safetensors::Dtype;
use serde_json::{json, Value};

use super::hf::{llama_tensors, LlamaTensor};
use super::{Config, ModelError};
use crate::formats::saturation::Saturation;
use crate::formats::{dequantize_row, QuantScheme, QuantizedTensor, TensorShape};
use crate::gguf::{GgufFile, TensorInfo};
use crate::io::export::{quantize_named_with, ExportError, ExportProgress, SaturationLog, TensorMethod};
use crate::io::gptq_layout::{self, DescAct, IntLinear, Layout, LayoutError};
use crate::io::safetensors::{self as st, Entry, SafetensorsError};

/// Why a model could not be written in a layout.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HfLayoutError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Safetensors(#[from] SafetensorsError),
    #[error(
        "tensor '{tensor}': {cols} inputs are not a multiple of the group size {group}; the {layout} layout has one \
         group size for the whole model, so pick one dividing every linear's input count"
    )]
    GroupSize { tensor: String, cols: usize, group: usize, layout: Layout },
    #[error("tensor '{tensor}': value {value} at index {index} exceeds the f16 range this layout stores it in")]
    F16Overflow { tensor: String, index: usize, value: f32 },
    #[error(
        "the model rotates {rope_dim} of each head's {head_dim} dimensions; LlamaForCausalLM rotates whole heads, so \
         transformers would compute another model"
    )]
    PartialRope { rope_dim: usize, head_dim: usize },
    #[error("tensor '{tensor}': the method returned {got}, not integer codes")]
    NotIntCodes { tensor: String, got: String },
}

/// What to write: the layout, the scheme of every linear, and how columns were ordered.
#[derive(Debug, Clone, Copy)]
pub struct LayoutOptions {
    pub layout: Layout,
    pub scheme: QuantScheme,
    pub desc_act: DescAct,
}

/// The written checkpoint: the two files' bytes and what went into them.
pub struct HfLayoutCheckpoint {
    /// `model.safetensors`.
    pub safetensors: Vec<u8>,
    /// `config.json` (pretty-printed, with a final newline).
    pub config: String,
    /// Linear layers written quantized, and tensors kept in float.
    pub quantized: usize,
    pub kept: usize,
}

/// The GGUF name and scheme of every linear the layout quantizes (for a calibration run, which
/// must quantize exactly these).
pub fn layout_schemes(gguf: &[u8], scheme: &QuantScheme) -> Result<BTreeMap<String, QuantScheme>, HfLayoutError> {
    let f = GgufFile::parse(gguf, gguf.len() as u64).map_err(ModelError::from)?;
    let c = Config::from_gguf(&f)?;
    Ok(llama_tensors(&c).into_iter().filter(is_block_linear).map(|t| (t.gguf, *scheme)).collect())
}

fn is_block_linear(t: &LlamaTensor) -> bool {
    t.shape.len() == 2 && t.hf.starts_with("model.layers.")
}

/// The Hugging Face `config.json` of a model with `c`, holding `quantization`.
pub fn llama_config(c: &Config, f: &GgufFile, quantization: Value) -> Value {
    let mut j = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": c.dim,
        "intermediate_size": c.hidden_dim,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "max_position_embeddings": c.seq_len,
        "rms_norm_eps": shortest(c.rms_eps),
        "rope_theta": shortest(c.rope_theta),
        "vocab_size": c.vocab_size,
        "tie_word_embeddings": c.tied_embeddings,
        "hidden_act": "silu",
        "attention_bias": false,
        "mlp_bias": false,
        "torch_dtype": "float16",
    });
    for (key, gguf_key) in
        [("bos_token_id", "tokenizer.ggml.bos_token_id"), ("eos_token_id", "tokenizer.ggml.eos_token_id")]
    {
        if let Some(id) = f.get_u64(gguf_key) {
            j[key] = json!(id);
        }
    }
    j["quantization_config"] = quantization;
    j
}

/// The f64 with the f32's shortest decimal form (1e-5, not the f32's exact 9.99999974e-6), as
/// config.json files write these numbers.
fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// Writes the GGUF model `gguf` as a Hugging Face checkpoint in `opts.layout`, the linears
/// quantized by `method`; `progress` is called after each tensor (false cancels).
pub fn export_hf_layout(
    gguf: &[u8],
    opts: &LayoutOptions,
    method: &mut dyn TensorMethod,
    progress: ExportProgress<'_>,
) -> Result<HfLayoutCheckpoint, HfLayoutError> {
    let (bits, group, symmetric) = gptq_layout::check_scheme(&opts.scheme, opts.layout)?;
    let f = GgufFile::parse(gguf, gguf.len() as u64).map_err(ModelError::from)?;
    if f.get_u64("split.count").is_some_and(|n| n > 1) {
        return Err(ExportError::SplitGguf.into());
    }
    let c = Config::from_gguf(&f)?;
    if c.rope_dim != c.head_dim {
        return Err(HfLayoutError::PartialRope { rope_dim: c.rope_dim, head_dim: c.head_dim });
    }
    let specs = llama_tensors(&c);
    let mut found = Vec::with_capacity(specs.len());
    for spec in &specs {
        let t = f.tensors.iter().find(|t| t.name == spec.gguf);
        let t = t.ok_or_else(|| ModelError::MissingTensor { name: spec.gguf.clone() })?;
        let got: Vec<usize> = t.torch_shape().iter().map(|&d| d as usize).collect();
        if got != spec.shape {
            return Err(
                ModelError::BadTensorShape { name: spec.gguf.clone(), expected: spec.shape.clone(), got }.into()
            );
        }
        if is_block_linear(spec) && !spec.shape[1].is_multiple_of(group) {
            let (tensor, cols, layout) = (spec.gguf.clone(), spec.shape[1], opts.layout);
            return Err(HfLayoutError::GroupSize { tensor, cols, group, layout });
        }
        found.push(t);
    }

    let mut log = SaturationLog::new(Saturation::Refuse);
    let mut entries: Vec<Entry> = Vec::new();
    let (mut quantized, mut kept) = (0, 0);
    let total = specs.len();
    for (i, (spec, t)) in specs.iter().zip(found).enumerate() {
        let values = decode(&f, gguf, t)?;
        if is_block_linear(spec) {
            let shape = TensorShape::new(spec.shape[0], spec.shape[1]);
            let q = quantize_named_with(&spec.gguf, &opts.scheme, &values, shape, &mut log, &mut *method)?;
            let QuantizedTensor::Int(int) = &q else {
                return Err(HfLayoutError::NotIntCodes { tensor: spec.gguf.clone(), got: q.scheme().name() });
            };
            let linear = IntLinear::from_int_tensor(&spec.gguf, int)?.reorder_rows(&spec.order.gguf_rows(shape.rows));
            let prefix = spec.hf.strip_suffix(".weight").unwrap_or(&spec.hf);
            entries.extend(linear.entries(opts.layout, prefix)?);
            quantized += 1;
        } else if spec.shape.len() == 1 {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            entries.push((spec.hf.clone(), Dtype::F32, spec.shape.clone(), bytes));
            kept += 1;
        } else {
            entries.push((spec.hf.clone(), Dtype::F16, spec.shape.clone(), f16_bytes(&spec.gguf, &values)?));
            kept += 1;
        }
        if !progress(i + 1, total, &spec.gguf) {
            return Err(ExportError::Cancelled { done: i + 1, total }.into());
        }
    }
    let mut meta: HashMap<String, String> = st::quantlab_metadata(&opts.scheme.name());
    // transformers reads safetensors files marked as PyTorch's.
    meta.insert("format".into(), "pt".into());
    let safetensors = st::serialize(&entries, meta)?;
    let quantization = gptq_layout::quantization_config(opts.layout, bits, group, symmetric, opts.desc_act);
    let config =
        serde_json::to_string_pretty(&llama_config(&c, &f, quantization)).expect("JSON values serialize") + "\n";
    Ok(HfLayoutCheckpoint { safetensors, config, quantized, kept })
}

fn decode(f: &GgufFile, file: &[u8], t: &TensorInfo) -> Result<Vec<f32>, HfLayoutError> {
    let raw = f.tensor_data(file, t).map_err(ExportError::from)?;
    let mut v = vec![0f32; t.n_elements() as usize];
    dequantize_row(t.ty, raw, &mut v).map_err(|e| ExportError::Tensor(format!("tensor '{}': {e}", t.name)))?;
    Ok(v)
}

/// The values as f16 bytes; a finite value beyond f16's range (or a NaN) is an error.
fn f16_bytes(name: &str, values: &[f32]) -> Result<Vec<u8>, HfLayoutError> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for (index, &value) in values.iter().enumerate() {
        let h = f16::from_f32(value);
        if !h.is_finite() {
            return Err(HfLayoutError::F16Overflow { tensor: name.to_string(), index, value });
        }
        out.extend_from_slice(&h.to_le_bytes());
    }
    Ok(out)
}
