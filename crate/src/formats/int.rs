//! Integer round-to-nearest (RTN) quantization, INT2..INT8, symmetric or asymmetric, per tensor,
//! per output channel (row) or per group of `n` consecutive inputs along a row.
//!
//! # Conventions (what the numbers mean)
//!
//! All arithmetic is f32, one IEEE operation at a time in the order written here (the golden
//! files from `scripts/dev/make_int_goldens.py` check this bit for bit).
//!
//! **Rounding**: `rne(v)` is round-to-nearest, ties to even (`f32::round_ties_even`, the
//! rounding of `torch.round`, `numpy.rint` and PyTorch's fake-quantize): 0.5 → 0, 1.5 → 2,
//! 2.5 → 2, −0.5 → −0.
//!
//! **Symmetric** (`-sym-`), `qmax = 2^(b−1) − 1` (127, 7, 3, 1 for 8, 4, 3, 2 bits), the
//! *restricted* signed range `[−qmax, qmax]` (PyTorch/TensorRT weight practice: zero in the
//! middle, no lone `−2^(b−1)` code). For a group with clip value `c` (see range rules):
//!
//! ```text
//! s = store(c / qmax)                      (c ≥ 0; s = 0 for an all-zero group)
//! q = clamp(rne(x / s), −qmax, qmax)       (q = 0 when s = 0)
//! x̂ = s · q
//! code = q + 2^(b−1)                       (offset binary, 1 ..= 2^b − 1; code 0 unused)
//! ```
//!
//! **Asymmetric** (`-asym-`), `qmax = 2^b − 1`, unsigned codes `[0, qmax]`. The range `[lo, hi]`
//! is widened to include 0 (`lo = min(lo, 0)`, `hi = max(hi, 0)`, as PyTorch's MinMaxObserver
//! and GPTQ's quantizer do) so that 0 is exactly representable by the integer zero point:
//!
//! ```text
//! s = store((hi − lo) / qmax)
//! z = clamp(rne(−lo / s), 0, qmax)         (an integer; z = 0 when s = 0)
//! q = clamp(rne(x / s) + z, 0, qmax)       (q = z when s = 0)
//! x̂ = s · (q − z)
//! code = q
//! ```
//!
//! All-equal groups: a group of zeros gets `s = 0`, codes for 0 and reconstructs exactly. A
//! constant non-zero group `c` gets the range `[0, c]` (or `[c, 0]`): its values land on the
//! end level `±qmax·s`, equal to `c` up to the f32 rounding of `s` (and of the f16 scale for
//! groups).
//!
//! **Scale storage**: `store(v)` is the identity (f32 scales, 4 bytes) for per-tensor and
//! per-channel schemes, and a round trip through f16 (round to nearest even, values above the
//! f16 maximum saturate to 65504) for group-wise schemes, as GPTQ/AWQ checkpoints store fp16
//! group scales. Quantization uses the stored scale, so codes and `x̂` are consistent with
//! what a kernel would read. Saturated groups decode wrong, so they are listed in
//! [`IntTensor::saturated_groups`] (exports refuse them unless told otherwise).
//!
//! # Range rules (the clip range of each group)
//!
//! - `MinMax`: symmetric `c = max |x|`; asymmetric `lo = min x`, `hi = max x` (then widened to
//!   include 0).
//! - `Percentile(p)`: the linear-interpolation percentile (numpy's default `"linear"` method):
//!   sort the n values ascending as f64, `pos = (n − 1) · p / 100`, `i = floor(pos)`,
//!   `P = a[i] + (pos − i) · (a[i+1] − a[i])` (just `a[i]` when `i = n − 1`), rounded to f32.
//!   Symmetric: `c = P_p(|x|)`; asymmetric: `lo = P_{100−p}(x)`, `hi = P_p(x)`. Values outside
//!   the range clip to the end codes.
//! - `MseSearch`: 51 candidates `f_k = f32(100 − k) / 100` for `k = 0..=50` (1.00, 0.99, …,
//!   0.50); candidate `k` uses `c · f_k` (symmetric) or `lo · f_k`, `hi · f_k` (asymmetric,
//!   after widening to include 0), products in f32. Each candidate's squared error
//!   `Σ (x − x̂)²` is summed in f64 in element order; the smallest wins, ties going to the
//!   smaller `k` (the wider range). Deterministic.
//!
//! # Groups
//!
//! Tensor: one group. Channel: one group per row (`cols` values). Group(n): `n` consecutive
//! values along a row; the row length must be a multiple of `n` ([`QuantError::Shape`]
//! otherwise, never truncation), so group `g` is the flattened values `g·n .. (g+1)·n`.
//!
//! # Storage layout ([`IntTensor::storage_bytes`])
//!
//! Codes are packed densely as one little-endian bit stream, `b` bits per weight in row-major
//! order: bit `k` of the stream is bit `k % 8` of byte `k / 8`, and weight `i` has stream bits
//! `i·b .. i·b + b` (least significant bit first). INT8 is one byte per code; INT4 two codes per
//! byte, low nibble first; INT2 four per byte; INT3 eight codes per three bytes, codes crossing
//! byte boundaries:
//!
//! ```text
//! INT4:  byte 0 = [c1:4 | c0:4]   byte 1 = [c3 | c2] ...          (msb ... lsb)
//! INT2:  byte 0 = [c3:2 | c2:2 | c1:2 | c0:2]
//! INT3:  byte 0 = [c2 low 2 bits | c1:3 | c0:3]
//!        byte 1 = [c5 low 1 bit | c4:3 | c3:3 | c2 high bit]
//!        byte 2 = [c7:3 | c6:3 | c5 high 2 bits]
//! ```
//!
//! Total bytes = `ceil(n·b / 8)` for the codes + `n_groups · (4 or 2)` for the scales (f32 for
//! tensor/channel, f16 for groups) + for asymmetric schemes `ceil(n_groups·b / 8)` for the
//! zero points (packed the same way, `b` bits each).

