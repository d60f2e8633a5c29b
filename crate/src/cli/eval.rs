//! `quantlab eval MODEL.gguf [--format F ...] [--tasks [FILE]] [--text FILE] [--ctx N] [--max-windows K]
//! [--protocol default|llama.cpp] [--threads N] [--cpu-forward batched|per-position] [--device cpu|gpu|auto]
//! [--kv-cache f32|f16|int8|int4|fp8] [--activations f32|f16|TYPE-GRANULARITY [--act-range RULE]
//! [--act-head float|quantized] [--smoothquant [ALPHA]]] [--json]`: perplexity of the model (on the CPU or the GPU
//! forward with the chosen KV cache type, see [`super::device`]) and, per
//! `--format`, of an in-memory quantized copy, compared with the base on the same windows
//! (KL divergence, top-1 agreement, Δppl, each with its standard error; the paired ones as
//! `llama-perplexity --kl-divergence` reports them).
//!
//! The protocol (tokenization, windows, scored positions, formulas) is documented in
//! [`crate::model::eval`]; the report's header states it. The base is the checkpoint as
//! stored, named by its source format: the default SmolLM2 file ships as Q4_1, so its rows read
//! "base (Q4_1 checkpoint)" and each `--format` re-quantizes the Q4_1 values (dequantized) — not
//! the original bf16 weights.
//!
//! With a KV cache other than f32, every row runs with that cache, and a first row, the base with
//! an f32 cache, is the reference of every row's Δppl, KL and top-1: the base's row then shows
//! what the quantized cache alone costs.
//!
//! With quantized activations (`--activations int8-token` ...; [`super::eval_act`]) the first
//! row is the base with f32 activations, then each format weights-only, then each format with
//! its activations quantized (W8A8 beside W8).
//!
//! With `--tasks` the command runs the instruct task suite instead ([`super::eval_tasks`]).
//!
//! Without `--text`, the text is Moby-Dick chapters [`EVAL_CHAPTERS`] from
//! `data/moby-dick/chapter_N.json` (made by `scripts/setup.sh`), looked up in the current
//! directory, then next to the crate.

use super::device::{self, DeviceArg, GpuArgs};
use super::display::{bytes, Table};
use super::gptq::{Method, MethodArgs, IMATRIX_BY_FILE};
use super::load::load_model;
use super::CliError;
use crate::model::eval::{
    evaluate, join_chapters, plan, EvalHooks, ForwardMode, LogitSource, Metrics, ModelSource, Protocol, DEFAULT_CTX,
    EVAL_CHAPTERS,
};
use crate::model::{
    quantize_model, quantize_model_with, ActQuantizer, KvType, MatmulPath, Model, QuantReport, TensorPolicy,
};
use crate::policy::Target;
use crate::tokenizer::Tokenizer;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolArg {
    /// No BOS, non-overlapping windows of --ctx, every position but the first scored.
    #[value(name = "default")]
    Default,
    /// llama-perplexity's: BOS per the model's metadata, second half of each chunk scored.
    #[value(name = "llama.cpp")]
    LlamaCpp,
}

/// How the CPU forward runs each window (same numbers to the bit; for timing the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuForwardArg {
    /// Blocks of positions through the batched forward.
    #[value(name = "batched")]
    Batched,
    /// One position at a time through the reference forward.
    #[value(name = "per-position")]
    PerPosition,
}

