//! `--device cpu|gpu|auto` for `quantlab generate` and `quantlab eval`: where the forward runs,
//! said out loud on stderr.
//!
//! - `cpu`: the CPU reference forward.
//! - `gpu`: the GPU forward ([`crate::gpu::forward::GpuModel`]); no adapter, or a model that
//!   does not fit, is an error.
//! - `auto` (default): the GPU when an adapter exists, the model fits and a short decode probe
//!   ([`crate::gpu::forward::probe`]) finds it faster than the CPU; otherwise the CPU, with the
//!   reason (e.g. "GPU adapter 'llvmpipe …' (Vulkan, software fallback, shader-f16) decodes
//!   G tok/s vs CPU C tok/s → using the CPU"). The adapter's name is always printed.
//!
//! Built without the `gpu` feature, `auto` is the CPU and `gpu` an error.
//!
//! `--kv-cache f32|f16|int8|int4|fp8` ([`KvType`], rules in [`crate::model::kv_cache`]) picks
//! how the forward stores keys and values. The CPU forward stores all five; the GPU forward
//! f32, f16 and int8 (the same dequantized values as the CPU's). int4 and fp8 therefore run on
//! the CPU: under `auto` without asking for an adapter, and with `--device gpu` they are an error
//! before anything loads.
//!
//! `--activations f32|f16|TYPE-GRANULARITY` ([`ActivationsArg`]) picks what the weight matmuls'
//! activations are. f16 is the GPU forward's (weights and activations rounded to f16, f16
//! products summed in f32; needs the adapter's shader-f16): an error with `--device cpu` (or with
//! a CPU-only KV cache), the GPU required under `auto`, and an adapter without shader-f16 an
//! error naming it. `int8-token`, `fp8-tensor`, ... ([`crate::model::ActQuant`]) quantize every
//! linear layer's input on the CPU forward (simulated): like an int4 KV cache, the CPU under
//! `auto`, an error with `--device gpu` — except `int8-token`, which `--device gpu` runs as
//! integer W8A8 products (`gpu::int8_dot4`: the block matrices must be int8-sym-channel; the same
//! arithmetic as the CPU's `--activations int8-token --matmul int8`); `llm-int8` takes
//! `--llm-int8-threshold`. `--matmul
//! exact|int8` ([`super::matmul`]) picks the CPU forward's product arithmetic (int8: the CPU under
//! `auto`, an error with `--device gpu`). [`GpuArgs`] bundles these flags.

use std::io::Write;
use std::sync::Arc;

use super::matmul::{MatmulArg, MATMUL_HELP};
use super::CliError;
use crate::model::{ActQuant, KvType, Model};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    /// The CPU reference forward.
    Cpu,
    /// The GPU forward (error if there is no adapter or the model does not fit).
    Gpu,
    /// The GPU if an adapter exists and a short decode probe finds it faster than the CPU.
    Auto,
}

/// `--kv-cache` takes [`KvType`]'s names (and aliases): clap lists and matches them from
/// [`KvType::ALL`], so the names live in one place.
impl clap::ValueEnum for KvType {
    fn value_variants<'a>() -> &'a [Self] {
        &KvType::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).aliases(self.aliases().iter().copied()))
    }
}

/// `--activations`: what the GPU forward's weight matmuls compute in (f32, f16), or the
/// quantization of every linear layer's input on the CPU forward ([`ActQuant`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ActivationsArg {
    /// f32 activations and products, as the CPU reference.
    #[default]
    F32,
    /// Weights and activations rounded to f16, f16 products summed in f32 (needs shader-f16).
    F16,
    /// Every linear input quantized and dequantized on the CPU forward (`crate::model::act_quant`).
    Quant(ActQuant),
}

