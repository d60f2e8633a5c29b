//! Calibration-based methods for the web lab's Methods panel: llama.cpp's presets, the importance
//! matrix and GPTQ, each the very code `quantlab` runs (the tensor policy of `quantize -f`,
//! `calib::collect` of `quantlab imatrix`, `gptq_sequential` of `--method gptq`).
//!
//! ```text
//! parseTarget(name) -> {name, scheme, isFileType}
//! listMethods() -> [{name: "rtn"|"imatrix"|"gptq"|"awq"|"hqq", formats, calibration: "none"|"activations"|"layerSequential"}]
//! methodSupports(method, target) -> bool        // target: a format or a llama.cpp file type name
//! calibrationChapters(tokens) -> {first, last, charsWanted}   // Moby-Dick chapters 4+ to read
//! model.calibrate(text, {tokens?, chunk?}, onProgress?(done, total) -> bool|void) -> LabImatrix
//! imatrix.info() -> {chunks, chunk, tokens, textTokens, entries}
//! imatrix.importance(tensor) -> Float32Array | undefined   // in_sum2 / counts, as llama-quantize uses
//! imatrix.toGguf(dataset) -> Uint8Array                    // the file llama-imatrix writes
//! LabImatrix.fromGguf(bytes, textTokens, model) -> LabImatrix // a saved one, checked against model
//! model.plannedTypes(target, mix) -> [{name, type, note}]     // before quantizing
//! model.quantizeTarget(target, mix: "llama.cpp"|"pure", onProgress?(done, total, tensor)) -> LabModel
//! model.quantizeImatrix(target, mix, imatrix, onProgress?) -> LabModel
//! model.quantizeGptq(target, mix, text, {tokens?, actOrder?}, onProgress?(done, total)) -> LabModel
//! model.exportGptq(sourceGguf, target, mix, text, {tokens?, actOrder?}, onProgress?) -> {bytes, extension, summary}
//! model.exportImatrix(sourceGguf, target, mix, imatrix) -> {bytes, extension, summary}
//! ```
//! AWQ, HQQ and the Hugging Face layouts with a method's codes are in `awq_hqq.rs`.
//! `quantizeGptq`'s progress counts calibration positions over every layer (layer by layer, in
//! order: `done / total × nLayers` is the layer reached). Returning `false` from a callback
//! throws an Error of kind `cancelled`.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use super::eval::ExportResult;
use super::model::{js_count, options, JsCallback, LabModel, Loaded};
use super::{js_err, to_js, Js, LabJsError};
use crate::calib::{
    collect, gptq_tokens, imatrix_tokens, CalibError, CalibHooks, CalibRun, SumSquares, CALIBRATION_CHAPTERS,
    CHARS_PER_TOKEN, DEFAULT_CHUNK, DEFAULT_TOKENS,
};
use crate::error::Input;
use crate::formats::{GgmlType, QuantScheme, Saturation};
use crate::io::export::{quantize_gguf_with, ExportError, ExportKind, ImportanceWeighted, TensorMethod};
use crate::io::imatrix::{Imatrix, ImatrixLayout};
use crate::methods::gptq::ColumnOrder;
use crate::methods::gptq::GptqOptions;
use crate::methods::gptq_model::{gptq_sequential, GptqMethod};
use crate::model::quantize::planned_decisions;
use crate::model::quantize::{quantize_model_with, quantize_model_with_progress, QuantizeModelError};
use crate::model::{planned_schemes, Model, QuantReport, TensorPolicy};
use crate::policy::{Action, Target, TypeMix};
use crate::recipe::Method;

/// What a method needs before it can quantize.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub enum Calibration {
    /// Nothing: the format's own rounding.
    None,
    /// Activation statistics of the float model over calibration text (one run, reusable).
    Activations,
    /// A calibration run per layer, on the already-quantized earlier layers (per target).
    LayerSequential,
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct MethodInfo {
    /// The name recipe files and the CLI use.
    name: Method,
    /// The formats it quantizes to, for users.
    formats: &'static str,
    calibration: Calibration,
}

