//! `quantlab sensitivity MODEL -f FORMAT [--unit tensor|layer] [--calib FILE] [--calib-tokens N]
//! [--json] [--target-bpw X | --target-size BYTES | --target-format F] [--high FORMAT]
//! [--recipe-out FILE]`: which units of the model a format hurts most, and a mixed-precision
//! recipe for a size budget.
//!
//! The scan ([`crate::model::sensitivity`]) quantizes one unit at a time to FORMAT (one matrix,
//! or all matrices of a layer; the token embedding and the output matrix are units of their own)
//! with everything else at the base, and measures the KL to the base and the paired Δ log-ppl
//! on calibration text (Moby-Dick chapters 4+ or `--calib FILE`; never the eval chapters 1–3)
//! with the batched forward. It also evaluates the whole model at FORMAT, so the sum of the unit
//! KLs can be compared with the KL of the uniform model.
//!
//! With a budget, it recommends a recipe: FORMAT everywhere, then units promoted to `--high`
//! greedily by KL removed per extra byte until the budget is used ([`crate::recipe::greedy`]).
//! The KL is **assumed additive** over units, and a promoted unit's KL at the high format is
//! taken as 0 (it is not measured; q8_0, the default, is close to lossless). The recipe lists
//! every scanned tensor with its format, so the unlisted-tensor rules of a file type never
//! apply to it.

use super::calib_text::calibration_text;
use super::display::{bytes, Table};
use super::load::load_model;
use super::CliError;
use crate::formats::QuantScheme;
use crate::model::eval::{plan, Protocol, DEFAULT_CTX};
use crate::model::sensitivity::{self, Damage, Unit, UnitKind};
use crate::model::{quantize_model, Model, QuantReport, TensorPolicy};
use crate::recipe::greedy::{self, Candidate};
use crate::recipe::{DefaultEntry, Method, Recipe, TensorEntry, VERSION};
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
    /// The format under study (one type, e.g. q4_0 or int4-sym-g64; `quantlab formats`).
    #[arg(short = 'f', long = "format")]
    pub format: String,
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
    /// The format units are promoted to.
    #[arg(long, value_name = "FORMAT", default_value = "q8_0")]
    pub high: String,
    /// Write the recommended recipe here (needs a target).
    #[arg(long, value_name = "FILE", requires = "budget")]
    pub recipe_out: Option<PathBuf>,
}

/// One unit of the report.
#[derive(Debug, Clone, Serialize)]
pub struct UnitRow {
    pub unit: String,
    pub tensors: Vec<String>,
    /// Bytes of the unit's matrices at FORMAT, and at the high format.
    pub bytes: u64,
    pub bytes_high: u64,
    #[serde(flatten)]
    pub damage: Damage,
}

/// The recommended mix.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// The weight matrices' byte budget, and what the recipe takes.
    pub budget_bytes: u64,
    pub bytes: u64,
    pub bits_per_weight: f64,
    /// Units promoted to the high format.
    pub promoted: Vec<String>,
    /// Sum of the KLs of the units left at FORMAT (the additive estimate).
    pub predicted_kl: f64,
    pub recipe: Recipe,
}

