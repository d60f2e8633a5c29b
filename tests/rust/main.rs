//! Integration tests of the quantlab crate (one binary; each area is a module).
mod cli;
mod formats;
mod gguf;
#[cfg(feature = "gpu")]
mod gpu;
mod int_fp8;
mod io;
mod cli_quantize;
mod kquants;
mod stats;
mod bnb;
mod forward;
mod tokenizer;
