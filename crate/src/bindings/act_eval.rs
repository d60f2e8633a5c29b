//! `LabEval.run(text, {activations: {...}})`: the rows with quantized activations, as
//! `quantlab eval --activations … [--act-range R] [--act-head H] [--llm-int8-threshold T]
//! [--smoothquant [A]] [--calib-tokens N]` makes them (the core's
//! [`crate::calib::act_setup`]):
//!
//! ```text
//! activations: {quant: "int8-token"|"int8-tensor"|"int8-static"|…|"llm-int8",
//!               range?: "minmax"|"percentile"|"pNN.NN"|"mse"|"kl",   // static formats only
//!               head?: "float"|"quantized", threshold?: number,      // llm-int8 only
//!               smoothquant?: alpha in [0, 1],
//!               calibText?: string, calibTokens?: number (default 4096)}
//! ```
//! After the rows `run` makes without it (the base, the f32-cache base first under a quantized
//! cache, each added model "weights only"), one row per added model with its activations
//! quantized (the base's when none was added): static ranges calibrated on that row's own model
//! over `calibText` (the CLI's default is Moby-Dick chapters 4+, which the lab passes); with
//! `smoothquant`, the base smoothed from its activation maxima on `calibText` and each added
//! model quantized again from it the way it was made (`quantize` / `quantizeTarget`, round to
//! nearest); with `llm-int8`, the model's layer weights int8 vector-wise. Those rows carry
//! `activations` (the format's name) and the result `actLabel` (the CLI's row suffix).

use std::rc::Rc;

use serde::de::IgnoredAny;
use serde::Deserialize;
use tsify_next::Tsify;
use wasm_bindgen::JsValue;

use super::model::{js_count, options, Loaded};
use super::{js_err, LabJsError};
use crate::calib::act_setup::{smoothed, ActSetup};
use crate::calib::ranges::RangeRule;
use crate::calib::{gptq_tokens, CalibHooks, DEFAULT_TOKENS};
use crate::error::Input;
use crate::model::weights::default_threads;
use crate::model::{quantize_model, ActHead, ActQuant, ActQuantizer, Model, TensorPolicy};

/// The keys of [`EvalActivations`]: serde-wasm-bindgen reads a struct's fields by name and never
/// sees other keys, so a misspelt one is refused by [`check_keys`].
const KEYS: &[&str] = &["quant", "range", "head", "threshold", "smoothquant", "calibText", "calibTokens"];

/// Refuses a key of `opts.activations` that [`EvalActivations`] does not have (before `opts` is read).
pub(super) fn check_keys(opts: &JsValue) -> Result<(), LabJsError> {
    if !opts.is_object() {
        return Ok(());
    }
    let activations = js_sys::Reflect::get(opts, &JsValue::from_str("activations")).unwrap_or(JsValue::UNDEFINED);
    options::<IgnoredAny>(activations, "activations", KEYS).map(|_| ())
}

/// `activations` of `LabEval.run`'s options (see the module docs).
#[derive(Deserialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct EvalActivations {
    quant: String,
    #[tsify(optional)]
    range: Option<String>,
    #[tsify(optional, type = "\"float\" | \"quantized\"")]
    head: Option<String>,
    #[tsify(optional)]
    threshold: Option<f64>,
    #[tsify(optional)]
    smoothquant: Option<f64>,
    #[tsify(optional)]
    calib_text: Option<String>,
    #[tsify(optional)]
    calib_tokens: Option<f64>,
}

/// The models and quantizers of the rows with quantized activations.
pub(super) struct ActRows {
    pub models: Vec<Model>,
    pub quantizers: Vec<ActQuantizer>,
    /// The CLI's row suffix, e.g. `act int8-token, SmoothQuant α=0.5`.
    pub label: String,
    pub quant: &'static str,
}

fn bad(message: String) -> LabJsError {
    LabJsError::bad(Input::Options, message)
}

