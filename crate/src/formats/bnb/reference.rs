//! Plain, readable reference implementations of bitsandbytes' CPU NF4/FP4 quantization and of
//! its double quantization, step for step as bitsandbytes 0.50.2 does them on the CPU:
//!
//! - 4-bit (`backends/default/ops.py`, `quantize_4bit`, the kernel the CPU uses): blocks run
//!   over the flattened tensor; a full block is scaled by `x * (1 / max(absmax, 1e-38))`, the
//!   last partial block by `x / max(absmax, 1e-38)` (and stores that clamped absmax); the
//!   scaled value is clamped to [-1, 1] and its code is the number of midpoints of the sorted
//!   code table that are strictly below it (`torch.bucketize`, so a value exactly on a midpoint
//!   takes the lower code); an odd length is padded with one 0.0 before packing; two codes per
//!   byte, the first element in the high nibble.
//! - dequantization (`cdequantize_blockwise_cpu_{nf4,fp4}_fp32`): `table[code] * absmax`.
//!   One known bit-level difference: for FP4 code 8 (zero) bitsandbytes' C++ kernel returns
//!   `-0.0 * absmax` on the path it takes when the length is not a whole number of blocks and
//!   the last dimension is even; its table paths (and this code) return `+0.0 * absmax`.
//! - double quantization (`functional.quantize_4bit(compress_statistics=True)`):
//!   `offset = absmax.mean()` (torch's float sum, see [`torch_mean_f32`]), then the absmax values
//!   minus the offset are 8-bit quantized in blocks of 256 with the dynamic map by the C++ kernel
//!   `quantize_cpu` (`csrc/cpu_ops.cpp`): per block `inv = 1 / max|x|`, `v = clamp(x * inv, -1,
//!   1)`, index `trunc(((v + 1) * 0.5) * 65535 + 0.5)` into a 65536-entry table that maps each
//!   bin to the nearest code (see [`DynamicLut`]). Dequantized as `map[q] * nested_absmax + offset`.

use super::tables::{dynamic_map, FP4_CODE, FP4_ORDER, NF4_CODE};

/// NF4 or FP4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bnb4Type {
    Nf4,
    Fp4,
}

impl Bnb4Type {
    /// bitsandbytes' name (`quant_type`).
    pub fn name(self) -> &'static str {
        match self {
            Bnb4Type::Nf4 => "nf4",
            Bnb4Type::Fp4 => "fp4",
        }
    }

    /// The 16 code values, index = code (bitsandbytes' `quant_map`).
    pub fn table(self) -> &'static [f32; 16] {
        match self {
            Bnb4Type::Nf4 => &NF4_CODE,
            Bnb4Type::Fp4 => &FP4_CODE,
        }
    }

    /// Code of sorted position `i` (NF4's table is sorted).
    fn code_of_sorted(self, i: usize) -> u8 {
        match self {
            Bnb4Type::Nf4 => i as u8,
            Bnb4Type::Fp4 => FP4_ORDER[i],
        }
    }

    /// The 15 decision boundaries: f32 midpoints of the sorted table, `(a + b) / 2` in f32.
    pub fn midpoints(self) -> [f32; 15] {
        let table = self.table();
        let sorted: [f32; 16] = std::array::from_fn(|i| table[self.code_of_sorted(i) as usize]);
        std::array::from_fn(|i| (sorted[i] + sorted[i + 1]) / 2.0)
    }

    /// The code bitsandbytes picks for a scaled value in [-1, 1]: the count of midpoints strictly
    /// below it (ties go to the lower code), mapped back to a code.
    pub fn code_for(self, scaled: f32, midpoints: &[f32; 15]) -> u8 {
        let q = midpoints.iter().filter(|&&m| m < scaled).count();
        self.code_of_sorted(q)
    }
}

/// bitsandbytes clamps the divisor at 1e-38 (a float32 subnormal) so all-zero blocks work.
const ABSMAX_FLOOR: f32 = 1e-38;

