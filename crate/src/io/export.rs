//! Re-quantizing a whole GGUF checkpoint into a new file: the one code path behind
//! `quantlab quantize IN.gguf` and the web lab's `exportQuantized` (which writes to memory).
//!
//! [`quantize_gguf`] reads a GGUF file held in memory, decides per tensor with the shared
//! [`TensorPolicy`] (see `quantlab quantize --help`), and streams the result, one tensor at a
//! time, to any [`ExportSink`] (a file, or memory): a `.gguf` for the ggml block types (every metadata key kept, `general.file_type`
//! and `general.quantization_version` set as llama.cpp's own quantizer does), a `.safetensors`
//! for the other formats (int*, nf4/fp4, fp8). f16/bf16/f32 may go to either
//! ([`ExportKind::for_scheme`] picks GGUF for them). Files and paths are the caller's business.

use std::io::{Seek, Write};
use std::ops::Range;

use crate::formats::ggml::presets::ModelShape;
use crate::formats::saturation::{find_overflow, Saturation};
use crate::formats::{self, quantize, GgmlType, QuantScheme, QuantizedTensor, TensorShape};
use crate::gguf::{GgufError, GgufFile, MetadataValue, TensorInfo};
use crate::io::gguf_writer::{llama_ftype, GgufWriteError, GgufWriter, GGML_QNT_VERSION};
use crate::io::imatrix::Imatrix;
use crate::io::safetensors::{self as st, Entry};
use crate::io::safetensors_stream::{planned_entries, Slot, StreamWriter};
use crate::policy::{Action, TensorFacts, TensorPolicy, TypeMix};

/// The container a quantized checkpoint is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Gguf,
    Safetensors,
}

impl ExportKind {
    /// GGUF for the ggml types (block formats and f32/f16/bf16), safetensors for the others.
    pub fn for_scheme(scheme: &QuantScheme) -> ExportKind {
        if scheme.ggml_type().is_some() {
            ExportKind::Gguf
        } else {
            ExportKind::Safetensors
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportKind::Gguf => "gguf",
            ExportKind::Safetensors => "safetensors",
        }
    }
}

/// Why a checkpoint cannot be exported; worded for the person who asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExportError {
    /// The format cannot be stored in the requested container.
    #[error("{scheme} is a GGUF (ggml block) format: write it to a .gguf file")]
    NeedsGguf { scheme: String },
    #[error("{scheme} cannot be stored in GGUF (llama.cpp has no such type): write it to a .safetensors file")]
    NeedsSafetensors { scheme: String },
    #[error("{0}")]
    Gguf(#[from] GgufError),
    #[error("the input is one shard of a split GGUF model; merge it first (llama-gguf-split --merge)")]
    SplitGguf,
    /// A tensor could not be decoded or quantized (the message names it).
    #[error("{0}")]
    Tensor(String),
    #[error("{0}")]
    Write(String),
    #[error("cancelled after {done} of {total} tensors")]
    Cancelled { done: usize, total: usize },
    #[error(
        "tensor '{tensor}': {blocks} block(s) of {block_len} values have a scale too large for the format to store \
         (first: block {first_block}, values {} to {}), so they would decode wrong; the weights are beyond \
         what {scheme} can represent (the CLI's --allow-saturation writes them anyway and reports the count)",
        first_block * block_len, (first_block + 1) * block_len - 1
    )]
    Saturated { tensor: String, scheme: String, blocks: usize, first_block: usize, block_len: usize },
}

/// Per-type totals: `(type, tensors, elements, bytes)` in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub rows: Vec<(String, usize, u64, u64)>,
}

impl Totals {
    pub fn add(&mut self, ty: String, elements: u64, bytes: u64) {
        match self.rows.iter_mut().find(|r| r.0 == ty) {
            Some(r) => {
                r.1 += 1;
                r.2 += elements;
                r.3 += bytes;
            }
            None => self.rows.push((ty, 1, elements, bytes)),
        }
    }

    pub fn elements(&self) -> u64 {
        self.rows.iter().map(|r| r.2).sum()
    }

