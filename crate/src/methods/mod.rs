//! Quantization methods beyond round to nearest: algorithms that choose codes from the weights
//! (and, for the calibration-based ones, statistics of the layer's inputs), then hand back an
//! ordinary [`QuantizedTensor`] in one of the existing formats (so every writer and reader
//! already handles the result).
//!
//! - [`gptq`]: GPTQ (Frantar et al. 2022), the inverse-Hessian error correction, with the
//!   quantizers it rounds onto in [`grids`] (INT sym/asym groups, the GGUF legacy blocks). The
//!   statistics come from [`crate::calib`] (layer-sequential: [`crate::calib::sequential`]).
//! - [`gptq_model`]: GPTQ on every linear layer of a model, the tensor method the CLI and the
//!   lab share.
//! - [`awq`]: AWQ (Lin et al. 2023), per-input-channel scales from activation magnitudes and a
//!   clip search, onto any INT group or GGUF block format; [`awq_model`] runs it layer by
//!   layer over a model, folding the scales into the norms and previous linears.
//! - [`hqq`]: HQQ (Badri & Shaji 2023), calibration-free: each group's zero point from a
//!   proximal `l_p` solver on the weights alone, onto the same [`grids`].
//! - [`layer_error`]: the relative output error of each block matrix under RTN, GPTQ and AWQ on
//!   the float model's calibration inputs (the lab's per-layer view, `quantlab layer-error`).
//! - [`smoothquant`]: SmoothQuant (Xiao et al. 2022), per-channel factors that move activation
//!   outliers into the weights (folded into the norms), before W8A8.
//!
//! [`QuantizedTensor`]: crate::formats::QuantizedTensor

pub mod awq;
pub mod awq_model;
pub mod gptq;
pub mod gptq_model;
pub mod grids;
pub mod hqq;
pub mod layer_error;
mod linalg;
pub mod smoothquant;

use std::collections::BTreeMap;

use crate::formats::{QuantScheme, QuantizedTensor, TensorShape};
use crate::io::export::{ExportError, RoundToNearest, TensorMethod};

/// The tensor `name` as a layer-sequential calibration run (`method`: GPTQ, AWQ) already
/// quantized it, taken out of `done`; a tensor the run did not quantize (the token embedding, a
/// type the method does not round onto) is rounded to nearest and counted in `rtn_tensors`.
pub fn take_calibrated(
    done: &mut BTreeMap<String, QuantizedTensor>,
    method: &str,
    (name, scheme, values, shape): (&str, &QuantScheme, &[f32], TensorShape),
    rtn_tensors: &mut usize,
) -> Result<QuantizedTensor, ExportError> {
    match done.remove(name) {
        Some(t) if t.scheme() == *scheme => Ok(t),
        Some(t) => Err(ExportError::Tensor(format!(
            "tensor '{name}': {method} calibration quantized it as {}, the export asks for {}",
            t.scheme().name(),
            scheme.name()
        ))),
        None => {
            *rtn_tensors += 1;
            RoundToNearest.quantize(name, scheme, values, shape)
        }
    }
}
