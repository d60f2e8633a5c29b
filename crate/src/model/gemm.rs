//! Batched products `Y[n×rows] = X[n×cols] · Wᵀ` for every [`Matrix`] format: the kernels of
//! the batched forward ([`super::forward_batch`]).
//!
//! Each weight row is decoded ONCE (into f32 values kept in a scratch buffer, or for Q4_0, Q4_1
//! and Q8_0 into f32 codes plus per-block scales) and then multiplied by all `n` activation rows,
//! so the decoding cost, which dominates a matrix-vector product on packed weights, is shared by
//! the whole block. The packed matrix itself is never expanded.
//!
//! Every output is **bit-identical** to [`Matrix::matvec_threads`] on that activation row: the
//! per-row kernels below perform the same f32 operations in the same order per lane as the
//! fused kernels of `kernels` (which for INT4 and NF4/FP4 are themselves bit-identical to
//! "decode the row, then [`dot`]"), and reduce the lanes in the same order. That is why they
//! multiply and add separately rather than with fused multiply-adds: a fused multiply-add rounds
//! once instead of twice and would change the last bits. The wasm SIMD128 twins of the
//! matrix-vector kernels are bit-identical to the portable ones, so this holds in wasm too.
//!
//! On x86-64 the same code is also compiled with AVX2 and F16C enabled (8-lane vectors instead of
//! SSE2's 4, scales read by one instruction) and picked at run time when the CPU has them; same
//! operations, so same bits.
//!
//! Natively the output rows are split over the thread pool (`pool`); each output is computed
//! by one thread with the same kernel, so the thread count does not change any bit.

#[cfg(target_arch = "x86_64")]
use super::kernels::F16c;
use super::kernels::{dot, PortableHalf, ReadHalf};
use super::weights::{row_bytes, Matrix};
use crate::formats::TensorShape;
use crate::formats::{GgmlType, QuantizedTensor};

/// Below this many weights a product runs on the calling thread.
const PARALLEL_MIN_WEIGHTS: usize = 1 << 16;

impl Matrix {
    /// `out[b·rows + r] = row(r) · x[b·cols..(b+1)·cols]` for the `n = x.len() / cols` rows of
    /// `x`, on at most `threads` threads. Bit-identical to calling
    /// [`Matrix::matvec_threads`] on each row of `x` ([`Matrix::matmul_reference`]).
    ///
    /// Panics if `x.len()` is not a multiple of `cols` or `out.len() != n · rows`.
    pub fn matmul_threads(&self, x: &[f32], out: &mut [f32], threads: usize) {
        let TensorShape { rows, cols } = self.shape();
        let n = x.len().checked_div(cols).unwrap_or(0);
        assert!(
            cols > 0 && x.len() == n * cols && out.len() == n * rows,
            "{rows}×{cols} matrix times {} values into {}",
            x.len(),
            out.len()
        );
        split_tiles(out, TensorShape { rows, cols }, n, threads, |r0, tile| self.tile(r0, tile, x));
    }
}

/// Runs `tile(r0, t)` over `out` (`n` rows of one output per weight row of a `shape` matrix):
/// `t[b·w + i]` is weight row `r0 + i`'s output for activation row `b`, for `w = t.len() / n`
/// weight rows. Large products are split by weight rows over at most `threads` threads, each
/// task into its own tile copied into place afterwards (a tile's outputs are strided in `out`);
/// the same rows go through the same `tile` whatever the thread count.
pub(super) fn split_tiles(
    out: &mut [f32],
    shape: TensorShape,
    n: usize,
    threads: usize,
    tile: impl Fn(usize, &mut [f32]) + Sync,
) {
    let TensorShape { rows, cols } = shape;
    if threads > 1 && rows * cols * n >= PARALLEL_MIN_WEIGHTS && rows >= 2 * threads {
        let chunk = rows.div_ceil(threads);
        let tasks = rows.div_ceil(chunk);
        let tiles: Vec<std::sync::Mutex<Vec<f32>>> =
            (0..tasks).map(|i| std::sync::Mutex::new(vec![0f32; n * (chunk.min(rows - i * chunk))])).collect();
        super::pool::run(tasks, &|i| {
            let mut t = tiles[i].lock().unwrap_or_else(|e| e.into_inner());
            tile(i * chunk, &mut t);
        });
        for (i, t) in tiles.into_iter().enumerate() {
            let t = t.into_inner().unwrap_or_else(|e| e.into_inner());
            let width = t.len() / n;
            for (b, part) in t.chunks_exact(width).enumerate() {
                out[b * rows + i * chunk..][..width].copy_from_slice(part);
            }
        }
        return;
    }
    tile(0, out);
}

