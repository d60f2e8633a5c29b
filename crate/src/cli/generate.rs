//! `quantlab generate MODEL -p PROMPT [-n N] [--format F] [--seed S] [--temperature T]
//! [--top-k K] [--top-p P] [--chat] [--threads N] [--device cpu|gpu|auto] [--kv-cache f32|f16|int8]
//! [--activations f32|f16|TYPE-token|TYPE-tensor|llm-int8 [--llm-int8-threshold T]] [--matmul exact|int8]`:
//! text generation with the CPU or the GPU forward (`--device` and `--kv-cache`, see
//! [`super::device`]; GPU sampling reads back one token id per step).
//!
//! - The model is a GGUF file (llama architecture). With `--format F` its weight matrices are
//!   re-quantized in memory ([`crate::model::quantize_model`], the tensor policy of
//!   `quantlab quantize`, fallbacks reported) before generating. The source is whatever the file
//!   stores: for the default SmolLM2 Q4_1 file the "base" is the Q4_1 checkpoint dequantized.
//! - The prompt is tokenized as text (BOS as the tokenizer's `add_bos_token` says; special
//!   tokens such as `<|im_start|>` written in it are recognised, as in llama.cpp), or
//!   with `--chat` wrapped as one user message in the model's chat template (ChatML) with the
//!   assistant turn opened. Chat is opt-in (default off even for instruct models) so that the
//!   default is a plain, reproducible continuation of exactly the text given.
//! - Greedy by default (`--temperature 0`); otherwise temperature / top-k / top-p sampling with
//!   the seeded PCG32 of [`crate::model::sampler`] (same seed, same text).
//! - Generated text streams to stdout as tokens arrive (UTF-8 pieces split across tokens are
//!   held until complete); the setup lines and the timings (prefill and decode tokens/s
//!   separately) go to stderr, so stdout is only the generated text.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use super::device::{self, DeviceArg, GpuArgs};
use super::load::load_model;
use super::CliError;
use crate::formats::QuantScheme;
use crate::model::generate::{generate, StopReason};
use crate::model::{quantize_model, ActHead, ActQuantizer, Model, Sampler, SamplerConfig, State, TensorPolicy};
use crate::tokenizer::{ChatMessage, StreamDecoder};

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// A GGUF model file (llama architecture), or a Hugging Face LLaMA directory (config.json,
    /// safetensors, tokenizer.json).
    pub model: PathBuf,
    /// The prompt text.
    #[arg(short = 'p', long = "prompt")]
    pub prompt: String,
    /// Maximum number of tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 64)]
    pub n: usize,
    /// Re-quantize the weights in memory first (e.g. q8_0, q4_k, int4-asym-g64, nf4, fp8-e4m3).
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// PRNG seed for sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sampling temperature; 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0 = all).
    #[arg(long = "top-k", default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling threshold (1 = off).
    #[arg(long = "top-p", default_value_t = 1.0)]
    pub top_p: f32,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// Threads for the matrix products (default: all cores; results are identical).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where the forward runs: cpu, gpu, or auto (the GPU if an adapter exists and a short decode
    /// probe finds it faster; the choice and the reason go to stderr).
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceArg,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

/// Runs the command, streaming the text to stdout and the rest to stderr; returns what is left
/// to print on stdout (a final newline).
pub fn run(args: &GenerateArgs) -> Result<String, CliError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    run_with(args, &mut out, &mut err)?;
    Ok("\n".into())
}