/// Every method (a newtype so the declarations name the array type).
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct MethodList(Vec<MethodInfo>);

fn calibration_of(m: Method) -> Calibration {
    match m {
        Method::Rtn => Calibration::None,
        Method::Imatrix => Calibration::Activations,
        Method::Gptq | Method::Awq => Calibration::LayerSequential,
        Method::Hqq => Calibration::None,
    }
}

/// The methods the lab offers, from `recipe::Method` (the names recipe files and the CLI use).
#[wasm_bindgen(js_name = listMethods)]
pub fn list_methods() -> Result<Js<MethodList>, LabJsError> {
    let list = Method::ALL
        .iter()
        .map(|&m| MethodInfo { name: m, formats: m.formats_supported(), calibration: calibration_of(m) })
        .collect();
    to_js(&MethodList(list))
}

pub(super) fn method(name: &str) -> Result<Method, LabJsError> {
    Method::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
        let known: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        LabJsError::bad(Input::Options, format!("unknown method '{name}' (known: {})", known.join(", ")))
    })
}

/// Whether `method` can choose the codes of `target` (a format, or a llama.cpp file type by its
/// default type).
#[wasm_bindgen(js_name = methodSupports)]
pub fn method_supports(method_name: &str, target: &str) -> Result<bool, LabJsError> {
    let m = method(method_name)?;
    let t = Target::parse(target).map_err(js_err)?;
    Ok(m.supports(&t.scheme))
}

/// A target name parsed: a format, or a llama.cpp file type with its default type's scheme.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ParsedTarget {
    /// The canonical name (`q4_k_m`, `int4-sym-g64`).
    name: String,
    /// The scheme of every tensor no per-tensor rule changes.
    scheme: QuantScheme,
    /// Whether the name is one of llama.cpp's file types (its per-tensor rules can apply).
    is_file_type: bool,
}

/// Parses `target` as `quantlab quantize -f` does: a llama.cpp file type or a format name.
#[wasm_bindgen(js_name = parseTarget)]
pub fn parse_target(target: &str) -> Result<Js<ParsedTarget>, LabJsError> {
    let t = Target::parse(target).map_err(js_err)?;
    let is_file_type = matches!(t.mix, TypeMix::LlamaCpp(_));
    to_js(&ParsedTarget { name: t.name(), scheme: t.scheme, is_file_type })
}

/// One weight matrix's type under a target, before quantizing.
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct PlannedType {
    name: String,
    /// The ggml type name (`Q6_K`), or the scheme's name for the other families.
    #[serde(rename = "type")]
    ty: String,
    /// Why it is not the target's default type, when it is not.
    note: Option<String>,
}

/// Every matrix's planned type (a newtype so the declarations name the array type).
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct PlannedTypes(Vec<PlannedType>);

/// Which default calibration chapters to read for `tokens` tokens.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct CalibrationChapters {
    /// The first chapter (never an eval chapter).
    first: u32,
    /// The last chapter there is.
    last: u32,
    /// Read chapters in order until they hold this many characters (as the CLI does).
    chars_wanted: usize,
}

#[wasm_bindgen(js_name = calibrationChapters)]
pub fn calibration_chapters(tokens: f64) -> Result<Js<CalibrationChapters>, LabJsError> {
    let tokens = js_count(tokens, "tokens")? as usize;
    to_js(&CalibrationChapters {
        first: *CALIBRATION_CHAPTERS.start(),
        last: *CALIBRATION_CHAPTERS.end(),
        chars_wanted: tokens.saturating_mul(CHARS_PER_TOKEN),
    })
}

/// Options of `calibrate` and `quantizeGptq` (every field optional; an unknown key is an error).
#[derive(Deserialize, Default, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct CalibOpts {
    /// Use at most this many tokens, whole chunks only (default 4096).
    #[tsify(optional)]
    pub(super) tokens: Option<f64>,
    /// Tokens per chunk (`calibrate` only; default 512, llama-imatrix's, or `tokens` when fewer).
    #[tsify(optional)]
    chunk: Option<f64>,
    /// GPTQ's desc_act column order with static groups (`quantizeGptq`, `exportHfLayout` only).
    #[tsify(optional)]
    pub(super) act_order: Option<bool>,
}

