//! bitsandbytes NF4/FP4 blockwise 4-bit quantization, with optional double quantization,
//! byte-exact with bitsandbytes' CPU implementation (checked against bitsandbytes 0.50.2 by the
//! goldens in tests/fixtures/bnb, made by scripts/dev/make_bnb_goldens.py), and export in the
//! safetensors layout Hugging Face transformers writes for bitsandbytes 4-bit weights.
//!
//! - [`tables`]: the NF4/FP4 code tables and the 8-bit dynamic map.
//! - [`reference`]: readable reference quantize/dequantize, double quantization.
//! - [`export`]: safetensors entries (`<name>`, `.absmax`, `.quant_map`, `.nested_absmax`,
//!   `.nested_quant_map`, `.quant_state.bitsandbytes__nf4`) and a parser back.

pub mod export;
pub mod reference;
pub mod tables;

pub use export::{
    from_safetensors_entries, python_float_repr, quant_state_json, safetensors_entries, BnbParseError, QuantStateJson,
};
pub use reference::{dequantize_ref, double_dequantize, double_quantize, quantize_ref, Bnb4Type, NestedAbsmax};

use super::scheme::{Granularity, QuantScheme, ValueType};
use super::tensor::{check_input, QuantError, TensorShape};

/// The per-block absmax values: plain f32, or double-quantized.
#[derive(Debug, Clone, PartialEq)]
pub enum BnbAbsmax {
    Plain(Vec<f32>),
    Nested(NestedAbsmax),
}

/// A tensor quantized to bitsandbytes NF4/FP4. Blocks run over the flattened row-major tensor;
/// the last block may be partial.
#[derive(Debug, Clone, PartialEq)]
pub struct Bnb4Tensor {
    pub scheme: QuantScheme,
    pub shape: TensorShape,
    /// Packed codes, `ceil(n / 2)` bytes, first element in the high nibble (odd `n`: the last
    /// low nibble is the code of 0.0, as bitsandbytes pads).
    pub packed: Vec<u8>,
    pub absmax: BnbAbsmax,
}

impl Bnb4Tensor {
    pub fn quantize(scheme: &QuantScheme, values: &[f32], shape: TensorShape) -> Result<Self, QuantError> {
        let ty = bnb_type(scheme)?;
        let block = block_size(scheme)?;
        check_input(scheme, values, shape)?;
        let (packed, absmax) = quantize_ref(ty, values, block);
        let absmax = match scheme.double_quant {
            None => BnbAbsmax::Plain(absmax),
            Some(nb) => BnbAbsmax::Nested(double_quantize(&absmax, nb as usize)),
        };
        Ok(Self { scheme: *scheme, shape, packed, absmax })
    }

    /// NF4 or FP4.
    pub fn ty(&self) -> Bnb4Type {
        match self.scheme.value {
            ValueType::Fp4 => Bnb4Type::Fp4,
            _ => Bnb4Type::Nf4,
        }
    }

    /// The block size (values per absmax).
    pub fn block(&self) -> usize {
        self.scheme.group_size().unwrap_or(64) as usize
    }

    /// Number of absmax blocks, `ceil(n / block)`.
    pub fn n_blocks(&self) -> usize {
        self.shape.len().div_ceil(self.block())
    }

    /// The f32 absmax of every block (dequantized from the nested state under double quant).
    pub fn absmax_f32(&self) -> Vec<f32> {
        match &self.absmax {
            BnbAbsmax::Plain(a) => a.clone(),
            BnbAbsmax::Nested(n) => double_dequantize(n),
        }
    }

    /// The reconstructed values (`table[code] * absmax`), row-major, bit-exact with bitsandbytes'
    /// `dequantize_4bit` on the CPU.
    pub fn dequantize(&self) -> Vec<f32> {
        dequantize_ref(self.ty(), &self.packed, &self.absmax_f32(), self.block(), self.shape.len())
    }

    /// The f32 absmax of one block (under double quantization, decoded from the nested state
    /// exactly as [`double_dequantize`] does).
    pub fn absmax_of(&self, block: usize) -> f32 {
        match &self.absmax {
            BnbAbsmax::Plain(a) => a[block],
            BnbAbsmax::Nested(n) => {
                let code = n.codes[block] as usize;
                f32::from_bits(tables::DYNAMIC_MAP_BITS[code]) * n.absmax[block / n.blocksize] + n.offset
            }
        }
    }

