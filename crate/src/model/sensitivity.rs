//! Sensitivity scan: how much each unit of a model (one weight matrix, or all matrices of one
//! layer) hurts when it alone is quantized, everything else left at the base.
//!
//! [`run`] takes the base model and a copy quantized to the format under study (by
//! [`super::quantize_model`], so the tensor policy and its fallbacks apply), builds for each
//! unit a model that is the base with that unit's matrices taken from the quantized copy, and
//! runs these with the base through [`super::eval::evaluate`] (the batched forward, in lockstep
//! on the same windows): per unit the mean `KL(base ‖ unit quantized)` and the paired
//! `ln(PPL(unit)/PPL(base))` (Δ log-ppl), each with its standard error. Units run a few at a
//! time ([`SCAN_GROUP`] models beside the base), so the base's forward is shared.
//!
//! The text is the caller's: calibration text, never the eval chapters (`quantlab
//! sensitivity` takes Moby-Dick chapters 4+ or the user's file).
//!
//! [`run`] (for several formats, [`run_formats`]) is the whole scan as `quantlab sensitivity` and
//! the lab's `LabModel.sensitivity` both run it (the text's tokens and windows by [`scan_plan`], the model at the format, every unit,
//! then the uniform model): one code path, so the lab's rows equal the CLI's `--json` rows.

use super::eval::{evaluate, plan, EvalError, EvalHooks, EvalPlan, LogitSource, ModelSource, Protocol};
use super::quantize::{quantize_model, QuantReport};
use super::weights::{Matrix, Weights};
use super::ModelError;
use super::{Model, TensorPolicy};
use crate::formats::QuantScheme;
use crate::tokenizer::Tokenizer;

/// Unit models evaluated beside the base in one pass.
pub const SCAN_GROUP: usize = 6;

/// What one scan step quantizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// One weight matrix.
    Tensor,
    /// All matrices of one layer (`blk.N`); the token embedding and the output matrix are
    /// units of their own.
    Layer,
}

/// A set of tensors quantized together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// `blk.3` or a tensor name.
    pub name: String,
    /// GGUF tensor names.
    pub tensors: Vec<String>,
}

/// The units of `model`, in the order of [`Weights::matrices`].
pub fn units(model: &Model, kind: UnitKind) -> Vec<Unit> {
    let w = &model.weights;
    match kind {
        UnitKind::Tensor => {
            w.matrices().into_iter().map(|(name, _)| Unit { name: name.clone(), tensors: vec![name] }).collect()
        }
        UnitKind::Layer => {
            let one = |name: &str| Unit { name: name.trim_end_matches(".weight").into(), tensors: vec![name.into()] };
            let mut out = vec![one("token_embd.weight")];
            for (l, layer) in w.layers.iter().enumerate() {
                let tensors = layer.matrices().iter().map(|(n, _)| format!("blk.{l}.{n}.weight")).collect();
                out.push(Unit { name: format!("blk.{l}"), tensors });
            }
            if w.output.is_some() {
                out.push(one("output.weight"));
            }
            out
        }
    }
}

/// `base` with the matrices named in `tensors` taken from `from` (same architecture).
pub fn with_tensors_from(base: &Model, from: &Model, tensors: &[String]) -> Model {
    let pick =
        |name: &str, b: &Matrix, f: &Matrix| if tensors.iter().any(|t| t == name) { f.clone() } else { b.clone() };
    let (bw, fw) = (&base.weights, &from.weights);
    let layers = bw
        .layers
        .iter()
        .zip(&fw.layers)
        .enumerate()
        .map(|(l, (bl, fl))| {
            let theirs = fl.matrices();
            let mut i = 0;
            bl.try_map_matrices::<std::convert::Infallible>(|n, m| {
                let f = theirs[i].1;
                i += 1;
                Ok(pick(&format!("blk.{l}.{n}.weight"), m, f))
            })
            .unwrap_or_else(|never| match never {})
        })
        .collect();
    let output = match (&bw.output, &fw.output) {
        (Some(b), Some(f)) => Some(pick("output.weight", b, f)),
        (b, _) => b.clone(),
    };
    let weights = Weights {
        token_embd: pick("token_embd.weight", &bw.token_embd, &fw.token_embd),
        layers,
        output_norm: bw.output_norm.clone(),
        output,
    };
    Model { config: base.config.clone(), weights }
}

