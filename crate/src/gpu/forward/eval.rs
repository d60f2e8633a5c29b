//! Evaluation on the GPU: the [`LogitSource`] implementation that lets `model::eval::evaluate`
//! run on a [`GpuModel`] unchanged, with every position's logits computed in blocks.
//!
//! The evaluation announces each window ([`LogitSource::lookahead`]); the window is then run in
//! blocks of up to [`EvalBlock::rows`] positions, each one submission: the batched forward
//! (GEMM matmuls, causal attention over the block, as prefill), the final norm on every row and
//! the classifier on every row into a `(rows, vocab)` buffer, read back once per block. Calls
//! that do not follow the announced window (another token, a jump) run one position at a time,
//! as decoding does. Either way the KV cache holds exactly the positions run so far.
//!
//! Two drivers score the logits: natively, the [`LogitSource`] implementation below lets
//! `model::eval::evaluate` run a `GpuModel` beside CPU sources (each readback blocks on
//! `pollster`); [`evaluate_on_gpu`] runs only GPU models and awaits each readback, so it also
//! runs in wasm, where a buffer map completes only once the browser's event loop turns. Both feed
//! the same [`Scorer`], so the numbers are `evaluate`'s.

use super::{dispatch, groups, GpuModel, GpuModelError, Step};
use crate::gpu::matmul::BoundMatmul;
use crate::gpu::{GpuContext, GpuError};
#[cfg(not(target_arch = "wasm32"))]
use crate::model::eval::LogitSource;
use crate::model::eval::{EvalError, EvalHooks, EvalPlan, Metrics, Scorer};
use crate::model::ModelError;

/// The buffers of block evaluation, created at the first announced window.
pub(super) struct EvalBlock {
    /// Positions per block: the model's batch, fewer where `rows × vocab` floats would pass the
    /// adapter's binding limit.
    rows: usize,
    /// (rows, vocab) logits of every row of a block, and its MAP_READ copy.
    logits: wgpu::Buffer,
    read: wgpu::Buffer,
    /// The classifier bound to the normed rows (`xb`) → `logits`.
    classifier: BoundMatmul,
}

/// The announced window and which of its positions' logits are on the host.
#[derive(Default)]
pub(super) struct Ahead {
    window: Vec<u32>,
    /// Positions `start..start + len` have their logits in `host` (row-major, vocab per row).
    start: usize,
    len: usize,
    host: Vec<f32>,
}

impl EvalBlock {
    fn new(m: &GpuModel) -> Result<EvalBlock, GpuError> {
        let gpu: &GpuContext = &m.gpu;
        let vocab = m.config.vocab_size;
        let row_bytes = (vocab * 4) as u64;
        let max = gpu.adapter.max_storage_buffer_binding_size.min(gpu.adapter.max_buffer_size);
        let rows = m.max_batch.min((max / row_bytes).max(1) as usize);
        let bytes = rows as u64 * row_bytes;
        gpu.check_binding_size("the logits of an evaluation block", bytes)?;
        let buffer = |label: &str, usage: wgpu::BufferUsages| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage,
                mapped_at_creation: false,
            })
        };
        let logits = buffer("block logits", wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
        let read = buffer("block logits readback", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
        let classifier = m.output.as_ref().unwrap_or(&m.embed).bind_product(gpu, &m.act.xb, &logits);
        Ok(EvalBlock { rows, logits, read, classifier })
    }
}

impl GpuModel {
    /// Positions per evaluation block, creating the block's buffers at the first call (the
    /// count depends on the adapter's binding limit, so windows are split by it).
    async fn eval_rows(&mut self) -> Result<usize, GpuModelError> {
        if self.eval.is_none() {
            let block = self.gpu.scoped("allocating the evaluation block", || EvalBlock::new(self)).await??;
            self.eval = Some(block);
        }
        Ok(self.eval.as_ref().expect("created above").rows)
    }

