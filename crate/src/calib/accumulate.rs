//! The statistics calibration collects per linear-layer input: [`SumSquares`] (Σx² and a row
//! count per input column, what `llama-imatrix` collects) and [`SecondMoment`] (XᵀX, what GPTQ's
//! Hessian is made of).

use super::{ActivationObserver, LinearInput};
use std::collections::BTreeMap;

/// Per-column sums of squares of one input, and the rows they add up.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSums {
    /// Σ over rows of x[col]², one per input column. Accumulated in f64 (llama-imatrix sums
    /// in f32; the two agree to f32 rounding on a few thousand rows).
    pub sum_sq: Vec<f64>,
    /// Rows (positions) added.
    pub rows: u64,
}

impl ColumnSums {
    /// The mean square per column (`sum_sq / rows`): the importance llama-quantize uses.
    pub fn mean_sq(&self) -> Vec<f32> {
        let n = self.rows.max(1) as f64;
        self.sum_sq.iter().map(|&s| (s / n) as f32).collect()
    }
}

/// Σx² per input column for every linear input seen (what llama-imatrix collects).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SumSquares {
    pub inputs: BTreeMap<LinearInput, ColumnSums>,
}

impl SumSquares {
    pub fn new() -> SumSquares {
        SumSquares::default()
    }

    /// The sums of the input the weight matrix `tensor` (llama.cpp name) reads; `tied`: the
    /// classifier is `token_embd.weight`.
    pub fn for_tensor(&self, tensor: &str, tied: bool) -> Option<&ColumnSums> {
        self.inputs.iter().find(|(input, _)| input.tensor_names(tied).iter().any(|t| t == tensor)).map(|(_, s)| s)
    }
}

impl ActivationObserver for SumSquares {
    fn observe(&mut self, input: LinearInput, rows: &[f32], width: usize) {
        let e = self.inputs.entry(input).or_insert_with(|| ColumnSums { sum_sq: vec![0.0; width], rows: 0 });
        assert_eq!(e.sum_sq.len(), width, "{input:?}: rows of {width} values after rows of {}", e.sum_sq.len());
        for row in rows.chunks_exact(width) {
            for (s, &x) in e.sum_sq.iter_mut().zip(row) {
                *s += f64::from(x) * f64::from(x);
            }
        }
        e.rows += (rows.len() / width) as u64;
    }
}

/// XᵀX of one input: `d × d`, row-major, symmetric, accumulated in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Gram {
    pub dim: usize,
    pub xtx: Vec<f64>,
    /// Rows (positions) added.
    pub rows: u64,
}

impl Gram {
    /// Element `(i, j)` of XᵀX.
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.xtx[i * self.dim + j]
    }
}

/// Which inputs a [`SecondMoment`] keeps (XᵀX costs `d²` per row: collect only what is used).
#[derive(Debug, Clone, PartialEq)]
pub enum InputSelection {
    All,
    Only(Vec<LinearInput>),
}

impl InputSelection {
    fn contains(&self, input: LinearInput) -> bool {
        match self {
            InputSelection::All => true,
            InputSelection::Only(list) => list.contains(&input),
        }
    }
}

/// XᵀX per selected linear input (the second moment GPTQ builds its Hessian `2XᵀX/n` from).
#[derive(Debug, Clone, PartialEq)]
pub struct SecondMoment {
    pub selection: InputSelection,
    pub inputs: BTreeMap<LinearInput, Gram>,
    /// Scratch: the block's rows transposed (column-major), so each product reads two
    /// contiguous columns.
    cols: Vec<f32>,
}

impl SecondMoment {
    pub fn new(selection: InputSelection) -> SecondMoment {
        SecondMoment { selection, inputs: BTreeMap::new(), cols: Vec::new() }
    }
}

impl ActivationObserver for SecondMoment {
    fn observe(&mut self, input: LinearInput, rows: &[f32], width: usize) {
        if !self.selection.contains(input) {
            return;
        }
        let n = rows.len() / width;
        let g = self.inputs.entry(input).or_insert_with(|| Gram { dim: width, xtx: vec![0.0; width * width], rows: 0 });
        assert_eq!(g.dim, width, "{input:?}: rows of {width} values after rows of {}", g.dim);
        self.cols.clear();
        self.cols.resize(n * width, 0.0);
        for (r, row) in rows.chunks_exact(width).enumerate() {
            for (c, &x) in row.iter().enumerate() {
                self.cols[c * n + r] = x;
            }
        }
        // The upper triangle from the block's columns, then mirrored: XᵀX is symmetric. Rows of
        // the triangle are dealt round-robin to threads (row i costs width − i products); each
        // element is the same sum whichever thread computes it.
        let cols = &self.cols;
        let upper_row = |i: usize, row: &mut [f64]| {
            let ci = &cols[i * n..(i + 1) * n];
            for (j, out) in row.iter_mut().enumerate().skip(i) {
                let cj = &cols[j * n..(j + 1) * n];
                *out += ci.iter().zip(cj).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum::<f64>();
            }
        };
        let threads = if width * width * n < 1 << 20 { 1 } else { crate::model::weights::default_threads().max(1) };
        if threads == 1 {
            // No thread spawned (the single-thread wasm build has none).
            g.xtx.chunks_exact_mut(width).enumerate().for_each(|(i, row)| upper_row(i, row));
        } else {
            let mut parts: Vec<Vec<(usize, &mut [f64])>> = (0..threads).map(|_| Vec::new()).collect();
            for (i, row) in g.xtx.chunks_exact_mut(width).enumerate() {
                parts[i % threads].push((i, row));
            }
            #[cfg(not(target_arch = "wasm32"))]
            std::thread::scope(|scope| {
                for part in parts {
                    scope.spawn(move || part.into_iter().for_each(|(i, row)| upper_row(i, row)));
                }
            });
            // wasm32 cannot spawn threads: the parts go to the pool (web workers when threaded).
            #[cfg(target_arch = "wasm32")]
            {
                let parts: Vec<std::sync::Mutex<_>> = parts.into_iter().map(std::sync::Mutex::new).collect();
                crate::model::pool::run(parts.len(), &|t| {
                    let mut part = parts[t].lock().unwrap_or_else(|e| e.into_inner());
                    part.iter_mut().for_each(|(i, row)| upper_row(*i, row));
                });
            }
        }
        for i in 0..width {
            for j in i + 1..width {
                g.xtx[j * width + i] = g.xtx[i * width + j];
            }
        }
        g.rows += n as u64;
    }
}

/// Several observers fed the same rows (e.g. [`SumSquares`] and [`SecondMoment`] in one run).
pub struct Both<'a>(pub &'a mut dyn ActivationObserver, pub &'a mut dyn ActivationObserver);

impl ActivationObserver for Both<'_> {
    fn observe(&mut self, input: LinearInput, rows: &[f32], width: usize) {
        self.0.observe(input, rows, width);
        self.1.observe(input, rows, width);
    }
}
