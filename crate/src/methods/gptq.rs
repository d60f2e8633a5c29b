//! GPTQ: quantize a linear layer's weight matrix column by column, spreading each column's
//! rounding error over the columns not yet quantized with the inverse Hessian of the layer's
//! inputs, so that the layer's *output* error ‖WX − ŴX‖ stays small (Frantar, Ashkboos, Hoefler,
//! Alistarh, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
//! Transformers", 2022). This is a plain transcription of the algorithm of the paper's
//! reference code, `GPTQ.fasterquant` in IST-DASLab/gptq `gptq.py`:
//!
//! 1. `H = 2·XᵀX / n` from the second moment of the `n` input rows `X`.
//! 2. Dead inputs (`H_ii = 0`, an input that was always zero): the weight column is set to 0 and
//!    `H_ii = 1`, so the factorisation below exists.
//! 3. Optional act-order (`desc_act`): columns are processed in descending `H_ii` order (the
//!    permutation is stable, so ties keep their column order); codes are put back in the
//!    original column order at the end (the inverse permutation).
//! 4. Damping: `H_ii += damp · mean(diag H)` (1% by default).
//! 5. `U` = the upper Cholesky factor of `H⁻¹`.
//! 6. Columns in blocks of 128. Within a block, column `i` is rounded (`q`), its error
//!    `e = (w − q) / U_ii` is subtracted from the block's later columns (`w_j −= e·U_ij`), and
//!    the errors are kept; at the block's end they update every later column at once
//!    (`W[:, i2:] −= E·U[i1:i2, i2:]`, the "lazy batch" update).
//!
//! Groups (a group's scale, zero point or block `d`/`m`): in column order, a group's parameters
//! are set when GPTQ reaches the group's first column, from the group's current weights — the
//! error-corrected values as they stand at that moment, including the corrections made by the
//! earlier columns of the same 128-column block (columns past the block, which only a group
//! longer than the block's remainder reaches, hold the corrections up to the last block). (The reference reads the full matrix there,
//! which misses those in-block corrections when a group starts inside a block; the numpy port
//! in `scripts/dev/gptq_reference.py` follows the rule used here.) With act-order the groups
//! are static (the reference's `static_groups`): every group's parameters are set from the
//! weights before any correction, and a column uses the group of its original position. This
//! keeps groups contiguous in the original column order, which the INT formats and GGUF blocks
//! need (so no `g_idx` is stored: it is always `column / group_len`).
//!
//! The arithmetic is f64 (the reference's f32 GPU arithmetic loses digits in the Cholesky
//! factors of ill-conditioned Hessians); each weight is handed to the quantizer as f32, the
//! precision the formats' own rules use.
//!
//! This module quantizes one matrix from its Hessian statistics; where those come from (the
//! float model's activations, or layer-sequentially from the already-quantized model) is the
//! caller's choice.

use super::grids::{Grid, IntGrid, LegacyGrid, LegacyType};
use super::linalg::{upper_cholesky_of_inverse, NotPositiveDefinite};
use crate::formats::{Granularity, QuantError, QuantScheme, QuantizedTensor, TensorShape, ValueType};

/// Columns per lazy-batch block, as in the reference.
pub const DEFAULT_BLOCK_SIZE: usize = 128;
/// Fraction of the mean Hessian diagonal added to the diagonal, as in the reference.
pub const DEFAULT_DAMP: f64 = 0.01;

/// The order GPTQ quantizes columns in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColumnOrder {
    /// Column 0 first.
    #[default]
    Natural,
    /// Descending Hessian diagonal (`desc_act`, "act-order"), with static groups.
    ActOrder,
}

/// GPTQ's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GptqOptions {
    pub block_size: usize,
    pub damp: f64,
    pub order: ColumnOrder,
}

impl Default for GptqOptions {
    fn default() -> Self {
        Self { block_size: DEFAULT_BLOCK_SIZE, damp: DEFAULT_DAMP, order: ColumnOrder::Natural }
    }
}

