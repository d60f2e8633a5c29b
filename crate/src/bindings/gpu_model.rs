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
//! ```
//! Calls on one `GpuLabModel` run one at a time; a second call while one is running is refused.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::gpu_bindings::gpu_context;
use super::model::{generate_result, now_secs, LabModel, Loaded, TokenStream};
use super::{js_err, to_js, Js, LabJsError};
use crate::error::Input;
use crate::gpu::forward::generate::generate;
use crate::gpu::forward::{GpuModel, KvFormat, Pick};
use crate::gpu::matmul::ActivationPrecision;
use crate::gpu::{AdapterSummary, GpuContext};
use crate::model::{forward, State};

/// KV positions uploaded by default: enough for the lab's prompts and generations, small enough
/// for a software adapter's memory (f32 cache: 30 layers · 2 · 192 · 4 bytes per position).
const DEFAULT_CAPACITY: usize = 512;
/// Decode steps the probe times on each backend (after one warm-up step).
const PROBE_STEPS: usize = 4;

struct Inner {
    loaded: Rc<Loaded>,
    /// `None` while a call holds it (the next call is refused, not interleaved).
    gpu_model: RefCell<Option<GpuModel<'static>>>,
}

/// A model resident on the page's GPU (see the module docs).
#[wasm_bindgen]
pub struct GpuLabModel {
    inner: Rc<Inner>,
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

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ProbeReport {
    cpu_tokens_per_sec: f64,
    gpu_tokens_per_sec: f64,
    use_gpu: bool,
    reason: String,
}

#[wasm_bindgen]
extern "C" {
    /// The promises the GPU calls return, typed by what they resolve to.
    #[wasm_bindgen(typescript_type = "Promise<GpuLabModel>")]
    pub type GpuLabModelPromise;
    #[wasm_bindgen(typescript_type = "Promise<GenerateResult>")]
    pub type GenerateResultPromise;
    #[wasm_bindgen(typescript_type = "Promise<ProbeReport>")]
    pub type ProbeReportPromise;
}

/// The page's GPU context for the page's lifetime: a `GpuModel` borrows its context, and a JS
/// object cannot carry a borrow, so the context it uses is kept alive for good (one per device;
/// after a device loss the old, dead one stays — a few bytes of host state).
async fn static_gpu() -> Result<&'static GpuContext, LabJsError> {
    let gpu: &'static Rc<GpuContext> = Box::leak(Box::new(gpu_context().await?));
    Ok(gpu)
}

/// The adapter's name for users; browsers may hide it (empty `GPUAdapterInfo`), then the
/// driver, the device type or the backend stands in.
fn adapter_label(a: &AdapterSummary) -> String {
    [&a.name, &a.driver, &a.device_type]
        .into_iter()
        .find(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| format!("unnamed {}", a.backend))
}

/// The binding's KV cache option: absent (or undefined) is f32; anything but f32/f16/int8 is an
/// error listing the valid names.
fn parse_kv_cache(kv_cache: Option<&str>) -> Result<KvFormat, LabJsError> {
    kv_cache.map_or(Ok(KvFormat::F32), |s| {
        KvFormat::parse(s).map_err(|e| LabJsError::bad(Input::Options, format!("kvCache: {e}")))
    })
}

fn parse_activations(activations: Option<&str>) -> Result<ActivationPrecision, LabJsError> {
    activations.map_or(Ok(ActivationPrecision::F32), |s| {
        ActivationPrecision::parse(s).map_err(|e| LabJsError::bad(Input::Options, format!("activations: {e}")))
    })
}

impl Inner {
    fn take(&self) -> Result<GpuModel<'static>, LabJsError> {
        self.gpu_model.borrow_mut().take().ok_or_else(|| {
            LabJsError::internal(
                "this GPU model is busy with another call (or was lost in a failed one); wait for it to finish",
            )
        })
    }

    fn put_back(&self, model: GpuModel<'static>) {
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
            let gpu = static_gpu().await?;
            let gpu_model = GpuModel::new(gpu, &loaded.model, capacity, kv, activations)
                .await
                .map_err(|e| js_err(e).context("uploading the model to the GPU"))?;
            let inner = Rc::new(Inner { loaded, gpu_model: RefCell::new(Some(gpu_model)) });
            Ok(GpuLabModel { inner }.into())
        });
        Ok(promise.unchecked_into())
    }

    /// The adapter, its features, the kernels each matrix uses and the bytes on the device.
    pub fn info(&self) -> Result<Js<GpuModelInfo>, LabJsError> {
        let guard = self.inner.gpu_model.borrow();
        let m = guard.as_ref().ok_or_else(|| LabJsError::internal("this GPU model is busy with another call"))?;
        let a = &m.gpu().adapter;
        to_js(&GpuModelInfo {
            adapter: adapter_label(a),
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
    pub fn generate(&self, prompt: String, opts: JsValue, on_token: Option<js_sys::Function>) -> GenerateResultPromise {
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
            let result = probe_decode(&inner.loaded, &mut m).await;
            inner.put_back(m);
            Ok(to_js(&result.map_err(js_err)?)?.into())
        })
        .unchecked_into()
    }
}

/// The async (browser) twin of `gpu::forward::probe::probe_decode`, which blocks on the GPU and
/// uses `std::time`, neither available in wasm.
async fn probe_decode(
    loaded: &Loaded,
    m: &mut GpuModel<'static>,
) -> Result<ProbeReport, crate::gpu::forward::GpuModelError> {
    let model = &loaded.model;
    let steps = PROBE_STEPS.min(m.capacity.saturating_sub(1)).max(1);
    let vocab = model.config.vocab_size as u32;
    let tokens: Vec<u32> = (0..=steps as u32).map(|i| (i * 7919 + 1) % vocab).collect();

    let mut state = State::new(&model.config, steps + 1);
    forward(&model.config, &model.weights, &mut state, tokens[0], 0);
    let t = now_secs();
    for (pos, &tok) in tokens.iter().enumerate().skip(1) {
        forward(&model.config, &model.weights, &mut state, tok, pos);
    }
    let cpu_secs = now_secs() - t;
    let cpu = steps as f64 / cpu_secs;

    let warm = now_secs();
    m.decode_sample(tokens[0], 0, Pick::GREEDY).await?;
    let warm_secs = now_secs() - warm;
    let (gpu, done, note) = if warm_secs > 10.0 * cpu_secs {
        // Ten times the CPU's whole run for one step: a software or starved adapter.
        (1.0 / warm_secs, 1, " warm-up")
    } else {
        let t = now_secs();
        let mut done = 0;
        for (pos, &tok) in tokens.iter().enumerate().skip(1) {
            m.decode_sample(tok, pos, Pick::GREEDY).await?;
            done += 1;
            if now_secs() - t > cpu_secs {
                break;
            }
        }
        (done as f64 / (now_secs() - t), done, "")
    };
    let a = &m.gpu().adapter;
    let mut notes = vec![a.backend.clone()];
    if a.is_fallback {
        notes.push("software fallback".into());
    }
    notes.push(if a.shader_f16 { "shader-f16".into() } else { "no shader-f16: f32 activations".into() });
    let use_gpu = gpu > cpu;
    let reason = format!(
        "WebGPU adapter '{}' ({}) decodes {gpu:.2} tok/s vs CPU {cpu:.1} tok/s ({done}{note} of {steps} steps timed) → \
         using the {}",
        adapter_label(a),
        notes.join(", "),
        if use_gpu { "GPU" } else { "CPU" }
    );
    Ok(ProbeReport { cpu_tokens_per_sec: cpu, gpu_tokens_per_sec: gpu, use_gpu, reason })
}
