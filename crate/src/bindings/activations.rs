//! `model.activationStats(text, {maxTokens?, outlierK?}, onProgress?)`: per-input-channel
//! activation magnitudes of every weight matrix over a calibration text
//! ([`crate::model::activations`]). The text is tokenized like a prompt (BOS per the model)
//! and its first `maxTokens` tokens (default 128, at most the model's context) are run.
//!
//! JS shape:
//! ```text
//! {tokens, outlierK, tensors: [{tensor, colAbsmax: Float32Array, colRms: Float32Array,
//!                               outliers: number[]}]}
//! ```
//! One entry per weight matrix (matrices reading the same input, e.g. `attn_q/k/v` of a layer,
//! carry the same numbers). `onProgress(done, total)` after each token; returning `false`
//! cancels with an Error of kind `cancelled`.

use serde::{Deserialize, Serialize};
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use super::model::{js_count, options, JsCallback, LabModel};
use super::{js_err, Js, LabJsError};
use crate::error::Input;
use crate::model::activations::{activation_stats, ActivationError};
use crate::stats::weights::DEFAULT_OUTLIER_K;

/// Default `maxTokens`: enough positions for stable channel maxima, seconds of wasm time.
const DEFAULT_MAX_TOKENS: f64 = 128.0;

/// Options of `LabModel.activationStats` (every field optional; an unknown key is an error).
#[derive(Deserialize, Default, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct ActivationOpts {
    #[tsify(optional)]
    max_tokens: Option<f64>,
    #[tsify(optional)]
    outlier_k: Option<f64>,
}

/// `activationStats`' result. Built by hand below rather than serialized: the typed arrays of
/// one input are shared by the rows of every matrix reading it; these structs declare its type.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ActivationStats {
    tokens: u32,
    outlier_k: f64,
    tensors: Vec<ActivationRow>,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ActivationRow {
    tensor: String,
    #[tsify(type = "Float32Array")]
    col_absmax: Vec<f32>,
    #[tsify(type = "Float32Array")]
    col_rms: Vec<f32>,
    outliers: Vec<u32>,
}

#[wasm_bindgen]
impl LabModel {
    /// Activation absmax / RMS per input channel of every weight matrix over `text` (see the
    /// module docs).
    #[wasm_bindgen(js_name = activationStats)]
    pub fn activation_stats(
        &self,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "ActivationOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Js<ActivationStats>, JsValue> {
        let o: ActivationOpts = options(opts, "activationStats", &["maxTokens", "outlierK"])?;
        let max_tokens = js_count(o.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS), "maxTokens")? as usize;
        let outlier_k = o.outlier_k.unwrap_or(DEFAULT_OUTLIER_K);
        if !(outlier_k.is_finite() && outlier_k > 0.0) {
            let message = format!("outlierK must be a finite number > 0, got {outlier_k}");
            return Err(LabJsError::bad(Input::Options, message).into());
        }
        let tok = &self.inner.tokenizer;
        let mut ids = tok.encode(text, tok.add_bos_default(), false);
        ids.truncate(max_tokens);
        let mut callback = JsCallback::new(on_progress);
        let mut progress = |done: usize, total: usize| callback.call(&[done.into(), total.into()]);
        let result = activation_stats(&self.inner.model, &ids, outlier_k, &mut progress);
        callback.finish()?;
        let stats = result.map_err(|e| match e {
            ActivationError::Cancelled { .. } => js_err(e).context("cancelled activation statistics"),
            e => js_err(e).context("activation statistics"),
        })?;
        let tensors = js_sys::Array::new();
        for input in &stats.inputs {
            let col_absmax = js_sys::Float32Array::from(input.col_absmax.as_slice());
            let rms: Vec<f32> = input.col_rms.iter().map(|&r| r as f32).collect();
            let col_rms = js_sys::Float32Array::from(rms.as_slice());
            let outliers: js_sys::Array = input.outlier_cols.iter().map(|&c| JsValue::from(c as u32)).collect();
            for name in &input.tensors {
                let row = js_sys::Object::new();
                set(&row, "tensor", name.as_str().into())?;
                set(&row, "colAbsmax", col_absmax.clone().into())?;
                set(&row, "colRms", col_rms.clone().into())?;
                set(&row, "outliers", outliers.clone().into())?;
                tensors.push(&row);
            }
        }
        let out = js_sys::Object::new();
        set(&out, "tokens", (stats.tokens as u32).into())?;
        set(&out, "outlierK", stats.outlier_k.into())?;
        set(&out, "tensors", tensors.into())?;
        Ok(out.unchecked_into())
    }
}

fn set(obj: &js_sys::Object, key: &str, value: JsValue) -> Result<(), JsValue> {
    js_sys::Reflect::set(obj, &JsValue::from_str(key), &value).map(|_| ())
}
