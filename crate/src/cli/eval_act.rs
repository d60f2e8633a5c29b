//! `quantlab eval --activations TYPE-GRANULARITY [--act-range RULE] [--act-head float|quantized]
//! [--smoothquant [ALPHA]]`: the options of activation quantization on the CPU forward
//! ([`crate::model::act_quant`]), made into the core's [`ActSetup`] (shared with the lab's
//! Compare panel), and what eval needs to run them: static ranges calibrated on
//! the calibration text ([`crate::calib::ranges`]; `--calib`, `--calib-tokens`, never the eval
//! chapters) for each row's own model, and the SmoothQuant factors
//! ([`crate::methods::smoothquant`]) from the base model's activation maxima on the same text.
//!
//! With quantized activations the report's rows are: the base with f32 activations (the
//! reference of every Δppl, KL and top-1), each `--format` with f32 activations ("weights
//! only"), then each format with the activations quantized ("W8A8" for an INT8 weight format;
//! without `--format`, the base) — after SmoothQuant when asked, the formats then quantized from
//! the smoothed base.

use super::eval::EvalArgs;
use super::gptq::{calibration_plan, MethodArgs};
use super::CliError;
use crate::calib::act_setup::{self, ActSetup, ActSetupError};
use crate::calib::ranges::RangeRule;
use crate::calib::CalibHooks;
use crate::model::{ActHead, ActQuantError, ActQuantizer, Model};
use crate::tokenizer::Tokenizer;

/// `--act-head`: whether the LM head's input is quantized too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ActHeadArg {
    /// Left in f32 (as W8A8 recipes keep the LM head).
    #[default]
    Float,
    /// Quantized like every other linear input.
    Quantized,
}

fn parse_rule(s: &str) -> Result<RangeRule, String> {
    RangeRule::parse(s).map_err(|e| e.to_string())
}

/// The activation-quantization options of `eval` (with `--activations` of [`super::device::GpuArgs`]).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ActArgs {
    /// How --activations TYPE-static calibrates each layer input's range on --calib text: minmax,
    /// percentile (99.99), pNN.NN (e.g. p99.9), mse (search over 2048-bin |x| histogram edges) or
    /// kl (TensorRT entropy calibration; integer types). Default minmax.
    #[arg(long, value_name = "RULE", value_parser = parse_rule)]
    pub act_range: Option<RangeRule>,
    /// Whether --activations also quantizes the LM head's input.
    #[arg(long, value_enum, default_value = "float")]
    pub act_head: ActHeadArg,
    /// SmoothQuant before quantizing (strength ALPHA in [0, 1], default 0.5): per-channel factors
    /// from the base model's activation maxima on --calib text, folded into the attention and FFN
    /// norms and attn_q/k/v, ffn_gate/up. Applies to the rows with quantized activations.
    #[arg(long, value_name = "ALPHA", num_args = 0..=1, default_missing_value = "0.5")]
    pub smoothquant: Option<f32>,
}

/// The activation setup of `args` (the core's [`ActSetup`], checked there; the messages name the
/// CLI's options); `None` without quantized activations.
pub fn from_args(args: &EvalArgs) -> Result<Option<ActSetup>, CliError> {
    let a = &args.act;
    let Some(quant) = args.gpu.activations.quant() else {
        if a.act_range.is_some() || a.smoothquant.is_some() || a.act_head != ActHeadArg::Float {
            return Err(msg("--act-range, --act-head and --smoothquant need --activations TYPE-GRANULARITY \
                 (e.g. --activations int8-token)"));
        }
        return Ok(None);
    };
    let head = match a.act_head {
        ActHeadArg::Float => ActHead::Float,
        ActHeadArg::Quantized => ActHead::Quantized,
    };
    let setup = ActSetup::new(quant, a.act_range, head, a.smoothquant, args.gpu.llm_int8_threshold);
    setup.map(Some).map_err(|e| match e {
        ActSetupError::BadAlpha { alpha } => msg(format!("--smoothquant {alpha}: alpha must be in [0, 1]")),
        ActSetupError::RangeNotStatic { rule, ty, quant } => msg(format!(
            "--act-range {rule} applies to static scales (--activations {ty}-static); {quant} computes its scales \
             from each input"
        )),
        ActSetupError::Rule { rule, source } => msg(format!("--act-range {rule}: {source}")),
        ActSetupError::Quant(e @ ActQuantError::BadThreshold { .. }) => msg(format!("--llm-int8-threshold: {e}")),
        e => msg(e.to_string()),
    })
}

/// The quantizer for `model` (the row `name`): static ranges calibrated on that model (a line on
/// stderr says how), dynamic ones as they are.
pub fn quantizer(
    setup: &ActSetup,
    model: &Model,
    tok: &Tokenizer,
    method: &MethodArgs,
    name: &str,
) -> Result<ActQuantizer, CliError> {
    let calib = setup.rule.map(|_| calibration_plan(model, tok, method)).transpose()?;
    let (q, run) = setup
        .quantizer(model, calib.as_ref().map(|(ids, plan, _)| (ids.as_slice(), plan)), CalibHooks::default())
        .map_err(|e| msg(format!("{name}: {e}")))?;
    if let (Some(rule), Some(run), Some((_, _, source))) = (setup.rule, run, &calib) {
        eprintln!(
            "{name}: static activation ranges ({}) from {} tokens ({} chunks of {}) of {source}",
            rule.name(),
            run.tokens,
            run.chunks,
            run.chunk
        );
    }
    Ok(q)
}

/// `model` smoothed with strength `alpha` from its activation maxima on the calibration text.
pub fn smoothed(model: &Model, tok: &Tokenizer, method: &MethodArgs, alpha: f32) -> Result<Model, CliError> {
    let (ids, plan, source) = calibration_plan(model, tok, method)?;
    let s = act_setup::smoothed(model, &ids, &plan, alpha, CalibHooks::default()).map_err(|e| msg(e.to_string()))?;
    eprintln!("SmoothQuant α={alpha}: activation maxima from {} tokens of {source}", s.run.tokens);
    Ok(s.model)
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}