#[derive(Debug, Clone, Serialize)]
pub struct SensitivityReport {
    pub model: String,
    pub format: String,
    pub high: String,
    pub unit: &'static str,
    pub text_source: String,
    pub ctx: usize,
    pub windows: usize,
    pub tokens_scored: usize,
    /// Bytes of the weight matrices at FORMAT everywhere, their element count, and the KL of
    /// that uniform model.
    pub uniform_bytes: u64,
    pub elements: u64,
    pub uniform: Damage,
    /// Units, most damaging (highest KL) first.
    pub units: Vec<UnitRow>,
    pub recommendation: Option<Recommendation>,
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

fn parse(name: &str) -> Result<QuantScheme, CliError> {
    QuantScheme::parse(name).map_err(|e| msg(e.to_string()))
}

/// `model` with every weight matrix in `scheme` (one type everywhere, row fallbacks aside).
fn quantize_all(model: &Model, scheme: &QuantScheme) -> Result<(Model, QuantReport), CliError> {
    quantize_model(model, scheme, &TensorPolicy::default())
        .map_err(|e| msg(format!("cannot quantize to {}: {e}", scheme.name())))
}

/// Bytes of `unit`'s tensors in `report`.
fn unit_bytes(report: &QuantReport, unit: &Unit) -> u64 {
    report.tensors.iter().filter(|t| unit.tensors.contains(&t.name)).map(|t| t.bytes).sum()
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
    let scheme = parse(&args.format)?;
    let high = parse(&args.high)?;
    let target_format = args.target_format.as_deref().map(parse).transpose()?;
    if args.target_bpw.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
        return Err(msg("--target-bpw must be a positive number"));
    }
    let (model, tok, _) = load_model(&args.model)?;
    let (text, text_source) = calibration_text(args.calib.as_deref(), args.calib_tokens)?;
    let mut tokens = tok.encode(&text, false, false);
    tokens.truncate(args.calib_tokens);
    let ctx = args.ctx.min(tokens.len()).min(model.config.seq_len);
    let plan = plan(&tokens, ctx, Protocol::Default, false, None, None).map_err(|e| msg(e.to_string()))?;
    let threads = args.threads.unwrap_or_else(crate::model::weights::default_threads).max(1);

    let (quantized, low) = quantize_all(&model, &scheme)?;
    let high_report = if args.target_bpw.is_some() || args.target_size.is_some() || target_format.is_some() {
        Some(quantize_all(&model, &high)?.1)
    } else {
        None
    };
    let kind = match args.unit {
        UnitArg::Tensor => UnitKind::Tensor,
        UnitArg::Layer => UnitKind::Layer,
    };
    let units = sensitivity::units(&model, kind);
    let show = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let total = units.len() + 1;
    let mut progress = |done: usize, total: usize| {
        if show {
            eprint!("\rquantlab sensitivity: {done}/{total} models");
            if done == total {
                eprintln!();
            }
        }
    };
    // Every unit alone, then the whole model at FORMAT (for the additivity check).
    let mut models = units
        .iter()
        .map(|u| sensitivity::with_tensors_from(&model, &quantized, &u.tensors))
        .chain(std::iter::once_with(|| quantized.clone()));
    let mut damage = sensitivity::damages(&model, &mut models, total, &plan, threads, &mut progress)
        .map_err(|e| msg(e.to_string()))?;
    let uniform = damage.pop().expect("the uniform model was evaluated");

    let mut rows: Vec<UnitRow> = units
        .iter()
        .zip(&damage)
        .map(|(u, d)| UnitRow {
            unit: u.name.clone(),
            tensors: u.tensors.clone(),
            bytes: unit_bytes(&low, u),
            bytes_high: high_report.as_ref().map_or(0, |h| unit_bytes(h, u)),
            damage: *d,
        })
        .collect();

    let recommendation = match &high_report {
        None => None,
        Some(_) => {
            let budget = match (args.target_size, args.target_bpw, &target_format) {
                (Some(b), _, _) => b,
                (_, Some(x), _) => (x * low.n_elements() as f64 / 8.0).floor() as u64,
                (_, _, Some(f)) => quantize_all(&model, f)?.1.total_bytes(),
                _ => unreachable!("a budget was given"),
            };
            Some(recommend(args, &rows, &low, budget)?)
        }
    };
    if let (Some(path), Some(rec)) = (&args.recipe_out, &recommendation) {
        std::fs::write(path, rec.recipe.to_json()).map_err(|e| CliError::Output(format!("{}: {e}", path.display())))?;
    }
    rows.sort_by(|a, b| b.damage.kl.total_cmp(&a.damage.kl));
    Ok(SensitivityReport {
        model: args.model.display().to_string(),
        format: scheme.name(),
        high: high.name(),
        unit: match kind {
            UnitKind::Tensor => "tensor",
            UnitKind::Layer => "layer",
        },
        text_source,
        ctx: plan.ctx,
        windows: plan.windows.len(),
        tokens_scored: plan.tokens_scored(),
        uniform_bytes: low.total_bytes(),
        elements: low.n_elements(),
        uniform,
        units: rows,
        recommendation,
    })
}

