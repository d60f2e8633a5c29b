//! The wasm surface of the core, used by the web lab's worker. Thin on purpose: each function
//! converts JS arguments, calls the Rust core, and returns plain JSON-compatible objects or
//! throws a [`LabJsError`]: an `Error` whose message is meant for users and whose `kind` field
//! ([`ErrorKind`]) is meant for code. No logic lives here.
//!
//! Every object result is a Rust struct deriving `Tsify`: wasm-bindgen writes its TypeScript
//! declaration into the module's `.d.ts` and the binding's return type names it ([`Js`]), so the
//! web code uses the generated types and keeps no hand-written mirror.
//!
//! - this file: the GGUF header, tensor histograms and single-tensor quantization;
//! - [`model`]: `LabModel` (load, info, quantize, generate);
//! - [`eval`]: `LabEval` (perplexity / KL of models in lockstep), `evalText`, `exportQuantized`;
//! - [`methods`]: llama.cpp's presets, calibration (importance matrix) and GPTQ on a `LabModel`.
//! - [`sensitivity`]: the sensitivity scan, the recommended recipe, quantizing by a recipe.
//! - [`threads`]: `threadStats`, and `initThreadPool` in the threaded build.
//! - [`tasks`]: the instruct task suite (`LabModel.runTasks`, `defaultTaskSuite`).

use serde::Serialize;
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use crate::error::{ErrorKind, HasKind, Input};
use crate::formats::scheme::VALID_FORMATS;
use crate::formats::{dequantize_row, quantize, quantize_row, GgmlType, QuantScheme, TensorShape};
use crate::gguf::{GgufFile, MetadataJson, ModelSummary};
use crate::stats::{
    format_report, level_occupancy, tensor_histogram, values_histogram, weight_stats, FormatReport, Histogram,
    WeightStats,
};

mod act_eval;
mod activations;
mod awq_hqq;
mod bench;
mod eval;
mod formats;
#[cfg(feature = "gpu")]
mod gpu_bench;
#[cfg(feature = "gpu")]
mod gpu_eval;
#[cfg(feature = "gpu")]
mod gpu_model;
mod int_dot;
mod layer_error;
mod methods;
mod model;
mod safetensors;
mod sensitivity;
mod smoothing;
mod tasks;
mod threads;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The crate version, so the page can show which core it runs.
#[wasm_bindgen(js_name = coreVersion)]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The JS value of a binding result `T`, typed in the `.d.ts` by `T`'s generated declaration.
pub(crate) type Js<T> = <T as Tsify>::JsType;

#[wasm_bindgen(typescript_custom_section)]
const TS_ERROR: &'static str = r#"
/** What the bindings throw: an Error whose `kind` (and the kind's details) say what failed. */
export type LabWasmError = Error & ErrorKind;
"#;

/// An error for JS: thrown as an `Error` with `message`, and with the fields of `kind` (its
/// `kind` tag and details such as `feature` or `needed`) set on it.
#[derive(Debug)]
pub struct LabJsError {
    kind: ErrorKind,
    message: String,
}

