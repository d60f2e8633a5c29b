//! Activation quantization as `quantlab eval --activations …` and the lab's Compare panel ask
//! for it ([`ActSetup`]): the format ([`ActQuant`]), the range rule of static scales, the LM
//! head policy, SmoothQuant's strength and LLM.int8()'s threshold, checked against each other
//! once, and what a row with quantized activations needs from calibration text:
//!
//! - [`ActSetup::quantizer`]: the [`ActQuantizer`] for one model, static ranges calibrated on
//!   that model ([`super::ranges::calibrate_ranges`]); dynamic formats need no text.
//! - [`smoothed`]: the model SmoothQuant rewrites, its factors from the model's per-channel
//!   activation maxima on the text ([`crate::methods::smoothquant`]).
//! - [`ActSetup::row_model`]: LLM.int8()'s int8 vector-wise weights ([`crate::model::llm_int8`]).
//!
//! The CLI (`cli/eval_act.rs`) and the wasm `LabEval` (`bindings/act_eval.rs`) both run these,
//! so the lab's W8A8 rows are the CLI's numbers. The calibration text is never the eval text:
//! by default Moby-Dick chapters 4+ ([`super::CALIBRATION_CHAPTERS`]).

use super::ranges::{calibrate_ranges, ChannelAbsMax, RangeRule, RangeRuleError};
use super::{collect, CalibError, CalibHooks, CalibRun, ChunkPlan};
use crate::methods::smoothquant::{smooth_model, Factors, SmoothQuantError};
use crate::model::llm_int8::llm_int8_model;
use crate::model::{ActHead, ActQuant, ActQuantError, ActQuantizer, Model, ModelError};

/// Activation quantization as asked (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActSetup {
    pub quant: ActQuant,
    /// The range rule: `Some` exactly for static formats.
    pub rule: Option<RangeRule>,
    pub head: ActHead,
    /// SmoothQuant's alpha, in [0, 1].
    pub smooth: Option<f32>,
    /// LLM.int8()'s outlier threshold (`llm-int8` only; `None`: its default).
    pub threshold: Option<f32>,
}

