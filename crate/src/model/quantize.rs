//! In-memory model quantization: [`quantize_model`] turns a loaded [`Model`] into a copy whose
//! weight matrices are re-quantized with a [`QuantScheme`], under the same tensor policy as
//! `quantlab quantize` ([`crate::policy`]), and reports what each tensor became.
//!
//! Each matrix is decoded from its stored type (for a GGUF checkpoint, e.g. the Q4_1 blocks of
//! the default model: the "base" is then the Q4_1 checkpoint dequantized, not the original
//! bf16 weights) and quantized again; the result stays packed in memory ([`Matrix::Quantized`]),
//! decoded one row at a time by the forward. Norm vectors stay f32.
//!
//! Each report row also carries the tensor's error ([`crate::stats::metrics::error_metrics`] of
//! the decoded source against the decoded result: MSE, SQNR, ...), measured while the source is
//! decoded anyway; a copied tensor has error 0 (SQNR +∞).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::weights::{Matrix, Weights};
use super::{Model, ModelError};
use crate::formats::ggml::presets::{ModelShape, OutputMatrix};
use crate::formats::{quantize, GgmlType, QuantError, QuantScheme};
use crate::io::export::TensorMethod;
use crate::policy::{Action, Decision, TensorFacts, TensorPolicy, TypeMix};
use crate::stats::metrics::{error_metrics, ErrorMetrics};

/// What happened to one weight matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorQuantReport {
    /// llama.cpp tensor name (`blk.0.attn_q.weight`).
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    /// The stored format before (`Q4_1`, `F32`, ...).
    pub source: String,
    /// The scheme the run asked for.
    pub requested: String,
    /// What the tensor is stored as now (the requested scheme, a fallback, `F16`, or the
    /// source format when copied).
    pub actual: String,
    /// Why `actual` differs from `requested`, when it does (from the policy).
    pub reason: Option<String>,
    /// Bytes before and after.
    pub bytes_before: u64,
    pub bytes: u64,
    /// The stored tensor after quantization, decoded, against the source decoded (MSE, SQNR, ...).
    pub error: ErrorMetrics,
}

impl TensorQuantReport {
    pub fn n_elements(&self) -> u64 {
        (self.rows * self.cols) as u64
    }

    pub fn is_fallback(&self) -> bool {
        self.reason.is_some()
    }
}

/// The per-tensor report of a [`quantize_model`] run, with totals over the weight matrices
/// (norm vectors, f32 in both models, are not counted).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantReport {
    pub scheme: String,
    pub tensors: Vec<TensorQuantReport>,
}

fn bpw(bytes: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / n as f64
    }
}

impl QuantReport {
    pub fn n_elements(&self) -> u64 {
        self.tensors.iter().map(TensorQuantReport::n_elements).sum()
    }

    /// Bytes of the matrices after quantization.
    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// Bytes of the matrices before.
    pub fn total_bytes_before(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes_before).sum()
    }

    /// Bits per weight of the matrices after quantization.
    pub fn bpw(&self) -> f64 {
        bpw(self.total_bytes(), self.n_elements())
    }

    pub fn bpw_before(&self) -> f64 {
        bpw(self.total_bytes_before(), self.n_elements())
    }

    /// The tensors that did not get the requested scheme.
    pub fn fallbacks(&self) -> impl Iterator<Item = &TensorQuantReport> {
        self.tensors.iter().filter(|t| t.is_fallback())
    }

    /// `(actual format, tensors, elements, bytes)`, in order of first appearance.
    pub fn by_type(&self) -> Vec<(String, usize, u64, u64)> {
        let mut rows: Vec<(String, usize, u64, u64)> = Vec::new();
        for t in &self.tensors {
            match rows.iter_mut().find(|r| r.0 == t.actual) {
                Some(r) => {
                    r.1 += 1;
                    r.2 += t.n_elements();
                    r.3 += t.bytes;
                }
                None => rows.push((t.actual.clone(), 1, t.n_elements(), t.bytes)),
            }
        }
        rows
    }

    /// A few lines for people: totals, tensors by format, and one line per distinct fallback.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{} weight matrices: {:.1} MB -> {:.1} MB ({:.3} -> {:.3} bits per weight)",
            self.tensors.len(),
            self.total_bytes_before() as f64 / 1e6,
            self.total_bytes() as f64 / 1e6,
            self.bpw_before(),
            self.bpw()
        );
        let types: Vec<String> = self.by_type().iter().map(|r| format!("{} x {}", r.1, r.0)).collect();
        let _ = writeln!(o, "as: {}", types.join(", "));
        let mut seen: Vec<(String, String, usize)> = Vec::new();
        for t in self.fallbacks() {
            let why = t.reason.clone().unwrap_or_default();
            // Group by (actual, reason without the tensor name).
            let key = why.split_once(": ").map_or(why.clone(), |(_, r)| r.to_string());
            match seen.iter_mut().find(|s| s.0 == t.actual && s.1 == key) {
                Some(s) => s.2 += 1,
                None => seen.push((t.actual.clone(), key, 1)),
            }
        }
        for (actual, why, n) in seen {
            let _ = writeln!(o, "fallback: {n} tensor(s) -> {actual}: {why}");
        }
        o
    }
}