impl EvalActivations {
    fn setup(&self) -> Result<ActSetup, LabJsError> {
        let quant = ActQuant::parse(&self.quant).map_err(|e| js_err(e).context("activations.quant"))?;
        let rule = self.range.as_deref().map(RangeRule::parse).transpose();
        let rule = rule.map_err(|e| js_err(e).context("activations.range"))?;
        let head = match self.head.as_deref() {
            None | Some("float") => ActHead::Float,
            Some("quantized") => ActHead::Quantized,
            Some(other) => return Err(bad(format!("activations.head '{other}': use \"float\" or \"quantized\""))),
        };
        let finite = |v: Option<f64>, what: &str| match v {
            Some(x) if x.is_nan() => Err(bad(format!("activations.{what} is not a number"))),
            v => Ok(v.map(|x| x as f32)),
        };
        let smooth = finite(self.smoothquant, "smoothquant")?;
        let threshold = finite(self.threshold, "threshold")?;
        ActSetup::new(quant, rule, head, smooth, threshold).map_err(|e| js_err(e).context("activations"))
    }
}

/// The rows with quantized activations for `base` and the `added` models (see the module docs).
pub(super) fn act_rows(base: &Loaded, added: &[Rc<Loaded>], opts: &EvalActivations) -> Result<ActRows, LabJsError> {
    let setup = setup_checked(opts, added)?;
    let text = opts.calib_text.as_deref();
    let needs_text = setup.rule.is_some() || setup.smooth.is_some();
    let calib = match (needs_text, text) {
        (false, _) => None,
        (true, None) => {
            return Err(bad("activations.calibText is missing: static ranges and SmoothQuant calibrate on it".into()))
        }
        (true, Some(t)) => {
            let tokens = js_count(opts.calib_tokens.unwrap_or(DEFAULT_TOKENS as f64), "activations.calibTokens")?;
            let (ids, mut plan) = gptq_tokens(&base.tokenizer, t, tokens as usize, base.model.config.seq_len);
            plan.threads = default_threads();
            Some((ids, plan))
        }
    };
    let calib_ref = calib.as_ref().map(|(ids, plan)| (ids.as_slice(), plan));
    // Each row's model before LLM.int8()'s weights: the added models (or the base), from the
    // smoothed base when SmoothQuant is asked.
    let mut models: Vec<Model> = match (setup.smooth, calib_ref) {
        (Some(alpha), Some((ids, plan))) => {
            let s = smoothed(&base.model, ids, plan, alpha, CalibHooks::default()).map_err(js_err)?;
            if added.is_empty() {
                vec![s.model]
            } else {
                added.iter().map(|m| requantized(&s.model, m)).collect::<Result<_, _>>()?
            }
        }
        _ if added.is_empty() => vec![base.model.clone()],
        _ => added.iter().map(|m| m.model.clone()).collect(),
    };
    let mut quantizers = Vec::with_capacity(models.len());
    for m in &mut models {
        let (q, _) = setup.quantizer(m, calib_ref, CalibHooks::default()).map_err(js_err)?;
        quantizers.push(q);
        if let Some(w) = setup.row_model(m).map_err(js_err)? {
            *m = w;
        }
    }
    Ok(ActRows { models, quantizers, label: setup.label(), quant: setup.quant.name() })
}

/// The setup of `opts`, refused before any work when SmoothQuant cannot remake an added model.
fn setup_checked(opts: &EvalActivations, added: &[Rc<Loaded>]) -> Result<ActSetup, LabJsError> {
    let setup = opts.setup()?;
    if setup.smooth.is_some() {
        if let Some(m) = added.iter().find(|m| m.rtn.is_none()) {
            let what = m.report.as_ref().map_or("a loaded model".to_string(), |r| format!("the {} model", r.scheme));
            return Err(LabJsError::new(
                crate::error::ErrorKind::Unsupported,
                format!(
                    "activations.smoothquant quantizes each model again from the smoothed base: {what} was not made \
                     by quantize or quantizeTarget (round to nearest)"
                ),
            ));
        }
    }
    Ok(setup)
}

/// `smooth` quantized as `like` was made from its base (`Loaded::rtn`).
fn requantized(smooth: &Model, like: &Loaded) -> Result<Model, LabJsError> {
    let Some(t) = like.rtn else { return Err(LabJsError::internal("requantized: no recipe")) };
    let policy = TensorPolicy { mix: t.mix, ..TensorPolicy::default() };
    let (q, _) = quantize_model(smooth, &t.scheme, &policy).map_err(|e| js_err(e).context("SmoothQuant"))?;
    Ok(q)
}
