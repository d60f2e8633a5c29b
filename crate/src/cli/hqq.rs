//! `--method hqq` for `quantlab quantize` and `quantlab eval`: HQQ ([`crate::methods::hqq::HqqMethod`]) on
//! every tensor the policy quantizes to a format HQQ writes. It reads the weights only, so it
//! needs no calibration (the calibration options are refused) and applies to the token
//! embedding too. The run's format must be one HQQ writes; a tensor the policy gives another
//! type (a preset's wider tensors) is rounded to nearest, as GPTQ does, and counted.

use super::gptq::{GptqInputs, MethodArgs};
use super::CliError;
use crate::formats::QuantScheme;
use crate::methods::hqq;
pub use crate::methods::hqq::HqqMethod;

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
