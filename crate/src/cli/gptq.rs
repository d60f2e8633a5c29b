//! `quantlab quantize IN -f FORMAT --method gptq`: GPTQ on every linear layer of a GGUF model.
//!
//! The method itself (layer-sequential or float-model statistics, which tensors GPTQ rounds and
//! which it leaves to round to nearest) is [`crate::methods::gptq_model`], shared with the lab;
//! here are the options and the calibration text.

use super::calib_text::calibration_text;
use super::CliError;
use crate::calib::{collect, gptq_tokens, CalibHooks, ChunkPlan, InputSelection, LinearInput, SecondMoment};
use crate::formats::QuantScheme;
use crate::gguf::GgufFile;
use crate::io::export::{model_shape, tensor_facts};
use crate::methods::gptq::{ColumnOrder, GptqOptions};
use crate::methods::gptq_model::gptq_sequential;
pub use crate::methods::gptq_model::GptqMethod;
use crate::model::{quantize_model_with, Model, QuantReport};
use crate::policy::{Action, TensorPolicy};
pub use crate::recipe::Method;
use crate::tokenizer::Tokenizer;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where GPTQ's layer input statistics come from (`--gptq-inputs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GptqInputs {
    /// Layer-sequential: from the model whose earlier layers are already quantized (the reference's order).
    #[default]
    Quantized,
    /// From the float model, in one calibration pass (faster; blind to the earlier layers' error).
    Float,
}

/// The scheme the tensor policy gives each tensor of the GGUF `file` that it quantizes.
pub fn planned_schemes(
    file: &[u8],
    scheme: &QuantScheme,
    policy: &TensorPolicy,
) -> Result<BTreeMap<String, QuantScheme>, CliError> {
    let f = GgufFile::parse(file, file.len() as u64).map_err(|e| CliError::Message(e.to_string()))?;
    let shape = model_shape(&f);
    let mut out = BTreeMap::new();
    for t in &f.tensors {
        if let Action::Quantize(s) = policy.decide_in(&tensor_facts(t), scheme, shape.as_ref()).action {
            out.insert(t.name.clone(), s);
        }
    }
    Ok(out)
}

/// Why `--method` takes no `imatrix` (the value is not offered; a `MethodArgs` built in code
/// could still hold it).
pub const IMATRIX_BY_FILE: &str = "the importance matrix is given with --imatrix FILE, not with --method";

/// The method and its calibration options, shared by `quantize` and `eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct MethodArgs {
    /// How codes are chosen: rtn (round to nearest), gptq (quantize: GGUF input only; INT sym/asym
    /// per-channel or group formats and q4_0 q4_1 q5_0 q5_1 q8_0; other tensors and formats are
    /// rounded to nearest; GPTQ's Hessians come from the calibration text, layer by layer,
    /// --gptq-inputs), awq (GGUF input only; INT per-channel or group formats and the GGUF
    /// block types, k-quants included; per-channel scales from the calibration text's
    /// activations are folded into the norms and previous linears, which the output carries,
    /// then each row's clip range is searched; the token embedding is rounded to nearest) or
    /// hqq (GGUF input; q4_1 q5_1 and INT asym per-channel or group formats; calibration-free,
    /// every quantized tensor including the token embedding; tensors the policy gives another
    /// type are rounded to nearest).
    #[arg(long, value_enum, default_value_t = Method::Rtn)]
    pub method: Method,
    /// Calibration text for --method gptq/awq and a recipe's gptq entries (UTF-8 file; default:
    /// Moby-Dick chapters 4+, never the eval chapters 1-3).
    #[arg(long, value_name = "FILE")]
    pub calib: Option<PathBuf>,
    /// Calibration tokens for GPTQ and AWQ (whole chunks of up to 512 tokens). Use more than a
    /// layer's inputs (1536 for the default model's ffn_down): with fewer, GPTQ fits the
    /// calibration rows rather than the layer.
    #[arg(long, value_name = "N", default_value_t = crate::calib::DEFAULT_TOKENS)]
    pub calib_tokens: usize,
    /// GPTQ only: quantize columns in descending Hessian-diagonal order (desc_act), with static
    /// groups.
    #[arg(long)]
    pub act_order: bool,
    /// GPTQ only: each layer's input statistics from the model whose earlier layers are already
    /// quantized (quantized: layer-sequential, as GPTQ's reference does) or from the float model
    /// in one pass (float: faster, blind to the earlier layers' error).
    #[arg(long, value_enum, value_name = "FROM", default_value_t = GptqInputs::Quantized)]
    pub gptq_inputs: GptqInputs,
}

