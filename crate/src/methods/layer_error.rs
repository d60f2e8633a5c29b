//! Per-layer output error of round to nearest, GPTQ and AWQ: for each weight matrix `W` of the
//! model's blocks and the quantized `Ŵ` each method produces for one target format, the relative
//! output error on calibration inputs `X` (rows = positions),
//!
//! ```text
//! e = ‖X·Wᵀ − X·Ŵᵀ‖²_F / ‖X·Wᵀ‖²_F = Σ_r d_r·G·d_rᵀ / Σ_r w_r·G·w_rᵀ,   d = W − Ŵ, G = XᵀX,
//! ```
//!
//! computed from the second moment `G` ([`SecondMoment`], the collector GPTQ's float-input path
//! uses), in f64, without keeping `X`.
//!
//! **Which `X`**: the FLOAT model's inputs to that matrix (one [`collect`] run), the same rows
//! for all three methods, so the comparison is fair: every `Ŵ` is judged on what the layer sees
//! in the unquantized model. (GPTQ and AWQ each calibrate on their own layer-sequential inputs,
//! which differ between the methods; judging each on its own would compare different data.)
//!
//! **Which `Ŵ`**: the very tensors `quantlab eval --method gptq|awq` computes — the tensor policy's
//! scheme for each matrix ([`planned_schemes`]), [`gptq_sequential`] and [`AwqLayers`] over the
//! same calibration tokens and chunk plan, layer by layer. RTN is the format's own quantizer.
//! AWQ stores `Q(W·diag(s))` and folds `1/s` into the norm or the previous linear, so its `Ŵ` here
//! is the matrix the layer computes with: `diag(s_next)·deq·diag(1/s)` (the columns' own scales
//! `s`; `s_next` for attn_v and ffn_up when the next group's scales were folded into their rows).
//! GPTQ's error is reported where GPTQ rounds onto the matrix's scheme ([`gptq::supports`]), AWQ's
//! where AWQ does ([`awq::supports`]); otherwise `None`.
//!
//! A selection of tensors runs the model only up to the last selected layer (`blk.0.*` needs the
//! embeddings and layer 0): GPTQ and AWQ still quantize every matrix of those layers, as the
//! later layers' inputs depend on the earlier ones. Only the matrices of the blocks are covered
//! (the token embedding and the classifier read no block input).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::awq;
use super::awq_model::AwqLayers;
use super::gptq::{self, GptqOptions};
use super::gptq_model::gptq_sequential;
use crate::calib::sequential::run_sequential_with;
use crate::calib::{collect, CalibError, CalibHooks, CalibRun, ChunkPlan, Gram, InputSelection, SecondMoment};
use crate::formats::{self, QuantScheme, TensorShape};
use crate::io::export::TensorMethod;
use crate::model::{planned_schemes, LinearInput, Model, TensorPolicy};

/// A method whose error is measured besides round to nearest (always measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Compared {
    Gptq,
    Awq,
}

impl Compared {
    pub const ALL: [Compared; 2] = [Compared::Gptq, Compared::Awq];

    pub fn name(self) -> &'static str {
        match self {
            Compared::Gptq => "GPTQ",
            Compared::Awq => "AWQ",
        }
    }

    fn supports(self, scheme: &QuantScheme) -> bool {
        match self {
            Compared::Gptq => gptq::supports(scheme),
            Compared::Awq => awq::supports(scheme),
        }
    }
}

/// Which block matrices to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorSelection {
    All,
    /// By llama.cpp name (`blk.0.attn_q.weight`).
    Only(Vec<String>),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LayerErrorOptions {
    pub tensors: TensorSelection,
    /// Besides round to nearest.
    pub methods: Vec<Compared>,
    pub gptq: GptqOptions,
}

/// One matrix's relative output errors `‖WX − ŴX‖² / ‖WX‖²` on the float model's inputs: a row of
/// `quantlab layer-error --json` and of the wasm `layerErrors` (one type for both).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[cfg_attr(target_arch = "wasm32", tsify(missing_as_null, hashmap_as_object))]
pub struct LayerErrorRow {
    /// llama.cpp name.
    pub tensor: String,
    pub layer: usize,
    /// The matrix within its block (`attn_q`, …, `ffn_down`).
    pub kind: &'static str,
    /// The scheme the tensor policy gives it.
    pub format: String,
    pub rtn: f64,
    /// `None` (`null`) when not asked for or when the method does not round onto `format`.
    pub gptq: Option<f64>,
    pub awq: Option<f64>,
}

