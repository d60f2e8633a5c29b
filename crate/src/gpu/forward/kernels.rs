//! The forward pass's own kernels (everything but the weight matmuls): the [`Step`] uniform they
//! share, their pipelines specialised for one model ([`Pipelines`]), dispatch helpers, the CPU
//! twins that `model::forward` does not already expose as functions, and one-shot runners the
//! kernel tests use to compare each shader with its twin.
//!
//! | kernel | shader | CPU twin |
//! |---|---|---|
//! | RMSNorm | `rmsnorm.wgsl` | [`crate::model::rmsnorm`] |
//! | RoPE | `rope.wgsl` | [`crate::model::rope`] |
//! | KV-cache store | `kv_write.wgsl` | [`kv_store_cpu`] / [`kv_load_cpu`] |
//! | attention + softmax | `attention.wgsl` | [`attention_cpu`] (the loop of `model::forward`) |
//! | SwiGLU | `elementwise.wgsl` (OP 1) | [`swiglu_cpu`] |
//! | residual add | `elementwise.wgsl` (OP 0) | [`residual_add_cpu`] |
//! | sampling | `sample.wgsl` | [`crate::model::Sampler::sample`] |

use half::f16;
use wgpu::util::DeviceExt;

use crate::gpu::kernel::overrides::{
    CAPACITY, DIM, EPS, HEAD_DIM, KV_FORMAT, N_HEADS, N_KV_HEADS, OP, ROPE_DIM, VOCAB, WIDTH,
};
use crate::gpu::kernel::Kernel;
use crate::gpu::{GpuContext, GpuError};
use crate::model::kv_cache::{int8_encode, KvType, KvTypeError};
use crate::model::{softmax, weights::dot};

/// Threads per workgroup of the element-wise kernels (`WG` in shaders/forward_step.wgsl).
pub const WG: u32 = 64;
/// Largest `top_k` sampled on the GPU (`MAX_K` in `sample.wgsl`); larger (or 0 = all tokens)
/// reads the logits back and samples on the CPU.
pub const MAX_TOP_K: usize = 64;

/// The uniform every forward kernel reads (`struct Step` in shaders/forward_step.wgsl; 32 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Step {
    /// Position of the first row.
    pub pos0: u32,
    /// Rows (tokens) in this batch.
    pub n: u32,
    /// 1 = greedy; 2..=MAX_TOP_K = top-k sampling.
    pub top_k: u32,
    pub _pad: u32,
    pub temperature: f32,
    pub top_p: f32,
    /// Uniform draw in [0, 1) for sampling.
    pub u: f32,
    pub _pad2: f32,
}

/// How the KV cache stores keys and values on the GPU: the GPU's subset of
/// [`crate::model::KvType`] (which is parsed once; [`KvFormat::try_from`] refuses int4/fp8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvFormat {
    /// 4 bytes per value: identical to the CPU cache.
    F32,
    /// 2 bytes per value, packed in pairs with `pack2x16float` (no shader-f16 needed).
    F16,
    /// 1 byte per value + one f32 scale per (position, kv head): absmax / 127.
    Int8,
}

impl TryFrom<KvType> for KvFormat {
    type Error = KvTypeError;
    fn try_from(kv: KvType) -> Result<KvFormat, KvTypeError> {
        match kv {
            KvType::F32 => Ok(KvFormat::F32),
            KvType::F16 => Ok(KvFormat::F16),
            KvType::Int8 => Ok(KvFormat::Int8),
            KvType::Int4 | KvType::Fp8 => Err(KvTypeError::NotOnGpu { kv }),
        }
    }
}

impl KvFormat {
    /// The same cache as a [`KvType`] (the CPU cache of that type holds the same values).
    pub fn kv_type(self) -> KvType {
        match self {
            KvFormat::F32 => KvType::F32,
            KvFormat::F16 => KvType::F16,
            KvFormat::Int8 => KvType::Int8,
        }
    }

