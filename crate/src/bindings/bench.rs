//! `QuantBench`: the quantizer timed the way the native bench (crate/examples/bench_quantize.rs)
//! times it — on f32 values already in (wasm) memory, into an output buffer allocated before the
//! timed call. `quantizeGgml` also copies its JS input into wasm memory and its output back out,
//! which on 64 MB of input is a large share of the call; scripts/bench-quantize-wasm.mjs times
//! both and reports them in separate columns.

use wasm_bindgen::prelude::*;

use super::{ggml_type, js_err, partial_blocks, LabJsError};
use crate::formats::quantize_row;

/// f32 values copied into wasm memory once, quantized on demand to any ggml block type.
#[wasm_bindgen]
pub struct QuantBench {
    input: Vec<f32>,
    output: Vec<u8>,
}

#[wasm_bindgen]
impl QuantBench {
    /// Copies `values` into wasm memory (the only copy; `run` reads them in place).
    #[wasm_bindgen(constructor)]
    pub fn new(values: &[f32]) -> QuantBench {
        QuantBench { input: values.to_vec(), output: Vec::new() }
    }

    /// Quantizes the held values to `type_name` into the held output buffer and returns the
    /// output's length in bytes. The buffer is resized only when the type's size changes, so
    /// after one call per type a call is the quantizer alone, as in the native bench.
    pub fn run(&mut self, type_name: &str) -> Result<usize, LabJsError> {
        let ty = ggml_type(type_name)?;
        let bytes = ty.bytes_for(self.input.len() as u64).ok_or_else(|| partial_blocks(self.input.len(), ty))?;
        self.output.resize(bytes as usize, 0);
        quantize_row(ty, &self.input, &mut self.output).map_err(js_err)?;
        // The output lives on in `self`, so the work cannot be dropped; black_box makes that explicit.
        std::hint::black_box(&self.output);
        Ok(self.output.len())
    }

    /// A copy of the bytes of the last `run` (for tests that it matches `quantizeGgml`).
    pub fn output(&self) -> Vec<u8> {
        self.output.clone()
    }
}
