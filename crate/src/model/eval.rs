//! Perplexity and quantized-vs-base comparison: the evaluation protocol whose numbers the lab
//! quotes (`quantlab eval`).
//!
//! Everything here is pure computation (it compiles for wasm32: no threads of its own, no
//! files, no clock unless the caller passes one); reading the text and timing are the
//! caller's business.
//!
//! # Eval text
//!
//! The held-out text is Moby-Dick chapters [`EVAL_CHAPTERS`] (1–3: "Loomings", "The
//! Carpet-Bag", "The Spouter-Inn"; `data/moby-dick/chapter_N.json`, field `text`), joined with
//! [`CHAPTER_SEPARATOR`] (`"\n\n"`) in chapter order ([`join_chapters`]). Calibration data
//! must come from [`CALIBRATION_CHAPTERS`] (4–135), which does not overlap.
//!
//! # Default protocol ([`Protocol::Default`])
//!
//! 1. The text is tokenized WITHOUT a BOS token (and without parsing special tokens).
//! 2. The tokens are split into non-overlapping windows of `ctx` tokens (default
//!    [`DEFAULT_CTX`] = 512) from the start; a final partial window (`len % ctx` tokens) is
//!    DROPPED. `max_windows` keeps only the first K windows.
//! 3. Each window is run from a fresh KV cache (positions `0..ctx`).
//! 4. Every position but the first is scored: the logits at position `p` (having seen
//!    window tokens `0..=p`) predict token `p + 1`, for `p = 0..ctx-2`: `ctx − 1` scored tokens
//!    per window.
//! 5. `NLL = −log softmax(logits)[target]`, the log-softmax computed in f64 from the f32
//!    logits; perplexity = `exp(mean NLL over all scored tokens)`.
//!
//! # `llama.cpp` protocol ([`Protocol::LlamaCpp`])
//!
//! Reproduces `perplexity()` in llama.cpp's `tools/perplexity/perplexity.cpp` (read at
//! ggml-org/llama.cpp 050fc7f and in the copy vendored by llama-cpp-python 0.3.36, which has the
//! same function), without `--ppl-stride` (that switches to `perplexity_v2`):
//!
//! - `const bool add_bos = llama_vocab_get_add_bos(vocab);` — the model's
//!   `tokenizer.ggml.add_bos_token` ([`crate::tokenizer::Tokenizer::add_bos_default`]).
//! - `tokens = common_tokenize(ctx, params.prompt, true)` — `add_special = true`,
//!   `parse_special = false`: ONE BOS in front of the whole text iff `add_bos`, special-token
//!   text is not parsed. SmolLM2 has `add_bos_token = false`, so no BOS at all.
//! - `if (tokens.size() < 2*n_ctx)` → error "you need at least 2*n_ctx tokens"
//!   ([`EvalError::TooFewTokens`]).
//! - `n_chunk_max = tokens.size() / n_ctx`; `n_chunk = min(--chunks, n_chunk_max)` (our
//!   `max_windows`): chunk `i` is `tokens[i*n_ctx .. (i+1)*n_ctx]`, the remainder is dropped.
//! - `llama_memory_clear(...)` before each chunk: fresh KV cache.
//! - `if (add_bos && j == 0) tokens[seq_start] = llama_vocab_bos(vocab);` — the FIRST token
//!   of every chunk is replaced by BOS (the original token is restored afterwards, so it is
//!   still the target nowhere: position 0's token is never a target). Nothing is replaced
//!   when `add_bos` is false.
//! - `const int first = n_ctx/2;` and `process_logits(..., tokens_data = start + first,
//!   n_token = n_ctx - 1 - first)` with `log_softmax(n_vocab, logits + i*n_vocab, tokens[i+1])`:
//!   the logits at positions `first ..= n_ctx-2` predict tokens `first+1 ..= n_ctx-1` —
//!   `n_ctx − 1 − n_ctx/2` scored tokens per chunk (255 for 512); `count += n_ctx - first - 1`.
//! - `nll += -log_softmax`, `nll2 += v*v`; final `ppl = exp(nll/count)` printed as
//!   `Final estimate: PPL = %.4lf +/- %.5lf`, the ± being
//!   `sqrt((nll2/count − (nll/count)²)/(count−1)) · ppl` ([`Metrics::ppl_stderr`]).
//!
//! llama.cpp's `log_softmax` takes the max in f32 and sums `expf` terms in a double; ours is
//! all f64 — the two differ by ~1e-7 in NLL, far below the forward's own differences (ggml
//! multiplies quantized weights by activations quantized to 8 bits; this forward keeps
//! activations in f32), so numbers agree with llama-perplexity closely but not to every digit.
//!
//! Checked against llama-perplexity itself (built from the llama.cpp vendored by
//! llama-cpp-python 0.3.36, CPU, `-t 1`) on the default model and the eval text (chapters 1–3
//! written to a file, 12,712 tokens, no BOS since `add_bos_token` is false):
//!
//! | n_ctx | chunks | scored | llama-perplexity | `quantlab eval --protocol llama.cpp` |
//! |------:|-------:|-------:|-----------------:|-------------------------------------:|
//! |   512 |      2 |    510 | 88.8236 ± 13.23969 | 88.7845 ± 13.2460 (−0.04 %)        |
//! |   128 |      4 |    252 | 103.3547 ± 22.05331 | 102.5029 ± 21.8834 (−0.82 %)      |
//!
//! Same chunks, counts and formula; the residual difference is the forward's arithmetic (see
//! above), relatively larger on few, short chunks.
//!
//! # Comparing a quantized model with its base
//!
//! [`evaluate`] runs the base (source 0) and every other source in LOCKSTEP over the same
//! windows, position by position: the base's log-probabilities at a position are computed once
//! (one `vocab`-sized f64 buffer) and compared with each format's before moving on, so at most
//! one block of logits per source is held (a [`ModelSource`] runs the window in blocks of
//! [`super::forward_batch::DEFAULT_BLOCK`] positions, announced by [`LogitSource::lookahead`]).
//! Over the protocol's scored positions:
//!
//! - `KL(base ‖ quant) = Σ_v p_base(v) · (log p_base(v) − log p_quant(v))` in f64, averaged over
//!   scored positions (the direction of llama-perplexity's `--kl-divergence`);
//! - top-1 agreement: share of scored positions where the argmax of the logits is the same
//!   token (ties: lowest id);
//! - `Δppl = ppl_quant − ppl_base` (and relative, `Δppl / ppl_base`) — [`Metrics::delta_ppl`];
//! - paired statistics on the same tokens ([`Metrics::paired`], [`PairedAcc`]): the
//!   ln-ratio, ratio and difference of the perplexities with standard errors from the per-token
//!   paired NLL differences, and KL and top-1 with their standard errors, as
//!   `llama-perplexity --kl-divergence` reports them.
//!
//! The per-position scoring is [`Scorer`] (`eval_score.rs`): `evaluate` drives it from
//! [`LogitSource`]s; `gpu::forward::evaluate_on_gpu` drives it from awaited GPU readbacks (the
//! lab's WebGPU Compare), so both give the same numbers from the same logits.
//!
//! For a GGUF that ships quantized (the default SmolLM2 file is Q4_1), the "base" is that
//! checkpoint as stored: every report must name its source format.

