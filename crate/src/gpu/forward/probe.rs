//! The backend probe: time a few decode steps on the CPU and on the GPU and use the faster,
//! saying which and why. On a software adapter (lavapipe, SwiftShader: `is_fallback`) the CPU
//! usually wins; unlike llama.cpp's WebGPU backend, which silently drops to the CPU without
//! shader-f16, the reason is printed. One probe for the CLI (native, [`probe_decode`]) and the
//! lab (the wasm binding, [`probe_decode_with`] on the page's clock).

use super::{GpuModel, GpuModelError, Pick};
use crate::model::{forward, Model, State};

/// What the probe measured and decided.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct ProbeResult {
    pub cpu_tokens_per_sec: f64,
    pub gpu_tokens_per_sec: f64,
    pub use_gpu: bool,
    /// One line for the user, e.g. "GPU adapter 'llvmpipe' (software fallback) decodes G tok/s
    /// vs CPU C tok/s → using the CPU".
    pub reason: String,
}

/// Decodes `steps` tokens (after one untimed warm-up step) on both backends from position 0 and
/// compares tokens per second; `threads` CPU threads, `now()` any monotonic clock in seconds.
/// The GPU stops early once it has taken longer than the CPU's whole run (on a software adapter
/// one step is enough to know). `gpu_model`'s cache positions `0..=steps` are overwritten (any
/// later sequence starts at 0 and rewrites them).
pub async fn probe_decode_with(
    model: &Model,
    threads: usize,
    gpu_model: &mut GpuModel,
    steps: usize,
    now: impl Fn() -> f64,
) -> Result<ProbeResult, GpuModelError> {
    let steps = steps.clamp(1, gpu_model.capacity.saturating_sub(1).max(1));
    let tokens: Vec<u32> = (0..=steps as u32).map(|i| (i * 7919 + 1) % model.config.vocab_size as u32).collect();

    let mut state = State::new(&model.config, steps + 1);
    state.threads = threads.max(1);
    forward(&model.config, &model.weights, &mut state, tokens[0], 0);
    let t = now();
    for (pos, &tok) in tokens.iter().enumerate().skip(1) {
        forward(&model.config, &model.weights, &mut state, tok, pos);
    }
    let cpu_secs = now() - t;
    let cpu = steps as f64 / cpu_secs;

    let warm = now();
    gpu_model.decode_sample(tokens[0], 0, Pick::GREEDY).await?;
    let warm_secs = now() - warm;
    // A warm-up (first use: pipelines, caches) ten times slower than the CPU's whole timed run
    // is a software or starved adapter: decide without timing it further.
    if warm_secs > 10.0 * cpu_secs {
        return Ok(decide(gpu_model, cpu, 1.0 / warm_secs, 1, steps, " warm-up"));
    }
    let t = now();
    let mut done = 0;
    for (pos, &tok) in tokens.iter().enumerate().skip(1) {
        gpu_model.decode_sample(tok, pos, Pick::GREEDY).await?;
        done += 1;
        // Already slower than the CPU's whole run: the GPU cannot win, stop paying for it.
        if now() - t > cpu_secs {
            break;
        }
    }
    let gpu = done as f64 / (now() - t);
    Ok(decide(gpu_model, cpu, gpu, done, steps, ""))
}

/// [`probe_decode_with`] on this thread, timed with `std::time`.
#[cfg(not(target_arch = "wasm32"))]
pub fn probe_decode(
    model: &Model,
    threads: usize,
    gpu_model: &mut GpuModel,
    steps: usize,
) -> Result<ProbeResult, GpuModelError> {
    let clock = std::time::Instant::now();
    pollster::block_on(probe_decode_with(model, threads, gpu_model, steps, || clock.elapsed().as_secs_f64()))
}

fn decide(gpu_model: &GpuModel, cpu: f64, gpu: f64, done: usize, steps: usize, note: &str) -> ProbeResult {
    let a = &gpu_model.gpu().adapter;
    let mut notes = vec![a.backend.clone()];
    if a.is_fallback {
        notes.push("software fallback".into());
    }
    notes.push(if a.shader_f16 { "shader-f16".into() } else { "no shader-f16: f32 activations".into() });
    let use_gpu = gpu > cpu;
    let reason = format!(
        "GPU adapter '{}' ({}) decodes {gpu:.2} tok/s vs CPU {cpu:.1} tok/s ({done}{note} and {steps} timed steps) → \
         using the {}",
        a.label(),
        notes.join(", "),
        if use_gpu { "GPU" } else { "CPU" }
    );
    ProbeResult { cpu_tokens_per_sec: cpu, gpu_tokens_per_sec: gpu, use_gpu, reason }
}