impl Default for MethodArgs {
    fn default() -> Self {
        MethodArgs {
            method: Method::Rtn,
            calib: None,
            calib_tokens: crate::calib::DEFAULT_TOKENS,
            act_order: false,
            gptq_inputs: GptqInputs::Quantized,
        }
    }
}

/// The calibration tokens of `args` (`--calib`, `--calib-tokens`), how they are cut into chunks
/// (512 tokens, or fewer for a short run or context; BOS first when the model adds one), and
/// where the text came from.
pub fn calibration_plan(
    model: &Model,
    tokenizer: &Tokenizer,
    args: &MethodArgs,
) -> Result<(Vec<u32>, ChunkPlan, String), CliError> {
    let (text, source) = calibration_text(args.calib.as_deref(), args.calib_tokens)?;
    let (ids, mut plan) = gptq_tokens(tokenizer, &text, args.calib_tokens, model.config.seq_len);
    plan.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok((ids, plan, source))
}

/// Runs `model` over the calibration text and returns the GPTQ method ready to quantize the
/// tensors of `schemes` (each quantized tensor's scheme: [`planned_schemes`] or
/// [`crate::model::planned_schemes`]), and a line saying what was run.
pub fn calibrate(
    model: &Model,
    tokenizer: &Tokenizer,
    args: &MethodArgs,
    schemes: &BTreeMap<String, QuantScheme>,
) -> Result<(GptqMethod, String), CliError> {
    let (ids, plan, source) = calibration_plan(model, tokenizer, args)?;
    let order = if args.act_order { ColumnOrder::ActOrder } else { ColumnOrder::Natural };
    let options = GptqOptions { order, ..Default::default() };
    let calib_err = |e: crate::calib::CalibError| CliError::Message(format!("calibration: {e}"));
    match args.gptq_inputs {
        GptqInputs::Quantized => {
            let (run, method) =
                gptq_sequential(model, &ids, &plan, schemes, options, CalibHooks::default()).map_err(calib_err)?;
            let line = format!(
                "GPTQ calibration: {} tokens ({} chunks of {}) of {source}, layer-sequential (each layer's inputs from the already-quantized earlier layers)",
                run.tokens, run.chunks, run.chunk
            );
            Ok((method, line))
        }
        GptqInputs::Float => {
            let layers = (0..model.config.n_layers).flat_map(|layer| {
                [
                    LinearInput::Attention { layer },
                    LinearInput::AttentionOutput { layer },
                    LinearInput::Ffn { layer },
                    LinearInput::FfnDown { layer },
                ]
            });
            let mut stats = SecondMoment::new(InputSelection::Only(layers.collect()));
            let run = collect(model, &ids, &plan, &mut stats, CalibHooks::default()).map_err(calib_err)?;
            let line = format!(
                "GPTQ calibration: {} tokens ({} chunks of {}) of {source}, Hessians from the float model's activations (not layer-sequential)",
                run.tokens, run.chunks, run.chunk
            );
            Ok((GptqMethod::from_stats(stats, options), line))
        }
    }
}

/// `model` quantized to `target` in memory with GPTQ (`eval --method gptq`): the calibration
/// runs on this target's own quantized layers, then every matrix goes through the tensor policy
/// as [`crate::model::quantize_model`] does. Returns the line saying what was calibrated too.
pub fn quantize_model_gptq(
    model: &Model,
    tokenizer: &Tokenizer,
    scheme: &QuantScheme,
    policy: &TensorPolicy,
    args: &MethodArgs,
) -> Result<(Model, QuantReport, String), CliError> {
    let schemes = crate::model::planned_schemes(model, scheme, policy);
    let (mut method, line) = calibrate(model, tokenizer, args, &schemes)?;
    let (q, report) = quantize_model_with(model, scheme, policy, &mut |_, _, _| true, &mut method)
        .map_err(|e| CliError::Message(e.to_string()))?;
    Ok((
        q,
        report,
        format!("{line}; GPTQ quantized {} tensors, {} rounded to nearest", method.gptq_tensors, method.rtn_tensors),
    ))
}
