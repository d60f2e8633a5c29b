//! AWQ and HQQ for the web lab's Methods panel, and the Hugging Face layouts with any method's
//! codes: the very code `quantlab quantize --method awq|hqq [--layout gptq|awq]` runs
//! ([`crate::methods::awq_model::awq_sequential`], [`crate::methods::hqq::HqqMethod`],
//! [`crate::model::hf_layout`]).
//!
//! ```text
//! model.quantizeAwq(target, mix, text, {tokens?}, onProgress?(done, total)) -> LabModel
//! model.quantizeHqq(target, mix, onProgress?(done, total, tensor)) -> LabModel
//! model.exportAwq(sourceGguf, target, mix, text, {tokens?}, onProgress?(done, total)) -> {bytes, extension, summary}
//! model.exportHqq(sourceGguf, target, mix, onProgress?(done, total, tensor)) -> {bytes, extension, summary}
//! model.exportHfLayout(sourceGguf, format, layout: "gptq"|"awq", method: "rtn"|"gptq"|"awq"|"hqq",
//!                      text, {tokens?, actOrder?}, onProgress?) -> {safetensors, config, quantized, kept}
//! ```
//! AWQ's progress counts calibration positions over every layer, as GPTQ's does; HQQ's (and an
//! RTN or HQQ `exportHfLayout`'s) counts tensors. Returning `false` from a callback throws an
//! Error of kind `cancelled`. AWQ folds its scales into the norms: the model `quantizeAwq`
//! returns carries the scaled norms, and both exports write the source file's tensors with them.

use std::collections::BTreeMap;

use wasm_bindgen::prelude::*;

use super::eval::{ExportResult, HfLayoutResult};
use super::methods::{calib_error, export_with, method, quantize_error, target_policy, CalibOpts};
use super::model::{js_count, options, JsCallback, LabModel};
use super::{js_err, Js, LabJsError};
use crate::calib::{gptq_tokens, CalibHooks, ChunkPlan, DEFAULT_TOKENS};
use crate::error::Input;
use crate::formats::QuantScheme;
use crate::io::export::{RoundToNearest, TensorMethod};
use crate::io::gptq_layout::{check_scheme, DescAct, Layout};
use crate::methods::awq_model::{awq_sequential, AwqMethod};
use crate::methods::gptq::{ColumnOrder, GptqOptions};
use crate::methods::gptq_model::gptq_sequential;
use crate::methods::hqq::{self, HqqMethod};
use crate::model::hf_layout::{export_hf_layout, layout_schemes, LayoutOptions};
use crate::model::planned_schemes;
use crate::model::quantize::quantize_model_with;
use crate::recipe::Method;

/// HQQ writes only some formats; any other target is refused before work starts (the CLI's
/// `--method hqq` refuses it too).
fn check_hqq(scheme: &QuantScheme) -> Result<(), LabJsError> {
    if hqq::supports(scheme) {
        return Ok(());
    }
    Err(LabJsError::bad(Input::Format, format!("HQQ writes {}, not {}", hqq::SUPPORTED, scheme.name())))
}

/// `text` cut into calibration chunks for a layer-sequential method, as the CLI's
/// `calibration_plan` cuts it (`tokens`, default 4096).
fn sequential_tokens(model: &LabModel, text: &str, tokens: Option<f64>) -> Result<(Vec<u32>, ChunkPlan), LabJsError> {
    let max_tokens = js_count(tokens.unwrap_or(DEFAULT_TOKENS as f64), "tokens")? as usize;
    Ok(gptq_tokens(&model.inner.tokenizer, text, max_tokens, model.inner.model.config.seq_len))
}