/// One unit's damage: KL to the base and the paired Δ log-ppl, with standard errors.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
pub struct Damage {
    pub kl: f64,
    pub kl_stderr: f64,
    /// `ln(PPL(unit quantized) / PPL(base))`.
    pub delta_ln_ppl: f64,
    pub delta_ln_ppl_stderr: f64,
    pub top1: f64,
}

/// Evaluates each model of `models` against `base` on `plan`, [`SCAN_GROUP`] at a time.
/// `progress(done, total)` after every position, counted in model-positions (`total` = `total`
/// models × the plan's positions), so a UI can show a fraction and stop within a group:
/// returning `false` stops with [`ScanError::Cancelled`].
pub fn damages(
    base: &Model,
    models: &mut dyn Iterator<Item = Model>,
    total: usize,
    plan: &EvalPlan,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<Damage>, ScanError> {
    let mut out = Vec::with_capacity(total);
    loop {
        let group: Vec<Model> = (&mut *models).take(SCAN_GROUP).collect();
        if group.is_empty() {
            return Ok(out);
        }
        let mut sources: Vec<ModelSource> =
            std::iter::once(base).chain(group.iter()).map(|m| ModelSource::new(m, plan.ctx, threads)).collect();
        let mut dyn_sources: Vec<&mut dyn LogitSource> =
            sources.iter_mut().map(|s| s as &mut dyn LogitSource).collect();
        let before = out.len();
        let mut at = |p: usize, per: usize| progress(before * per + group.len() * p, total * per);
        let hooks = EvalHooks { clock: None, progress: None, positions: Some(&mut at) };
        let metrics = evaluate(plan, &mut dyn_sources, hooks).map_err(|e| match e {
            EvalError::Cancelled { .. } => ScanError::Cancelled { done: before, total },
            e => ScanError::Eval(e),
        })?;
        for m in &metrics[1..] {
            let p = m.paired.as_ref().expect("every source but the base is paired");
            out.push(Damage {
                kl: p.kl_mean,
                kl_stderr: p.kl_stderr,
                delta_ln_ppl: p.ln_ppl_ratio,
                delta_ln_ppl_stderr: p.ln_ppl_ratio_stderr,
                top1: p.top1,
            });
        }
    }
}

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot quantize to {format}: {source}")]
    Quantize { format: String, source: ModelError },
    #[error("no unit named {name:?} (units: {known})")]
    UnknownUnit { name: String, known: String },
    #[error("cancelled after {done} of {total} units")]
    Cancelled { done: usize, total: usize },
    #[error(transparent)]
    Eval(#[from] EvalError),
}

impl UnitKind {
    /// The name `--unit` and the lab use.
    pub fn name(self) -> &'static str {
        match self {
            UnitKind::Tensor => "tensor",
            UnitKind::Layer => "layer",
        }
    }
}

/// One unit of a scan's report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
pub struct UnitRow {
    pub unit: String,
    pub tensors: Vec<String>,
    /// Bytes of the unit's matrices at the format, and at the high format (0 until
    /// [`Scan::set_high`] names one).
    pub bytes: u64,
    pub bytes_high: u64,
    #[serde(flatten)]
    pub damage: Damage,
}

/// One scanned format as the reports give it (`quantlab sensitivity --json`, the lab's
/// `scan.report()`): the bytes of the weight matrices at the format everywhere and the KL of that
/// uniform model; the units, most damaging (highest KL) first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
pub struct FormatScan {
    pub format: String,
    pub uniform_bytes: u64,
    pub uniform: Damage,
    pub units: Vec<UnitRow>,
}

/// A finished scan: every unit's row in the model's order, and the uniform model's damage.
#[derive(Debug, Clone)]
pub struct Scan {
    pub kind: UnitKind,
    pub rows: Vec<UnitRow>,
    /// The whole model at the format (every matrix, not only the scanned units').
    pub uniform: Damage,
    /// What quantizing the whole model to the format did (bytes per tensor, elements).
    pub low: QuantReport,
}

