//! Evaluation and export for the web lab: `LabEval` (a base and other models run in lockstep by
//! [`crate::model::eval::evaluate`], exactly the numbers of `quantlab eval`), `evalText` and
//! `exportQuantized` (the code path of `quantlab quantize`, [`crate::io::export`]).
//!
//! ```text
//! const ev = new LabEval(base); ev.add(q8); ev.add(q4k);   // models stay usable in JS
//! ev.run(text, {ctx?: 512, maxWindows?, protocol?: "default"|"llama.cpp",
//!               kvCache?: "f32"|"f16"|"int8"|"int4"|"fp8", activations?: {quant, …}},
//!        onProgress?(positionsDone, positionsTotal) -> bool|void)
//!   -> {protocol, ctx, windows, windowsAvailable, tokensScored, textTokens, kvCache, device: "cpu",
//!       results: [{ppl, pplStderr, meanNll, klMean?, klMax?, top1Agreement?, tokensPerSec?,
//!                  tokensScored, paired?: {lnPplRatio, lnPplRatioStderr, pplRatio,
//!                  pplRatioStderr, deltaPpl, deltaPplStderr, nllCorrelation, klMean, klStderr,
//!                  top1, top1Stderr}, activations?}], actLabel?}
//!   // results[0] is the base (no KL / top-1 / paired)
//! model.kvCacheBytes(kvCache, positions) -> number   // the cache's bytes at that context
//! evalText(chapters: string[]) -> string      // chapters 1..=3 joined as the CLI does
//! exportQuantized(sourceGguf, format, onProgress?(done, total, tensor) -> bool|void)
//!   -> {bytes: Uint8Array, extension: "gguf"|"safetensors", summary: string}
//! (`LabModel.exportHfLayout`, the Hugging Face layouts with a method's codes: `awq_hqq.rs`;
//!  `GpuLabEval`, the same evaluation on WebGPU with `device: "webgpu"`: `gpu_eval.rs`)
//! ```
//! With a `kvCache` other than "f32" (rules in [`crate::model::kv_cache`]) every model runs with
//! that cache and `results` gains a first entry, the base with an f32 cache, the reference of
//! every KL / top-1 / paired statistic (as `quantlab eval --kv-cache`): `results[1]` is then the
//! base with the quantized cache.
//! With `activations` (rules in [`super::act_eval`]) the results end with one row per added
//! model (or the base) with its activations quantized, as `quantlab eval --activations`.
//! `onProgress` of `run` is called after every window position (all models run on it);
//! returning `false` throws an Error of kind `cancelled`.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use super::act_eval::{act_rows, check_keys, EvalActivations};
use super::model::{js_count, now_secs, options, JsCallback, LabModel, Loaded};
use super::{js_err, to_js, Bytes, Js, LabJsError};
use crate::error::Input;
use crate::formats::{QuantScheme, Saturation};
use crate::io::export::{quantize_gguf, ExportError, ExportKind};
use crate::model::eval::{
    evaluate, join_chapters, plan, EvalError, EvalHooks, EvalPlan, LogitSource, Metrics, ModelSource, Paired, Protocol,
    DEFAULT_CTX,
};
use crate::model::hf_layout::HfLayoutCheckpoint;
use crate::model::weights::default_threads;
use crate::model::{KvType, TensorPolicy};
use crate::tokenizer::Tokenizer;

/// Models to evaluate together; the first is the base.
#[wasm_bindgen]
pub struct LabEval {
    models: Vec<Rc<Loaded>>,
}

/// Options of `LabEval.run` (every field optional; an unknown key is an error).
#[derive(Deserialize, Default, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct EvalOpts {
    #[tsify(optional)]
    ctx: Option<f64>,
    #[tsify(optional)]
    max_windows: Option<f64>,
    #[tsify(optional)]
    protocol: Option<String>,
    #[tsify(optional, type = "\"f32\" | \"f16\" | \"int8\" | \"int4\" | \"fp8\"")]
    kv_cache: Option<String>,
    /// Rows with quantized activations ([`super::act_eval`]).
    #[tsify(optional)]
    activations: Option<EvalActivations>,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct SourceResult {
    ppl: f64,
    ppl_stderr: f64,
    mean_nll: f64,
    tokens_scored: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    kl_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kl_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top1_agreement: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_per_sec: Option<f64>,
    /// Paired statistics against the base (absent for the base itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    paired: Option<Paired>,
    /// The activation format of a row with quantized activations (`activations` option).
    #[serde(skip_serializing_if = "Option::is_none")]
    activations: Option<&'static str>,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct EvalResult {
    #[tsify(type = "\"default\" | \"llama.cpp\"")]
    protocol: &'static str,
    ctx: usize,
    windows: usize,
    windows_available: usize,
    tokens_scored: usize,
    text_tokens: usize,
    #[tsify(type = "\"f32\" | \"f16\" | \"int8\" | \"int4\" | \"fp8\"")]
    kv_cache: &'static str,
    /// Where the models ran: the CPU (`LabEval.run`) or WebGPU (`GpuLabEval.run`).
    #[tsify(type = "\"cpu\" | \"webgpu\"")]
    device: &'static str,
    results: Vec<SourceResult>,
    /// What the rows with quantized activations are, as the CLI's row names end
    /// (`act int8-token, SmoothQuant α=0.5`); absent without the `activations` option.
    #[serde(skip_serializing_if = "Option::is_none")]
    act_label: Option<String>,
}

