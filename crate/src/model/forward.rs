//! One token through a LLaMA model: [`forward`], written like llama2.c's `run.c`.
//! [`forward_observed`] is the same pass showing a caller every linear layer's input
//! (activation statistics for the lab, [`super::activations`]).
//!
//! # RoPE convention
//!
//! GGUF llama files made by llama.cpp's `convert_hf_to_gguf.py` have the rows of `attn_q` and
//! `attn_k` permuted (per head, output row `2i` is HF row `i` and row `2i + 1` is HF row
//! `i + head_dim/2`), so that rotary embeddings rotate ADJACENT pairs: for each head and each
//! `i < rope_dim / 2`,
//!
//! ```text
//! (x[2i], x[2i+1]) ← (x[2i]·cos θ − x[2i+1]·sin θ,  x[2i]·sin θ + x[2i+1]·cos θ),
//! θ = pos · rope_theta^(−2i / rope_dim)
//! ```
//!
//! exactly like llama2.c (and ggml's "normal" rope mode). (Checked with the numpy reference on
//! the fixture's 40-token English text: mean next-token loss 3.63 nats with adjacent pairs,
//! 4.99 with `rotate_half` pairs on the same GGUF weights.) Hugging Face checkpoints instead
//! pair `x[i]` with `x[i + head_dim/2]` (`rotate_half`); a safetensors loader feeding this
//! forward must permute the q/k rows the same way the converter does (LLaMA `permute`:
//! `w.reshape(n_head, 2, head_dim/2, dim).swapaxes(1, 2).reshape(n_head*head_dim, dim)`).

use super::act_quant::ActQuantizer;
use super::int_path::{prepare, product, MatmulPath, PathStats};
use super::kv_cache::{KvCache, KvType};
use super::weights::{default_threads, dot, Weights};
use super::{Config, ModelError};

/// Activations and KV cache for one sequence (llama2.c's `RunState`).
///
/// Shapes use `q_dim = n_heads·head_dim` (= `dim` for every common model) and
/// `kv_dim = n_kv_heads·head_dim`; `capacity` is the number of positions the cache holds.
#[derive(Debug, Clone)]
pub struct State {
    /// (dim,) the residual stream at the current position.
    pub x: Vec<f32>,
    /// (max(dim, q_dim),) RMS-normed `x` (first `dim` values), then the attention output
    /// of all heads (first `q_dim` values).
    pub xb: Vec<f32>,
    /// (dim,) a projection's output before it is added to the residual.
    pub xb2: Vec<f32>,
    /// (hidden_dim,) FFN gate branch, then `silu(gate) · up`.
    pub hb: Vec<f32>,
    /// (hidden_dim,) FFN up branch.
    pub hb2: Vec<f32>,
    /// (q_dim,) queries of all heads.
    pub q: Vec<f32>,
    /// (kv_dim,) keys of all kv heads at the current position.
    pub k: Vec<f32>,
    /// (kv_dim,) values of all kv heads at the current position.
    pub v: Vec<f32>,
    /// (n_heads, capacity) attention scores, then weights, for positions 0..=pos.
    pub att: Vec<f32>,
    /// (vocab_size,) output logits.
    pub logits: Vec<f32>,
    /// (n_layers, capacity, kv_dim) keys and values of every layer and position so far, stored
    /// as its [`KvType`] (quantized when written, dequantized when attention reads them).
    pub kv: KvCache,
    /// (head_dim,) one head's keys or values decoded from a quantized cache.
    pub kv_scratch: Vec<f32>,
    /// Positions the cache holds: `min(config.seq_len, max_seq_len)` from [`State::new`].
    pub capacity: usize,
    /// Threads the matrix products may use (on wasm32 at most the pool's). Any value
    /// gives bit-identical results.
    pub threads: usize,
    /// Quantization of every linear layer's input ([`super::act_quant`]); `None`: f32.
    pub act: Option<ActQuantizer>,
    /// Which arithmetic the weight products use ([`super::int_path`]; default exact f32).
    pub matmul: MatmulPath,
    /// What the products did: how many ran integer dots, LLM.int8()'s outlier columns.
    pub stats: PathStats,
}

impl State {
    /// Buffers for sequences of up to `min(config.seq_len, max_seq_len)` tokens, with an f32
    /// KV cache. That takes `2 · n_layers · capacity · kv_dim · 4` bytes (SmolLM2-135M: 46 KB
    /// per position, so its full 8192-token context would be 377 MB — ask for what you need).
    pub fn new(config: &Config, max_seq_len: usize) -> State {
        State::with_kv(config, max_seq_len, KvType::F32)
    }

