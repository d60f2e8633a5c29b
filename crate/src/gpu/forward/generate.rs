//! Generation on the GPU: the loop of `model::generate`, with the prompt prefilled in batches
//! and each next token picked by `sample.wgsl`, so a decode step reads back 4 bytes.
//!
//! Sampling matches [`crate::model::Sampler`]: greedy is the same argmax; top-k (2..=
//! [`MAX_TOP_K`]) draws its uniform number from the same seeded PCG32 stream at the same
//! moments, so a seed gives the CPU's text unless two cumulative probabilities straddle the
//! draw within f32 rounding (the GPU sums in f32, the CPU in f64). Settings the GPU kernel does
//! not cover (top-k 0 = the whole vocabulary, or above [`MAX_TOP_K`]) read the logits back and
//! use the CPU sampler on them — still correct, just a 4·vocab-byte readback per token.

use super::{GpuModel, GpuModelError, Pick, MAX_TOP_K};
use crate::model::generate::{GenerateStats, StopReason};
use crate::model::{ModelError, Rng, Sampler, SamplerConfig};

/// Whether `config` is sampled on the GPU (else logits are read back for the CPU sampler).
pub fn samples_on_gpu(config: &SamplerConfig) -> bool {
    config.is_greedy() || (2..=MAX_TOP_K).contains(&config.top_k)
}

/// [`crate::model::generate::generate`] on the GPU: `prompt` from position 0, up to `max_new`
/// tokens, `on_token(id)` as each is chosen (return `false` to stop), stopping before a token
/// `is_eog` accepts. `now()` is any monotonic clock in seconds.
#[allow(clippy::too_many_arguments)]
pub async fn generate(
    model: &mut GpuModel,
    prompt: &[u32],
    max_new: usize,
    config: SamplerConfig,
    is_eog: impl Fn(u32) -> bool,
    now: impl Fn() -> f64,
    mut on_token: impl FnMut(u32) -> bool,
) -> Result<(Vec<u32>, GenerateStats), GpuModelError> {
    if prompt.is_empty() {
        return Err(ModelError::BadMetadata { key: "prompt".into(), reason: "the prompt has no tokens".into() }.into());
    }
    let needed = prompt.len() + max_new.saturating_sub(1);
    if needed > model.capacity {
        return Err(ModelError::PositionOutOfRange { pos: needed - 1, capacity: model.capacity }.into());
    }
    let vocab = model.config.vocab_size;
    let on_gpu = samples_on_gpu(&config);
    let mut rng = Rng::new(config.seed);
    let mut cpu_sampler = Sampler::new(config);
    // The pick for the next token; draws from the PCG32 stream exactly when the CPU would.
    let next_pick = |rng: &mut Rng| {
        if config.is_greedy() || vocab <= 1 {
            Pick::GREEDY
        } else {
            Pick { top_k: config.top_k as u32, temperature: config.temperature, top_p: config.top_p, u: rng.next_f32() }
        }
    };

    let t0 = now();
    model.forward(prompt, 0).await?;
    let mut next = if on_gpu {
        let pick = next_pick(&mut rng);
        model.sample(pick).await?
    } else {
        cpu_sampler.sample(model.read_logits().await?)
    };
    let t1 = now();
    let mut out = Vec::with_capacity(max_new);
    let mut stop = StopReason::MaxTokens;
    let mut forwards = 0;
    while out.len() < max_new {
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
        let pos = prompt.len() + out.len() - 1;
        next = if on_gpu {
            let pick = next_pick(&mut rng);
            model.decode_sample(next, pos, pick).await?
        } else {
            model.forward(&[next], pos).await?;
            cpu_sampler.sample(model.read_logits().await?)
        };
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

/// Native convenience for [`generate`].
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)]
pub fn generate_blocking(
    model: &mut GpuModel,
    prompt: &[u32],
    max_new: usize,
    config: SamplerConfig,
    is_eog: impl Fn(u32) -> bool,
    now: impl Fn() -> f64,
    on_token: impl FnMut(u32) -> bool,
) -> Result<(Vec<u32>, GenerateStats), GpuModelError> {
    pollster::block_on(generate(model, prompt, max_new, config, is_eog, now, on_token))
}
