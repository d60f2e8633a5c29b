//! Reading and writing checkpoint files.
//!
//! - [`gguf_writer`]: a GGUF v3 writer following llama.cpp's loader rules exactly (the reader
//!   lives in [`crate::gguf`]).
//! - [`safetensors`]: safetensors checkpoints (single file or sharded with an index), read as
//!   F32/F16/BF16 values, and written from plain or quantized tensors.
//! - [`safetensors_stream`]: a safetensors file written one tensor at a time (header first).
//! - [`export`]: a whole GGUF checkpoint re-quantized into a new GGUF/safetensors file written to
//!   any `Write` (`quantlab quantize` and the web lab's export share it).
//! - [`gptq_layout`]: an integer linear layer in AutoGPTQ's and AutoAWQ's safetensors layouts.

pub mod export;
pub mod gguf_writer;
pub mod gptq_layout;
pub mod imatrix;
pub mod safetensors;
pub mod safetensors_stream;

pub use gguf_writer::{llama_ftype, GgufWriteError, GgufWriter};
pub use safetensors::{Checkpoint, CheckpointTensor, Entry, SafetensorsError};