#[wasm_bindgen]
impl LabEval {
    /// An evaluation whose base is `base` (the model stays usable in JS).
    #[wasm_bindgen(constructor)]
    pub fn new(base: &LabModel) -> LabEval {
        LabEval { models: vec![Rc::clone(&base.inner)] }
    }

    /// Adds a model compared with the base (KL, top-1, Δppl); the model stays usable in JS.
    pub fn add(&mut self, model: &LabModel) {
        self.models.push(Rc::clone(&model.inner));
    }

    /// Runs every model over `text` (see the module docs).
    pub fn run(
        &self,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "EvalOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Js<EvalResult>, JsValue> {
        let (plan, kv, activations) = run_plan(&self.models[0].tokenizer, text, opts)?;
        let ctx = plan.ctx;
        // A quantized cache gets the f32-cache base as the reference, as `quantlab eval`.
        let reference = (kv != KvType::F32).then(|| (&self.models[0], KvType::F32));
        let act = activations.as_ref().map(|a| act_rows(&self.models[0], &self.models[1..], a)).transpose()?;
        let mut sources: Vec<ModelSource> = reference
            .into_iter()
            .chain(self.models.iter().map(|m| (m, kv)))
            .map(|(m, kv)| ModelSource::with_kv(&m.model, ctx, default_threads(), kv))
            .collect();
        let float_rows = sources.len();
        if let Some(a) = &act {
            sources.extend(
                a.models
                    .iter()
                    .zip(&a.quantizers)
                    .map(|(m, q)| ModelSource::with_kv(m, ctx, default_threads(), kv).with_act(Some(q.clone()))),
            );
        }
        let mut dyn_sources: Vec<&mut dyn LogitSource> =
            sources.iter_mut().map(|s| s as &mut dyn LogitSource).collect();
        let mut callback = JsCallback::new(on_progress);
        let mut positions = |done: usize, total: usize| callback.call(&[done.into(), total.into()]);
        let clock = now_secs;
        let hooks = EvalHooks { clock: Some(&clock), progress: None, positions: Some(&mut positions) };
        let result = evaluate(&plan, &mut dyn_sources, hooks);
        callback.finish()?;
        let act = act.as_ref().map(|a| ActColumns { label: &a.label, quant: a.quant, from_row: float_rows });
        Ok(eval_result(&plan, kv, result, Device::Cpu, act)?)
    }
}

/// Where an evaluation ran (`EvalResult.device`).
#[derive(Clone, Copy)]
pub(super) enum Device {
    Cpu,
    WebGpu,
}

/// The rows of a result with quantized activations: their label and format, from row `from_row` on.
pub(super) struct ActColumns<'a> {
    pub label: &'a str,
    pub quant: &'static str,
    pub from_row: usize,
}

/// The plan, KV cache and activation rows of a `run` call: its options parsed (an unknown key,
/// protocol or cache is an `options` error) and `text` tokenized per the protocol.
pub(super) fn run_plan(
    tok: &Tokenizer,
    text: &str,
    opts: JsValue,
) -> Result<(EvalPlan, KvType, Option<EvalActivations>), JsValue> {
    check_keys(&opts)?;
    let o: EvalOpts = options(opts, "evaluation", &["ctx", "maxWindows", "protocol", "kvCache", "activations"])?;
    let kv = o.kv_cache.as_deref().map_or(Ok(KvType::F32), KvType::parse);
    let kv = kv.map_err(|e| LabJsError::bad(Input::Options, format!("kvCache: {e}")))?;
    let ctx = js_count(o.ctx.unwrap_or(DEFAULT_CTX as f64), "ctx")? as usize;
    let max_windows = o.max_windows.map(|k| js_count(k, "maxWindows")).transpose()?.map(|k| k as usize);
    let protocol = match o.protocol.as_deref().unwrap_or("default") {
        "default" => Protocol::Default,
        "llama.cpp" => Protocol::LlamaCpp,
        other => {
            let message = format!("unknown protocol '{other}': use \"default\" or \"llama.cpp\"");
            return Err(LabJsError::bad(Input::Options, message).into());
        }
    };
    let add_bos = protocol.tokenize_with_bos(tok.add_bos_default());
    let tokens = tok.encode(text, add_bos, false);
    let plan = plan(&tokens, ctx, protocol, add_bos, tok.bos_id(), max_windows).map_err(js_err)?;
    Ok((plan, kv, o.activations))
}

