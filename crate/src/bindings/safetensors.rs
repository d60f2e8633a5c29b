//! `parseSafetensorsHeader(prefix, fileLen)`: a safetensors file's header in the same shape as
//! `parseGgufHeader`, so the lab's tensor table, histogram, layer browser, outlier and NF4
//! panels work on it unchanged.
//!
//! A safetensors file is `u64 LE header length N`, `N` bytes of JSON
//! (`name → {dtype, shape, data_offsets: [begin, end]}` relative to the data after the header,
//! plus an optional `__metadata__` string map), then the data. Rows:
//! - `dims` are the PyTorch shape reversed (ggml order: the contiguous row length first);
//! - F32 / F16 / BF16 get the matching ggml type id, so every panel decodes them as it decodes
//!   a GGUF tensor;
//! - any other dtype (the U8 codes, F16 scales, I64 shapes and F8 codes of a quantized
//!   checkpoint written by `quantlab quantize`, see `crate::io::safetensors`) is listed with
//!   its dtype name and `typeId: -1` — the lab lists it but does not decode it as weights.
//!
//! The summary has no model hyper-parameters (those live in a separate config.json).
//! Returns `{status: "need-more-bytes", needed}` when the header runs past `prefix`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

// TensorRow by its own name: tsify writes the Rust name into the generated .d.ts, and an alias would name no type there.
use super::{to_js, Js, LabJsError, NeedMoreBytes, TensorRow};
use crate::error::Input;
use crate::formats::GgmlType;

/// Header lengths beyond this are refused (the safetensors crate's own limit).
const MAX_HEADER: u64 = 100_000_000;

#[derive(Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

#[derive(Serialize, Tsify, Default)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct SafetensorsTypeStats {
    #[serde(rename = "type")]
    ty: String,
    tensors: usize,
    elements: u64,
    bytes: u64,
}

/// The fields of the GGUF summary the lab reads; the hyper-parameters are unknown here (null).
/// The fields of the GGUF `ModelSummary` that a safetensors header can fill.
#[derive(Serialize, Tsify, Default)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct SafetensorsSummary {
    architecture: Option<String>,
    name: Option<String>,
    file_type: Option<String>,
    context_length: Option<u64>,
    embedding_length: Option<u64>,
    block_count: Option<u64>,
    feed_forward_length: Option<u64>,
    head_count: Option<u64>,
    head_count_kv: Option<u64>,
    vocab_size: Option<u64>,
    tokenizer_model: Option<String>,
    parameter_count: u64,
    tensor_bytes: u64,
    tensor_count: usize,
    bits_per_weight: f64,
    types: Vec<SafetensorsTypeStats>,
}

#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct SafetensorsHeader {
    #[tsify(type = "\"ok\"")]
    status: &'static str,
    #[tsify(type = "\"safetensors\"")]
    container: &'static str,
    version: u32,
    alignment: u64,
    data_offset: u64,
    file_len: u64,
    summary: SafetensorsSummary,
    metadata: BTreeMap<String, String>,
    tensors: Vec<TensorRow>,
}

/// Bytes per element of a safetensors dtype (`None`: unknown to this reader).
fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

fn ggml_type(dtype: &str) -> Option<GgmlType> {
    match dtype {
        "F32" => Some(GgmlType::F32),
        "F16" => Some(GgmlType::F16),
        "BF16" => Some(GgmlType::BF16),
        _ => None,
    }
}

fn bad(reason: impl std::fmt::Display) -> LabJsError {
    LabJsError::bad(Input::File, format!("not a valid safetensors file: {reason}"))
}

/// `parseSafetensorsHeader`'s result: the header, or how many bytes it needs.
#[derive(Serialize, Tsify)]
#[serde(untagged)]
#[tsify(missing_as_null, hashmap_as_object)]
// Made once per call and serialized at once: boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum SafetensorsHeaderResult {
    Ok(SafetensorsHeader),
    NeedMore(NeedMoreBytes),
}

