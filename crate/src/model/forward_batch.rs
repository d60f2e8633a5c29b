//! A block of positions through the model at once: the batched forward for prompt prefill and
//! evaluation. [`forward`](super::forward()) stays the readable reference; this is the same
//! computation reorganised so that each weight matrix is read and decoded once per BLOCK of
//! positions instead of once per position ([`Matrix::matmul_threads`](super::Matrix)).
//!
//! For positions `pos0 .. pos0 + n` of one sequence, every layer runs on the `n × dim`
//! activations: the q/k/v products for all positions, RoPE per position, the keys and values of
//! the whole block written into [`State`]'s cache exactly where [`forward`](super::forward())
//! writes them, then causal attention (position `p` attends to cached positions `0..=p`, the
//! earlier ones of the block included), and the remaining products.
//!
//! The numbers are **bit-identical** to running [`forward`](super::forward()) position by
//! position: the batched products are (see `gemm`), and everything else (RMS norm, RoPE,
//! attention, SwiGLU, the residual adds) runs per position with the very functions and loop
//! order of `forward`. tests/rust/forward_batch.rs checks this for every weight format family.

use super::forward::{rmsnorm, rope, softmax, LinearInput, State};
use super::int_path::{prepare, product};
use super::kv_cache::KvCache;
use super::weights::{dot, Layer, Weights};
use super::{Config, ModelError};

/// Sees the input rows of every linear layer as [`forward_batch_observed`] runs a block: the
/// hook calibration (`crate::calib`) collects its statistics through.
pub trait ActivationObserver {
    /// `rows` holds the block's positions in order, `width` values each (`dim`, `q_dim` or
    /// `hidden_dim`), exactly as the layers named by `input` are about to read them.
    fn observe(&mut self, input: LinearInput, rows: &[f32], width: usize);
}

/// Positions a batch runs at once by default (eval windows and prompts are cut into blocks of
/// this many): large enough that decoding a weight row is shared by many positions, small
/// enough that a block's activations stay in the core's cache.
pub const DEFAULT_BLOCK: usize = 64;

/// Which positions' logits [`forward_batch`] computes (the classifier is the largest product,
/// so a prefill that needs only the last one skips the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchLogits {
    /// Every position of the block (`n × vocab_size` values).
    Every,
    /// The block's last position only (`vocab_size` values).
    Last,
    /// None (a prefill block that is not the prompt's last).
    Nothing,
}

/// One call's positions: `tokens` at `pos0 .. pos0 + tokens.len()`, and the logits wanted.
#[derive(Debug, Clone, Copy)]
pub struct Block<'t> {
    pub tokens: &'t [u32],
    pub pos0: usize,
    pub logits: BatchLogits,
}

/// Activations of a block of up to `max_positions` positions (row `i` is position `pos0 + i`).
#[derive(Debug, Clone)]
pub struct BatchState {
    max_positions: usize,
    /// (n, dim) residual stream.
    x: Vec<f32>,
    /// (n, dim) RMS-normed residual.
    xn: Vec<f32>,
    /// (n, q_dim) attention output of all heads.
    ao: Vec<f32>,
    /// (n, dim) a projection's output before it is added to the residual.
    proj: Vec<f32>,
    /// (n, q_dim) queries.
    q: Vec<f32>,
    /// (n, kv_dim) keys and values of the block.
    k: Vec<f32>,
    v: Vec<f32>,
    /// (n, hidden_dim) FFN gate (then `silu(gate)·up`) and up branches.
    hb: Vec<f32>,
    hb2: Vec<f32>,
    /// (n, vocab_size) or (1, vocab_size) logits; the last call's are the first `logits_len`.
    logits: Vec<f32>,
    logits_len: usize,
}

