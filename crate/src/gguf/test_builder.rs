//! A tiny GGUF writer for tests only: builds small valid files and, through the raw hooks,
//! malformed ones. It uses no crate types (ids are plain numbers) so the integration tests can
//! include this very file with `#[path]` instead of keeping a second copy.
#![allow(dead_code)]

/// Value type ids of the GGUF spec.
pub mod vt {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U16: u32 = 2;
    pub const I16: u32 = 3;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
    pub const I64: u32 = 11;
    pub const F64: u32 = 12;
}

/// Tensor type ids used by the tests.
pub mod tt {
    pub const F32: u32 = 0;
    pub const F16: u32 = 1;
    pub const Q4_0: u32 = 2;
    pub const Q4_1: u32 = 3;
    pub const Q8_0: u32 = 8;
}

/// A length-prefixed GGUF string.
pub fn gguf_str(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// The body of an array value: element type, count, encoded elements.
pub fn array_body(elem_type: u32, n: u64, elems: &[u8]) -> Vec<u8> {
    let mut v = elem_type.to_le_bytes().to_vec();
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(elems);
    v
}

struct Tensor {
    name: Vec<u8>,
    dims: Vec<u64>,
    type_id: u32,
    offset: Option<u64>,
    n_bytes: u64,
}

/// Builds a little-endian GGUF file in memory.
pub struct GgufBuilder {
    pub magic: [u8; 4],
    pub version: u32,
    /// Padding used to lay out the data section; `alignment()` also writes the key.
    pub align: u64,
    pub n_tensors_override: Option<u64>,
    pub n_kv_override: Option<u64>,
    kv: Vec<u8>,
    n_kv: u64,
    tensors: Vec<Tensor>,
}

impl Default for GgufBuilder {
    fn default() -> Self {
        GgufBuilder {
            magic: *b"GGUF",
            version: 3,
            align: 32,
            n_tensors_override: None,
            n_kv_override: None,
            kv: Vec::new(),
            n_kv: 0,
            tensors: Vec::new(),
        }
    }
}

impl GgufBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A key with an already-encoded value.
    pub fn kv_raw(mut self, key: &[u8], type_id: u32, value: &[u8]) -> Self {
        self.kv.extend(gguf_str(key));
        self.kv.extend_from_slice(&type_id.to_le_bytes());
        self.kv.extend_from_slice(value);
        self.n_kv += 1;
        self
    }

    pub fn kv_u32(self, key: &str, v: u32) -> Self {
        self.kv_raw(key.as_bytes(), vt::U32, &v.to_le_bytes())
    }

    pub fn kv_u64(self, key: &str, v: u64) -> Self {
        self.kv_raw(key.as_bytes(), vt::U64, &v.to_le_bytes())
    }

    pub fn kv_f32(self, key: &str, v: f32) -> Self {
        self.kv_raw(key.as_bytes(), vt::F32, &v.to_le_bytes())
    }

    pub fn kv_bool(self, key: &str, v: bool) -> Self {
        self.kv_raw(key.as_bytes(), vt::BOOL, &[v as u8])
    }

    pub fn kv_str(self, key: &str, v: &str) -> Self {
        self.kv_raw(key.as_bytes(), vt::STRING, &gguf_str(v.as_bytes()))
    }

    pub fn kv_str_array(self, key: &str, items: &[&str]) -> Self {
        let elems: Vec<u8> = items.iter().flat_map(|s| gguf_str(s.as_bytes())).collect();
        self.kv_raw(key.as_bytes(), vt::ARRAY, &array_body(vt::STRING, items.len() as u64, &elems))
    }

    pub fn kv_i32_array(self, key: &str, items: &[i32]) -> Self {
        let elems: Vec<u8> = items.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.kv_raw(key.as_bytes(), vt::ARRAY, &array_body(vt::I32, items.len() as u64, &elems))
    }

    /// Sets the layout alignment and writes `general.alignment` as a u32.
    pub fn alignment(mut self, a: u32) -> Self {
        self.align = u64::from(a.max(1));
        self.kv_u32("general.alignment", a)
    }

    /// A tensor of a test type (F32/F16/Q4_0/Q4_1/Q8_0) placed after the previous one.
    pub fn tensor(self, name: &str, dims: &[u64], type_id: u32) -> Self {
        let (block, size) = match type_id {
            tt::F32 => (1, 4),
            tt::F16 => (1, 2),
            tt::Q4_0 => (32, 18),
            tt::Q4_1 => (32, 20),
            tt::Q8_0 => (32, 34),
            _ => panic!("test builder: give the size of type {type_id} with tensor_raw"),
        };
        let n: u64 = dims.iter().product();
        self.tensor_raw(name.as_bytes(), dims, type_id, None, n.div_ceil(block) * size)
    }

    /// Full control: `offset` None means "after the previous tensor, aligned".
    pub fn tensor_raw(mut self, name: &[u8], dims: &[u64], type_id: u32, offset: Option<u64>, n_bytes: u64) -> Self {
        self.tensors.push(Tensor { name: name.to_vec(), dims: dims.to_vec(), type_id, offset, n_bytes });
        self
    }

    /// Offsets (relative to the data section) each tensor gets.
    pub fn offsets(&self) -> Vec<u64> {
        let mut next = 0u64;
        self.tensors
            .iter()
            .map(|t| {
                let off = t.offset.unwrap_or(next.next_multiple_of(self.align));
                next = off.wrapping_add(t.n_bytes);
                off
            })
            .collect()
    }

    /// The header: everything up to (not including) the padding before the data section.
    pub fn header(&self) -> Vec<u8> {
        let mut out = self.magic.to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.n_tensors_override.unwrap_or(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.n_kv_override.unwrap_or(self.n_kv).to_le_bytes());
        out.extend_from_slice(&self.kv);
        for (t, off) in self.tensors.iter().zip(self.offsets()) {
            out.extend(gguf_str(&t.name));
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            out.extend_from_slice(&off.to_le_bytes());
        }
        out
    }

    /// The whole file. Tensor `i`'s byte `j` is `(i * 31 + j) as u8`.
    pub fn build(&self) -> Vec<u8> {
        let mut out = self.header();
        let data_offset = (out.len() as u64).next_multiple_of(self.align);
        let end = self.tensors.iter().zip(self.offsets()).map(|(t, o)| o + t.n_bytes).max().unwrap_or(0);
        out.resize((data_offset + end) as usize, 0);
        for (i, (t, off)) in self.tensors.iter().zip(self.offsets()).enumerate() {
            for j in 0..t.n_bytes {
                out[(data_offset + off + j) as usize] = (i as u64 * 31 + j) as u8;
            }
        }
        out
    }
}

