//! The lab's per-layer output error view (Methods panel, lesson 5): RTN, GPTQ and AWQ on each
//! block matrix, the very computation of `quantlab layer-error` ([`crate::methods::layer_error`]).
//!
//! ```text
//! model.layerErrors(target, text, {tokens?, tensors?, methods?, actOrder?}, onProgress?(done, total) -> bool|void)
//!   -> {tokens, chunks, chunk, rows: [{tensor, layer, kind, format, rtn, gptq: number|null, awq: number|null}]}
//! ```
//! `target` is a format (`int4-sym-g64`) or a llama.cpp file type (`q4_0`, with llama-quantize's
//! per-tensor types, as `quantlab layer-error -f` without `--pure`). `tokens` defaults to 4096,
//! `tensors` to every block matrix (a list runs the model only up to its last layer), `methods`
//! to `["gptq", "awq"]`; `actOrder` (default false) is `--act-order`: GPTQ takes the columns in
//! decreasing Hessian diagonal. Returning `false` from `onProgress` throws an Error of kind `cancelled`.

use serde::{Deserialize, Serialize};
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use super::model::{js_count, options, JsCallback, LabModel};
use super::{js_err, to_js, Js};
use crate::calib::{gptq_tokens, CalibError, CalibHooks, DEFAULT_TOKENS};
use crate::methods::gptq::{ColumnOrder, GptqOptions};
use crate::methods::layer_error::{
    layer_errors, Compared, LayerErrorError, LayerErrorOptions, LayerErrorRow, TensorSelection,
};
use crate::model::TensorPolicy;
use crate::policy::Target;

/// A method compared with round to nearest.
#[derive(Deserialize, Tsify, Clone, Copy)]
#[serde(rename_all = "camelCase")]
pub enum LayerErrorMethod {
    Gptq,
    Awq,
}

/// Options of `layerErrors` (every field optional; an unknown key is an error).
#[derive(Deserialize, Default, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct LayerErrorOpts {
    /// Calibration tokens, whole chunks of up to 512 (default 4096).
    #[tsify(optional)]
    tokens: Option<f64>,
    /// Block matrices by llama.cpp name (default: all).
    #[tsify(optional)]
    tensors: Option<Vec<String>>,
    /// Besides round to nearest (default: both).
    #[tsify(optional)]
    methods: Option<Vec<LayerErrorMethod>>,
    /// GPTQ's columns in decreasing Hessian diagonal (`--act-order`; default false).
    #[tsify(optional)]
    act_order: Option<bool>,
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct LayerErrorResult {
    /// Calibration tokens run (`chunks × chunk`).
    tokens: usize,
    chunks: usize,
    chunk: usize,
    rows: Vec<LayerErrorRow>,
}

#[wasm_bindgen]
impl LabModel {
    /// See the module docs.
    #[wasm_bindgen(js_name = layerErrors)]
    pub fn layer_errors(
        &self,
        target: &str,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "LayerErrorOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Js<LayerErrorResult>, JsValue> {
        let o: LayerErrorOpts = options(opts, "layer error", &["tokens", "tensors", "methods", "actOrder"])?;
        let t = Target::parse(target).map_err(js_err)?;
        let max_tokens = js_count(o.tokens.unwrap_or(DEFAULT_TOKENS as f64), "tokens")? as usize;
        let mut methods: Vec<Compared> = o
            .methods
            .unwrap_or_else(|| vec![LayerErrorMethod::Gptq, LayerErrorMethod::Awq])
            .into_iter()
            .map(|m| match m {
                LayerErrorMethod::Gptq => Compared::Gptq,
                LayerErrorMethod::Awq => Compared::Awq,
            })
            .collect();
        methods.sort();
        methods.dedup();
        let tensors = o.tensors.map_or(TensorSelection::All, TensorSelection::Only);
        let order = if o.act_order.unwrap_or(false) { ColumnOrder::ActOrder } else { ColumnOrder::Natural };
        let options = LayerErrorOptions { tensors, methods, gptq: GptqOptions { order, ..GptqOptions::default() } };
        let model = &self.inner.model;
        let (tokens, plan) = gptq_tokens(&self.inner.tokenizer, text, max_tokens, model.config.seq_len);
        let policy = TensorPolicy { mix: t.mix, ..TensorPolicy::default() };
        let mut callback = JsCallback::new(on_progress);
        let mut progress = |done: usize, total: usize| callback.call(&[done.into(), total.into()]);
        let hooks = CalibHooks { progress: Some(&mut progress) };
        let result = layer_errors(model, &tokens, &plan, &t.scheme, &policy, &options, hooks);
        callback.finish()?;
        let out = result.map_err(|e| match e {
            LayerErrorError::Calib(e @ CalibError::Cancelled { .. }) => {
                js_err(e).context("cancelled the per-layer output error")
            }
            e => js_err(e).context("per-layer output error"),
        })?;
        Ok(to_js(&LayerErrorResult {
            tokens: out.run.tokens,
            chunks: out.run.chunks,
            chunk: out.run.chunk,
            rows: out.rows,
        })?)
    }
}
