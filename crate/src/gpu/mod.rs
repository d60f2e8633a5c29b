//! GPU compute through wgpu: Vulkan/GL natively, WebGPU in the browser, one code path.
//!
//! A [`GpuContext`] is acquired once (it owns the device, the queue and the compiled pipelines)
//! and passed by reference to every kernel; a [`forward::GpuModel`] keeps an `Arc` of it, so a
//! model can outlive the scope that acquired the device (a JS object in the bindings). Nothing
//! below this module creates its own device. Kernels are WGSL files in the repository's
//! `shaders/` folder, chosen through [`kernel::Kernel`], each with a CPU twin.

pub mod axpy;
pub mod bench;
pub mod forward;
pub mod int8_dot4;
pub mod kernel;
pub mod matmul;
pub mod repack;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use self::kernel::PipelineKey;

/// Why the GPU path is unavailable or failed. Messages are meant for users.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter available: {0}")]
    NoAdapter(String),
    #[error("the GPU adapter refused to create a device: {0}")]
    RequestDevice(String),
    #[error("GPU validation error in {what}: {message}")]
    Validation { what: String, message: String },
    #[error("the GPU ran out of memory during {0}")]
    OutOfMemory(String),
    /// Kept as a validation error's wording, with the feature as data for callers to branch on.
    #[error("GPU validation error in {what}: adapter '{adapter}' has no {feature} feature; {hint}")]
    MissingFeature { what: String, adapter: String, feature: String, hint: String },
    #[error("the GPU device was lost ({0}); the CPU path still works")]
    DeviceLost(String),
    #[error("{what} needs a {bytes}-byte GPU buffer but this adapter allows at most {max} bytes per binding")]
    BufferTooLarge { what: String, bytes: u64, max: u64 },
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
}

/// What the lab tells users about the adapter it found.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
// Field names are camelCase across the wasm boundary (snake_case in the CLI's JSON).
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// A software rasteriser/compute adapter (lavapipe, SwiftShader): expect the CPU to be faster.
    pub is_fallback: bool,
    pub shader_f16: bool,
    pub subgroups: bool,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
}

impl AdapterSummary {
    /// The adapter's name for users; browsers may hide it (empty `GPUAdapterInfo`), then the
    /// driver, the device type or the backend stands in.
    pub fn label(&self) -> String {
        [&self.name, &self.driver, &self.device_type]
            .into_iter()
            .find(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| format!("unnamed {}", self.backend))
    }
}

/// The one device and queue the process uses, with what the adapter supports.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    /// The WGSL language extensions the instance's shader compiler accepts (naga natively, the
    /// browser's `navigator.gpu.wgslLanguageFeatures`): picks [`int8_dot4::IntDotVariant`].
    pub wgsl_features: wgpu::WgslLanguageFeatures,
    /// Set by the device-lost callback; checked before each operation so a lost device turns
    /// into [`GpuError::DeviceLost`] instead of a hang.
    lost: Arc<Mutex<Option<String>>>,
    /// Every pipeline compiled on this device, keyed by kernel, module, entry point and override
    /// constants ([`kernel::Kernel::cached_pipeline`]): matrices of one format and models of one
    /// shape share them.
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}