    pub fn bytes(&self) -> u64 {
        self.rows.iter().map(|r| r.3).sum()
    }

    /// Bits per weight over every tensor counted.
    pub fn bpw(&self) -> f64 {
        bpw(self.bytes(), self.elements())
    }

    /// `"211 x Q8_0, 61 x F32"`.
    pub fn brief(&self) -> String {
        self.rows.iter().map(|r| format!("{} x {}", r.1, r.0)).collect::<Vec<_>>().join(", ")
    }
}

pub fn bpw(bytes: u64, elements: u64) -> f64 {
    if elements == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / elements as f64
    }
}

/// What an export did: tensors by type before and after, and the policy's notes (fallbacks).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportSummary {
    pub before: Totals,
    pub after: Totals,
    pub notes: Vec<String>,
    /// Bytes written.
    pub bytes_written: u64,
    /// Blocks written with an overflowed scale (only under [`Saturation::Allow`]).
    pub saturated: SaturationLog,
}

/// The overflow policy of an export and the blocks it let through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaturationLog {
    pub policy: Saturation,
    pub blocks: u64,
    pub tensors: usize,
}

impl SaturationLog {
    pub fn new(policy: Saturation) -> Self {
        SaturationLog { policy, blocks: 0, tensors: 0 }
    }

    /// A note for the report, when anything saturated.
    pub fn note(&self) -> Option<String> {
        (self.blocks > 0).then(|| {
            format!(
                "--allow-saturation: {} block(s) in {} tensor(s) have a scale clamped or overflowed and decode wrong",
                self.blocks, self.tensors
            )
        })
    }
}

impl ExportSummary {
    /// A few lines for people: the policy's notes, tensors by type before and after, sizes.
    pub fn describe(&self, scheme: &str) -> String {
        let mut o = format!("quantized to {scheme}\n");
        for n in self.notes.iter().cloned().chain(self.saturated.note()) {
            o += &format!("note: {n}\n");
        }
        o += &format!("input tensors   {}\n", self.before.brief());
        o += &format!("output tensors  {}\n", self.after.brief());
        o += &format!(
            "tensor data     {:.1} MB -> {:.1} MB ({:.3} -> {:.3} bits per weight); file {} bytes\n",
            self.before.bytes() as f64 / 1e6,
            self.after.bytes() as f64 / 1e6,
            self.before.bpw(),
            self.after.bpw(),
            self.bytes_written
        );
        o
    }
}

/// Checks that `scheme` can be stored in `kind` (plain floats go anywhere).
pub fn check_container(scheme: &QuantScheme, kind: ExportKind) -> Result<(), ExportError> {
    let float = matches!(scheme.ggml_type(), Some(GgmlType::F32 | GgmlType::F16 | GgmlType::BF16));
    match (scheme.ggml_type(), kind) {
        _ if float => Ok(()),
        (Some(_), ExportKind::Safetensors) => Err(ExportError::NeedsGguf { scheme: scheme.name() }),
        (None, ExportKind::Gguf) => Err(ExportError::NeedsSafetensors { scheme: scheme.name() }),
        _ => Ok(()),
    }
}

/// Quantizes `values` (a `[rows, cols]` tensor called `name`), naming the tensor in errors.
/// Blocks whose scale overflows are an error or are counted in `log`, as its policy says.
pub fn quantize_named(
    name: &str,
    scheme: &QuantScheme,
    values: &[f32],
    shape: TensorShape,
    log: &mut SaturationLog,
) -> Result<QuantizedTensor, ExportError> {
    quantize_named_with(name, scheme, values, shape, log, &mut RoundToNearest)
}

/// How a tensor the policy chose to quantize is quantized: [`RoundToNearest`] (the format's own
/// quantizer), or a calibration method such as GPTQ that supplies its own result.
pub trait TensorMethod {
    /// `values` (a `[rows, cols]` tensor called `name`) quantized with `scheme`; errors name the
    /// tensor.
    fn quantize(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        values: &[f32],
        shape: TensorShape,
    ) -> Result<QuantizedTensor, ExportError>;

