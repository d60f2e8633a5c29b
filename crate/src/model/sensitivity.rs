//! Sensitivity scan: how much each unit of a model (one weight matrix, or all matrices of one
//! layer) hurts when it alone is quantized, everything else left at the base.
//!
//! [`scan`] takes the base model and a copy quantized to the format under study (by
//! [`super::quantize_model`], so the tensor policy and its fallbacks apply), builds for each
//! unit a model that is the base with that unit's matrices taken from the quantized copy, and
//! runs these with the base through [`super::eval::evaluate`] (the batched forward, in lockstep
//! on the same windows): per unit the mean `KL(base ‖ unit quantized)` and the paired
//! `ln(PPL(unit)/PPL(base))` (Δ log-ppl), each with its standard error. Units run a few at a
//! time ([`SCAN_GROUP`] models beside the base), so the base's forward is shared.
//!
//! The text is the caller's: calibration text, never the eval chapters (`quantlab
//! sensitivity` takes Moby-Dick chapters 4+ or the user's file).

use super::eval::{evaluate, EvalError, EvalHooks, EvalPlan, LogitSource, ModelSource};
use super::weights::{Matrix, Weights};
use super::Model;

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
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Damage {
    pub kl: f64,
    pub kl_stderr: f64,
    /// `ln(PPL(unit quantized) / PPL(base))`.
    pub delta_ln_ppl: f64,
    pub delta_ln_ppl_stderr: f64,
    pub top1: f64,
}

/// Evaluates each model of `models` against `base` on `plan`, [`SCAN_GROUP`] at a time;
/// `progress(done, total)` after each group.
pub fn damages(
    base: &Model,
    models: &mut dyn Iterator<Item = Model>,
    total: usize,
    plan: &EvalPlan,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Damage>, EvalError> {
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
        let metrics = evaluate(plan, &mut dyn_sources, EvalHooks { clock: None, progress: None, positions: None })?;
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
        progress(out.len(), total);
    }
}

/// The scan: for each unit, `base` with that unit from `quantized`, against `base` on `plan`.
/// Returns one [`Damage`] per unit, in order.
pub fn scan(
    base: &Model,
    quantized: &Model,
    units: &[Unit],
    plan: &EvalPlan,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Damage>, EvalError> {
    let mut models = units.iter().map(|u| with_tensors_from(base, quantized, &u.tensors));
    damages(base, &mut models, units.len(), plan, threads, progress)
}
