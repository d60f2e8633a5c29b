//! FP8 E4M3 and E5M2 codes with an f32 scale per tensor or per output channel (row).
//!
//! # The two formats (one byte: sign, exponent, mantissa)
//!
//! | format | layout      | bias | max finite      | min normal | min subnormal | inf | NaN            |
//! |--------|-------------|------|-----------------|------------|---------------|-----|----------------|
//! | E4M3   | S.EEEE.MMM  | 7    | 448 (0x7E)      | 2^−6       | 2^−9          | no  | S.1111.111 only|
//! | E5M2   | S.EEEEE.MM  | 15   | 57344 (0x7B)    | 2^−14      | 2^−16         | yes (S.11111.00) | S.11111.{01,10,11} |
//!
//! E4M3 is the OCP "fn" variant (`float8_e4m3fn` in ml_dtypes / PyTorch): no infinities, one
//! NaN mantissa pattern per sign, so exponent 1111 with mantissa 000..110 are finite values
//! (256..448).
//!
//! # Encoding f32 → FP8 ([`encode_e4m3`], [`encode_e5m2`])
//!
//! Round to nearest, ties to even, directly from the f32 (one rounding, subnormals included);
//! ±0 keep their sign; NaN → NaN with the input's sign (0x7F/0xFF for E4M3, 0x7E/0xFE for
//! E5M2).
//!
//! - E4M3 **saturates**: a finite value whose rounded magnitude exceeds 448 becomes ±448
//!   (NVIDIA's `__NV_SATFINITE`, what scaled FP8 GEMMs assume). ±inf, which E4M3 cannot
//!   represent, become NaN (as ml_dtypes and PyTorch casts do).
//! - E5M2 follows IEEE: magnitudes rounding above 57344 become ±inf, ±inf stay ±inf (as
//!   ml_dtypes). [`encode_e5m2_saturating`] clamps finite values to ±57344 instead; the
//!   quantizer uses it (and by construction `|x / s| ≤ 57344` anyway).
//!
//! # Quantization ([`Fp8Tensor`])
//!
//! Per group (the tensor, or a row): `s = absmax / fmt_max` in f32 (`fmt_max` = 448 or 57344),
//! `code = encode_saturating(x / s)`, `x̂ = decode(code) · s`. An all-zero group gets `s = 0`,
//! codes for ±0 and reconstructs exactly. Storage: one byte per weight + 4 bytes (f32) per scale.

use std::sync::OnceLock;

use super::int::sort_unique;
use super::scheme::{Granularity, QuantScheme, ValueType};
use super::tensor::{check_input, group_index, QuantError, TensorShape};

/// The two FP8 variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fp8Format {
    E4M3,
    E5M2,
}

impl Fp8Format {
    /// Mantissa bits (3 or 2): the GPU kernel's `MANT_BITS` override.
    pub const fn mant_bits(self) -> u32 {
        match self {
            Fp8Format::E4M3 => 3,
            Fp8Format::E5M2 => 2,
        }
    }

    const fn bias(self) -> i32 {
        match self {
            Fp8Format::E4M3 => 7,
            Fp8Format::E5M2 => 15,
        }
    }

    /// Largest finite value (448 or 57344).
    pub const fn max(self) -> f32 {
        match self {
            Fp8Format::E4M3 => 448.0,
            Fp8Format::E5M2 => 57344.0,
        }
    }

    /// The magnitude code (sign bit clear) of the largest finite value.
    const fn max_code(self) -> u8 {
        match self {
            Fp8Format::E4M3 => 0x7E,
            Fp8Format::E5M2 => 0x7B,
        }
    }

    const fn nan_code(self) -> u8 {
        match self {
            Fp8Format::E4M3 => 0x7F,
            Fp8Format::E5M2 => 0x7E,
        }
    }

    /// The format of an FP8 value type.
    pub fn of(value: ValueType) -> Option<Self> {
        match value {
            ValueType::Fp8E4M3 => Some(Fp8Format::E4M3),
            ValueType::Fp8E5M2 => Some(Fp8Format::E5M2),
            _ => None,
        }
    }

    /// Decodes one byte exactly.
    pub fn decode(self, code: u8) -> f32 {
        match self {
            Fp8Format::E4M3 => decode_e4m3(code),
            Fp8Format::E5M2 => decode_e5m2(code),
        }
    }