/// The calibration run and one row per selected matrix, in the model's order.
#[derive(Debug, Clone)]
pub struct LayerErrors {
    pub run: CalibRun,
    pub rows: Vec<LayerErrorRow>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayerErrorError {
    #[error("no block matrix '{name}' in the model (names like blk.0.attn_q.weight, layers 0..{layers})")]
    UnknownTensor { name: String, layers: usize },
    #[error("no tensors selected")]
    NoTensors,
    #[error("tensor '{name}' is not quantized to {format} (the tensor policy keeps it as it is)")]
    NotQuantized { name: String, format: String },
    #[error("{method} does not round onto {format}")]
    Unsupported { method: &'static str, format: String },
    #[error("tensor '{name}': {reason}")]
    Quantize { name: String, reason: String },
    #[error(transparent)]
    Calib(#[from] CalibError),
}

/// One selected matrix.
struct Selected {
    name: String,
    layer: usize,
    kind: &'static str,
    input: LinearInput,
    scheme: QuantScheme,
    weights: Vec<f32>,
    shape: TensorShape,
}

/// The relative output errors of the module docs for `model` quantized to `scheme` under
/// `policy`, calibrated on the chunks of `tokens` that `plan` selects. `hooks` see one progress
/// over the float run and each method's layer-sequential run; cancelling stops with
/// [`CalibError::Cancelled`] counted over the whole.
pub fn layer_errors(
    model: &Model,
    tokens: &[u32],
    plan: &ChunkPlan,
    scheme: &QuantScheme,
    policy: &TensorPolicy,
    options: &LayerErrorOptions,
    mut hooks: CalibHooks<'_>,
) -> Result<LayerErrors, LayerErrorError> {
    for &m in &options.methods {
        if !m.supports(scheme) {
            return Err(LayerErrorError::Unsupported { method: m.name(), format: scheme.name() });
        }
    }
    let schemes = planned_schemes(model, scheme, policy);
    let selected = select(model, &schemes, &options.tensors, scheme)?;
    let last = selected.iter().map(|s| s.layer).max().ok_or(LayerErrorError::NoTensors)?;

    // The model up to the last selected layer, and the schemes of its matrices.
    let w = &model.weights;
    let cut = Model {
        config: crate::model::Config { n_layers: last + 1, ..model.config.clone() },
        weights: crate::model::weights::Weights {
            token_embd: w.token_embd.clone(),
            layers: w.layers[..=last].to_vec(),
            output_norm: w.output_norm.clone(),
            output: w.output.clone(),
        },
    };
    let cut_schemes: BTreeMap<String, QuantScheme> =
        schemes.into_iter().filter(|(n, _)| block_layer(n).is_none_or(|l| l <= last)).collect();

    // One progress over the phases: the float run, then one layer-sequential run per method
    // (six passes per layer, see calib::sequential).
    let run_tokens = plan.chunks(tokens.len()) * plan.chunk;
    let sequential = run_tokens * 6 * (last + 1);
    let total = run_tokens + sequential * options.methods.len();

    // The float model's inputs.
    let mut inputs: Vec<LinearInput> = selected.iter().map(|s| s.input).collect();
    inputs.dedup();
    let mut grams = SecondMoment::new(InputSelection::Only(inputs));
    let run = phase(&mut hooks, (0, total), |h| collect(&cut, tokens, plan, &mut grams, h))?;
    let mut offset = run_tokens;

    let mut quantized: BTreeMap<Compared, BTreeMap<String, Vec<f32>>> = BTreeMap::new();
    for &m in &options.methods {
        let mut found = BTreeMap::new();
        let quantize_failed = |name: &str, reason: String| LayerErrorError::Quantize { name: name.to_string(), reason };
        match m {
            Compared::Gptq => {
                let (_, mut method) = phase(&mut hooks, (offset, total), |h| {
                    gptq_sequential(&cut, tokens, plan, &cut_schemes, options.gptq, h)
                })?;
                for s in selected.iter().filter(|s| m.supports(&s.scheme)) {
                    let t = method
                        .quantize(&s.name, &s.scheme, &s.weights, s.shape)
                        .map_err(|e| quantize_failed(&s.name, e.to_string()))?;
                    found.insert(s.name.clone(), dequantize(&s.name, &t)?);
                }
            }
            Compared::Awq => {
                let mut awq = AwqLayers::new(&cut_schemes, run_tokens);
                phase(&mut hooks, (offset, total), |h| run_sequential_with(&cut, tokens, plan, &mut awq, h))?;
                for s in selected.iter().filter(|s| m.supports(&s.scheme)) {
                    let t =
                        awq.tensors.get(&s.name).ok_or_else(|| quantize_failed(&s.name, "AWQ left it out".into()))?;
                    found.insert(s.name.clone(), awq_effective(s, dequantize(&s.name, t)?, &awq.scales));
                }
            }
        }
        quantized.insert(m, found);
        offset += sequential;
    }

    let mut rows = Vec::with_capacity(selected.len());
    for s in &selected {
        let gram = grams.inputs.get(&s.input).expect("collect observes every block input");
        let rtn = formats::quantize(&s.scheme, &s.weights, s.shape)
            .map_err(|e| LayerErrorError::Quantize { name: s.name.clone(), reason: e.to_string() })?;
        let rtn = dequantize(&s.name, &rtn)?;
        let of = |m: Compared| {
            quantized.get(&m).and_then(|q| q.get(&s.name)).map(|w| relative_output_error(gram, &s.weights, w))
        };
        rows.push(LayerErrorRow {
            tensor: s.name.clone(),
            layer: s.layer,
            kind: s.kind,
            format: s.scheme.name(),
            rtn: relative_output_error(gram, &s.weights, &rtn),
            gptq: of(Compared::Gptq),
            awq: of(Compared::Awq),
        });
    }
    Ok(LayerErrors { run, rows })
}

/// Runs `f` as one phase of a run of `total` steps starting at `offset`: its progress and its
/// cancellation are counted over the whole run.
fn phase<T>(
    hooks: &mut CalibHooks<'_>,
    (offset, total): (usize, usize),
    f: impl FnOnce(CalibHooks<'_>) -> Result<T, CalibError>,
) -> Result<T, CalibError> {
    let mut outer = hooks.progress.as_mut();
    let mut inner = |done: usize, _: usize| outer.as_mut().is_none_or(|p| p(offset + done, total));
    f(CalibHooks { progress: Some(&mut inner) }).map_err(|e| match e {
        CalibError::Cancelled { done, .. } => CalibError::Cancelled { done: offset + done, total },
        e => e,
    })
}

/// `blk.N.…` → N.
fn block_layer(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// The block matrices `selection` names, in the model's order, each with the scheme the policy
/// gives it and its float weights.
fn select(
    model: &Model,
    schemes: &BTreeMap<String, QuantScheme>,
    selection: &TensorSelection,
    target: &QuantScheme,
) -> Result<Vec<Selected>, LayerErrorError> {
    let layers = model.weights.layers.len();
    let known = |name: &str| {
        let l = block_layer(name).filter(|&l| l < layers)?;
        let kind =
            model.weights.layers[l].matrices().into_iter().find(|(k, _)| name == format!("blk.{l}.{k}.weight"))?.0;
        Some((l, kind))
    };
    let names: Vec<String> = match selection {
        TensorSelection::All => (0..layers)
            .flat_map(|l| model.weights.layers[l].matrices().map(|(k, _)| format!("blk.{l}.{k}.weight")))
            .collect(),
        TensorSelection::Only(list) if list.is_empty() => return Err(LayerErrorError::NoTensors),
        TensorSelection::Only(list) => {
            // The model's order, each once.
            let mut v: Vec<(usize, usize, String)> = Vec::new();
            for name in list {
                let (l, kind) =
                    known(name).ok_or_else(|| LayerErrorError::UnknownTensor { name: name.clone(), layers })?;
                let k = model.weights.layers[l].matrices().iter().position(|(n, _)| *n == kind).expect("found above");
                v.push((l, k, name.clone()));
            }
            v.sort();
            v.dedup();
            v.into_iter().map(|(_, _, n)| n).collect()
        }
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let (layer, kind) = known(&name).expect("a block matrix name");
        let Some(&scheme) = schemes.get(&name) else {
            if matches!(selection, TensorSelection::All) {
                continue;
            }
            return Err(LayerErrorError::NotQuantized { name, format: target.name() });
        };
        let m = model.weights.layers[layer].matrices().into_iter().find(|(k, _)| *k == kind).expect("found above").1;
        let input = [
            LinearInput::Attention { layer },
            LinearInput::AttentionOutput { layer },
            LinearInput::Ffn { layer },
            LinearInput::FfnDown { layer },
        ]
        .into_iter()
        .find(|i| i.matrix_names().contains(&kind))
        .expect("every block matrix reads one of its block's inputs");
        out.push(Selected { name, layer, kind, input, scheme, weights: m.to_f32(), shape: m.shape() });
    }
    if out.is_empty() {
        return Err(LayerErrorError::NoTensors);
    }
    Ok(out)
}

fn dequantize(name: &str, t: &formats::QuantizedTensor) -> Result<Vec<f32>, LayerErrorError> {
    t.dequantize().map_err(|e| LayerErrorError::Quantize { name: name.to_string(), reason: e.to_string() })
}

/// The weights a layer computes with after AWQ (module docs): the stored `deq` with its columns
/// divided by its input's scales, and its rows times the next group's scales where those were
/// folded into them.
fn awq_effective(s: &Selected, mut deq: Vec<f32>, scales: &BTreeMap<LinearInput, Vec<f32>>) -> Vec<f32> {
    let cols = s.shape.cols;
    if let Some(k) = scales.get(&s.input) {
        deq = awq::scale_inputs(&deq, k);
    }
    let next = match s.kind {
        "attn_v" => Some(LinearInput::AttentionOutput { layer: s.layer }),
        "ffn_up" => Some(LinearInput::FfnDown { layer: s.layer }),
        _ => None,
    };
    if let Some(k) = next.and_then(|n| scales.get(&n)) {
        for (row, &f) in deq.chunks_exact_mut(cols).zip(k) {
            row.iter_mut().for_each(|w| *w *= f);
        }
    }
    deq
}

/// `‖X·Wᵀ − X·Ŵᵀ‖²_F / ‖X·Wᵀ‖²_F` from `gram` = XᵀX (see the module docs); `w` and `w_hat` are
/// row-major with `gram.dim` columns. 0 when the outputs are all zero and so are the errors.
pub fn relative_output_error(gram: &Gram, w: &[f32], w_hat: &[f32]) -> f64 {
    let diff: Vec<f64> = w.iter().zip(w_hat).map(|(&a, &b)| f64::from(a) - f64::from(b)).collect();
    let plain: Vec<f64> = w.iter().map(|&a| f64::from(a)).collect();
    let (num, den) = (quadratic_sum(gram, &diff), quadratic_sum(gram, &plain));
    if num == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Rows of `v` that share one pass over `G` in [`quadratic_sum`].
const ROW_BLOCK: usize = 16;

/// `Σ_r v_r·G·v_rᵀ` over the rows `v_r` of `v`, from the upper triangle of the symmetric `G`
/// (`Σ_i v_i·(G_ii·v_i + 2·Σ_{j>i} G_ij·v_j)`). Each pass over `G`'s rows serves [`ROW_BLOCK`]
/// rows of `v` (one pass per row would make the sum a memory-bound re-read of `G`). Rows are
/// dealt to the pool in bands; each row's value is summed in the same order on any thread and the
/// rows are added in order, so the result does not depend on the number of threads (the wasm
/// build and the CLI agree).
fn quadratic_sum(gram: &Gram, v: &[f64]) -> f64 {
    let n = gram.dim;
    let rows = v.len() / n.max(1);
    let tasks = crate::model::weights::default_threads().clamp(1, rows.max(1));
    let band = rows.div_ceil(tasks).max(1);
    let parts: Vec<Mutex<Vec<f64>>> = (0..tasks).map(|_| Mutex::new(Vec::new())).collect();
    crate::model::pool::run(tasks, &|t| {
        let (lo, hi) = ((t * band).min(rows), ((t + 1) * band).min(rows));
        let mut values = vec![0f64; hi - lo];
        for b0 in (lo..hi).step_by(ROW_BLOCK) {
            let b1 = (b0 + ROW_BLOCK).min(hi);
            for i in 0..n {
                let g = &gram.xtx[i * n + i..(i + 1) * n];
                for r in b0..b1 {
                    let row = &v[r * n..(r + 1) * n];
                    let x = row[i];
                    if x != 0.0 {
                        let off: f64 = g[1..].iter().zip(&row[i + 1..]).map(|(&g, &y)| g * y).sum();
                        values[r - lo] += x * (g[0] * x + 2.0 * off);
                    }
                }
            }
        }
        *parts[t].lock().unwrap_or_else(|e| e.into_inner()) = values;
    });
    parts.into_iter().flat_map(|p| p.into_inner().unwrap_or_else(|e| e.into_inner())).sum()
}
