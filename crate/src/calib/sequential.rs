//! Layer-sequential calibration: each layer's inputs come from the model whose EARLIER layers are
//! already quantized, the order of GPTQ's reference (`llama_sequential` in IST-DASLab/gptq
//! `llama.py`, with `--true-sequential`) and of AWQ's: a layer is calibrated on what its
//! quantized predecessors actually hand it, so it can correct for their error too.
//!
//! Within a layer the inputs are taken in forward order, each after the matrices before it in
//! the layer are quantized (the reference's true-sequential groups `[q, k, v]`, `[o]`,
//! `[up, gate]`, `[down]`):
//!
//! 1. the attention norm's output → [`LayerQuantizer::quantize_input`] replaces `attn_q/k/v`;
//! 2. the attention output (with the quantized q/k/v) → `attn_output`;
//! 3. the FFN norm's output (after the quantized attention half) → `ffn_gate/up`;
//! 4. `silu(gate)·up` (quantized gate/up) → `ffn_down`;
//!
//! then the layer's output with all seven matrices quantized is the next layer's input.
//!
//! Instead of re-running the model from the embedding for every step (the definition, quadratic in
//! the depth), the residual stream of every calibration position after the last finished layer is
//! kept (`tokens × dim` values), and each step runs only the half-layer it needs
//! ([`attention_half`], [`ffn_half`], the very code of the batched forward), over the same chunks
//! and blocks [`collect`](super::collect) uses. The statistics are therefore bit-identical to
//! running [`collect`](super::collect) on the partly quantized model (tests/rust/calib_sequential.rs
//! checks this against that definition).

use super::accumulate::{Gram, InputSelection, SecondMoment};
use super::{chunk_tokens, CalibError, CalibHooks, CalibRun, ChunkPlan};
use crate::model::forward_batch::{attention_half, ffn_half, ActivationObserver, BatchState};
use crate::model::weights::{Layer, Weights};
use crate::model::{LinearInput, Model, State};

/// A layer-sequential method: which statistics it collects per input, and what it does with them.
/// [`run_sequential_with`] creates one `Stats` per input, shows it every row of both inputs
/// of the half-layer pass (it keeps those of its own input), then hands it to
/// [`SequentialQuantizer::quantize`].
pub trait SequentialQuantizer {
    type Stats: ActivationObserver;
    /// An empty statistic for `input`.
    fn stats(&mut self, input: LinearInput) -> Self::Stats;
    /// Replace (or rescale) the matrices of `layer` that read `input`, given its statistics;
    /// what is left in `layer` is what the rest of the run sees. An error stops the run.
    fn quantize(&mut self, input: LinearInput, stats: Self::Stats, layer: &mut Layer) -> Result<(), String>;
}

/// Quantizes the matrices of one layer that read one input, given that input's statistics.
pub trait LayerQuantizer {
    /// `gram` is XᵀX of `input` over every calibration position, as the partly quantized model
    /// computes it; replace the matrices of `layer` named by `input.matrix_names()` with their
    /// quantized versions (those left alone stay as they are for the rest of the run). An error
    /// stops the run.
    fn quantize_input(&mut self, input: LinearInput, gram: &Gram, layer: &mut Layer) -> Result<(), String>;
}

/// Which half of a layer a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Attention,
    Ffn,
}

impl Half {
    fn inputs(self, layer: usize) -> [LinearInput; 2] {
        match self {
            Half::Attention => [LinearInput::Attention { layer }, LinearInput::AttentionOutput { layer }],
            Half::Ffn => [LinearInput::Ffn { layer }, LinearInput::FfnDown { layer }],
        }
    }
}

/// A [`LayerQuantizer`] as a [`SequentialQuantizer`] collecting XᵀX.
struct GramQuantizer<'a>(&'a mut dyn LayerQuantizer);

impl SequentialQuantizer for GramQuantizer<'_> {
    type Stats = SecondMoment;

    fn stats(&mut self, input: LinearInput) -> SecondMoment {
        SecondMoment::new(InputSelection::Only(vec![input]))
    }

    fn quantize(&mut self, input: LinearInput, stats: SecondMoment, layer: &mut Layer) -> Result<(), String> {
        let gram = stats.inputs.get(&input).expect("every pass observes both inputs of its half");
        self.0.quantize_input(input, gram, layer)
    }
}

