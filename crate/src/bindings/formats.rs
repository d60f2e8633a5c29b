//! `listFormats()`: the format registry (`formats::registry`) for the web lab, which builds its
//! format lists from it instead of keeping its own.

use wasm_bindgen::prelude::*;

use super::to_js;
use crate::formats::registry;

/// Every format family, in list order, as `formats::registry::FormatInfo` serialises it
/// (camelCase): name pattern, example, description, GPU kernel rule, GGUF type, row fallbacks,
/// bits per weight and the names the lab suggests (with their role in Compare).
#[wasm_bindgen(js_name = listFormats)]
pub fn list_formats() -> Result<JsValue, JsError> {
    to_js(&registry::list())
}
