//! The CPU reference forward pass of a LLaMA-architecture model, in the spirit of llama2.c's
//! `run.c`: one plain function, readable top to bottom, whose numbers the lab quotes
//! (perplexity, KL divergence between a model and its quantized copy).
//!
//! - [`config`]: [`Config`], the hyper-parameters read from GGUF metadata.
//! - [`weights`]: [`Weights`], every matrix kept in its stored format ([`Matrix`]) with a
//!   matrix-vector product computed on the packed blocks, so a 4-bit model takes about 4-bit
//!   memory ([`Weights::resident_bytes`] ≈ the file's tensor bytes).
//! - [`hf`]: the same from a Hugging Face `config.json` + safetensors checkpoint
//!   ([`Model::from_hf_checkpoint`]), q/k rows permuted to the GGUF RoPE layout.
//! - [`forward`]: [`State`] (activations and KV cache) and [`forward()`] (one token → logits);
//!   [`forward_observed`] also shows every linear layer's input.
//! - [`kv_cache`]: the KV cache in f32, f16, int8, int4 or fp8 ([`KvType`]; `State::with_kv`),
//!   quantized when a position is written, dequantized when attention reads it.
//! - [`forward_batch`]: a block of positions at once ([`forward_batch()`]), bit-identical to
//!   [`forward()`] position by position and much faster: each packed weight row is decoded once
//!   per block ([`Matrix::matmul_threads`]). Evaluation and prompt prefill use it.
//! - [`act_quant`]: activation quantization of every linear layer's input (INT8, INT4, FP8;
//!   per-token, per-tensor dynamic or static scales; `State::act`), simulated in f32.
//! - [`llm_int8`]: LLM.int8() (`llm-int8` activations, int8 vector-wise weights).
//! - [`int_path`]: integer dot products in the forward (`State::matmul`, [`MatmulPath`]).
//! - [`activations`]: per-input-channel activation absmax/RMS over a calibration text.
//!
//! ```no_run
//! # fn main() -> Result<(), quantlab::model::ModelError> {
//! use quantlab::model::{forward, Model, State};
//! let bytes = std::fs::read("models/SmolLM2-135M-Instruct.Q4_1.gguf").unwrap();
//! let model = Model::from_gguf_bytes(&bytes)?;
//! let mut state = State::new(&model.config, 256);
//! for (pos, &token) in [1u32, 504, 3458].iter().enumerate() {
//!     let logits = forward(&model.config, &model.weights, &mut state, token, pos);
//!     println!("{pos}: {} logits", logits.len());
//! }
//! # Ok(()) }
//! ```
//!
//! Only `general.architecture = "llama"` is supported (LLaMA 1/2, TinyLlama, SmolLM, Mistral
//! without sliding window, ... — anything llama.cpp converts as `llama` without extra tensors);
//! anything else, or a llama file with tensors this forward would ignore (biases, rope
//! frequency factors, experts), is refused with a [`ModelError`] rather than computed wrongly.

pub mod act_quant;
pub mod activations;
pub mod config;
pub mod eval;
mod eval_score;
mod eval_source;
mod eval_stats;
pub mod forward;
pub mod forward_batch;
mod gemm;
pub mod generate;
pub mod hf;
pub mod hf_gguf;
pub mod hf_layout;
pub mod hf_vocab;
pub mod int8_dot;
pub mod int_path;
mod kernels;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod kernels_simd128;
pub mod kv_cache;
pub mod llm_int8;
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod pool;
#[cfg(target_arch = "wasm32")]
#[path = "pool_wasm.rs"]
pub(crate) mod pool;
pub mod quantize;
pub mod sampler;
pub mod sensitivity;
pub mod tasks;
pub mod weights;

pub use crate::policy::TensorPolicy;
pub use act_quant::{ActGranularity, ActHead, ActQuant, ActQuantError, ActQuantizer, ActRanges, ActType};
pub use config::Config;
pub use forward::{forward, forward_observed, rmsnorm, rope, softmax, try_forward, LinearInput, State};
pub use forward_batch::{
    forward_batch, forward_batch_observed, try_forward_batch, ActivationObserver, BatchLogits, BatchState, Block,
};
pub use int_path::{MatmulPath, OutlierCount, PathStats};
pub use kv_cache::{KvCache, KvType, KvTypeError};
pub use quantize::{planned_schemes, quantize_model, quantize_model_with, QuantReport, TensorQuantReport};
pub use sampler::{Rng, Sampler, SamplerConfig};
pub use weights::{Matrix, Weights};

use crate::formats::{GgmlType, QuantError};
use crate::gguf::{GgufError, GgufFile};

