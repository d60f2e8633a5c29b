//! `GpuLabModel`: a [`LabModel`] uploaded to the page's WebGPU device, for generation on the GPU
//! and the CPU-vs-GPU decode probe. Thin wrapper over [`GpuModel`] and
//! [`crate::gpu::forward::generate::generate`] (same loop and PCG32 stream as the CPU's
//! `generate`, so greedy output is token-for-token the CPU's).
//!
//! JS shape (every GPU call returns a Promise; errors are `Error`s with the core's message and
//! a `kind` — `noGpu`, `deviceLost`, `limitExceeded` for a buffer over the adapter's limits,
//! `missingFeature` for f16 activations without shader-f16):
//! ```text
//! GpuLabModel.upload(model: LabModel, capacity?: number, kvCache?: 'f32' | 'f16' | 'int8',
//!                    activations?: 'f32' | 'f16')
//!     -> Promise<GpuLabModel>   (an unknown kvCache/activations throws at once, naming the valid
//!                                ones; f16 activations on an adapter without shader-f16 reject)
//! gpuModel.info() -> {adapter, backend, isFallback, shaderF16, kernels, gpuBytes, capacity, kvCache,
//!                     activations}
//! gpuModel.generate(prompt, opts, onToken?) -> Promise<same result as LabModel.generate>
//! gpuModel.probe() -> Promise<{cpuTokensPerSec, gpuTokensPerSec, useGpu, reason}>
//! GpuLabModel.destroyDevice() -> boolean   (test/diagnostic hook: loses the device on purpose)
//! ```
//! Calls on one `GpuLabModel` run one at a time; a second call while one is running is refused.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::gpu_bindings::{destroy_gpu_context, gpu_context};
use super::model::{generate_result, now_secs, LabModel, Loaded, TokenStream};
use super::{js_err, to_js, Js, LabJsError};
use crate::error::Input;
use crate::gpu::forward::generate::generate;
use crate::gpu::forward::probe::probe_decode_with;
use crate::gpu::forward::{GpuModel, KvFormat};
use crate::gpu::matmul::ActivationPrecision;
use crate::model::weights::default_threads;
use crate::model::KvType;

/// KV positions uploaded by default: enough for the lab's prompts and generations, small enough
/// for a software adapter's memory (f32 cache: 30 layers · 2 · 192 · 4 bytes per position).
const DEFAULT_CAPACITY: usize = 512;
/// Decode steps the probe times on each backend (after one warm-up step).
const PROBE_STEPS: usize = 4;

pub(super) struct Inner {
    pub(super) loaded: Rc<Loaded>,
    /// `None` while a call holds it (the next call is refused, not interleaved).
    pub(super) gpu_model: RefCell<Option<GpuModel>>,
}

/// A model resident on the page's GPU (see the module docs).
#[wasm_bindgen]
pub struct GpuLabModel {
    pub(super) inner: Rc<Inner>,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct GpuModelInfo {
    adapter: String,
    backend: String,
    is_fallback: bool,
    shader_f16: bool,
    kernels: String,
    gpu_bytes: u64,
    capacity: usize,
    #[tsify(type = "\"f32\" | \"f16\" | \"int8\"")]
    kv_cache: &'static str,
    #[tsify(type = "\"f32\" | \"f16\"")]
    activations: &'static str,
}

#[wasm_bindgen]
extern "C" {
    /// The promises the GPU calls return, typed by what they resolve to.
    #[wasm_bindgen(typescript_type = "Promise<GpuLabModel>")]
    pub type GpuLabModelPromise;
    #[wasm_bindgen(typescript_type = "Promise<GenerateResult>")]
    pub type GenerateResultPromise;
    #[wasm_bindgen(typescript_type = "Promise<ProbeResult>")]
    pub type ProbeReportPromise;
}

/// The binding's KV cache option: absent (or undefined) is f32; an unknown name is an error
/// listing the valid names, and int4/fp8 (CPU only) an error saying so.
fn parse_kv_cache(kv_cache: Option<&str>) -> Result<KvFormat, LabJsError> {
    let kv = kv_cache.map_or(Ok(KvType::F32), KvType::parse);
    kv.and_then(KvFormat::try_from).map_err(|e| LabJsError::bad(Input::Options, format!("kvCache: {e}")))
}

fn parse_activations(activations: Option<&str>) -> Result<ActivationPrecision, LabJsError> {
    activations.map_or(Ok(ActivationPrecision::F32), |s| {
        ActivationPrecision::parse(s).map_err(|e| LabJsError::bad(Input::Options, format!("activations: {e}")))
    })
}

impl Inner {
    pub(super) fn take(&self) -> Result<GpuModel, LabJsError> {
        self.gpu_model.borrow_mut().take().ok_or_else(|| {
            LabJsError::internal(
                "this GPU model is busy with another call (or was lost in a failed one); wait for it to finish",
            )
        })
    }

    pub(super) fn put_back(&self, model: GpuModel) {
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
    ) -> Result<GpuLabModelPromise, LabJsError> {
        let kv = parse_kv_cache(kv_cache.as_deref())?;
        let activations = parse_activations(activations.as_deref())?;
        let loaded = Rc::clone(&model.inner);
        let capacity = capacity.map_or(DEFAULT_CAPACITY, |c| c as usize);
        let promise = future_to_promise(async move {
            let gpu = gpu_context().await?;
            let gpu_model = GpuModel::new(&gpu, &loaded.model, capacity, kv, activations)
                .await
                .map_err(|e| js_err(e).context("uploading the model to the GPU"))?;
            let inner = Rc::new(Inner { loaded, gpu_model: RefCell::new(Some(gpu_model)) });
            Ok(GpuLabModel { inner }.into())
        });
        Ok(promise.unchecked_into())
    }

    /// Test and diagnostic hook: destroys the page's WebGPU device (`GPUDevice.destroy()`) as a
    /// driver reset would, so the lab's device-loss handling can be exercised; callable while a
    /// generation runs (e.g. from its `onToken`), whose next GPU step then fails with kind
    /// `deviceLost`. Every `GpuLabModel` on that device is unusable afterwards (free them); the
    /// next `upload` acquires a fresh device. Returns whether a device was held.
    #[wasm_bindgen(js_name = destroyDevice)]
    pub fn destroy_device() -> bool {
        destroy_gpu_context()
    }

    /// The adapter, its features, the kernels each matrix uses and the bytes on the device.
    pub fn info(&self) -> Result<Js<GpuModelInfo>, LabJsError> {
        let guard = self.inner.gpu_model.borrow();
        let m = guard.as_ref().ok_or_else(|| LabJsError::internal("this GPU model is busy with another call"))?;
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
    pub fn generate(
        &self,
        prompt: String,
        #[wasm_bindgen(unchecked_param_type = "GenerateOpts | undefined | null")] opts: JsValue,
        on_token: Option<js_sys::Function>,
    ) -> GenerateResultPromise {
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
            Ok(generate_result(text, token_ids, &stats)?.into())
        })
        .unchecked_into()
    }

    /// Times a few decode steps on the CPU (this thread) and on the GPU and says which is faster
    /// and why (the adapter, software fallback, shader-f16). The GPU stops early once it is
    /// slower than the CPU's whole run. Overwrites the first KV positions (generation restarts
    /// at 0 anyway).
    pub fn probe(&self) -> ProbeReportPromise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let mut m = inner.take()?;
            let result = probe_decode_with(&inner.loaded.model, default_threads(), &mut m, PROBE_STEPS, now_secs).await;
            inner.put_back(m);
            Ok(to_js(&result.map_err(js_err)?)?.into())
        })
        .unchecked_into()
    }
}
