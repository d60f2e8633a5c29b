//! AWQ over a whole model, layer by layer ([`crate::calib::sequential`]): [`AwqLayers`] is the
//! [`SequentialQuantizer`] that, at each input of a layer, searches the scales of the matrices
//! reading it ([`super::awq`]), folds `1/s` into the operation before, searches the clip values
//! and quantizes. The groups, as the reference (`auto_scale_block` for LLaMA) defines them:
//!
//! | input               | matrices scaled        | `1/s` folded into                         |
//! |---------------------|------------------------|-------------------------------------------|
//! | attention norm out  | attn_q, attn_k, attn_v | `attn_norm` (f32)                         |
//! | attention output    | attn_output            | the rows of attn_v, if of the same shape  |
//! | FFN norm out        | ffn_gate, ffn_up       | `ffn_norm` (f32)                          |
//! | `silu(gate)·up`     | ffn_down               | the rows of ffn_up                        |
//!
//! attn_v → attn_output needs attn_v and attn_output of the same shape (multi-head attention),
//! the reference's condition. With grouped-query attention (the default model: 3 key/value
//! heads for 9 query heads) attn_v has fewer rows than attn_output has columns, so attn_output
//! gets no scale, only the clip search, as in the reference. The clip search skips attn_q and attn_k (the reference
//! does: their error reaches the output through the q·k product).
//!
//! Order and inputs: each input's statistics come from the model whose earlier layers (and the
//! earlier groups of the same layer) are already scaled and quantized — the true-sequential
//! order GPTQ uses here too. (The reference's `run_awq` instead feeds every layer the float
//! model's activations and quantizes at the end.) One matrix waits: the previous linear of a
//! fold (attn_v, ffn_up) stays float, scaled by its own group's `s`, until the next group's
//! scales are folded into its rows; so `silu(gate)·up`, which the ffn_down search reads, is
//! computed with the quantized gate and the float (scaled) up.
//!
//! A group is scaled only when every matrix in it (and the previous linear of a fold) is
//! quantized in a format AWQ supports ([`super::awq::supports`]); otherwise those matrices are
//! rounded to nearest and nothing is folded, so the float tensors left in the model are
//! exactly those the quantized ones expect.

use std::collections::BTreeMap;

use super::awq::{self, Activations, Clip, Linear, SAMPLE_ROWS};
use crate::calib::sequential::{run_sequential_with, SequentialQuantizer};
use crate::calib::{ActivationObserver, CalibError, CalibHooks, CalibRun, ChunkPlan};
use crate::formats::{self, GgmlType, QuantScheme, QuantizedTensor, TensorShape};
use crate::gguf::GgufFile;
use crate::io::export::{ExportError, TensorMethod};
use crate::model::weights::{Layer, Matrix};
use crate::model::{LinearInput, Model};

/// The matrices AWQ quantized during calibration (round to nearest for the rest), and the norms
/// its scales were folded into: the tensor method `quantlab quantize --method awq`,
/// `quantlab eval --method awq` and the lab share. The matrices are only right with the scaled
/// norms: use it on [`Self::scaled_model`] or on [`Self::scaled_gguf`] of the source file.
pub struct AwqMethod {
    tensors: BTreeMap<String, QuantizedTensor>,
    /// The norm vectors with the scales folded in, by tensor name.
    pub norms: BTreeMap<String, Vec<f32>>,
    /// Groups whose scales were searched and folded, and those only clipped.
    pub scaled_groups: usize,
    pub clipped_groups: usize,
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
        super::take_calibrated(&mut self.tensors, "AWQ", (name, scheme, values, shape), &mut self.rtn_tensors)
    }
}

impl AwqMethod {
    /// `model` with the scaled norms in place of its own (what the quantized matrices expect).
    pub fn scaled_model(&self, model: &Model) -> Model {
        let mut scaled = model.clone();
        for (l, layer) in scaled.weights.layers.iter_mut().enumerate() {
            for (norm, v) in [("attn_norm", &mut layer.attn_norm), ("ffn_norm", &mut layer.ffn_norm)] {
                if let Some(s) = self.norms.get(&format!("blk.{l}.{norm}.weight")) {
                    v.clone_from(s);
                }
            }
        }
        scaled
    }