impl LabJsError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> LabJsError {
        LabJsError { kind, message: message.into() }
    }

    /// `what` of the call's input is wrong; `message` says how.
    pub(crate) fn bad(what: Input, message: impl Into<String>) -> LabJsError {
        LabJsError::new(ErrorKind::bad(what), message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> LabJsError {
        LabJsError::new(ErrorKind::Internal, message)
    }

    /// The same error with `context` before its message.
    pub(crate) fn context(self, context: impl std::fmt::Display) -> LabJsError {
        LabJsError { message: format!("{context}: {}", self.message), ..self }
    }
}

impl From<LabJsError> for JsValue {
    fn from(e: LabJsError) -> JsValue {
        let error = js_sys::Error::new(&e.message);
        // The kind is a flat object ({kind, ...details}); copying its fields onto the Error keeps
        // `message` and the stack trace. It always serializes, so a failure here only loses the kind.
        if let Ok(details) = e.kind.serialize(&serde_wasm_bindgen::Serializer::json_compatible()) {
            js_sys::Object::assign(&error, &details.unchecked_into::<js_sys::Object>());
        }
        error.into()
    }
}

/// A core error as a JS error: its message and its [`HasKind::kind`].
pub(crate) fn js_err<E: HasKind + std::fmt::Display>(e: E) -> LabJsError {
    LabJsError::new(e.kind(), e.to_string())
}

fn to_js<T: Serialize + Tsify>(value: &T) -> Result<Js<T>, LabJsError> {
    // json_compatible: u64 become numbers, maps plain objects and `None` null, as the generated
    // declarations say (`#[tsify(missing_as_null, hashmap_as_object)]` on every result type);
    // but [`Bytes`] stay a Uint8Array (json_compatible would copy them into an Array).
    let serializer = serde_wasm_bindgen::Serializer::json_compatible().serialize_bytes_as_arrays(false);
    value
        .serialize(&serializer)
        .map(JsCast::unchecked_into)
        .map_err(|e| LabJsError::internal(format!("internal error converting a result for JS: {e}")))
}

/// Bytes that cross as a `Uint8Array` (serde-wasm-bindgen's form of `serialize_bytes` when
/// `serialize_bytes_as_arrays` is off), not as an array of numbers.
pub(crate) struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// JS numbers are f64; sizes above 2^53 cannot be represented exactly and are refused.
fn js_size(value: f64, what: &str) -> Result<u64, LabJsError> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= 9_007_199_254_740_992.0 {
        Ok(value as u64)
    } else {
        Err(LabJsError::bad(Input::Options, format!("{what} must be a whole number of bytes, got {value}")))
    }
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub(crate) struct TensorRow {
    pub name: String,
    /// ggml order: dims[0] is the row length.
    pub dims: Vec<u64>,
    #[serde(rename = "type")]
    pub ty: String,
    /// The ggml type id; -1 for a safetensors dtype the lab cannot decode as weights.
    pub type_id: i64,
    pub n_elements: u64,
    pub n_bytes: u64,
    /// Absolute byte offset of the tensor's data in the file.
    pub offset: u64,
    pub bits_per_weight: f64,
}

/// A header parse that needs a longer prefix of the file: `needed` bytes.
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub(crate) struct NeedMoreBytes {
    #[tsify(type = "\"need-more-bytes\"")]
    pub status: &'static str,
    pub needed: u64,
}

impl NeedMoreBytes {
    pub(crate) fn new(needed: u64) -> NeedMoreBytes {
        NeedMoreBytes { status: "need-more-bytes", needed }
    }
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct GgufHeader<'a> {
    #[tsify(type = "\"ok\"")]
    status: &'static str,
    #[tsify(type = "\"gguf\"")]
    container: &'static str,
    version: u32,
    alignment: u64,
    data_offset: u64,
    file_len: u64,
    summary: ModelSummary,
    /// Each key's value as JSON; long arrays abbreviated.
    #[tsify(type = "Record<string, unknown>")]
    metadata: MetadataJson<'a>,
    tensors: Vec<TensorRow>,
}

/// `parseGgufHeader`'s result: the header, or how many bytes it needs.
#[derive(Serialize, Tsify)]
#[serde(untagged)]
#[tsify(missing_as_null, hashmap_as_object)]
// Made once per call and serialized at once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum GgufHeaderResult<'a> {
    Ok(GgufHeader<'a>),
    NeedMore(NeedMoreBytes),
}

/// Parses a GGUF header from the first bytes of a file of `file_len` bytes.
///
/// Returns `{status: "ok", ...header}` or, when the header runs past `prefix` but the file is
/// longer, `{status: "need-more-bytes", needed}` so the caller can read a longer prefix.
#[wasm_bindgen(js_name = parseGgufHeader)]
pub fn parse_gguf_header(prefix: &[u8], file_len: f64) -> Result<Js<GgufHeaderResult<'static>>, LabJsError> {
    let file_len = js_size(file_len, "file length")?;
    let file = match GgufFile::parse(prefix, file_len) {
        Ok(file) => file,
        // Only a header that ran past the prefix is retried; a file shorter than its tensors
        // claim is an error that no longer prefix can fix.
        Err(e) if e.needed_bytes().is_some() => {
            let needed = e.needed_bytes().unwrap_or(file_len);
            return to_js(&GgufHeaderResult::NeedMore(NeedMoreBytes::new(needed))).map(JsCast::unchecked_into);
        }
        Err(e) => return Err(js_err(e)),
    };
    let tensors = file
        .tensors
        .iter()
        .map(|t| TensorRow {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ty: t.ty.name().to_string(),
            type_id: i64::from(t.ty.id()),
            n_elements: t.n_elements(),
            n_bytes: t.n_bytes(),
            offset: t.absolute_offset(&file),
            bits_per_weight: t.bits_per_weight(),
        })
        .collect();
    let header = GgufHeader {
        status: "ok",
        container: "gguf",
        version: file.version,
        alignment: file.alignment,
        data_offset: file.data_offset,
        file_len,
        summary: ModelSummary::from_gguf(&file),
        metadata: MetadataJson { entries: &file.metadata, max: 16 },
        tensors,
    };
    to_js(&GgufHeaderResult::Ok(header)).map(JsCast::unchecked_into)
}

