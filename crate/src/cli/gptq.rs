//! `quantlab quantize IN -f FORMAT --method gptq`: GPTQ on every linear layer of a GGUF model.
//!
//! The Hessian statistics (`XᵀX` of each linear layer's input) come from one calibration run of
//! the *float* model over the calibration text ([`crate::calib`]): this round is not
//! layer-sequential (the reference implementation re-runs each block on the already-quantized
//! earlier blocks' outputs). Matrices that read no observed input (the token embedding, which
//! the default model also uses as its classifier) are rounded to nearest, as is every tensor in
//! a format GPTQ does not round onto.

use super::calib_text::calibration_text;
use super::load::load_model;
use super::CliError;
use crate::calib::{collect, CalibHooks, ChunkPlan, InputSelection, LinearInput, SecondMoment, DEFAULT_CHUNK};
use crate::formats::{QuantScheme, QuantizedTensor, TensorShape};
use crate::io::export::{ExportError, RoundToNearest, TensorMethod};
use crate::methods::gptq::{self, ColumnOrder, GptqError, GptqOptions, SecondMomentRef};
use std::path::Path;

/// GPTQ for the tensors whose input was observed, round to nearest for the rest.
pub struct GptqMethod {
    pub stats: SecondMoment,
    pub options: GptqOptions,
    /// Tensors GPTQ quantized, and those it left to round to nearest.
    pub gptq_tensors: usize,
    pub rtn_tensors: usize,
}

impl GptqMethod {
    fn input_of(&self, name: &str) -> Option<LinearInput> {
        // The classifier's input is not collected, so whether it is tied does not matter here.
        self.stats.inputs.keys().copied().find(|i| i.tensor_names(false).iter().any(|t| t == name))
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
        let Some(input) = self.input_of(name) else {
            self.rtn_tensors += 1;
            return RoundToNearest.quantize(name, scheme, values, shape);
        };
        let gram = &self.stats.inputs[&input];
        let stats = SecondMomentRef { xtx: &gram.xtx, samples: gram.rows as usize };
        match gptq::quantize(scheme, values, shape, stats, &self.options) {
            Ok(out) => {
                self.gptq_tensors += 1;
                Ok(out.tensor)
            }
            Err(GptqError::UnsupportedScheme { .. }) => {
                self.rtn_tensors += 1;
                RoundToNearest.quantize(name, scheme, values, shape)
            }
            Err(e) => Err(ExportError::Tensor(format!("tensor '{name}': GPTQ: {e}"))),
        }
    }
}

/// Runs the float model over the calibration text and returns the GPTQ method ready to quantize,
/// and a line saying what was run.
pub fn calibrate(
    model_path: &Path,
    calib: Option<&Path>,
    tokens: usize,
    order: ColumnOrder,
) -> Result<(GptqMethod, String), CliError> {
    let (model, tokenizer, _) = load_model(model_path)?;
    let (text, source) = calibration_text(calib, tokens)?;
    let ids = tokenizer.encode(&text, false, false);
    let bos = if tokenizer.add_bos_default() { tokenizer.bos_id() } else { None };
    let chunk = DEFAULT_CHUNK.min(tokens).min(model.config.seq_len).max(1);
    let mut plan = ChunkPlan::new(chunk, tokens, bos);
    plan.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let layers = (0..model.config.n_layers).flat_map(|layer| {
        [
            LinearInput::Attention { layer },
            LinearInput::AttentionOutput { layer },
            LinearInput::Ffn { layer },
            LinearInput::FfnDown { layer },
        ]
    });
    let mut stats = SecondMoment::new(InputSelection::Only(layers.collect()));
    let run = collect(&model, &ids, &plan, &mut stats, CalibHooks::default())
        .map_err(|e| CliError::Message(format!("calibration: {e}")))?;
    let line = format!(
        "GPTQ calibration: {} tokens ({} chunks of {}) of {source}, Hessians from the float model's activations (not layer-sequential)",
        run.tokens, run.chunks, run.chunk
    );
    let options = GptqOptions { order, ..Default::default() };
    Ok((GptqMethod { stats, options, gptq_tensors: 0, rtn_tensors: 0 }, line))
}
