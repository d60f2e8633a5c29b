//! `quantize --threads N`: each tensor's row chunks ([`crate::formats::chunked`]) quantized on
//! N cores, one tensor at a time, so memory stays one tensor's input and output whatever N is.
//!
//! rayon rather than `model::pool`: the pool is built for the forward's fixed fan-out (one job
//! split in equal row bands, every worker busy until all finish), while a tensor here is a few
//! hundred chunks of uneven cost (k-quant searches, saturation fallbacks, tails) that
//! work-stealing balances without tuning. The chunks are the same for any N and are joined in
//! order, so the output bytes do not depend on N.

use crate::formats::chunked::{merge, plan, quantize_chunk};
use crate::formats::quantized::check_input;
use crate::formats::{quantize, QuantError, QuantScheme, QuantizedTensor, TensorShape};
use crate::io::export::{ExportError, RowSource, TensorMethod};
use rayon::prelude::*;
use std::ops::Range;

/// Round to nearest (the format's own quantizer) with a tensor's chunks on a thread pool.
pub struct ParallelRtn {
    pool: rayon::ThreadPool,
}

impl ParallelRtn {
    /// A pool of `threads` workers (at least one).
    pub fn new(threads: usize) -> Result<ParallelRtn, String> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("quantize-{i}"))
            .build()
            .map_err(|e| format!("cannot start {threads} threads: {e}"))?;
        Ok(ParallelRtn { pool })
    }

    /// The `[rows, cols]` tensor whose rows `decode` writes, quantized with `scheme`: each
    /// chunk's rows decoded and quantized on a worker, so one chunk's values per thread are in
    /// memory, never the tensor's. Errors name the tensor's row; with several, the first in
    /// row order is returned whatever the thread count.
    pub fn quantize_rows(
        &self,
        name: &str,
        scheme: &QuantScheme,
        shape: TensorShape,
        decode: RowSource<'_>,
    ) -> Result<QuantizedTensor, ExportError> {
        let err = |e: QuantError| ExportError::Tensor(format!("tensor '{name}': {e}"));
        let Some(chunks) = plan(scheme, shape) else {
            let mut values = vec![0f32; shape.len()];
            decode(0..shape.rows, &mut values)?;
            return quantize(scheme, &values, shape).map_err(err);
        };
        let one = |rows: Range<usize>| {
            let mut part = vec![0f32; rows.len() * shape.cols];
            decode(rows.clone(), &mut part)?;
            quantize_chunk(scheme, &part, shape.cols, rows.start).map_err(err)
        };
        let parts: Vec<Result<QuantizedTensor, ExportError>> =
            self.pool.install(|| chunks.into_par_iter().map(one).collect());
        Ok(merge(scheme, shape, parts.into_iter().collect::<Result<Vec<_>, _>>()?))
    }
}

impl TensorMethod for ParallelRtn {
    fn quantize(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        values: &[f32],
        shape: TensorShape,
    ) -> Result<QuantizedTensor, ExportError> {
        // Rows copied out of `values` chunk by chunk: a little copying for one code path.
        check_input(scheme, values, shape).map_err(|e| ExportError::Tensor(format!("tensor '{name}': {e}")))?;
        let decode = |rows: Range<usize>, out: &mut [f32]| {
            out.copy_from_slice(&values[rows.start * shape.cols..rows.end * shape.cols]);
            Ok(())
        };
        self.quantize_rows(name, scheme, shape, &decode)
    }

    fn quantize_rows(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        shape: TensorShape,
        decode: RowSource<'_>,
    ) -> Result<QuantizedTensor, ExportError> {
        ParallelRtn::quantize_rows(self, name, scheme, shape, decode)
    }
}