/// llama.cpp's importance matrix of one model over one text (see the module docs).
#[wasm_bindgen]
pub struct LabImatrix {
    imatrix: Imatrix,
    run: CalibRun,
    text_tokens: usize,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ImatrixInfo {
    chunks: usize,
    chunk: usize,
    /// Tokens run (`chunks × chunk`).
    tokens: usize,
    /// Tokens the text has.
    text_tokens: usize,
    /// Weight matrices with an entry.
    entries: usize,
}

#[wasm_bindgen]
impl LabImatrix {
    pub fn info(&self) -> Result<Js<ImatrixInfo>, LabJsError> {
        to_js(&ImatrixInfo {
            chunks: self.run.chunks,
            chunk: self.run.chunk,
            tokens: self.run.tokens,
            text_tokens: self.text_tokens,
            entries: self.imatrix.entries.len(),
        })
    }

    /// The importance of weight matrix `tensor` per input column (`in_sum2 / counts`), or
    /// `undefined` when it has no entry.
    pub fn importance(&self, tensor: &str) -> Result<Option<Vec<f32>>, LabJsError> {
        let Some(e) = self.imatrix.entry(tensor) else { return Ok(None) };
        self.imatrix.importance(tensor, e.sums.len() / e.counts.len().max(1)).map_err(js_err)
    }

    /// An importance matrix saved with [`Self::to_gguf`] (the lab keeps them across page loads),
    /// for `model`: refused unless it is a GGUF imatrix with its chunk size and every entry
    /// names a matrix of `model` with its input width (a stale or foreign file is never used).
    /// `textTokens` is what [`Self::info`] reports (the file does not record it).
    #[wasm_bindgen(js_name = fromGguf)]
    pub fn from_gguf(bytes: &[u8], text_tokens: f64, model: &LabModel) -> Result<LabImatrix, LabJsError> {
        let imatrix = Imatrix::from_bytes(bytes).map_err(js_err)?;
        let bad = |why: String| LabJsError::bad(Input::File, format!("saved importance matrix: {why}"));
        if imatrix.layout != ImatrixLayout::Gguf || imatrix.chunk_size == 0 {
            return Err(bad("not the GGUF form the lab saves (no chunk size)".into()));
        }
        let cols: BTreeMap<String, usize> =
            model.inner.model.weights.matrices().into_iter().map(|(n, m)| (n, m.shape().cols)).collect();
        for e in &imatrix.entries {
            match cols.get(&e.name) {
                Some(&c) if e.sums.len() == c * e.counts.len().max(1) => {}
                Some(&c) => {
                    return Err(bad(format!(
                        "'{}' has {} values, the model's matrix {c} columns",
                        e.name,
                        e.sums.len()
                    )))
                }
                None => return Err(bad(format!("'{}' is not a matrix of this model", e.name))),
            }
        }
        let (chunks, chunk) = (imatrix.chunk_count as usize, imatrix.chunk_size as usize);
        let run = CalibRun { chunks, chunk, tokens: chunks * chunk };
        let text_tokens = js_count(text_tokens, "textTokens")? as usize;
        Ok(LabImatrix { imatrix, run, text_tokens })
    }