pub use super::eval_score::Scorer;
pub use super::eval_source::{ForwardMode, ModelSource};
pub use super::eval_stats::{Paired, PairedAcc};
use super::ModelError;

/// Default window length in tokens (both protocols).
pub const DEFAULT_CTX: usize = 512;

/// Moby-Dick chapters held out for evaluation (inclusive).
pub const EVAL_CHAPTERS: std::ops::RangeInclusive<u32> = 1..=3;

/// Moby-Dick chapters for calibration (inclusive); disjoint from [`EVAL_CHAPTERS`].
pub const CALIBRATION_CHAPTERS: std::ops::RangeInclusive<u32> = 4..=135;

/// Separator between chapters in the eval text.
pub const CHAPTER_SEPARATOR: &str = "\n\n";

/// Joins chapter texts (already in chapter order) with [`CHAPTER_SEPARATOR`].
pub fn join_chapters<S: AsRef<str>>(texts: &[S]) -> String {
    texts.iter().map(AsRef::as_ref).collect::<Vec<&str>>().join(CHAPTER_SEPARATOR)
}

/// Which scoring rules to follow (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// No BOS, windows of `ctx`, every position but the first scored.
    Default,
    /// llama-perplexity: BOS per the model's metadata, second half of each chunk scored.
    LlamaCpp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Default => "default",
            Protocol::LlamaCpp => "llama.cpp",
        }
    }

    /// Whether the text is tokenized with a BOS in front, given the model's
    /// `tokenizer.ggml.add_bos_token` (`add_bos_default`).
    pub fn tokenize_with_bos(self, add_bos_default: bool) -> bool {
        match self {
            Protocol::Default => false,
            Protocol::LlamaCpp => add_bos_default,
        }
    }
}

