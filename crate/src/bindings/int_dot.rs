//! `IntDotBench`: the CPU integer path's per-token int8 dot (`model::int8_dot::dot_i8_offset`,
//! SIMD128 `i32x4.dot_i16x8` in this build) next to the f32 GEMV on the same values, so
//! tests/wasm/int_dot.test.ts can hold the SIMD128 sums equal to the portable ones and
//! scripts/bench-int-dot-wasm.mjs can time integer against float products on one matrix.

use wasm_bindgen::prelude::*;

use super::LabJsError;
use crate::error::Input;
use crate::formats::TensorShape;
use crate::model::int8_dot::{dot_i8_offset, dot_i8_offset_ref};
use crate::model::Matrix;

/// One activation row of int8 codes and a matrix of offset-binary int8 weight codes (`q + 128`,
/// as `int8-sym-channel` stores them), plus the same values as an f32 matrix and vector.
#[wasm_bindgen]
pub struct IntDotBench {
    cols: usize,
    codes: Vec<i8>,
    weights: Vec<u8>,
    x: Vec<f32>,
    float: Matrix,
    sums: Vec<i32>,
    out: Vec<f32>,
}

#[wasm_bindgen]
impl IntDotBench {
    /// `codes`: K activation codes; `weights`: rows × K offset-binary weight codes.
    #[wasm_bindgen(constructor)]
    pub fn new(codes: &[i8], weights: &[u8]) -> Result<IntDotBench, LabJsError> {
        let cols = codes.len();
        if cols == 0 || !weights.len().is_multiple_of(cols) {
            return Err(LabJsError::bad(
                Input::Data,
                format!("{} weight codes are not whole rows of {cols} activation codes", weights.len()),
            ));
        }
        let rows = weights.len() / cols;
        let values = weights.iter().map(|&w| f32::from(w) - 128.0).collect();
        let float = Matrix::from_f32(values, TensorShape::new(rows, cols))
            .map_err(|e| LabJsError::bad(Input::Data, e.to_string()))?;
        Ok(IntDotBench {
            cols,
            codes: codes.to_vec(),
            weights: weights.to_vec(),
            x: codes.iter().map(|&c| f32::from(c)).collect(),
            float,
            sums: vec![0; rows],
            out: vec![0.0; rows],
        })
    }

    /// Each row's `Σ a·(w − 128)` by the kernel the CPU integer path uses (SIMD128 here).
    pub fn sums(&self) -> Vec<i32> {
        self.weights.chunks_exact(self.cols).map(|w| dot_i8_offset(&self.codes, w)).collect()
    }

    /// The same sums by the portable loop.
    #[wasm_bindgen(js_name = sumsPortable)]
    pub fn sums_portable(&self) -> Vec<i32> {
        self.weights.chunks_exact(self.cols).map(|w| dot_i8_offset_ref(&self.codes, w)).collect()
    }

    /// The integer GEMV into the held buffer (the timed call); returns the first sum.
    #[wasm_bindgen(js_name = runInt)]
    pub fn run_int(&mut self) -> i32 {
        for (s, w) in self.sums.iter_mut().zip(self.weights.chunks_exact(self.cols)) {
            *s = dot_i8_offset(&self.codes, w);
        }
        std::hint::black_box(&self.sums);
        self.sums[0]
    }

    /// The f32 GEMV (`Matrix::matvec`, the forward's f32 kernel) of the same values on one thread;
    /// returns the first output.
    #[wasm_bindgen(js_name = runFloat)]
    pub fn run_float(&mut self) -> f32 {
        self.float.matvec_threads(&self.x, &mut self.out, 1);
        std::hint::black_box(&self.out);
        self.out[0]
    }
}