    pub fn name(self) -> &'static str {
        self.kv_type().name()
    }

    /// `KV_FORMAT` in the shaders.
    pub fn code(self) -> u32 {
        match self {
            KvFormat::F32 => 0,
            KvFormat::F16 => 1,
            KvFormat::Int8 => 2,
        }
    }

    pub fn values_per_word(self) -> usize {
        match self {
            KvFormat::F32 => 1,
            KvFormat::F16 => 2,
            KvFormat::Int8 => 4,
        }
    }

    /// u32 words of the keys region of one layer's cache (= where the values start).
    pub fn region_words(self, capacity: usize, kv_dim: usize) -> usize {
        capacity * kv_dim / self.values_per_word()
    }

    /// Bytes of one layer's cache buffer: keys, values, and for int8 a scale per (position, kv
    /// head) for each (layout in `shaders/kv_write.wgsl`).
    pub fn layer_cache_bytes(self, capacity: usize, n_kv_heads: usize, head_dim: usize) -> u64 {
        let scales = if self == KvFormat::Int8 { 2 * capacity * n_kv_heads } else { 0 };
        (4 * (2 * self.region_words(capacity, n_kv_heads * head_dim) + scales)) as u64
    }
}

/// Encodes one head's values as the cache stores them: the u32 words and the scale (int8 only;
/// 1.0 otherwise). `values.len()` must be a multiple of [`KvFormat::values_per_word`].
pub fn kv_store_cpu(format: KvFormat, values: &[f32]) -> (Vec<u32>, f32) {
    match format {
        KvFormat::F32 => (values.iter().map(|v| v.to_bits()).collect(), 1.0),
        KvFormat::F16 => (
            values
                .chunks_exact(2)
                .map(|p| u32::from(f16::from_f32(p[0]).to_bits()) | u32::from(f16::from_f32(p[1]).to_bits()) << 16)
                .collect(),
            1.0,
        ),
        KvFormat::Int8 => {
            // The CPU cache's int8 rule, packed four codes to a word as the shader does.
            let mut codes = vec![0i8; values.len()];
            let scale = int8_encode(values, &mut codes);
            let words = codes
                .chunks_exact(4)
                .map(|c| c.iter().enumerate().fold(0u32, |w, (b, &code)| w | u32::from(code as u8) << (8 * b)))
                .collect();
            (words, scale)
        }
    }
}

/// Decodes words made by [`kv_store_cpu`] (or the GPU) back to f32 values.
pub fn kv_load_cpu(format: KvFormat, words: &[u32], scale: f32) -> Vec<f32> {
    match format {
        KvFormat::F32 => words.iter().map(|&w| f32::from_bits(w)).collect(),
        KvFormat::F16 => words
            .iter()
            .flat_map(|&w| [f16::from_bits(w as u16).to_f32(), f16::from_bits((w >> 16) as u16).to_f32()])
            .collect(),
        KvFormat::Int8 => {
            words.iter().flat_map(|&w| (0..4).map(move |b| f32::from((w >> (8 * b)) as u8 as i8) * scale)).collect()
        }
    }
}

/// Causal GQA attention exactly as the loop in `model::forward`: `q` is `[n, n_heads·head_dim]`
/// (rows at positions `pos0..pos0+n`), the caches `[positions, n_kv_heads·head_dim]` in f32.
#[allow(clippy::too_many_arguments)]
pub fn attention_cpu(
    q: &[f32],
    key_cache: &[f32],
    value_cache: &[f32],
    n: usize,
    pos0: usize,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
) -> Vec<f32> {
    let (q_dim, kv_dim, kv_mul) = (n_heads * head_dim, n_kv_heads * head_dim, n_heads / n_kv_heads);
    let scale = 1.0 / (head_dim as f32).sqrt();
    let mut out = vec![0f32; n * q_dim];
    for r in 0..n {
        let len = pos0 + r + 1;
        for h in 0..n_heads {
            let qh = &q[r * q_dim + h * head_dim..][..head_dim];
            let kv_off = (h / kv_mul) * head_dim;
            let mut att: Vec<f32> =
                (0..len).map(|t| dot(qh, &key_cache[t * kv_dim + kv_off..][..head_dim]) * scale).collect();
            softmax(&mut att);
            let o = &mut out[r * q_dim + h * head_dim..][..head_dim];
            for (t, &a) in att.iter().enumerate() {
                for (oi, &vi) in o.iter_mut().zip(&value_cache[t * kv_dim + kv_off..][..head_dim]) {
                    *oi += a * vi;
                }
            }
        }
    }
    out
}

