//! Integration tests of the quantlab crate (one binary; each area is a module).
mod act_quant;
mod activations;
mod awq;
mod bnb;
mod calib;
mod calib_sequential;
mod cli;
mod cli_act_quant;
mod cli_kv_cache;
mod cli_layout;
mod cli_malformed;
mod cli_output;
mod cli_quantize;
mod error_kind;
mod eval;
mod fast_quant;
mod fixtures;
mod formats;
mod forward;
mod forward_batch;
mod generate;
mod gguf;
mod gptq;
mod gptq_layout;
#[cfg(feature = "gpu")]
mod gpu;
#[cfg(feature = "gpu")]
mod gpu_activations_f16;
#[cfg(feature = "gpu")]
mod gpu_eval;
#[cfg(feature = "gpu")]
mod gpu_formats;
#[cfg(feature = "gpu")]
mod gpu_forward;
#[cfg(feature = "gpu")]
mod gpu_forward_kernels;
#[cfg(feature = "gpu")]
mod gpu_int8_dot4;
#[cfg(feature = "gpu")]
mod gpu_kv_cache;
#[cfg(feature = "gpu")]
mod gpu_matmul;
#[cfg(feature = "gpu")]
mod gpu_matmul_f16;
mod hf_convert;
mod hf_load;
mod hostile;
mod hqq;
mod imatrix_file;
mod imatrix_quants;
mod int8_dot;
mod int_fp8;
mod io;
mod kquants;
mod kv_cache;
mod layer_error;
mod llm_int8;
mod model_quant;
mod module_deps;
mod presets;
mod quant_report;
mod quantize_memory;
mod quantize_stream;
mod recipe;
mod registry;
mod runtime;
mod saturation;
mod stats;
mod tasks;
mod tokenizer;
