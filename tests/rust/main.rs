//! Integration tests of the quantlab crate (one binary; each area is a module).
mod formats;
mod cli;
mod gguf;
