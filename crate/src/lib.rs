//! quantlab core: read LLM checkpoints, quantize them in every common format, measure the
//! damage, and run the kernels on the GPU through wgpu (Vulkan natively, WebGPU in the browser).
//!
//! Where things live:
//! - [`formats`]: ggml's tensor types and one module per format family, each with a plain
//!   reference quantizer / dequantizer (`quantize_ref` / `dequantize_ref`). Depends on no
//!   other module of the crate.
//! - [`gguf`]: the GGUF container (header reader, metadata).
//! - [`policy`]: which tensors a quantization run quantizes, and the fallbacks.
//! - [`io`]: GGUF and safetensors writers and readers, and the re-quantizing export.
//! - [`model`]: the CPU reference forward pass, evaluation and in-memory re-quantization.
//! - [`calib`]: calibration runs: every linear layer's inputs over calibration text, summed
//!   into the statistics the data-driven quantizers use.
//! - [`tokenizer`]: the GGUF / Hugging Face tokenizers.
//! - [`stats`]: histograms and weight statistics the lab draws.
//! - [`gpu`]: the wgpu device (acquired once, injected) and the WGSL kernels from `shaders/`.
//! - `bindings` (wasm32 only): the `#[wasm_bindgen]` surface used by the web lab.
//! - [`cli`] (native only): the `quantlab` command.

pub mod calib;
pub mod error;
pub mod formats;
pub mod gguf;
pub mod io;
pub mod methods;
pub mod model;
pub mod policy;
pub mod recipe;
pub mod stats;
pub mod tokenizer;

#[cfg(feature = "gpu")]
pub mod gpu;

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;

#[cfg(target_arch = "wasm32")]
mod bindings;