/// Every `--activations` value, in the order `--help` lists them.
const ACTIVATIONS_ALL: [ActivationsArg; 2 + ActQuant::ALL.len()] = {
    let mut all = [ActivationsArg::F32; 2 + ActQuant::ALL.len()];
    all[1] = ActivationsArg::F16;
    let mut i = 0;
    while i < ActQuant::ALL.len() {
        all[2 + i] = ActivationsArg::Quant(ActQuant::ALL[i]);
        i += 1;
    }
    all
};

impl clap::ValueEnum for ActivationsArg {
    fn value_variants<'a>() -> &'a [Self] {
        &ACTIVATIONS_ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

impl ActivationsArg {
    pub fn name(self) -> &'static str {
        match self {
            ActivationsArg::F32 => "f32",
            ActivationsArg::F16 => "f16",
            ActivationsArg::Quant(q) => q.name(),
        }
    }

    /// The activation quantization of the CPU forward, if any.
    pub fn quant(self) -> Option<ActQuant> {
        match self {
            ActivationsArg::Quant(q) => Some(q),
            ActivationsArg::F32 | ActivationsArg::F16 => None,
        }
    }

    /// The GPU matmul precision (f32 too for int8-token, whose integer products
    /// `gpu::forward::LayerInputs` picks).
    #[cfg(feature = "gpu")]
    pub fn precision(self) -> crate::gpu::matmul::ActivationPrecision {
        use crate::gpu::matmul::ActivationPrecision;
        match self {
            ActivationsArg::F32 | ActivationsArg::Quant(_) => ActivationPrecision::F32,
            ActivationsArg::F16 => ActivationPrecision::F16,
        }
    }
}

/// The `--activations` help text (shared by `generate` and `eval`).
pub const ACTIVATIONS_HELP: &str = "What the weight matmuls' activations are. f32: as the CPU reference. f16 (GPU forward): each weight and activation rounded to f16, each product an f16 multiply, products summed in f32 (values past 65504 become inf); needs an adapter with the shader-f16 feature: an error with --device cpu or without shader-f16, and --device auto then requires an adapter and skips the probe. TYPE-GRANULARITY (CPU forward): every linear layer's input (attn_q/k/v, attn_output, ffn_gate/up, ffn_down; the LM head only with --act-head quantized) quantized and dequantized before the product, symmetric absmax: TYPE int8 (code = round(x / scale) clamped to ±127), int4 (±7) or fp8 (E4M3, ±448); GRANULARITY token (scale = max|x| / 127 over each position's row: per-token dynamic), tensor (one scale over every row the product reads at once: per-tensor dynamic) or static (one scale per layer input from a range calibrated on --calib text by --act-range; eval only). Rounding is to nearest, ties to even. llm-int8 (CPU forward): LLM.int8() as bitsandbytes runs it: every layer matrix re-quantized int8 per output row (absmax / 127), each input row int8 per token with its absmax taken over the values below --llm-int8-threshold (default 6.0), and the columns holding a value at or above it anywhere in the rows a product reads at once (one position, or a batched block of 64) multiplied in f32; the LM head stays as it is";

/// The forward's options, shared by `generate` and `eval`.
#[derive(Debug, Clone, Copy, Default, PartialEq, clap::Args)]
pub struct GpuArgs {
    /// KV cache type: f32, f16, int8, int4 or fp8 (int4/fp8 run on the CPU; --help for the rules).
    #[arg(long = "kv-cache", value_enum, default_value = "f32", value_name = "KV", long_help = KV_CACHE_HELP)]
    pub kv_cache: KvType,
    /// Activations of the matmuls: f32, f16 (GPU, shader-f16) or quantized on the CPU: int8|int4|fp8 with -token|-tensor|-static (--help for the rules).
    #[arg(long, value_enum, default_value = "f32", value_name = "ACT", long_help = ACTIVATIONS_HELP)]
    pub activations: ActivationsArg,
    /// LLM.int8()'s outlier threshold with --activations llm-int8 (default 6.0; inf: no outlier columns).
    #[arg(long, value_name = "T")]
    pub llm_int8_threshold: Option<f32>,
    /// How the CPU forward's weight products run: exact (f32, the reference) or int8 (integer dot products where a kernel exists; --help).
    #[arg(long, value_enum, default_value = "exact", value_name = "PATH", long_help = MATMUL_HELP)]
    pub matmul: MatmulArg,
}

impl GpuArgs {
    /// Whether only the GPU forward can honour these options (f16 activations).
    pub fn needs_gpu(self) -> bool {
        self.activations == ActivationsArg::F16
    }