/// Why an evaluation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("ctx = {0} leaves no token to score (at least 2, or 3 with the llama.cpp protocol)")]
    CtxTooSmall(usize),
    #[error("the text has {tokens} tokens: fewer than one window of ctx = {ctx}")]
    NoWindow { tokens: usize, ctx: usize },
    #[error(
        "the text has {tokens} tokens; llama-perplexity needs at least 2*n_ctx = {} to evaluate with a context of {ctx}",
        2 * ctx
    )]
    TooFewTokens { tokens: usize, ctx: usize },
    #[error("--max-windows must be at least 1")]
    ZeroWindows,
    #[error("the protocol adds BOS but the model has no BOS token")]
    NoBos,
    #[error("source {index} has a vocabulary of {got}, the base {expected}")]
    VocabMismatch { index: usize, expected: usize, got: usize },
    #[error("no model to evaluate")]
    NoSource,
    #[error("cancelled after {positions_done} of {positions_total} positions")]
    Cancelled { positions_done: usize, positions_total: usize },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// The windows to run and which positions are scored.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalPlan {
    pub protocol: Protocol,
    pub ctx: usize,
    /// Each window's tokens as fed to the model (BOS substitution already applied).
    pub windows: Vec<Vec<u32>>,
    /// The logits at positions `first_logit ..= ctx-2` are scored (they predict tokens
    /// `first_logit+1 ..= ctx-1`): 0 for the default protocol (every token but the window's
    /// first is a target), `ctx/2` for llama.cpp's (`first = n_ctx/2`).
    pub first_logit: usize,
    /// Tokens of the text (including a BOS the protocol put in front).
    pub text_tokens: usize,
    /// Windows the text holds before `max_windows`.
    pub windows_available: usize,
    /// Tokens after the last full window (never run).
    pub tokens_dropped: usize,
    /// The BOS written over each window's first token (llama.cpp protocol with `add_bos`).
    pub bos: Option<u32>,
}

impl EvalPlan {
    /// Scored tokens per window: `ctx − 1 − first_logit` (`ctx − 1` by default,
    /// `n_ctx − 1 − n_ctx/2` for llama.cpp's).
    pub fn scored_per_window(&self) -> usize {
        self.ctx - 1 - self.first_logit
    }

    /// Scored tokens in total.
    pub fn tokens_scored(&self) -> usize {
        self.windows.len() * self.scored_per_window()
    }

