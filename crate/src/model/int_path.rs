//! How the forward's weight products run ([`MatmulPath`], `State::matmul`): in f32 (exact, the
//! default, whose numbers the lab quotes), or with integer dot products where a kernel exists
//! (`int8`, a labelled mode that is never on unless asked):
//!
//! - **Without activation quantization**: Q4_0, Q4_1 and Q8_0 weights multiply the activation
//!   rows quantized once per product to ggml's Q8_0/Q8_1 blocks ([`super::int8_dot`]: llama.cpp's
//!   CPU path). This changes the numbers (the activations are rounded to 8 bits per 32 values).
//! - **With `int8-token` or `llm-int8` activations**: 8-bit symmetric per-channel integer weights
//!   (`int8-sym-channel`, what LLM.int8() makes) multiply the per-token INT8 codes
//!   ([`TokenCodes`]) in i32, scaled once per output (`Σq_x·q_w · s_x·s_w`), plus LLM.int8()'s
//!   outlier columns in f32; Q8_0 weights multiply the per-token codes (without outlier columns)
//!   block by block, `s_x · Σ_blocks d_w·Σq_x·q_w`. The same arithmetic as the simulated path
//!   (which multiplies `q_x·s_x` by the dequantized weights in f32) up to float summation order.
//!
//! Every other product runs the exact f32 kernels, on the simulated activations when there are
//! any. [`PathStats`] counts which path each product took (the test that the integer path ran,
//! and the CLI's report), and LLM.int8()'s outlier columns per linear input.
//!
//! The readable and the batched forwards call [`prepare`] and [`product`] at the same points, and
//! each output is computed by the same dot function whichever forward asks, so the two forwards
//! give the same bits in either path (LLM.int8()'s outlier columns depend on the block, see
//! [`super::llm_int8`]).

use std::collections::BTreeMap;

use super::act_quant::{ActGranularity, ActQuantizer};
use super::forward::LinearInput;
use super::gemm::split_tiles;
use super::int8_dot::{dot_i8_offset, Int8DotType, Q8Activations};
use super::kernels::f16_at;
use super::llm_int8::TokenCodes;
use super::weights::{row_bytes, Matrix};
use crate::formats::int::IntTensor;
use crate::formats::{Granularity, Mapping, QuantizedTensor, TensorShape};

/// Which arithmetic the weight products use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulPath {
    /// f32 products on f32 (or simulated) activations: the reference.
    #[default]
    Exact,
    /// Integer dot products where a kernel exists (module docs), exact f32 elsewhere.
    Int8,
}

impl MatmulPath {
    pub fn name(self) -> &'static str {
        match self {
            MatmulPath::Exact => "exact",
            MatmulPath::Int8 => "int8",
        }
    }
}

/// LLM.int8()'s outlier columns at one linear input, over every product that read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutlierCount {
    /// Products (blocks of rows) counted.
    pub products: u64,
    /// Outlier columns summed over those products.
    pub columns: u64,
    /// The most outlier columns in one product.
    pub max: usize,
    /// Which columns were ever outliers.
    ever: Vec<bool>,
}

impl OutlierCount {
    /// Columns that were outliers in at least one product.
    pub fn distinct(&self) -> usize {
        self.ever.iter().filter(|&&e| e).count()
    }

    /// Outlier columns per product, on average.
    pub fn mean(&self) -> f64 {
        if self.products == 0 {
            0.0
        } else {
            self.columns as f64 / self.products as f64
        }
    }

    fn add(&mut self, width: usize, outliers: &[usize]) {
        self.products += 1;
        self.columns += outliers.len() as u64;
        self.max = self.max.max(outliers.len());
        if self.ever.len() < width {
            self.ever.resize(width, false);
        }
        for &j in outliers {
            self.ever[j] = true;
        }
    }
}

