//! `quantlab eval --activations TYPE-GRANULARITY [--act-range RULE] [--act-head float|quantized]
//! [--smoothquant [ALPHA]]`: the options of activation quantization on the CPU forward
//! ([`crate::model::act_quant`]) and what eval needs to run them: static ranges calibrated on
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
use crate::calib::ranges::{calibrate_ranges, ChannelAbsMax, RangeRule};
use crate::calib::{collect, CalibHooks};
use crate::methods::smoothquant::smooth_model;
use crate::model::{ActHead, ActQuant, ActQuantizer, Model};
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

/// Activation quantization as asked: the format, its range rule (static only), the LM head
/// policy and SmoothQuant's alpha.
#[derive(Debug, Clone, Copy)]
pub struct ActSetup {
    pub quant: ActQuant,
    pub rule: Option<RangeRule>,
    pub head: ActHead,
    pub smooth: Option<f32>,
}

impl ActSetup {
    /// The options of `args`, checked against each other; `None` without quantized activations.
    pub fn from_args(args: &EvalArgs) -> Result<Option<ActSetup>, CliError> {
        let a = &args.act;
        let Some(quant) = args.gpu.activations.quant() else {
            if a.act_range.is_some() || a.smoothquant.is_some() || a.act_head != ActHeadArg::Float {
                return Err(msg("--act-range, --act-head and --smoothquant need --activations TYPE-GRANULARITY \
                     (e.g. --activations int8-token)"));
            }
            return Ok(None);
        };
        if let Some(alpha) = a.smoothquant.filter(|a| !(0.0..=1.0).contains(a)) {
            return Err(msg(format!("--smoothquant {alpha}: alpha must be in [0, 1]")));
        }
        let rule = match (quant.is_static(), a.act_range) {
            (true, rule) => Some(rule.unwrap_or(RangeRule::MinMax)),
            (false, None) => None,
            (false, Some(r)) => {
                return Err(msg(format!(
                    "--act-range {} applies to static scales (--activations {}-static); {quant} computes its scales \
                     from each input",
                    r.name(),
                    quant.ty.name()
                )))
            }
        };
        if let Some(r) = rule {
            r.check(quant.ty).map_err(|e| msg(format!("--act-range {}: {e}", r.name())))?;
        }
        let head = match a.act_head {
            ActHeadArg::Float => ActHead::Float,
            ActHeadArg::Quantized => ActHead::Quantized,
        };
        Ok(Some(ActSetup { quant, rule, head, smooth: a.smoothquant }))
    }

    /// What a row's name says about its activations, e.g. `act int8-static (kl), SmoothQuant α=0.5`.
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

    /// The quantizer for `model`: static ranges calibrated on that model (a line on stderr says
    /// how), dynamic ones as they are.
    pub fn quantizer(
        &self,
        model: &Model,
        tok: &Tokenizer,
        method: &MethodArgs,
        name: &str,
    ) -> Result<ActQuantizer, CliError> {
        let ranges = match self.rule {
            Some(rule) => {
                let (ids, plan, source) = calibration_plan(model, tok, method)?;
                let (ranges, run) = calibrate_ranges(model, &ids, &plan, rule, self.quant.ty, CalibHooks::default())
                    .map_err(|e| msg(format!("{name}: calibrating activation ranges: {e}")))?;
                eprintln!(
                    "{name}: static activation ranges ({}) from {} tokens ({} chunks of {}) of {source}",
                    rule.name(),
                    run.tokens,
                    run.chunks,
                    run.chunk
                );
                Some(ranges)
            }
            None => None,
        };
        ActQuantizer::new(self.quant, self.head, ranges.as_ref(), model.config.n_layers)
            .map_err(|e| msg(format!("{name}: {e}")))
    }
}

/// `model` smoothed with strength `alpha` from its activation maxima on the calibration text.
pub fn smoothed(model: &Model, tok: &Tokenizer, method: &MethodArgs, alpha: f32) -> Result<Model, CliError> {
    let (ids, plan, source) = calibration_plan(model, tok, method)?;
    let mut absmax = ChannelAbsMax::default();
    let run = collect(model, &ids, &plan, &mut absmax, CalibHooks::default())
        .map_err(|e| msg(format!("SmoothQuant calibration: {e}")))?;
    let (out, _) = smooth_model(model, &absmax, alpha).map_err(|e| msg(e.to_string()))?;
    eprintln!("SmoothQuant α={alpha}: activation maxima from {} tokens of {source}", run.tokens);
    Ok(out)
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}