use half::f16;

use super::scheme::{Granularity, Mapping, QuantScheme, RangeRule, ValueType};
use super::tensor::{check_input, group_index, QuantError, TensorShape};

/// Number of shrink candidates the MSE search tries (factors 1.00 down to 0.50).
pub const MSE_GRID: usize = 51;

/// An integer-quantized tensor: packed codes plus one scale (and zero point) per group.
#[derive(Debug, Clone, PartialEq)]
pub struct IntTensor {
    pub scheme: QuantScheme,
    pub shape: TensorShape,
    /// Bits per code (2..=8).
    pub bits: u8,
    /// Values per group (the whole tensor, a row, or the group size).
    pub group_len: usize,
    /// The codes, packed as documented in the module docs.
    pub packed: Vec<u8>,
    /// One scale per group, as stored (already rounded to f16 for group-wise schemes).
    pub scales: Vec<f32>,
    /// One zero point per group (asymmetric only; empty for symmetric schemes).
    pub zero_points: Vec<u8>,
    /// The groups (ascending indices) whose scale exceeded the f16 maximum and was stored as
    /// 65504: their weights decode wrong. Empty for f32 scales.
    pub saturated_groups: Vec<usize>,
}

/// One group's quantization parameters (fields crate-visible so that GPTQ, which picks each group's
/// parameters itself, lands on exactly this module's grid).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub(crate) scale: f32,
    pub(crate) zero: u8,
    pub(crate) fit: ScaleFit,
}

/// Whether a scale was stored as computed (up to rounding) or clamped to the f16 maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScaleFit {
    Fits,
    Saturated,
}

/// The group length `scheme` implies for `shape`, or a shape error.
pub(crate) fn group_len_for(scheme: &QuantScheme, shape: TensorShape) -> Result<usize, QuantError> {
    match scheme.granularity {
        Granularity::Tensor => Ok(shape.len()),
        Granularity::Channel => Ok(shape.cols),
        Granularity::Group(n) => {
            let n = n as usize;
            if !shape.cols.is_multiple_of(n) {
                return Err(QuantError::shape(
                    scheme,
                    format!(
                        "row length {} is not a multiple of the group size {n}; pick a group size that \
                         divides it (values are never silently dropped)",
                        shape.cols
                    ),
                ));
            }
            Ok(n)
        }
    }
}

/// Number of groups of `group_len` in `n` values (at least 1, for an empty tensor too).
pub(crate) fn n_groups_for(n: usize, group_len: usize) -> usize {
    if group_len == 0 {
        1
    } else {
        n.div_ceil(group_len).max(1)
    }
}

/// The linear-interpolation percentile of `sorted` (ascending), `p` in percent. See the module
/// docs for the exact formula. `sorted` must not be empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f32 {
    let n = sorted.len();
    let pos = ((n - 1) as f64 * p) / 100.0;
    let i = (pos.floor() as usize).min(n - 1);
    if i + 1 >= n {
        return sorted[n - 1] as f32;
    }
    let frac = pos - i as f64;
    (sorted[i] + frac * (sorted[i + 1] - sorted[i])) as f32
}

