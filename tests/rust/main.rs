//! Integration tests of the quantlab crate (one binary; each area is a module).
mod bnb;
mod cli;
mod cli_kv_cache;
mod cli_quantize;
mod formats;
mod forward;
mod gguf;
#[cfg(feature = "gpu")]
mod gpu;
#[cfg(feature = "gpu")]
mod gpu_forward;
#[cfg(feature = "gpu")]
mod gpu_kv_cache;
#[cfg(feature = "gpu")]
mod gpu_matmul;
mod int_fp8;
mod io;
mod kquants;
mod stats;
mod tokenizer;
mod fast_quant;
mod fixtures;
mod model_quant;
mod generate;
mod hf_load;
mod eval;
mod runtime;
mod activations;
mod quant_report;
