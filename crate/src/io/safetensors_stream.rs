//! A safetensors file written one tensor at a time: memory holds the tensor being written,
//! never the model.
//!
//! Every entry's name, dtype and shape follow from the input tensor and the scheme before any
//! value is quantized ([`planned_entries`] mirrors [`st::quantized_entries`]), so the header is
//! written first and each entry's bytes follow as they are produced. One entry's length is
//! known only as an upper bound: the bitsandbytes quant-state JSON under double quantization
//! holds the nested offset (a mean over the absmax values) in Python's shortest repr. The plan
//! reserves the longest repr; [`StreamWriter::finish`] then rewrites the header with the real
//! offsets, padded with spaces (the format allows trailing whitespace) to the same length, so
//! no data moves. Every other entry lands exactly where the first header said.
//!
//! The header lists entries in the order they are written (readers order them by offset) and
//! `__metadata__` keys sorted, so the same input gives the same bytes on every run.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};

use ::safetensors::Dtype;

use crate::formats::bnb::{quant_state_json, Bnb4Tensor, BnbAbsmax, NestedAbsmax};
use crate::formats::{int, Granularity, Mapping, QuantScheme, TensorShape, ValueType};
use crate::io::safetensors::{self as st, group_shape, SafetensorsError};

/// An entry before its bytes exist: name, dtype, shape, and the most bytes it may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

impl Slot {
    fn new(name: impl Into<String>, dtype: Dtype, shape: Vec<usize>) -> Slot {
        Slot { name: name.into(), dtype, shape }
    }

    /// The bytes `dtype × shape` take (`None` on overflow).
    pub fn byte_len(dtype: Dtype, shape: &[usize]) -> Option<usize> {
        let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        Some(n.checked_mul(dtype.bitsize())?.div_ceil(8))
    }
}

/// Python's repr of any f32 widened to f64 takes at most this many characters
/// (`-1.2345678901234567e-38`): sign, 17 digits, the point and a 4-character exponent.
const LONGEST_FLOAT_REPR: usize = 23;