    /// Whether only the CPU forward can honour these options (an int4 or fp8 KV cache,
    /// quantized activations).
    pub fn needs_cpu(self) -> bool {
        self.kv_cache.on_gpu().is_err() || self.activations.quant().is_some() || self.matmul == MatmulArg::Int8
    }

    /// Whether `--device gpu` runs these options' quantized activations on the GPU: int8-token
    /// (W8A8 integer products, `gpu::int8_dot4`) with a KV cache the GPU stores.
    pub fn gpu_w8a8(self) -> bool {
        self.activations.quant() == Some(ActQuant::INT8_TOKEN)
            && self.matmul == MatmulArg::Exact
            && self.kv_cache.on_gpu().is_ok()
    }

    /// Whether `device` runs these options on the CPU forward only.
    fn cpu_only(self, device: DeviceArg) -> bool {
        self.needs_cpu() && !(device == DeviceArg::Gpu && self.gpu_w8a8())
    }

    /// The flags that need the CPU, as typed, e.g. `"--kv-cache int4"`.
    fn cpu_flags(self) -> String {
        let mut flags = Vec::new();
        if self.kv_cache.on_gpu().is_err() {
            flags.push(format!("--kv-cache {}", self.kv_cache.name()));
        }
        if let Some(q) = self.activations.quant() {
            flags.push(format!("--activations {q}"));
        }
        if self.matmul == MatmulArg::Int8 {
            flags.push("--matmul int8".into());
        }
        flags.join(" and ")
    }

