//! `--method hqq` for `quantlab quantize` and `quantlab eval`: HQQ ([`crate::methods::hqq`]) on
//! every tensor the policy quantizes to a format HQQ writes. It reads the weights only, so it
//! needs no calibration (the calibration options are refused) and applies to the token
//! embedding too. The run's format must be one HQQ writes; a tensor the policy gives another
//! type (a preset's wider tensors) is rounded to nearest, as GPTQ does, and counted.

use super::gptq::{GptqInputs, MethodArgs};
use super::CliError;
use crate::formats::{QuantScheme, QuantizedTensor, TensorShape};
use crate::io::export::{ExportError, RoundToNearest, TensorMethod};
use crate::methods::hqq::{self, HqqOptions};

/// HQQ for the tensors in formats it writes, round to nearest for the rest.
#[derive(Debug, Default)]
pub struct HqqMethod {
    options: HqqOptions,
    /// Tensors HQQ quantized, and those it left to round to nearest.
    pub hqq_tensors: usize,
    pub rtn_tensors: usize,
}

impl HqqMethod {
    /// The line saying what was done.
    pub fn note(&self) -> String {
        format!("HQQ quantized {} tensors; {} rounded to nearest", self.hqq_tensors, self.rtn_tensors)
    }
}

impl TensorMethod for HqqMethod {
    fn quantize(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        values: &[f32],
        shape: TensorShape,
    ) -> Result<QuantizedTensor, ExportError> {
        if !hqq::supports(scheme) {
            self.rtn_tensors += 1;
            return RoundToNearest.quantize(name, scheme, values, shape);
        }
        let out = hqq::quantize(scheme, values, shape, &self.options)
            .map_err(|e| ExportError::Tensor(format!("tensor '{name}': HQQ: {e}")))?;
        self.hqq_tensors += 1;
        Ok(out.tensor)
    }
}

/// Refuses what `--method hqq` cannot do: calibration options (HQQ reads no activations) and a
/// run format HQQ does not write.
pub fn check(args: &MethodArgs, schemes: &[QuantScheme]) -> Result<(), CliError> {
    let given = [
        ("--calib", args.calib.is_some()),
        ("--calib-tokens", args.calib_tokens != crate::calib::DEFAULT_TOKENS),
        ("--act-order", args.act_order),
        ("--gptq-inputs", args.gptq_inputs != GptqInputs::default()),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
        return Err(CliError::Message(format!(
            "{flag} is a calibration option; --method hqq is calibration-free and reads the weights only"
        )));
    }
    if let Some(s) = schemes.iter().find(|s| !hqq::supports(s)) {
        return Err(CliError::Message(format!("--method hqq writes {}, not {}", hqq::SUPPORTED, s.name())));
    }
    Ok(())
}