    /// [`Self::decode`] of every code, computed once per process: the tensor decoders index it
    /// instead of calling `powi` per weight (same values, bit for bit).
    fn table(self) -> &'static [f32; 256] {
        static E4M3: OnceLock<[f32; 256]> = OnceLock::new();
        static E5M2: OnceLock<[f32; 256]> = OnceLock::new();
        let cell = match self {
            Fp8Format::E4M3 => &E4M3,
            Fp8Format::E5M2 => &E5M2,
        };
        cell.get_or_init(|| std::array::from_fn(|c| self.decode(c as u8)))
    }

    /// Encodes with saturation of finite out-of-range values to ±max.
    pub fn encode_saturating(self, x: f32) -> u8 {
        match self {
            Fp8Format::E4M3 => encode_e4m3(x),
            Fp8Format::E5M2 => encode_e5m2_saturating(x),
        }
    }
}

/// `v >> s` rounded to nearest, ties to even.
fn shr_rne(v: u64, s: u32) -> u64 {
    if s == 0 {
        return v;
    }
    if s >= 63 {
        return 0;
    }
    let q = v >> s;
    let rem = v & ((1u64 << s) - 1);
    let half = 1u64 << (s - 1);
    if rem > half || (rem == half && q & 1 == 1) {
        q + 1
    } else {
        q
    }
}

/// The rounded magnitude code of finite `|x|` with unlimited exponent range above (may exceed
/// the format's largest code; the caller saturates or maps to inf).
fn magnitude_code(a: f32, fmt: Fp8Format) -> u64 {
    let bits = a.to_bits() & 0x7FFF_FFFF;
    let ef = (bits >> 23) as i32;
    if ef == 0 {
        // Zero or an f32 subnormal (< 2^−126): far below half the smallest FP8 subnormal.
        return 0;
    }
    let m = fmt.mant_bits();
    let mant = u64::from(bits & 0x7F_FFFF);
    let e = ef - 127;
    let emin = 1 - fmt.bias();
    if e < emin {
        // Target subnormal: code = value / 2^(emin − m), rounded.
        let shift = (23 - m as i32 + (emin - e)) as u32;
        shr_rne(mant | 1 << 23, shift)
    } else {
        // Normal: biased exponent field above the mantissa; a rounding carry bumps the exponent.
        let combined = (((e - emin + 1) as u64) << 23) | mant;
        shr_rne(combined, 23 - m)
    }
}

/// f32 → E4M3 (fn): RNE, finite overflow saturates to ±448, ±inf and NaN → NaN.
pub fn encode_e4m3(x: f32) -> u8 {
    let fmt = Fp8Format::E4M3;
    let sign = ((x.to_bits() >> 31) as u8) << 7;
    if !x.is_finite() {
        return sign | fmt.nan_code();
    }
    let code = magnitude_code(x, fmt).min(u64::from(fmt.max_code())) as u8;
    sign | code
}

/// f32 → E5M2, IEEE-style: RNE, overflow → ±inf, NaN → NaN.
pub fn encode_e5m2(x: f32) -> u8 {
    let fmt = Fp8Format::E5M2;
    let sign = ((x.to_bits() >> 31) as u8) << 7;
    if x.is_nan() {
        return sign | fmt.nan_code();
    }
    if x.is_infinite() {
        return sign | 0x7C;
    }
    let code = magnitude_code(x, fmt).min(0x7C) as u8;
    sign | code
}

/// f32 → E5M2 with finite overflow saturating to ±57344 (±inf and NaN as [`encode_e5m2`]).
pub fn encode_e5m2_saturating(x: f32) -> u8 {
    if x.is_finite() {
        encode_e5m2(x.clamp(-57344.0, 57344.0))
    } else {
        encode_e5m2(x)
    }
}

fn decode_generic(code: u8, fmt: Fp8Format) -> f32 {
    let m = fmt.mant_bits();
    let sign = if code & 0x80 != 0 { -1.0f32 } else { 1.0 };
    let e = i32::from((code & 0x7F) >> m);
    let mant = f32::from(code & ((1 << m) - 1));
    let scale_m = (1u32 << m) as f32;
    let v = if e == 0 {
        mant / scale_m * 2f32.powi(1 - fmt.bias())
    } else {
        (1.0 + mant / scale_m) * 2f32.powi(e - fmt.bias())
    };
    sign * v
}

/// E4M3 (fn) → f32, exact. 0x7F / 0xFF are NaN.
pub fn decode_e4m3(code: u8) -> f32 {
    if code & 0x7F == 0x7F {
        return f32::NAN;
    }
    decode_generic(code, Fp8Format::E4M3)
}

