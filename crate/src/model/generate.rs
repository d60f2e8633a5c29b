//! The token generation loop: prefill the prompt in blocks of positions (the batched forward,
//! bit-identical to running it one position at a time), then sample, stream and feed back tokens until an end-of-generation token or the budget. Pure (the caller supplies
//! the clock), so it runs on wasm32 too.

use super::forward_batch::{try_forward_batch, BatchLogits, BatchState, Block, DEFAULT_BLOCK};
use super::sampler::{Sampler, SamplerConfig};
use super::{try_forward, Model, ModelError, State};

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The sampler picked this end-of-generation token (not included in the output).
    Eog(u32),
    /// `max_new` tokens were produced.
    MaxTokens,
    /// The callback asked to stop.
    Callback,
}

/// Counts and timings of one [`generate`] call.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateStats {
    pub prompt_tokens: usize,
    /// Seconds spent running the prompt through the model (positions `0..prompt_tokens`).
    pub prefill_secs: f64,
    /// Tokens produced (EOG excluded).
    pub generated: usize,
    /// Forward passes after the prefill (each generated token except the last is fed back).
    pub decode_forwards: usize,
    /// Seconds from the end of the prefill to the end (sampling + decode forwards + callbacks).
    pub decode_secs: f64,
    pub stop: StopReason,
}

impl GenerateStats {
    pub fn prefill_tokens_per_sec(&self) -> f64 {
        if self.prefill_secs > 0.0 {
            self.prompt_tokens as f64 / self.prefill_secs
        } else {
            0.0
        }
    }

    /// Generated tokens per second of decode time.
    pub fn decode_tokens_per_sec(&self) -> f64 {
        if self.decode_secs > 0.0 {
            self.generated as f64 / self.decode_secs
        } else {
            0.0
        }
    }
}

/// Runs `prompt` (at least one token) through `model` from position 0 of `state`, then
/// generates up to `max_new` tokens with `sampler`, calling `on_token(id)` for each as soon as
/// it is chosen (return `false` to stop). Stops before emitting a token `is_eog` accepts.
/// `now()` returns seconds on any monotonic clock (for the timings only).
///
/// Errors: an empty prompt, or a prompt plus budget beyond the state's capacity
/// ([`ModelError::PositionOutOfRange`]), a token out of the vocabulary.
#[allow(clippy::too_many_arguments)] // the loop's inputs; a struct would only rename them
pub fn generate(
    model: &Model,
    state: &mut State,
    prompt: &[u32],
    max_new: usize,
    sampler: &mut Sampler,
    is_eog: impl Fn(u32) -> bool,
    now: impl Fn() -> f64,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<(Vec<u32>, GenerateStats), ModelError> {
    if prompt.is_empty() {
        return Err(ModelError::BadMetadata { key: "prompt".into(), reason: "the prompt has no tokens".into() });
    }
    let needed = prompt.len() + max_new.saturating_sub(1);
    if needed > state.capacity {
        return Err(ModelError::PositionOutOfRange { pos: needed - 1, capacity: state.capacity });
    }
    let (c, w) = (&model.config, &model.weights);
    let t0 = now();
    let mut batch = BatchState::new(c, DEFAULT_BLOCK.min(prompt.len()));
    let block = batch.max_positions();
    let mut logits = Vec::new();
    for (i, tokens) in prompt.chunks(block).enumerate() {
        let pos0 = i * block;
        let last = pos0 + tokens.len() == prompt.len();
        let logits_wanted = if last { BatchLogits::Last } else { BatchLogits::Nothing };
        logits = try_forward_batch(c, w, state, &mut batch, Block { tokens, pos0, logits: logits_wanted })?.to_vec();
    }
    let t1 = now();
    let mut out = Vec::with_capacity(max_new);
    let mut stop = StopReason::MaxTokens;
    let mut forwards = 0;
    while out.len() < max_new {
        let next = sampler.sample(&logits);
        if is_eog(next) {
            stop = StopReason::Eog(next);
            break;
        }
        out.push(next);
        if !on_token(next) {
            stop = StopReason::Callback;
            break;
        }
        if out.len() == max_new {
            break;
        }
        logits.copy_from_slice(try_forward(c, w, state, next, prompt.len() + out.len() - 1)?);
        forwards += 1;
    }
    let t2 = now();
    let stats = GenerateStats {
        prompt_tokens: prompt.len(),
        prefill_secs: t1 - t0,
        generated: out.len(),
        decode_forwards: forwards,
        decode_secs: t2 - t1,
        stop,
    };
    Ok((out, stats))
}

/// Continues a generation of `prompt` that already produced `generated` (on another backend,
/// e.g. a GPU whose device was lost): the prompt and those tokens are prefilled, the sampler
/// resumes after `generated.len()` picks ([`Sampler::resumed`]), and up to
/// `max_new - generated.len()` more tokens follow, so the result is what one uninterrupted
/// [`generate`] with `config` gives (token for token; greedy and seeded sampling alike).
/// Returns all the tokens (`generated` first); the stats count the prompt as `prompt` and the
/// generated tokens as all of them, timing only this call. `on_token` sees only the new ones.
///
/// Errors: those of [`generate`], and more `generated` tokens than `max_new`.
#[allow(clippy::too_many_arguments)] // generate's inputs plus where to continue from
pub fn continue_generation(
    model: &Model,
    state: &mut State,
    prompt: &[u32],
    generated: &[u32],
    max_new: usize,
    config: SamplerConfig,
    is_eog: impl Fn(u32) -> bool,
    now: impl Fn() -> f64,
    on_token: impl FnMut(u32) -> bool,
) -> Result<(Vec<u32>, GenerateStats), ModelError> {
    if generated.len() > max_new {
        let reason = format!("{} tokens were already generated, more than the budget of {max_new}", generated.len());
        return Err(ModelError::BadMetadata { key: "generated".into(), reason });
    }
    let context: Vec<u32> = prompt.iter().chain(generated).copied().collect();
    let mut sampler = Sampler::resumed(config, generated.len());
    let (rest, mut stats) =
        generate(model, state, &context, max_new - generated.len(), &mut sampler, is_eog, now, on_token)?;
    stats.prompt_tokens = prompt.len();
    stats.generated += generated.len();
    Ok((context[prompt.len()..].iter().chain(&rest).copied().collect(), stats))
}