    /// The imatrix GGUF file `llama-imatrix` writes (`dataset` names the text in its metadata).
    #[wasm_bindgen(js_name = toGguf)]
    pub fn to_gguf(&self, dataset: &str) -> Result<Vec<u8>, LabJsError> {
        let file = Imatrix { datasets: vec![dataset.to_string()], ..self.imatrix.clone() };
        file.to_gguf().map_err(js_err)
    }
}

/// The export stream of `quantlab quantize` (GGUF for the ggml types, safetensors for the others)
/// of `source_gguf` to `t`, each tensor from `method`; `onProgress(done, total, tensor)`.
pub(super) fn export_with(
    source_gguf: &[u8],
    t: &Target,
    policy: &TensorPolicy,
    method: &mut dyn TensorMethod,
    on_progress: Option<js_sys::Function>,
) -> Result<Js<ExportResult>, JsValue> {
    let kind = ExportKind::for_scheme(&t.scheme);
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut callback = JsCallback::new(on_progress);
    let mut progress = |done: usize, total: usize, name: &str| callback.call(&[done.into(), total.into(), name.into()]);
    let result =
        quantize_gguf_with(source_gguf, &t.scheme, kind, policy, Saturation::Refuse, &mut bytes, &mut progress, method);
    callback.finish()?;
    let summary = result.map_err(|e| match e {
        ExportError::Cancelled { .. } => js_err(e).context(format!("cancelled export to {}", t.name())),
        e => js_err(e),
    })?;
    Ok(to_js(&ExportResult::new(bytes.into_inner(), kind.extension(), summary.describe(&t.name())))?)
}

pub(super) fn calib_error(e: CalibError, what: &str) -> LabJsError {
    match e {
        CalibError::Cancelled { .. } => js_err(e).context(format!("cancelled {what}")),
        e => js_err(e).context(what),
    }
}

/// `target` with `mix` ("llama.cpp": a file type's per-tensor rules, "pure": one type) as a
/// scheme and the tensor policy that applies it.
pub(super) fn target_policy(target: &str, mix: &str) -> Result<(Target, TensorPolicy<'static>), LabJsError> {
    let t = Target::parse(target).map_err(js_err)?;
    let t = match (mix, t.mix) {
        ("pure", _) => t.pure(),
        ("llama.cpp", TypeMix::LlamaCpp(_)) => t,
        ("llama.cpp", TypeMix::Pure) => {
            return Err(LabJsError::bad(Input::Format, format!("'{target}' is not one of llama.cpp's file types")))
        }
        (other, _) => {
            let message = format!("unknown type mix '{other}': use \"llama.cpp\" or \"pure\"");
            return Err(LabJsError::bad(Input::Options, message));
        }
    };
    Ok((t, TensorPolicy { mix: t.mix, ..TensorPolicy::default() }))
}

pub(super) fn quantize_error(e: QuantizeModelError, target: &Target) -> LabJsError {
    match e {
        QuantizeModelError::Cancelled { .. } => js_err(e).context(format!("cancelled quantizing to {}", target.name())),
        QuantizeModelError::Model(e) => js_err(e).context(format!("cannot quantize to {}", target.name())),
    }
}

impl LabModel {
    pub(super) fn derived(&self, model: Model, report: QuantReport) -> LabModel {
        self.derived_rtn(model, report, None)
    }

    /// A derived model that `rtn` makes again from another base (see `Loaded::rtn`).
    fn derived_rtn(&self, model: Model, report: QuantReport, rtn: Option<Target>) -> LabModel {
        LabModel {
            inner: Rc::new(Loaded {
                model,
                tokenizer: Rc::clone(&self.inner.tokenizer),
                architecture: self.inner.architecture.clone(),
                report: Some(report),
                rtn,
            }),
        }
    }

    /// Every matrix through the tensor policy of `target`, the codes chosen by `method`.
    pub(super) fn quantize_by(
        &self,
        target: &Target,
        policy: &TensorPolicy,
        method: &mut dyn TensorMethod,
        on_progress: Option<js_sys::Function>,
    ) -> Result<LabModel, JsValue> {
        let mut callback = JsCallback::new(on_progress);
        let mut progress =
            |done: usize, total: usize, name: &str| callback.call(&[done.into(), total.into(), name.into()]);
        let result = quantize_model_with(&self.inner.model, &target.scheme, policy, &mut progress, method);
        callback.finish()?;
        let (model, report) = result.map_err(|e| quantize_error(e, target))?;
        Ok(self.derived(model, report))
    }
}

#[wasm_bindgen]
impl LabModel {
    /// A new model quantized to `target` as `quantlab quantize -f TARGET` does: `mix`
    /// "llama.cpp" gives each tensor llama-quantize's type for the file type `target`
    /// (`q4_k_m` …), "pure" one type everywhere (`--pure`). `onProgress(done, total, tensor)`.
    #[wasm_bindgen(js_name = quantizeTarget)]
    pub fn quantize_target(
        &self,
        target: &str,
        mix: &str,
        on_progress: Option<js_sys::Function>,
    ) -> Result<LabModel, JsValue> {
        let (t, policy) = target_policy(target, mix)?;
        let mut callback = JsCallback::new(on_progress);
        let mut progress =
            |done: usize, total: usize, name: &str| callback.call(&[done.into(), total.into(), name.into()]);
        let result = quantize_model_with_progress(&self.inner.model, &t.scheme, &policy, &mut progress);
        callback.finish()?;
        let (model, report) = result.map_err(|e| quantize_error(e, &t))?;
        Ok(self.derived_rtn(model, report, Some(t)))
    }