    /// The `[rows, cols]` tensor `name` whose rows `decode` writes, quantized with `scheme`. By
    /// default it is decoded whole and handed to [`TensorMethod::quantize`]; a method that
    /// works a few rows at a time can decode only those, so the tensor's values are never all
    /// in memory at once.
    fn quantize_rows(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        shape: TensorShape,
        decode: RowSource<'_>,
    ) -> Result<QuantizedTensor, ExportError> {
        let mut values = vec![0f32; shape.len()];
        decode(0..shape.rows, &mut values)?;
        self.quantize(name, scheme, &values, shape)
    }
}

/// Decodes rows `rows` of a tensor into `out` (`rows.len() × cols` values); errors name the
/// tensor.
pub type RowSource<'a> = &'a (dyn Fn(Range<usize>, &mut [f32]) -> Result<(), ExportError> + Sync);

/// The format's own round-to-nearest quantizer.
pub struct RoundToNearest;

impl TensorMethod for RoundToNearest {
    fn quantize(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        values: &[f32],
        shape: TensorShape,
    ) -> Result<QuantizedTensor, ExportError> {
        quantize(scheme, values, shape).map_err(|e| ExportError::Tensor(format!("tensor '{name}': {e}")))
    }
}

/// llama-quantize's importance-matrix path: a tensor quantized to a ggml type is looked up by
/// name in the imatrix and every row goes through [`formats::quantize_row_weighted`] with its
/// importance; a tensor without an entry (or a non-ggml scheme) is rounded to nearest, and a
/// tensor without an entry gets a note, as llama-quantize warns and goes on.
pub struct ImportanceWeighted<'a> {
    pub imatrix: &'a Imatrix,
    /// One line per tensor quantized without an entry.
    pub notes: Vec<String>,
}

impl TensorMethod for ImportanceWeighted<'_> {
    fn quantize(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        values: &[f32],
        shape: TensorShape,
    ) -> Result<QuantizedTensor, ExportError> {
        let tensor_err = |e: formats::QuantError| ExportError::Tensor(format!("tensor '{name}': {e}"));
        let Some(ty) = scheme.ggml_type() else { return RoundToNearest.quantize(name, scheme, values, shape) };
        let Some(importance) =
            self.imatrix.importance(name, shape.cols).map_err(|e| ExportError::Tensor(e.to_string()))?
        else {
            self.notes.push(format!("{name}: no imatrix entry, quantized without one"));
            return RoundToNearest.quantize(name, scheme, values, shape);
        };
        formats::quantized::check_input(scheme, values, shape).map_err(tensor_err)?;
        formats::quantized::GgmlTensor::quantize_weighted(ty, values, shape, Some(&importance))
            .map(QuantizedTensor::Ggml)
            .map_err(|e| ExportError::Tensor(format!("tensor '{name}' with its imatrix entry: {e}")))
    }
}

/// [`quantize_named`] with `method` choosing the codes.
pub fn quantize_named_with(
    name: &str,
    scheme: &QuantScheme,
    values: &[f32],
    shape: TensorShape,
    log: &mut SaturationLog,
    method: &mut dyn TensorMethod,
) -> Result<QuantizedTensor, ExportError> {
    let q = method.quantize(name, scheme, values, shape)?;
    check_saturation(name, scheme, q, log)
}

/// [`quantize_named_with`] of the tensor whose rows `decode` writes
/// ([`TensorMethod::quantize_rows`]).
pub fn quantize_rows_named_with(
    name: &str,
    scheme: &QuantScheme,
    shape: TensorShape,
    decode: RowSource<'_>,
    log: &mut SaturationLog,
    method: &mut dyn TensorMethod,
) -> Result<QuantizedTensor, ExportError> {
    let q = method.quantize_rows(name, scheme, shape, decode)?;
    check_saturation(name, scheme, q, log)
}