    /// A copy of the GGUF `file` with the scaled norms in place of its own: each is an f32
    /// vector in GGUF, so it keeps its size and place.
    pub fn scaled_gguf(&self, file: &[u8]) -> Result<Vec<u8>, ExportError> {
        let f = GgufFile::parse(file, file.len() as u64)?;
        let mut out = file.to_vec();
        for (name, values) in &self.norms {
            let t = f
                .tensor(name)
                .ok_or_else(|| ExportError::Tensor(format!("AWQ scaled '{name}', which the file does not have")))?;
            if t.ty != GgmlType::F32 || t.n_elements() != values.len() as u64 {
                return Err(ExportError::Tensor(format!(
                    "AWQ folds its scales into f32 norm vectors; '{name}' is {} with {} values",
                    t.ty,
                    t.n_elements()
                )));
            }
            let data = f.tensor_data(file, t)?;
            let at = data.as_ptr() as usize - file.as_ptr() as usize;
            for (dst, v) in out[at..at + data.len()].chunks_exact_mut(4).zip(values) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// The line saying what calibration did.
    pub fn note(&self) -> String {
        format!(
            "{} groups scaled, {} clipped only; AWQ quantized {} tensors, {} rounded to nearest",
            self.scaled_groups, self.clipped_groups, self.awq_tensors, self.rtn_tensors
        )
    }
}

/// Layer-sequential AWQ of `model` over the chunks of `tokens` that `plan` selects: every tensor
/// of `schemes` (each quantized tensor's scheme, as [`crate::model::planned_schemes`] gives them)
/// is quantized during the run. `hooks` report the calibration's progress and cancel it.
pub fn awq_sequential(
    model: &Model,
    tokens: &[u32],
    plan: &ChunkPlan,
    schemes: &BTreeMap<String, QuantScheme>,
    hooks: CalibHooks<'_>,
) -> Result<(CalibRun, AwqMethod), CalibError> {
    let positions = plan.chunks(tokens.len()) * plan.chunk;
    let mut awq = AwqLayers::new(schemes, positions);
    let (run, _) = run_sequential_with(model, tokens, plan, &mut awq, hooks)?;
    let scaled_groups = awq.choices.iter().filter(|c| c.ratio_index.is_some()).count();
    let method = AwqMethod {
        tensors: awq.tensors,
        norms: awq.norms,
        scaled_groups,
        clipped_groups: awq.choices.len() - scaled_groups,
        awq_tensors: awq.awq_tensors,
        rtn_tensors: awq.rtn_tensors,
    };
    Ok((run, method))
}

/// What AWQ keeps of one input: `Σ|x|` per column over every position, and every
/// `stride`-th position's row (at most [`SAMPLE_ROWS`]).
#[derive(Debug, Clone)]
pub struct AwqStats {
    input: LinearInput,
    stride: usize,
    abs_sum: Vec<f64>,
    positions: u64,
    sample: Vec<f32>,
    width: usize,
}

impl AwqStats {
    pub fn new(input: LinearInput, stride: usize) -> AwqStats {
        AwqStats { input, stride: stride.max(1), abs_sum: Vec::new(), positions: 0, sample: Vec::new(), width: 0 }
    }

    /// `mean |x|` per column.
    pub fn abs_mean(&self) -> Vec<f32> {
        let n = self.positions.max(1) as f64;
        self.abs_sum.iter().map(|&s| (s / n) as f32).collect()
    }

    /// The sampled rows (`n × width`).
    pub fn sample(&self) -> &[f32] {
        &self.sample
    }
}

impl ActivationObserver for AwqStats {
    fn observe(&mut self, input: LinearInput, rows: &[f32], width: usize) {
        if input != self.input {
            return;
        }
        if self.abs_sum.is_empty() {
            (self.abs_sum, self.width) = (vec![0.0; width], width);
        }
        assert_eq!(self.width, width, "{input:?}: rows of {width} values after rows of {}", self.width);
        for row in rows.chunks_exact(width) {
            for (s, &x) in self.abs_sum.iter_mut().zip(row) {
                *s += f64::from(x.abs());
            }
            if self.positions.is_multiple_of(self.stride as u64) && self.sample.len() < SAMPLE_ROWS * width {
                self.sample.extend_from_slice(row);
            }
            self.positions += 1;
        }
    }
}

/// One scale search's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChoice {
    pub input: LinearInput,
    /// The ratio `ratio_index / 20`; `None` when the group was not scaled (clip only).
    pub ratio_index: Option<usize>,
}

/// A matrix kept float until the next group's scales are folded into its rows.
struct Pending {
    short: &'static str,
    scheme: QuantScheme,
    weights: Vec<f32>,
    shape: TensorShape,
    /// The (scaled) sample rows of its own input, for its clip search.
    x: Vec<f32>,
}

/// Layer-sequential AWQ onto the schemes the tensor policy gives each matrix (by llama.cpp name).
pub struct AwqLayers<'a> {
    schemes: &'a BTreeMap<String, QuantScheme>,
    stride: usize,
    pending: Option<Pending>,
    /// Every matrix quantized, by name (scaled and clipped: to be used with [`Self::norms`]).
    pub tensors: BTreeMap<String, QuantizedTensor>,
    /// The norm vectors with `1/s` folded in, by name (`blk.N.attn_norm.weight`).
    pub norms: BTreeMap<String, Vec<f32>>,
    pub choices: Vec<GroupChoice>,
    /// The scales `s` of every scaled input: the stored matrices reading it hold `W·diag(s)`,
    /// and the operation before it carries `1/s` (so the layer's own weights are recovered as
    /// `Q·diag(1/s)`, see [`crate::methods::layer_error`]).
    pub scales: BTreeMap<LinearInput, Vec<f32>>,
    /// Matrices AWQ quantized, and those rounded to nearest (a format AWQ does not take).
    pub awq_tensors: usize,
    pub rtn_tensors: usize,
}