/// [`run`] with explicit streams (for tests).
pub fn run_with(args: &GenerateArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    if !args.temperature.is_finite() || args.temperature < 0.0 {
        return Err(msg(format!("--temperature must be a finite number ≥ 0, got {}", args.temperature)));
    }
    if !(args.top_p >= 0.0 && args.top_p <= 1.0) {
        return Err(msg(format!("--top-p must be in [0, 1], got {}", args.top_p)));
    }
    if args.threads == Some(0) {
        return Err(msg("--threads must be at least 1"));
    }
    device::check_kv(args.device, args.gpu)?;
    let scheme = match &args.format {
        Some(f) => Some(QuantScheme::parse(f).map_err(|e| msg(e.to_string()))?),
        None => None,
    };
    let t_load = Instant::now();
    let (model, tokenizer, source) = load_model(&args.model)?;
    let source_types = stored_types(&model);
    let _ = writeln!(
        err,
        "model: {} ({} layers, dim {}, {} weights: {}) loaded in {:.2} s",
        source,
        model.config.n_layers,
        model.config.dim,
        human_mb(model.weights.resident_bytes()),
        source_types,
        t_load.elapsed().as_secs_f64()
    );
    let model = match &scheme {
        None => {
            let _ = writeln!(err, "format: as stored ({source_types})");
            model
        }
        Some(s) => {
            let t = Instant::now();
            let (q, report) = quantize_model(&model, s, &TensorPolicy::default()).map_err(|e| msg(e.to_string()))?;
            let _ = writeln!(
                err,
                "format: {} (re-quantized in memory in {:.2} s from the stored {source_types} weights, so the \
                 base is that checkpoint dequantized)",
                s.name(),
                t.elapsed().as_secs_f64()
            );
            for line in report.summary().lines() {
                let _ = writeln!(err, "  {line}");
            }
            q
        }
    };

    let model = match super::matmul::llm_int8_weights(args.gpu.activations.quant(), &model, "model", err)? {
        Some(m) => m,
        None => model,
    };

    let text = if args.chat {
        tokenizer
            .apply_chat_template(&[ChatMessage::new("user", args.prompt.clone())], true)
            .map_err(|e| msg(format!("--chat: {e}")))?
    } else {
        args.prompt.clone()
    };
    // Special tokens written in the prompt (`<|im_start|>`) are recognised, as llama.cpp does.
    let prompt = tokenizer.encode(&text, tokenizer.add_bos_default(), true);
    if prompt.is_empty() {
        return Err(msg("the prompt is empty (no tokens): give some text with -p"));
    }
    let ctx = model.config.seq_len;
    if prompt.len() >= ctx {
        return Err(msg(format!(
            "the prompt is {} tokens, longer than the model's context of {ctx} tokens (leave room to generate)",
            prompt.len()
        )));
    }
    let n = args.n.min(ctx - prompt.len());
    if n < args.n {
        let _ = writeln!(err, "note: -n {} cut to {n} to fit the context of {ctx} tokens", args.n);
    }
    let cfg = SamplerConfig { temperature: args.temperature, top_k: args.top_k, top_p: args.top_p, seed: args.seed };
    let _ = writeln!(
        err,
        "prompt: {} tokens{}; sampling: {}",
        prompt.len(),
        if args.chat { " (chat template)" } else { "" },
        if cfg.is_greedy() {
            "greedy".to_string()
        } else {
            format!("temperature {} top-k {} top-p {} seed {}", cfg.temperature, cfg.top_k, cfg.top_p, cfg.seed)
        }
    );
    let _ = err.flush();

    let mut state = State::with_kv(&model.config, (prompt.len() + n).max(1), args.gpu.kv_cache);
    if let Some(t) = args.threads {
        state.threads = t;
    }
    if let Some(q) = args.gpu.activations.quant() {
        // Static scales need calibrated ranges, which `eval` computes; generate has no calibration text.
        let a = ActQuantizer::new(q, ActHead::Float, None, model.config.n_layers)
            .map_err(|e| CliError::Message(format!("--activations {q}: {e} (quantlab eval calibrates them)")))?;
        state.act = Some(super::matmul::with_threshold(args.gpu, a)?);
    }
    state.matmul = args.gpu.matmul.path();
    let gpu = device::acquire(args.device, args.gpu, err)?;
    #[cfg_attr(not(feature = "gpu"), allow(unused_mut))]
    let mut gpu_model =
        device::load(args.device, args.gpu, gpu.as_ref(), &model, state.capacity, state.threads, true, err)?;
    let _ = err.flush();
    let mut sampler = Sampler::new(cfg);
    let mut decoder = StreamDecoder::new();
    let clock = Instant::now();
    let mut write_err = None;
    let is_eog = |id| tokenizer.is_eog(id);
    let now = || clock.elapsed().as_secs_f64();
    let on_token = |id| {
        let piece = decoder.push(&tokenizer, id);
        match out.write_all(piece.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => true,
            Err(e) => {
                write_err = Some(e);
                false
            }
        }
    };
    let (_, stats) = match gpu_model.as_mut() {
        #[cfg(feature = "gpu")]
        Some(g) => crate::gpu::forward::generate::generate_blocking(g, &prompt, n, cfg, is_eog, now, on_token)
            .map_err(|e| msg(format!("GPU: {e} (--device cpu runs on the CPU)")))?,
        _ => generate(&model, &mut state, &prompt, n, &mut sampler, is_eog, now, on_token)
            .map_err(|e| msg(e.to_string()))?,
    };
    let rest = decoder.finish();
    if let Some(e) = write_err {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(CliError::Output(e.to_string()));
        }
        return Ok(());
    }
    out.write_all(rest.as_bytes()).and_then(|()| out.flush()).map_err(|e| CliError::Output(e.to_string()))?;
    let why = match stats.stop {
        StopReason::Eog(id) => {
            format!("end-of-generation token {id} ({})", tokenizer.token_text(id).unwrap_or("?"))
        }
        StopReason::MaxTokens => format!("{n} tokens"),
        StopReason::Callback => "output closed".into(),
    };
    let _ = writeln!(
        err,
        "\n\nprefill: {} tokens in {:.3} s ({:.1} tokens/s); decode: {} tokens in {:.3} s ({:.1} tokens/s); stopped at {why}",
        stats.prompt_tokens,
        stats.prefill_secs,
        stats.prefill_tokens_per_sec(),
        stats.generated,
        stats.decode_secs,
        stats.decode_tokens_per_sec(),
    );
    if gpu_model.is_none() {
        let _ = writeln!(err, "{}", super::matmul::path_line(state.matmul, &state.stats));
        for line in super::matmul::outlier_lines(&state.stats, model.config.n_layers) {
            let _ = writeln!(err, "{line}");
        }
    }
    Ok(())
}

fn human_mb(b: usize) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

/// The stored formats of the weight matrices, e.g. `Q4_1 + Q8_0`.
fn stored_types(model: &Model) -> String {
    let mut types: Vec<String> = Vec::new();
    for (_, m) in model.weights.matrices() {
        let t = m.type_name();
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types.join(" + ")
}