/// `q` when no block's scale overflowed its storage; otherwise an error, or `q` with the
/// blocks counted in `log`, as its policy says.
fn check_saturation(
    name: &str,
    scheme: &QuantScheme,
    q: QuantizedTensor,
    log: &mut SaturationLog,
) -> Result<QuantizedTensor, ExportError> {
    let tensor_err = |e: formats::QuantError| ExportError::Tensor(format!("tensor '{name}': {e}"));
    if let Some(o) = find_overflow(&q).map_err(tensor_err)? {
        match log.policy {
            Saturation::Refuse => {
                return Err(ExportError::Saturated {
                    tensor: name.to_string(),
                    scheme: scheme.name(),
                    blocks: o.blocks,
                    first_block: o.first_block,
                    block_len: o.block_len,
                })
            }
            Saturation::Allow => {
                log.blocks += o.blocks as u64;
                log.tensors += 1;
            }
        }
    }
    Ok(q)
}

/// The type column of a summary for one safetensors output tensor.
pub fn entry_label(action: &Action, produced: &[Entry]) -> String {
    match action {
        Action::Quantize(s) => s.name(),
        _ => produced.first().map(|e| e.1.to_string()).unwrap_or_default(),
    }
}

/// What the policy needs to know about a GGUF tensor.
pub fn tensor_facts(t: &TensorInfo) -> TensorFacts<'_> {
    TensorFacts {
        name: &t.name,
        n_dims: t.dims.len(),
        row_len: t.row_len(),
        decodable: formats::can_dequantize(t.ty),
        plain_float: matches!(t.ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16),
        stored: Some(t.ty),
    }
}

/// What llama.cpp's per-tensor rules need to know about the model in `f`: its block and head
/// counts (`<arch>.block_count`, `.attention.head_count`, `.attention.head_count_kv`) and
/// tensor names. `None` when the file has no block count (not a transformer model).
pub fn model_shape(f: &GgufFile) -> Option<ModelShape> {
    let get = |k: &str| f.arch_get(k).and_then(|v| v.as_u64()).map(|n| n as u32);
    let n_layer = get("block_count")?;
    let n_head = get("attention.head_count").unwrap_or(1);
    let n_head_kv = get("attention.head_count_kv").unwrap_or(n_head);
    Some(ModelShape::from_names(f.tensors.iter().map(|t| t.name.as_str()), n_layer, n_head, n_head_kv))
}

/// The rows of GGUF tensor `t`, whose bytes are `raw`, decoded on demand (a row is whole
/// blocks in every ggml type).
fn gguf_rows<'a>(
    t: &'a TensorInfo,
    raw: &'a [u8],
) -> impl Fn(Range<usize>, &mut [f32]) -> Result<(), ExportError> + Sync + 'a {
    let row_bytes = raw.len() / (t.n_rows() as usize).max(1);
    move |rows, out| {
        formats::dequantize_row(t.ty, &raw[rows.start * row_bytes..rows.end * row_bytes], out)
            .map_err(|e| ExportError::Tensor(format!("tensor '{}': {e}", t.name)))
    }
}

/// Where an export goes: a file, or a `Cursor<Vec<u8>>` in memory. A safetensors header is
/// written first and, when an entry came out shorter than planned, once more at the end.
pub trait ExportSink: Write + Seek {}

impl<T: Write + Seek + ?Sized> ExportSink for T {}

/// How a GGUF tensor is stored in a safetensors output.
#[derive(Clone, Copy)]
enum Stored {
    /// Its bytes as they are, with this dtype.
    Raw(::safetensors::Dtype),
    Quantized(QuantScheme),
}

/// Writes the file `gw` declares to `out`, asking `tensor_bytes(i)` for each tensor's bytes in
/// order, and passes its typed error through (the writer's callback error carries only a
/// string, so the typed one is kept aside).
pub fn write_gguf(
    gw: &GgufWriter,
    out: &mut dyn Write,
    mut tensor_bytes: impl FnMut(usize) -> Result<Vec<u8>, ExportError>,
) -> Result<u64, ExportError> {
    let mut failure: Option<ExportError> = None;
    let written = gw.write(&mut &mut *out, |i, _| {
        tensor_bytes(i).map_err(|e| {
            let text = e.to_string();
            failure = Some(e);
            GgufWriteError::Source(text)
        })
    });
    match (written, failure) {
        (_, Some(e)) => Err(e),
        (Err(e), None) => Err(ExportError::Write(e.to_string())),
        (Ok(n), None) => Ok(n),
    }
}

