//! The CPU forward's KV cache ([`KvCache`]) in one of five storage types ([`KvType`]): keys and
//! values are quantized when a position is written and dequantized when attention reads them,
//! so the cache really takes the memory its type says (not an f32 cache of rounded values).
//!
//! # The rules (one position, one KV head: `head_dim` values `x`)
//!
//! | type | bytes/value | rule |
//! |---|---|---|
//! | `f32` | 4 | stored as is (the reference) |
//! | `f16` | 2 | IEEE half, round to nearest even (`half::f16::from_f32`), as the GPU's f16 cache |
//! | `int8` | 1 + 4/head_dim | `s = max|x| / 127`, `q = round_half_even(x · (1/s))` clamped to ±127, `x̂ = q · s` |
//! | `int4` | ½ + 4/32 | per group of 32 values within the head: `s = max|x| / 7`, `q = round_half_even(x · (1/s))` clamped to ±7, `x̂ = q · s` |
//! | `fp8` | 1 + 4/head_dim | `s = max|x| / 448`, `q = e4m3(x / s)` (RNE, saturating), `x̂ = decode(q) · s` |
//!
//! An all-zero head (or int4 group) gets `s = 0` and reconstructs as zeros. Scales are f32.
//!
//! - **int8** is the GPU cache's rule (`shaders/kv_cache.wgsl`, `gpu::forward::kernels::kv_store_cpu`
//!   calls [`int8_encode`]): the same codes and scales, so the same dequantized values.
//! - **int4** is symmetric round-half-even with 15 levels and an f32 scale per group of 32
//!   (5 bits per value). llama.cpp's `--cache-type-k q4_0` uses ggml's Q4_0 block instead: 32
//!   values, an f16 scale `d = m / −8` where `m` is the value of largest magnitude WITH its sign,
//!   `q = trunc(x/d + 8.5)` clamped to 0..15 (16 levels, −8..7, round half up), 4.5 bits per
//!   value. Ours gives up Q4_0's 16th level (which only the extreme's side can use) for a range
//!   symmetric around zero and the same rounding as int8; the f32 scale costs ½ bit per value
//!   more and cannot overflow or flush to zero the way an f16 scale of an extreme head could.
//! - **fp8** is E4M3 ("fn", max 448) through [`crate::formats::fp8`] with a scale per
//!   (position, head) as the crate's per-row FP8 weights (`Fp8Tensor`): the head's largest value
//!   maps to 448, so small values stay clear of E4M3's subnormals. vLLM's `fp8_e4m3` cache
//!   instead scales per tensor (by default 1.0, a plain cast); a per-head scale costs 4 bytes per
//!   head and position and needs no calibration.
//!
//! Dequantization is deterministic, so the per-position forward and the batched forward, which
//! both read the cache through [`KvCache::key`] and [`KvCache::value`], stay bit-identical.

use half::f16;

use crate::formats::fp8::{encode_scaled, Fp8Format};

/// Values per int4 scale (ggml's Q4_0 block size; within one head, the last group of a head
/// whose width is not a multiple of 32 is shorter).
pub const INT4_GROUP: usize = 32;

/// How the KV cache stores keys and values (CPU forward; the GPU forward stores the first three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KvType {
    /// 4 bytes per value: the reference.
    #[default]
    F32,
    /// 2 bytes per value, IEEE half (round to nearest even).
    F16,
    /// 1 byte per value + one f32 scale per (position, KV head): max|x| / 127.
    Int8,
    /// 4 bits per value + one f32 scale per group of 32 values of a head: max|x| / 7.
    Int4,
    /// FP8 E4M3 per value + one f32 scale per (position, KV head): max|x| / 448.
    Fp8,
}

/// A KV cache type name that is not one, or a type the GPU forward cannot store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvTypeError {
    #[error("unknown KV cache type '{name}' (expected f32, f16, int8, int4 or fp8)")]
    Unknown { name: String },
    #[error("KV cache {}: the GPU forward stores f32, f16 or int8 only; {} runs on the CPU forward", kv.name(), kv.name())]
    NotOnGpu { kv: KvType },
}

impl KvType {
    /// Every type, in the order the CLI lists them.
    pub const ALL: [KvType; 5] = [KvType::F32, KvType::F16, KvType::Int8, KvType::Int4, KvType::Fp8];