/// Histogram of one tensor's values, decoded from its stored type.
///
/// `data` holds exactly the tensor's bytes; `row_len` is dims[0]. Range is the data's min..max.
#[wasm_bindgen(js_name = tensorHistogram)]
pub fn tensor_histogram_js(
    type_id: u32,
    n_values: f64,
    row_len: u32,
    data: &[u8],
    bins: u32,
) -> Result<Js<Histogram>, LabJsError> {
    let ty = GgmlType::from_id(type_id).map_err(js_err)?;
    let n = usize::try_from(js_size(n_values, "value count")?).map_err(|_| too_large(n_values))?;
    let h = tensor_histogram(ty, data, n, row_len as usize, bins as usize, None).map_err(js_err)?;
    to_js(&h)
}

fn too_large(n_values: f64) -> LabJsError {
    let available = usize::MAX as u64;
    LabJsError::new(
        ErrorKind::LimitExceeded { limit: "values in wasm memory".into(), needed: n_values as u64, available },
        format!("a tensor of {n_values} values is too large for this build"),
    )
}

/// Decodes a stored tensor (`data` = exactly its bytes) to f32 values.
fn decode(type_id: u32, n_values: f64, data: &[u8]) -> Result<Vec<f32>, LabJsError> {
    let ty = GgmlType::from_id(type_id).map_err(js_err)?;
    let n = usize::try_from(js_size(n_values, "value count")?).map_err(|_| too_large(n_values))?;
    let mut values = vec![0f32; n];
    dequantize_row(ty, data, &mut values).map_err(js_err)?;
    Ok(values)
}

fn shape_of(n: usize, row_len: u32) -> Result<TensorShape, LabJsError> {
    let cols = row_len as usize;
    if cols == 0 || !n.is_multiple_of(cols) {
        return Err(LabJsError::bad(Input::Options, format!("row length {cols} does not divide {n} values")));
    }
    Ok(TensorShape::new(n / cols, cols))
}

/// The format names `quantizeTensor` accepts, as one human-readable line.
#[wasm_bindgen(js_name = validFormats)]
pub fn valid_formats() -> String {
    VALID_FORMATS.to_string()
}

/// Parses a format name into its typed scheme (value type, mapping, granularity, range rule),
/// or fails with the list of valid names.
#[wasm_bindgen(js_name = parseScheme)]
pub fn parse_scheme(name: &str) -> Result<Js<ParsedScheme>, LabJsError> {
    let scheme = QuantScheme::parse(name).map_err(js_err)?;
    to_js(&ParsedScheme { name: scheme.name(), scheme })
}

