//! `quantlab quantize IN -f FORMAT --method awq` and `quantlab eval --method awq`: AWQ on every
//! linear layer of a GGUF model, layer by layer ([`crate::methods::awq_model`], shared with the
//! lab); here are the calibration text and the lines the CLI prints.
//!
//! AWQ changes float tensors too: the scales' inverses are folded into the attention and FFN
//! norm vectors. The export therefore writes the input file with those norms replaced
//! ([`AwqMethod::scaled_gguf`]) and the matrices AWQ quantized; every other tensor as the tensor
//! policy says, rounded to nearest (the token embedding, which the default model also uses as
//! its classifier, included).

use super::gptq::{calibration_plan, MethodArgs};
use super::CliError;
use crate::calib::CalibHooks;
use crate::formats::QuantScheme;
use crate::methods::awq_model::awq_sequential;
pub use crate::methods::awq_model::AwqMethod;
use crate::model::{quantize_model_with, Model, QuantReport};
use crate::policy::TensorPolicy;
use crate::tokenizer::Tokenizer;
use std::collections::BTreeMap;

/// Runs AWQ over `model` on the calibration text, quantizing the tensors of `schemes` (each
/// quantized tensor's scheme, as the tensor policy gives it); returns the method that hands the
/// results to an export, and a line saying what was run.
pub fn calibrate(
    model: &Model,
    tokenizer: &Tokenizer,
    args: &MethodArgs,
    schemes: &BTreeMap<String, QuantScheme>,
) -> Result<(AwqMethod, String), CliError> {
    let (ids, plan, source) = calibration_plan(model, tokenizer, args)?;
    let (run, method) = awq_sequential(model, &ids, &plan, schemes, CalibHooks::default())
        .map_err(|e| CliError::Message(format!("calibration: {e}")))?;
    let line = format!(
        "AWQ calibration: {} tokens ({} chunks of {}) of {source}, layer-sequential; {} groups scaled, {} clipped only",
        run.tokens, run.chunks, run.chunk, method.scaled_groups, method.clipped_groups
    );
    Ok((method, line))
}

/// A copy of the GGUF `file` with AWQ's scaled norms (see [`AwqMethod::scaled_gguf`]).
pub fn with_norms(file: &[u8], method: &AwqMethod) -> Result<Vec<u8>, CliError> {
    method.scaled_gguf(file).map_err(|e| CliError::Message(e.to_string()))
}

/// `model` quantized to `scheme` in memory with AWQ (`eval --method awq`): the calibration runs
/// on this target's own quantized layers; the returned model carries the scaled norms. Returns
/// the line saying what was calibrated too. The report's per-tensor errors compare each stored
/// (scaled) matrix with the unscaled source, so for AWQ's matrices they are not the error the
/// model sees.
pub fn quantize_model_awq(
    model: &Model,
    tokenizer: &Tokenizer,
    scheme: &QuantScheme,
    policy: &TensorPolicy,
    args: &MethodArgs,
) -> Result<(Model, QuantReport, String), CliError> {
    let schemes = crate::model::planned_schemes(model, scheme, policy);
    let (mut method, line) = calibrate(model, tokenizer, args, &schemes)?;
    let scaled = method.scaled_model(model);
    let (q, report) = quantize_model_with(&scaled, scheme, policy, &mut |_, _, _| true, &mut method)
        .map_err(|e| CliError::Message(e.to_string()))?;
    Ok((
        q,
        report,
        format!("{line}; AWQ quantized {} tensors, {} rounded to nearest", method.awq_tensors, method.rtn_tensors),
    ))
}