/// Progress callback: `(tensors done, total, name of the tensor just finished)`; `false` cancels.
pub type ExportProgress<'a> = &'a mut dyn FnMut(usize, usize, &str) -> bool;

/// Re-quantizes the GGUF file `file` (its whole bytes) with `scheme` and writes a `kind` file to
/// `out`. `progress` is called after each tensor.
pub fn quantize_gguf(
    file: &[u8],
    scheme: &QuantScheme,
    kind: ExportKind,
    policy: &TensorPolicy,
    saturation: Saturation,
    out: &mut dyn ExportSink,
    progress: ExportProgress<'_>,
) -> Result<ExportSummary, ExportError> {
    quantize_gguf_with(file, scheme, kind, policy, saturation, out, progress, &mut RoundToNearest)
}

/// [`quantize_gguf`] with `method` quantizing the tensors the policy picks (kept tensors turned
/// into F16 are always rounded to nearest).
#[allow(clippy::too_many_arguments)]
pub fn quantize_gguf_with(
    file: &[u8],
    scheme: &QuantScheme,
    kind: ExportKind,
    policy: &TensorPolicy,
    saturation: Saturation,
    out: &mut dyn ExportSink,
    progress: ExportProgress<'_>,
    method: &mut dyn TensorMethod,
) -> Result<ExportSummary, ExportError> {
    check_container(scheme, kind)?;
    for (_, s) in policy.per_tensor.iter().flat_map(|p| p.iter()) {
        check_container(s, kind)?;
    }
    let f = GgufFile::parse(file, file.len() as u64)?;
    if f.get_u64("split.count").is_some_and(|n| n > 1) {
        return Err(ExportError::SplitGguf);
    }
    let mut summary = ExportSummary::default();
    let mut log = SaturationLog::new(saturation);
    let mut plan = Vec::with_capacity(f.tensors.len());
    let shape = model_shape(&f);
    for t in &f.tensors {
        let d = policy.decide_in(&tensor_facts(t), scheme, shape.as_ref());
        summary.notes.extend(d.note);
        summary.before.add(t.ty.to_string(), t.n_elements(), t.n_bytes());
        plan.push(d.action);
    }
    let decode = |t: &TensorInfo| -> Result<Vec<f32>, ExportError> {
        let raw = f.tensor_data(file, t)?;
        let mut v = vec![0f32; t.n_elements() as usize];
        formats::dequantize_row(t.ty, raw, &mut v)
            .map_err(|e| ExportError::Tensor(format!("tensor '{}': {e}", t.name)))?;
        Ok(v)
    };
    let shape_of = |t: &TensorInfo| TensorShape::new(t.n_rows() as usize, t.row_len() as usize);
    let total = f.tensors.len();
    let mut tick = |i: usize, name: &str| -> Result<(), ExportError> {
        if progress(i + 1, total, name) {
            Ok(())
        } else {
            Err(ExportError::Cancelled { done: i + 1, total })
        }
    };
    match kind {
        ExportKind::Gguf => {
            let target = scheme.ggml_type().expect("checked: GGUF output has a ggml type");
            let werr = |e: GgufWriteError| ExportError::Write(e.to_string());
            let mut gw = GgufWriter::with_metadata(f.metadata.clone()).map_err(werr)?;
            let ftype = match policy.mix {
                TypeMix::LlamaCpp(ft) => ft.id(),
                TypeMix::Pure => llama_ftype(target).expect("every producible ggml type has an ftype"),
            };
            gw.set("general.file_type", MetadataValue::U32(ftype)).map_err(werr)?;
            gw.set("general.quantization_version", MetadataValue::U32(GGML_QNT_VERSION)).map_err(werr)?;
            for (t, action) in f.tensors.iter().zip(&plan) {
                let ty = match action {
                    Action::Copy => t.ty,
                    Action::Quantize(s) => s.ggml_type().expect("a ggml target falls back to ggml types"),
                    Action::ToF16 => GgmlType::F16,
                };
                let info = gw.add_tensor(&t.name, &t.dims, ty).map_err(werr)?;
                summary.after.add(ty.to_string(), info.n_elements(), info.n_bytes());
            }
            let tensor_bytes = |i: usize| -> Result<Vec<u8>, ExportError> {
                let t = &f.tensors[i];
                let bytes = match &plan[i] {
                    Action::Copy => f.tensor_data(file, t)?.to_vec(),
                    action @ (Action::Quantize(_) | Action::ToF16) => {
                        let q = match action {
                            Action::Quantize(s) => {
                                let rows = gguf_rows(t, f.tensor_data(file, t)?);
                                quantize_rows_named_with(&t.name, s, shape_of(t), &rows, &mut log, &mut *method)?
                            }
                            _ => {
                                let f16 = QuantScheme::ggml(GgmlType::F16);
                                quantize_named(&t.name, &f16, &decode(t)?, shape_of(t), &mut log)?
                            }
                        };
                        match q {
                            QuantizedTensor::Ggml(g) => g.data,
                            _ => unreachable!("ggml schemes give ggml tensors"),
                        }
                    }
                };
                tick(i, &t.name)?;
                Ok(bytes)
            };
            summary.bytes_written = write_gguf(&gw, out, tensor_bytes)?;
        }
        ExportKind::Safetensors => {
            let st_err = |e: st::SafetensorsError| ExportError::Write(e.to_string());
            let f16 = QuantScheme::ggml(GgmlType::F16);
            // What each tensor becomes: kept as it is, or quantized (a kept tensor in a type
            // safetensors has no dtype for, i.e. quantized blocks, becomes F16).
            let stored = |t: &TensorInfo, action: &Action| match (action, st::float_dtype(t.ty)) {
                (Action::Copy, Some(dtype)) => Stored::Raw(dtype),
                (Action::Quantize(s), _) => Stored::Quantized(*s),
                _ => Stored::Quantized(f16),
            };
            let mut slots = Vec::new();
            for (t, action) in f.tensors.iter().zip(&plan) {
                let torch: Vec<usize> = t.torch_shape().iter().map(|&d| d as usize).collect();
                match stored(t, action) {
                    Stored::Raw(dtype) => slots.push(Slot { name: t.name.clone(), dtype, shape: torch }),
                    Stored::Quantized(s) => slots.extend(planned_entries(&t.name, &s, &torch).map_err(st_err)?),
                }
            }
            let mut w = StreamWriter::begin(out, slots, st::quantlab_metadata(&scheme.name())).map_err(st_err)?;
            for (i, (t, action)) in f.tensors.iter().zip(&plan).enumerate() {
                let torch: Vec<usize> = t.torch_shape().iter().map(|&d| d as usize).collect();
                let (label, bytes) = match stored(t, action) {
                    Stored::Raw(dtype) => {
                        w.write(&t.name, dtype, &torch, f.tensor_data(file, t)?).map_err(st_err)?;
                        (dtype.to_string(), t.n_bytes())
                    }
                    Stored::Quantized(s) => {
                        let q = match action {
                            Action::Quantize(_) => {
                                let rows = gguf_rows(t, f.tensor_data(file, t)?);
                                quantize_rows_named_with(&t.name, &s, shape_of(t), &rows, &mut log, &mut *method)?
                            }
                            _ => quantize_named(&t.name, &s, &decode(t)?, shape_of(t), &mut log)?,
                        };
                        let entries: Vec<Entry> = st::quantized_entries(&t.name, &q, &torch).map_err(st_err)?;
                        for e in &entries {
                            w.write(&e.0, e.1, &e.2, &e.3).map_err(st_err)?;
                        }
                        (entry_label(action, &entries), entries.iter().map(|e| e.3.len() as u64).sum())
                    }
                };
                summary.after.add(label, t.n_elements(), bytes);
                tick(i, &t.name)?;
            }
            summary.bytes_written = w.finish().map_err(st_err)?;
        }
    }
    summary.saturated = log;
    Ok(summary)
}