impl GpuContext {
    /// Requests an adapter (high-performance preference) and a device with the optional
    /// features the kernels can use (shader-f16, subgroups) and the adapter's own buffer limits.
    pub async fn acquire() -> Result<Self, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let features = adapter.features();
        // Subgroups natively only: the subgroup GEMV's WGSL has no `enable subgroups;` (naga 30
        // refuses the directive, gating the builtins on this feature instead), which a browser's
        // compiler would require; wgpu 30's WebGPU backend does not report the feature anyway.
        let wanted = if cfg!(target_arch = "wasm32") {
            wgpu::Features::SHADER_F16
        } else {
            wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP
        };
        let required_features = features & wanted;
        let adapter_limits = adapter.limits();
        // Ask for the adapter's real storage limits: the WebGPU defaults (128 MiB binding)
        // would otherwise cap tensor sizes even on GPUs that allow more.
        let required_limits = wgpu::Limits {
            max_storage_buffer_binding_size: adapter_limits.max_storage_buffer_binding_size,
            max_buffer_size: adapter_limits.max_buffer_size,
            max_compute_workgroups_per_dimension: adapter_limits.max_compute_workgroups_per_dimension,
            ..wgpu::Limits::downlevel_defaults().using_resolution(adapter_limits.clone())
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("quantlab"),
                required_features,
                required_limits: required_limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;

        let lost = Arc::new(Mutex::new(None));
        let lost_writer = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut slot) = lost_writer.lock() {
                *slot = Some(format!("{reason:?}: {message}"));
            }
        });
        // wgpu's default handler panics on errors nobody captured; every operation here runs
        // inside an error scope, so anything that still escapes is only logged.
        device.on_uncaptured_error(Arc::new(|error: wgpu::Error| {
            log_warning(&format!("quantlab: uncaptured GPU error: {error}"));
        }));

        let adapter = AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: if info.driver_info.is_empty() {
                info.driver.clone()
            } else {
                format!("{} {}", info.driver, info.driver_info)
            },
            is_fallback: info.device_type == wgpu::DeviceType::Cpu,
            shader_f16: required_features.contains(wgpu::Features::SHADER_F16),
            subgroups: required_features.contains(wgpu::Features::SUBGROUP),
            max_storage_buffer_binding_size: required_limits.max_storage_buffer_binding_size,
            max_buffer_size: required_limits.max_buffer_size,
        };
        let wgsl_features = instance.wgsl_language_features();
        Ok(Self { device, queue, adapter, wgsl_features, lost, pipelines: Mutex::new(HashMap::new()) })
    }

    /// Native convenience: [`Self::acquire`] on the current thread.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn acquire_blocking() -> Result<Self, GpuError> {
        pollster::block_on(Self::acquire())
    }

    /// Pipelines compiled on this device so far: lets tests check that matrices of one format
    /// share them.
    pub fn cached_pipeline_count(&self) -> usize {
        self.pipelines.lock().map_or(0, |cache| cache.len())
    }

    fn cached(&self, key: &PipelineKey) -> Option<wgpu::ComputePipeline> {
        self.pipelines.lock().ok().and_then(|cache| cache.get(key).cloned())
    }

    fn cache(&self, key: PipelineKey, pipeline: &wgpu::ComputePipeline) {
        if let Ok(mut cache) = self.pipelines.lock() {
            cache.insert(key, pipeline.clone());
        }
    }

    /// Destroys the device on purpose (a test and diagnostic hook: what a driver reset or a
    /// browser reclaiming the GPU does). It counts as lost at once, so the next operation on it
    /// fails with [`GpuError::DeviceLost`] even before the browser's lost notification arrives.
    pub fn destroy(&self) {
        if let Ok(mut slot) = self.lost.lock() {
            slot.get_or_insert_with(|| "destroyed on purpose by GpuLabModel.destroyDevice".into());
        }
        self.device.destroy();
    }

    /// Errors out if the device has been lost since the last call.
    pub fn check_alive(&self) -> Result<(), GpuError> {
        match self.lost.lock().ok().and_then(|slot| slot.clone()) {
            Some(reason) => Err(GpuError::DeviceLost(reason)),
            None => Ok(()),
        }
    }

    /// Fails early, with sizes in the message, when a buffer exceeds the binding limit.
    pub fn check_binding_size(&self, what: &str, bytes: u64) -> Result<(), GpuError> {
        let max = self.adapter.max_storage_buffer_binding_size.min(self.adapter.max_buffer_size);
        if bytes > max {
            return Err(GpuError::BufferTooLarge { what: what.to_string(), bytes, max });
        }
        Ok(())
    }

    /// Runs `work` inside validation and out-of-memory error scopes and reports what they caught.
    pub async fn scoped<T>(&self, what: &str, work: impl FnOnce() -> T) -> Result<T, GpuError> {
        self.check_alive()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = work();
        if let Some(error) = validation.pop().await {
            return Err(GpuError::Validation { what: what.to_string(), message: error.to_string() });
        }
        if oom.pop().await.is_some() {
            return Err(GpuError::OutOfMemory(what.to_string()));
        }
        Ok(value)
    }

    /// Copies `buffer` (which must have MAP_READ usage) back to the CPU.
    pub async fn read_buffer(&self, buffer: &wgpu::Buffer) -> Result<Vec<u8>, GpuError> {
        let (sender, receiver) = futures_channel::oneshot::channel();
        buffer.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = sender.send(result);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        let mapped = receiver.await.map_err(|_| GpuError::Readback("the map request was dropped".into()))?;
        self.check_alive()?;
        mapped.map_err(|e| GpuError::Readback(e.to_string()))?;
        let bytes = buffer.get_mapped_range(..).map_err(|e| GpuError::Readback(e.to_string()))?.to_vec();
        buffer.unmap();
        Ok(bytes)
    }
}

fn log_warning(message: &str) {
    #[cfg(target_arch = "wasm32")]
    web_sys::console::warn_1(&message.into());
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{message}");
}