    /// The canonical name (`--kv-cache NAME`, the binding's `kvCache`).
    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Int8 => "int8",
            KvType::Int4 => "int4",
            KvType::Fp8 => "fp8",
        }
    }

    /// Other spellings accepted for the type.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            KvType::F32 | KvType::F16 => &[],
            KvType::Int8 => &["i8", "q8"],
            KvType::Int4 => &["i4"],
            KvType::Fp8 => &["fp8-e4m3", "e4m3"],
        }
    }

    /// Parses a name or alias (case-insensitive); the one parser of KV type names.
    pub fn parse(s: &str) -> Result<KvType, KvTypeError> {
        let lower = s.to_ascii_lowercase();
        KvType::ALL
            .into_iter()
            .find(|k| k.name() == lower || k.aliases().contains(&lower.as_str()))
            .ok_or_else(|| KvTypeError::Unknown { name: s.to_string() })
    }

    /// `Ok` where the GPU forward stores this type too (f32, f16, int8), else
    /// [`KvTypeError::NotOnGpu`].
    pub fn on_gpu(self) -> Result<(), KvTypeError> {
        match self {
            KvType::F32 | KvType::F16 | KvType::Int8 => Ok(()),
            KvType::Int4 | KvType::Fp8 => Err(KvTypeError::NotOnGpu { kv: self }),
        }
    }

    /// Bytes one (position, KV head) of `head_dim` values takes, scales included.
    pub fn head_bytes(self, head_dim: usize) -> usize {
        match self {
            KvType::F32 => 4 * head_dim,
            KvType::F16 => 2 * head_dim,
            KvType::Int8 | KvType::Fp8 => head_dim + 4,
            KvType::Int4 => head_dim.div_ceil(2) + 4 * head_dim.div_ceil(INT4_GROUP),
        }
    }

    /// Bytes a cache of this type takes for `positions` positions of a model of `config`: keys and
    /// values, every layer and KV head, scales included (what [`KvCache::bytes`] allocates). The
    /// lab's "size at context N" column reads it.
    pub fn cache_bytes(self, config: &super::Config, positions: usize) -> u64 {
        2 * (config.n_layers * config.n_kv_heads) as u64 * positions as u64 * self.head_bytes(config.head_dim) as u64
    }

    /// Scales per (position, KV head).
    fn scales_per_head(self, head_dim: usize) -> usize {
        match self {
            KvType::F32 | KvType::F16 => 0,
            KvType::Int8 | KvType::Fp8 => 1,
            KvType::Int4 => head_dim.div_ceil(INT4_GROUP),
        }
    }
}

impl std::str::FromStr for KvType {
    type Err = KvTypeError;
    fn from_str(s: &str) -> Result<KvType, KvTypeError> {
        KvType::parse(s)
    }
}