/// The input statistics of one linear layer: `Σ xᵀx` over `samples` input rows `x` of length
/// `cols` (row-major `cols × cols`, symmetric).
#[derive(Debug, Clone, Copy)]
pub struct SecondMomentRef<'a> {
    pub xtx: &'a [f64],
    pub samples: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GptqError {
    #[error(transparent)]
    Quant(#[from] QuantError),
    #[error("GPTQ rounds onto INT schemes and the GGUF types Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, not {scheme}")]
    UnsupportedScheme { scheme: String },
    #[error("the input statistics are {got} values from {samples} samples; a {cols}-column weight needs {cols}×{cols} from at least one sample")]
    Statistics { cols: usize, got: usize, samples: usize },
    #[error("the damped Hessian is not positive definite at column {column} (pivot {pivot}); use more calibration tokens or more damping")]
    NotPositiveDefinite { column: usize, pivot: f64 },
}

/// The result: the tensor in the scheme's own form, and its values (equal to
/// `tensor.dequantize()`), row-major.
#[derive(Debug, Clone)]
pub struct GptqOutput {
    pub tensor: QuantizedTensor,
    pub values: Vec<f32>,
}

/// The formats [`supports`] takes, for users.
pub const SUPPORTED: &str = "int per channel or group, q4_0 q4_1 q5_0 q5_1 q8_0";

/// True if [`quantize`] takes `scheme`: an INT scheme per channel or per group, or one of the
/// GGUF legacy types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0).
pub fn supports(scheme: &QuantScheme) -> bool {
    match scheme.value {
        ValueType::Int { .. } => scheme.granularity != Granularity::Tensor,
        ValueType::Ggml { ty } => LegacyType::from_ggml(ty).is_some(),
        _ => false,
    }
}

/// GPTQ onto `scheme`: an INT scheme (per channel or per group) or one of the GGUF legacy types.
pub fn quantize(
    scheme: &QuantScheme,
    weights: &[f32],
    shape: TensorShape,
    stats: SecondMomentRef,
    options: &GptqOptions,
) -> Result<GptqOutput, GptqError> {
    quantize_factored(scheme, weights, shape, &HessianFactor::new(stats, shape.cols, options)?)
}

/// [`quantize`] with the Hessian already factored: matrices that read one input (q/k/v,
/// gate/up) share one factor.
pub fn quantize_factored(
    scheme: &QuantScheme,
    weights: &[f32],
    shape: TensorShape,
    factor: &HessianFactor,
) -> Result<GptqOutput, GptqError> {
    crate::formats::quantized::check_input(scheme, weights, shape)?;
    match scheme.value {
        ValueType::Int { .. } => run(&IntGrid::new(scheme, shape)?, weights, shape, factor),
        ValueType::Ggml { ty } => match LegacyType::from_ggml(ty) {
            Some(ty) => run(&LegacyGrid::new(ty, shape)?, weights, shape, factor),
            None => Err(GptqError::UnsupportedScheme { scheme: scheme.name() }),
        },
        _ => Err(GptqError::UnsupportedScheme { scheme: scheme.name() }),
    }
}

/// Steps 1–5 of the module docs, which depend on the input statistics only: the dead inputs,
/// the processing order and the upper Cholesky factor of the damped `H⁻¹`.
#[derive(Debug, Clone)]
pub struct HessianFactor {
    cols: usize,
    /// Inputs that were always zero (their weight columns are set to 0).
    dead: Vec<usize>,
    /// `perm[k]`: the original column processed k-th.
    perm: Vec<usize>,
    /// The upper Cholesky factor of H⁻¹, in processing order (`cols × cols`).
    u: Vec<f64>,
    /// The options' lazy-batch block size and column order.
    block_size: usize,
    order: ColumnOrder,
}

impl HessianFactor {
    /// Factors `H = 2·XᵀX / n` of `cols` inputs as `options` say.
    pub fn new(stats: SecondMomentRef, cols: usize, options: &GptqOptions) -> Result<HessianFactor, GptqError> {
        if stats.xtx.len() != cols * cols || stats.samples == 0 {
            return Err(GptqError::Statistics { cols, got: stats.xtx.len(), samples: stats.samples });
        }
        // 1–2: the Hessian, dead inputs.
        let scale = 2.0 / stats.samples as f64;
        let mut h: Vec<f64> = stats.xtx.iter().map(|&v| v * scale).collect();
        let mut dead = Vec::new();
        for i in 0..cols {
            if h[i * cols + i] == 0.0 {
                h[i * cols + i] = 1.0;
                dead.push(i);
            }
        }
        // 3: the processing order.
        let mut perm: Vec<usize> = (0..cols).collect();
        if options.order == ColumnOrder::ActOrder {
            perm.sort_by(|&a, &b| h[b * cols + b].total_cmp(&h[a * cols + a]));
            h = permute_square(&h, cols, &perm);
        }
        // 4–5: damping, the upper Cholesky factor of the inverse.
        let mean_diag = (0..cols).map(|i| h[i * cols + i]).sum::<f64>() / cols as f64;
        for i in 0..cols {
            h[i * cols + i] += options.damp * mean_diag;
        }
        let u = upper_cholesky_of_inverse(&h, cols).map_err(|NotPositiveDefinite { index, pivot }| {
            GptqError::NotPositiveDefinite { column: perm[index], pivot }
        })?;
        Ok(HessianFactor { cols, dead, perm, u, block_size: options.block_size.max(1), order: options.order })
    }
}

/// GPTQ onto any [`Grid`]. `weights` is row-major `[rows, cols]` (`cols` = the layer's inputs).
pub fn run<G: Grid + Sync>(
    grid: &G,
    weights: &[f32],
    shape: TensorShape,
    factor: &HessianFactor,
) -> Result<GptqOutput, GptqError> {
    let TensorShape { rows, cols } = shape;
    if factor.cols != cols {
        return Err(GptqError::Statistics { cols, got: factor.cols * factor.cols, samples: 1 });
    }
    let g = grid.group_len();
    let groups_per_row = cols / g;
    let mut w: Vec<f64> = weights.iter().map(|&x| f64::from(x)).collect();
    for &i in &factor.dead {
        for r in 0..rows {
            w[r * cols + i] = 0.0;
        }
    }

    // Static groups (act-order): every group's parameters from the uncorrected weights.
    let mut params: Vec<Option<G::Params>> = vec![None; rows * groups_per_row];
    if factor.order == ColumnOrder::ActOrder {
        let mut buf = vec![0f32; g];
        for r in 0..rows {
            for gi in 0..groups_per_row {
                for (b, &x) in buf.iter_mut().zip(&w[r * cols + gi * g..r * cols + (gi + 1) * g]) {
                    *b = x as f32;
                }
                params[r * groups_per_row + gi] = Some(grid.fit(&buf));
            }
        }
        w = permute_columns(&w, rows, cols, &factor.perm);
    }

    // 6: the column loop. `codes` and `values` are in the original column order. Rows never
    // interact (the error of row r corrects only row r), so row bands run on separate threads,
    // each with the reference's loop nest: the same arithmetic per row, whatever the split.
    let mut codes = vec![0u8; rows * cols];
    let mut values = vec![0f32; rows * cols];
    let sweep = Sweep { grid, u: &factor.u, perm: &factor.perm, cols, block_size: factor.block_size };
    let threads = crate::model::weights::default_threads().clamp(1, rows.max(1));
    let band = rows.div_ceil(threads).max(1);
    let bands = w
        .chunks_mut(band * cols)
        .zip(params.chunks_mut(band * groups_per_row))
        .zip(codes.chunks_mut(band * cols).zip(values.chunks_mut(band * cols)));
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::scope(|scope| {
        for ((w, params), (codes, values)) in bands {
            let sweep = &sweep;
            scope.spawn(move || sweep.rows(w, params, codes, values));
        }
    });
    // wasm32 cannot spawn threads: the bands go to the pool (web workers when threaded).
    #[cfg(target_arch = "wasm32")]
    {
        let bands: Vec<std::sync::Mutex<_>> = bands.map(std::sync::Mutex::new).collect();
        crate::model::pool::run(bands.len(), &|b| {
            let mut band = bands[b].lock().unwrap_or_else(|e| e.into_inner());
            let ((w, params), (codes, values)) = &mut *band;
            sweep.rows(w, params, codes, values);
        });
    }

    let params: Vec<G::Params> = params.into_iter().map(|p| p.expect("every group reached")).collect();
    let tensor = grid.assemble(shape, &params, &codes)?;
    Ok(GptqOutput { tensor, values })
}

/// Step 6 of [`run`] for a band of rows: what the band needs of the shared state.
struct Sweep<'a, G: Grid> {
    grid: &'a G,
    /// The upper Cholesky factor of H⁻¹ (processing order).
    u: &'a [f64],
    perm: &'a [usize],
    cols: usize,
    block_size: usize,
}