/// `run`'s result from the evaluation's metrics (a cancelled one is an error of kind `cancelled`).
pub(super) fn eval_result(
    plan: &EvalPlan,
    kv: KvType,
    metrics: Result<Vec<Metrics>, EvalError>,
    device: Device,
    act: Option<ActColumns>,
) -> Result<Js<EvalResult>, LabJsError> {
    let metrics = metrics.map_err(|e| match e {
        EvalError::Cancelled { .. } => js_err(e).context("cancelled evaluation"),
        e => js_err(e),
    })?;
    to_js(&EvalResult {
        protocol: plan.protocol.name(),
        ctx: plan.ctx,
        windows: plan.windows.len(),
        windows_available: plan.windows_available,
        tokens_scored: plan.tokens_scored(),
        text_tokens: plan.text_tokens,
        kv_cache: kv.name(),
        device: match device {
            Device::Cpu => "cpu",
            Device::WebGpu => "webgpu",
        },
        act_label: act.as_ref().map(|a| a.label.to_string()),
        results: metrics
            .iter()
            .enumerate()
            .map(|(i, m)| SourceResult {
                ppl: m.ppl,
                ppl_stderr: m.ppl_stderr,
                mean_nll: m.mean_nll,
                tokens_scored: m.tokens_scored,
                kl_mean: m.kl_mean,
                kl_max: m.kl_max,
                top1_agreement: m.top1_agreement,
                tokens_per_sec: m.tokens_per_sec(),
                paired: m.paired.clone(),
                activations: act.as_ref().filter(|a| i >= a.from_row).map(|a| a.quant),
            })
            .collect(),
    })
}

#[wasm_bindgen]
impl LabModel {
    /// Bytes a KV cache of type `kvCache` takes for `positions` positions of this model (keys
    /// and values of every layer, scales included; `KvType::cache_bytes`).
    #[wasm_bindgen(js_name = kvCacheBytes)]
    pub fn kv_cache_bytes(
        &self,
        #[wasm_bindgen(unchecked_param_type = "\"f32\" | \"f16\" | \"int8\" | \"int4\" | \"fp8\"")] kv_cache: &str,
        positions: f64,
    ) -> Result<f64, LabJsError> {
        let kv = KvType::parse(kv_cache).map_err(js_err)?;
        let positions = js_count(positions, "positions")? as usize;
        Ok(kv.cache_bytes(&self.inner.model.config, positions) as f64)
    }
}

/// `exportQuantized`'s result: the file's bytes, its extension and a one-line summary.
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ExportResult {
    #[tsify(type = "Uint8Array")]
    bytes: Bytes,
    #[tsify(type = "\"gguf\" | \"safetensors\"")]
    extension: &'static str,
    summary: String,
}

impl ExportResult {
    pub(super) fn new(bytes: Vec<u8>, extension: &'static str, summary: String) -> Self {
        Self { bytes: Bytes(bytes), extension, summary }
    }
}

/// Joins the eval chapters' texts (in chapter order) exactly as `quantlab eval` does.
#[wasm_bindgen(js_name = evalText)]
pub fn eval_text(chapters: Vec<String>) -> String {
    join_chapters(&chapters)
}

/// Re-quantizes a whole GGUF file to `format`, as `quantlab quantize` does: GGUF for the ggml
/// types, safetensors for the others. `onProgress(done, total, tensor)`; `false` cancels.
#[wasm_bindgen(js_name = exportQuantized)]
pub fn export_quantized(
    source_gguf: &[u8],
    format: &str,
    on_progress: Option<js_sys::Function>,
) -> Result<Js<ExportResult>, JsValue> {
    let scheme = QuantScheme::parse(format).map_err(js_err)?;
    let kind = ExportKind::for_scheme(&scheme);
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut callback = JsCallback::new(on_progress);
    let mut progress = |done: usize, total: usize, name: &str| callback.call(&[done.into(), total.into(), name.into()]);
    let result = quantize_gguf(
        source_gguf,
        &scheme,
        kind,
        &TensorPolicy::default(),
        Saturation::Refuse,
        &mut bytes,
        &mut progress,
    );
    callback.finish()?;
    let summary = result.map_err(|e| match e {
        ExportError::Cancelled { .. } => js_err(e).context(format!("cancelled export to {}", scheme.name())),
        e => js_err(e),
    })?;
    let out = ExportResult {
        bytes: Bytes(bytes.into_inner()),
        extension: kind.extension(),
        summary: summary.describe(&scheme.name()),
    };
    Ok(to_js(&out)?)
}

/// `exportHfLayout`'s result: the two files of a Hugging Face checkpoint directory.
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct HfLayoutResult {
    /// `model.safetensors`.
    #[tsify(type = "Uint8Array")]
    safetensors: Bytes,
    /// `config.json`.
    config: String,
    quantized: usize,
    kept: usize,
}

impl HfLayoutResult {
    pub(super) fn from_checkpoint(c: HfLayoutCheckpoint) -> Result<Js<HfLayoutResult>, LabJsError> {
        to_js(&HfLayoutResult {
            safetensors: Bytes(c.safetensors),
            config: c.config,
            quantized: c.quantized,
            kept: c.kept,
        })
    }
}