impl BatchState {
    /// Buffers for blocks of up to `max_positions` positions (at least 1).
    pub fn new(c: &Config, max_positions: usize) -> BatchState {
        let n = max_positions.max(1);
        BatchState {
            max_positions: n,
            x: vec![0.0; n * c.dim],
            xn: vec![0.0; n * c.dim],
            ao: vec![0.0; n * c.q_dim()],
            proj: vec![0.0; n * c.dim],
            q: vec![0.0; n * c.q_dim()],
            k: vec![0.0; n * c.kv_dim()],
            v: vec![0.0; n * c.kv_dim()],
            hb: vec![0.0; n * c.hidden_dim],
            hb2: vec![0.0; n * c.hidden_dim],
            logits: vec![0.0; n * c.vocab_size],
            logits_len: 0,
        }
    }

    /// The most positions one [`forward_batch`] call may run with this state.
    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// The residual stream rows (`max_positions × dim`): what [`attention_half`] and
    /// [`ffn_half`] read and update, for a caller that runs the layers itself.
    pub(crate) fn residual_mut(&mut self) -> &mut [f32] {
        &mut self.x
    }

    /// The logits the last [`forward_batch`] call returned (empty before the first call).
    pub fn logits(&self) -> &[f32] {
        &self.logits[..self.logits_len]
    }
}

/// Like [`forward_batch`], but a bad token, an empty or oversized block, or a block past the
/// state's capacity is an error instead of a panic.
pub fn try_forward_batch<'b>(
    c: &Config,
    w: &Weights,
    s: &mut State,
    b: &'b mut BatchState,
    block: Block,
) -> Result<&'b [f32], ModelError> {
    let (tokens, pos0) = (block.tokens, block.pos0);
    if let Some(&token) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
        return Err(ModelError::TokenOutOfRange { token, vocab_size: c.vocab_size });
    }
    let end = pos0 + tokens.len();
    if end > s.capacity {
        return Err(ModelError::PositionOutOfRange { pos: end - 1, capacity: s.capacity });
    }
    if tokens.is_empty() || tokens.len() > b.max_positions {
        return Err(ModelError::BadMetadata {
            key: "block".into(),
            reason: format!("{} positions for a batch state of {}", tokens.len(), b.max_positions),
        });
    }
    Ok(forward_batch(c, w, s, b, block))
}

/// Runs `block.tokens` at positions `pos0 .. pos0 + tokens.len()` through the model and returns
/// the logits `block.logits` asks for (row `i` is the prediction after position `pos0 + i`). Positions
/// `0..pos0` must have been run before with the same `state` (by this or by `forward`); the
/// block's keys and values are left in the cache, so `forward` or another block can continue.
///
/// Panics on an empty block, more tokens than `b` holds, a token out of range or a block past
/// `state.capacity` (see [`try_forward_batch`]).
pub fn forward_batch<'b>(c: &Config, w: &Weights, s: &mut State, b: &'b mut BatchState, block: Block) -> &'b [f32] {
    forward_batch_observed(c, w, s, b, block, None)
}

/// [`forward_batch`], also showing `observer` (when there is one) every linear layer's input
/// rows just before the layer reads them; the numbers are exactly those of [`forward_batch`].
/// The classifier's input (the final norm's rows) is shown whichever logits `block` asks for.
pub fn forward_batch_observed<'b>(
    c: &Config,
    w: &Weights,
    s: &mut State,
    b: &'b mut BatchState,
    block: Block,
    mut observer: Option<&mut dyn ActivationObserver>,
) -> &'b [f32] {
    let mut observe = |input: LinearInput, rows: &[f32], width: usize| {
        if let Some(o) = observer.as_deref_mut() {
            o.observe(input, rows, width);
        }
    };
    let Block { tokens, pos0, logits: which } = block;
    let n = tokens.len();
    assert!(n >= 1 && n <= b.max_positions, "{n} positions for a batch state of {}", b.max_positions);
    assert!(pos0 + n <= s.capacity, "positions {pos0}..{} beyond the state's capacity {}", pos0 + n, s.capacity);
    for (&token, xr) in tokens.iter().zip(b.x.chunks_exact_mut(c.dim)) {
        assert!((token as usize) < c.vocab_size, "token {token} out of range (vocabulary {})", c.vocab_size);
        w.embed(token, xr);
    }
    for (l, lw) in w.layers.iter().enumerate() {
        attention_half(c, lw, l, s, b, n, pos0, &mut observe);
        ffn_half(c, lw, l, s, b, n, &mut observe);
    }

    let (dim, threads) = (c.dim, s.threads);
    let (x, xn) = (&b.x[..n * dim], &mut b.xn[..n * dim]);
    norm_rows(xn, x, &w.output_norm, c.rms_eps, dim);
    observe(LinearInput::Classifier, xn, dim);
    let vocab = c.vocab_size;
    let (rows, len) = match which {
        BatchLogits::Every => (&mut xn[..], n * vocab),
        BatchLogits::Last => (&mut xn[(n - 1) * dim..], vocab),
        BatchLogits::Nothing => (&mut xn[..0], 0),
    };
    b.logits_len = len;
    if len > 0 {
        let p = prepare(s.act.as_ref(), s.matmul, LinearInput::Classifier, rows, dim, &mut s.stats);
        product(w.classifier(), rows, &p, &mut b.logits[..len], threads, &mut s.stats);
    }
    &b.logits[..len]
}