/// Quantizes every weight matrix of `model` with `scheme` under `policy` (see
/// [`crate::policy`]): each matrix is decoded from its stored type and quantized again; the
/// returned model keeps them packed. Tensors the policy copies (already in the target type,
/// norms) are cloned; fallbacks are listed in the report.
pub fn quantize_model(
    model: &Model,
    scheme: &QuantScheme,
    policy: &TensorPolicy,
) -> Result<(Model, QuantReport), ModelError> {
    quantize_model_with_progress(model, scheme, policy, &mut |_, _, _| true).map_err(|e| match e {
        QuantizeModelError::Model(e) => e,
        QuantizeModelError::Cancelled { .. } => unreachable!("the callback never cancels"),
    })
}

/// Why [`quantize_model_with_progress`] stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuantizeModelError {
    #[error("cancelled after {done} of {total} weight matrices")]
    Cancelled { done: usize, total: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// [`quantize_model`] reporting `(matrices done, total, name)` after each weight matrix;
/// `progress` returning `false` stops with [`QuantizeModelError::Cancelled`].
pub fn quantize_model_with_progress(
    model: &Model,
    scheme: &QuantScheme,
    policy: &TensorPolicy,
    progress: &mut dyn FnMut(usize, usize, &str) -> bool,
) -> Result<(Model, QuantReport), QuantizeModelError> {
    quantize_all(model, scheme, policy, progress, None)
}

/// [`quantize_model_with_progress`] with `method` choosing the codes of the tensors the policy
/// quantizes (tensors turned into F16 are always rounded to nearest), as `quantlab quantize`
/// does with its methods.
pub fn quantize_model_with(
    model: &Model,
    scheme: &QuantScheme,
    policy: &TensorPolicy,
    progress: &mut dyn FnMut(usize, usize, &str) -> bool,
    method: &mut dyn TensorMethod,
) -> Result<(Model, QuantReport), QuantizeModelError> {
    quantize_all(model, scheme, policy, progress, Some(method))
}

/// Every matrix through [`quantize_matrix`]; `method` `None` is the format's own rounding.
fn quantize_all(
    model: &Model,
    scheme: &QuantScheme,
    policy: &TensorPolicy,
    progress: &mut dyn FnMut(usize, usize, &str) -> bool,
    mut method: Option<&mut dyn TensorMethod>,
) -> Result<(Model, QuantReport), QuantizeModelError> {
    scheme.validate().map_err(|reason| ModelError::from(QuantError::Scheme { scheme: scheme.name(), reason }))?;
    let w = &model.weights;
    let total = w.matrices().len();
    let name = match policy.mix {
        TypeMix::LlamaCpp(ft) => ft.name().to_string(),
        TypeMix::Pure => scheme.name(),
    };
    let mut report = QuantReport { scheme: name, tensors: Vec::new() };
    let shape = model_shape(model);
    let mut one = |name: String, m: &Matrix| -> Result<Matrix, QuantizeModelError> {
        let (m2, entry) = quantize_matrix(&name, m, scheme, policy, &shape, method.as_deref_mut())?;
        report.tensors.push(entry);
        let done = report.tensors.len();
        if !progress(done, total, &name) {
            return Err(QuantizeModelError::Cancelled { done, total });
        }
        Ok(m2)
    };
    let token_embd = one("token_embd.weight".into(), &w.token_embd)?;
    let mut layers = Vec::with_capacity(w.layers.len());
    for (l, lw) in w.layers.iter().enumerate() {
        layers.push(lw.try_map_matrices(|n, m| one(format!("blk.{l}.{n}.weight"), m))?);
    }
    let output = match &w.output {
        Some(m) => Some(one("output.weight".into(), m)?),
        None => None,
    };
    let weights = Weights { token_embd, layers, output_norm: w.output_norm.clone(), output };
    Ok((Model { config: model.config.clone(), weights }, report))
}

/// What llama.cpp's per-tensor rules need to know about `model` (every layer has one attn_v;
/// the output is tied when the model has no output matrix).
fn model_shape(model: &Model) -> ModelShape {
    let c = &model.config;
    ModelShape {
        n_layer: c.n_layers as u32,
        n_attn_v: c.n_layers as u32,
        n_gqa: (c.n_heads / c.n_kv_heads.max(1)) as u32,
        output: if model.weights.output.is_some() { OutputMatrix::Separate } else { OutputMatrix::TiedToEmbedding },
    }
}

/// The policy's facts about one loaded matrix.
fn matrix_facts<'a>(name: &'a str, m: &Matrix) -> TensorFacts<'a> {
    let stored = m.ggml_type();
    TensorFacts {
        name,
        n_dims: 2,
        row_len: m.shape().cols as u64,
        decodable: true,
        plain_float: matches!(stored, Some(GgmlType::F32 | GgmlType::F16 | GgmlType::BF16)),
        stored,
    }
}