    /// [`State::new`] with the KV cache stored as `kv` ([`KvType::head_bytes`] per position,
    /// layer, KV head, for keys and for values).
    pub fn with_kv(config: &Config, max_seq_len: usize, kv: KvType) -> State {
        let c = config;
        let capacity = c.seq_len.min(max_seq_len);
        State {
            x: vec![0.0; c.dim],
            xb: vec![0.0; c.dim.max(c.q_dim())],
            xb2: vec![0.0; c.dim],
            hb: vec![0.0; c.hidden_dim],
            hb2: vec![0.0; c.hidden_dim],
            q: vec![0.0; c.q_dim()],
            k: vec![0.0; c.kv_dim()],
            v: vec![0.0; c.kv_dim()],
            att: vec![0.0; c.n_heads * capacity],
            logits: vec![0.0; c.vocab_size],
            kv: KvCache::new(kv, c.n_layers, capacity, c.n_kv_heads, c.head_dim),
            kv_scratch: vec![0.0; c.head_dim],
            capacity,
            threads: default_threads(),
            act: None,
            matmul: MatmulPath::Exact,
            stats: PathStats::default(),
        }
    }
}

/// Like [`forward`], but a token id or position out of range is an error instead of a panic.
pub fn try_forward<'s>(
    config: &Config,
    weights: &Weights,
    state: &'s mut State,
    token: u32,
    pos: usize,
) -> Result<&'s [f32], ModelError> {
    if token as usize >= config.vocab_size {
        return Err(ModelError::TokenOutOfRange { token, vocab_size: config.vocab_size });
    }
    if pos >= state.capacity {
        return Err(ModelError::PositionOutOfRange { pos, capacity: state.capacity });
    }
    Ok(forward(config, weights, state, token, pos))
}

/// Runs `token` at position `pos` through the model and returns the logits of the next token
/// (`vocab_size` values). Positions `0..pos` must have been run before with the same `state`
/// (their keys and values are read from its cache).
///
/// Panics if `token >= vocab_size` or `pos >= state.capacity` (see [`try_forward`]), or if
/// `state` was made for another config.
pub fn forward<'s>(c: &Config, w: &Weights, s: &'s mut State, token: u32, pos: usize) -> &'s [f32] {
    forward_observed(c, w, s, token, pos, |_, _| {})
}

/// The input vector of one family of linear layers, as [`forward_observed`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinearInput {
    /// The RMS-normed residual (`dim` values) that `attn_q`, `attn_k` and `attn_v` read.
    Attention { layer: usize },
    /// The attention output of all heads (`q_dim` values) that `attn_output` reads.
    AttentionOutput { layer: usize },
    /// The RMS-normed residual (`dim` values) that `ffn_gate` and `ffn_up` read.
    Ffn { layer: usize },
    /// `silu(gate) · up` (`hidden_dim` values), what `ffn_down` reads.
    FfnDown { layer: usize },
    /// The final RMS-normed residual (`dim` values) the classifier reads.
    Classifier,
}

impl LinearInput {
    /// The llama.cpp names of the weight matrices that read this input (`tied`: the classifier
    /// is `token_embd.weight`).
    pub fn tensor_names(self, tied: bool) -> Vec<String> {
        match self.layer() {
            Some(layer) => self.matrix_names().iter().map(|n| format!("blk.{layer}.{n}.weight")).collect(),
            None => vec![if tied { "token_embd.weight" } else { "output.weight" }.to_string()],
        }
    }

    /// The layer this input belongs to (`None` for the classifier's).
    pub fn layer(self) -> Option<usize> {
        match self {
            LinearInput::Attention { layer }
            | LinearInput::AttentionOutput { layer }
            | LinearInput::Ffn { layer }
            | LinearInput::FfnDown { layer } => Some(layer),
            LinearInput::Classifier => None,
        }
    }

    /// The names, within a layer ([`super::weights::Layer::matrices`]), of the matrices that
    /// read this input (none for the classifier's, which is not a layer's).
    pub fn matrix_names(self) -> &'static [&'static str] {
        match self {
            LinearInput::Attention { .. } => &["attn_q", "attn_k", "attn_v"],
            LinearInput::AttentionOutput { .. } => &["attn_output"],
            LinearInput::Ffn { .. } => &["ffn_gate", "ffn_up"],
            LinearInput::FfnDown { .. } => &["ffn_down"],
            LinearInput::Classifier => &[],
        }
    }
}