/// The calibration tokens and windows of a scan: `text` encoded without BOS, cut to `tokens`,
/// in windows of `ctx` (capped by the tokens and the model's context), the default protocol.
pub fn scan_plan(
    tokenizer: &Tokenizer,
    text: &str,
    tokens: usize,
    ctx: usize,
    seq_len: usize,
) -> Result<EvalPlan, EvalError> {
    let mut ids = tokenizer.encode(text, false, false);
    ids.truncate(tokens);
    let ctx = ctx.min(ids.len()).min(seq_len);
    plan(&ids, ctx, Protocol::Default, false, None, None)
}

/// `model` with every weight matrix in `scheme` (one type everywhere, row fallbacks aside).
pub fn quantize_all(model: &Model, scheme: &QuantScheme) -> Result<(Model, QuantReport), ScanError> {
    quantize_model(model, scheme, &TensorPolicy::default())
        .map_err(|source| ScanError::Quantize { format: scheme.name(), source })
}

/// Bytes of the named tensors in `report`.
pub fn tensor_bytes(report: &QuantReport, tensors: &[String]) -> u64 {
    report.tensors.iter().filter(|t| tensors.contains(&t.name)).map(|t| t.bytes).sum()
}

/// The whole scan (see the module docs): the units of `kind` (only those named in `only`, when
/// given) each alone at `scheme`, then the whole model at `scheme`. `progress` as [`damages`].
pub fn run(
    model: &Model,
    scheme: &QuantScheme,
    kind: UnitKind,
    only: Option<&[String]>,
    plan: &EvalPlan,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Scan, ScanError> {
    let mut all = units(model, kind);
    if let Some(names) = only {
        for name in names {
            if !all.iter().any(|u| &u.name == name) {
                let known = all.iter().map(|u| u.name.as_str()).collect::<Vec<_>>().join(", ");
                return Err(ScanError::UnknownUnit { name: name.clone(), known });
            }
        }
        all.retain(|u| names.contains(&u.name));
    }
    let (quantized, low) = quantize_all(model, scheme)?;
    // Every unit alone, then the whole model at the format (the additivity check).
    let mut models = all
        .iter()
        .map(|u| with_tensors_from(model, &quantized, &u.tensors))
        .chain(std::iter::once_with(|| quantized.clone()));
    let mut damage = damages(model, &mut models, all.len() + 1, plan, threads, progress)?;
    let uniform = damage.pop().expect("the uniform model was evaluated");
    let rows = all
        .iter()
        .zip(damage)
        .map(|(u, damage)| UnitRow {
            unit: u.name.clone(),
            tensors: u.tensors.clone(),
            bytes: tensor_bytes(&low, &u.tensors),
            bytes_high: 0,
            damage,
        })
        .collect();
    Ok(Scan { kind, rows, uniform, low })
}

/// [`run`] for each of `schemes` in turn on the same plan, as `quantlab sensitivity -f a,b,…`
/// and the lab scan several formats. `progress(done, total)` counts over all the scans.
pub fn run_formats(
    model: &Model,
    schemes: &[QuantScheme],
    kind: UnitKind,
    only: Option<&[String]>,
    plan: &EvalPlan,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<Scan>, ScanError> {
    let mut scans = Vec::with_capacity(schemes.len());
    let n = schemes.len();
    for (i, scheme) in schemes.iter().enumerate() {
        let mut each = |done: usize, total: usize| progress(i * total + done, n * total);
        scans.push(run(model, scheme, kind, only, plan, threads, &mut each)?);
    }
    Ok(scans)
}

impl Scan {
    /// Fills every row's `bytes_high` from `high` (the model quantized to the high format).
    pub fn set_high(&mut self, high: &QuantReport) {
        for r in &mut self.rows {
            r.bytes_high = tensor_bytes(high, &r.tensors);
        }
    }

    /// The report of this scan of `format` (its canonical name).
    pub fn report(&self, format: String) -> FormatScan {
        FormatScan { format, uniform_bytes: self.low.total_bytes(), uniform: self.uniform, units: self.ranked() }
    }

    /// The rows, most damaging (highest KL) first; ties keep the model's order.
    pub fn ranked(&self) -> Vec<UnitRow> {
        let mut rows = self.rows.clone();
        rows.sort_by(|a, b| b.damage.kl.total_cmp(&a.damage.kl));
        rows
    }
}
