//! W8A8 on the GPU with integer dot products (`shaders/matmul_int8_dot4.wgsl`): `int8-sym-channel`
//! weights times per-token INT8 activation codes quantized on the GPU, summed in i32 four products
//! at a time, scaled once per output. The CPU twin is the CPU integer path
//! (`model::int_path`, `--matmul int8 --activations int8-token`): [`TokenCodes::per_token`] for the
//! codes and `Σq_x·q_w` in i32 times `s_x·s_w`.
//!
//! # Why the GPU's numbers equal the CPU's bit for bit
//!
//! - **Codes and token scales.** `max|x|` is exact in any order. The CPU's `s = max|x| / 127` and
//!   `1/s` are IEEE divisions (correctly rounded), but WGSL only promises 2.5 ulp for `/`, so the
//!   shader divides mantissas as integers and rounds with the remainder ([`div_rn`], whose Rust
//!   twin is tested equal to IEEE division); `x · (1/s)` is a multiply, which WGSL (and Vulkan's
//!   `OpFMul`) round correctly, and WGSL's `round` is half-to-even like `round_ties_even`. One
//!   exception, left as it is: a row with `0 < max|x| < 127·2⁻¹²⁶ ≈ 1.5e-36` has a subnormal
//!   scale, which the shader takes from WGSL's own `/` (and an adapter may flush to zero).
//! - **Integer sums.** Every product and partial sum is an exact integer, so any order (a thread
//!   tree, four products per `dot4I8Packed`) gives the CPU's `i32`, as long as it cannot
//!   overflow: `|Σ| ≤ 127²·K`, so K is limited to [`MAX_COLS`].
//! - **Epilogue.** `f32(Σ) · (s_x · s_w)`: the CPU's operations in its order, each correctly
//!   rounded (the conversion is exact below 2²⁴, i.e. for K ≤ 1040 always; above, both sides round
//!   the same integer to nearest). There is no add, so no fused multiply-add can change it.
//!
//! # Variants ([`IntDotVariant`])
//!
//! `dot4I8Packed` is WGSL's `packed_4x8_integer_dot_product` language extension; naga (wgpu 30)
//! implements it everywhere (SPIR-V `OpSDot` where the Vulkan device has integer dot products, an
//! exact polyfill elsewhere) and browsers list it in `navigator.gpu.wgslLanguageFeatures`
//! (Chromium from 123). Where it is missing, the unpacked variant sign-extends the bytes and
//! multiplies in i32: the same sums. The variant is a separate module (a shader naming the builtin
//! does not compile without the extension), chosen from [`GpuContext::wgsl_features`].

use std::sync::atomic::{AtomicU32, Ordering};

use wgpu::util::DeviceExt;

use super::kernel::{entry, overrides, Kernel};
use super::{GpuContext, GpuError};
use crate::formats::int::IntTensor;
use crate::formats::{Granularity, Mapping, QuantizedTensor};
use crate::model::Matrix;

/// How the four-product integer dots are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntDotVariant {
    /// WGSL's `dot4I8Packed` (`shaders/int8_dot4_packed.wgsl`).
    Dot4I8Packed,
    /// Sign-extended bytes, four i32 multiply-adds (`shaders/int8_dot4_unpacked.wgsl`).
    Unpacked,
}

impl IntDotVariant {
    pub const ALL: [IntDotVariant; 2] = [IntDotVariant::Dot4I8Packed, IntDotVariant::Unpacked];

    pub fn name(self) -> &'static str {
        match self {
            IntDotVariant::Dot4I8Packed => "dot4I8Packed",
            IntDotVariant::Unpacked => "unpacked i32",
        }
    }

    fn kernel(self) -> Kernel {
        match self {
            IntDotVariant::Dot4I8Packed => Kernel::MatmulInt8Dot4Packed,
            IntDotVariant::Unpacked => Kernel::MatmulInt8Dot4Unpacked,
        }
    }

    /// `dot4I8Packed` where the shader compiler has the extension, else the unpacked dots.
    pub fn default_for(gpu: &GpuContext) -> IntDotVariant {
        if gpu.wgsl_features.contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct) {
            IntDotVariant::Dot4I8Packed
        } else {
            IntDotVariant::Unpacked
        }
    }

    /// The variants `gpu` can compile.
    pub fn supported(gpu: &GpuContext) -> Vec<IntDotVariant> {
        IntDotVariant::ALL.into_iter().filter(|v| v.check(gpu).is_ok()).collect()
    }

    /// A clear error for `dot4I8Packed` where the extension is missing.
    pub fn check(self, gpu: &GpuContext) -> Result<(), GpuError> {
        if self == IntDotVariant::Dot4I8Packed && IntDotVariant::default_for(gpu) != self {
            return Err(GpuError::MissingFeature {
                what: "integer dot products".to_string(),
                adapter: gpu.adapter.label(),
                feature: "WGSL packed_4x8_integer_dot_product".to_string(),
                hint: "use the unpacked variant".to_string(),
            });
        }
        Ok(())
    }
}