/// [`forward`], also handing `observe` the input vector of every linear layer just before the
/// layer reads it (see [`LinearInput`]); the numbers are exactly those of [`forward`]. Generic
/// over the observer so `forward`'s no-op observer compiles away.
pub fn forward_observed<'s>(
    c: &Config,
    w: &Weights,
    s: &'s mut State,
    token: u32,
    pos: usize,
    mut observe: impl FnMut(LinearInput, &[f32]),
) -> &'s [f32] {
    assert!((token as usize) < c.vocab_size, "token {token} out of range (vocabulary {})", c.vocab_size);
    assert!(pos < s.capacity, "position {pos} beyond the state's capacity {}", s.capacity);
    let (dim, hd, q_dim, cap) = (c.dim, c.head_dim, c.q_dim(), s.capacity);
    let kv_mul = c.n_heads / c.n_kv_heads; // query heads per key/value head
    let threads = s.threads;

    // The token's embedding starts the residual stream.
    w.embed(token, &mut s.x);

    for (l, lw) in w.layers.iter().enumerate() {
        // ---- attention ----
        rmsnorm(&mut s.xb[..dim], &s.x, &lw.attn_norm, c.rms_eps);
        observe(LinearInput::Attention { layer: l }, &s.xb[..dim]);
        let p =
            prepare(s.act.as_ref(), s.matmul, LinearInput::Attention { layer: l }, &mut s.xb[..dim], dim, &mut s.stats);
        product(&lw.wq, &s.xb[..dim], &p, &mut s.q, threads, &mut s.stats);
        product(&lw.wk, &s.xb[..dim], &p, &mut s.k, threads, &mut s.stats);
        product(&lw.wv, &s.xb[..dim], &p, &mut s.v, threads, &mut s.stats);

        // Rotary position embedding of every query and key head (adjacent pairs).
        rope(&mut s.q, hd, c.rope_dim, pos, c.rope_theta);
        rope(&mut s.k, hd, c.rope_dim, pos, c.rope_theta);

        // Cache this position's keys and values (quantized by the cache's type).
        s.kv.write(l, pos, &s.k, &s.v);

        // Multi-head attention over positions 0..=pos; query head h reads kv head h / kv_mul.
        let scale = 1.0 / (hd as f32).sqrt();
        for h in 0..c.n_heads {
            let q = &s.q[h * hd..(h + 1) * hd];
            let att = &mut s.att[h * cap..h * cap + pos + 1];
            let kv_head = h / kv_mul;
            for (t, a) in att.iter_mut().enumerate() {
                let k = s.kv.key(l, t, kv_head, &mut s.kv_scratch);
                *a = dot(q, k) * scale;
            }
            softmax(att);
            // Weighted sum of the values into this head's slice of xb.
            let out = &mut s.xb[h * hd..(h + 1) * hd];
            out.fill(0.0);
            for (t, &a) in att.iter().enumerate() {
                let v = s.kv.value(l, t, kv_head, &mut s.kv_scratch);
                for (o, &vi) in out.iter_mut().zip(v) {
                    *o += a * vi;
                }
            }
        }

        // Output projection, then the residual connection.
        observe(LinearInput::AttentionOutput { layer: l }, &s.xb[..q_dim]);
        let input = LinearInput::AttentionOutput { layer: l };
        let p = prepare(s.act.as_ref(), s.matmul, input, &mut s.xb[..q_dim], q_dim, &mut s.stats);
        product(&lw.wo, &s.xb[..q_dim], &p, &mut s.xb2, threads, &mut s.stats);
        for (x, &d) in s.x.iter_mut().zip(&s.xb2) {
            *x += d;
        }

        // ---- feed-forward (SwiGLU): w_down · (silu(w_gate · x) ⊙ (w_up · x)) ----
        rmsnorm(&mut s.xb[..dim], &s.x, &lw.ffn_norm, c.rms_eps);
        observe(LinearInput::Ffn { layer: l }, &s.xb[..dim]);
        let p = prepare(s.act.as_ref(), s.matmul, LinearInput::Ffn { layer: l }, &mut s.xb[..dim], dim, &mut s.stats);
        product(&lw.w_gate, &s.xb[..dim], &p, &mut s.hb, threads, &mut s.stats);
        product(&lw.w_up, &s.xb[..dim], &p, &mut s.hb2, threads, &mut s.stats);
        for (g, &u) in s.hb.iter_mut().zip(&s.hb2) {
            *g = *g / (1.0 + (-*g).exp()) * u; // silu(g) = g · σ(g)
        }
        observe(LinearInput::FfnDown { layer: l }, &s.hb);
        let hidden = s.hb.len();
        let p = prepare(s.act.as_ref(), s.matmul, LinearInput::FfnDown { layer: l }, &mut s.hb, hidden, &mut s.stats);
        product(&lw.w_down, &s.hb, &p, &mut s.xb2, threads, &mut s.stats);
        for (x, &d) in s.x.iter_mut().zip(&s.xb2) {
            *x += d;
        }
    }

    // Final norm and the classifier.
    rmsnorm(&mut s.xb[..dim], &s.x, &w.output_norm, c.rms_eps);
    observe(LinearInput::Classifier, &s.xb[..dim]);
    let p = prepare(s.act.as_ref(), s.matmul, LinearInput::Classifier, &mut s.xb[..dim], dim, &mut s.stats);
    product(w.classifier(), &s.xb[..dim], &p, &mut s.logits, threads, &mut s.stats);
    &s.logits
}