    /// `(position, target)` pairs scored in `window`: logits at `p` predict `window[p + 1]`.
    /// Targets are the ORIGINAL text tokens (for llama.cpp's BOS substitution, only position
    /// 0 changes, and it is never a target).
    pub fn scored_positions(&self, window: usize) -> impl Iterator<Item = (usize, u32)> + '_ {
        let w = &self.windows[window];
        (self.first_logit..self.ctx - 1).map(move |p| (p, w[p + 1]))
    }
}

/// Splits `tokens` (already tokenized per [`Protocol::tokenize_with_bos`]) into the
/// protocol's windows. `bos` is the model's BOS id, used only by [`Protocol::LlamaCpp`] when
/// `add_bos` is true (the first token of each chunk is replaced by it).
pub fn plan(
    tokens: &[u32],
    ctx: usize,
    protocol: Protocol,
    add_bos: bool,
    bos: Option<u32>,
    max_windows: Option<usize>,
) -> Result<EvalPlan, EvalError> {
    if ctx < 2 {
        return Err(EvalError::CtxTooSmall(ctx));
    }
    if max_windows == Some(0) {
        return Err(EvalError::ZeroWindows);
    }
    let n = tokens.len();
    let windows_available = n / ctx;
    match protocol {
        Protocol::Default if windows_available == 0 => return Err(EvalError::NoWindow { tokens: n, ctx }),
        Protocol::LlamaCpp if n < 2 * ctx => return Err(EvalError::TooFewTokens { tokens: n, ctx }),
        _ => {}
    }
    if ctx - 1 - if protocol == Protocol::LlamaCpp { ctx / 2 } else { 0 } == 0 {
        return Err(EvalError::CtxTooSmall(ctx));
    }
    let bos = match (protocol, add_bos) {
        (Protocol::LlamaCpp, true) => Some(bos.ok_or(EvalError::NoBos)?),
        _ => None,
    };
    let count = max_windows.map_or(windows_available, |k| k.min(windows_available));
    let windows = tokens
        .chunks_exact(ctx)
        .take(count)
        .map(|w| {
            let mut w = w.to_vec();
            if let Some(b) = bos {
                w[0] = b;
            }
            w
        })
        .collect();
    Ok(EvalPlan {
        protocol,
        ctx,
        windows,
        first_logit: match protocol {
            Protocol::Default => 0,
            Protocol::LlamaCpp => ctx / 2,
        },
        text_tokens: n,
        windows_available,
        tokens_dropped: n % ctx,
        bos,
    })
}

/// `out[v] = logits[v] − logsumexp(logits)` in f64 (max subtracted first).
pub fn log_softmax(logits: &[f32], out: &mut Vec<f64>) {
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    let lse = max + sum.ln();
    out.clear();
    out.extend(logits.iter().map(|&x| f64::from(x) - lse));
}

/// `KL(p ‖ q) = Σ p·(log p − log q)` from log-probabilities (f64). Terms with `p = 0`
/// contribute 0.
pub fn kl_divergence(log_p: &[f64], log_q: &[f64]) -> f64 {
    log_p
        .iter()
        .zip(log_q)
        .map(|(&lp, &lq)| {
            let p = lp.exp();
            if p == 0.0 {
                0.0
            } else {
                p * (lp - lq)
            }
        })
        .sum()
}

/// Index of the largest logit (the lowest index on ties; NaN never wins).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in logits.iter().enumerate() {
        if x > logits[best] || logits[best].is_nan() && !x.is_nan() {
            best = i;
        }
    }
    best
}

/// Something that gives next-token logits position by position: a model with its KV cache
/// ([`ModelSource`]) or, in tests, injected logits.
pub trait LogitSource {
    /// Starts a new window (a fresh KV cache).
    fn begin_window(&mut self);
    /// Called right after [`LogitSource::begin_window`] with the tokens the window will feed
    /// (positions `0..tokens.len()`, in order), so a source may run them in blocks ahead of
    /// the `logits` calls. The default ignores them.
    fn lookahead(&mut self, tokens: &[u32]) {
        let _ = tokens;
    }
    /// The logits after `token` at `pos` (positions `0..pos` of this window already run).
    fn logits(&mut self, token: u32, pos: usize) -> Result<&[f32], ModelError>;
}