fn sorted_f64(values: impl Iterator<Item = f32>) -> Vec<f64> {
    let mut v: Vec<f64> = values.map(f64::from).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Stores a scale: identity for f32 scales, an f16 round trip (saturating) otherwise.
pub(crate) fn store_scale(v: f32, f16_scale: bool) -> (f32, ScaleFit) {
    if !f16_scale {
        return (v, ScaleFit::Fits);
    }
    let h = f16::from_f32(v);
    if h.is_infinite() {
        (f16::MAX.to_f32(), ScaleFit::Saturated)
    } else {
        (h.to_f32(), ScaleFit::Fits)
    }
}

/// Symmetric parameters for clip value `c ≥ 0`.
fn params_sym(c: f32, bits: u8, f16_scale: bool) -> Params {
    let qmax = ((1u32 << (bits - 1)) - 1) as f32;
    let (scale, fit) = store_scale(c / qmax, f16_scale);
    Params { scale, zero: 0, fit }
}

/// Asymmetric parameters for the range `[lo, hi]` (widened to include 0 here).
fn params_asym(lo: f32, hi: f32, bits: u8, f16_scale: bool) -> Params {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let qmax = ((1u32 << bits) - 1) as f32;
    let (scale, fit) = store_scale((hi - lo) / qmax, f16_scale);
    let zero = if scale == 0.0 { 0.0 } else { (-lo / scale).round_ties_even().clamp(0.0, qmax) };
    Params { scale, zero: zero as u8, fit }
}

/// Quantizes one value to its code.
#[inline]
pub(crate) fn encode(x: f32, p: Params, bits: u8, symmetric: bool) -> u8 {
    if symmetric {
        let half = 1u32 << (bits - 1);
        let qmax = (half - 1) as f32;
        let q = if p.scale == 0.0 { 0.0 } else { (x / p.scale).round_ties_even().clamp(-qmax, qmax) };
        (q as i32 + half as i32) as u8
    } else {
        let qmax = ((1u32 << bits) - 1) as f32;
        if p.scale == 0.0 {
            return p.zero;
        }
        ((x / p.scale).round_ties_even() + p.zero as f32).clamp(0.0, qmax) as u8
    }
}

/// Reconstructs one value from its code.
#[inline]
pub(crate) fn decode(code: u8, p: Params, bits: u8, symmetric: bool) -> f32 {
    let q = if symmetric { code as i32 - (1i32 << (bits - 1)) } else { code as i32 - p.zero as i32 };
    p.scale * q as f32
}

/// Squared error (f64, element order) of quantizing `group` with `p`.
fn squared_error(group: &[f32], p: Params, bits: u8, symmetric: bool) -> f64 {
    group.iter().fold(0.0f64, |acc, &x| {
        let e = f64::from(x - decode(encode(x, p, bits, symmetric), p, bits, symmetric));
        acc + e * e
    })
}

/// The shrink factor of MSE candidate `k` (0..MSE_GRID): `f32(100 − k) / 100`.
pub fn mse_factor(k: usize) -> f32 {
    (100 - k) as f32 / 100.0
}

/// Chooses one group's parameters according to the scheme's range rule.
pub(crate) fn choose_params(group: &[f32], bits: u8, symmetric: bool, range: RangeRule, f16_scale: bool) -> Params {
    if group.is_empty() {
        return Params { scale: 0.0, zero: 0, fit: ScaleFit::Fits };
    }
    let absmax = || group.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    let minmax = || group.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    match range {
        RangeRule::MinMax => {
            if symmetric {
                params_sym(absmax(), bits, f16_scale)
            } else {
                let (lo, hi) = minmax();
                params_asym(lo, hi, bits, f16_scale)
            }
        }
        RangeRule::Percentile(p) => {
            let p = f64::from(p);
            if symmetric {
                let sorted = sorted_f64(group.iter().map(|x| x.abs()));
                params_sym(percentile_sorted(&sorted, p), bits, f16_scale)
            } else {
                let sorted = sorted_f64(group.iter().copied());
                params_asym(percentile_sorted(&sorted, 100.0 - p), percentile_sorted(&sorted, p), bits, f16_scale)
            }
        }
        RangeRule::MseSearch => {
            let (c, lo, hi) = if symmetric {
                (absmax(), 0.0, 0.0)
            } else {
                let (lo, hi) = minmax();
                (0.0, lo.min(0.0), hi.max(0.0))
            };
            let mut best: Option<(f64, Params)> = None;
            for k in 0..MSE_GRID {
                let f = mse_factor(k);
                let p = if symmetric {
                    params_sym(c * f, bits, f16_scale)
                } else {
                    params_asym(lo * f, hi * f, bits, f16_scale)
                };
                let err = squared_error(group, p, bits, symmetric);
                if best.is_none_or(|(e, _)| err < e) {
                    best = Some((err, p));
                }
            }
            best.expect("at least one candidate").1
        }
    }
}

/// Writes `code` (`bits` wide) as weight `i` of the packed bit stream.
fn put_bits(packed: &mut [u8], i: usize, bits: u8, code: u8) {
    let start = i * bits as usize;
    for b in 0..bits as usize {
        if code >> b & 1 != 0 {
            let k = start + b;
            packed[k / 8] |= 1 << (k % 8);
        }
    }
}

/// Reads weight `i` (`bits` wide) from the packed bit stream.
fn get_bits(packed: &[u8], i: usize, bits: u8) -> u8 {
    let start = i * bits as usize;
    let mut code = 0u8;
    for b in 0..bits as usize {
        let k = start + b;
        code |= ((packed[k / 8] >> (k % 8)) & 1) << b;
    }
    code
}

/// Packs `codes` (each `< 2^bits`) as the documented little-endian bit stream.
pub fn pack_codes(codes: &[u8], bits: u8) -> Vec<u8> {
    let mut packed = vec![0u8; (codes.len() * bits as usize).div_ceil(8)];
    if bits == 8 {
        packed.copy_from_slice(codes);
    } else {
        for (i, &c) in codes.iter().enumerate() {
            put_bits(&mut packed, i, bits, c);
        }
    }
    packed
}

/// Unpacks `n` codes of `bits` bits from `packed`.
pub fn unpack_codes(packed: &[u8], bits: u8, n: usize) -> Vec<u8> {
    if bits == 8 {
        return packed[..n].to_vec();
    }
    (0..n).map(|i| get_bits(packed, i, bits)).collect()
}

impl IntTensor {
    /// Quantizes a row-major `[rows, cols]` tensor. The scheme must be an integer scheme;
    /// values must be finite (checked).
    pub fn quantize(scheme: &QuantScheme, values: &[f32], shape: TensorShape) -> Result<Self, QuantError> {
        check_input(scheme, values, shape)?;
        let ValueType::Int { bits } = scheme.value else {
            return Err(QuantError::Scheme { scheme: scheme.name(), reason: "not an integer scheme".into() });
        };
        let group_len = group_len_for(scheme, shape)?;
        let symmetric = scheme.mapping == Mapping::Symmetric;
        let f16_scale = matches!(scheme.granularity, Granularity::Group(_));
        let n_groups = n_groups_for(values.len(), group_len);
        let mut scales = Vec::with_capacity(n_groups);
        let mut zero_points = Vec::with_capacity(if symmetric { 0 } else { n_groups });
        let mut codes = vec![0u8; values.len()];
        let mut saturated_groups = Vec::new();
        for g in 0..n_groups {
            let range = (g * group_len).min(values.len())..((g + 1) * group_len).min(values.len());
            let group = &values[range.clone()];
            let p = choose_params(group, bits, symmetric, scheme.range, f16_scale);
            for (c, &x) in codes[range].iter_mut().zip(group) {
                *c = encode(x, p, bits, symmetric);
            }
            scales.push(p.scale);
            if p.fit == ScaleFit::Saturated {
                saturated_groups.push(g);
            }
            if !symmetric {
                zero_points.push(p.zero);
            }
        }
        let packed = pack_codes(&codes, bits);
        Ok(Self { scheme: *scheme, shape, bits, group_len, packed, scales, zero_points, saturated_groups })
    }

    fn symmetric(&self) -> bool {
        self.scheme.mapping == Mapping::Symmetric
    }

    fn params(&self, group: usize) -> Params {
        let zero = self.zero_points.get(group).copied().unwrap_or(0);
        Params { scale: self.scales[group], zero, fit: ScaleFit::Fits }
    }

    /// The reconstructed values `x̂`, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let symmetric = self.symmetric();
        self.codes()
            .iter()
            .enumerate()
            .map(|(i, &c)| decode(c, self.params(self.group_of(i)), self.bits, symmetric))
            .collect()
    }

    /// Decodes row `row` into `out` (`out.len() == cols`), bit-identical to the same slice of
    /// [`IntTensor::dequantize`]. Groups run over the flattened tensor (a per-tensor group spans
    /// every row), so each value reads the parameters of its flattened group.
    ///
    /// Panics if `row >= rows` or `out` has the wrong length.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let cols = self.shape.cols;
        assert!(row < self.shape.rows && out.len() == cols, "row {row} of {:?} into {} values", self.shape, out.len());
        let symmetric = self.symmetric();
        let start = row * cols;
        let mut i = 0;
        while i < cols {
            let g = self.group_of(start + i);
            let end = if self.group_len == 0 { cols } else { ((g + 1) * self.group_len - start).min(cols) };
            let p = self.params(g);
            for (j, o) in out[i..end].iter_mut().enumerate() {
                let k = start + i + j;
                let code = match self.bits {
                    8 => self.packed[k],
                    4 => (self.packed[k / 2] >> ((k % 2) * 4)) & 0x0f,
                    2 => (self.packed[k / 4] >> ((k % 4) * 2)) & 0x03,
                    b => get_bits(&self.packed, k, b),
                };
                *o = decode(code, p, self.bits, symmetric);
            }
            i = end;
        }
    }

    /// One code per weight, unpacked (symmetric: `q + 2^(b−1)`; asymmetric: `q`).
    pub fn codes(&self) -> Vec<u8> {
        unpack_codes(&self.packed, self.bits, self.shape.len())
    }

    /// Number of groups (each with its own scale / zero point).
    pub fn n_groups(&self) -> usize {
        self.scales.len()
    }

    /// The group of flattened weight `index`.
    pub fn group_of(&self, index: usize) -> usize {
        group_index(index, self.group_len)
    }

    /// The values group `group`'s codes can take, ascending and without duplicates:
    /// `s·q` for `q` in `−qmax..=qmax` (symmetric) or `s·(q − z)` for `q` in `0..=2^b−1`.
    /// A zero scale gives `[0]`.
    pub fn levels(&self, group: usize) -> Vec<f32> {
        let p = self.params(group);
        let symmetric = self.symmetric();
        let codes = if symmetric { 1..=(1u16 << self.bits) - 1 } else { 0..=(1u16 << self.bits) - 1 };
        let mut levels: Vec<f32> = codes.map(|c| decode(c as u8, p, self.bits, symmetric)).collect();
        sort_unique(&mut levels);
        levels
    }

    /// Bytes stored: packed codes + scales (f32 per tensor/channel, f16 per group) + packed
    /// zero points (asymmetric).
    pub fn storage_bytes(&self) -> u64 {
        let scale_bytes = if matches!(self.scheme.granularity, Granularity::Group(_)) { 2 } else { 4 };
        let zp = if self.symmetric() { 0 } else { (self.n_groups() * self.bits as usize).div_ceil(8) };
        (self.packed.len() + self.n_groups() * scale_bytes + zp) as u64
    }
}

