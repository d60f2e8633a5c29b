//! Calibration: run a model over calibration tokens with the batched CPU forward and hand every
//! linear layer's INPUT rows to an [`ActivationObserver`] — the data the data-driven quantizers
//! need (llama.cpp's importance matrix, GPTQ's Hessian, AWQ's channel magnitudes).
//!
//! - [`LinearInput`] names an input shared by several matrices: `attn_q/k/v` read the attention
//!   norm's output, `ffn_gate/up` the FFN norm's output; `attn_output` and `ffn_down` their own;
//!   the classifier the final norm's output.
//! - [`accumulate`]: [`SumSquares`] (Σx² and rows per column, what `llama-imatrix` collects) and
//!   [`SecondMoment`] (XᵀX per selected input, for GPTQ).
//! - [`collect`] cuts the tokens into chunks the way `llama-imatrix` does (`compute_imatrix` in
//!   llama.cpp's `tools/imatrix/imatrix.cpp`, read in the copy vendored by llama-cpp-python
//!   0.3.36): chunk `i` is `tokens[i·chunk .. (i+1)·chunk]`, the remainder is dropped, each chunk
//!   runs from a fresh KV cache, and when the model's metadata asks for a BOS
//!   (`tokenizer.ggml.add_bos_token`) the chunk's first token is REPLACED by BOS. One difference:
//!   llama-imatrix refuses texts under two chunks; here one chunk is enough (tests use tiny runs).
//!
//! - [`ranges`]: static activation ranges (min-max, percentile, MSE, KL) for
//!   [`crate::model::act_quant`]; [`act_setup`]: a whole activation-quantization setup (ranges,
//!   SmoothQuant, LLM.int8()) as the CLI's eval and the lab's Compare run it.
//!
//! Calibration text must never be the evaluation text: the default is Moby-Dick chapters
//! [`CALIBRATION_CHAPTERS`] (4+), disjoint from the eval chapters 1–3.

pub mod accumulate;
pub mod act_setup;
pub mod ranges;
pub mod sequential;

pub use crate::model::eval::CALIBRATION_CHAPTERS;
pub use crate::model::{ActivationObserver, LinearInput};
pub use accumulate::{Both, ColumnSums, Gram, InputSelection, SecondMoment, SumSquares};

use crate::model::forward_batch::{forward_batch_observed, BatchLogits, BatchState, Block, DEFAULT_BLOCK};
use crate::model::{Model, ModelError, State};
use crate::tokenizer::Tokenizer;

/// `llama-imatrix`'s default context (`-c 512`): the chunk length.
pub const DEFAULT_CHUNK: usize = 512;

/// Default number of calibration tokens.
pub const DEFAULT_TOKENS: usize = 4096;

/// Characters of default calibration text read per wanted token: comfortably more than the ~4
/// characters per token of English prose, so the tokens asked for are there without reading the
/// whole book (the CLI and the lab read chapters until they hold this many per token).
pub const CHARS_PER_TOKEN: usize = 8;

/// How the tokens are cut and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    /// Tokens per chunk (each chunk starts from an empty KV cache).
    pub chunk: usize,
    /// Use at most this many tokens (whole chunks only).
    pub max_tokens: usize,
    /// Replace each chunk's first token by this one (the BOS, when the model adds one).
    pub bos: Option<u32>,
    /// Positions per batched forward call.
    pub block: usize,
    /// Threads for the matrix products.
    pub threads: usize,
}

impl ChunkPlan {
    /// `llama-imatrix`'s cutting with `chunk` tokens per chunk and at most `max_tokens` tokens.
    pub fn new(chunk: usize, max_tokens: usize, bos: Option<u32>) -> ChunkPlan {
        ChunkPlan { chunk, max_tokens, bos, block: DEFAULT_BLOCK, threads: 1 }
    }

    /// Number of chunks run over `n_tokens` tokens.
    pub fn chunks(&self, n_tokens: usize) -> usize {
        if self.chunk == 0 {
            return 0;
        }
        n_tokens.min(self.max_tokens) / self.chunk
    }
}

/// The tokens and chunk plan of `llama-imatrix` over `text`: tokenized with the model's BOS
/// setting, chunks of `chunk` tokens (each chunk's first token replaced by the BOS when the
/// model adds one), at most `max_tokens` tokens. `quantlab imatrix` and the lab both cut this way.
pub fn imatrix_tokens(tokenizer: &Tokenizer, text: &str, chunk: usize, max_tokens: usize) -> (Vec<u32>, ChunkPlan) {
    let add_bos = tokenizer.add_bos_default();
    let tokens = tokenizer.encode(text, add_bos, false);
    let bos = if add_bos { tokenizer.bos_id() } else { None };
    (tokens, ChunkPlan::new(chunk, max_tokens, bos))
}