/// The entries [`st::quantized_entries`] makes for a tensor `name` of PyTorch shape `shape`
/// quantized with `scheme`, in the same order; the quant-state JSON of a double-quantized
/// bitsandbytes tensor is given its longest possible length.
pub fn planned_entries(name: &str, scheme: &QuantScheme, shape: &[usize]) -> Result<Vec<Slot>, SafetensorsError> {
    let n: usize = shape.iter().product();
    let cols = shape.last().copied().unwrap_or(1).max(1);
    let t = TensorShape::new(n / cols, cols);
    let err = |e: crate::formats::QuantError| SafetensorsError::Write(format!("tensor '{name}': {e}"));
    Ok(match scheme.value {
        ValueType::Ggml { ty } => match st::float_dtype(ty) {
            Some(dtype) => vec![Slot::new(name, dtype, shape.to_vec())],
            None => {
                return Err(SafetensorsError::Write(format!(
                    "{} is a ggml block type; write it to a .gguf file",
                    ty.name().to_lowercase()
                )))
            }
        },
        ValueType::Int { bits } => {
            let group_len = int::group_len_for(scheme, t).map_err(err)?;
            let groups = int::n_groups_for(n, group_len);
            let codes = if bits == 8 { vec![t.rows, t.cols] } else { vec![(n * bits as usize).div_ceil(8)] };
            let scale_shape = group_shape(scheme, t.rows, t.cols, groups);
            let scale = if matches!(scheme.granularity, Granularity::Group(_)) { Dtype::F16 } else { Dtype::F32 };
            let mut out =
                vec![Slot::new(name, Dtype::U8, codes), Slot::new(format!("{name}.scale"), scale, scale_shape.clone())];
            if scheme.mapping == Mapping::Asymmetric {
                out.push(Slot::new(format!("{name}.zero_point"), Dtype::U8, scale_shape));
            }
            out.push(Slot::new(format!("{name}.shape"), Dtype::I64, vec![shape.len()]));
            out
        }
        ValueType::Fp8E4M3 | ValueType::Fp8E5M2 => {
            let dtype = if scheme.value == ValueType::Fp8E4M3 { Dtype::F8_E4M3 } else { Dtype::F8_E5M2 };
            let group_len = if scheme.granularity == Granularity::Channel { t.cols } else { n };
            let groups = int::n_groups_for(n, group_len);
            vec![
                Slot::new(name, dtype, shape.to_vec()),
                Slot::new(format!("{name}.scale"), Dtype::F32, group_shape(scheme, t.rows, t.cols, groups)),
            ]
        }
        ValueType::Nf4 | ValueType::Fp4 => {
            // The layout of `formats::bnb::safetensors_entries`, from an empty tensor of this
            // shape (its JSON is exact but for the nested offset's repr, reserved at its longest).
            let block = scheme.group_size().unwrap_or(64) as usize;
            let blocks = n.div_ceil(block);
            let absmax = match scheme.double_quant {
                None => BnbAbsmax::Plain(Vec::new()),
                Some(nb) => BnbAbsmax::Nested(NestedAbsmax {
                    codes: Vec::new(),
                    absmax: Vec::new(),
                    offset: 0.0,
                    blocksize: nb as usize,
                }),
            };
            let empty = Bnb4Tensor { scheme: *scheme, shape: t, packed: Vec::new(), absmax };
            let mut json = quant_state_json(&empty).len();
            let mut out = vec![Slot::new(name, Dtype::U8, vec![n.div_ceil(2), 1])];
            match scheme.double_quant {
                None => out.push(Slot::new(format!("{name}.absmax"), Dtype::F32, vec![blocks])),
                Some(_) => out.push(Slot::new(format!("{name}.absmax"), Dtype::U8, vec![blocks])),
            }
            out.push(Slot::new(format!("{name}.quant_map"), Dtype::F32, vec![16]));
            if let Some(nb) = scheme.double_quant {
                out.push(Slot::new(format!("{name}.nested_absmax"), Dtype::F32, vec![blocks.div_ceil(nb as usize)]));
                out.push(Slot::new(format!("{name}.nested_quant_map"), Dtype::F32, vec![256]));
                json += LONGEST_FLOAT_REPR - "0.0".len();
            }
            out.push(Slot::new(
                format!("{name}.quant_state.bitsandbytes__{}", empty.ty().name()),
                Dtype::U8,
                vec![json],
            ));
            out
        }
    })
}

/// One entry as written: its slot and where its bytes lie in the data section.
struct Written {
    slot: Slot,
    offsets: (usize, usize),
}

/// Writes a safetensors file to `out`: the header from the plan, then the entries in plan
/// order ([`StreamWriter::write`]), then [`StreamWriter::finish`].
pub struct StreamWriter<'a, W: Write + Seek + ?Sized> {
    out: &'a mut W,
    plan: Vec<Slot>,
    metadata: Vec<(String, String)>,
    /// The header's length as first written (its JSON padded with spaces); the final header is
    /// padded to it.
    header_len: usize,
    written: Vec<Written>,
    offset: usize,
}

/// safetensors readers refuse headers longer than this (the reference crate's limit).
const MAX_HEADER: usize = 100_000_000;

fn werr(e: std::io::Error) -> SafetensorsError {
    SafetensorsError::Write(e.to_string())
}

/// The header JSON for `entries` (name, dtype, shape, offsets), padded with spaces to a
/// multiple of 8 bytes as the reference writer does.
fn header_json<'s>(
    metadata: &[(String, String)],
    entries: impl Iterator<Item = (&'s Slot, (usize, usize))>,
) -> Vec<u8> {
    let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let mut parts = Vec::new();
    if !metadata.is_empty() {
        let kv: Vec<String> = metadata.iter().map(|(k, v)| format!("{}:{}", q(k), q(v))).collect();
        parts.push(format!("\"__metadata__\":{{{}}}", kv.join(",")));
    }
    for (s, (a, b)) in entries {
        let dtype = serde_json::to_string(&s.dtype).expect("a dtype serializes");
        let shape: Vec<String> = s.shape.iter().map(usize::to_string).collect();
        parts.push(format!(
            "{}:{{\"dtype\":{dtype},\"shape\":[{}],\"data_offsets\":[{a},{b}]}}",
            q(&s.name),
            shape.join(",")
        ));
    }
    let mut json = format!("{{{}}}", parts.join(",")).into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    json
}

