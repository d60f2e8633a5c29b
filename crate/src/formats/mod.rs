//! Weight formats: one module per family, each with a readable reference implementation.
//! PLACEHOLDER (being filled in): only the dispatch signature is fixed here.

use crate::gguf::GgmlType;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("dequantizing {0} is not supported yet")]
    Unsupported(GgmlType),
    #[error("{ty}: {n_values} values are not a whole number of {block}-value blocks")]
    NotWholeBlocks { ty: GgmlType, n_values: usize, block: usize },
    #[error("{ty}: expected {expected} bytes for {n_values} values, got {got}")]
    WrongByteCount { ty: GgmlType, n_values: usize, expected: usize, got: usize },
}

/// Decodes `dst.len()` values of type `ty` from `src` (which must hold exactly that many).
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError> {
    let (block, bytes) = ty.block_layout();
    if dst.len() % block != 0 {
        return Err(FormatError::NotWholeBlocks { ty, n_values: dst.len(), block });
    }
    let expected = dst.len() / block * bytes;
    if src.len() != expected {
        return Err(FormatError::WrongByteCount { ty, n_values: dst.len(), expected, got: src.len() });
    }
    match ty {
        GgmlType::F32 => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            }
            Ok(())
        }
        _ => Err(FormatError::Unsupported(ty)),
    }
}