/// Runs the layer-sequential calibration of `model` over the chunks of `tokens` that `plan`
/// selects, handing each input's statistics to `quantizer` in the order of the module docs.
/// Returns the run and the weights with every replacement the quantizer made.
pub fn run_sequential(
    model: &Model,
    tokens: &[u32],
    plan: &ChunkPlan,
    quantizer: &mut dyn LayerQuantizer,
    hooks: CalibHooks<'_>,
) -> Result<(CalibRun, Weights), CalibError> {
    run_sequential_with(model, tokens, plan, &mut GramQuantizer(quantizer), hooks)
}

/// [`run_sequential`] with any statistic: `quantizer` says what it collects per input.
pub fn run_sequential_with<Q: SequentialQuantizer>(
    model: &Model,
    tokens: &[u32],
    plan: &ChunkPlan,
    quantizer: &mut Q,
    mut hooks: CalibHooks<'_>,
) -> Result<(CalibRun, Weights), CalibError> {
    let c = &model.config;
    let chunks = chunk_tokens(model, tokens, plan)?;
    let mut weights = model.weights.clone();
    let block = plan.block.clamp(1, plan.chunk);
    let mut state = State::new(c, plan.chunk);
    state.threads = plan.threads.max(1);
    let mut batch = BatchState::new(c, block);

    // The residual stream of every position after the last finished layer: the embeddings first.
    let mut residual: Vec<Vec<f32>> = chunks
        .iter()
        .map(|chunk| {
            let mut x = vec![0f32; chunk.len() * c.dim];
            for (&token, row) in chunk.iter().zip(x.chunks_exact_mut(c.dim)) {
                weights.embed(token, row);
            }
            x
        })
        .collect();

    let run_tokens = chunks.len() * plan.chunk;
    // Three passes per half-layer: one per input, one for the output.
    let total = run_tokens * c.n_layers * 6;
    let mut done = 0;
    let mut pass = |weights: &Weights,
                    residual: &mut [Vec<f32>],
                    layer: usize,
                    half: Half,
                    observer: Option<&mut Q::Stats>|
     -> Result<(), CalibError> {
        let lw = &weights.layers[layer];
        let keep_output = observer.is_none();
        let mut observer = observer;
        let mut observe = |input: LinearInput, rows: &[f32], width: usize| {
            if let Some(o) = observer.as_deref_mut() {
                o.observe(input, rows, width);
            }
        };
        for x in residual.iter_mut() {
            for (b, rows) in x.chunks_mut(block * c.dim).enumerate() {
                let n = rows.len() / c.dim;
                batch.residual_mut()[..rows.len()].copy_from_slice(rows);
                match half {
                    Half::Attention => attention_half(c, lw, layer, &mut state, &mut batch, n, b * block, &mut observe),
                    Half::Ffn => ffn_half(c, lw, layer, &mut state, &mut batch, n, &mut observe),
                }
                if keep_output {
                    rows.copy_from_slice(&batch.residual_mut()[..rows.len()]);
                }
                done += n;
                if let Some(p) = hooks.progress.as_mut() {
                    if !p(done, total) {
                        return Err(CalibError::Cancelled { done, total });
                    }
                }
            }
        }
        Ok(())
    };

    for layer in 0..c.n_layers {
        for half in [Half::Attention, Half::Ffn] {
            for input in half.inputs(layer) {
                let mut stats = quantizer.stats(input);
                pass(&weights, &mut residual, layer, half, Some(&mut stats))?;
                quantizer
                    .quantize(input, stats, &mut weights.layers[layer])
                    .map_err(|reason| CalibError::Quantizer { input, reason })?;
            }
            pass(&weights, &mut residual, layer, half, None)?;
        }
    }
    Ok((CalibRun { chunks: chunks.len(), chunk: plan.chunk, tokens: run_tokens }, weights))
}
