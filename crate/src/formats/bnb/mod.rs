//! bitsandbytes NF4/FP4. PLACEHOLDER: the family's owner replaces this file (or turns it into a folder).

use super::quantized::{QuantError, TensorShape};
use super::scheme::QuantScheme;

#[derive(Debug, Clone, PartialEq)]
pub struct Bnb4Tensor {
    pub scheme: QuantScheme,
    pub shape: TensorShape,
}

impl Bnb4Tensor {
    pub fn quantize(scheme: &QuantScheme, _values: &[f32], _shape: TensorShape) -> Result<Self, QuantError> {
        Err(QuantError::NotImplemented(scheme.name()))
    }

    pub fn dequantize(&self) -> Vec<f32> {
        unreachable!("placeholder tensors are never constructed")
    }

    pub fn storage_bytes(&self) -> u64 {
        0
    }
}
