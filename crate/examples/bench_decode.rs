//! Prefill and decode tokens/s of greedy generation for the default model, per weight format, on
//! the CPU (the runtime's forward, 1 thread and all threads) and on the GPU
//! (`quantlab::gpu::forward::GpuModel` with GPU sampling, as `quantlab generate --device gpu`
//! runs it). Prints a markdown table. Driven by scripts/bench-decode.sh (which supplies the
//! prompt and the machine line); runnable alone:
//!
//!     cargo run --release --example bench_decode -- --prompt-file P.txt \
//!         [--model models/SmolLM2-135M-Instruct.Q4_1.gguf] [--n 32] [--formats base,f32,q8_0] \
//!         [--no-gpu] [--no-cpu] [--activations f32|f16]
//!
//! What is timed, and what is not:
//! - "base" is the file as stored (the default model's Q4_1 matrices); every other format is the
//!   stored model re-quantized in memory (`quantize_model`, the tensor policy of
//!   `quantlab quantize`), so its source is the Q4_1 checkpoint dequantized.
//! - The CPU prefill runs the prompt one position at a time (the runtime has no batched
//!   prefill); the GPU prefill runs it in batches of `GpuModel::max_batch` (GEMM kernels).
//! - GPU: the upload (repacking, buffer creation, pipeline compilation) and one untimed warm-up
//!   generation (first dispatch of every kernel) are reported in their own columns, not in the
//!   tokens/s. The timed generation is `gpu::forward::generate`: each decode step records one
//!   command buffer and reads back the sampled token id (4 bytes).
//! - Each cell is one run (wall clock). The "GPU = CPU" column compares the greedy token ids.
//! - `--activations f16` runs the GPU matmuls with f16 activations (the f16 module's `gemv`/`gemm`, the
//!   portable GEMV: f16 has no subgroup variant), on adapters with shader-f16.

use std::sync::Arc;
use std::time::Instant;

use quantlab::formats::QuantScheme;
use quantlab::gguf::GgufFile;
use quantlab::gpu::forward::generate::generate_blocking;
use quantlab::gpu::forward::{GpuModel, KvFormat};
use quantlab::gpu::matmul::ActivationPrecision;
use quantlab::gpu::GpuContext;
use quantlab::model::generate::{generate, GenerateStats};
use quantlab::model::{forward, quantize_model, Model, Sampler, SamplerConfig, State, TensorPolicy};
use quantlab::tokenizer::Tokenizer;

const DEFAULT_FORMATS: &str = "base,f32,q8_0,q4_0,q4_k,q6_k,int8-sym-channel,int4-sym-g128,nf4";

struct Args {
    model: String,
    prompt_file: String,
    n: usize,
    formats: Vec<String>,
    gpu: bool,
    cpu: bool,
    activations: ActivationPrecision,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        model: "../models/SmolLM2-135M-Instruct.Q4_1.gguf".into(),
        prompt_file: String::new(),
        n: 32,
        formats: DEFAULT_FORMATS.split(',').map(String::from).collect(),
        gpu: true,
        cpu: true,
        activations: ActivationPrecision::F32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = value()?,
            "--prompt-file" => a.prompt_file = value()?,
            "--n" => a.n = value()?.parse().map_err(|e| format!("--n: {e}"))?,
            "--formats" => a.formats = value()?.split(',').map(|s| s.trim().to_string()).collect(),
            "--no-gpu" => a.gpu = false,
            "--no-cpu" => a.cpu = false,
            "--activations" => a.activations = ActivationPrecision::parse(&value()?)?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.prompt_file.is_empty() {
        return Err("--prompt-file is required (scripts/bench-decode.sh writes it)".into());
    }
    if a.n == 0 {
        return Err("--n must be at least 1".into());
    }
    Ok(a)
}

/// One timed generation's result.
struct Run {
    tokens: Vec<u32>,
    stats: GenerateStats,
}

fn tps(run: &Option<Run>, prefill: bool) -> String {
    match run {
        Some(r) if prefill => format!("{:.1}", r.stats.prefill_tokens_per_sec()),
        Some(r) => format!("{:.1}", r.stats.decode_tokens_per_sec()),
        None => "-".into(),
    }
}

fn cpu_run(model: &Model, tok: &Tokenizer, prompt: &[u32], n: usize, threads: usize) -> Result<Run, String> {
    let mut state = State::new(&model.config, prompt.len() + n);
    state.threads = threads;
    // Untimed: first touch of the weights and of the thread pool.
    forward(&model.config, &model.weights, &mut state, prompt[0], 0);
    let mut sampler = Sampler::new(SamplerConfig::default());
    let clock = Instant::now();
    let now = || clock.elapsed().as_secs_f64();
    let (tokens, stats) = generate(model, &mut state, prompt, n, &mut sampler, |id| tok.is_eog(id), now, |_| true)
        .map_err(|e| e.to_string())?;
    Ok(Run { tokens, stats })
}

/// GPU columns: upload seconds, warm-up seconds, the timed run, the kernels.
struct GpuResult {
    upload_secs: f64,
    warmup_secs: f64,
    run: Run,
    kernels: String,
}