impl Matrix {
    /// The plain reference of [`Matrix::matmul_threads`]: one matrix-vector product per row.
    pub fn matmul_reference(&self, x: &[f32], out: &mut [f32]) {
        let TensorShape { rows, cols } = self.shape();
        assert!(cols > 0 && x.len() / cols * rows == out.len(), "{rows}×{cols} matrix: bad batch shapes");
        for (xr, o) in x.chunks_exact(cols).zip(out.chunks_exact_mut(rows)) {
            self.matvec_threads(xr, o, 1);
        }
    }

    /// `tile[b·w + i] = row(r0 + i) · x_b` for `i < w = tile.len() / n`: the one kernel every
    /// thread count shares. Dispatches to the AVX2 build of the same code when the CPU has it.
    fn tile(&self, r0: usize, tile: &mut [f32], x: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c") {
            // SAFETY: the CPU supports AVX2 and F16C (checked just above).
            unsafe { tile_avx2(self, r0, tile, x) };
            return;
        }
        tile_portable(self, r0, tile, x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn tile_avx2(m: &Matrix, r0: usize, tile: &mut [f32], x: &[f32]) {
    tile_body::<F16c>(m, r0, tile, x);
}

fn tile_portable(m: &Matrix, r0: usize, tile: &mut [f32], x: &[f32]) {
    tile_body::<PortableHalf>(m, r0, tile, x);
}

#[inline(always)]
fn tile_body<H: ReadHalf>(m: &Matrix, r0: usize, tile: &mut [f32], x: &[f32]) {
    let cols = m.shape().cols;
    let n = x.len() / cols;
    if n == 0 {
        return;
    }
    let w = tile.len() / n;
    match m {
        Matrix::F32 { data, .. } => {
            for i in 0..w {
                let row = &data[(r0 + i) * cols..(r0 + i + 1) * cols];
                column(tile, w, i, x, |xb| dot(row, xb));
            }
        }
        Matrix::Quantized(QuantizedTensor::Ggml(t))
            if matches!(t.ty, GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0) =>
        {
            let rb = row_bytes(t);
            let blocks = cols / 32;
            // Per-32-value block sums of every activation row (the Q4 kernels' offset terms).
            let xsum: Vec<f32> = x.chunks_exact(32).map(|c| c.iter().sum()).collect();
            let mut q = vec![0f32; cols];
            let (mut d, mut mins) = (vec![0f32; blocks], vec![0f32; blocks]);
            for i in 0..w {
                let row = &t.data[(r0 + i) * rb..(r0 + i + 1) * rb];
                unpack::<H>(t.ty, row, &mut q, &mut d, &mut mins);
                for (b, xb) in x.chunks_exact(cols).enumerate() {
                    let xs = &xsum[b * blocks..(b + 1) * blocks];
                    tile[b * w + i] = match t.ty {
                        GgmlType::Q4_1 => dot_q4_1_unpacked(&q, &d, &mins, xb, xs),
                        GgmlType::Q4_0 => dot_q4_0_unpacked(&q, &d, xb, xs),
                        _ => dot_q8_0_unpacked(&q, &d, xb),
                    };
                }
            }
        }
        _ => {
            let mut row = vec![0f32; cols];
            for i in 0..w {
                m.row(r0 + i, &mut row);
                column(tile, w, i, x, |xb| dot(&row, xb));
            }
        }
    }
}

/// Column `i` of the tile (one weight row's outputs for every activation row): `f(x_b)`.
#[inline(always)]
fn column(tile: &mut [f32], w: usize, i: usize, x: &[f32], f: impl Fn(&[f32]) -> f32) {
    let n = tile.len() / w;
    let cols = x.len() / n;
    for (b, xb) in x.chunks_exact(cols).enumerate() {
        tile[b * w + i] = f(xb);
    }
}

/// Splits one Q4_0 / Q4_1 / Q8_0 row into its codes as f32 (`q[k]` is the code of weight `k`),
/// the blocks' scales `d` and, for Q4_1, their minimums `m`.
#[inline(always)]
fn unpack<H: ReadHalf>(ty: GgmlType, row: &[u8], q: &mut [f32], d: &mut [f32], m: &mut [f32]) {
    let bytes = ty.type_size();
    for (k, (b, qb)) in row.chunks_exact(bytes).zip(q.chunks_exact_mut(32)).enumerate() {
        d[k] = H::at(b, 0);
        match ty {
            GgmlType::Q8_0 => {
                for (o, &c) in qb.iter_mut().zip(&b[2..34]) {
                    *o = f32::from(c as i8);
                }
            }
            _ => {
                let qs = if ty == GgmlType::Q4_1 {
                    m[k] = H::at(b, 2);
                    &b[4..20]
                } else {
                    &b[2..18]
                };
                for j in 0..16 {
                    qb[j] = f32::from(qs[j] & 15);
                    qb[j + 16] = f32::from(qs[j] >> 4);
                }
            }
        }
    }
}

/// The portable `dot_q4_1` on unpacked codes: same operations, same order.
#[inline(always)]
fn dot_q4_1_unpacked(q: &[f32], d: &[f32], m: &[f32], x: &[f32], xsum: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut mins = 0f32;
    for ((((qb, xb), &d), &m), &xs) in q.chunks_exact(32).zip(x.chunks_exact(32)).zip(d).zip(m).zip(xsum) {
        let (qb, xb): (&[f32; 32], &[f32; 32]) = (qb.try_into().unwrap(), xb.try_into().unwrap());
        for j in 0..16 {
            acc[j] += d * (qb[j] * xb[j] + qb[j + 16] * xb[j + 16]);
        }
        mins += m * xs;
    }
    acc.iter().sum::<f32>() + mins
}

/// The portable `dot_q4_0` on unpacked codes: same operations, same order.
#[inline(always)]
fn dot_q4_0_unpacked(q: &[f32], d: &[f32], x: &[f32], xsum: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let mut offsets = 0f32;
    for (((qb, xb), &d), &xs) in q.chunks_exact(32).zip(x.chunks_exact(32)).zip(d).zip(xsum) {
        let (qb, xb): (&[f32; 32], &[f32; 32]) = (qb.try_into().unwrap(), xb.try_into().unwrap());
        for j in 0..16 {
            acc[j] += d * (qb[j] * xb[j] + qb[j + 16] * xb[j + 16]);
        }
        offsets += 8.0 * d * xs;
    }
    acc.iter().sum::<f32>() - offsets
}

/// The portable `dot_q8_0` on unpacked codes: same operations, same order.
#[inline(always)]
fn dot_q8_0_unpacked(q: &[f32], d: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0f32; 32];
    for ((qb, xb), &d) in q.chunks_exact(32).zip(x.chunks_exact(32)).zip(d) {
        let (qb, xb): (&[f32; 32], &[f32; 32]) = (qb.try_into().unwrap(), xb.try_into().unwrap());
        for j in 0..32 {
            acc[j] += d * (qb[j] * xb[j]);
        }
    }
    acc.iter().sum()
}