/// How one-token products (the gemv entry point) split the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Int8Gemv {
    /// Each invocation streams `rows` (1..=4) consecutive rows, sharing each activation load; no
    /// barrier. For CPU adapters (lavapipe, SwiftShader).
    RowRun { rows: u32 },
    /// `threads` (a power of two ≤ 64) per row, their i32 sums added in workgroup memory. For GPUs.
    Threads { threads: u32 },
}

impl Int8Gemv {
    /// `RowRun { rows: 4 }` on CPU adapters, `Threads { threads: 32 }` elsewhere.
    pub fn default_for(gpu: &GpuContext) -> Int8Gemv {
        if gpu.adapter.is_fallback {
            Int8Gemv::RowRun { rows: 4 }
        } else {
            Int8Gemv::Threads { threads: 32 }
        }
    }

    /// (ROW_THREADS, GEMV_ROWS), or the error for an invalid setting.
    fn overrides(self, name: &str) -> Result<(u32, u32), GpuError> {
        match self {
            Int8Gemv::RowRun { rows } if (1..=4).contains(&rows) => Ok((1, rows)),
            Int8Gemv::Threads { threads } if threads.is_power_of_two() && threads <= WG => Ok((threads, 1)),
            _ => Err(refuse(name, format!("{self:?}: 1..=4 rows per invocation, or a power of two ≤ {WG} threads"))),
        }
    }
}

/// The longest row whose i32 sum cannot overflow: 127²·K ≤ 2³¹ − 1.
pub const MAX_COLS: usize = (i32::MAX / (127 * 127)) as usize;

/// Threads per workgroup (`WG` in the shader).
const WG: u32 = 64;
/// Tokens per GEMM invocation (`TOKENS` in the shader).
const TOKENS: u32 = 4;
/// The most workgroups along one dispatch dimension.
const MAX_GROUPS: u32 = 65_535;

/// `a / b` rounded to nearest, ties to even, for positive normal `a`, `b` with a normal quotient:
/// the CPU twin of the shader's `div_rn` (same integer steps), tested equal to IEEE division.
pub fn div_rn(a: f32, b: f32) -> f32 {
    let (ab, bb) = (a.to_bits(), b.to_bits());
    let mut e = (ab >> 23) as i32 - (bb >> 23) as i32;
    let mut r = (ab & 0x7F_FFFF) | 0x80_0000;
    let mb = (bb & 0x7F_FFFF) | 0x80_0000;
    if r < mb {
        r <<= 1;
        e -= 1;
    }
    let mut q = 0u32;
    for _ in 0..24 {
        q <<= 1;
        if r >= mb {
            r -= mb;
            q |= 1;
        }
        r <<= 1;
    }
    if r > mb || (r == mb && q & 1 == 1) {
        q += 1;
    }
    if q == 0x100_0000 {
        q = 0x80_0000;
        e += 1;
    }
    f32::from_bits(((e + 127) as u32) << 23 | (q & 0x7F_FFFF))
}

/// The CPU twin of the shaders' `idot4`: `Σ_j a_j·b_j` over the four signed bytes of each word.
pub fn idot4(a: u32, b: u32) -> i32 {
    a.to_le_bytes().iter().zip(b.to_le_bytes()).map(|(&x, y)| i32::from(x as i8) * i32::from(y as i8)).sum()
}

/// Signed codes packed four per word (byte j of word i = code 4i + j), zero-padded to whole words.
pub fn pack_codes(codes: impl ExactSizeIterator<Item = i8>) -> Vec<u32> {
    let mut words = vec![0u32; codes.len().div_ceil(4)];
    for (k, c) in codes.enumerate() {
        words[k / 4] |= u32::from(c as u8) << (8 * (k % 4));
    }
    words
}

/// `MatmulParams`-like uniform of shaders/matmul_int8_dot4.wgsl (`Int8Params`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    n: u32,
    words: u32,
    w_scales: u32,
    a_scales: u32,
    _pad: [u32; 2],
}