/// The scheme [`quantize_model`] gives each matrix it quantizes (by llama.cpp name): what a
/// calibration method needs to know before it runs.
pub fn planned_schemes(model: &Model, scheme: &QuantScheme, policy: &TensorPolicy) -> BTreeMap<String, QuantScheme> {
    let mut out = BTreeMap::new();
    for (name, decision) in planned_decisions(model, scheme, policy) {
        if let Action::Quantize(s) = decision.action {
            out.insert(name, s);
        }
    }
    out
}

/// The policy's decision for every weight matrix of `model` (by llama.cpp name, in the model's
/// order), as [`quantize_model`] will take it: what the lab shows of a preset before it runs.
pub fn planned_decisions(model: &Model, scheme: &QuantScheme, policy: &TensorPolicy) -> Vec<(String, Decision)> {
    let shape = model_shape(model);
    let matrices = model.weights.matrices();
    matrices
        .into_iter()
        .map(|(name, m)| {
            let d = policy.decide_in(&matrix_facts(&name, m), scheme, Some(&shape));
            (name, d)
        })
        .collect()
}

/// One matrix through the policy.
fn quantize_matrix<'m>(
    name: &str,
    m: &Matrix,
    scheme: &QuantScheme,
    policy: &TensorPolicy,
    model: &ModelShape,
    method: Option<&mut (dyn TensorMethod + 'm)>,
) -> Result<(Matrix, TensorQuantReport), ModelError> {
    let shape = m.shape();
    let stored = m.ggml_type();
    let decision = policy.decide_in(&matrix_facts(name, m), scheme, Some(model));
    let source_values = m.to_f32();
    let requant = |s: &QuantScheme| -> Result<Matrix, ModelError> {
        let q = quantize(s, &source_values, shape)
            .map_err(|source| ModelError::QuantizeTensor { name: name.to_string(), source })?;
        Matrix::from_quantized(q)
    };
    let out = match &decision.action {
        Action::Copy => m.clone(),
        Action::Quantize(s) => match method {
            Some(method) => {
                let q = method
                    .quantize(name, s, &source_values, shape)
                    .map_err(|e| ModelError::QuantizeMethod { name: name.to_string(), reason: e.to_string() })?;
                Matrix::from_quantized(q)?
            }
            None => requant(s)?,
        },
        Action::ToF16 => requant(&QuantScheme::ggml(GgmlType::F16))?,
    };
    let error = match &decision.action {
        // A copy is bit-identical to its source: no need to decode it twice.
        Action::Copy => error_metrics(&source_values, &source_values),
        _ => error_metrics(&source_values, &out.to_f32()),
    };
    let entry = TensorQuantReport {
        name: name.to_string(),
        rows: shape.rows,
        cols: shape.cols,
        source: m.type_name(),
        requested: policy.scheme_for(name, scheme).name(),
        actual: match &decision.action {
            Action::Quantize(s) => s.name(),
            Action::ToF16 => "f16".into(),
            // Copied: the stored format (the target's name when it is already the target type).
            Action::Copy => stored.map(|t| t.name().to_lowercase()).unwrap_or_else(|| m.type_name()),
        },
        reason: decision.note.clone(),
        bytes_before: m.resident_bytes() as u64,
        bytes: out.resident_bytes() as u64,
        error,
    };
    Ok((out, entry))
}