/// E5M2 → f32, exact: exponent 11111 is ±inf (mantissa 0) or NaN.
pub fn decode_e5m2(code: u8) -> f32 {
    if code & 0x7C == 0x7C {
        let sign = if code & 0x80 != 0 { -1.0f32 } else { 1.0 };
        return if code & 0x03 == 0 { sign * f32::INFINITY } else { f32::NAN };
    }
    decode_generic(code, Fp8Format::E5M2)
}

/// The code of `x` in a group of scale `s` (`absmax / fmt_max`): `encode_saturating(x / s)`,
/// or ±0 (sign kept) for an all-zero group's `s = 0`. The weight quantizer and the FP8 KV cache
/// (`model::kv_cache`) share it.
pub fn encode_scaled(format: Fp8Format, x: f32, s: f32) -> u8 {
    if s == 0.0 {
        x.to_bits().wrapping_shr(24) as u8 & 0x80
    } else {
        format.encode_saturating(x / s)
    }
}

/// An FP8-quantized tensor: one code byte per weight, one f32 scale per tensor or row.
#[derive(Debug, Clone, PartialEq)]
pub struct Fp8Tensor {
    pub scheme: QuantScheme,
    pub shape: TensorShape,
    pub format: Fp8Format,
    /// Values per scale (the whole tensor or one row).
    pub group_len: usize,
    /// One FP8 byte per weight, row-major.
    pub data: Vec<u8>,
    /// One f32 scale per group (`absmax / fmt_max`; 0 for an all-zero group).
    pub scales: Vec<f32>,
}

impl Fp8Tensor {
    pub fn quantize(scheme: &QuantScheme, values: &[f32], shape: TensorShape) -> Result<Self, QuantError> {
        check_input(scheme, values, shape)?;
        let format = Fp8Format::of(scheme.value)
            .ok_or_else(|| QuantError::Scheme { scheme: scheme.name(), reason: "not an fp8 scheme".into() })?;
        let group_len = match scheme.granularity {
            Granularity::Channel => shape.cols,
            _ => shape.len(),
        };
        let n_groups = super::int::n_groups_for(values.len(), group_len);
        let mut scales = Vec::with_capacity(n_groups);
        let mut data = Vec::with_capacity(values.len());
        for g in 0..n_groups {
            let group = &values[(g * group_len).min(values.len())..((g + 1) * group_len).min(values.len())];
            let absmax = group.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
            let s = absmax / format.max();
            scales.push(s);
            data.extend(group.iter().map(|&x| encode_scaled(format, x, s)));
        }
        Ok(Self { scheme: *scheme, shape, format, group_len, data, scales })
    }

    /// `decode(code) · s`, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let table = self.format.table();
        self.data.iter().enumerate().map(|(i, &c)| table[usize::from(c)] * self.scales[self.group_of(i)]).collect()
    }

    /// Decodes row `row` into `out` (`out.len() == cols`), bit-identical to the same slice of
    /// [`Fp8Tensor::dequantize`] (a per-tensor scale spans every row).
    ///
    /// Panics if `row >= rows` or `out` has the wrong length.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let cols = self.shape.cols;
        assert!(row < self.shape.rows && out.len() == cols, "row {row} of {:?} into {} values", self.shape, out.len());
        let start = row * cols;
        let table = self.format.table();
        for (j, (o, &c)) in out.iter_mut().zip(&self.data[start..start + cols]).enumerate() {
            *o = table[usize::from(c)] * self.scales[self.group_of(start + j)];
        }
    }

    /// One stored FP8 byte per weight.
    pub fn codes(&self) -> Vec<u8> {
        self.data.clone()
    }

    pub fn n_groups(&self) -> usize {
        self.scales.len()
    }

    /// The group of flattened weight `index`.
    pub fn group_of(&self, index: usize) -> usize {
        group_index(index, self.group_len)
    }

    /// Every finite code's value times the group's scale, ascending, without duplicates
    /// (±0 count once). A zero scale gives `[0]`.
    pub fn levels(&self, group: usize) -> Vec<f32> {
        let s = self.scales[group];
        let mut levels: Vec<f32> =
            (0..=255u8).map(|c| self.format.decode(c)).filter(|v| v.is_finite()).map(|v| v * s).collect();
        sort_unique(&mut levels);
        levels
    }

    /// One byte per weight plus 4 bytes per f32 scale.
    pub fn storage_bytes(&self) -> u64 {
        (self.data.len() + 4 * self.scales.len()) as u64
    }
}