/// Why an activation setup is refused or cannot be prepared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActSetupError {
    #[error("SmoothQuant alpha {alpha} must be in [0, 1]")]
    BadAlpha { alpha: f32 },
    #[error("range rule {rule} applies to static scales ({ty}-static); {quant} computes its scales from each input")]
    RangeNotStatic { rule: String, ty: &'static str, quant: ActQuant },
    #[error("range rule {rule}: {source}")]
    Rule { rule: String, source: RangeRuleError },
    #[error("an LLM.int8() threshold applies to llm-int8 only, not {quant}")]
    ThresholdNotLlmInt8 { quant: ActQuant },
    #[error("{quant} calibrates its static ranges on calibration text: none was given")]
    NoCalibration { quant: ActQuant },
    #[error(transparent)]
    Quant(#[from] ActQuantError),
    #[error("calibrating activation ranges: {0}")]
    Ranges(CalibError),
    #[error("SmoothQuant calibration: {0}")]
    SmoothCalib(CalibError),
    #[error(transparent)]
    Smooth(#[from] SmoothQuantError),
    #[error("LLM.int8() weights: {0}")]
    LlmInt8(ModelError),
}

impl ActSetup {
    /// A setup whose parts fit each other: a rule only for static formats (min-max by default
    /// there) and one the value type can use, alpha in [0, 1], a threshold only for LLM.int8().
    pub fn new(
        quant: ActQuant,
        rule: Option<RangeRule>,
        head: ActHead,
        smooth: Option<f32>,
        threshold: Option<f32>,
    ) -> Result<ActSetup, ActSetupError> {
        if let Some(alpha) = smooth.filter(|a| !(0.0..=1.0).contains(a)) {
            return Err(ActSetupError::BadAlpha { alpha });
        }
        let rule = match (quant.is_static(), rule) {
            (true, rule) => Some(rule.unwrap_or(RangeRule::MinMax)),
            (false, None) => None,
            (false, Some(r)) => {
                return Err(ActSetupError::RangeNotStatic { rule: r.name(), ty: quant.ty.name(), quant })
            }
        };
        if let Some(r) = rule {
            r.check(quant.ty).map_err(|source| ActSetupError::Rule { rule: r.name(), source })?;
        }
        if threshold.is_some() && quant != ActQuant::LLM_INT8 {
            return Err(ActSetupError::ThresholdNotLlmInt8 { quant });
        }
        let setup = ActSetup { quant, rule, head, smooth, threshold };
        // A bad threshold or format is refused now, before any calibration.
        if !quant.is_static() {
            setup.with_threshold(ActQuantizer::new(quant, head, None, 0)?)?;
        }
        Ok(setup)
    }

    /// What a row's name says about its activations, e.g. `act int8-static (kl), SmoothQuant α=0.5`
    /// (the CLI's row names; LLM.int8()'s threshold is reported beside them).
    pub fn label(&self) -> String {
        let mut s = format!("act {}", self.quant);
        if let Some(r) = self.rule {
            s.push_str(&format!(" ({})", r.name()));
        }
        if self.head == ActHead::Quantized {
            s.push_str(" + LM head");
        }
        if let Some(a) = self.smooth {
            s.push_str(&format!(", SmoothQuant α={a}"));
        }
        s
    }

    /// The quantizer for `model`: static ranges calibrated on that model over the chunks of the
    /// calibration tokens that their plan selects (`calib`, read only for static formats; with
    /// what was run), dynamic formats as they are.
    pub fn quantizer(
        &self,
        model: &Model,
        calib: Option<(&[u32], &ChunkPlan)>,
        hooks: CalibHooks<'_>,
    ) -> Result<(ActQuantizer, Option<CalibRun>), ActSetupError> {
        let (ranges, run) = match (self.rule, calib) {
            (Some(rule), Some((tokens, plan))) => {
                let (ranges, run) =
                    calibrate_ranges(model, tokens, plan, rule, self.quant.ty, hooks).map_err(ActSetupError::Ranges)?;
                (Some(ranges), Some(run))
            }
            (Some(_), None) => return Err(ActSetupError::NoCalibration { quant: self.quant }),
            (None, _) => (None, None),
        };
        let q = ActQuantizer::new(self.quant, self.head, ranges.as_ref(), model.config.n_layers)?;
        Ok((self.with_threshold(q)?, run))
    }

    /// For LLM.int8(): `model` with int8 vector-wise layer weights, the model its rows run;
    /// `None` for the other formats (their rows run the model as it is).
    pub fn row_model(&self, model: &Model) -> Result<Option<Model>, ActSetupError> {
        if self.quant != ActQuant::LLM_INT8 {
            return Ok(None);
        }
        llm_int8_model(model).map(Some).map_err(ActSetupError::LlmInt8)
    }

    fn with_threshold(&self, q: ActQuantizer) -> Result<ActQuantizer, ActSetupError> {
        match self.threshold {
            Some(t) => Ok(q.with_threshold(t)?),
            None => Ok(q),
        }
    }
}

/// `model` smoothed with strength `alpha` (SmoothQuant), from its per-channel activation maxima
/// over the chunks of `tokens` that `plan` selects; with the maxima, the factors and the run.
pub fn smoothed(
    model: &Model,
    tokens: &[u32],
    plan: &ChunkPlan,
    alpha: f32,
    hooks: CalibHooks<'_>,
) -> Result<Smoothed, ActSetupError> {
    let mut absmax = ChannelAbsMax::default();
    let run = collect(model, tokens, plan, &mut absmax, hooks).map_err(ActSetupError::SmoothCalib)?;
    let (model, factors) = smooth_model(model, &absmax, alpha)?;
    Ok(Smoothed { model, absmax, factors, run })
}

/// What [`smoothed`] returns.
pub struct Smoothed {
    pub model: Model,
    /// max |X_j| per input channel of every linear input, before smoothing.
    pub absmax: ChannelAbsMax,
    /// s_j of each smoothed input (the attention and FFN norms' outputs).
    pub factors: Factors,
    pub run: CalibRun,
}