/// A small valid llama-like file exercising every value type, nested arrays and a few tensors.
pub fn sample() -> GgufBuilder {
    let nested = {
        let inner1 = array_body(vt::U8, 3, &[1, 2, 3]);
        let inner2 = array_body(vt::STRING, 1, &gguf_str(b"x"));
        array_body(vt::ARRAY, 2, &[inner1, inner2].concat())
    };
    GgufBuilder::new()
        .kv_str("general.architecture", "llama")
        .kv_str("general.name", "tiny")
        .kv_u32("general.file_type", 3)
        .kv_u32("llama.block_count", 1)
        .kv_u32("llama.context_length", 128)
        .kv_u32("llama.embedding_length", 64)
        .kv_u32("llama.feed_forward_length", 96)
        .kv_u32("llama.attention.head_count", 4)
        .kv_u64("llama.attention.head_count_kv", 2)
        .kv_f32("llama.rope.freq_base", 10000.0)
        .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        .kv_raw(b"t.u8", vt::U8, &[200])
        .kv_raw(b"t.i8", vt::I8, &[0xFF])
        .kv_raw(b"t.u16", vt::U16, &65535u16.to_le_bytes())
        .kv_raw(b"t.i16", vt::I16, &(-2i16).to_le_bytes())
        .kv_raw(b"t.i32", vt::I32, &(-3i32).to_le_bytes())
        .kv_raw(b"t.i64", vt::I64, &(-4i64).to_le_bytes())
        .kv_raw(b"t.f64", vt::F64, &2.5f64.to_le_bytes())
        .kv_bool("t.bool", true)
        .kv_raw(b"t.nested", vt::ARRAY, &nested)
        .kv_str("tokenizer.ggml.model", "gpt2")
        .kv_str_array("tokenizer.ggml.tokens", &["a", "b", "c", "d", "e"])
        .kv_i32_array("tokenizer.ggml.token_type", &[1, 1, 1, 1, 3])
        .tensor("token_embd.weight", &[64, 5], tt::Q8_0)
        .tensor("blk.0.attn_norm.weight", &[64], tt::F32)
        .tensor("blk.0.attn_q.weight", &[64, 64], tt::Q4_1)
        .tensor("output.weight", &[64, 5], tt::F16)
}
