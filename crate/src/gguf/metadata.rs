//! GGUF metadata values and their (abbreviated) presentation.
//!
//! Arrays are stored typed (`Vec<u32>`, `Vec<String>`, ...) rather than as `Vec<MetadataValue>`:
//! a tokenizer has ~50k–250k entries, and a per-element enum would cost 32 bytes for every byte
//! of a `u8` array. Everything is kept (the tokenizer is needed later); the [`Abbreviated`]
//! and [`MetadataJson`] views are what printing and JSON output use so that a 49152-entry
//! token list does not flood a terminal.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::fmt::{self, Write as _};

/// The value type ids of the GGUF spec (`gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    pub fn from_id(id: u32) -> Option<Self> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    pub const fn id(self) -> u32 {
        self as u32
    }

    /// Bytes of one value in the file (strings and arrays: the minimum, i.e. an empty one).
    pub const fn min_size(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }

    pub const fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

/// One metadata value. Serializes as the plain JSON value (arrays in full).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetadataValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(MetadataArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A homogeneous GGUF array. Nested arrays may differ in element type from each other.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetadataArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<MetadataArray>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

/// Applies `$body` to the vector inside any [`MetadataArray`] variant.
macro_rules! with_vec {
    ($arr:expr, $v:ident => $body:expr) => {
        match $arr {
            MetadataArray::U8($v) => $body,
            MetadataArray::I8($v) => $body,
            MetadataArray::U16($v) => $body,
            MetadataArray::I16($v) => $body,
            MetadataArray::U32($v) => $body,
            MetadataArray::I32($v) => $body,
            MetadataArray::F32($v) => $body,
            MetadataArray::Bool($v) => $body,
            MetadataArray::String($v) => $body,
            MetadataArray::Array($v) => $body,
            MetadataArray::U64($v) => $body,
            MetadataArray::I64($v) => $body,
            MetadataArray::F64($v) => $body,
        }
    };
}

impl MetadataValue {
    pub fn value_type(&self) -> ValueType {
        use MetadataValue as M;
        match self {
            M::U8(_) => ValueType::U8,
            M::I8(_) => ValueType::I8,
            M::U16(_) => ValueType::U16,
            M::I16(_) => ValueType::I16,
            M::U32(_) => ValueType::U32,
            M::I32(_) => ValueType::I32,
            M::F32(_) => ValueType::F32,
            M::Bool(_) => ValueType::Bool,
            M::String(_) => ValueType::String,
            M::Array(_) => ValueType::Array,
            M::U64(_) => ValueType::U64,
            M::I64(_) => ValueType::I64,
            M::F64(_) => ValueType::F64,
        }
    }