impl<'a, W: Write + Seek + ?Sized> StreamWriter<'a, W> {
    /// Checks the plan (names, sizes) and writes the header.
    pub fn begin(out: &'a mut W, plan: Vec<Slot>, metadata: HashMap<String, String>) -> Result<Self, SafetensorsError> {
        let mut seen = std::collections::HashSet::new();
        let mut offsets = Vec::with_capacity(plan.len());
        let mut offset = 0usize;
        for s in &plan {
            if s.name.is_empty() || s.name == "__metadata__" {
                return Err(SafetensorsError::Write(format!("invalid tensor name '{}'", s.name)));
            }
            if !seen.insert(s.name.as_str()) {
                return Err(SafetensorsError::Write(format!("duplicate tensor name '{}'", s.name)));
            }
            let len = Slot::byte_len(s.dtype, &s.shape)
                .ok_or_else(|| SafetensorsError::Write(format!("tensor '{}' is too large", s.name)))?;
            offsets.push((offset, offset + len));
            offset += len;
        }
        let mut metadata: Vec<(String, String)> = metadata.into_iter().collect();
        metadata.sort();
        let json = header_json(&metadata, plan.iter().zip(offsets));
        if json.len() > MAX_HEADER {
            return Err(SafetensorsError::Write(format!("the header would take {} bytes", json.len())));
        }
        out.write_all(&(json.len() as u64).to_le_bytes()).and_then(|()| out.write_all(&json)).map_err(werr)?;
        let header_len = json.len();
        Ok(StreamWriter { out, plan, metadata, header_len, written: Vec::new(), offset: 0 })
    }

    /// Writes the next entry of the plan: same name and dtype, a shape of the same rank whose
    /// byte length is at most the planned one (equal for all but the bounded JSON entry).
    pub fn write(&mut self, name: &str, dtype: Dtype, shape: &[usize], bytes: &[u8]) -> Result<(), SafetensorsError> {
        let i = self.written.len();
        let Some(slot) = self.plan.get(i) else {
            return Err(SafetensorsError::Write(format!("tensor '{name}' was not in the planned header")));
        };
        let planned = Slot::byte_len(slot.dtype, &slot.shape);
        let len = Slot::byte_len(dtype, shape);
        if slot.name != name
            || slot.dtype != dtype
            || slot.shape.len() != shape.len()
            || len != Some(bytes.len())
            || len > planned
        {
            return Err(SafetensorsError::Write(format!(
                "tensor '{name}' ({dtype} {shape:?}, {} bytes) does not match the planned entry '{}' ({} {:?})",
                bytes.len(),
                slot.name,
                slot.dtype,
                slot.shape
            )));
        }
        self.out.write_all(bytes).map_err(werr)?;
        let slot = Slot::new(name, dtype, shape.to_vec());
        self.written.push(Written { slot, offsets: (self.offset, self.offset + bytes.len()) });
        self.offset += bytes.len();
        Ok(())
    }

    /// Checks that every planned entry was written and, where an entry came out shorter than
    /// planned, rewrites the header with the real offsets (padded to its first length).
    /// Returns the file's length.
    pub fn finish(self) -> Result<u64, SafetensorsError> {
        if self.written.len() != self.plan.len() {
            return Err(SafetensorsError::Write(format!(
                "{} of {} planned tensors were written",
                self.written.len(),
                self.plan.len()
            )));
        }
        let exact = self.written.iter().zip(&self.plan).all(|(w, p)| w.slot == *p);
        if !exact {
            let mut json = header_json(&self.metadata, self.written.iter().map(|w| (&w.slot, w.offsets)));
            // Every length is at most the planned one, so every number has at most as many
            // digits: the real header is never longer than the planned one.
            if json.len() > self.header_len {
                return Err(SafetensorsError::Write("the final header outgrew the planned one".into()));
            }
            json.resize(self.header_len, b' ');
            self.out.seek(SeekFrom::Start(8)).and_then(|_| self.out.write_all(&json)).map_err(werr)?;
            self.out.seek(SeekFrom::End(0)).map_err(werr)?;
        }
        self.out.flush().map_err(werr)?;
        Ok((8 + self.header_len + self.offset) as u64)
    }
}