/// The attention half of layer `l` on the block's residual rows `b.x[..n·dim]` at positions
/// `pos0..pos0 + n`: RMS norm, the q/k/v products, RoPE, the keys and values written into `s`'s
/// cache, causal attention, the output product added to the residual. `observe` sees the
/// inputs of `attn_q/k/v` and of `attn_output` as the products read them.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_half(
    c: &Config,
    lw: &Layer,
    l: usize,
    s: &mut State,
    b: &mut BatchState,
    n: usize,
    pos0: usize,
    observe: &mut dyn FnMut(LinearInput, &[f32], usize),
) {
    let (dim, hd, q_dim, kv_dim, threads) = (c.dim, c.head_dim, c.q_dim(), c.kv_dim(), s.threads);
    let (x, xn, ao, proj) = (&mut b.x[..n * dim], &mut b.xn[..n * dim], &mut b.ao[..n * q_dim], &mut b.proj[..n * dim]);
    let (q, k, v) = (&mut b.q[..n * q_dim], &mut b.k[..n * kv_dim], &mut b.v[..n * kv_dim]);
    norm_rows(xn, x, &lw.attn_norm, c.rms_eps, dim);
    observe(LinearInput::Attention { layer: l }, xn, dim);
    let p = prepare(s.act.as_ref(), s.matmul, LinearInput::Attention { layer: l }, xn, dim, &mut s.stats);
    product(&lw.wq, xn, &p, q, threads, &mut s.stats);
    product(&lw.wk, xn, &p, k, threads, &mut s.stats);
    product(&lw.wv, xn, &p, v, threads, &mut s.stats);
    for (i, (qr, (kr, vr))) in
        q.chunks_exact_mut(q_dim).zip(k.chunks_exact_mut(kv_dim).zip(v.chunks_exact(kv_dim))).enumerate()
    {
        rope(qr, hd, c.rope_dim, pos0 + i, c.rope_theta);
        rope(kr, hd, c.rope_dim, pos0 + i, c.rope_theta);
        s.kv.write(l, pos0 + i, kr, vr);
    }
    let cache = &s.kv;
    per_row(ao, q_dim, threads, &|i, out| attend(c, cache, l, &q[i * q_dim..(i + 1) * q_dim], pos0 + i, out));
    observe(LinearInput::AttentionOutput { layer: l }, ao, q_dim);
    let p = prepare(s.act.as_ref(), s.matmul, LinearInput::AttentionOutput { layer: l }, ao, q_dim, &mut s.stats);
    product(&lw.wo, ao, &p, proj, threads, &mut s.stats);
    add(x, proj);
}