impl<'a> AwqLayers<'a> {
    /// AWQ for a run over `positions` calibration positions (the loss sample is every
    /// `positions / SAMPLE_ROWS`-th).
    pub fn new(schemes: &'a BTreeMap<String, QuantScheme>, positions: usize) -> AwqLayers<'a> {
        AwqLayers {
            schemes,
            stride: (positions / SAMPLE_ROWS).max(1),
            pending: None,
            tensors: BTreeMap::new(),
            norms: BTreeMap::new(),
            choices: Vec::new(),
            scales: BTreeMap::new(),
            awq_tensors: 0,
            rtn_tensors: 0,
        }
    }

    /// The scheme of `blk.{layer}.{short}.weight` when AWQ quantizes it.
    fn awq_scheme(&self, layer: usize, short: &str) -> Option<QuantScheme> {
        self.schemes.get(&format!("blk.{layer}.{short}.weight")).copied().filter(awq::supports)
    }

    /// The matrix that waits for the next group (see the module docs), if this group has one
    /// and the fold is possible.
    fn deferred(&self, input: LinearInput, layer: &Layer) -> Option<&'static str> {
        let l = input.layer()?;
        let (prev, next) = match input {
            LinearInput::Attention { .. } => ("attn_v", "attn_output"),
            LinearInput::Ffn { .. } => ("ffn_up", "ffn_down"),
            _ => return None,
        };
        let shape = |short: &str| layer.matrices().iter().find(|(n, _)| *n == short).map(|(_, m)| m.shape());
        let (p, n) = (shape(prev)?, shape(next)?);
        let fits = match input {
            // The reference's condition: v and o of the same shape (no grouped-query heads).
            LinearInput::Attention { .. } => p == n,
            _ => p.rows == n.cols,
        };
        (fits && self.awq_scheme(l, prev).is_some() && self.awq_scheme(l, next).is_some()).then_some(prev)
    }

    fn store(&mut self, layer: &mut Layer, name: String, short: &str, t: QuantizedTensor) -> Result<(), String> {
        let m = layer.matrix_mut(short).ok_or_else(|| format!("no matrix '{short}' in the layer"))?;
        *m = Matrix::from_quantized(t.clone()).map_err(|e| format!("tensor '{name}': {e}"))?;
        self.tensors.insert(name, t);
        Ok(())
    }
}