/// `out = x / sqrt(mean(x²) + eps) · weight` (the sum of squares in f64).
pub fn rmsnorm(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32) {
    let ss: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    let inv = (1.0 / (ss / x.len() as f64 + f64::from(eps)).sqrt()) as f32;
    for ((o, &xi), &wi) in out.iter_mut().zip(x).zip(weight) {
        *o = xi * inv * wi;
    }
}

/// In-place softmax (max subtracted first, so large scores do not overflow).
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// Rotary embedding of `vec` (heads of `head_dim` values back to back) at position `pos`:
/// in each head the pairs `(x[2i], x[2i+1])`, `2i < rope_dim`, turn by the angle
/// `pos · theta^(−2i/rope_dim)` (angles and their sines in f64). See the module doc for why
/// the pairs are adjacent.
pub fn rope(vec: &mut [f32], head_dim: usize, rope_dim: usize, pos: usize, theta: f32) {
    for i in (0..rope_dim).step_by(2) {
        let freq = f64::from(theta).powf(-(i as f64) / rope_dim as f64);
        let (sin, cos) = (pos as f64 * freq).sin_cos();
        let (sin, cos) = (sin as f32, cos as f32);
        for head in vec.chunks_exact_mut(head_dim) {
            let (a, b) = (head[i], head[i + 1]);
            head[i] = a * cos - b * sin;
            head[i + 1] = a * sin + b * cos;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol, "index {i}: {x} vs {y}\n{a:?}\n{b:?}");
        }
    }

    #[test]
    fn rmsnorm_by_hand() {
        // x = [1, 2, 3, 4]: mean(x²) = 30/4 = 7.5; eps 0.5 → 1/sqrt(8) = 0.35355339.
        let mut out = [0f32; 4];
        rmsnorm(&mut out, &[1.0, 2.0, 3.0, 4.0], &[1.0, 1.0, 2.0, -1.0], 0.5);
        let r = 0.353_553_39f32;
        close(&out, &[r, 2.0 * r, 6.0 * r, -4.0 * r], 1e-6);
    }

    #[test]
    fn softmax_by_hand() {
        // softmax([1000, 1001, 1002]) = [1, e, e²] / (1 + e + e²); the shift must not overflow.
        let mut x = [1000.0f32, 1001.0, 1002.0];
        softmax(&mut x);
        close(&x, &[0.090_030_57, 0.244_728_47, 0.665_240_96], 1e-6);
        let mut one = [-5.0f32];
        softmax(&mut one);
        assert_eq!(one, [1.0]);
    }

    #[test]
    fn rope_by_hand() {
        // Two heads of 4, theta 100: pair 0 turns by pos·1, pair 1 by pos·100^(-1/2) = pos/10.
        let mut v = [1.0f32, 0.0, 1.0, 0.0, 0.0, 2.0, 3.0, 4.0];
        rope(&mut v, 4, 4, 2, 100.0);
        let (c2, s2) = (2f32.cos(), 2f32.sin());
        let (c02, s02) = (0.2f32.cos(), 0.2f32.sin());
        close(&v, &[c2, s2, c02, s02, -2.0 * s2, 2.0 * c2, 3.0 * c02 - 4.0 * s02, 3.0 * s02 + 4.0 * c02], 1e-6);
        // Position 0 is the identity; rope_dim 2 leaves the rest of the head alone.
        let mut w = [1.0f32, 2.0, 3.0, 4.0];
        rope(&mut w, 4, 4, 0, 10000.0);
        assert_eq!(w, [1.0, 2.0, 3.0, 4.0]);
        rope(&mut w, 4, 2, 1, 10000.0);
        close(&w, &[1f32.cos() - 2.0 * 1f32.sin(), 1f32.sin() + 2.0 * 1f32.cos(), 3.0, 4.0], 1e-6);
    }
}
