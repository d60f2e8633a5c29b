//! `GpuLabModel`: a [`LabModel`] uploaded to the page's WebGPU device, for generation on the GPU
//! and the CPU-vs-GPU decode probe. Thin wrapper over [`GpuModel`] and
//! [`crate::gpu::forward::generate::generate`] (same loop and PCG32 stream as the CPU's
//! `generate`, so greedy output is token-for-token the CPU's).
//!
//! JS shape (every GPU call returns a Promise; errors are `Error`s with the core's message —
//! no WebGPU, device lost, a buffer over the adapter's limits):
//! ```text
//! GpuLabModel.upload(model: LabModel, capacity?: number, kvCache?: 'f32' | 'f16' | 'int8',
//!                    activations?: 'f32' | 'f16')
//!     -> Promise<GpuLabModel>   (an unknown kvCache/activations throws at once, naming the valid
//!                                ones; f16 activations on an adapter without shader-f16 reject)
//! gpuModel.info() -> {adapter, backend, isFallback, shaderF16, kernels, gpuBytes, capacity, kvCache,
//!                     activations}
//! gpuModel.generate(prompt, opts, onToken?) -> Promise<same result as LabModel.generate>
//! gpuModel.probe() -> Promise<{cpuTokensPerSec, gpuTokensPerSec, useGpu, reason}>
//! ```
//! Calls on one `GpuLabModel` run one at a time; a second call while one is running is refused.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::gpu_bindings::gpu_context;
use super::model::{generate_result, now_secs, LabModel, Loaded, TokenStream};
use super::{js_err, to_js};
use crate::gpu::forward::generate::generate;
use crate::gpu::forward::probe::probe_decode_with;
use crate::gpu::forward::{GpuModel, KvFormat};
use crate::gpu::matmul::ActivationPrecision;
use crate::model::weights::default_threads;

/// KV positions uploaded by default: enough for the lab's prompts and generations, small enough
/// for a software adapter's memory (f32 cache: 30 layers · 2 · 192 · 4 bytes per position).
const DEFAULT_CAPACITY: usize = 512;
/// Decode steps the probe times on each backend (after one warm-up step).
const PROBE_STEPS: usize = 4;

struct Inner {
    loaded: Rc<Loaded>,
    /// `None` while a call holds it (the next call is refused, not interleaved).
    gpu_model: RefCell<Option<GpuModel>>,
}