/// The uniform of a product of `n` tokens.
fn params(rows: u32, cols: u32, words: u32, n: u32) -> Params {
    Params { rows, cols, n, words, w_scales: rows * words, a_scales: n * words, _pad: [0; 2] }
}

struct Pipelines {
    quantize: wgpu::ComputePipeline,
    gemv: wgpu::ComputePipeline,
    gemm: wgpu::ComputePipeline,
}

/// An `int8-sym-channel` matrix resident on the GPU for W8A8 products.
pub struct GpuInt8Matrix {
    name: String,
    rows: u32,
    cols: u32,
    words: u32,
    /// Codes then scales (binding 1).
    weights: wgpu::Buffer,
    bytes: u64,
    variant: IntDotVariant,
    /// Rows one gemv workgroup computes.
    gemv_rows_per_group: u32,
    pipelines: Pipelines,
}

/// The int8-sym-channel tensor of `m`, if that is what it is.
pub fn int8_channel(m: &Matrix) -> Option<&IntTensor> {
    match m {
        Matrix::Quantized(QuantizedTensor::Int(t))
            if t.bits == 8
                && t.scheme.mapping == Mapping::Symmetric
                && t.scheme.granularity == Granularity::Channel =>
        {
            Some(t)
        }
        _ => None,
    }
}

fn refuse(what: &str, message: String) -> GpuError {
    GpuError::Validation { what: what.to_string(), message }
}

impl GpuInt8Matrix {
    /// Uploads `m`, which must be `int8-sym-channel` with at most [`MAX_COLS`] columns, and
    /// compiles (or reuses) the pipelines of `variant`, with the adapter's default GEMV.
    pub async fn upload(
        gpu: &GpuContext,
        name: &str,
        m: &Matrix,
        variant: IntDotVariant,
    ) -> Result<GpuInt8Matrix, GpuError> {
        Self::upload_with(gpu, name, m, variant, Int8Gemv::default_for(gpu)).await
    }