/// Sorts ascending, drops NaN and merges equal values (−0 and +0 count as one).
pub(crate) fn sort_unique(levels: &mut Vec<f32>) {
    levels.retain(|v| !v.is_nan());
    levels.sort_by(f32::total_cmp);
    levels.dedup_by(|a, b| a == b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_and_layout() {
        for bits in 2..=8u8 {
            let codes: Vec<u8> = (0..37u32).map(|i| (i * 7 % (1 << bits)) as u8).collect();
            let packed = pack_codes(&codes, bits);
            assert_eq!(packed.len(), (37 * bits as usize).div_ceil(8));
            assert_eq!(unpack_codes(&packed, bits, 37), codes);
        }
        assert_eq!(pack_codes(&[1, 2, 3], 4), vec![0x21, 0x03]);
        assert_eq!(pack_codes(&[1, 2, 3, 0], 2), vec![0b00_11_10_01]);
        // c0 = 5 (101), c1 = 3 (011), c2 = 6 (110): byte0 = c2 low 2 bits | c1 | c0.
        assert_eq!(pack_codes(&[5, 3, 6], 3), vec![0b10_011_101, 0b1]);
    }

    #[test]
    fn ties_round_to_even() {
        // absmax 7 → s = 1 for int4 sym: 0.5 → 0, 1.5 → 2, 2.5 → 2, −2.5 → −2.
        let s = QuantScheme::int(4, Mapping::Symmetric, Granularity::Tensor);
        let t = IntTensor::quantize(&s, &[0.5, 1.5, 2.5, -2.5, 7.0], TensorShape::new(1, 5)).unwrap();
        assert_eq!(t.dequantize(), vec![0.0, 2.0, 2.0, -2.0, 7.0]);
    }
}