/// Parses the header of a safetensors file of `file_len` bytes from its first bytes.
#[wasm_bindgen(js_name = parseSafetensorsHeader)]
pub fn parse_safetensors_header(prefix: &[u8], file_len: f64) -> Result<Js<SafetensorsHeaderResult>, LabJsError> {
    let file_len = super::js_size(file_len, "file length")?;
    if file_len < 8 || prefix.len() < 8 {
        return Err(bad(format!("{file_len} bytes is too short for the 8-byte header length")));
    }
    let n = u64::from_le_bytes(prefix[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER || 8 + n > file_len {
        return Err(bad(format!("header length {n} does not fit in a {file_len}-byte file")));
    }
    let data_offset = 8 + n;
    if (prefix.len() as u64) < data_offset {
        return to_js(&SafetensorsHeaderResult::NeedMore(NeedMoreBytes::new(data_offset)));
    }
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&prefix[8..data_offset as usize]).map_err(|e| bad(format!("header JSON: {e}")))?;
    let data_len = file_len - data_offset;
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::new();
    for (name, value) in json {
        if name == "__metadata__" {
            metadata = serde_json::from_value(value).map_err(|e| bad(format!("__metadata__: {e}")))?;
            continue;
        }
        let e: Entry = serde_json::from_value(value).map_err(|e| bad(format!("tensor '{name}': {e}")))?;
        let [begin, end] = e.data_offsets;
        if begin > end || end > data_len {
            return Err(bad(format!(
                "tensor '{name}': data_offsets [{begin}, {end}] outside the {data_len} data bytes"
            )));
        }
        let n_elements = e.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let n_elements = n_elements.ok_or_else(|| bad(format!("tensor '{name}': shape {:?} overflows", e.shape)))?;
        if let Some(size) = dtype_size(&e.dtype) {
            if n_elements.checked_mul(size) != Some(end - begin) {
                return Err(bad(format!(
                    "tensor '{name}': {} × {:?} needs {} bytes, data_offsets give {}",
                    e.dtype,
                    e.shape,
                    n_elements.saturating_mul(size),
                    end - begin
                )));
            }
        }
        let ty = ggml_type(&e.dtype);
        tensors.push(TensorRow {
            name,
            dims: e.shape.iter().rev().copied().collect(),
            ty: ty.map_or(e.dtype.clone(), |t| t.name().to_string()),
            type_id: ty.map_or(-1, |t| i64::from(t.id())),
            n_elements,
            n_bytes: end - begin,
            offset: data_offset + begin,
            bits_per_weight: if n_elements == 0 { 0.0 } else { (end - begin) as f64 * 8.0 / n_elements as f64 },
        });
    }
    // File order (the JSON object's key order is not the data order).
    tensors.sort_by_key(|t| t.offset);
    let mut summary = SafetensorsSummary { tensor_count: tensors.len(), ..SafetensorsSummary::default() };
    for t in &tensors {
        summary.parameter_count += t.n_elements;
        summary.tensor_bytes += t.n_bytes;
        match summary.types.iter_mut().find(|s| s.ty == t.ty) {
            Some(s) => {
                s.tensors += 1;
                s.elements += t.n_elements;
                s.bytes += t.n_bytes;
            }
            None => summary.types.push(SafetensorsTypeStats {
                ty: t.ty.clone(),
                tensors: 1,
                elements: t.n_elements,
                bytes: t.n_bytes,
            }),
        }
    }
    if summary.parameter_count > 0 {
        summary.bits_per_weight = summary.tensor_bytes as f64 * 8.0 / summary.parameter_count as f64;
    }
    summary.file_type = metadata.get("quantlab.format").cloned();
    to_js(&SafetensorsHeaderResult::Ok(SafetensorsHeader {
        status: "ok",
        container: "safetensors",
        version: 0,
        alignment: 1,
        data_offset,
        file_len,
        summary,
        metadata,
        tensors,
    }))
}