/// The tokens and chunk plan of GPTQ's calibration over `text` (`quantlab quantize --method gptq`
/// and the lab): tokenized without a BOS, chunks of [`DEFAULT_CHUNK`] tokens (fewer when
/// `max_tokens` or the model's context `seq_len` is smaller), each starting with the BOS when the
/// model adds one.
pub fn gptq_tokens(tokenizer: &Tokenizer, text: &str, max_tokens: usize, seq_len: usize) -> (Vec<u32>, ChunkPlan) {
    let ids = tokenizer.encode(text, false, false);
    let bos = if tokenizer.add_bos_default() { tokenizer.bos_id() } else { None };
    let chunk = DEFAULT_CHUNK.min(max_tokens).min(seq_len).max(1);
    (ids, ChunkPlan::new(chunk, max_tokens, bos))
}

/// Why a calibration run stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibError {
    #[error("the calibration text has {tokens} tokens (at most {max_tokens} used): not one chunk of {chunk}")]
    TooFewTokens { tokens: usize, max_tokens: usize, chunk: usize },
    #[error("a chunk of {chunk} tokens is longer than the model's context ({seq_len})")]
    ChunkTooLong { chunk: usize, seq_len: usize },
    #[error("calibration cancelled after {done} of {total} tokens")]
    Cancelled { done: usize, total: usize },
    #[error("quantizing the matrices that read {input:?}: {reason}")]
    Quantizer { input: LinearInput, reason: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Range(#[from] ranges::RangeRuleError),
}

/// What [`collect`] ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalibRun {
    pub chunks: usize,
    pub chunk: usize,
    /// Tokens run (`chunks × chunk`).
    pub tokens: usize,
}

/// Progress and cancel, as [`crate::model::eval::EvalHooks`] offers them.
#[derive(Default)]
pub struct CalibHooks<'a> {
    /// Called after each batched block with `(tokens done, tokens total)`; returning `false`
    /// stops the run with [`CalibError::Cancelled`].
    pub progress: Option<&'a mut dyn FnMut(usize, usize) -> bool>,
}

/// Runs the chunks of `tokens` that `plan` selects through `model`, showing `observer` every
/// linear layer's input rows (see the module docs).
pub fn collect(
    model: &Model,
    tokens: &[u32],
    plan: &ChunkPlan,
    observer: &mut dyn ActivationObserver,
    mut hooks: CalibHooks<'_>,
) -> Result<CalibRun, CalibError> {
    let c = &model.config;
    let chunks = chunk_tokens(model, tokens, plan)?;
    let total = chunks.len() * plan.chunk;
    let mut state = State::new(c, plan.chunk);
    state.threads = plan.threads.max(1);
    let block = plan.block.clamp(1, plan.chunk);
    let mut batch = BatchState::new(c, block);
    let mut done = 0;
    for chunk in &chunks {
        // A fresh cache per chunk: attention at `pos` reads only rows 0..=pos, all written in
        // this chunk, so clearing is for clarity, not correctness.
        state.kv.clear();
        for (b, part) in chunk.chunks(block).enumerate() {
            let blk = Block { tokens: part, pos0: b * block, logits: BatchLogits::Nothing };
            forward_batch_observed(c, &model.weights, &mut state, &mut batch, blk, Some(&mut *observer));
            done += part.len();
            if let Some(p) = hooks.progress.as_mut() {
                if !p(done, total) {
                    return Err(CalibError::Cancelled { done, total });
                }
            }
        }
    }
    let n_chunks = chunks.len();
    Ok(CalibRun { chunks: n_chunks, chunk: plan.chunk, tokens: total })
}

/// The chunks `plan` cuts from `tokens` (each chunk's first token replaced by the BOS when the
/// plan has one), checked against the model's vocabulary and context.
fn chunk_tokens(model: &Model, tokens: &[u32], plan: &ChunkPlan) -> Result<Vec<Vec<u32>>, CalibError> {
    let c = &model.config;
    let n_chunks = plan.chunks(tokens.len());
    if n_chunks == 0 {
        return Err(CalibError::TooFewTokens { tokens: tokens.len(), max_tokens: plan.max_tokens, chunk: plan.chunk });
    }
    if plan.chunk > c.seq_len {
        return Err(CalibError::ChunkTooLong { chunk: plan.chunk, seq_len: c.seq_len });
    }
    let mut chunks = Vec::with_capacity(n_chunks);
    for i in 0..n_chunks {
        let mut chunk = tokens[i * plan.chunk..(i + 1) * plan.chunk].to_vec();
        if let Some(bos) = plan.bos {
            chunk[0] = bos;
        }
        if let Some(&token) = chunk.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(ModelError::TokenOutOfRange { token, vocab_size: c.vocab_size }.into());
        }
        chunks.push(chunk);
    }
    Ok(chunks)
}