#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The model (the base): a GGUF file or a Hugging Face LLaMA directory.
    pub model: PathBuf,
    /// Also evaluate the model quantized in memory to this format (repeatable, or a
    /// comma-separated list; names as in `quantlab quantize`: a llama.cpp file type such as
    /// q4_k_m or q4_0 gets llama-quantize's per-tensor types).
    #[arg(short = 'f', long = "format", value_name = "F")]
    pub formats: Vec<String>,
    /// One type for every weight matrix, without the file types' per-tensor rules (as
    /// `quantlab quantize --pure`; also for a recipe's default).
    #[arg(long)]
    pub pure: bool,
    /// Also evaluate the model quantized in memory by this recipe file (repeatable; reported
    /// under the recipe's name; round-to-nearest entries only, see `quantlab quantize --recipe`).
    #[arg(long, value_name = "FILE")]
    pub recipe: Vec<PathBuf>,
    /// Run the instruct task suite (valid % and agreement with the base's answers) instead of
    /// perplexity: FILE, or tasks/instruct-checks.json when no FILE is given.
    #[arg(long, value_name = "FILE", num_args = 0..=1)]
    pub tasks: Option<Option<PathBuf>>,
    /// Evaluate on this UTF-8 text file instead of the held-out Moby-Dick chapters.
    #[arg(long, value_name = "FILE")]
    pub text: Option<PathBuf>,
    /// Window length in tokens.
    #[arg(long, default_value_t = DEFAULT_CTX, value_name = "N")]
    pub ctx: usize,
    /// Use only the first K windows (for speed).
    #[arg(long, value_name = "K")]
    pub max_windows: Option<usize>,
    /// Scoring protocol.
    #[arg(long, value_enum, default_value = "default")]
    pub protocol: ProtocolArg,
    /// Threads for the matrix products (default: all cores). Results do not depend on it.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// How the CPU forward runs the windows: batched, or per-position (the reference; slower,
    /// bit-identical numbers).
    #[arg(long, value_enum, default_value = "batched")]
    pub cpu_forward: CpuForwardArg,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Where the forward runs: cpu, gpu, or auto (the GPU if an adapter exists and a short decode
    /// probe finds it faster; the choice and the reason go to stderr).
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceArg,
    /// How the --format copies are quantized (rtn; gptq or awq calibrated on --calib text:
    /// each format gets its own calibration run on its own quantized layers; or hqq, from
    /// the weights alone).
    #[command(flatten)]
    pub method: MethodArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
    #[command(flatten)]
    pub act: super::eval_act::ActArgs,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRow {
    pub format: String,
    pub bits_per_weight: f64,
    pub bytes: u64,
    #[serde(flatten)]
    pub metrics: Metrics,
    pub delta_ppl: f64,
    pub delta_ppl_rel: f64,
    pub tokens_per_sec: Option<f64>,
    /// The KV cache type of this row ("f32" for the reference row of a quantized cache).
    pub kv_cache: &'static str,
    /// This row's activations: "f32", or the quantization (e.g. "int8-token").
    pub activations: &'static str,
    /// This row's product arithmetic: "exact" or "int8" (`--matmul`).
    pub matmul: &'static str,
    /// Tensors that got another format than asked (policy fallbacks), with the reason.
    pub fallbacks: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub source_format: String,
    pub protocol: &'static str,
    pub ctx: usize,
    pub windows: usize,
    pub windows_available: usize,
    pub tokens_scored: usize,
    pub scored_per_window: usize,
    pub text_tokens: usize,
    pub tokens_dropped: usize,
    pub text_source: String,
    pub bos: Option<u32>,
    pub threads: usize,
    /// "cpu", or "gpu (<adapter name>)".
    pub device: String,
    /// The KV cache type the rows ran with: "f32", "f16", "int8", "int4" or "fp8" (when not
    /// "f32", the first row is the base with an f32 cache, the reference).
    pub kv_cache: &'static str,
    /// The matmul activations every row ran with: "f32" or "f16" (always "f32" on the CPU).
    pub activations: &'static str,
    pub rows: Vec<EvalRow>,
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

/// Where the default eval text lives: `data/moby-dick` here, else next to the crate.
pub(crate) fn data_dir() -> Option<PathBuf> {
    let here = PathBuf::from("data/moby-dick");
    if here.is_dir() {
        return Some(here);
    }
    let crate_rel = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/moby-dick");
    crate_rel.is_dir().then_some(crate_rel)
}

/// The held-out chapters joined with "\n\n", and a description of the source.
pub fn default_text() -> Result<(String, String), CliError> {
    let dir = data_dir()
        .ok_or_else(|| msg("the eval text data/moby-dick/ is missing (run scripts/setup.sh, or pass --text FILE)"))?;
    let mut texts = Vec::new();
    for n in EVAL_CHAPTERS {
        let p = dir.join(format!("chapter_{n}.json"));
        let raw = std::fs::read_to_string(&p).map_err(|e| msg(format!("cannot read '{}': {e}", p.display())))?;
        let v: serde_json::Value =
            serde_json::from_str(&raw).map_err(|e| msg(format!("'{}' is not JSON: {e}", p.display())))?;
        let t = v["text"].as_str().ok_or_else(|| msg(format!("'{}' has no \"text\" string", p.display())))?;
        texts.push(t.to_string());
    }
    let source = format!(
        "Moby-Dick chapters {}-{} (data/moby-dick/chapter_N.json \"text\", joined with \"\\n\\n\")",
        EVAL_CHAPTERS.start(),
        EVAL_CHAPTERS.end()
    );
    Ok((join_chapters(&texts), source))
}

pub fn run(args: &EvalArgs) -> Result<String, CliError> {
    match &args.tasks {
        Some(_) if args.gpu.activations.quant().is_some() => Err(msg(format!(
            "--tasks answers the suite with f32 activations: --activations {} applies to perplexity evaluation",
            args.gpu.activations.name()
        ))),
        Some(file) => emit(args.json, &super::eval_tasks::report(args, file.as_deref())?, super::eval_tasks::text),
        None => emit(args.json, &report(args)?, text),
    }
}

/// The report as one JSON object (`--json`) or as `text` renders it.
fn emit<R: Serialize>(json: bool, report: &R, text: fn(&R) -> String) -> Result<String, CliError> {
    if !json {
        return Ok(text(report));
    }
    let mut s = serde_json::to_string_pretty(report).map_err(|e| CliError::Output(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

/// The `--format` targets (comma-separated lists allowed), with `--pure` applied.
pub(super) fn targets(args: &EvalArgs) -> Result<Vec<Target>, CliError> {
    args.formats
        .iter()
        .flat_map(|f| f.split(',').map(str::trim).filter(|s| !s.is_empty()))
        .map(|s| Target::parse(s).map(|t| if args.pure { t.pure() } else { t }).map_err(|e| msg(e.to_string())))
        .collect()
}

/// One line per tensor that did not get the format asked for it.
fn fallbacks(rep: &QuantReport) -> Vec<String> {
    rep.fallbacks()
        .map(|t| {
            format!(
                "{}: {} -> {}{}",
                t.name,
                t.requested,
                t.actual,
                t.reason.as_ref().map_or(String::new(), |r| {
                    format!(" ({})", r.strip_prefix(&format!("{}: ", t.name)).unwrap_or(r))
                })
            )
        })
        .collect()
}

/// Runs the evaluation and returns the report (what `run` prints).
pub fn report(args: &EvalArgs) -> Result<EvalReport, CliError> {
    let targets = targets(args)?;
    if args.method.method == Method::Hqq {
        super::hqq::check(&args.method, &targets.iter().map(|t| t.scheme).collect::<Vec<_>>())?;
    }
    device::check_kv(args.device, args.gpu)?;
    let act = super::eval_act::from_args(args)?;
    let (model, tok, _source) = load_model(&args.model)?;

    let (text, text_source) = match &args.text {
        Some(p) => {
            let t = std::fs::read_to_string(p).map_err(|e| msg(format!("cannot read '{}': {e}", p.display())))?;
            (t, p.display().to_string())
        }
        None => default_text()?,
    };
    let protocol = match args.protocol {
        ProtocolArg::Default => Protocol::Default,
        ProtocolArg::LlamaCpp => Protocol::LlamaCpp,
    };
    let add_bos = protocol.tokenize_with_bos(tok.add_bos_default());
    let tokens = tok.encode(&text, add_bos, false);
    let plan =
        plan(&tokens, args.ctx, protocol, add_bos, tok.bos_id(), args.max_windows).map_err(|e| msg(e.to_string()))?;

    let (main_type, _census) = model.weights.source_format();
    let base_name = format!("base ({main_type} checkpoint)");
    let mut models = vec![(base_name.clone(), Vec::new(), model.clone())];
    models.extend(quantized_models(args, &targets, &model, &tok)?);
    let kv = args.gpu.kv_cache;
    // Every row: (model, KV type, activations, name). A quantized cache or quantized activations
    // get the base with an f32 cache and f32 activations as the reference row.
    // With --matmul int8 every row runs the integer path but the first, the base on the exact one.
    let matmul = args.gpu.matmul.path();
    let mut runs: Vec<Run> =
        (0..models.len()).map(|i| Run { model: i, kv, act: None, matmul, name: models[i].0.clone() }).collect();
    if kv != KvType::F32 || matmul != MatmulPath::Exact {
        runs.insert(
            0,
            Run { model: 0, kv: KvType::F32, act: None, matmul: MatmulPath::Exact, name: base_name.clone() },
        );
    }
    if let Some(setup) = act {
        // SmoothQuant rewrites the base, so the formats are quantized again from the smoothed one.
        let first = models.len();
        if let Some(alpha) = setup.smooth {
            let smooth = super::eval_act::smoothed(&model, &tok, &args.method, alpha)?;
            models.push((base_name.clone(), Vec::new(), smooth.clone()));
            models.extend(quantized_models(args, &targets, &smooth, &tok)?);
        }
        // With --format or --recipe the quantized-activation rows are theirs (W8A8 beside W8),
        // without them the base's.
        let (start, end) = if setup.smooth.is_some() { (first, models.len()) } else { (0, first) };
        let act_models = if end - start > 1 { start + 1..end } else { start..end };
        for mut mi in act_models {
            let name = format!("{}, {}", models[mi].0, setup.label());
            let quantizer = super::eval_act::quantizer(&setup, &models[mi].2, &tok, &args.method, &models[mi].0)?;
            let mut err = std::io::stderr();
            if let Some(m) = super::matmul::llm_int8_weights(Some(setup.quant), &models[mi].2, &name, &mut err)? {
                models.push((models[mi].0.clone(), models[mi].1.clone(), m));
                mi = models.len() - 1;
            }
            runs.push(Run { model: mi, kv, act: Some(quantizer), matmul, name });
        }
    }
    drop(model);

    let threads = args.threads.unwrap_or_else(crate::model::weights::default_threads).max(1);
    let mut err = std::io::stderr();
    let gpu = device::acquire(args.device, args.gpu, &mut err)?;
    let mut gpu_sources = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let (mi, run_kv) = (run.model, run.kv);
        // The probe (auto) runs on the first row; the others follow its choice. Rows without
        // quantized activations (the reference rows) take f32 inputs on the GPU too; the others
        // (int8-token, the one format `device::check_kv` lets through) its integer products.
        let activations = match (&run.act, args.gpu.activations.quant()) {
            (None, Some(_)) => device::ActivationsArg::F32,
            _ => args.gpu.activations,
        };
        let opts = GpuArgs { kv_cache: run_kv, activations, ..args.gpu };
        match device::load(args.device, opts, gpu.as_ref(), &models[mi].2, args.ctx, threads, i == 0, &mut err)? {
            Some(g) => gpu_sources.push(g),
            None if i == 0 => break,
            None => {
                let why = format!("{}: the GPU cannot run this format (see above); use --device cpu", models[mi].0);
                return Err(msg(why));
            }
        }
    }
    #[cfg(feature = "gpu")]
    let device_name = match (&gpu, gpu_sources.is_empty()) {
        (Some(g), false) => format!("gpu ({})", g.adapter.name),
        _ => "cpu".to_string(),
    };
    #[cfg(not(feature = "gpu"))]
    let device_name = "cpu".to_string();
    let gpu_sources_used = !gpu_sources.is_empty();
    let mut sources: Vec<ModelSource> = if gpu_sources.is_empty() {
        let forward = match args.cpu_forward {
            CpuForwardArg::Batched => ForwardMode::default(),
            CpuForwardArg::PerPosition => ForwardMode::PerPosition,
        };
        runs.iter()
            .map(|r| {
                ModelSource::with_kv(&models[r.model].2, args.ctx, threads, r.kv)
                    .with_forward(forward)
                    .with_act(r.act.clone())
                    .with_matmul(r.matmul)
            })
            .collect()
    } else {
        Vec::new()
    };
    #[cfg_attr(not(feature = "gpu"), allow(unused_mut))]
    let mut dyn_sources: Vec<&mut dyn LogitSource> = sources.iter_mut().map(|s| s as &mut dyn LogitSource).collect();
    #[cfg(feature = "gpu")]
    dyn_sources.extend(gpu_sources.iter_mut().map(|s| s as &mut dyn LogitSource));
    let t0 = std::time::Instant::now();
    let clock = move || t0.elapsed().as_secs_f64();
    let show = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut progress = |done: usize, total: usize| {
        if show {
            eprint!("\rquantlab eval: window {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
    };
    let metrics = evaluate(
        &plan,
        &mut dyn_sources,
        EvalHooks { clock: Some(&clock), progress: Some(&mut progress), positions: None },
    );
    drop(dyn_sources);
    runs.iter().zip(&sources).for_each(|(r, s)| super::matmul::report(&r.name, r.matmul, &s.state, &s.model.config));
    drop(sources);
    #[cfg(feature = "gpu")]
    if metrics.is_err() {
        if let Some(e) = gpu_sources.iter_mut().find_map(|g| g.take_error()) {
            return Err(msg(format!("GPU: {e} (--device cpu runs on the CPU)")));
        }
    }
    let metrics = metrics.map_err(|e| msg(e.to_string()))?;
    drop(gpu_sources);

    let base = metrics[0].clone();
    let rows = runs
        .iter()
        .zip(metrics)
        .map(|(run, met)| {
            let (_, fallbacks, m) = &models[run.model];
            let (d, rel) = met.delta_ppl(&base);
            EvalRow {
                format: super::matmul::row_name(&run.name, (kv != KvType::F32).then_some(run.kv), run.matmul),
                matmul: run.matmul.name(),
                kv_cache: run.kv.name(),
                activations: run.act.as_ref().map_or("f32", |a| a.quant.name()),
                bits_per_weight: m.weights.bits_per_weight(),
                bytes: m.weights.resident_bytes() as u64,
                tokens_per_sec: met.tokens_per_sec(),
                metrics: met,
                delta_ppl: d,
                delta_ppl_rel: rel,
                fallbacks: fallbacks.clone(),
            }
        })
        .collect();
    Ok(EvalReport {
        model: args.model.display().to_string(),
        source_format: main_type,
        protocol: protocol.name(),
        ctx: plan.ctx,
        windows: plan.windows.len(),
        windows_available: plan.windows_available,
        tokens_scored: plan.tokens_scored(),
        scored_per_window: plan.scored_per_window(),
        text_tokens: plan.text_tokens,
        tokens_dropped: plan.tokens_dropped,
        text_source,
        bos: plan.bos,
        threads,
        kv_cache: kv.name(),
        activations: match (gpu_sources_used, act) {
            (_, Some(a)) => a.quant.name(),
            (true, None) => args.gpu.activations.name(),
            (false, None) => "f32",
        },
        device: device_name,
        rows,
    })
}

/// One row to run: a model of the list, its KV cache, its activation quantization, its name.
struct Run {
    model: usize,
    kv: KvType,
    act: Option<ActQuantizer>,
    matmul: MatmulPath,
    name: String,
}

/// `source` quantized in memory to every `--format` and `--recipe`, by `--method`: (name, the
/// policy's fallbacks, model) per target.
fn quantized_models(
    args: &EvalArgs,
    targets: &[Target],
    model: &Model,
    tok: &Tokenizer,
) -> Result<Vec<(String, Vec<String>, Model)>, CliError> {
    let mut models = Vec::new();
    for t in targets {
        let policy = TensorPolicy { mix: t.mix, ..TensorPolicy::default() };
        let (q, rep) = match args.method.method {
            Method::Rtn => quantize_model(model, &t.scheme, &policy)
                .map_err(|e| msg(format!("cannot quantize to {}: {e}", t.name())))?,
            Method::Gptq => {
                let (q, rep, line) = super::gptq::quantize_model_gptq(model, tok, &t.scheme, &policy, &args.method)?;
                eprintln!("{}: {line}", t.name());
                (q, rep)
            }
            Method::Awq => {
                let (q, rep, line) = super::awq::quantize_model_awq(model, tok, &t.scheme, &policy, &args.method)?;
                eprintln!("{}: {line}", t.name());
                (q, rep)
            }
            Method::Imatrix => return Err(msg(IMATRIX_BY_FILE)),
            Method::Hqq => {
                let mut hqq = super::hqq::HqqMethod::default();
                let (q, rep) = quantize_model_with(model, &t.scheme, &policy, &mut |_, _, _| true, &mut hqq)
                    .map_err(|e| msg(format!("cannot quantize to {}: {e}", t.name())))?;
                eprintln!("{}: {}", t.name(), hqq.note());
                (q, rep)
            }
        };
        models.push((t.name(), fallbacks(&rep), q));
    }
    for path in &args.recipe {
        let (name, q, rep) = super::recipe_run::quantize_in_memory(model, path, args.pure)?;
        models.push((name, fallbacks(&rep), q));
    }
    Ok(models)
}

/// The human-readable report.
pub fn text(r: &EvalReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "model {}: base = the {} checkpoint as stored", r.model, r.source_format);
    let scoring = match r.protocol {
        "llama.cpp" => format!(
            "positions {}..{} of each window scored (llama-perplexity: first = ctx/2){}",
            r.ctx / 2,
            r.ctx - 2,
            match r.bos {
                Some(b) => format!(", BOS {b} written over each window's first token"),
                None => ", no BOS (the model's add_bos_token is false)".to_string(),
            }
        ),
        _ => "no BOS, every position but the first scored".to_string(),
    };
    let _ = writeln!(
        o,
        "protocol {}: ctx {}, {} window(s) of {} available, {} tokens scored ({} per window); {}",
        r.protocol, r.ctx, r.windows, r.windows_available, r.tokens_scored, r.scored_per_window, scoring
    );
    let _ = writeln!(
        o,
        "text: {}: {} tokens, {} after the last full window dropped; {} thread(s); device {}; KV cache {}; activations {}",
        r.text_source, r.text_tokens, r.tokens_dropped, r.threads, r.device, r.kv_cache, r.activations
    );
    if r.activations.contains('-') {
        let _ = writeln!(
            o,
            "activations {}: rows named 'act ...' quantize every linear layer's input (simulated, CPU); the first row, \
             the base with f32 activations, is the reference of every Δppl, KL and top-1",
            r.activations
        );
    }
    if r.kv_cache != "f32" {
        let _ = writeln!(
            o,
            "KV cache {}: the first row is the base with an f32 KV cache, the reference of every Δppl, KL and top-1",
            r.kv_cache
        );
    }
    let _ = writeln!(
        o,
        "KL = mean KL(base || format) in nats; top-1 = argmax agreement with the base; ppl = exp(mean NLL)"
    );
    let _ = writeln!(
        o,
        "± = one standard error; Δppl ± is paired (per-token NLL differences on the same tokens, as \
         llama-perplexity --kl-divergence): a gap of several ± is real even where the ppl intervals overlap"
    );
    let mut t = Table::new(&[
        ("format", false),
        ("bpw", true),
        ("size", true),
        ("ppl", true),
        ("Δppl", true),
        ("Δppl %", true),
        ("KL", true),
        ("top-1", true),
        ("tok/s", true),
    ]);
    for (i, row) in r.rows.iter().enumerate() {
        let m = &row.metrics;
        let base = i == 0;
        t.row(vec![
            row.format.clone(),
            format!("{:.3}", row.bits_per_weight),
            bytes(row.bytes),
            format!("{:.4} ± {:.4}", m.ppl, m.ppl_stderr),
            m.paired.as_ref().map_or("-".into(), |p| format!("{:+.4} ± {:.4}", p.delta_ppl, p.delta_ppl_stderr)),
            if base { "-".into() } else { format!("{:+.2}%", 100.0 * row.delta_ppl_rel) },
            m.paired.as_ref().map_or("-".into(), |p| format!("{:.6} ± {:.6}", p.kl_mean, p.kl_stderr)),
            m.paired.as_ref().map_or("-".into(), |p| format!("{:.2} ± {:.2}%", 100.0 * p.top1, 100.0 * p.top1_stderr)),
            row.tokens_per_sec.map_or("-".into(), |s| format!("{s:.1}")),
        ]);
    }
    o.push('\n');
    o.push_str(&t.render(""));
    if r.rows.len() > 1 {
        let mut p = Table::new(&[
            ("format", false),
            ("ln(PPL(Q)/PPL(base))", true),
            ("PPL(Q)/PPL(base)", true),
            ("Cor(ln PPL(Q), ln PPL(base))", true),
        ]);
        for row in &r.rows {
            if let Some(x) = &row.metrics.paired {
                p.row(vec![
                    row.format.clone(),
                    format!("{:+.6} ± {:.6}", x.ln_ppl_ratio, x.ln_ppl_ratio_stderr),
                    format!("{:.6} ± {:.6}", x.ppl_ratio, x.ppl_ratio_stderr),
                    format!("{:.2}%", 100.0 * x.nll_correlation),
                ]);
            }
        }
        let _ = writeln!(o, "\npaired with the base on the same {} tokens:", r.tokens_scored);
        o.push_str(&p.render(""));
    }
    for row in &r.rows {
        if !row.fallbacks.is_empty() {
            let _ = writeln!(o, "\n{}: {} tensor(s) fell back:", row.format, row.fallbacks.len());
            for f in row.fallbacks.iter().take(3) {
                let _ = writeln!(o, "  {f}");
            }
            if row.fallbacks.len() > 3 {
                let _ = writeln!(o, "  ... and {} more", row.fallbacks.len() - 3);
            }
        }
    }
    o
}