/// Quantizes `values` (the flattened tensor) in blocks of `block`. Returns the packed codes
/// (`ceil(n / 2)` bytes, first element in the high nibble) and the per-block absmax.
pub fn quantize_ref(ty: Bnb4Type, values: &[f32], block: usize) -> (Vec<u8>, Vec<f32>) {
    assert!(block > 0);
    let midpoints = ty.midpoints();
    let n = values.len();
    let full = n - n % block;
    let mut codes = Vec::with_capacity(n + 1);
    let mut absmax = Vec::with_capacity(n.div_ceil(block));
    for chunk in values[..full].chunks_exact(block) {
        let am = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
        absmax.push(am);
        let recip = 1.0 / am.max(ABSMAX_FLOOR);
        codes.extend(chunk.iter().map(|&v| ty.code_for((v * recip).clamp(-1.0, 1.0), &midpoints)));
    }
    if full < n {
        // The partial last block divides instead of multiplying by the reciprocal, and stores
        // the clamped absmax (bitsandbytes' `am = tail.abs().max().clamp(min=1e-38)`).
        let tail = &values[full..];
        let am = tail.iter().fold(0f32, |m, v| m.max(v.abs())).max(ABSMAX_FLOOR);
        absmax.push(am);
        codes.extend(tail.iter().map(|&v| ty.code_for((v / am).clamp(-1.0, 1.0), &midpoints)));
    }
    if n % 2 == 1 {
        codes.push(ty.code_for(0.0, &midpoints));
    }
    (pack(&codes), absmax)
}

/// Two codes per byte, the first in the high nibble (`codes.len()` even).
pub fn pack(codes: &[u8]) -> Vec<u8> {
    codes.chunks_exact(2).map(|p| (p[0] << 4) | (p[1] & 0x0f)).collect()
}

/// The 4-bit codes of the first `n` elements, one per element.
pub fn unpack(packed: &[u8], n: usize) -> Vec<u8> {
    packed.iter().flat_map(|&b| [b >> 4, b & 0x0f]).take(n).collect()
}

/// `table[code] * absmax[block]` for the first `n` elements.
pub fn dequantize_ref(ty: Bnb4Type, packed: &[u8], absmax: &[f32], block: usize, n: usize) -> Vec<f32> {
    let table = ty.table();
    unpack(packed, n).into_iter().enumerate().map(|(i, c)| table[c as usize] * absmax[i / block]).collect()
}

/// Double-quantized absmax: 8-bit codes of `absmax - offset` with the dynamic map, in blocks
/// of `blocksize` (256 in bitsandbytes), their per-block absmax, and the offset.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedAbsmax {
    pub codes: Vec<u8>,
    pub absmax: Vec<f32>,
    pub offset: f32,
    pub blocksize: usize,
}

/// bitsandbytes' `quantize_4bit(compress_statistics=True)` applied to the absmax values.
pub fn double_quantize(absmax: &[f32], blocksize: usize) -> NestedAbsmax {
    let offset = torch_mean_f32(absmax);
    let centred: Vec<f32> = absmax.iter().map(|&a| a - offset).collect();
    let (codes, nested) = quantize_blockwise_8bit(&centred, blocksize);
    NestedAbsmax { codes, absmax: nested, offset, blocksize }
}

/// The absmax values back: `map[code] * nested_absmax[block] + offset`.
pub fn double_dequantize(nested: &NestedAbsmax) -> Vec<f32> {
    let map = dynamic_map();
    nested
        .codes
        .iter()
        .enumerate()
        .map(|(i, &c)| map[c as usize] * nested.absmax[i / nested.blocksize] + nested.offset)
        .collect()
}

/// The 65536-bin nearest-code table of bitsandbytes' C++ `quantize_cpu`
/// (`build_quantize_lut`): bin `i` holds `-1 + (2 i) / 65535` and maps to the first code whose
/// upper midpoint `0.5 * (code[k] + code[k+1])` is not below it.
pub struct DynamicLut {
    lut: Vec<u8>,
}

impl DynamicLut {
    const SIZE: usize = 65536;

    pub fn new() -> Self {
        let code = dynamic_map();
        let midpoints: Vec<f32> = (0..255).map(|i| 0.5f32 * (code[i] + code[i + 1])).collect();
        let mut lut = vec![0u8; Self::SIZE];
        let mut k = 0usize;
        for (i, slot) in lut.iter_mut().enumerate() {
            let val = -1.0f32 + (2.0f32 * i as f32) / (Self::SIZE - 1) as f32;
            while k < 255 && midpoints[k] < val {
                k += 1;
            }
            *slot = k as u8;
        }
        Self { lut }
    }

    /// The code of a value already scaled by the block's `1 / absmax`.
    pub fn code(&self, scaled: f32) -> u8 {
        let v = scaled.clamp(-1.0, 1.0);
        // Separate roundings (no fused multiply-add), truncation toward zero, as the kernel does.
        let t = (v + 1.0) * 0.5 * (Self::SIZE - 1) as f32 + 0.5;
        self.lut[t as usize]
    }
}