/// A model resident on the page's GPU (see the module docs).
#[wasm_bindgen]
pub struct GpuLabModel {
    inner: Rc<Inner>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GpuModelInfo {
    adapter: String,
    backend: String,
    is_fallback: bool,
    shader_f16: bool,
    kernels: String,
    gpu_bytes: u64,
    capacity: usize,
    /// The KV cache format: "f32", "f16" or "int8".
    kv_cache: &'static str,
    activations: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProbeReport {
    cpu_tokens_per_sec: f64,
    gpu_tokens_per_sec: f64,
    use_gpu: bool,
    reason: String,
}

/// The binding's KV cache option: absent (or undefined) is f32; anything but f32/f16/int8 is an
/// error listing the valid names.
fn parse_kv_cache(kv_cache: Option<&str>) -> Result<KvFormat, JsError> {
    kv_cache.map_or(Ok(KvFormat::F32), |s| KvFormat::parse(s).map_err(|e| JsError::new(&format!("kvCache: {e}"))))
}

fn parse_activations(activations: Option<&str>) -> Result<ActivationPrecision, JsError> {
    activations.map_or(Ok(ActivationPrecision::F32), |s| {
        ActivationPrecision::parse(s).map_err(|e| JsError::new(&format!("activations: {e}")))
    })
}

impl Inner {
    fn take(&self) -> Result<GpuModel, JsError> {
        self.gpu_model.borrow_mut().take().ok_or_else(|| {
            JsError::new(
                "this GPU model is busy with another call (or was lost in a failed one); wait for it to finish",
            )
        })
    }

    fn put_back(&self, model: GpuModel) {
        *self.gpu_model.borrow_mut() = Some(model);
    }
}

#[wasm_bindgen]
impl GpuLabModel {
    /// Uploads `model` to the page's WebGPU device with a KV cache of `capacity` positions
    /// (default 512, at most the model's context) stored as `kv_cache`: "f32" (default), "f16"
    /// or "int8" (one f32 scale per position and KV head, absmax / 127), its matmuls computing
    /// in `activations`: "f32" (default) or "f16" (needs the adapter's shader-f16; the promise
    /// rejects naming the adapter otherwise). Resolves to a `GpuLabModel`; an unknown
    /// `kv_cache` or `activations` throws before anything is uploaded.
    pub fn upload(
        model: &LabModel,
        capacity: Option<u32>,
        kv_cache: Option<String>,
        activations: Option<String>,
    ) -> Result<js_sys::Promise, JsError> {
        let kv = parse_kv_cache(kv_cache.as_deref())?;
        let activations = parse_activations(activations.as_deref())?;
        let loaded = Rc::clone(&model.inner);
        let capacity = capacity.map_or(DEFAULT_CAPACITY, |c| c as usize);
        Ok(future_to_promise(async move {
            let gpu = gpu_context().await?;
            let gpu_model = GpuModel::new(&gpu, &loaded.model, capacity, kv, activations)
                .await
                .map_err(|e| JsError::new(&format!("uploading the model to the GPU: {e}")))?;
            let inner = Rc::new(Inner { loaded, gpu_model: RefCell::new(Some(gpu_model)) });
            Ok(GpuLabModel { inner }.into())
        }))
    }

    /// The adapter, its features, the kernels each matrix uses and the bytes on the device.
    pub fn info(&self) -> Result<JsValue, JsError> {
        let guard = self.inner.gpu_model.borrow();
        let m = guard.as_ref().ok_or_else(|| JsError::new("this GPU model is busy with another call"))?;
        let a = &m.gpu().adapter;
        to_js(&GpuModelInfo {
            adapter: a.label(),
            backend: a.backend.clone(),
            is_fallback: a.is_fallback,
            shader_f16: a.shader_f16,
            kernels: m.kernel_summary(),
            gpu_bytes: m.gpu_bytes(),
            capacity: m.capacity,
            kv_cache: m.kv_format.name(),
            activations: m.activations.name(),
        })
    }

    /// `LabModel.generate` on the GPU: same options, streaming and result (see its docs).
    pub fn generate(&self, prompt: String, opts: JsValue, on_token: Option<js_sys::Function>) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let req = inner.loaded.generate_request(&prompt, opts)?;
            let mut m = inner.take()?;
            let tok = &*inner.loaded.tokenizer;
            let mut stream = TokenStream::new(on_token);
            let result = generate(
                &mut m,
                &req.ids,
                req.max_new,
                req.config,
                |id| tok.is_eog(id),
                now_secs,
                |id| stream.push(tok, id),
            )
            .await;
            inner.put_back(m);
            let text = stream.finish()?;
            let (token_ids, stats) = result.map_err(js_err)?;
            Ok(generate_result(text, token_ids, &stats)?)
        })
    }

    /// Times a few decode steps on the CPU (this thread) and on the GPU and says which is faster
    /// and why (the adapter, software fallback, shader-f16). The GPU stops early once it is
    /// slower than the CPU's whole run. Overwrites the first KV positions (generation restarts
    /// at 0 anyway).
    pub fn probe(&self) -> js_sys::Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let mut m = inner.take()?;
            let result = probe_decode_with(&inner.loaded.model, default_threads(), &mut m, PROBE_STEPS, now_secs).await;
            inner.put_back(m);
            let r = result.map_err(js_err)?;
            Ok(to_js(&ProbeReport {
                cpu_tokens_per_sec: r.cpu_tokens_per_sec,
                gpu_tokens_per_sec: r.gpu_tokens_per_sec,
                use_gpu: r.use_gpu,
                reason: r.reason,
            })?)
        })
    }
}