/// The greedy promotion for `budget` bytes of weight matrices, as a recipe.
fn recommend(
    args: &SensitivityArgs,
    rows: &[UnitRow],
    low: &QuantReport,
    budget: u64,
) -> Result<Recommendation, CliError> {
    let base = low.total_bytes();
    let Some(extra) = budget.checked_sub(base) else {
        return Err(msg(format!(
            "the budget ({budget} bytes) is below the model at {} everywhere ({base} bytes): choose a smaller -f",
            args.format
        )));
    };
    let candidates: Vec<Candidate> = rows
        .iter()
        .map(|r| Candidate { extra_bytes: r.bytes_high.saturating_sub(r.bytes), gain: r.damage.kl })
        .collect();
    let chosen = greedy::promote(&candidates, extra);
    let (used, gain) = greedy::totals(&candidates, &chosen);
    let total_kl: f64 = rows.iter().map(|r| r.damage.kl).sum();
    let promoted: Vec<&UnitRow> = chosen.iter().map(|&i| &rows[i]).collect();
    let bytes = base + used;
    let bpw = 8.0 * bytes as f64 / low.n_elements() as f64;
    let tensors = rows
        .iter()
        .flat_map(|r| {
            let up = promoted.iter().any(|p| p.unit == r.unit);
            let format = if up { &args.high } else { &args.format };
            r.tensors.iter().map(move |t| TensorEntry { name: t.clone(), format: format.clone(), method: Method::Rtn })
        })
        .collect();
    let recipe = Recipe {
        version: VERSION,
        name: Some(format!(
            "{} with {} of {} {} units at {} ({bpw:.3} bpw)",
            args.format,
            promoted.len(),
            rows.len(),
            match args.unit {
                UnitArg::Tensor => "tensor",
                UnitArg::Layer => "layer",
            },
            args.high
        )),
        default: DefaultEntry { format: args.format.clone(), method: Method::Rtn },
        tensors,
    };
    recipe.check().map_err(|e| msg(format!("the recommended recipe: {e}")))?;
    Ok(Recommendation {
        budget_bytes: budget,
        bytes,
        bits_per_weight: bpw,
        promoted: promoted.iter().map(|r| r.unit.clone()).collect(),
        predicted_kl: total_kl - gain,
        recipe,
    })
}

/// The human-readable report.
pub fn text(r: &SensitivityReport, args: &SensitivityArgs) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "model {}: sensitivity to {} by {}", r.model, r.format, r.unit);
    let _ = writeln!(
        o,
        "text: {}: {} window(s) of {}, {} tokens scored; each unit alone at {}, everything else at the base",
        r.text_source, r.windows, r.ctx, r.tokens_scored, r.format
    );
    let _ = writeln!(
        o,
        "KL = mean KL(base || unit quantized) in nats; Δln ppl = ln(PPL/PPL(base)), paired; ± one standard error"
    );
    let mut t = Table::new(&[
        ("rank", true),
        ("unit", false),
        ("KL", true),
        ("Δln ppl", true),
        ("top-1", true),
        ("size", true),
    ]);
    for (i, u) in r.units.iter().enumerate() {
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
    o.push('\n');
    o.push_str(&t.render(""));
    let sum: f64 = r.units.iter().map(|u| u.damage.kl).sum();
    let _ = writeln!(
        o,
        "\nall units at {} ({}, {:.3} bpw): KL {:.6} ± {:.6}, Δln ppl {:+.5}; sum of the unit KLs {sum:.6}",
        r.format,
        bytes(r.uniform_bytes),
        8.0 * r.uniform_bytes as f64 / r.elements as f64,
        r.uniform.kl,
        r.uniform.kl_stderr,
        r.uniform.delta_ln_ppl
    );
    if let Some(rec) = &r.recommendation {
        let _ = writeln!(
            o,
            "\nrecommended: {} units to {} within {} ({} used, {:.3} bpw of the weight matrices): {}",
            rec.promoted.len(),
            r.high,
            bytes(rec.budget_bytes),
            bytes(rec.bytes),
            rec.bits_per_weight,
            if rec.promoted.is_empty() { "none".to_string() } else { rec.promoted.join(", ") }
        );
        let _ = writeln!(
            o,
            "predicted KL (sum of the units left at {}, assumed additive): {:.6}",
            r.format, rec.predicted_kl
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