    /// The type each weight matrix will get from `quantizeTarget(target, mix)` (the same tensor
    /// policy), without quantizing: which tensors a preset keeps wider, and why.
    #[wasm_bindgen(js_name = plannedTypes)]
    pub fn planned_types(&self, target: &str, mix: &str) -> Result<Js<PlannedTypes>, LabJsError> {
        let (t, policy) = target_policy(target, mix)?;
        let model = &self.inner.model;
        let stored: BTreeMap<String, String> =
            model.weights.matrices().into_iter().map(|(n, m)| (n, m.type_name())).collect();
        let rows = planned_decisions(model, &t.scheme, &policy)
            .into_iter()
            .map(|(name, d)| {
                let ty = match d.action {
                    Action::Quantize(s) => s.ggml_type().map_or_else(|| s.name(), |ty| ty.name().to_string()),
                    Action::Copy => stored[&name].clone(),
                    Action::ToF16 => GgmlType::F16.name().to_string(),
                };
                PlannedType { name, ty, note: d.note }
            })
            .collect();
        to_js(&PlannedTypes(rows))
    }

    /// llama.cpp's importance matrix of this model over `text` (see the module docs), as
    /// `quantlab imatrix` computes it. `onProgress(tokensDone, tokensTotal)`.
    pub fn calibrate(
        &self,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "CalibOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<LabImatrix, JsValue> {
        let o: CalibOpts = options(opts, "calibration", &["tokens", "chunk"])?;
        let max_tokens = js_count(o.tokens.unwrap_or(DEFAULT_TOKENS as f64), "tokens")? as usize;
        // One shorter chunk when fewer tokens than a default chunk are asked for (as GPTQ cuts).
        let chunk = js_count(o.chunk.unwrap_or(DEFAULT_CHUNK.min(max_tokens) as f64), "chunk")? as usize;
        if chunk == 0 {
            return Err(LabJsError::bad(Input::Options, "chunk must be at least 1").into());
        }
        let model = &self.inner.model;
        let (tokens, plan) = imatrix_tokens(&self.inner.tokenizer, text, chunk, max_tokens);
        let mut sums = SumSquares::new();
        let mut callback = JsCallback::new(on_progress);
        let mut progress = |done: usize, total: usize| callback.call(&[done.into(), total.into()]);
        let result = collect(model, &tokens, &plan, &mut sums, CalibHooks { progress: Some(&mut progress) });
        callback.finish()?;
        let run = result.map_err(|e| calib_error(e, "calibration"))?;
        let tied = model.weights.output.is_none();
        let imatrix = Imatrix::from_sums(&sums, tied, Vec::new(), &run);
        Ok(LabImatrix { imatrix, run, text_tokens: tokens.len() })
    }

    /// [`Self::quantize_target`] with llama.cpp's importance-weighted search for every tensor
    /// whose type takes one (`quantlab quantize --imatrix`); others are rounded to nearest.
    #[wasm_bindgen(js_name = quantizeImatrix)]
    pub fn quantize_imatrix(
        &self,
        target: &str,
        mix: &str,
        imatrix: &LabImatrix,
        on_progress: Option<js_sys::Function>,
    ) -> Result<LabModel, JsValue> {
        let (t, policy) = target_policy(target, mix)?;
        let mut method = ImportanceWeighted { imatrix: &imatrix.imatrix, notes: Vec::new() };
        self.quantize_by(&t, &policy, &mut method, on_progress)
    }

