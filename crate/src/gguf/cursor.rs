//! The bounds-checked byte cursor under the GGUF reader: primitive values, strings and
//! metadata arrays. Every count is checked against the remaining prefix before anything is
//! allocated for it.

use super::error::GgufError;
use super::metadata::{MetadataArray, MetadataValue, ValueType};

/// Nested arrays deeper than this are rejected (real files nest at most once; the limit keeps
/// recursion off the stack's edge).
const MAX_ARRAY_DEPTH: u32 = 8;

/// Describes what is being read, built only when an error needs it.
pub(super) type Ctx<'a> = &'a dyn Fn() -> String;

/// A bounds-checked little-endian reader over the prefix.
pub(super) struct Cursor<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    pub(super) file_len: u64,
}

impl<'a> Cursor<'a> {
    fn truncated(&self, ctx: Ctx, needed: u64) -> GgufError {
        GgufError::Truncated { context: ctx(), needed, available: self.buf.len() as u64, file_len: self.file_len }
    }

    /// Errors unless `count` items of at least `min_each` bytes fit in the rest of the prefix;
    /// called before allocating for a count read from the file.
    pub(super) fn ensure_count(&self, count: u64, min_each: u64, ctx: Ctx) -> Result<(), GgufError> {
        let needed = count.checked_mul(min_each).and_then(|n| n.checked_add(self.pos as u64));
        match needed {
            Some(n) if n <= self.buf.len() as u64 => Ok(()),
            Some(n) => Err(self.truncated(ctx, n)),
            None => Err(GgufError::Inconsistent(format!("{} is impossibly large ({count})", ctx()))),
        }
    }

    /// A count already checked by `ensure_count` (so it fits the prefix, hence a usize).
    pub(super) fn as_usize(&self, n: u64) -> Result<usize, GgufError> {
        usize::try_from(n).map_err(|_| GgufError::Inconsistent(format!("count {n} does not fit in memory")))
    }

    pub(super) fn take(&mut self, n: usize, ctx: Ctx) -> Result<&'a [u8], GgufError> {
        let end = self.pos.checked_add(n);
        match end.and_then(|e| self.buf.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.truncated(ctx, (self.pos as u64).saturating_add(n as u64))),
        }
    }

    fn array<const N: usize>(&mut self, ctx: Ctx) -> Result<[u8; N], GgufError> {
        let s = self.take(N, ctx)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(super) fn u32(&mut self, ctx: Ctx) -> Result<u32, GgufError> {
        self.array(ctx).map(u32::from_le_bytes)
    }

    pub(super) fn u64(&mut self, ctx: Ctx) -> Result<u64, GgufError> {
        self.array(ctx).map(u64::from_le_bytes)
    }

    pub(super) fn string(&mut self, ctx: Ctx) -> Result<String, GgufError> {
        let len = self.u64(&|| format!("the length of {}", ctx()))?;
        self.ensure_count(len, 1, ctx)?;
        let bytes = self.take(self.as_usize(len)?, ctx)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8(ctx()))
    }

    fn bool(&mut self, ctx: Ctx) -> Result<bool, GgufError> {
        match self.array::<1>(ctx)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(GgufError::Inconsistent(format!("{} is a bool stored as {b} (must be 0 or 1)", ctx()))),
        }
    }

    pub(super) fn value(&mut self, ty: ValueType, key: &str) -> Result<MetadataValue, GgufError> {
        let ctx = &|| format!("the value of metadata key '{key}'");
        use MetadataValue as M;
        Ok(match ty {
            ValueType::U8 => M::U8(u8::from_le_bytes(self.array(ctx)?)),
            ValueType::I8 => M::I8(i8::from_le_bytes(self.array(ctx)?)),
            ValueType::U16 => M::U16(u16::from_le_bytes(self.array(ctx)?)),
            ValueType::I16 => M::I16(i16::from_le_bytes(self.array(ctx)?)),
            ValueType::U32 => M::U32(u32::from_le_bytes(self.array(ctx)?)),
            ValueType::I32 => M::I32(i32::from_le_bytes(self.array(ctx)?)),
            ValueType::F32 => M::F32(f32::from_le_bytes(self.array(ctx)?)),
            ValueType::U64 => M::U64(u64::from_le_bytes(self.array(ctx)?)),
            ValueType::I64 => M::I64(i64::from_le_bytes(self.array(ctx)?)),
            ValueType::F64 => M::F64(f64::from_le_bytes(self.array(ctx)?)),
            ValueType::Bool => M::Bool(self.bool(ctx)?),
            ValueType::String => M::String(self.string(ctx)?),
            ValueType::Array => M::Array(self.metadata_array(key, 0)?),
        })
    }

    /// An array body: element type, count, elements.
    fn metadata_array(&mut self, key: &str, depth: u32) -> Result<MetadataArray, GgufError> {
        let ctx = &|| format!("the array in metadata key '{key}'");
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::Inconsistent(format!("{} nests arrays more than {MAX_ARRAY_DEPTH} deep", ctx())));
        }
        let type_id = self.u32(ctx)?;
        let ty = ValueType::from_id(type_id)
            .ok_or_else(|| GgufError::UnknownValueType { key: key.to_string(), id: type_id })?;
        let n = self.u64(ctx)?;
        self.ensure_count(n, ty.min_size(), &|| format!("{} ({n} x {})", ctx(), ty.name()))?;
        let n = self.as_usize(n)?;
        // Fixed-size elements: one bounds check, then decode the chunk.
        macro_rules! fixed {
            ($variant:ident, $t:ty) => {{
                const W: usize = std::mem::size_of::<$t>();
                let bytes = self.take(n * W, ctx)?;
                MetadataArray::$variant(
                    bytes
                        .chunks_exact(W)
                        .map(|c| {
                            let mut a = [0u8; W];
                            a.copy_from_slice(c);
                            <$t>::from_le_bytes(a)
                        })
                        .collect(),
                )
            }};
        }
        Ok(match ty {
            ValueType::U8 => fixed!(U8, u8),
            ValueType::I8 => fixed!(I8, i8),
            ValueType::U16 => fixed!(U16, u16),
            ValueType::I16 => fixed!(I16, i16),
            ValueType::U32 => fixed!(U32, u32),
            ValueType::I32 => fixed!(I32, i32),
            ValueType::F32 => fixed!(F32, f32),
            ValueType::U64 => fixed!(U64, u64),
            ValueType::I64 => fixed!(I64, i64),
            ValueType::F64 => fixed!(F64, f64),
            ValueType::Bool => {
                let mut v = Vec::with_capacity(n);
                for j in 0..n {
                    v.push(self.bool(&|| format!("element {j} of metadata key '{key}'"))?);
                }
                MetadataArray::Bool(v)
            }
            ValueType::String => {
                let mut v = Vec::with_capacity(n);
                for j in 0..n {
                    v.push(self.string(&|| format!("element {j} of metadata key '{key}'"))?);
                }
                MetadataArray::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.metadata_array(key, depth + 1)?);
                }
                MetadataArray::Array(v)
            }
        })
    }
}
