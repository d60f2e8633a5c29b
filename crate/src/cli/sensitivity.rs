//! `quantlab sensitivity MODEL -f FORMAT[,FORMAT…] [--unit tensor|layer] [--calib FILE]
//! [--calib-tokens N] [--json] [--target-bpw X | --target-size BYTES | --target-format F]
//! [--high FORMAT] [--scans FILE[,FILE…]] [--recipe-out FILE]`: which units of the model a format
//! hurts most, and a mixed-precision recipe for a size budget.
//!
//! The scan ([`crate::model::sensitivity`]) quantizes one unit at a time to FORMAT (one matrix,
//! or all matrices of a layer; the token embedding and the output matrix are units of their own)
//! with everything else at the base, and measures the KL to the base and the paired Δ log-ppl
//! on calibration text (Moby-Dick chapters 4+ or `--calib FILE`; never the eval chapters 1–3)
//! with the batched forward. It also evaluates the whole model at FORMAT, so the sum of the unit
//! KLs can be compared with the KL of the uniform model.
//!
//! Several formats (`-f q4_0,q5_0,q8_0`) are scanned one after the other on the same windows.
//! With a budget, it recommends a recipe ([`crate::recipe::recommend`]): each unit in one of the
//! scanned formats or `--high`, the least sum of unit KLs within the budget (an exact
//! multiple-choice knapsack, [`crate::recipe::choice`]). The KL is **assumed additive** over
//! units, and `--high`, unless scanned too, is taken as lossless (KL 0, not measured; q8_0, the
//! default, is close to it). The recipe lists every scanned tensor with its format, so the
//! unlisted-tensor rules of a file type never apply to it.
//!
//! `--scans` reads the scans from earlier `--json` reports ([`super::sensitivity_saved`]) instead
//! of running them, to recommend for another budget or mix of formats at the cost of a
//! quantization per format.

use super::calib_text::calibration_text;
use super::display::{bytes, Table};
use super::load::load_model;
use super::sensitivity_saved::{self, Scored};
use super::CliError;
use crate::formats::QuantScheme;
use crate::model::eval::DEFAULT_CTX;
use crate::model::sensitivity::{self, quantize_all, FormatScan, Scan, UnitKind};
use crate::model::Model;
use crate::recipe::recommend::{options, recommend, Budget, Recommendation};
use crate::tokenizer::Tokenizer;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

/// What one scan step quantizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnitArg {
    /// One weight matrix at a time.
    Tensor,
    /// All matrices of one layer at a time (token_embd and output on their own).
    Layer,
}