/// What the forward's products did since the state was made (or [`PathStats::clear`]ed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PathStats {
    /// Matrix products (one matrix times a block of rows) by integer dot products.
    pub integer: u64,
    /// Matrix products by the f32 kernels.
    pub float: u64,
    /// LLM.int8()'s outlier columns per linear input (empty in other modes).
    pub outliers: BTreeMap<LinearInput, OutlierCount>,
}

impl PathStats {
    pub fn clear(&mut self) {
        *self = PathStats::default();
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &PathStats) {
        self.integer += other.integer;
        self.float += other.float;
        for (input, c) in &other.outliers {
            let mine = self.outliers.entry(*input).or_default();
            mine.products += c.products;
            mine.columns += c.columns;
            mine.max = mine.max.max(c.max);
            if mine.ever.len() < c.ever.len() {
                mine.ever.resize(c.ever.len(), false);
            }
            for (m, &e) in mine.ever.iter_mut().zip(&c.ever) {
                *m |= e;
            }
        }
    }
}

/// The activation rows of one linear input, ready for the products that read them.
pub(crate) enum Prepared {
    /// f32 (or simulated) values only.
    Float,
    /// ggml Q8_0/Q8_1 blocks, one per row.
    Q8(Vec<Q8Activations>),
    /// Per-token INT8 codes (and LLM.int8()'s float columns).
    Token(TokenCodes),
}

/// Applies the activation quantization `act` to `rows` (rows of `width` values, the input of the
/// layers `input` names) in place, as [`ActQuantizer::apply`] does, and prepares what the integer
/// path multiplies; counts LLM.int8()'s outlier columns into `stats`.
pub(crate) fn prepare(
    act: Option<&ActQuantizer>,
    path: MatmulPath,
    input: LinearInput,
    rows: &mut [f32],
    width: usize,
    stats: &mut PathStats,
) -> Prepared {
    let Some(a) = act else {
        if path == MatmulPath::Exact {
            return Prepared::Float;
        }
        let blocks: Option<Vec<_>> = rows.chunks_exact(width).map(Q8Activations::quantize).collect();
        return blocks.map_or(Prepared::Float, Prepared::Q8);
    };
    let Some(codes) = a.token_codes(input, rows, width) else {
        a.apply(input, rows, width);
        return Prepared::Float;
    };
    if a.quant.granularity == ActGranularity::PerTokenOutliers {
        stats.outliers.entry(input).or_default().add(width, &codes.outliers);
    }
    codes.dequantize_into(rows);
    match path {
        MatmulPath::Exact => Prepared::Float,
        MatmulPath::Int8 => Prepared::Token(codes),
    }
}

/// `out = x · mᵀ` for the rows of `x` (one or a block), by the integer path when `prep` and the
/// matrix's type have one, else by the exact f32 kernels; counted in `stats`.
pub(crate) fn product(m: &Matrix, x: &[f32], prep: &Prepared, out: &mut [f32], threads: usize, stats: &mut PathStats) {
    let shape = m.shape();
    let n = x.len() / shape.cols.max(1);
    match (prep, m) {
        (Prepared::Q8(acts), Matrix::Quantized(QuantizedTensor::Ggml(t))) if Int8DotType::of(m).is_some() => {
            let ty = Int8DotType::of(m).expect("checked just above");
            let rb = row_bytes(t);
            split_tiles(out, shape, n, threads, |r0, tile| {
                let w = tile.len() / n;
                for (i, row) in t.data[r0 * rb..(r0 + w) * rb].chunks_exact(rb).enumerate() {
                    for (b, a) in acts.iter().enumerate() {
                        tile[b * w + i] = ty.dot(row, a);
                    }
                }
            });
            stats.integer += 1;
        }
        (Prepared::Token(codes), Matrix::Quantized(QuantizedTensor::Int(t))) if is_int8_channel(t) => {
            split_tiles(out, shape, n, threads, |r0, tile| token_tile(t, codes, r0, tile));
            stats.integer += 1;
        }
        (Prepared::Token(codes), Matrix::Quantized(QuantizedTensor::Ggml(t)))
            if Int8DotType::of(m) == Some(Int8DotType::Q8_0) && codes.outliers.is_empty() =>
        {
            let rb = row_bytes(t);
            split_tiles(out, shape, n, threads, |r0, tile| q8_0_token_tile(&t.data[r0 * rb..], rb, codes, tile));
            stats.integer += 1;
        }
        _ => {
            if n == 1 {
                m.matvec_threads(x, out, threads);
            } else {
                m.matmul_threads(x, out, threads);
            }
            stats.float += 1;
        }
    }
}

