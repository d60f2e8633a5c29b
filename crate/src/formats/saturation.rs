//! Blocks whose scale does not fit its storage type, found after encoding.
//!
//! Such a block decodes wrong while everything else looks fine, so exports refuse it by default
//! ([`Saturation::Refuse`]). Two cases exist:
//! - INT group-wise schemes store group scales as f16: a scale above 65504 is clamped to it
//!   ([`IntTensor::saturated_groups`](super::int::IntTensor::saturated_groups)), so every weight
//!   of the group decodes too small;
//! - formats whose stored scale becomes infinite or NaN (the ggml types keep `d`, `dmin` as f16,
//!   so weights above about 65504·qmax give an infinite scale; plain F16 overflows the same
//!   way) decode to non-finite values, which a row-by-row decode finds without knowing each
//!   block layout. The byte-exact ggml ports are left untouched: the check looks at their output.
//!
//! bitsandbytes (f32 absmax) and FP8 (f32 scales) have no overflow for finite inputs; the
//! decode check covers them anyway.

use super::quantized::{QuantError, QuantizedTensor, TensorShape};

/// What to do with a block whose scale overflowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Saturation {
    /// An error naming the tensor and the block.
    #[default]
    Refuse,
    /// Keep the (wrong) block and count it.
    Allow,
}

/// Blocks of one tensor whose scale overflowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    /// How many blocks.
    pub blocks: usize,
    /// The first one (blocks run over the row-major tensor in `block_len` values).
    pub first_block: usize,
    pub block_len: usize,
}

/// The blocks of `q` whose stored scale overflowed, or `None`.
pub fn find_overflow(q: &QuantizedTensor) -> Result<Option<Overflow>, QuantError> {
    if let QuantizedTensor::Int(t) = q {
        return Ok(t.saturated_groups.first().map(|&first_block| Overflow {
            blocks: t.saturated_groups.len(),
            first_block,
            block_len: t.group_len,
        }));
    }
    let block_len = match q {
        QuantizedTensor::Ggml(t) => t.ty.block_size(),
        QuantizedTensor::Bnb4(t) => t.block(),
        QuantizedTensor::Fp8(t) => t.group_len,
        QuantizedTensor::Int(t) => t.group_len,
    }
    .max(1);
    let TensorShape { rows, cols } = q.shape();
    let mut row = vec![0f32; cols];
    let mut found: Option<Overflow> = None;
    let mut last_block = None;
    for r in 0..rows {
        q.dequantize_row(r, &mut row)?;
        for (c, x) in row.iter().enumerate() {
            let block = (r * cols + c) / block_len;
            if !x.is_finite() && last_block != Some(block) {
                last_block = Some(block);
                match &mut found {
                    Some(o) => o.blocks += 1,
                    None => found = Some(Overflow { blocks: 1, first_block: block, block_len }),
                }
            }
        }
    }
    Ok(found)
}
