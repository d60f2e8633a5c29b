//! The GGUF container. PLACEHOLDER (being filled in).
pub mod tensor_type;
pub use tensor_type::{GgmlType, TypeIdError, ALL_TYPES};