impl<G: Grid> Sweep<'_, G> {
    /// Quantizes the band's rows `w` (processing order, corrected in place) into `codes` and
    /// `values` (original order), fitting each group's parameters in `params` when it is first
    /// reached (static groups arrive already fitted).
    fn rows(&self, w: &mut [f64], params: &mut [Option<G::Params>], codes: &mut [u8], values: &mut [f32]) {
        let (cols, u, g) = (self.cols, self.u, self.grid.group_len());
        let rows = w.len() / cols;
        let groups_per_row = cols / g;
        let mut group_buf = vec![0f32; g];
        for i1 in (0..cols).step_by(self.block_size) {
            let i2 = (i1 + self.block_size).min(cols);
            let count = i2 - i1;
            // The block's columns, corrected in place (`w1`), and their scaled errors.
            let mut w1 = vec![0f64; rows * count];
            for r in 0..rows {
                w1[r * count..(r + 1) * count].copy_from_slice(&w[r * cols + i1..r * cols + i2]);
            }
            let mut err = vec![0f64; rows * count];
            for i in 0..count {
                let k = i1 + i;
                let col = self.perm[k];
                let gi = col / g;
                let d = u[k * cols + k];
                for r in 0..rows {
                    let slot = r * groups_per_row + gi;
                    if params[slot].is_none() {
                        // Natural order: this is the group's first column (k == col).
                        for (j, b) in group_buf.iter_mut().enumerate() {
                            let c = k + j;
                            *b = if c < i2 { w1[r * count + c - i1] } else { w[r * cols + c] } as f32;
                        }
                        params[slot] = Some(self.grid.fit(&group_buf));
                    }
                    let p = params[slot].as_ref().expect("set above");
                    let x = w1[r * count + i];
                    let (code, q) = self.grid.round(p, x as f32);
                    codes[r * cols + col] = code;
                    values[r * cols + col] = q;
                    let e = (x - f64::from(q)) / d;
                    let row = &mut w1[r * count..(r + 1) * count];
                    for (wj, uj) in row[i + 1..].iter_mut().zip(&u[k * cols + k + 1..k * cols + i2]) {
                        *wj -= e * uj;
                    }
                    err[r * count + i] = e;
                }
            }
            // The lazy batch update of every later column.
            if i2 < cols {
                for r in 0..rows {
                    let row = &mut w[r * cols + i2..(r + 1) * cols];
                    for i in 0..count {
                        let e = err[r * count + i];
                        if e != 0.0 {
                            let k = i1 + i;
                            for (wj, uj) in row.iter_mut().zip(&u[k * cols + i2..(k + 1) * cols]) {
                                *wj -= e * uj;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `w[:, perm]` of a row-major `rows × cols` matrix.
fn permute_columns(w: &[f64], rows: usize, cols: usize, perm: &[usize]) -> Vec<f64> {
    let mut out = vec![0f64; w.len()];
    for r in 0..rows {
        for (k, &c) in perm.iter().enumerate() {
            out[r * cols + k] = w[r * cols + c];
        }
    }
    out
}

/// `h[perm][:, perm]` of a row-major `n × n` matrix.
fn permute_square(h: &[f64], n: usize, perm: &[usize]) -> Vec<f64> {
    let mut out = vec![0f64; h.len()];
    for (i, &pi) in perm.iter().enumerate() {
        for (j, &pj) in perm.iter().enumerate() {
            out[i * n + j] = h[pi * n + pj];
        }
    }
    out
}

#[cfg(test)]
mod tests;
