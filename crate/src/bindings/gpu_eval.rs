//! `GpuLabEval`: `LabEval` on the page's WebGPU device. The models are `GpuLabModel`s already
//! uploaded (the worker keeps them, as for generation); `run` walks every window through all of
//! them in lockstep with [`evaluate_on_gpu`] (each window in blocks of batched prefill whose
//! classifier runs on every row, one readback per block and model, awaited: in wasm a buffer
//! map completes only once the browser's event loop turns, so `LabEval.run`'s synchronous loop
//! cannot drive the GPU). The scoring is `LabEval.run`'s ([`crate::model::eval::Scorer`]), so the
//! numbers equal the CPU's within the forward's f32 reordering (`tests/rust/gpu_eval.rs`).
//!
//! ```text
//! const ev = new GpuLabEval(baseGpu); ev.add(q8Gpu);       // GpuLabModels stay usable in JS
//! ev.run(text, {ctx?, maxWindows?, protocol?, kvCache?: "f32"}, onProgress?) -> Promise<EvalResult>
//!   // LabEval.run's options, progress (`false` rejects with kind `cancelled`) and result, with
//!   // device: "webgpu"; throws at once for bad options, a ctx over a model's KV capacity or a
//!   // model whose cache is not f32; a lost device rejects with kind `deviceLost`, no WebGPU
//!   // with `noGpu` (the worker falls back to the CPU on both)
//! ```
//! Only the f32 KV cache: a quantized cache's run needs the f32-cache base beside it as the
//! reference (`LabEval.run`), which the worker does not upload; the worker runs those on the CPU.

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::eval::{eval_result, run_plan, Device};
use super::gpu_model::{GpuLabModel, Inner};
use super::model::{now_secs, JsCallback};
use super::LabJsError;
use crate::error::Input;
use crate::gpu::forward::{evaluate_on_gpu, GpuModel, KvFormat};
use crate::model::eval::EvalHooks;
use crate::model::KvType;

/// GPU models to evaluate together; the first is the base.
#[wasm_bindgen]
pub struct GpuLabEval {
    models: Vec<Rc<Inner>>,
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "Promise<EvalResult>")]
    pub type EvalResultPromise;
}

#[wasm_bindgen]
impl GpuLabEval {
    /// An evaluation whose base is `base` (the model stays usable in JS).
    #[wasm_bindgen(constructor)]
    pub fn new(base: &GpuLabModel) -> GpuLabEval {
        GpuLabEval { models: vec![Rc::clone(&base.inner)] }
    }

    /// Adds a model compared with the base (KL, top-1, paired statistics).
    pub fn add(&mut self, model: &GpuLabModel) {
        self.models.push(Rc::clone(&model.inner));
    }

    /// Runs every model over `text` on the GPU (see the module docs).
    pub fn run(
        &self,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "EvalOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<EvalResultPromise, JsValue> {
        let (plan, kv, activations) = run_plan(&self.models[0].loaded.tokenizer, text, opts)?;
        if activations.is_some() {
            let message = "activations: the WebGPU evaluation runs f32 activations only (evaluate quantized activations on the CPU)";
            return Err(LabJsError::bad(Input::Options, message.to_string()).into());
        }
        if kv != KvType::F32 {
            let message = format!(
                "kvCache: the WebGPU evaluation runs the f32 KV cache only ({} needs the f32-cache base beside it; evaluate it on the CPU)",
                kv.name()
            );
            return Err(LabJsError::bad(Input::Options, message).into());
        }
        for (i, m) in self.models.iter().enumerate() {
            let guard = m.gpu_model.borrow();
            let g = guard.as_ref().ok_or_else(|| LabJsError::internal("a GPU model of this evaluation is busy"))?;
            check_model(i, g, plan.ctx)?;
        }
        let models = self.models.clone();
        let promise = future_to_promise(async move {
            let mut taken: Vec<GpuModel> = Vec::with_capacity(models.len());
            for m in &models {
                match m.take() {
                    Ok(g) => taken.push(g),
                    Err(e) => {
                        models.iter().zip(taken).for_each(|(m, g)| m.put_back(g));
                        return Err(e.into());
                    }
                }
            }
            let mut callback = JsCallback::new(on_progress);
            let mut positions = |done: usize, total: usize| callback.call(&[done.into(), total.into()]);
            let clock = now_secs;
            let hooks = EvalHooks { clock: Some(&clock), progress: None, positions: Some(&mut positions) };
            let mut refs: Vec<&mut GpuModel> = taken.iter_mut().collect();
            let result = evaluate_on_gpu(&plan, &mut refs, hooks).await;
            models.iter().zip(taken).for_each(|(m, g)| m.put_back(g));
            callback.finish()?;
            Ok(eval_result(&plan, kv, result, Device::WebGpu, None)?.into())
        });
        Ok(promise.unchecked_into())
    }
}

/// Model `index` can run windows of `ctx` with an f32 cache.
fn check_model(index: usize, g: &GpuModel, ctx: usize) -> Result<(), LabJsError> {
    let which = if index == 0 { "the base".to_string() } else { format!("model {index}") };
    if g.kv_format != KvFormat::F32 {
        let message =
            format!("{which} was uploaded with a {} KV cache; the WebGPU evaluation needs f32", g.kv_format.name());
        return Err(LabJsError::bad(Input::Options, message));
    }
    if g.capacity < ctx {
        let message = format!(
            "ctx {ctx} is over {which}'s KV capacity on the GPU ({} positions): upload it with capacity ≥ {ctx}",
            g.capacity
        );
        return Err(LabJsError::bad(Input::Options, message));
    }
    Ok(())
}