/// Architectures [`Config::from_gguf`] accepts (`general.architecture`).
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// Why a model cannot be loaded or run, worded for the person who picked the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Gguf(#[from] GgufError),

    #[error("unsupported model architecture {}: the CPU forward supports {}", found.as_deref().map_or("(general.architecture is missing)".to_string(), |a| format!("'{a}'")), SUPPORTED_ARCHITECTURES.join(", "))]
    UnsupportedArchitecture { found: Option<String> },

    #[error("metadata key '{key}' is missing (needed by the forward pass)")]
    MissingMetadata { key: String },

    #[error("metadata key '{key}' is invalid: {reason}")]
    BadMetadata { key: String, reason: String },

    #[error("tensor '{name}' is missing")]
    MissingTensor { name: String },

    #[error("tensor '{name}' has shape {got:?} (ggml order), expected {expected:?}")]
    BadShape { name: String, expected: Vec<u64>, got: Vec<u64> },

    #[error("tensor '{name}' has shape {got:?}, expected {expected:?} (PyTorch order: [rows, cols])")]
    BadTensorShape { name: String, expected: Vec<usize>, got: Vec<usize> },

    #[error("unsupported Hugging Face model ({found}): the CPU forward supports {} (model_type \"llama\")", hf::SUPPORTED_HF_ARCHITECTURES.join(", "))]
    UnsupportedHfArchitecture { found: String },

    #[error("config.json: '{key}' {reason}")]
    HfConfig { key: String, reason: String },

    #[error("no config.json next to the safetensors checkpoint (a Hugging Face model directory needs it for the hyper-parameters)")]
    NoHfConfig,

    #[error("{file}: '{key}' {reason}")]
    HfTokenizer { file: String, key: String, reason: String },

    #[error(
        "{file}: '{key}' {reason}: converting to GGUF supports a byte-level BPE tokenizer.json (ByteLevel \
         pre-tokenizer, optionally after single digits) only"
    )]
    UnsupportedHfTokenizer { file: String, key: String, reason: String },

    #[error("no tokenizer.json next to the checkpoint: a GGUF model carries its tokenizer, so converting needs it")]
    NoHfTokenizer,

    #[error(transparent)]
    Safetensors(#[from] crate::io::SafetensorsError),

    #[error("tensor '{name}' has type {ty}, which the forward pass cannot read")]
    UnsupportedTensorType { name: String, ty: GgmlType },

    #[error("tensor '{name}' is not used by the llama forward pass ({reason}); refusing to compute a different model")]
    UnexpectedTensor { name: String, reason: String },

    #[error("token id {token} is out of range (vocabulary size {vocab_size})")]
    TokenOutOfRange { token: u32, vocab_size: usize },

    #[error(
        "the tokenizer has {tokenizer} tokens but the embedding (token_embd) has only {embedding_rows} rows: \
         token ids past the embedding cannot be run; the tokenizer does not belong to this model"
    )]
    VocabExceedsEmbedding { tokenizer: usize, embedding_rows: usize },

    #[error("position {pos} is beyond the state's capacity of {capacity} positions")]
    PositionOutOfRange { pos: usize, capacity: usize },

    #[error("{0} is not implemented yet")]
    NotImplemented(String),

    #[error(transparent)]
    Quant(#[from] QuantError),

    #[error("tensor '{name}': {source}")]
    QuantizeTensor { name: String, source: QuantError },
    /// A quantization method other than the format's own rounding failed on a tensor
    /// (`reason` names the tensor, as [`crate::io::export::TensorMethod`]'s errors do).
    #[error("{reason}")]
    QuantizeMethod { name: String, reason: String },
    /// The GPU forward failed (device lost, a limit, a missing feature): kept whole so callers
    /// see the GPU's own error kind.
    #[cfg(feature = "gpu")]
    #[error("the GPU forward failed: {0}")]
    Gpu(Box<crate::gpu::forward::GpuModelError>),
}

/// A loaded model: hyper-parameters and weights.
#[derive(Debug, Clone)]
pub struct Model {
    pub config: Config,
    pub weights: Weights,
}

impl Model {
    /// Parses a whole GGUF file held in memory (or memory-mapped) and loads it. The tensor
    /// bytes are copied once, in their stored format.
    pub fn from_gguf_bytes(file: &[u8]) -> Result<Model, ModelError> {
        let gguf = GgufFile::parse(file, file.len() as u64)?;
        Model::from_gguf(&gguf, file)
    }

    /// Loads from a parsed header and the whole file's bytes.
    pub fn from_gguf(gguf: &GgufFile, file: &[u8]) -> Result<Model, ModelError> {
        let config = Config::from_gguf(gguf)?;
        let weights = Weights::from_gguf(&config, gguf, file)?;
        Ok(Model { config, weights })
    }

    /// Errors unless every id of a tokenizer of `tokenizer_vocab` tokens has an embedding row
    /// (a larger embedding is fine: checkpoints pad it). Loaders call this once, so a mismatched
    /// tokenizer is a load error rather than an out-of-range id in the middle of a run.
    pub fn check_tokenizer_vocab(&self, tokenizer_vocab: usize) -> Result<(), ModelError> {
        if tokenizer_vocab > self.config.vocab_size {
            return Err(ModelError::VocabExceedsEmbedding {
                tokenizer: tokenizer_vocab,
                embedding_rows: self.config.vocab_size,
            });
        }
        Ok(())
    }
}