    /// "u32", "string", "array<string>", "array<array>".
    pub fn type_name(&self) -> String {
        match self {
            MetadataValue::Array(a) => a.type_name(),
            v => v.value_type().name().to_string(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Any integer type whose value is non-negative.
    pub fn as_u64(&self) -> Option<u64> {
        use MetadataValue as M;
        match *self {
            M::U8(v) => Some(v.into()),
            M::U16(v) => Some(v.into()),
            M::U32(v) => Some(v.into()),
            M::U64(v) => Some(v),
            M::I8(v) => u64::try_from(v).ok(),
            M::I16(v) => u64::try_from(v).ok(),
            M::I32(v) => u64::try_from(v).ok(),
            M::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type whose value fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        use MetadataValue as M;
        match *self {
            M::I8(v) => Some(v.into()),
            M::I16(v) => Some(v.into()),
            M::I32(v) => Some(v.into()),
            M::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// Floats, and integers converted (some converters write e.g. `rope.freq_base` as an int).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetadataValue::F32(v) => Some(v.into()),
            MetadataValue::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64).or_else(|| self.as_u64().map(|v| v as f64)),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetadataValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&MetadataArray> {
        match self {
            MetadataValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl MetadataArray {
    pub fn len(&self) -> usize {
        with_vec!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn element_type(&self) -> ValueType {
        use MetadataArray as A;
        match self {
            A::U8(_) => ValueType::U8,
            A::I8(_) => ValueType::I8,
            A::U16(_) => ValueType::U16,
            A::I16(_) => ValueType::I16,
            A::U32(_) => ValueType::U32,
            A::I32(_) => ValueType::I32,
            A::F32(_) => ValueType::F32,
            A::Bool(_) => ValueType::Bool,
            A::String(_) => ValueType::String,
            A::Array(_) => ValueType::Array,
            A::U64(_) => ValueType::U64,
            A::I64(_) => ValueType::I64,
            A::F64(_) => ValueType::F64,
        }
    }

    pub fn type_name(&self) -> String {
        format!("array<{}>", self.element_type().name())
    }

    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            MetadataArray::String(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_f32s(&self) -> Option<&[f32]> {
        match self {
            MetadataArray::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_i32s(&self) -> Option<&[i32]> {
        match self {
            MetadataArray::I32(v) => Some(v),
            _ => None,
        }
    }

    /// Serializes the first `n` elements (nested arrays abbreviated to `max` each).
    fn serialize_head<S: Serializer>(&self, n: usize, max: usize, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MetadataArray::Array(v) => {
                let mut seq = s.serialize_seq(Some(n.min(v.len())))?;
                for a in v.iter().take(n) {
                    seq.serialize_element(&AbbreviatedArray { array: a, max })?;
                }
                seq.end()
            }
            _ => with_vec!(self, v => v.iter().take(n).collect::<Vec<_>>().serialize(s)),
        }
    }

    /// Writes `[string; 49152] ["a", "b", ...]` showing at most `max` elements.
    fn fmt_abbrev(&self, out: &mut String, max: usize) {
        let _ = write!(out, "[{}; {}] [", self.element_type().name(), self.len());
        let n = self.len().min(max);
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            match self {
                MetadataArray::String(v) => push_quoted(out, &v[i], 40),
                MetadataArray::Array(v) => v[i].fmt_abbrev(out, max),
                _ => with_vec!(self, v => { let _ = write!(out, "{:?}", v[i]); }),
            }
        }
        if self.len() > n {
            out.push_str(", ...");
        }
        out.push(']');
    }
}

/// Quotes and escapes `s`, cutting it after `max_chars` characters.
fn push_quoted(out: &mut String, s: &str, max_chars: usize) {
    out.push('"');
    let mut chars = s.chars();
    for c in chars.by_ref().take(max_chars) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out.push('"');
    let rest = chars.count();
    if rest > 0 {
        let _ = write!(out, "... ({} chars)", max_chars + rest);
    }
}

/// A value shown with arrays longer than `max` cut to their first `max` elements. In JSON such
/// an array becomes `{"type": "array<string>", "len": 49152, "head": [...]}`; as text,
/// `[string; 49152] ["a", "b", ...]` with long strings cut too.
#[derive(Debug, Clone, Copy)]
pub struct Abbreviated<'a> {
    pub value: &'a MetadataValue,
    pub max: usize,
}

struct AbbreviatedArray<'a> {
    array: &'a MetadataArray,
    max: usize,
}

impl Serialize for AbbreviatedArray<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (a, max) = (self.array, self.max);
        if a.len() <= max && !matches!(a, MetadataArray::Array(_)) {
            return a.serialize(s);
        }
        if a.len() <= max {
            return a.serialize_head(max, max, s);
        }
        struct Head<'b>(&'b MetadataArray, usize);
        impl Serialize for Head<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.0.serialize_head(self.1, self.1, s)
            }
        }
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("type", &a.type_name())?;
        m.serialize_entry("len", &a.len())?;
        m.serialize_entry("head", &Head(a, max))?;
        m.end()
    }
}

impl Serialize for Abbreviated<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value {
            MetadataValue::Array(a) => AbbreviatedArray { array: a, max: self.max }.serialize(s),
            v => v.serialize(s),
        }
    }
}

impl fmt::Display for Abbreviated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        match self.value {
            MetadataValue::String(s) => push_quoted(&mut out, s, 80),
            MetadataValue::Array(a) => a.fmt_abbrev(&mut out, self.max),
            MetadataValue::F32(v) => out = format!("{v:?}"),
            MetadataValue::F64(v) => out = format!("{v:?}"),
            MetadataValue::Bool(v) => out = v.to_string(),
            v => {
                out = match (v.as_u64(), v.as_i64()) {
                    (Some(u), _) => u.to_string(),
                    (None, Some(i)) => i.to_string(),
                    (None, None) => format!("{v:?}"),
                }
            }
        }
        f.write_str(&out)
    }
}

/// All metadata as one JSON object in file order, arrays longer than `max` abbreviated.
#[derive(Debug, Clone, Copy)]
pub struct MetadataJson<'a> {
    pub entries: &'a [(String, MetadataValue)],
    pub max: usize,
}

impl Serialize for MetadataJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in self.entries {
            m.serialize_entry(k, &Abbreviated { value: v, max: self.max })?;
        }
        m.end()
    }
}
