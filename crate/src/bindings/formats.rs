//! `listFormats()`: the format registry (`formats::registry`) for the web lab, which builds its
//! format lists from it instead of keeping its own.

use serde::Serialize;
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use super::{to_js, Js, LabJsError};
use crate::formats::registry::{self, FormatInfo, PresetInfo};

/// Every format family, in list order (a newtype so the declarations name the array type).
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct FormatList(Vec<FormatInfo>);

/// Every format family, in list order, as `formats::registry::FormatInfo` serialises it
/// (camelCase): name pattern, example, description, GPU kernel rule, GGUF type, row fallbacks,
/// bits per weight and the names the lab suggests (with their role in Compare).
#[wasm_bindgen(js_name = listFormats)]
pub fn list_formats() -> Result<Js<FormatList>, LabJsError> {
    to_js(&FormatList(registry::list()))
}

/// llama.cpp's file types (a newtype so the declarations name the array type).
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct PresetList(Vec<PresetInfo>);

/// llama.cpp's file types (`q4_k_m` …), in llama-quantize's order: the names `quantize` takes
/// for llama.cpp's per-tensor types, with each one's default type.
#[wasm_bindgen(js_name = listPresets)]
pub fn list_presets() -> Result<Js<PresetList>, LabJsError> {
    to_js(&PresetList(registry::presets()))
}
