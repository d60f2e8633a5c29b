//! The safetensors layout Hugging Face transformers writes for a bitsandbytes 4-bit weight
//! (`Params4bit` + `QuantState.as_dict(packed=True)`; checked against a transformers 5.23 /
//! bitsandbytes 0.50.2 export in tests/fixtures/bnb/transformers_llama_nf4_dq). For a weight
//! `<name>` of shape `[rows, cols]` with `n = rows·cols` values and `b` blocks:
//!
//! | key                                    | dtype | shape          | content                     |
//! |----------------------------------------|-------|----------------|-----------------------------|
//! | `<name>`                               | U8    | `[ceil(n/2), 1]` | packed codes               |
//! | `<name>.absmax`                        | F32 / U8 (dq) | `[b]`  | absmax, or its 8-bit codes  |
//! | `<name>.quant_map`                     | F32   | `[16]`         | the NF4/FP4 code table      |
//! | `<name>.nested_absmax` (dq)            | F32   | `[ceil(b/256)]`| absmax of the absmax blocks |
//! | `<name>.nested_quant_map` (dq)         | F32   | `[256]`        | the 8-bit dynamic map       |
//! | `<name>.quant_state.bitsandbytes__nf4` | U8    | `[len]`        | UTF-8 JSON, see below       |
//!
//! The JSON is Python's `json.dumps` of `{"quant_type", "blocksize", "dtype", "shape"}` plus,
//! with double quantization, `"nested_blocksize", "nested_dtype", "nested_offset"` (the offset as
//! Python's `repr` of the float32 widened to a double), e.g.
//! `{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [64, 64],
//! "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.053410910069942474}`.
//! `dtype` is the original weight's dtype; quantlab quantizes f32 values, so it writes
//! `float32` (transformers writes e.g. `bfloat16` for a bf16 checkpoint; nothing else changes).

use safetensors::Dtype;
use serde::Deserialize;

use super::reference::{Bnb4Type, NestedAbsmax};
use super::tables::{dynamic_map, DYNAMIC_MAP_BITS};
use super::{Bnb4Tensor, BnbAbsmax};
use crate::formats::scheme::QuantScheme;
use crate::formats::tensor::TensorShape;

/// One safetensors entry: key, dtype, shape, little-endian bytes.
pub type Entry = (String, Dtype, Vec<usize>, Vec<u8>);

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Python's `repr(float)`: the shortest digits that round-trip, fixed notation for exponents
/// -4..16, else `d.ddde±XX`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Shortest round-trip digit count from Rust ("5.3410910069942474e-2"), then the closest
    // decimal with that many digits, ties to even, as Python (David Gay's dtoa) picks it: the
    // two can differ when the value is exactly halfway (84.176666259765625 → Python
    // "84.17666625976562", Rust's shortest "84.17666625976563").
    let shortest = format!("{:e}", x.abs());
    let n_digits = shortest.split_once('e').unwrap().0.chars().filter(char::is_ascii_digit).count();
    let e = format!("{:.*e}", n_digits - 1, x.abs());
    let (mantissa, exp) = e.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        if exp < 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                format!("{sign}{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
            }
        }
    } else {
        let rest = if digits.len() > 1 { format!(".{}", &digits[1..]) } else { String::new() };
        let esign = if exp < 0 { "-" } else { "+" };
        format!("{sign}{}{rest}e{esign}{:02}", &digits[..1], exp.abs())
    }
}

/// The quant-state JSON bytes bitsandbytes packs (`pack_dict_to_tensor(json.dumps(...))`).
pub fn quant_state_json(t: &Bnb4Tensor) -> String {
    let mut s = format!(
        "{{\"quant_type\": \"{}\", \"blocksize\": {}, \"dtype\": \"float32\", \"shape\": [{}, {}]",
        t.ty().name(),
        t.block(),
        t.shape.rows,
        t.shape.cols
    );
    if let BnbAbsmax::Nested(n) = &t.absmax {
        s += &format!(
            ", \"nested_blocksize\": {}, \"nested_dtype\": \"float32\", \"nested_offset\": {}",
            n.blocksize,
            python_float_repr(n.offset as f64)
        );
    }
    s.push('}');
    s
}

/// The entries transformers writes for a bitsandbytes 4-bit weight called `name` (see the
/// module docs), in `QuantState.as_dict` order.
pub fn safetensors_entries(name: &str, t: &Bnb4Tensor) -> Vec<Entry> {
    let mut out: Vec<Entry> = vec![(name.to_string(), Dtype::U8, vec![t.packed.len(), 1], t.packed.clone())];
    match &t.absmax {
        BnbAbsmax::Plain(a) => out.push((format!("{name}.absmax"), Dtype::F32, vec![a.len()], f32_bytes(a))),
        BnbAbsmax::Nested(n) => out.push((format!("{name}.absmax"), Dtype::U8, vec![n.codes.len()], n.codes.clone())),
    }
    out.push((format!("{name}.quant_map"), Dtype::F32, vec![16], f32_bytes(t.ty().table())));
    if let BnbAbsmax::Nested(n) = &t.absmax {
        out.push((format!("{name}.nested_absmax"), Dtype::F32, vec![n.absmax.len()], f32_bytes(&n.absmax)));
        out.push((format!("{name}.nested_quant_map"), Dtype::F32, vec![256], f32_bytes(&dynamic_map())));
    }
    let json = quant_state_json(t).into_bytes();
    out.push((format!("{name}.quant_state.bitsandbytes__{}", t.ty().name()), Dtype::U8, vec![json.len()], json));
    out
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BnbParseError {
    #[error("missing tensor {0}")]
    Missing(String),
    #[error("{key}: expected {expected}, got {got}")]
    Layout { key: String, expected: String, got: String },
    #[error("quant state: {0}")]
    QuantState(String),
}

/// The quant-state JSON fields (bitsandbytes `QuantState.from_dict`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QuantStateJson {
    pub quant_type: String,
    pub blocksize: usize,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub nested_blocksize: Option<usize>,
    pub nested_dtype: Option<String>,
    pub nested_offset: Option<f64>,
}