/// Whether `t` is 8-bit symmetric with one scale per row (what [`token_tile`] multiplies).
fn is_int8_channel(t: &IntTensor) -> bool {
    t.bits == 8 && t.scheme.mapping == Mapping::Symmetric && t.scheme.granularity == Granularity::Channel
}

/// `tile[b·w + i]` = weight row `r0 + i` times token row `b`: `Σq_x·q_w` in i32, times
/// `s_x·s_w`, plus the float columns times the dequantized weights (`s_w·q_w`, as the simulated
/// path's weights).
fn token_tile(t: &IntTensor, codes: &TokenCodes, r0: usize, tile: &mut [f32]) {
    let TensorShape { cols, .. } = t.shape;
    let n = codes.rows();
    let w = tile.len() / n;
    let k = codes.outliers.len();
    for i in 0..w {
        let r = r0 + i;
        let (wrow, sw) = (&t.packed[r * cols..(r + 1) * cols], t.scales[r]);
        for b in 0..n {
            let sumi = dot_i8_offset(&codes.codes[b * cols..(b + 1) * cols], wrow);
            let mut y = sumi as f32 * (codes.scales[b] * sw);
            for (&j, &x) in codes.outliers.iter().zip(&codes.float[b * k..(b + 1) * k]) {
                y += x * (sw * (i32::from(wrow[j]) - 128) as f32);
            }
            tile[b * w + i] = y;
        }
    }
}

/// `tile[b·w + i]` = Q8_0 weight row `i` of `rows` (rows of `rb` bytes: 34-byte blocks, an f16
/// scale `d` then 32 int8 codes) times token row `b`: per block `Σq_x·q_w` in i32 times `d`,
/// summed in f32, times the token's scale.
fn q8_0_token_tile(rows: &[u8], rb: usize, codes: &TokenCodes, tile: &mut [f32]) {
    let n = codes.rows();
    let w = tile.len() / n;
    let cols = codes.width;
    for (i, row) in rows.chunks_exact(rb).take(w).enumerate() {
        for b in 0..n {
            let a = &codes.codes[b * cols..(b + 1) * cols];
            let mut sumf = 0f32;
            for (blk, qa) in row.chunks_exact(34).zip(a.chunks_exact(32)) {
                let sumi: i32 = blk[2..34].iter().zip(qa).map(|(&c, &x)| i32::from(c as i8) * i32::from(x)).sum();
                sumf += sumi as f32 * f16_at(blk, 0);
            }
            tile[b * w + i] = sumf * codes.scales[b];
        }
    }
}

/// `x · mᵀ` for the rows of `x` (`width` values each, the input `input` names) as the forward
/// computes it: `act` applied (simulated), then the product on `path`. For tests and benchmarks
/// of one product; counts into `stats`.
#[allow(clippy::too_many_arguments)]
pub fn product_as_forward(
    m: &Matrix,
    act: Option<&ActQuantizer>,
    path: MatmulPath,
    input: LinearInput,
    x: &[f32],
    threads: usize,
    stats: &mut PathStats,
) -> Vec<f32> {
    let width = m.shape().cols;
    let mut rows = x.to_vec();
    let p = prepare(act, path, input, &mut rows, width, stats);
    let mut out = vec![0f32; x.len() / width * m.shape().rows];
    product(m, &rows, &p, &mut out, threads, stats);
    out
}
