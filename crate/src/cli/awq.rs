//! `quantlab quantize IN -f FORMAT --method awq` and `quantlab eval --method awq`: AWQ on every
//! linear layer of a GGUF model, layer by layer ([`crate::methods::awq_model`]).
//!
//! AWQ changes float tensors too: the scales' inverses are folded into the attention and FFN
//! norm vectors. The export therefore writes the input file with those norms replaced (they
//! are f32 in GGUF, so each keeps its size and place) and the matrices AWQ quantized; every
//! other tensor as the tensor policy says, rounded to nearest (the token embedding, which the
//! default model also uses as its classifier, included).

use super::gptq::{calibration_plan, take_calibrated, MethodArgs};
use super::CliError;
use crate::calib::sequential::run_sequential_with;
use crate::calib::CalibHooks;
use crate::formats::{GgmlType, QuantScheme, QuantizedTensor, TensorShape};
use crate::gguf::GgufFile;
use crate::io::export::{ExportError, TensorMethod};
use crate::methods::awq_model::AwqLayers;
use crate::model::{quantize_model_with, Model, QuantReport};
use crate::policy::TensorPolicy;
use crate::tokenizer::Tokenizer;
use std::collections::BTreeMap;

/// The matrices AWQ quantized during calibration, round to nearest for the rest.
pub struct AwqMethod {
    tensors: BTreeMap<String, QuantizedTensor>,
    /// The norm vectors with the scales folded in, by tensor name.
    pub norms: BTreeMap<String, Vec<f32>>,
    /// Tensors AWQ quantized, and those rounded to nearest.
    pub awq_tensors: usize,
    pub rtn_tensors: usize,
}

impl TensorMethod for AwqMethod {
    fn quantize(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        values: &[f32],
        shape: TensorShape,
    ) -> Result<QuantizedTensor, ExportError> {
        take_calibrated(&mut self.tensors, "AWQ", (name, scheme, values, shape), &mut self.rtn_tensors)
    }
}

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
    let positions = plan.chunks(ids.len()) * plan.chunk;
    let mut awq = AwqLayers::new(schemes, positions);
    let (run, _) = run_sequential_with(model, &ids, &plan, &mut awq, CalibHooks::default())
        .map_err(|e| CliError::Message(format!("calibration: {e}")))?;
    let scaled = awq.choices.iter().filter(|c| c.ratio_index.is_some()).count();
    let line = format!(
        "AWQ calibration: {} tokens ({} chunks of {}) of {source}, layer-sequential; {scaled} groups scaled, {} clipped only",
        run.tokens,
        run.chunks,
        run.chunk,
        awq.choices.len() - scaled
    );
    let method = AwqMethod {
        tensors: awq.tensors,
        norms: awq.norms,
        awq_tensors: awq.awq_tensors,
        rtn_tensors: awq.rtn_tensors,
    };
    Ok((method, line))
}

/// A copy of the GGUF `file` with the f32 tensors of `norms` replaced (same size, same place).
pub fn with_norms(file: &[u8], norms: &BTreeMap<String, Vec<f32>>) -> Result<Vec<u8>, CliError> {
    let f = GgufFile::parse(file, file.len() as u64).map_err(|e| CliError::Message(e.to_string()))?;
    let mut out = file.to_vec();
    for (name, values) in norms {
        let t = f
            .tensor(name)
            .ok_or_else(|| CliError::Message(format!("AWQ scaled '{name}', which the file does not have")))?;
        if t.ty != GgmlType::F32 || t.n_elements() != values.len() as u64 {
            return Err(CliError::Message(format!(
                "AWQ folds its scales into f32 norm vectors; '{name}' is {} with {} values",
                t.ty,
                t.n_elements()
            )));
        }
        let data = f.tensor_data(file, t).map_err(|e| CliError::Message(e.to_string()))?;
        let at = data.as_ptr() as usize - file.as_ptr() as usize;
        for (dst, v) in out[at..at + data.len()].chunks_exact_mut(4).zip(values) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
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
    let mut scaled = model.clone();
    for (l, layer) in scaled.weights.layers.iter_mut().enumerate() {
        for (norm, v) in [("attn_norm", &mut layer.attn_norm), ("ffn_norm", &mut layer.ffn_norm)] {
            if let Some(s) = method.norms.get(&format!("blk.{l}.{norm}.weight")) {
                v.clone_from(s);
            }
        }
    }
    let (q, report) = quantize_model_with(&scaled, scheme, policy, &mut |_, _, _| true, &mut method)
        .map_err(|e| CliError::Message(e.to_string()))?;
    Ok((
        q,
        report,
        format!("{line}; AWQ quantized {} tensors, {} rounded to nearest", method.awq_tensors, method.rtn_tensors),
    ))
}