    /// [`Self::upload`] with an explicit GEMV split (to test and benchmark each on one adapter).
    pub async fn upload_with(
        gpu: &GpuContext,
        name: &str,
        m: &Matrix,
        variant: IntDotVariant,
        gemv: Int8Gemv,
    ) -> Result<GpuInt8Matrix, GpuError> {
        variant.check(gpu)?;
        let (row_threads, gemv_rows) = gemv.overrides(name)?;
        let t = int8_channel(m).ok_or_else(|| {
            refuse(name, "integer W8A8 products need int8-sym-channel weights (8-bit, symmetric, per row)".into())
        })?;
        let (rows, cols) = (t.shape.rows, t.shape.cols);
        if cols > MAX_COLS {
            return Err(refuse(
                name,
                format!("rows of {cols} values could overflow the i32 sums (at most {MAX_COLS})"),
            ));
        }
        let words = cols.div_ceil(4);
        let mut data = Vec::with_capacity(rows * (words + 1));
        for row in t.packed.chunks_exact(cols) {
            // Stored offset binary (q + 128): flipping the top bit gives the two's complement byte.
            data.extend(pack_codes(row.iter().map(|&c| (c ^ 0x80) as i8)));
        }
        data.extend(t.scales.iter().map(|s| s.to_bits()));
        let bytes = 4 * data.len() as u64;
        gpu.check_binding_size(name, bytes)?;
        let to_u32 = |v: usize| u32::try_from(v).map_err(|_| refuse(name, format!("{v} does not fit 32-bit indices")));
        let (rows, cols, words) = (to_u32(rows)?, to_u32(cols)?, to_u32(words)?);
        if rows.div_ceil(WG * gemv_rows / row_threads) > MAX_GROUPS || rows.div_ceil(WG) > MAX_GROUPS {
            return Err(refuse(name, format!("{rows} rows exceed one dispatch dimension")));
        }
        let kernel = variant.kernel();
        let pipelines = Pipelines {
            quantize: kernel.pipeline_at(gpu, entry::QUANTIZE_TOKENS, &[]).await?,
            gemv: kernel
                .pipeline_at(
                    gpu,
                    entry::GEMV,
                    &[(overrides::ROW_THREADS, f64::from(row_threads)), (overrides::GEMV_ROWS, f64::from(gemv_rows))],
                )
                .await?,
            gemm: kernel.pipeline_at(gpu, entry::GEMM, &[]).await?,
        };
        let weights = gpu
            .scoped(&format!("uploading {name}"), || {
                gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(name),
                    contents: bytemuck::cast_slice(&data),
                    usage: wgpu::BufferUsages::STORAGE,
                })
            })
            .await?;
        let gemv_rows_per_group = WG * gemv_rows / row_threads;
        Ok(GpuInt8Matrix {
            name: name.to_string(),
            rows,
            cols,
            words,
            weights,
            bytes,
            variant,
            gemv_rows_per_group,
            pipelines,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows as usize
    }

    pub fn cols(&self) -> usize {
        self.cols as usize
    }

    /// Bytes of the weight buffer (codes and scales).
    pub fn gpu_bytes(&self) -> u64 {
        self.bytes
    }

    pub fn variant(&self) -> IntDotVariant {
        self.variant
    }

    /// What runs, e.g. `"INT8 W8A8 (dot4I8Packed, i32 sums)"`.
    pub fn kernel_label(&self) -> String {
        format!("INT8 W8A8 ({}, i32 sums)", self.variant.name())
    }

    /// Bytes of the activation buffer (codes and token scales) for `n` tokens.
    pub fn acts_bytes(&self, n: usize) -> u64 {
        4 * (n as u64 * u64::from(self.words) + n as u64)
    }

    /// Binds the product to fixed buffers for recording with [`BoundInt8::encode`]: `x` (f32,
    /// `n × cols`) quantized per token into `acts` ([`Self::acts_bytes`]), then the integer GEMV
    /// (`n = 1`) or GEMM into `y` (`n × rows` f32). `n` is the token count the uniform starts with.
    pub fn bind(&self, gpu: &GpuContext, x: &wgpu::Buffer, acts: &wgpu::Buffer, y: &wgpu::Buffer, n: u32) -> BoundInt8 {
        let params = params(self.rows, self.cols, self.words, n);
        let uniform = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("int8 params"),
            contents: bytemuck::bytes_of(&params),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let group = |pipeline: &wgpu::ComputePipeline, entries: &[(u32, &wgpu::Buffer)]| {
            let entries: Vec<_> = entries
                .iter()
                .map(|&(binding, b)| wgpu::BindGroupEntry { binding, resource: b.as_entire_binding() })
                .collect();
            gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&self.name),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            })
        };
        let product = [(0, &uniform), (1, &self.weights), (3, acts), (4, y)];
        BoundInt8 {
            name: self.name.clone(),
            rows: self.rows,
            cols: self.cols,
            words: self.words,
            gemv_rows_per_group: self.gemv_rows_per_group,
            groups: [
                group(&self.pipelines.quantize, &[(0, &uniform), (2, x), (3, acts)]),
                group(&self.pipelines.gemv, &product),
                group(&self.pipelines.gemm, &product),
            ],
            pipelines: [self.pipelines.quantize.clone(), self.pipelines.gemv.clone(), self.pipelines.gemm.clone()],
            sizes: [x.size(), acts.size(), y.size()],
            uniform,
            n: AtomicU32::new(n),
        }
    }

    /// Records the product once ([`Self::bind`] for this call alone).
    pub fn encode(
        &self,
        gpu: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        x: &wgpu::Buffer,
        n: usize,
        acts: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<(), GpuError> {
        let n = self.check_n(n)?;
        self.bind(gpu, x, acts, y, n).encode(gpu, enc, n)
    }

    fn check_n(&self, n: usize) -> Result<u32, GpuError> {
        u32::try_from(n)
            .ok()
            .filter(|&n| (1..=MAX_GROUPS).contains(&n))
            .ok_or_else(|| refuse(&self.name, format!("{n} tokens: one product takes 1..={MAX_GROUPS}")))
    }

    /// One-shot [`Self::encode`] (tests, benchmarks): `x` is `n × cols`; returns `n × rows`
    /// outputs and the activation codes and token scales the GPU made.
    pub async fn product(&self, gpu: &GpuContext, x: &[f32], n: usize) -> Result<Int8Product, GpuError> {
        if x.len() != n * self.cols() {
            return Err(refuse(&self.name, format!("{} activations for {n} tokens of {} values", x.len(), self.cols)));
        }
        self.check_n(n)?;
        let (acts_bytes, y_bytes) = (self.acts_bytes(n), 4 * (n * self.rows()) as u64);
        gpu.check_binding_size("int8 activations", acts_bytes.max(4 * x.len() as u64))?;
        let storage = |label: &str, size: u64| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            })
        };
        let readback = |label: &str, size: u64| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let (acts_back, y_back) = gpu
            .scoped(&format!("W8A8 product {}", self.name), || {
                let xb = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("int8 x"),
                    contents: bytemuck::cast_slice(x),
                    usage: wgpu::BufferUsages::STORAGE,
                });
                let (acts, y) = (storage("int8 acts", acts_bytes), storage("int8 y", y_bytes));
                let (acts_back, y_back) = (readback("acts back", acts_bytes), readback("y back", y_bytes));
                let mut enc = gpu.device.create_command_encoder(&Default::default());
                let recorded = self.encode(gpu, &mut enc, &xb, n, &acts, &y);
                enc.copy_buffer_to_buffer(&acts, 0, &acts_back, 0, acts_bytes);
                enc.copy_buffer_to_buffer(&y, 0, &y_back, 0, y_bytes);
                gpu.queue.submit([enc.finish()]);
                recorded.map(|()| (acts_back, y_back))
            })
            .await??;
        let acts: Vec<u32> = bytemuck::pod_collect_to_vec(&gpu.read_buffer(&acts_back).await?);
        let y = bytemuck::pod_collect_to_vec(&gpu.read_buffer(&y_back).await?);
        let words = self.words as usize;
        let codes = acts[..n * words]
            .chunks_exact(words)
            .flat_map(|row| row.iter().flat_map(|w| w.to_le_bytes()).take(self.cols()).map(|b| b as i8))
            .collect();
        let scales = acts[n * words..].iter().map(|&b| f32::from_bits(b)).collect();
        Ok(Int8Product { y, codes, scales })
    }
}

