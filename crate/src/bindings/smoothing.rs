//! `model.smoothingStats(calibText, {alpha?, tokens?, threshold?}, onProgress?)`: what the
//! Outliers panel shows of activation quantization for each smoothed layer input (the attention
//! and FFN norms' outputs): the per-channel maxima max|X_j| over the calibration text, the
//! SmoothQuant factors s_j at `alpha` ([`crate::calib::act_setup::smoothed`], the code path of
//! `quantlab eval --smoothquant`), the maxima measured again on the smoothed model (which the
//! fold makes max|X_j| / s_j), and LLM.int8()'s outlier columns at `threshold`: the channels
//! whose |x| reaches it on the text, which LLM.int8() keeps in float (on the unsmoothed model).
//!
//! ```text
//! {tokens, alpha, threshold, inputs: [{tensors: string[], absmax, factors, smoothedAbsmax: number[],
//!                                      outliers: number[]}]}
//! ```
//! `tokens` default 512 (whole chunks, as the CLI's `--calib-tokens`); `onProgress(done, total)`
//! over the two calibration passes; `false` cancels (kind `cancelled`).

use serde::{Deserialize, Serialize};
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use super::methods::calib_error;
use super::model::{js_count, options, JsCallback, LabModel};
use super::{js_err, to_js, Js, LabJsError};
use crate::calib::act_setup::smoothed;
use crate::calib::ranges::ChannelAbsMax;
use crate::calib::{collect, gptq_tokens, CalibHooks};
use crate::error::Input;
use crate::methods::smoothquant::DEFAULT_ALPHA;
use crate::model::llm_int8::DEFAULT_THRESHOLD;
use crate::model::weights::default_threads;

const DEFAULT_TOKENS: f64 = 512.0;

/// Options of `smoothingStats` (every field optional; an unknown key is an error).
#[derive(Deserialize, Default, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct SmoothingOpts {
    #[tsify(optional)]
    alpha: Option<f64>,
    #[tsify(optional)]
    tokens: Option<f64>,
    #[tsify(optional)]
    threshold: Option<f64>,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct SmoothingStats {
    tokens: usize,
    alpha: f32,
    threshold: f32,
    inputs: Vec<SmoothedInput>,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct SmoothedInput {
    /// The matrices that read this input.
    tensors: Vec<String>,
    /// max|X_j| per channel, before smoothing.
    absmax: Vec<f32>,
    /// s_j.
    factors: Vec<f32>,
    /// max|X_j| per channel measured on the smoothed model.
    smoothed_absmax: Vec<f32>,
    /// Channels with max|X_j| ≥ threshold (LLM.int8()'s float columns), ascending.
    outliers: Vec<u32>,
}

#[wasm_bindgen]
impl LabModel {
    /// Channel maxima before and after SmoothQuant and LLM.int8()'s outlier columns (module docs).
    #[wasm_bindgen(js_name = smoothingStats)]
    pub fn smoothing_stats(
        &self,
        calib_text: &str,
        #[wasm_bindgen(unchecked_param_type = "SmoothingOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Js<SmoothingStats>, JsValue> {
        let o: SmoothingOpts = options(opts, "smoothingStats", &["alpha", "tokens", "threshold"])?;
        let alpha = o.alpha.unwrap_or(DEFAULT_ALPHA as f64) as f32;
        let threshold = o.threshold.unwrap_or(DEFAULT_THRESHOLD as f64) as f32;
        if threshold.is_nan() || threshold <= 0.0 {
            let message = format!("threshold must be a number > 0, got {threshold}");
            return Err(LabJsError::bad(Input::Options, message).into());
        }
        let tokens = js_count(o.tokens.unwrap_or(DEFAULT_TOKENS), "tokens")? as usize;
        let model = &self.inner.model;
        let (ids, mut plan) = gptq_tokens(&self.inner.tokenizer, calib_text, tokens, model.config.seq_len);
        plan.threads = default_threads();
        let mut callback = JsCallback::new(on_progress);
        let mut progress = |done: usize, total: usize| callback.call(&[done.into(), total.into()]);
        let s = smoothed(model, &ids, &plan, alpha, CalibHooks { progress: Some(&mut progress) });
        let s = s.map_err(|e| js_err(e).context("smoothingStats"));
        let mut after = ChannelAbsMax::default();
        let run = s
            .as_ref()
            .ok()
            .map(|s| collect(&s.model, &ids, &plan, &mut after, CalibHooks { progress: Some(&mut progress) }));
        callback.finish()?;
        let s = s?;
        run.transpose().map_err(|e| calib_error(e, "measuring the smoothed model"))?;
        let tied = model.weights.output.is_none();
        let inputs = s
            .factors
            .iter()
            .map(|(input, factors)| {
                let absmax = s.absmax.inputs.get(input).cloned().unwrap_or_default();
                let outliers = absmax.iter().enumerate().filter(|(_, &m)| m >= threshold).map(|(j, _)| j as u32);
                SmoothedInput {
                    tensors: input.tensor_names(tied),
                    outliers: outliers.collect(),
                    absmax,
                    factors: factors.clone(),
                    smoothed_absmax: after.inputs.get(input).cloned().unwrap_or_default(),
                }
            })
            .collect();
        Ok(to_js(&SmoothingStats { tokens: s.run.tokens, alpha, threshold, inputs })?)
    }
}
