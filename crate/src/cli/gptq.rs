//! `quantlab quantize IN -f FORMAT --method gptq`: GPTQ on every linear layer of a GGUF model.
//!
//! Where each layer's input statistics (`XᵀX`) come from is [`GptqInputs`]:
//! - `quantized` (default): layer-sequential, as the reference does — each layer is calibrated on
//!   what the already-quantized earlier layers (and the earlier matrices of its own layer) hand
//!   it ([`crate::calib::sequential`]). Every linear tensor is quantized during calibration, in
//!   the type the tensor policy gives it (GPTQ where the type allows, round to nearest
//!   otherwise, so later layers see the model as it will be written); the export then writes
//!   those tensors.
//! - `float`: one calibration run of the float model, every layer's statistics from it.
//!
//! Matrices that read no layer input (the token embedding, which the default model also uses as
//! its classifier) are rounded to nearest, as is every tensor in a format GPTQ does not round
//! onto. Matrices reading one input (q/k/v, gate/up) share one factored Hessian.

use super::calib_text::calibration_text;
use super::CliError;
use crate::calib::sequential::{run_sequential, LayerQuantizer};
use crate::calib::{collect, CalibHooks, ChunkPlan, Gram, InputSelection, LinearInput, SecondMoment, DEFAULT_CHUNK};
use crate::formats::{self, QuantScheme, QuantizedTensor, TensorShape};
use crate::gguf::GgufFile;
use crate::io::export::{model_shape, tensor_facts, ExportError, RoundToNearest, TensorMethod};
use crate::methods::gptq::{self, ColumnOrder, GptqOptions, HessianFactor, SecondMomentRef};
use crate::model::weights::{Layer, Matrix};
use crate::model::{quantize_model_with, Model, QuantReport};
use crate::policy::{Action, TensorPolicy};
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

impl TensorMethod for GptqMethod {
    fn quantize(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        values: &[f32],
        shape: TensorShape,
    ) -> Result<QuantizedTensor, ExportError> {
        match &mut self.prepared {
            Prepared::Tensors(done) => match done.remove(name) {
                Some(t) if t.scheme() == *scheme => Ok(t),
                Some(t) => Err(ExportError::Tensor(format!(
                    "tensor '{name}': GPTQ calibration quantized it as {}, the export asks for {}",
                    t.scheme().name(),
                    scheme.name()
                ))),
                None => {
                    self.rtn_tensors += 1;
                    RoundToNearest.quantize(name, scheme, values, shape)
                }
            },
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

/// How codes are chosen (`--method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Method {
    /// Round to nearest: the format's own quantizer.
    #[default]
    Rtn,
    /// GPTQ, calibrated layer by layer.
    Gptq,
    /// HQQ: each group's zero point optimised on the weights alone (no calibration).
    Hqq,
}

/// The method and its calibration options, shared by `quantize` and `eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct MethodArgs {
    /// How codes are chosen: rtn (round to nearest) or gptq (quantize: GGUF input only; INT sym/asym
    /// per-channel or group formats and q4_0 q4_1 q5_0 q5_1 q8_0; other tensors and formats are
    /// rounded to nearest). GPTQ's Hessians come from the calibration text, layer by layer
    /// (--gptq-inputs); the token embedding is rounded to nearest. hqq (GGUF input; q4_1 q5_1 and
    /// INT asym per-channel or group formats; calibration-free, every quantized tensor
    /// including the token embedding; tensors the policy gives another type are rounded to
    /// nearest).
    #[arg(long, value_enum, default_value_t = Method::Rtn)]
    pub method: Method,
    /// Calibration text for --method gptq and a recipe's gptq entries (UTF-8 file; default:
    /// Moby-Dick chapters 4+, never the eval chapters 1-3).
    #[arg(long, value_name = "FILE")]
    pub calib: Option<PathBuf>,
    /// Calibration tokens for GPTQ (whole chunks of up to 512 tokens). Use more than a
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

/// Runs `model` over the calibration text and returns the GPTQ method ready to quantize the
/// tensors of `schemes` (each quantized tensor's scheme: [`planned_schemes`] or
/// [`crate::model::planned_schemes`]), and a line saying what was run.
pub fn calibrate(
    model: &Model,
    tokenizer: &Tokenizer,
    args: &MethodArgs,
    schemes: &BTreeMap<String, QuantScheme>,
) -> Result<(GptqMethod, String), CliError> {
    let (text, source) = calibration_text(args.calib.as_deref(), args.calib_tokens)?;
    let ids = tokenizer.encode(&text, false, false);
    let bos = if tokenizer.add_bos_default() { tokenizer.bos_id() } else { None };
    let chunk = DEFAULT_CHUNK.min(args.calib_tokens).min(model.config.seq_len).max(1);
    let mut plan = ChunkPlan::new(chunk, args.calib_tokens, bos);
    plan.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let order = if args.act_order { ColumnOrder::ActOrder } else { ColumnOrder::Natural };
    let options = GptqOptions { order, ..Default::default() };
    let calib_err = |e: crate::calib::CalibError| CliError::Message(format!("calibration: {e}"));
    match args.gptq_inputs {
        GptqInputs::Quantized => {
            let mut q = SequentialGptq { schemes, options, done: BTreeMap::new(), gptq_tensors: 0, rtn_tensors: 0 };
            let (run, _) = run_sequential(model, &ids, &plan, &mut q, CalibHooks::default()).map_err(calib_err)?;
            let line = format!(
                "GPTQ calibration: {} tokens ({} chunks of {}) of {source}, layer-sequential (each layer's inputs from the already-quantized earlier layers)",
                run.tokens, run.chunks, run.chunk
            );
            let method = GptqMethod {
                prepared: Prepared::Tensors(q.done),
                options,
                gptq_tensors: q.gptq_tensors,
                rtn_tensors: q.rtn_tensors,
            };
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
            let method = GptqMethod {
                prepared: Prepared::Stats { stats, factor: None },
                options,
                gptq_tensors: 0,
                rtn_tensors: 0,
            };
            Ok((method, line))
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