    /// Decodes row `row` into `out` (`out.len() == cols`), bit-identical to the same slice of
    /// [`Bnb4Tensor::dequantize`]. Blocks run over the flattened tensor: when `cols` is a
    /// multiple of the block each row is whole blocks; otherwise the blocks spanning the row
    /// (partial at either end) are decoded.
    ///
    /// Panics if `row >= rows` or `out` has the wrong length.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let cols = self.shape.cols;
        assert!(row < self.shape.rows && out.len() == cols, "row {row} of {:?} into {} values", self.shape, out.len());
        let (table, block, start) = (self.ty().table(), self.block(), row * cols);
        let mut i = 0;
        while i < cols {
            let b = (start + i) / block;
            let end = ((b + 1) * block - start).min(cols);
            let absmax = self.absmax_of(b);
            for (j, o) in out[i..end].iter_mut().enumerate() {
                let k = start + i + j;
                let code = if k % 2 == 0 { self.packed[k / 2] >> 4 } else { self.packed[k / 2] & 0x0f };
                *o = table[code as usize] * absmax;
            }
            i = end;
        }
    }

    /// The 16 values block `block` can represent (absmax × code table), index = code.
    pub fn levels(&self, block: usize) -> Vec<f32> {
        let absmax = self.absmax_f32()[block];
        self.ty().table().iter().map(|&c| c * absmax).collect()
    }

    /// The 4-bit code of every weight (unpacked, one per weight, row-major).
    pub fn codes(&self) -> Vec<u8> {
        reference::unpack(&self.packed, self.shape.len())
    }

    /// Stored bytes of the quantized data, the way bits-per-weight figures for bitsandbytes are
    /// usually quoted: the packed codes (`ceil(n / 2)`), plus either the f32 absmax (4 bytes a
    /// block) or, under double quantization, the 8-bit absmax codes (1 byte a block), the f32
    /// nested absmax (4 bytes per 256 blocks) and the f32 offset (4 bytes). So nf4-b64 is
    /// 4 + 32/64 = 4.5 bits per weight and nf4-b64-dq 4 + 8/64 + 32/(64·256) ≈ 4.127 (+ the
    /// offset). Not counted: the code tables (`quant_map`, 64 bytes; `nested_quant_map`,
    /// 1024 bytes), identical for every tensor, and the quant-state JSON, which transformers
    /// repeats per tensor; [`Bnb4Tensor::export_bytes`] counts those too.
    pub fn storage_bytes(&self) -> u64 {
        let codes = self.packed.len() as u64;
        codes
            + match &self.absmax {
                BnbAbsmax::Plain(a) => 4 * a.len() as u64,
                BnbAbsmax::Nested(n) => n.codes.len() as u64 + 4 * n.absmax.len() as u64 + 4,
            }
    }

    /// Every byte of the tensor data in the transformers/bitsandbytes safetensors export
    /// (codes, absmax, code tables, nested state, quant-state JSON), for a tensor named `name`.
    pub fn export_bytes(&self, name: &str) -> u64 {
        safetensors_entries(name, self).iter().map(|e| e.3.len() as u64).sum()
    }
}

fn bnb_type(scheme: &QuantScheme) -> Result<Bnb4Type, QuantError> {
    match scheme.value {
        ValueType::Nf4 => Ok(Bnb4Type::Nf4),
        ValueType::Fp4 => Ok(Bnb4Type::Fp4),
        _ => Err(QuantError::Scheme { scheme: scheme.name(), reason: "not an nf4/fp4 scheme".into() }),
    }
}

fn block_size(scheme: &QuantScheme) -> Result<usize, QuantError> {
    match scheme.granularity {
        Granularity::Group(b) if (32..=4096).contains(&b) && b.is_power_of_two() => Ok(b as usize),
        _ => Err(QuantError::Scheme {
            scheme: scheme.name(),
            reason: "nf4/fp4 need a power-of-two block size in 32..4096".into(),
        }),
    }
}