impl SequentialQuantizer for AwqLayers<'_> {
    type Stats = AwqStats;

    fn stats(&mut self, input: LinearInput) -> AwqStats {
        AwqStats::new(input, self.stride)
    }

    fn quantize(&mut self, input: LinearInput, stats: AwqStats, layer: &mut Layer) -> Result<(), String> {
        let Some(l) = input.layer() else { return Ok(()) };
        let names = input.matrix_names();
        let tensor = |short: &str| format!("blk.{l}.{short}.weight");
        let fail = |name: &str, e: &dyn std::fmt::Display| format!("tensor '{name}': {e}");
        let schemes: Vec<Option<QuantScheme>> = names.iter().map(|n| self.awq_scheme(l, n)).collect();
        let all_awq = schemes.iter().all(Option::is_some);
        let mut pending = self.pending.take();
        let norm = match input {
            LinearInput::Attention { .. } => Some("attn_norm"),
            LinearInput::Ffn { .. } => Some("ffn_norm"),
            _ => None,
        };
        // Scaled when the operation before can take 1/s: a norm, or a waiting previous linear.
        let scaled = all_awq && (norm.is_some() || pending.is_some());
        let mut weights: Vec<Vec<f32>> = Vec::with_capacity(names.len());
        for n in names {
            let m = layer.matrices().into_iter().find(|(s, _)| s == n).map(|(_, m)| m.to_f32());
            weights.push(m.ok_or_else(|| format!("no matrix '{n}' in the layer"))?);
        }
        let shapes: Vec<TensorShape> =
            names.iter().map(|n| layer.matrix_mut(n).map(|m| m.shape()).expect("found above")).collect();
        let abs_mean = stats.abs_mean();
        let mut x = stats.sample().to_vec();
        if scaled {
            let linears: Vec<Linear> = (0..names.len())
                .map(|i| Linear {
                    scheme: schemes[i].as_ref().expect("all_awq"),
                    weights: &weights[i],
                    shape: shapes[i],
                })
                .collect();
            let acts = Activations { rows: &x, abs_mean: &abs_mean };
            let choice = awq::search_scales(&linears, &acts).map_err(|e| fail(&tensor(names[0]), &e))?;
            let s = &choice.scales;
            match (norm, pending.as_mut()) {
                (Some(norm), _) => {
                    let v = if norm == "attn_norm" { &mut layer.attn_norm } else { &mut layer.ffn_norm };
                    for (w, &k) in v.iter_mut().zip(s) {
                        *w /= k;
                    }
                    self.norms.insert(format!("blk.{l}.{norm}.weight"), v.clone());
                }
                (None, Some(p)) => {
                    for (row, &k) in p.weights.chunks_exact_mut(p.shape.cols).zip(s) {
                        row.iter_mut().for_each(|w| *w /= k);
                    }
                }
                (None, None) => unreachable!("scaled needs a norm or a waiting linear"),
            }
            for w in &mut weights {
                *w = awq::scale_columns(w, s);
            }
            x = awq::scale_inputs(&x, s);
            self.choices.push(GroupChoice { input, ratio_index: Some(choice.ratio_index) });
            self.scales.insert(input, choice.scales);
        } else if all_awq {
            self.choices.push(GroupChoice { input, ratio_index: None });
        }
        // The waiting previous linear: its rows now carry this group's 1/s.
        if let Some(p) = pending.take() {
            let name = tensor(p.short);
            let lin = Linear { scheme: &p.scheme, weights: &p.weights, shape: p.shape };
            let (t, _) = awq::clip_and_quantize(lin, &p.x, Clip::Search).map_err(|e| fail(&name, &e))?;
            self.awq_tensors += 1;
            self.store(layer, name, p.short, t)?;
        }
        let deferred = if scaled { self.deferred(input, layer) } else { None };
        for (i, (&short, w)) in names.iter().zip(weights).enumerate() {
            let name = tensor(short);
            match schemes[i] {
                Some(scheme) if Some(short) == deferred => {
                    let m = layer.matrix_mut(short).expect("found above");
                    *m = Matrix::from_f32(w.clone(), shapes[i]).map_err(|e| fail(&name, &e))?;
                    self.pending = Some(Pending { short, scheme, weights: w, shape: shapes[i], x: x.clone() });
                }
                Some(scheme) => {
                    let clip = if matches!(short, "attn_q" | "attn_k") { Clip::Off } else { Clip::Search };
                    let lin = Linear { scheme: &scheme, weights: &w, shape: shapes[i] };
                    let (t, _) = awq::clip_and_quantize(lin, &x, clip).map_err(|e| fail(&name, &e))?;
                    self.awq_tensors += 1;
                    self.store(layer, name, short, t)?;
                }
                None => {
                    let Some(scheme) = self.schemes.get(&name).copied() else { continue };
                    let t = formats::quantize(&scheme, &w, shapes[i]).map_err(|e| fail(&name, &e))?;
                    self.rtn_tensors += 1;
                    self.store(layer, name, short, t)?;
                }
            }
        }
        Ok(())
    }
}