impl std::fmt::Display for KvType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The int8 rule of one head (shared with the GPU cache's CPU twin): writes the codes of
/// `values` into `codes` and returns the scale `max|x| / 127` (0 for an all-zero head).
pub fn int8_encode(values: &[f32], codes: &mut [i8]) -> f32 {
    symmetric_encode(values, codes, 127.0)
}

/// `s = max|x| / levels`, `q = round_half_even(x · (1/s))` clamped to ±levels; returns `s`.
fn symmetric_encode(values: &[f32], codes: &mut [i8], levels: f32) -> f32 {
    let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = amax / levels;
    // Multiplying by the reciprocal (not dividing by s) is what the GPU shader does.
    let inv = if amax > 0.0 { 1.0 / scale } else { 0.0 };
    for (c, &v) in codes.iter_mut().zip(values) {
        *c = (v * inv).round_ties_even().clamp(-levels, levels) as i8;
    }
    scale
}

/// One of the two tensors (keys or values) in its storage type. Element `e` of (layer, pos)
/// is at `(layer·capacity + pos)·kv_dim + e`, as in an f32 cache; scale `i` of a head at
/// `((layer·capacity + pos)·n_kv_heads + head)·scales_per_head + i`.
#[derive(Debug, Clone)]
enum Store {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Int8 {
        codes: Vec<i8>,
        scales: Vec<f32>,
    },
    /// Two codes per byte (element `e` in the low nibble of byte `e/2` when `e` is even), each
    /// a 4-bit two's complement number in −7..=7.
    Int4 {
        nibbles: Vec<u8>,
        scales: Vec<f32>,
    },
    /// `decoded[c]` = E4M3 code `c` as f32 (exact): attention's reads are a table lookup.
    Fp8 {
        codes: Vec<u8>,
        scales: Vec<f32>,
        decoded: Box<[f32; 256]>,
    },
}

impl Store {
    fn new(kind: KvType, values: usize, scales: usize) -> Store {
        match kind {
            KvType::F32 => Store::F32(vec![0.0; values]),
            KvType::F16 => Store::F16(vec![f16::ZERO; values]),
            KvType::Int8 => Store::Int8 { codes: vec![0; values], scales: vec![0.0; scales] },
            KvType::Int4 => Store::Int4 { nibbles: vec![0; values.div_ceil(2)], scales: vec![0.0; scales] },
            KvType::Fp8 => Store::Fp8 {
                codes: vec![0; values],
                scales: vec![0.0; scales],
                decoded: Box::new(std::array::from_fn(|c| Fp8Format::E4M3.decode(c as u8))),
            },
        }
    }

    fn clear(&mut self) {
        match self {
            Store::F32(v) => v.fill(0.0),
            Store::F16(v) => v.fill(f16::ZERO),
            Store::Int8 { codes, scales } => (codes.fill(0), scales.fill(0.0)).1,
            Store::Int4 { nibbles, scales } => (nibbles.fill(0), scales.fill(0.0)).1,
            Store::Fp8 { codes, scales, .. } => (codes.fill(0), scales.fill(0.0)).1,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Store::F32(v) => 4 * v.len(),
            Store::F16(v) => 2 * v.len(),
            Store::Int8 { codes, scales } => codes.len() + 4 * scales.len(),
            Store::Int4 { nibbles, scales } => nibbles.len() + 4 * scales.len(),
            Store::Fp8 { codes, scales, .. } => codes.len() + 4 * scales.len(),
        }
    }

    /// Stores one head's values `x` at element `at` with its scales at `scale_at`.
    fn put(&mut self, x: &[f32], at: usize, scale_at: usize) {
        match self {
            Store::F32(v) => v[at..at + x.len()].copy_from_slice(x),
            Store::F16(v) => v[at..at + x.len()].iter_mut().zip(x).for_each(|(o, &xi)| *o = f16::from_f32(xi)),
            Store::Int8 { codes, scales } => scales[scale_at] = int8_encode(x, &mut codes[at..at + x.len()]),
            Store::Int4 { nibbles, scales } => {
                let mut codes = [0i8; INT4_GROUP];
                for (g, group) in x.chunks(INT4_GROUP).enumerate() {
                    scales[scale_at + g] = symmetric_encode(group, &mut codes, 7.0);
                    for (j, &c) in codes[..group.len()].iter().enumerate() {
                        let e = at + g * INT4_GROUP + j;
                        let shift = 4 * (e % 2);
                        let byte = &mut nibbles[e / 2];
                        *byte = (*byte & !(0xF << shift)) | ((c as u8 & 0xF) << shift);
                    }
                }
            }
            Store::Fp8 { codes, scales, .. } => {
                let s = x.iter().fold(0f32, |m, v| m.max(v.abs())) / Fp8Format::E4M3.max();
                scales[scale_at] = s;
                for (c, &xi) in codes[at..at + x.len()].iter_mut().zip(x) {
                    *c = encode_scaled(Fp8Format::E4M3, xi, s);
                }
            }
        }
    }

    /// One head's dequantized values (`out.len()` of them from element `at`): the stored
    /// slice itself for f32, else decoded into `out`.
    fn get<'a>(&'a self, at: usize, scale_at: usize, out: &'a mut [f32]) -> &'a [f32] {
        let n = out.len();
        match self {
            Store::F32(v) => return &v[at..at + n],
            Store::F16(v) => out.iter_mut().zip(&v[at..at + n]).for_each(|(o, h)| *o = h.to_f32()),
            Store::Int8 { codes, scales } => {
                let s = scales[scale_at];
                out.iter_mut().zip(&codes[at..at + n]).for_each(|(o, &c)| *o = f32::from(c) * s);
            }
            Store::Int4 { nibbles, scales } => {
                for (j, o) in out.iter_mut().enumerate() {
                    let e = at + j;
                    // Sign-extend the nibble: shift it to the top of an i8, then back.
                    let code = ((nibbles[e / 2] >> (4 * (e % 2))) << 4) as i8 >> 4;
                    *o = f32::from(code) * scales[scale_at + j / INT4_GROUP];
                }
            }
            Store::Fp8 { codes, scales, decoded } => {
                let s = scales[scale_at];
                out.iter_mut().zip(&codes[at..at + n]).for_each(|(o, &c)| *o = decoded[usize::from(c)] * s);
            }
        }
        out
    }
}

/// Keys and values of every layer and position of one sequence, stored as a [`KvType`].
#[derive(Debug, Clone)]
pub struct KvCache {
    kind: KvType,
    n_kv_heads: usize,
    head_dim: usize,
    capacity: usize,
    keys: Store,
    values: Store,
}

impl KvCache {
    /// A zeroed cache of `n_layers × capacity` positions of `n_kv_heads` heads of `head_dim`.
    ///
    /// Panics if the size overflows `usize` (callers size `capacity` by what they need; see
    /// [`super::State::new`]).
    pub fn new(kind: KvType, n_layers: usize, capacity: usize, n_kv_heads: usize, head_dim: usize) -> KvCache {
        let heads = n_layers
            .checked_mul(capacity)
            .and_then(|n| n.checked_mul(n_kv_heads))
            .expect("KV cache size overflows usize: ask for fewer positions");
        let values = heads.checked_mul(head_dim).expect("KV cache size overflows usize: ask for fewer positions");
        let scales = heads * kind.scales_per_head(head_dim);
        KvCache {
            kind,
            n_kv_heads,
            head_dim,
            capacity,
            keys: Store::new(kind, values, scales),
            values: Store::new(kind, values, scales),
        }
    }

    pub fn kind(&self) -> KvType {
        self.kind
    }

    /// Bytes the keys and values take, scales included.
    pub fn bytes(&self) -> usize {
        self.keys.bytes() + self.values.bytes()
    }

    /// Zeroes every position (a fresh sequence).
    pub fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
    }

    /// Stores position `pos` of layer `layer`: `k` and `v` hold all KV heads (`kv_dim` values).
    pub fn write(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let kv_dim = self.n_kv_heads * self.head_dim;
        assert!(k.len() == kv_dim && v.len() == kv_dim, "{} and {} values for a kv_dim of {kv_dim}", k.len(), v.len());
        assert!(pos < self.capacity, "position {pos} beyond the cache's capacity {}", self.capacity);
        for h in 0..self.n_kv_heads {
            let (at, scale_at) = self.offsets(layer, pos, h);
            let range = h * self.head_dim..(h + 1) * self.head_dim;
            self.keys.put(&k[range.clone()], at, scale_at);
            self.values.put(&v[range], at, scale_at);
        }
    }

    /// The dequantized keys of KV head `head` at (layer, pos): `head_dim` values, decoded into
    /// `scratch` (`head_dim` long) unless the cache is f32.
    pub fn key<'a>(&'a self, layer: usize, pos: usize, head: usize, scratch: &'a mut [f32]) -> &'a [f32] {
        let (at, scale_at) = self.offsets(layer, pos, head);
        self.keys.get(at, scale_at, &mut scratch[..self.head_dim])
    }

    /// The dequantized values of KV head `head` at (layer, pos), as [`KvCache::key`].
    pub fn value<'a>(&'a self, layer: usize, pos: usize, head: usize, scratch: &'a mut [f32]) -> &'a [f32] {
        let (at, scale_at) = self.offsets(layer, pos, head);
        self.values.get(at, scale_at, &mut scratch[..self.head_dim])
    }

    /// Element and scale offsets of (layer, pos, head).
    fn offsets(&self, layer: usize, pos: usize, head: usize) -> (usize, usize) {
        let h = (layer * self.capacity + pos) * self.n_kv_heads + head;
        (h * self.head_dim, h * self.kind.scales_per_head(self.head_dim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_unknown_names_are_errors() {
        for k in KvType::ALL {
            assert_eq!(KvType::parse(k.name()), Ok(k));
            assert_eq!(KvType::parse(&k.name().to_uppercase()), Ok(k));
        }
        let e = KvType::parse("q4_0").unwrap_err();
        assert_eq!(e.to_string(), "unknown KV cache type 'q4_0' (expected f32, f16, int8, int4 or fp8)");
    }

    #[test]
    fn int4_by_hand() {
        // One head of 4 values: s = 3.5 / 7 = 0.5; 1.25 / 0.5 = 2.5 → 2 (ties to even),
        // -0.75 / 0.5 = -1.5 → -2, 0.2 / 0.5 = 0.4 → 0.
        let mut c = KvCache::new(KvType::Int4, 1, 2, 1, 4);
        c.write(0, 1, &[1.25, -0.75, 3.5, 0.2], &[0.0; 4]);
        let mut buf = [0f32; 4];
        assert_eq!(c.key(0, 1, 0, &mut buf), &[1.0, -1.0, 3.5, 0.0]);
        assert_eq!(c.value(0, 1, 0, &mut buf), &[0.0; 4]);
        assert_eq!(c.bytes(), 2 * (2 * 2 + 2 * 4));
    }

    #[test]
    fn cache_bytes_is_what_a_cache_allocates() {
        let mut c = crate::model::Config {
            dim: 24,
            hidden_dim: 64,
            n_layers: 3,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 40,
            rope_dim: 40,
            vocab_size: 10,
            seq_len: 64,
            rope_theta: 1e4,
            rms_eps: 1e-5,
            tied_embeddings: true,
        };
        for kv in KvType::ALL {
            let cache = KvCache::new(kv, c.n_layers, 17, c.n_kv_heads, c.head_dim);
            assert_eq!(kv.cache_bytes(&c, 17), cache.bytes() as u64, "{kv}");
        }
        // SmolLM2-135M (30 layers, 3 KV heads of 64): llama.cpp's f16 cache at n_ctx 2048 is 45.00 MiB.
        (c.n_layers, c.n_kv_heads, c.head_dim) = (30, 3, 64);
        assert_eq!(KvType::F16.cache_bytes(&c, 2048), 45 << 20);
    }
}