/// `gate = silu(gate) · up`, as in `model::forward`.
pub fn swiglu_cpu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// `x += delta`.
pub fn residual_add_cpu(x: &mut [f32], delta: &[f32]) {
    for (a, &d) in x.iter_mut().zip(delta) {
        *a += d;
    }
}

/// The cos/sin table `rope.wgsl` reads: `[capacity, rope_dim/2, 2]`, each angle computed in f64
/// exactly as [`crate::model::rope`] does.
pub fn rope_table(capacity: usize, rope_dim: usize, theta: f32) -> Vec<f32> {
    let mut t = Vec::with_capacity(capacity * rope_dim);
    for pos in 0..capacity {
        for i in (0..rope_dim).step_by(2) {
            let freq = f64::from(theta).powf(-(i as f64) / rope_dim as f64);
            let (sin, cos) = (pos as f64 * freq).sin_cos();
            t.push(cos as f32);
            t.push(sin as f32);
        }
    }
    t
}

/// Workgroups for `threads` threads of [`WG`], split over y beyond the per-dimension limit
/// (the shaders rebuild the index from `num_workgroups`).
pub fn grid(threads: u64) -> (u32, u32) {
    let groups = threads.div_ceil(u64::from(WG)).max(1);
    let max_x = 65_535u64;
    if groups <= max_x {
        (groups as u32, 1)
    } else {
        (max_x as u32, groups.div_ceil(max_x) as u32)
    }
}

/// A model's shapes, which the pipelines are specialised for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shapes {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rope_dim: usize,
    pub vocab: usize,
    pub capacity: usize,
    pub eps: f32,
    pub kv: KvFormat,
}

/// Compiled pipelines of every forward kernel for one [`Shapes`].
pub struct Pipelines {
    pub rmsnorm: wgpu::ComputePipeline,
    pub rope: wgpu::ComputePipeline,
    pub kv_write: wgpu::ComputePipeline,
    pub attention: wgpu::ComputePipeline,
    pub swiglu: wgpu::ComputePipeline,
    pub residual_add: wgpu::ComputePipeline,
    pub sample: wgpu::ComputePipeline,
}

impl Pipelines {
    pub async fn new(gpu: &GpuContext, s: &Shapes) -> Result<Pipelines, GpuError> {
        let f = |v: usize| v as f64;
        let heads = [(N_HEADS, f(s.n_heads)), (N_KV_HEADS, f(s.n_kv_heads)), (HEAD_DIM, f(s.head_dim))];
        let cache = [heads[1], heads[2], (CAPACITY, f(s.capacity)), (KV_FORMAT, f64::from(s.kv.code()))];
        Ok(Pipelines {
            rmsnorm: Kernel::RmsNorm.pipeline(gpu, &[(DIM, f(s.dim)), (EPS, f64::from(s.eps))]).await?,
            rope: Kernel::Rope.pipeline(gpu, &[heads[0], heads[1], heads[2], (ROPE_DIM, f(s.rope_dim))]).await?,
            kv_write: Kernel::KvWrite.pipeline(gpu, &cache).await?,
            attention: Kernel::Attention.pipeline(gpu, &[&[heads[0]], &cache[..]].concat()).await?,
            swiglu: Kernel::Elementwise.pipeline(gpu, &[(WIDTH, f(s.hidden_dim)), (OP, 1.0)]).await?,
            residual_add: Kernel::Elementwise.pipeline(gpu, &[(WIDTH, f(s.dim)), (OP, 0.0)]).await?,
            sample: Kernel::Sample.pipeline(gpu, &[(VOCAB, f(s.vocab))]).await?,
        })
    }
}