fn gpu_run(
    gpu: &Arc<GpuContext>,
    model: &Model,
    tok: &Tokenizer,
    prompt: &[u32],
    n: usize,
    activations: ActivationPrecision,
) -> Result<GpuResult, String> {
    let t = Instant::now();
    let mut g =
        GpuModel::new_blocking(gpu, model, prompt.len() + n, KvFormat::F32, activations).map_err(|e| e.to_string())?;
    // `new` queues the uploads; wait for them so the upload column holds them.
    gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| e.to_string())?;
    let upload_secs = t.elapsed().as_secs_f64();
    let clock = Instant::now();
    let now = || clock.elapsed().as_secs_f64();
    let greedy = SamplerConfig::default();
    let is_eog = |id| tok.is_eog(id);
    // Warm-up: the whole prompt (GEMM kernels) and two decode steps (GEMV, sampling).
    let t = Instant::now();
    generate_blocking(&mut g, prompt, 3, greedy, is_eog, now, |_| true).map_err(|e| e.to_string())?;
    let warmup_secs = t.elapsed().as_secs_f64();
    let (tokens, stats) =
        generate_blocking(&mut g, prompt, n, greedy, is_eog, now, |_| true).map_err(|e| e.to_string())?;
    Ok(GpuResult { upload_secs, warmup_secs, run: Run { tokens, stats }, kernels: g.kernel_summary() })
}

fn same_tokens(a: &[u32], b: &[u32]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        None if a.len() == b.len() => "yes".into(),
        None => format!("no ({} vs {} tokens)", a.len(), b.len()),
        Some(i) => format!("no (from token {i})"),
    }
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("bench_decode: {e}");
        std::process::exit(2);
    });
    if let Err(e) = run(&args) {
        eprintln!("bench_decode: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let bytes = std::fs::read(&args.model).map_err(|e| format!("{}: {e}", args.model))?;
    let gguf = GgufFile::parse(&bytes, bytes.len() as u64).map_err(|e| e.to_string())?;
    let base = Model::from_gguf(&gguf, &bytes).map_err(|e| e.to_string())?;
    let tok = Tokenizer::from_gguf(&gguf).map_err(|e| e.to_string())?;
    drop(bytes);
    let text = std::fs::read_to_string(&args.prompt_file).map_err(|e| format!("{}: {e}", args.prompt_file))?;
    let prompt = tok.encode(&text, tok.add_bos_default(), true);
    if prompt.is_empty() || prompt.len() + args.n > base.config.seq_len {
        return Err(format!("the prompt is {} tokens: it must fit the context with {} more", prompt.len(), args.n));
    }
    let all_threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gpu =
        if args.gpu { Some(Arc::new(GpuContext::acquire_blocking().map_err(|e| format!("GPU: {e}"))?)) } else { None };
    let stored = base.weights.source_format().0;

    println!(
        "Greedy generation: prompt {} tokens, {} decoded tokens; tokens/s, one run per cell.",
        prompt.len(),
        args.n
    );
    if let Some(g) = &gpu {
        let a = &g.adapter;
        println!(
            "GPU adapter: '{}' ({}, {}, driver {}{}, {}, {})",
            a.name,
            a.backend,
            a.device_type,
            a.driver,
            if a.is_fallback { ", software fallback" } else { "" },
            if a.shader_f16 { "shader-f16" } else { "no shader-f16: f32 activations" },
            if a.subgroups { "subgroups" } else { "no subgroups" },
        );
    }
    if gpu.is_some() {
        println!("GPU matmuls: {} activations.", args.activations.name());
    }
    println!("CPU: the runtime's forward with 1 and {all_threads} threads (prompt one position at a time).");
    println!(
        "base = the file's own {stored} weights as stored; other rows re-quantize them in memory (source: the \
         {stored} checkpoint dequantized)."
    );
    println!();
    println!(
        "| format | bpw | quantize s | CPU 1T prefill | CPU 1T decode | CPU {all_threads}T prefill | CPU {all_threads}T decode | \
         GPU upload s | GPU warm-up s | GPU prefill | GPU decode | GPU = CPU tokens |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    let mut kernels = Vec::new();
    for f in &args.formats {
        let (label, model, qsecs) = if f == "base" {
            (format!("base ({stored} as stored)"), base.clone(), "-".to_string())
        } else {
            let scheme = QuantScheme::parse(f).map_err(|e| format!("{f}: {e}"))?;
            let t = Instant::now();
            let (m, _) = quantize_model(&base, &scheme, &TensorPolicy::default()).map_err(|e| format!("{f}: {e}"))?;
            (scheme.name(), m, format!("{:.1}", t.elapsed().as_secs_f64()))
        };
        let bpw = model.weights.bits_per_weight();
        let cpu1 = if args.cpu { Some(cpu_run(&model, &tok, &prompt, args.n, 1)?) } else { None };
        let cpun =
            if args.cpu && all_threads > 1 { Some(cpu_run(&model, &tok, &prompt, args.n, all_threads)?) } else { None };
        let g = match &gpu {
            Some(gpu) => match gpu_run(gpu, &model, &tok, &prompt, args.n, args.activations) {
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("bench_decode: {label} on the GPU: {e}");
                    None
                }
            },
            None => None,
        };
        let (up, warm, same) = match (&g, &cpu1) {
            (Some(g), Some(c)) => (
                format!("{:.2}", g.upload_secs),
                format!("{:.2}", g.warmup_secs),
                same_tokens(&g.run.tokens, &c.tokens),
            ),
            (Some(g), None) => (format!("{:.2}", g.upload_secs), format!("{:.2}", g.warmup_secs), "-".into()),
            _ => ("-".into(), "-".into(), "-".into()),
        };
        if let Some(g) = &g {
            kernels.push(format!("- {label}: {}", g.kernels));
        }
        let gr = g.map(|g| g.run);
        println!(
            "| {label} | {bpw:.3} | {qsecs} | {} | {} | {} | {} | {up} | {warm} | {} | {} | {same} |",
            tps(&cpu1, true),
            tps(&cpu1, false),
            tps(&cpun, true),
            tps(&cpun, false),
            tps(&gr, true),
            tps(&gr, false),
        );
    }
    if !kernels.is_empty() {
        println!();
        println!("GPU kernels per format (matrices per kernel):");
        for k in kernels {
            println!("{k}");
        }
    }
    Ok(())
}