    /// Runs `tokens` at positions `pos0..` (positions before `pos0` already run), at most
    /// [`EvalBlock::rows`] of them, in one submission, and returns every position's logits
    /// (`tokens.len() × vocab`, row-major).
    async fn block_logits(&mut self, tokens: &[u32], pos0: usize) -> Result<Vec<f32>, GpuModelError> {
        self.check_tokens(tokens, pos0)?;
        let rows = self.eval_rows().await?;
        let gpu = &*self.gpu;
        let block = self.eval.as_ref().expect("created by eval_rows");
        assert!(tokens.len() <= rows, "callers split windows into blocks of `eval_rows`");
        let n = tokens.len();
        let bytes = (n * self.config.vocab_size * 4) as u64;
        let step = Step { pos0: pos0 as u32, n: n as u32, ..Step::default() };
        gpu.scoped("the GPU forward (evaluation block)", || -> Result<(), GpuError> {
            gpu.queue.write_buffer(&self.act.step, 0, bytemuck::bytes_of(&step));
            gpu.queue.write_buffer(&self.act.ids, 0, bytemuck::cast_slice(tokens));
            let mut enc =
                gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("eval block") });
            self.record_layers(&mut enc, tokens)?;
            dispatch(&mut enc, &self.pipes.rmsnorm, &self.binds.output_norm, groups::rmsnorm(n));
            block.classifier.encode(gpu, &mut enc, n as u32)?;
            enc.copy_buffer_to_buffer(&block.logits, 0, &block.read, 0, bytes);
            gpu.queue.submit([enc.finish()]);
            Ok(())
        })
        .await??;
        let all = gpu.read_buffer(&block.read).await?;
        Ok(bytemuck::cast_slice(&all[..bytes as usize]).to_vec())
    }

    /// Announces the window the next [`Self::window_logits`] calls will walk (positions
    /// `0..tokens.len()`, in order), after a [`Self::reset`].
    pub fn announce_window(&mut self, tokens: &[u32]) {
        self.ahead = Some(Ahead { window: tokens.to_vec(), ..Ahead::default() });
    }

    /// The logits after `token` at `pos`: from the block that holds `pos` when the call follows
    /// the announced window, else one position at a time ([`Self::logits`]).
    pub async fn window_logits(&mut self, token: u32, pos: usize) -> Result<&[f32], GpuModelError> {
        let vocab = self.config.vocab_size;
        let mut ahead = self.ahead.take().filter(|a| a.window.get(pos) == Some(&token));
        if let Some(a) = ahead.as_mut() {
            if !(a.start..a.start + a.len).contains(&pos) {
                if pos != a.start + a.len {
                    // Not the next position of the window: leave the block path for this window.
                    return self.logits(token, pos).await;
                }
                let rows = self.eval_rows().await?;
                let end = a.window.len().min(pos + rows);
                let tokens = a.window[pos..end].to_vec();
                a.host = self.block_logits(&tokens, pos).await?;
                (a.start, a.len) = (pos, tokens.len());
            }
            let r = pos - a.start;
            self.host_logits.copy_from_slice(&a.host[r * vocab..(r + 1) * vocab]);
            self.ahead = ahead;
            return Ok(&self.host_logits);
        }
        self.logits(token, pos).await
    }
}

/// A GPU failure as a `ModelError`, keeping the GPU's own error (and its kind: `deviceLost`,
/// `limitExceeded`, ...) inside.
fn model_error(e: GpuModelError) -> ModelError {
    match e {
        GpuModelError::Model(m) => m,
        other => ModelError::Gpu(Box::new(other)),
    }
}

/// `model::eval::evaluate` over GPU models only, awaiting each block's readback: `models[0]` is
/// the base; every model runs each window in lockstep (one block of positions per model, then
/// their rows are scored position by position). Same hooks, same metrics, same errors
/// (`Cancelled` from the `positions` hook, a GPU failure as [`ModelError::Gpu`]).
pub async fn evaluate_on_gpu(
    plan: &EvalPlan,
    models: &mut [&mut GpuModel],
    hooks: EvalHooks<'_>,
) -> Result<Vec<Metrics>, EvalError> {
    let mut scorer = Scorer::new(plan, models.len(), hooks)?;
    let per_window = scorer.positions_per_window();
    for (wi, window) in plan.windows.iter().enumerate() {
        for m in models.iter_mut() {
            m.reset().await.map_err(model_error)?;
            m.announce_window(&window[..per_window]);
        }
        for (pos, &token) in window[..per_window].iter().enumerate() {
            for (i, m) in models.iter_mut().enumerate() {
                let t0 = scorer.now();
                let logits = m.window_logits(token, pos).await.map_err(model_error)?;
                scorer.add_secs_since(i, t0);
                match i {
                    0 => scorer.base(wi, pos, logits)?,
                    _ => scorer.source(i, logits)?,
                }
            }
            scorer.position_done(wi, pos)?;
        }
        scorer.window_done(wi);
    }
    Ok(scorer.finish())
}

/// A GPU failure becomes a `ModelError` (its text names the GPU error); [`GpuModel::take_error`]
/// returns the original.
#[cfg(not(target_arch = "wasm32"))]
impl LogitSource for GpuModel {
    fn begin_window(&mut self) {
        // Belt and braces, like the CPU source; an error here shows up at the next `logits`.
        if let Err(e) = pollster::block_on(self.reset()) {
            self.last_error = Some(e);
        }
    }

    fn lookahead(&mut self, tokens: &[u32]) {
        self.announce_window(tokens);
    }

    fn logits(&mut self, token: u32, pos: usize) -> Result<&[f32], ModelError> {
        if let Err(e) = pollster::block_on(self.window_logits(token, pos)) {
            self.last_error = Some(e.clone());
            return Err(model_error(e));
        }
        Ok(&self.host_logits)
    }
}