#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("budget").args(["target_bpw", "target_size", "target_format"])))]
pub struct SensitivityArgs {
    /// The model: a GGUF file or a Hugging Face LLaMA directory.
    pub model: PathBuf,
    /// The formats under study (one type each, e.g. q4_0 or int4-sym-g64; `quantlab formats`),
    /// comma-separated: each is scanned, and the recipe chooses among them per unit.
    #[arg(short = 'f', long = "format", value_delimiter = ',', required = true)]
    pub formats: Vec<String>,
    /// What one step quantizes.
    #[arg(long, value_enum, default_value = "layer")]
    pub unit: UnitArg,
    /// Calibration text (UTF-8 file; default: Moby-Dick chapters 4+, never the eval chapters 1-3).
    #[arg(long, value_name = "FILE")]
    pub calib: Option<PathBuf>,
    /// Calibration tokens scored per unit (whole windows of --ctx; the rest is dropped).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub calib_tokens: usize,
    /// Window length in tokens (capped by the calibration tokens and the model's context).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CTX)]
    pub ctx: usize,
    /// Threads for the matrix products (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Recommend a recipe whose weight matrices take this many bits per weight.
    #[arg(long, value_name = "X")]
    pub target_bpw: Option<f64>,
    /// Recommend a recipe whose weight matrices take this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub target_size: Option<u64>,
    /// Recommend a recipe as large as the model in this format everywhere (one type, as -f).
    #[arg(long, value_name = "F")]
    pub target_format: Option<String>,
    /// A format the recipe may also give units, taken as lossless unless scanned too.
    #[arg(long, value_name = "FORMAT", default_value = "q8_0")]
    pub high: String,
    /// Read the scans of -f's formats (one file each, in order) from earlier `--json` reports of
    /// this model instead of scanning again.
    #[arg(long, value_name = "FILE", value_delimiter = ',')]
    pub scans: Vec<PathBuf>,
    /// Write the recommended recipe here (needs a target).
    #[arg(long, value_name = "FILE", requires = "budget")]
    pub recipe_out: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SensitivityReport {
    pub model: String,
    pub high: String,
    pub unit: &'static str,
    pub text_source: String,
    pub ctx: usize,
    pub windows: usize,
    pub tokens_scored: usize,
    /// The weight matrices' element count.
    pub elements: u64,
    /// The scan of the first format of `-f`.
    #[serde(flatten)]
    pub scan: FormatScan,
    /// The scans of the other formats of `-f`, in its order.
    pub other_scans: Vec<FormatScan>,
    pub recommendation: Option<Recommendation>,
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

fn parse(name: &str) -> Result<QuantScheme, CliError> {
    QuantScheme::parse(name).map_err(|e| msg(e.to_string()))
}

pub fn run(args: &SensitivityArgs) -> Result<String, CliError> {
    let r = report(args)?;
    if args.json {
        let mut s = serde_json::to_string_pretty(&r).map_err(|e| CliError::Output(e.to_string()))?;
        s.push('\n');
        return Ok(s);
    }
    Ok(text(&r, args))
}

pub fn report(args: &SensitivityArgs) -> Result<SensitivityReport, CliError> {
    let schemes = args.formats.iter().map(|f| parse(f)).collect::<Result<Vec<_>, _>>()?;
    let high = parse(&args.high)?;
    let target_format = args.target_format.as_deref().map(parse).transpose()?;
    if args.target_bpw.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
        return Err(msg("--target-bpw must be a positive number"));
    }
    let (model, tok, _) = load_model(&args.model)?;
    let kind = match args.unit {
        UnitArg::Tensor => UnitKind::Tensor,
        UnitArg::Layer => UnitKind::Layer,
    };
    // The budget and the high format's sizes before the scan, so a bad one fails at once.
    let quantized_bytes = |f: &QuantScheme| quantize_all(&model, f).map(|(_, r)| r).map_err(|e| msg(e.to_string()));
    let budget = match (args.target_size, args.target_bpw, &target_format) {
        (Some(b), _, _) => Some(Budget::Bytes(b)),
        (_, Some(x), _) => Some(Budget::BitsPerWeight(x)),
        (_, _, Some(f)) => Some(Budget::Bytes(quantized_bytes(f)?.total_bytes())),
        _ => None,
    };
    let high_report = budget.map(|_| quantized_bytes(&high)).transpose()?;
    let (mut scans, scored) = if args.scans.is_empty() {
        scan(args, &model, &tok, &schemes, kind)?
    } else {
        sensitivity_saved::read(&model, &schemes, kind, &args.scans)?
    };
    let recommendation = match (budget, &high_report) {
        (Some(budget), Some(high_report)) => {
            for scan in &mut scans {
                scan.set_high(high_report);
            }
            let named: Vec<(&str, &Scan)> = args.formats.iter().map(String::as_str).zip(&scans).collect();
            let options = options(&named, &args.high, high_report);
            Some(recommend(&options, budget).map_err(|e| msg(e.to_string()))?)
        }
        _ => None,
    };
    if let (Some(path), Some(rec)) = (&args.recipe_out, &recommendation) {
        std::fs::write(path, rec.recipe.to_json()).map_err(|e| CliError::Output(format!("{}: {e}", path.display())))?;
    }
    let mut scans = schemes.iter().zip(scans);
    let (scheme, scan) = scans.next().ok_or_else(|| msg("-f: name at least one format"))?;
    let other_scans = scans.map(|(s, scan)| scan.report(s.name())).collect();
    Ok(SensitivityReport {
        model: args.model.display().to_string(),
        high: high.name(),
        unit: kind.name(),
        text_source: scored.text_source,
        ctx: scored.ctx,
        windows: scored.windows,
        tokens_scored: scored.tokens_scored,
        elements: scan.low.n_elements(),
        scan: scan.report(scheme.name()),
        other_scans,
        recommendation,
    })
}

/// The scans of `schemes` on the calibration text, with a progress line on a terminal.
fn scan(
    args: &SensitivityArgs,
    model: &Model,
    tok: &Tokenizer,
    schemes: &[QuantScheme],
    kind: UnitKind,
) -> Result<(Vec<Scan>, Scored), CliError> {
    let (text, text_source) = calibration_text(args.calib.as_deref(), args.calib_tokens)?;
    let plan = sensitivity::scan_plan(tok, &text, args.calib_tokens, args.ctx, model.config.seq_len)
        .map_err(|e| msg(e.to_string()))?;
    let threads = args.threads.unwrap_or_else(crate::model::weights::default_threads).max(1);
    let show = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let total = (sensitivity::units(model, kind).len() + 1) * schemes.len();
    let mut shown = usize::MAX;
    // Counted in model-positions: shown as whole models done.
    let mut progress = |done: usize, all: usize| {
        let models = done * total / all.max(1);
        if show && models != shown {
            shown = models;
            eprint!("\rquantlab sensitivity: {models}/{total} models");
            if models == total {
                eprintln!();
            }
        }
        true
    };
    let scans = sensitivity::run_formats(model, schemes, kind, None, &plan, threads, &mut progress)
        .map_err(|e| msg(e.to_string()))?;
    let scored =
        Scored { text_source, ctx: plan.ctx, windows: plan.windows.len(), tokens_scored: plan.tokens_scored() };
    Ok((scans, scored))
}

/// The human-readable report.
pub fn text(r: &SensitivityReport, args: &SensitivityArgs) -> String {
    let mut o = String::new();
    let scans: Vec<&FormatScan> = std::iter::once(&r.scan).chain(&r.other_scans).collect();
    let names = scans.iter().map(|s| s.format.as_str()).collect::<Vec<_>>().join(", ");
    let _ = writeln!(o, "model {}: sensitivity to {names} by {}", r.model, r.unit);
    let _ = writeln!(
        o,
        "text: {}: {} window(s) of {}, {} tokens scored; each unit alone at the format, everything else at the base",
        r.text_source, r.windows, r.ctx, r.tokens_scored
    );
    let _ = writeln!(
        o,
        "KL = mean KL(base || unit quantized) in nats; Δln ppl = ln(PPL/PPL(base)), paired; ± one standard error"
    );
    for s in &scans {
        scan_text(&mut o, s, r.elements);
    }
    if let Some(rec) = &r.recommendation {
        let mix: Vec<String> =
            rec.formats.iter().map(|f| format!("{} units at {} ({})", f.units, f.format, bytes(f.bytes))).collect();
        let _ = writeln!(
            o,
            "\nrecommended within {} ({} used, {:.3} bpw of the weight matrices): {}",
            bytes(rec.budget_bytes),
            bytes(rec.bytes),
            rec.bits_per_weight,
            mix.join(", ")
        );
        let default = &rec.recipe.default.format;
        let others: Vec<String> =
            rec.choices.iter().filter(|c| &c.format != default).map(|c| format!("{} {}", c.unit, c.format)).collect();
        let _ = writeln!(o, "not at {default}: {}", if others.is_empty() { "none".into() } else { others.join(", ") });
        let _ = writeln!(
            o,
            "predicted KL (sum of the units' KLs at their formats, assumed additive; {} unscanned taken as 0): {:.6}",
            r.high, rec.predicted_kl
        );
        match &args.recipe_out {
            Some(p) => {
                let _ = writeln!(
                    o,
                    "recipe written to {} (check it: quantlab eval MODEL --recipe {})",
                    p.display(),
                    p.display()
                );
            }
            None => {
                let _ = writeln!(o, "(--recipe-out FILE writes it)");
            }
        }
    }
    o
}

/// One format's ranked table and its uniform model.
fn scan_text(o: &mut String, s: &FormatScan, elements: u64) {
    let mut t = Table::new(&[
        ("rank", true),
        ("unit", false),
        ("KL", true),
        ("Δln ppl", true),
        ("top-1", true),
        ("size", true),
    ]);
    for (i, u) in s.units.iter().enumerate() {
        let d = &u.damage;
        t.row(vec![
            (i + 1).to_string(),
            u.unit.clone(),
            format!("{:.6} ± {:.6}", d.kl, d.kl_stderr),
            format!("{:+.5} ± {:.5}", d.delta_ln_ppl, d.delta_ln_ppl_stderr),
            format!("{:.2}%", 100.0 * d.top1),
            bytes(u.bytes),
        ]);
    }
    let _ = writeln!(o, "\n{}:", s.format);
    o.push_str(&t.render(""));
    let sum: f64 = s.units.iter().map(|u| u.damage.kl).sum();
    let _ = writeln!(
        o,
        "\nall units at {} ({}, {:.3} bpw): KL {:.6} ± {:.6}, Δln ppl {:+.5}; sum of the unit KLs {sum:.6}",
        s.format,
        bytes(s.uniform_bytes),
        8.0 * s.uniform_bytes as f64 / elements as f64,
        s.uniform.kl,
        s.uniform.kl_stderr,
        s.uniform.delta_ln_ppl
    );
}