fn find<'a>(entries: &'a [Entry], key: &str) -> Result<&'a Entry, BnbParseError> {
    entries.iter().find(|e| e.0 == key).ok_or_else(|| BnbParseError::Missing(key.to_string()))
}

fn expect_f32(e: &Entry, len: usize) -> Result<Vec<f32>, BnbParseError> {
    if e.1 != Dtype::F32 || e.3.len() != 4 * len {
        return Err(BnbParseError::Layout {
            key: e.0.clone(),
            expected: format!("F32 with {len} values"),
            got: format!("{:?} with {} bytes", e.1, e.3.len()),
        });
    }
    Ok(e.3.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
}

fn expect_u8(e: &Entry, len: usize) -> Result<Vec<u8>, BnbParseError> {
    if e.1 != Dtype::U8 || e.3.len() != len {
        return Err(BnbParseError::Layout {
            key: e.0.clone(),
            expected: format!("U8 with {len} bytes"),
            got: format!("{:?} with {} bytes", e.1, e.3.len()),
        });
    }
    Ok(e.3.clone())
}

/// Reads a bitsandbytes 4-bit weight `name` back from safetensors entries (as written by
/// transformers or by [`safetensors_entries`]), driven by its quant-state JSON like
/// bitsandbytes' `QuantState.from_dict`. The code tables must be bitsandbytes' own.
pub fn from_safetensors_entries(name: &str, entries: &[Entry]) -> Result<Bnb4Tensor, BnbParseError> {
    let (qs_entry, ty) = [Bnb4Type::Nf4, Bnb4Type::Fp4]
        .into_iter()
        .find_map(|ty| find(entries, &format!("{name}.quant_state.bitsandbytes__{}", ty.name())).ok().map(|e| (e, ty)))
        .ok_or_else(|| BnbParseError::Missing(format!("{name}.quant_state.bitsandbytes__nf4 (or __fp4)")))?;
    let qs: QuantStateJson =
        serde_json::from_slice(&qs_entry.3).map_err(|e| BnbParseError::QuantState(e.to_string()))?;
    if qs.quant_type != ty.name() {
        return Err(BnbParseError::QuantState(format!("quant_type {} under key {}", qs.quant_type, qs_entry.0)));
    }
    let shape = match qs.shape.as_slice() {
        [n] => TensorShape::new(1, *n),
        [rows, rest @ ..] => TensorShape::new(*rows, rest.iter().product()),
        [] => return Err(BnbParseError::QuantState("empty shape".into())),
    };
    let n = shape.len();
    let n_blocks = n.div_ceil(qs.blocksize.max(1));
    let packed = expect_u8(find(entries, name)?, n.div_ceil(2))?;
    let quant_map = expect_f32(find(entries, &format!("{name}.quant_map"))?, 16)?;
    if quant_map.iter().zip(ty.table()).any(|(a, b)| a.to_bits() != b.to_bits()) {
        return Err(BnbParseError::QuantState(format!("{name}.quant_map is not bitsandbytes' {} table", ty.name())));
    }
    let absmax_entry = find(entries, &format!("{name}.absmax"))?;
    let (absmax, double_quant) = match qs.nested_blocksize {
        None => (BnbAbsmax::Plain(expect_f32(absmax_entry, n_blocks)?), None),
        Some(nb) => {
            let offset = qs.nested_offset.ok_or_else(|| BnbParseError::QuantState("nested_offset missing".into()))?;
            let codes = expect_u8(absmax_entry, n_blocks)?;
            let nested = expect_f32(find(entries, &format!("{name}.nested_absmax"))?, n_blocks.div_ceil(nb.max(1)))?;
            let map = expect_f32(find(entries, &format!("{name}.nested_quant_map"))?, 256)?;
            if map.iter().zip(DYNAMIC_MAP_BITS).any(|(a, b)| a.to_bits() != b) {
                return Err(BnbParseError::QuantState(format!("{name}.nested_quant_map is not the dynamic map")));
            }
            let nested = NestedAbsmax { codes, absmax: nested, offset: offset as f32, blocksize: nb };
            (BnbAbsmax::Nested(nested), Some(nb as u32))
        }
    };
    let block = qs.blocksize as u32;
    let mut scheme = match ty {
        Bnb4Type::Nf4 => QuantScheme::nf4(block, false),
        Bnb4Type::Fp4 => QuantScheme::fp4(block, false),
    };
    scheme.double_quant = double_quant;
    scheme.validate().map_err(BnbParseError::QuantState)?;
    Ok(Bnb4Tensor { scheme, shape, packed, absmax })
}