    /// The flags that need the GPU, as typed, e.g. `"--activations f16"`.
    fn gpu_flags(self) -> String {
        format!("--activations {}", self.activations.name())
    }
}

/// The `--kv-cache` help text (shared by `generate` and `eval`).
pub const KV_CACHE_HELP: &str = "KV cache type, quantized when a position is written and dequantized when \
attention reads it: f32 (4 bytes/value, the reference), f16 (2 bytes/value, round to nearest even), int8 \
(1 byte/value + one f32 scale per position and KV head: code = round(x / scale) clamped to ±127, scale = max|x| / 127 \
over the head's head_dim values), int4 (4 bits/value + one f32 scale per group of 32 values of a head: code = \
round(x / scale) clamped to ±7, scale = max|x| / 7) or fp8 (E4M3 + one f32 scale per position and KV head, \
scale = max|x| / 448). Rounding is to nearest, ties to even. The CPU forward stores all five, the GPU forward \
f32, f16 and int8 (the same values as the CPU): int4 and fp8 run on the CPU (--device auto picks it; --device gpu \
is an error)";

/// Rejects options (KV type, activations) the chosen device cannot honour, before anything is
/// loaded.
pub fn check_kv(device: DeviceArg, opts: GpuArgs) -> Result<(), CliError> {
    if let Some(t) = opts.llm_int8_threshold {
        if opts.activations.quant() != Some(ActQuant::LLM_INT8) {
            return Err(msg("--llm-int8-threshold applies to --activations llm-int8"));
        }
        if t.is_nan() || t <= 0.0 {
            return Err(msg(format!("--llm-int8-threshold {t}: the threshold must be a positive number (or inf)")));
        }
    }
    if opts.needs_gpu() && opts.needs_cpu() {
        return Err(msg(format!(
            "{} needs the GPU forward, but --kv-cache {} runs on the CPU forward only (the GPU stores f32, f16 or \
             int8): use --activations f32, or --kv-cache f32|f16|int8",
            opts.gpu_flags(),
            opts.kv_cache.name()
        )));
    }
    if opts.needs_gpu() && device == DeviceArg::Cpu {
        return Err(msg(format!(
            "{} needs the GPU forward, but --device cpu runs the CPU forward, which computes f32 activations \
             (use --device gpu, or --activations f32)",
            opts.gpu_flags(),
        )));
    }
    if device == DeviceArg::Gpu {
        opts.kv_cache.on_gpu().map_err(|e| msg(format!("--device gpu: {e} (--device cpu or auto)")))?;
        match opts.activations.quant() {
            Some(q) if q != ActQuant::INT8_TOKEN => {
                return Err(msg(format!(
                    "--device gpu: --activations {q} quantizes activations on the CPU forward only (--device cpu or \
                     auto); the GPU forward takes int8-token (integer products on int8-sym-channel weights)"
                )))
            }
            _ => {}
        }
        if opts.matmul == MatmulArg::Int8 {
            return Err(msg("--device gpu: --matmul int8 runs on the CPU forward only (--device cpu or auto)"));
        }
    }
    #[cfg(not(feature = "gpu"))]
    if opts.needs_gpu() {
        return Err(msg(format!(
            "{}: this quantlab was built without GPU support (feature 'gpu'), and the CPU forward computes f32 \
             activations (use --activations f32)",
            opts.gpu_flags(),
        )));
    }
    Ok(())
}

/// Decode steps the `auto` probe times on each backend (after one warm-up step).
pub const PROBE_STEPS: usize = 3;

#[cfg(feature = "gpu")]
pub use crate::gpu::{forward::GpuModel, GpuContext as Gpu};

/// Never constructed: builds without the `gpu` feature have no GPU.
#[cfg(not(feature = "gpu"))]
pub enum Gpu {}
#[cfg(not(feature = "gpu"))]
pub struct GpuModel(std::convert::Infallible);

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

/// Acquires the GPU for `gpu`/`auto` (naming the adapter on `err`); `None` means the CPU.
/// Options only the GPU can honour (`opts.needs_gpu()`) make the GPU required under `auto` too.
#[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
pub fn acquire(device: DeviceArg, opts: GpuArgs, err: &mut dyn Write) -> Result<Option<Arc<Gpu>>, CliError> {
    check_kv(device, opts)?;
    if device == DeviceArg::Cpu {
        let _ = writeln!(err, "device: cpu (--device cpu); {}", kv_note(opts, false));
        return Ok(None);
    }
    if opts.cpu_only(device) {
        let why = format!("{} runs on the CPU forward only", opts.cpu_flags());
        let _ = writeln!(err, "device: cpu ({why}); {}", kv_note(opts, false));
        return Ok(None);
    }
    #[cfg(feature = "gpu")]
    match Gpu::acquire_blocking() {
        Ok(gpu) => {
            let a = &gpu.adapter;
            let _ = writeln!(
                err,
                "GPU adapter: '{}' ({}, {}{}, {})",
                a.name,
                a.backend,
                a.device_type,
                if a.is_fallback { ", software fallback" } else { "" },
                if a.shader_f16 { "shader-f16" } else { "no shader-f16: f32 path" }
            );
            Ok(Some(Arc::new(gpu)))
        }
        Err(e) if device == DeviceArg::Gpu => Err(msg(format!("--device gpu: {e}"))),
        Err(e) if opts.needs_gpu() => Err(msg(format!(
            "{} needs the GPU forward, and there is no usable GPU ({e}); the CPU forward computes f32 activations \
             (use --activations f32)",
            opts.gpu_flags(),
        ))),
        Err(e) => {
            let _ = writeln!(err, "device: cpu ({e}); {}", kv_note(opts, false));
            Ok(None)
        }
    }
    #[cfg(not(feature = "gpu"))]
    match device {
        DeviceArg::Gpu => Err(msg("--device gpu: this quantlab was built without GPU support (feature 'gpu')")),
        _ => {
            let _ = writeln!(err, "device: cpu (built without GPU support); {}", kv_note(opts, false));
            Ok(None)
        }
    }
}

/// Uploads `model` with a KV cache of `capacity` positions and the activations of `opts`; for
/// `auto` (with options the CPU can honour too), probes decode speed and returns `None` (the
/// CPU) when the CPU is faster or the model does not fit the GPU. The line naming the device
/// also names the KV cache format (and f16 activations).
#[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
#[allow(clippy::too_many_arguments)]
pub fn load(
    device: DeviceArg,
    opts: GpuArgs,
    gpu: Option<&Arc<Gpu>>,
    model: &Model,
    capacity: usize,
    threads: usize,
    probe: bool,
    err: &mut dyn Write,
) -> Result<Option<GpuModel>, CliError> {
    let Some(gpu) = gpu.filter(|_| !opts.cpu_only(device)) else { return Ok(None) };
    #[cfg(feature = "gpu")]
    {
        use crate::gpu::forward::probe::probe_decode;
        let kv =
            crate::gpu::forward::KvFormat::try_from(opts.kv_cache).map_err(|e| msg(format!("--device gpu: {e}")))?;
        use crate::gpu::forward::LayerInputs;
        use crate::gpu::int8_dot4::IntDotVariant;
        // `cpu_only` let int8-token activations through only where they run as integer products.
        let inputs = match opts.activations.quant() {
            Some(_) => LayerInputs::Int8Token(IntDotVariant::default_for(gpu)),
            None => LayerInputs::Float,
        };
        let mut g = match GpuModel::new_with_blocking(gpu, model, capacity, kv, opts.activations.precision(), inputs) {
            Ok(g) => g,
            Err(e) if opts.needs_gpu() => return Err(msg(format!("{}: {e}", opts.gpu_flags()))),
            Err(e) if device == DeviceArg::Auto => {
                let _ = writeln!(err, "device: cpu (the model cannot run on the GPU: {e}); {}", kv_note(opts, false));
                return Ok(None);
            }
            Err(e) => return Err(msg(format!("--device gpu: {e}"))),
        };
        let _ =
            writeln!(err, "GPU kernels: {} ({:.1} MB on the device)", g.kernel_summary(), g.gpu_bytes() as f64 / 1e6);
        if device == DeviceArg::Gpu || !probe || opts.needs_gpu() {
            let why = match (device, probe) {
                (_, false) => "as for the base model".to_string(),
                (DeviceArg::Gpu, true) => "--device gpu".to_string(),
                _ => format!("--device auto: {} needs the GPU forward, so no CPU probe", opts.gpu_flags()),
            };
            let _ = writeln!(err, "device: gpu ({why}); {}", kv_note(opts, true));
            return Ok(Some(g));
        }
        let result = probe_decode(model, threads, &mut g, PROBE_STEPS).map_err(|e| msg(format!("GPU probe: {e}")))?;
        let _ = writeln!(
            err,
            "device: {} — {}; {}",
            if result.use_gpu { "gpu" } else { "cpu" },
            result.reason,
            kv_note(opts, result.use_gpu)
        );
        Ok(result.use_gpu.then_some(g))
    }
    #[cfg(not(feature = "gpu"))]
    match **gpu {}
}

/// "KV cache f16 (GPU)" / "KV cache f32 (CPU)" (+ ", activations f16" when so): the options a
/// run uses, for its device line.
pub fn kv_note(opts: GpuArgs, on_gpu: bool) -> String {
    let activations = match opts.activations {
        ActivationsArg::F32 => String::new(),
        a => format!(", activations {}", a.name()),
    };
    let matmul = if opts.matmul == MatmulArg::Int8 { ", matmul int8" } else { "" };
    format!("KV cache {} ({}){activations}{matmul}", opts.kv_cache.name(), if on_gpu { "GPU" } else { "CPU" })
}