/// A format name parsed: its canonical name and typed description.
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ParsedScheme {
    name: String,
    scheme: QuantScheme,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct QuantizeReport {
    #[serde(flatten)]
    report: FormatReport,
    n_groups: usize,
    group_len: usize,
    /// The representable values of group `group` (for the histogram overlay).
    group: usize,
    levels: Vec<f32>,
    /// How many weights of the whole tensor landed on each code.
    occupancy: Vec<u64>,
    /// Histogram of the reconstructed values over the same bins as the original's.
    histogram: Histogram,
}

/// Quantizes a stored tensor with `scheme` (a format name) and reports what it cost: bits per
/// weight, error metrics against the decoded original, the levels of group `group`, level
/// occupancy and a histogram of the reconstruction over [lo, hi] in `bins` bins.
#[wasm_bindgen(js_name = quantizeTensor)]
#[allow(clippy::too_many_arguments)]
pub fn quantize_tensor(
    scheme: &str,
    type_id: u32,
    n_values: f64,
    row_len: u32,
    data: &[u8],
    group: u32,
    bins: u32,
) -> Result<Js<QuantizeReport>, LabJsError> {
    let scheme = QuantScheme::parse(scheme).map_err(js_err)?;
    let values = decode(type_id, n_values, data)?;
    let shape = shape_of(values.len(), row_len)?;
    let q = quantize(&scheme, &values, shape).map_err(js_err)?;
    let report = format_report(&values, &q).map_err(js_err)?;
    let reconstructed = q.dequantize().map_err(js_err)?;
    let original = values_histogram(&values, bins as usize, None).map_err(js_err)?;
    let histogram =
        values_histogram(&reconstructed, bins as usize, Some((original.lo, original.hi))).map_err(js_err)?;
    let group = (group as usize).min(q.n_groups().saturating_sub(1));
    to_js(&QuantizeReport {
        report,
        n_groups: q.n_groups(),
        group_len: q.group_len(),
        group,
        levels: q.levels(group),
        occupancy: level_occupancy(&q),
        histogram,
    })
}

/// Per-channel absmax/RMS, outlier channels (absmax > k × median) and kurtosis of a stored tensor.
#[wasm_bindgen(js_name = weightStats)]
pub fn weight_stats_js(
    type_id: u32,
    n_values: f64,
    row_len: u32,
    data: &[u8],
    outlier_k: f64,
) -> Result<Js<WeightStats>, LabJsError> {
    let values = decode(type_id, n_values, data)?;
    let shape = shape_of(values.len(), row_len)?;
    to_js(&weight_stats(&values, shape, outlier_k))
}

/// ggml's block quantizer for one run of values (a whole number of blocks): the exact bytes a
/// GGUF file would hold. Used by the wasm golden tests and the wasm throughput benchmark.
#[wasm_bindgen(js_name = quantizeGgml)]
pub fn quantize_ggml(type_name: &str, values: &[f32]) -> Result<Vec<u8>, LabJsError> {
    let ty = ggml_type(type_name)?;
    let bytes = ty.bytes_for(values.len() as u64).ok_or_else(|| partial_blocks(values.len(), ty))?;
    let mut out = vec![0u8; bytes as usize];
    quantize_row(ty, values, &mut out).map_err(js_err)?;
    Ok(out)
}

/// ggml's block dequantizer: the f32 values of `data` (whole blocks of `type_name`).
#[wasm_bindgen(js_name = dequantizeGgml)]
pub fn dequantize_ggml(type_name: &str, data: &[u8], n_values: u32) -> Result<Vec<f32>, LabJsError> {
    let ty = ggml_type(type_name)?;
    let mut out = vec![0f32; n_values as usize];
    dequantize_row(ty, data, &mut out).map_err(js_err)?;
    Ok(out)
}

/// A ggml type by name (`quantizeGgml`, `dequantizeGgml`, `QuantBench`).
fn ggml_type(type_name: &str) -> Result<GgmlType, LabJsError> {
    GgmlType::from_name(type_name)
        .ok_or_else(|| LabJsError::bad(Input::Format, format!("unknown ggml type '{type_name}'")))
}

fn partial_blocks(n_values: usize, ty: GgmlType) -> LabJsError {
    LabJsError::bad(Input::Data, format!("{n_values} values are not whole {ty} blocks"))
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
struct ExportEntry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    #[tsify(type = "number[]")]
    data: Vec<u8>,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct QuantizedValues {
    scheme: String,
    bits_per_weight: f64,
    dequantized: Vec<f32>,
    /// The tensors a `.safetensors` export would hold for it (`name` = "w").
    entries: Vec<ExportEntry>,
}

/// Quantizes raw f32 values (`rows × cols`, row-major) with `scheme`; returns the reconstruction
/// and the exact stored tensors (packed codes, scales, absmax, nested state…). Used by the wasm
/// golden tests against bitsandbytes, ml_dtypes and the integer reference.
#[wasm_bindgen(js_name = quantizeValues)]
pub fn quantize_values(scheme: &str, values: &[f32], rows: u32, cols: u32) -> Result<Js<QuantizedValues>, LabJsError> {
    let scheme = QuantScheme::parse(scheme).map_err(js_err)?;
    let shape = TensorShape::new(rows as usize, cols as usize);
    let q = quantize(&scheme, values, shape).map_err(js_err)?;
    let entries = crate::io::safetensors::quantized_entries("w", &q, &[shape.rows, shape.cols])
        .map_err(js_err)?
        .into_iter()
        .map(|(name, dtype, shape, data)| ExportEntry { name, dtype: format!("{dtype:?}"), shape, data })
        .collect();
    to_js(&QuantizedValues {
        scheme: scheme.name(),
        bits_per_weight: q.bits_per_weight(),
        dequantized: q.dequantize().map_err(js_err)?,
        entries,
    })
}

#[cfg(feature = "gpu")]
mod gpu_bindings {
    use super::*;
    use crate::gpu::axpy::{axpy_cpu, axpy_gpu};
    use crate::gpu::{AdapterSummary, GpuContext};
    use std::cell::RefCell;
    use std::sync::Arc;

    thread_local! {
        /// The page's one GPU device, acquired on first use and shared by every later call (each
        /// `GpuModel` keeps its own `Arc` of the one it was uploaded to).
        static GPU: RefCell<Option<Arc<GpuContext>>> = const { RefCell::new(None) };
    }

    // An `Arc` (not `Rc`) because `GpuModel` holds one natively too, where contexts cross
    // threads; the page has one thread, so the context not being Send there costs nothing.
    #[allow(clippy::arc_with_non_send_sync)]
    pub(super) async fn gpu_context() -> Result<Arc<GpuContext>, LabJsError> {
        if let Some(gpu) = GPU.with(|g| g.borrow().clone()) {
            if gpu.check_alive().is_ok() {
                return Ok(gpu);
            }
        }
        let gpu = Arc::new(GpuContext::acquire().await.map_err(js_err)?);
        GPU.with(|g| *g.borrow_mut() = Some(Arc::clone(&gpu)));
        Ok(gpu)
    }

    /// Destroys the page's GPU device, if one was acquired, and forgets it: every model on it
    /// fails its next call with `deviceLost`, and the next upload acquires a fresh device.
    /// Whether there was one.
    pub(super) fn destroy_gpu_context() -> bool {
        let gpu = GPU.with(|g| g.borrow_mut().take());
        gpu.inspect(|gpu| gpu.destroy()).is_some()
    }

    #[derive(Serialize, Tsify)]
    #[serde(rename_all = "camelCase")]
    #[tsify(missing_as_null, hashmap_as_object)]
    pub struct GpuSelfTest {
        adapter: AdapterSummary,
        /// Largest |GPU − CPU| over the self-test vector (axpy, 4097 values).
        max_abs_error: f64,
        passed: bool,
    }

    /// Acquires the WebGPU device through wgpu and runs `shaders/axpy.wgsl` against its CPU twin:
    /// proof that compute works on this adapter, not just that an adapter exists.
    #[wasm_bindgen(js_name = gpuSelfTest)]
    pub async fn gpu_self_test() -> Result<Js<GpuSelfTest>, LabJsError> {
        let gpu = gpu_context().await?;
        let n = 4097;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        let got = axpy_gpu(&gpu, 1.5, &x, &y).await.map_err(js_err)?;
        let mut want = y.clone();
        axpy_cpu(1.5, &x, &mut want);
        let max_abs_error = got.iter().zip(&want).map(|(g, w)| f64::from((g - w).abs())).fold(0.0, f64::max);
        to_js(&GpuSelfTest {
            adapter: gpu.adapter.clone(),
            max_abs_error,
            passed: got.len() == n && max_abs_error <= 1e-5,
        })
    }
}