/// One source's results over the plan's scored tokens.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Metrics {
    pub tokens_scored: usize,
    /// Mean NLL (nats per token).
    pub mean_nll: f64,
    /// `exp(mean_nll)`.
    pub ppl: f64,
    /// llama-perplexity's "±": `sqrt((mean(nll²) − mean(nll)²)/(n−1)) · ppl`.
    pub ppl_stderr: f64,
    /// Mean `KL(base ‖ this)` in nats; `None` for the base itself.
    pub kl_mean: Option<f64>,
    /// Largest single-position KL.
    pub kl_max: Option<f64>,
    /// Share of scored positions whose argmax equals the base's; `None` for the base.
    pub top1_agreement: Option<f64>,
    /// Paired statistics against the base on the same tokens (standard errors of KL, top-1,
    /// the ppl ratio and Δppl); `None` for the base.
    pub paired: Option<Paired>,
    /// Tokens run through the forward (all positions whose logits are needed).
    pub tokens_run: usize,
    /// Seconds spent in this source's forward, when a clock was given.
    pub forward_secs: Option<f64>,
}

impl Metrics {
    /// `(ppl − base.ppl, (ppl − base.ppl)/base.ppl)`.
    pub fn delta_ppl(&self, base: &Metrics) -> (f64, f64) {
        let d = self.ppl - base.ppl;
        (d, d / base.ppl)
    }

    /// Forward throughput (tokens run per second), when timed.
    pub fn tokens_per_sec(&self) -> Option<f64> {
        self.forward_secs.filter(|&s| s > 0.0).map(|s| self.tokens_run as f64 / s)
    }
}

/// Options of [`evaluate`] that do not change the numbers.
#[derive(Default)]
pub struct EvalHooks<'a> {
    /// Seconds since any fixed origin (e.g. `Instant`-based natively); `None`: no timing.
    pub clock: Option<&'a dyn Fn() -> f64>,
    /// Called after each window with `(windows done, windows total)`.
    pub progress: Option<&'a mut dyn FnMut(usize, usize)>,
    /// Called after every position (all sources run on it) with `(positions done, positions
    /// total)` over the whole plan (`windows × (ctx − 1)`); returning `false` stops the
    /// evaluation with [`EvalError::Cancelled`]. Finer than `progress` so a UI can cancel
    /// within a window.
    pub positions: Option<&'a mut dyn FnMut(usize, usize) -> bool>,
}

/// Runs every source over `plan` in lockstep; `sources[0]` is the base. Returns one
/// [`Metrics`] per source, in order.
pub fn evaluate(
    plan: &EvalPlan,
    sources: &mut [&mut dyn LogitSource],
    hooks: EvalHooks<'_>,
) -> Result<Vec<Metrics>, EvalError> {
    let mut scorer = Scorer::new(plan, sources.len(), hooks)?;
    let per_window = scorer.positions_per_window();
    for (wi, window) in plan.windows.iter().enumerate() {
        for s in sources.iter_mut() {
            s.begin_window();
            s.lookahead(&window[..per_window]);
        }
        for (pos, &token) in window[..per_window].iter().enumerate() {
            let (base, rest) = sources.split_first_mut().expect("Scorer::new refuses no source");
            let t0 = scorer.now();
            let base_logits = base.logits(token, pos)?;
            scorer.add_secs_since(0, t0);
            scorer.base(wi, pos, base_logits)?;
            for (i, src) in rest.iter_mut().enumerate() {
                let t0 = scorer.now();
                let logits = src.logits(token, pos)?;
                scorer.add_secs_since(i + 1, t0);
                scorer.source(i + 1, logits)?;
            }
            scorer.position_done(wi, pos)?;
        }
        scorer.window_done(wi);
    }
    Ok(scorer.finish())
}
