//! GPTQ on every linear layer of a model: the tensor method `quantlab quantize --method gptq`,
//! `quantlab eval --method gptq` and the lab's Methods panel share (the CLI's option parsing and
//! calibration text stay in `cli/gptq.rs`).
//!
//! Where each layer's input statistics (`XᵀX`) come from:
//! - [`gptq_sequential`]: layer-sequential, as the reference does — each layer is calibrated on
//!   what the already-quantized earlier layers (and the earlier matrices of its own layer) hand
//!   it ([`crate::calib::sequential`]). Every linear tensor is quantized during calibration, in
//!   the type the tensor policy gives it (GPTQ where the type allows, round to nearest
//!   otherwise, so later layers see the model as it will be written); the export then writes
//!   those tensors.
//! - [`GptqMethod::from_stats`]: statistics of one calibration run of the float model.
//!
//! Matrices that read no layer input (the token embedding, which the default model also uses as
//! its classifier) are rounded to nearest, as is every tensor in a format GPTQ does not round
//! onto. Matrices reading one input (q/k/v, gate/up) share one factored Hessian.

use std::collections::BTreeMap;

use super::gptq::{self, GptqOptions, HessianFactor, SecondMomentRef};
use crate::calib::sequential::{run_sequential, LayerQuantizer};
use crate::calib::{CalibError, CalibHooks, CalibRun, ChunkPlan, Gram, LinearInput, SecondMoment};
use crate::formats::{self, QuantScheme, QuantizedTensor, TensorShape};
use crate::io::export::{ExportError, RoundToNearest, TensorMethod};
use crate::model::weights::{Layer, Matrix};
use crate::model::Model;

/// What GPTQ calibration produced: the quantized tensors, or the statistics to quantize with.
enum Prepared {
    /// Layer-sequential: every linear tensor already quantized, by name.
    Tensors(BTreeMap<String, QuantizedTensor>),
    /// Float model: the statistics per input, and the last factored Hessian.
    Stats { stats: SecondMoment, factor: Option<(LinearInput, HessianFactor)> },
}

/// GPTQ for the tensors whose input was observed, round to nearest for the rest.
pub struct GptqMethod {
    prepared: Prepared,
    options: GptqOptions,
    /// Tensors GPTQ quantized, and those it left to round to nearest.
    pub gptq_tensors: usize,
    pub rtn_tensors: usize,
}

impl GptqMethod {
    /// GPTQ with the statistics of a calibration run of the float model (not layer-sequential).
    pub fn from_stats(stats: SecondMoment, options: GptqOptions) -> GptqMethod {
        GptqMethod { prepared: Prepared::Stats { stats, factor: None }, options, gptq_tensors: 0, rtn_tensors: 0 }
    }
}

impl TensorMethod for GptqMethod {
    fn quantize(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        values: &[f32],
        shape: TensorShape,
    ) -> Result<QuantizedTensor, ExportError> {
        match &mut self.prepared {
            Prepared::Tensors(done) => {
                super::take_calibrated(done, "GPTQ", (name, scheme, values, shape), &mut self.rtn_tensors)
            }
            Prepared::Stats { stats, factor } => {
                let input = stats.inputs.keys().copied().find(|i| i.tensor_names(false).iter().any(|t| t == name));
                let Some(input) = input.filter(|_| gptq::supports(scheme)) else {
                    self.rtn_tensors += 1;
                    return RoundToNearest.quantize(name, scheme, values, shape);
                };
                if factor.as_ref().is_none_or(|(i, _)| *i != input) {
                    let gram = &stats.inputs[&input];
                    let f = HessianFactor::new(second_moment(gram), shape.cols, &self.options)
                        .map_err(|e| ExportError::Tensor(format!("tensor '{name}': GPTQ: {e}")))?;
                    *factor = Some((input, f));
                }
                let (_, f) = factor.as_ref().expect("set above");
                let out = gptq::quantize_factored(scheme, values, shape, f)
                    .map_err(|e| ExportError::Tensor(format!("tensor '{name}': GPTQ: {e}")))?;
                self.gptq_tensors += 1;
                Ok(out.tensor)
            }
        }
    }
}

fn second_moment(gram: &Gram) -> SecondMomentRef<'_> {
    SecondMomentRef { xtx: &gram.xtx, samples: gram.rows as usize }
}

/// Layer-sequential GPTQ of `model` over the chunks of `tokens` that `plan` selects: every tensor
/// of `schemes` (each quantized tensor's scheme, as [`crate::model::planned_schemes`] gives
/// them) is quantized during the run; the returned method hands them to the export or to
/// [`crate::model::quantize_model_with`]. `hooks` report the calibration's progress and cancel it.
pub fn gptq_sequential(
    model: &Model,
    tokens: &[u32],
    plan: &ChunkPlan,
    schemes: &BTreeMap<String, QuantScheme>,
    options: GptqOptions,
    hooks: CalibHooks<'_>,
) -> Result<(CalibRun, GptqMethod), CalibError> {
    let mut q = SequentialGptq { schemes, options, done: BTreeMap::new(), gptq_tensors: 0, rtn_tensors: 0 };
    let (run, _) = run_sequential(model, tokens, plan, &mut q, hooks)?;
    let method = GptqMethod {
        prepared: Prepared::Tensors(q.done),
        options,
        gptq_tensors: q.gptq_tensors,
        rtn_tensors: q.rtn_tensors,
    };
    Ok((run, method))
}

/// The layer-sequential quantizer: each input's matrices, in the types the policy gives them.
struct SequentialGptq<'a> {
    schemes: &'a BTreeMap<String, QuantScheme>,
    options: GptqOptions,
    done: BTreeMap<String, QuantizedTensor>,
    gptq_tensors: usize,
    rtn_tensors: usize,
}

impl LayerQuantizer for SequentialGptq<'_> {
    fn quantize_input(&mut self, input: LinearInput, gram: &Gram, layer: &mut Layer) -> Result<(), String> {
        let Some(l) = input.layer() else { return Ok(()) };
        let mut factor: Option<HessianFactor> = None;
        for short in input.matrix_names() {
            let name = format!("blk.{l}.{short}.weight");
            let Some(scheme) = self.schemes.get(&name) else { continue };
            let m = layer.matrix_mut(short).ok_or_else(|| format!("no matrix '{short}' in the layer"))?;
            let (values, shape) = (m.to_f32(), m.shape());
            let fail = |e: &dyn std::fmt::Display| format!("tensor '{name}': {e}");
            let tensor = if gptq::supports(scheme) {
                let f = match factor.take() {
                    Some(f) => f,
                    None => HessianFactor::new(second_moment(gram), shape.cols, &self.options).map_err(|e| fail(&e))?,
                };
                let out = gptq::quantize_factored(scheme, &values, shape, &f).map_err(|e| fail(&e))?;
                factor = Some(f);
                self.gptq_tensors += 1;
                out.tensor
            } else {
                self.rtn_tensors += 1;
                formats::quantize(scheme, &values, shape).map_err(|e| fail(&e))?
            };
            *m = Matrix::from_quantized(tensor.clone()).map_err(|e| fail(&e))?;
            self.done.insert(name, tensor);
        }
        Ok(())
    }
}