/// The feed-forward (SwiGLU) half of layer `l` on the block's residual rows `b.x[..n·dim]`,
/// with the state's threads, activation quantization and matmul path (its cache is not read).
/// `observe` sees the inputs of `ffn_gate/up` and of `ffn_down`.
pub(crate) fn ffn_half(
    c: &Config,
    lw: &Layer,
    l: usize,
    s: &mut State,
    b: &mut BatchState,
    n: usize,
    observe: &mut dyn FnMut(LinearInput, &[f32], usize),
) {
    let (dim, hidden, threads) = (c.dim, c.hidden_dim, s.threads);
    let (x, xn, proj) = (&mut b.x[..n * dim], &mut b.xn[..n * dim], &mut b.proj[..n * dim]);
    let (hb, hb2) = (&mut b.hb[..n * hidden], &mut b.hb2[..n * hidden]);
    norm_rows(xn, x, &lw.ffn_norm, c.rms_eps, dim);
    observe(LinearInput::Ffn { layer: l }, xn, dim);
    let p = prepare(s.act.as_ref(), s.matmul, LinearInput::Ffn { layer: l }, xn, dim, &mut s.stats);
    product(&lw.w_gate, xn, &p, hb, threads, &mut s.stats);
    product(&lw.w_up, xn, &p, hb2, threads, &mut s.stats);
    for (g, &u) in hb.iter_mut().zip(hb2.iter()) {
        *g = *g / (1.0 + (-*g).exp()) * u; // silu(g) = g · σ(g), as in `forward`
    }
    observe(LinearInput::FfnDown { layer: l }, hb, hidden);
    let p = prepare(s.act.as_ref(), s.matmul, LinearInput::FfnDown { layer: l }, hb, hidden, &mut s.stats);
    product(&lw.w_down, hb, &p, proj, threads, &mut s.stats);
    add(x, proj);
}

/// Attention of the queries `q` (all heads) at position `pos` over layer `l`'s cached positions
/// `0..=pos`, into `out` (q_dim values): `forward`'s loop, with its own score and decode buffers.
fn attend(c: &Config, cache: &KvCache, l: usize, q: &[f32], pos: usize, out: &mut [f32]) {
    let hd = c.head_dim;
    let kv_mul = c.n_heads / c.n_kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut att = vec![0f32; pos + 1];
    let mut scratch = vec![0f32; hd];
    for h in 0..c.n_heads {
        let q = &q[h * hd..(h + 1) * hd];
        let kv_head = h / kv_mul;
        for (t, a) in att.iter_mut().enumerate() {
            *a = dot(q, cache.key(l, t, kv_head, &mut scratch)) * scale;
        }
        softmax(&mut att);
        let o = &mut out[h * hd..(h + 1) * hd];
        o.fill(0.0);
        for (t, &a) in att.iter().enumerate() {
            let v = cache.value(l, t, kv_head, &mut scratch);
            for (oi, &vi) in o.iter_mut().zip(v) {
                *oi += a * vi;
            }
        }
    }
}

/// `f(i, row_i)` for every row of `out` (rows of `width`), split over the pool.
fn per_row(out: &mut [f32], width: usize, threads: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    let n = out.len() / width;
    if threads > 1 && n > 1 {
        let chunk = n.div_ceil(threads);
        let parts: Vec<std::sync::Mutex<&mut [f32]>> =
            out.chunks_mut(chunk * width).map(std::sync::Mutex::new).collect();
        super::pool::run(parts.len(), &|t| {
            let mut part = parts[t].lock().unwrap_or_else(|e| e.into_inner());
            for (j, row) in part.chunks_exact_mut(width).enumerate() {
                f(t * chunk + j, row);
            }
        });
        return;
    }
    for (i, row) in out.chunks_exact_mut(width).enumerate() {
        f(i, row);
    }
}

/// RMS norm of every row of `x` into `out`.
fn norm_rows(out: &mut [f32], x: &[f32], weight: &[f32], eps: f32, dim: usize) {
    for (o, xr) in out.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
        rmsnorm(o, xr, weight, eps);
    }
}

/// `x += d`, element by element.
fn add(x: &mut [f32], d: &[f32]) {
    for (x, &d) in x.iter_mut().zip(d) {
        *x += d;
    }
}