/// A bind group whose binding `i` is `buffers[i]` (whole buffer).
pub fn bind(
    gpu: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    label: &str,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
        .collect();
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// Records one dispatch in its own compute pass.
pub fn dispatch(
    enc: &mut wgpu::CommandEncoder,
    pipeline: &wgpu::ComputePipeline,
    group: &wgpu::BindGroup,
    (x, y, z): (u32, u32, u32),
) {
    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, group, &[]);
    pass.dispatch_workgroups(x, y, z);
}

/// Dispatch sizes of each kernel for a batch of `n` rows (shared by the model and the tests).
pub mod groups {
    use super::{grid, Shapes};

    pub fn rmsnorm(n: usize) -> (u32, u32, u32) {
        (n as u32, 1, 1)
    }
    pub fn rope(s: &Shapes, n: usize) -> (u32, u32, u32) {
        let (x, y) = grid((n * (s.n_heads + s.n_kv_heads) * (s.rope_dim / 2)) as u64);
        (x, y, 1)
    }
    pub fn kv_write(s: &Shapes, n: usize) -> (u32, u32, u32) {
        ((2 * n * s.n_kv_heads).div_ceil(super::WG as usize) as u32, 1, 1)
    }
    pub fn attention(s: &Shapes, n: usize) -> (u32, u32, u32) {
        (s.n_heads as u32, n as u32, 1)
    }
    pub fn elementwise(width: usize, n: usize) -> (u32, u32, u32) {
        let (x, y) = grid((width * n) as u64);
        (x, y, 1)
    }
}

/// A storage buffer initialised with `contents` (at least 4 bytes: WebGPU has no empty bindings).
pub fn storage_init(gpu: &GpuContext, label: &str, contents: &[u8]) -> wgpu::Buffer {
    let padded;
    let contents = if contents.len() < 4 {
        padded = [contents, &[0u8; 4][contents.len()..]].concat();
        &padded[..]
    } else {
        contents
    };
    gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    })
}

/// Runs one kernel once on fresh buffers (binding 0 = `step`, binding `i + 1` = `buffers[i]`)
/// and returns every buffer's bytes afterwards. For the kernel tests.
pub async fn run_once(
    gpu: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    step: Step,
    buffers: &[&[u8]],
    groups: (u32, u32, u32),
) -> Result<Vec<Vec<u8>>, GpuError> {
    let (bufs, reads) = gpu
        .scoped("kernel test dispatch", || {
            let uniform = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("step"),
                contents: bytemuck::bytes_of(&step),
                usage: wgpu::BufferUsages::UNIFORM,
            });
            let bufs: Vec<wgpu::Buffer> = buffers.iter().map(|b| storage_init(gpu, "kernel test", b)).collect();
            let mut all = vec![&uniform];
            all.extend(bufs.iter());
            let group = bind(gpu, pipeline, "kernel test", &all);
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            dispatch(&mut enc, pipeline, &group, groups);
            let reads: Vec<wgpu::Buffer> = bufs
                .iter()
                .map(|b| {
                    let r = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("kernel test readback"),
                        size: b.size(),
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    });
                    enc.copy_buffer_to_buffer(b, 0, &r, 0, b.size());
                    r
                })
                .collect();
            gpu.queue.submit([enc.finish()]);
            (bufs, reads)
        })
        .await?;
    let mut out = Vec::with_capacity(reads.len());
    for (r, b) in reads.iter().zip(buffers) {
        let mut bytes = gpu.read_buffer(r).await?;
        bytes.truncate(b.len());
        out.push(bytes);
    }
    drop(bufs);
    Ok(out)
}