/// Calls `run` with calibration hooks that report to `on_progress(done, total)` (and cancel when
/// it returns `false`).
fn with_calib_progress<T>(
    on_progress: Option<js_sys::Function>,
    what: &str,
    run: impl FnOnce(CalibHooks<'_>) -> Result<T, crate::calib::CalibError>,
) -> Result<T, JsValue> {
    let mut callback = JsCallback::new(on_progress);
    let mut progress = |done: usize, total: usize| callback.call(&[done.into(), total.into()]);
    let result = run(CalibHooks { progress: Some(&mut progress) });
    callback.finish()?;
    Ok(result.map_err(|e| calib_error(e, what))?)
}

impl LabModel {
    /// AWQ calibrated over `text` (`tokens` of it) for the tensors of `schemes` (see
    /// [`Self::quantize_awq`]).
    fn awq_calibrated(
        &self,
        schemes: &BTreeMap<String, QuantScheme>,
        text: &str,
        tokens: Option<f64>,
        on_progress: Option<js_sys::Function>,
    ) -> Result<AwqMethod, JsValue> {
        let (tokens, plan) = sequential_tokens(self, text, tokens)?;
        let model = &self.inner.model;
        let (_, method) = with_calib_progress(on_progress, "AWQ calibration", |hooks| {
            awq_sequential(model, &tokens, &plan, schemes, hooks)
        })?;
        Ok(method)
    }
}

#[wasm_bindgen]
impl LabModel {
    /// A new model quantized to `target` with AWQ, calibrated layer by layer over `text` as
    /// `quantlab eval --method awq` does (its norms carry the folded scales); tensors in types
    /// AWQ does not take (and the token embedding) are rounded to nearest.
    /// `onProgress(done, total)` over the calibration.
    #[wasm_bindgen(js_name = quantizeAwq)]
    pub fn quantize_awq(
        &self,
        target: &str,
        mix: &str,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "CalibOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<LabModel, JsValue> {
        let o: CalibOpts = options(opts, "AWQ", &["tokens"])?;
        let (t, policy) = target_policy(target, mix)?;
        let schemes = planned_schemes(&self.inner.model, &t.scheme, &policy);
        let mut method = self.awq_calibrated(&schemes, text, o.tokens, on_progress)?;
        // The matrices expect the scaled norms: quantize the model that has them.
        let scaled = method.scaled_model(&self.inner.model);
        let (model, report) = quantize_model_with(&scaled, &t.scheme, &policy, &mut |_, _, _| true, &mut method)
            .map_err(|e| quantize_error(e, &t))?;
        Ok(self.derived(model, report))
    }

    /// A new model quantized to `target` with HQQ (`quantlab eval --method hqq`): calibration-free,
    /// every tensor the policy quantizes, the token embedding included; `target` must be a format
    /// HQQ writes (a preset's wider tensors are rounded to nearest). `onProgress(done, total, tensor)`.
    #[wasm_bindgen(js_name = quantizeHqq)]
    pub fn quantize_hqq(
        &self,
        target: &str,
        mix: &str,
        on_progress: Option<js_sys::Function>,
    ) -> Result<LabModel, JsValue> {
        let (t, policy) = target_policy(target, mix)?;
        check_hqq(&t.scheme)?;
        self.quantize_by(&t, &policy, &mut HqqMethod::default(), on_progress)
    }

    /// `sourceGguf` (this model's own file) quantized to `target` with AWQ, written as
    /// `quantlab quantize IN -f TARGET --method awq --calib TEXT [--pure]` writes it (the source's
    /// norms replaced by the scaled ones). `onProgress(done, total)` over the calibration.
    #[wasm_bindgen(js_name = exportAwq)]
    pub fn export_awq(
        &self,
        source_gguf: &[u8],
        target: &str,
        mix: &str,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "CalibOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Js<ExportResult>, JsValue> {
        let o: CalibOpts = options(opts, "AWQ", &["tokens"])?;
        let (t, policy) = target_policy(target, mix)?;
        let schemes = planned_schemes(&self.inner.model, &t.scheme, &policy);
        let mut method = self.awq_calibrated(&schemes, text, o.tokens, on_progress)?;
        let scaled = method.scaled_gguf(source_gguf).map_err(js_err)?;
        export_with(&scaled, &t, &policy, &mut method, None)
    }

    /// `sourceGguf` quantized to `target` with HQQ, as `quantlab quantize IN -f TARGET --method
    /// hqq [--pure]` writes it. `onProgress(done, total, tensor)`.
    #[wasm_bindgen(js_name = exportHqq)]
    pub fn export_hqq(
        &self,
        source_gguf: &[u8],
        target: &str,
        mix: &str,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Js<ExportResult>, JsValue> {
        let (t, policy) = target_policy(target, mix)?;
        check_hqq(&t.scheme)?;
        export_with(source_gguf, &t, &policy, &mut HqqMethod::default(), on_progress)
    }

    /// `sourceGguf`'s linears quantized to `format` (an INT group format) by `method` and written
    /// in AutoGPTQ's or AutoAWQ's layout: the same bytes as `quantlab quantize --layout LAYOUT
    /// --method METHOD [--calib TEXT --calib-tokens N --act-order]`. `text` and `opts` are read
    /// by gptq and awq only; `actOrder` (GPTQ) writes static groups with `desc_act`.
    /// `onProgress(done, total)` over the calibration for gptq and awq, `(done, total, tensor)`
    /// over the tensors for rtn and hqq.
    #[wasm_bindgen(js_name = exportHfLayout)]
    #[allow(clippy::too_many_arguments)]
    pub fn export_hf_layout(
        &self,
        source_gguf: &[u8],
        format: &str,
        #[wasm_bindgen(unchecked_param_type = "\"gptq\" | \"awq\"")] layout: &str,
        #[wasm_bindgen(unchecked_param_type = "Method")] method_name: &str,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "CalibOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Js<HfLayoutResult>, JsValue> {
        let scheme = QuantScheme::parse(format).map_err(js_err)?;
        let layout = match layout {
            "gptq" => Layout::Gptq,
            "awq" => Layout::Awq,
            other => {
                return Err(LabJsError::bad(Input::Options, format!("layout '{other}': expected gptq or awq")).into())
            }
        };
        check_scheme(&scheme, layout).map_err(js_err)?;
        let m = method(method_name)?;
        let o: CalibOpts = options(opts, "layout export", &["tokens", "actOrder"])?;
        let desc_act = match (m, o.act_order) {
            (Method::Gptq, Some(true)) => DescAct::StaticGroups,
            (_, Some(true)) => {
                return Err(LabJsError::bad(Input::Options, "actOrder is a GPTQ option").into());
            }
            _ => DescAct::No,
        };
        let schemes = layout_schemes(source_gguf, &scheme).map_err(js_err)?;
        let model = &self.inner.model;
        let mut scaled: Option<Vec<u8>> = None;
        let mut tensor_progress = None;
        let mut method: Box<dyn TensorMethod> = match m {
            Method::Rtn => {
                tensor_progress = on_progress;
                Box::new(RoundToNearest)
            }
            Method::Hqq => {
                check_hqq(&scheme)?;
                tensor_progress = on_progress;
                Box::new(HqqMethod::default())
            }
            Method::Gptq => {
                let order =
                    if desc_act == DescAct::StaticGroups { ColumnOrder::ActOrder } else { ColumnOrder::Natural };
                let options = GptqOptions { order, ..Default::default() };
                let (tokens, plan) = sequential_tokens(self, text, o.tokens)?;
                let (_, gptq) = with_calib_progress(on_progress, "GPTQ calibration", |hooks| {
                    gptq_sequential(model, &tokens, &plan, &schemes, options, hooks)
                })?;
                Box::new(gptq)
            }
            Method::Awq => {
                let awq = self.awq_calibrated(&schemes, text, o.tokens, on_progress)?;
                scaled = Some(awq.scaled_gguf(source_gguf).map_err(js_err)?);
                Box::new(awq)
            }
            Method::Imatrix => {
                let message =
                    "the Hugging Face layouts take rtn, gptq, awq or hqq codes, not imatrix (a GGUF type's search)";
                return Err(LabJsError::bad(Input::Options, message).into());
            }
        };
        let opts = LayoutOptions { layout, scheme, desc_act };
        let mut callback = JsCallback::new(tensor_progress);
        let mut progress =
            |done: usize, total: usize, name: &str| callback.call(&[done.into(), total.into(), name.into()]);
        let source: &[u8] = scaled.as_deref().unwrap_or(source_gguf);
        let result = export_hf_layout(source, &opts, method.as_mut(), &mut progress);
        callback.finish()?;
        Ok(HfLayoutResult::from_checkpoint(result.map_err(js_err)?)?)
    }
}