impl Default for DynamicLut {
    fn default() -> Self {
        Self::new()
    }
}

/// bitsandbytes' CPU 8-bit blockwise quantization with the dynamic map (`quantize_cpu`).
pub fn quantize_blockwise_8bit(values: &[f32], blocksize: usize) -> (Vec<u8>, Vec<f32>) {
    let lut = DynamicLut::new();
    let mut codes = Vec::with_capacity(values.len());
    let mut absmax = Vec::with_capacity(values.len().div_ceil(blocksize));
    for chunk in values.chunks(blocksize) {
        let am = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
        absmax.push(am);
        if am == 0.0 {
            codes.extend(std::iter::repeat_n(0u8, chunk.len()));
            continue;
        }
        let inv = 1.0f32 / am;
        codes.extend(chunk.iter().map(|&v| lut.code(v * inv)));
    }
    (codes, absmax)
}

/// `torch.mean` of a contiguous float32 vector on the CPU, reproduced bit for bit: torch sums
/// with its cascade sum (`aten/src/ATen/native/cpu/SumKernel.cpp`, dispatched to the AVX2
/// variant, 8 lanes, also on AVX512 machines) and divides by `n` in float32.
///
/// Exact for one torch thread, and for any thread count below 32768 values (torch's grain
/// size); above that a multi-threaded torch splits the sum by thread and may differ in the
/// last bit (measured: 40000 values, 2 threads).
pub fn torch_mean_f32(values: &[f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    torch_sum_f32(values) / values.len() as f32
}

/// torch's float32 sum of a contiguous vector (see [`torch_mean_f32`]).
pub fn torch_sum_f32(values: &[f32]) -> f32 {
    const LANES: usize = 8;
    let n = values.len();
    if n >= LANES {
        // vectorized_inner_sum: whole vectors are cascade-summed lane-wise, the leftover
        // scalars summed in order, then the lanes added to that in order.
        let vecs: Vec<[f32; LANES]> = values.chunks_exact(LANES).map(|c| c.try_into().unwrap()).collect();
        let vacc = row_sum(&vecs);
        let mut acc = 0f32;
        for &v in &values[vecs.len() * LANES..] {
            acc += v;
        }
        for lane in vacc {
            acc += lane;
        }
        acc
    } else {
        let items: Vec<[f32; 1]> = values.iter().map(|&v| [v]).collect();
        row_sum(&items)[0]
    }
}

fn add<const L: usize>(a: &mut [f32; L], b: &[f32; L]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += *y;
    }
}

/// torch's `row_sum`: 4 interleaved accumulators (ILP), each a `multi_row_sum` cascade.
fn row_sum<const L: usize>(items: &[[f32; L]]) -> [f32; L] {
    const ILP: usize = 4;
    let size_ilp = items.len() / ILP;
    let mut partial = [[0f32; L]; ILP];
    if size_ilp > 0 {
        for (k, p) in partial.iter_mut().enumerate() {
            *p = multi_row_sum((0..size_ilp).map(|r| &items[r * ILP + k]), size_ilp);
        }
    }
    for item in &items[size_ilp * ILP..] {
        add(&mut partial[0], item);
    }
    let mut out = partial[0];
    for p in &partial[1..] {
        add(&mut out, p);
    }
    out
}

/// torch's `multi_row_sum` for one row: 4 levels of accumulators, each level flushed into the
/// next every `2^level_power` additions.
fn multi_row_sum<'a, const L: usize>(rows: impl Iterator<Item = &'a [f32; L]>, size: usize) -> [f32; L] {
    const LEVELS: usize = 4;
    let ceil_log2 = if size <= 2 { 1 } else { (usize::BITS - (size - 1).leading_zeros()) as usize };
    let level_power = 4.max(ceil_log2 / LEVELS);
    let level_step = 1usize << level_power;
    let level_mask = level_step - 1;
    let mut acc = [[0f32; L]; LEVELS];
    let mut rows = rows;
    let mut i = 0usize;
    while i + level_step <= size {
        for _ in 0..level_step {
            add(&mut acc[0], rows.next().unwrap());
            i += 1;
        }
        for j in 1..LEVELS {
            let prev = acc[j - 1];
            add(&mut acc[j], &prev);
            acc[j - 1] = [0f32; L];
            if i & (level_mask << (j * level_power)) != 0 {
                break;
            }
        }
    }
    for row in rows {
        add(&mut acc[0], row);
    }
    let mut out = acc[0];
    for a in &acc[1..] {
        add(&mut out, a);
    }
    out
}