    /// [`Self::quantize_target`] with GPTQ, calibrated layer by layer over `text` as
    /// `quantlab eval --method gptq` does; tensors in types GPTQ does not round onto (and the
    /// token embedding) are rounded to nearest. `onProgress(done, total)` over the calibration.
    #[wasm_bindgen(js_name = quantizeGptq)]
    pub fn quantize_gptq(
        &self,
        target: &str,
        mix: &str,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "CalibOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<LabModel, JsValue> {
        let (t, policy, mut method) = self.gptq_calibrated(target, mix, text, opts, on_progress)?;
        self.quantize_by(&t, &policy, &mut method, None)
    }

    /// `sourceGguf` (this model's own file) quantized to `target` with GPTQ and written as
    /// `quantlab quantize IN -f TARGET --method gptq --calib TEXT [--pure]` writes it: the same
    /// calibration as [`Self::quantize_gptq`], then the export's tensor stream with GPTQ's
    /// tensors (GGUF for the ggml types, safetensors for the others). `onProgress(done, total)`
    /// over the calibration.
    #[wasm_bindgen(js_name = exportGptq)]
    pub fn export_gptq(
        &self,
        source_gguf: &[u8],
        target: &str,
        mix: &str,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "CalibOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Js<ExportResult>, JsValue> {
        let (t, policy, mut method) = self.gptq_calibrated(target, mix, text, opts, on_progress)?;
        export_with(source_gguf, &t, &policy, &mut method, None)
    }

    /// `sourceGguf` (this model's own file) quantized to `target` with llama.cpp's
    /// importance-weighted search, as `quantlab quantize IN -f TARGET --imatrix FILE [--pure]`
    /// writes it (the same tensors as [`Self::quantize_imatrix`]).
    #[wasm_bindgen(js_name = exportImatrix)]
    pub fn export_imatrix(
        &self,
        source_gguf: &[u8],
        target: &str,
        mix: &str,
        imatrix: &LabImatrix,
    ) -> Result<Js<ExportResult>, JsValue> {
        let (t, policy) = target_policy(target, mix)?;
        let mut method = ImportanceWeighted { imatrix: &imatrix.imatrix, notes: Vec::new() };
        export_with(source_gguf, &t, &policy, &mut method, None)
    }

    /// GPTQ calibrated over `text` for `target` (see [`Self::quantize_gptq`]): the target, its
    /// tensor policy and the method holding every calibrated tensor.
    fn gptq_calibrated(
        &self,
        target: &str,
        mix: &str,
        text: &str,
        opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<(Target, TensorPolicy<'static>, GptqMethod), JsValue> {
        let o: CalibOpts = options(opts, "GPTQ", &["tokens", "actOrder"])?;
        let (t, policy) = target_policy(target, mix)?;
        let max_tokens = js_count(o.tokens.unwrap_or(DEFAULT_TOKENS as f64), "tokens")? as usize;
        let order = if o.act_order.unwrap_or(false) { ColumnOrder::ActOrder } else { ColumnOrder::Natural };
        let options = GptqOptions { order, ..Default::default() };
        let model = &self.inner.model;
        let (tokens, plan) = gptq_tokens(&self.inner.tokenizer, text, max_tokens, model.config.seq_len);
        let schemes = planned_schemes(model, &t.scheme, &policy);
        let mut callback = JsCallback::new(on_progress);
        let mut progress = |done: usize, total: usize| callback.call(&[done.into(), total.into()]);
        let hooks = CalibHooks { progress: Some(&mut progress) };
        let result = gptq_sequential(model, &tokens, &plan, &schemes, options, hooks);
        callback.finish()?;
        let (_, method) = result.map_err(|e| calib_error(e, "GPTQ calibration"))?;
        Ok((t, policy, method))
    }
}