/// What [`GpuInt8Matrix::product`] read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Product {
    /// `n × rows` outputs.
    pub y: Vec<f32>,
    /// `n × cols` activation codes made by `quantize_tokens`.
    pub codes: Vec<i8>,
    /// One scale per token.
    pub scales: Vec<f32>,
}

/// A [`GpuInt8Matrix`]'s product bound to fixed buffers ([`GpuInt8Matrix::bind`]). As with
/// `BoundMatmul`, a new `n` rewrites the uniform with `queue.write_buffer`, which takes effect at
/// the next submit: within one submission a bound product runs with one `n`.
pub struct BoundInt8 {
    name: String,
    rows: u32,
    cols: u32,
    words: u32,
    gemv_rows_per_group: u32,
    /// quantize_tokens, gemv, gemm.
    pipelines: [wgpu::ComputePipeline; 3],
    groups: [wgpu::BindGroup; 3],
    /// Bytes of x, acts and y.
    sizes: [u64; 3],
    uniform: wgpu::Buffer,
    n: AtomicU32,
}

impl BoundInt8 {
    /// Records the quantization of `n` token rows and their product; a buffer too small for `n`
    /// is an error, not a GPU fault.
    pub fn encode(&self, gpu: &GpuContext, enc: &mut wgpu::CommandEncoder, n: u32) -> Result<(), GpuError> {
        let (nn, words) = (u64::from(n), u64::from(self.words));
        let needed = [4 * nn * u64::from(self.cols), 4 * (nn * words + nn), 4 * nn * u64::from(self.rows)];
        for ((what, have), need) in ["activations", "activation codes", "outputs"].iter().zip(self.sizes).zip(needed) {
            if n == 0 || n > MAX_GROUPS || have < need {
                return Err(refuse(
                    &self.name,
                    format!(
                        "{n} tokens: the {what} buffer holds {have} bytes, {need} needed (1..={MAX_GROUPS} tokens)"
                    ),
                ));
            }
        }
        if self.n.swap(n, Ordering::Relaxed) != n {
            let params = params(self.rows, self.cols, self.words, n);
            gpu.queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&params));
        }
        let (product, groups) = if n == 1 {
            (1, (self.rows.div_ceil(self.gemv_rows_per_group), 1))
        } else {
            (2, (self.rows.div_ceil(WG), n.div_ceil(TOKENS)))
        };
        let mut pass =
            enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(&self.name), timestamp_writes: None });
        pass.set_pipeline(&self.pipelines[0]);
        pass.set_bind_group(0, &self.groups[0], &[]);
        pass.dispatch_workgroups(n, 1, 1);
        pass.set_pipeline(&self.pipelines[product]);
        pass.set_bind_group(0, &self.groups[product], &[]);
        pass.dispatch_workgroups(groups.0, groups.1, 1);
        Ok(())
    }
}
