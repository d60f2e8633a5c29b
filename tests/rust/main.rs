//! Integration tests of the quantlab crate (one binary; each area is a module).
mod formats;
mod gpu;
mod cli;
mod gguf;
