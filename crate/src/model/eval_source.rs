//! [`ModelSource`]: a [`Model`] with its KV cache as the [`LogitSource`] that [`super::eval`]
//! scores, running each window in blocks through the batched forward by default.

use super::eval::LogitSource;
use super::forward_batch::{try_forward_batch, BatchLogits, BatchState, Block, DEFAULT_BLOCK};
use super::{forward::State, Config, KvType, Model, ModelError};

/// How a [`ModelSource`] runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMode {
    /// The window's positions in blocks of `block` through [`forward_batch`] (bit-identical
    /// to [`ForwardMode::PerPosition`], and much faster: each weight row is decoded once per
    /// block).
    Batched { block: usize },
    /// One position at a time through [`super::forward()`], the reference.
    PerPosition,
}

impl Default for ForwardMode {
    fn default() -> Self {
        ForwardMode::Batched { block: DEFAULT_BLOCK }
    }
}

/// A [`Model`] and its [`State`] as a [`LogitSource`].
pub struct ModelSource<'m> {
    pub model: &'m Model,
    pub state: State,
    pub forward: ForwardMode,
    /// The window announced by [`LogitSource::lookahead`] and the block run ahead of it.
    ahead: Option<Ahead>,
}

/// Logits of positions `start .. start + len` of `window`, computed in one block.
struct Ahead {
    batch: BatchState,
    window: Vec<u32>,
    start: usize,
    len: usize,
}

impl<'m> ModelSource<'m> {
    /// A state holding `ctx` positions; `threads` as [`State::threads`]; the
    /// batched forward ([`ForwardMode::default`]).
    pub fn new(model: &'m Model, ctx: usize, threads: usize) -> ModelSource<'m> {
        ModelSource::with_kv(model, ctx, threads, KvType::F32)
    }

    /// [`ModelSource::new`] with the KV cache stored as `kv`.
    pub fn with_kv(model: &'m Model, ctx: usize, threads: usize, kv: KvType) -> ModelSource<'m> {
        let mut state = State::with_kv(&model.config, ctx, kv);
        state.threads = threads.max(1);
        ModelSource { model, state, forward: ForwardMode::default(), ahead: None }
    }

    /// The same source with every linear layer's input quantized by `act` (`None`: f32).
    pub fn with_act(mut self, act: Option<super::ActQuantizer>) -> ModelSource<'m> {
        self.state.act = act;
        self
    }

    /// The same source with its weight products on `path` ([`super::int_path`]).
    pub fn with_matmul(mut self, path: super::MatmulPath) -> ModelSource<'m> {
        self.state.matmul = path;
        self
    }

    /// The same source running the model as `forward` says.
    pub fn with_forward(mut self, forward: ForwardMode) -> ModelSource<'m> {
        self.forward = forward;
        self
    }

    pub fn config(&self) -> &Config {
        &self.model.config
    }
}

impl LogitSource for ModelSource<'_> {
    fn begin_window(&mut self) {
        // Attention at `pos` only reads cache rows 0..=pos, all written in this window, so
        // this is belt and braces: the window sees exactly a fresh cache.
        self.state.kv.clear();
        if let Some(a) = self.ahead.as_mut() {
            a.window.clear();
            (a.start, a.len) = (0, 0);
        }
    }

    fn lookahead(&mut self, tokens: &[u32]) {
        let ForwardMode::Batched { block } = self.forward else { return };
        let block = block.max(1);
        let a = self.ahead.get_or_insert_with(|| Ahead {
            batch: BatchState::new(&self.model.config, block),
            window: Vec::new(),
            start: 0,
            len: 0,
        });
        if a.batch.max_positions() != block {
            a.batch = BatchState::new(&self.model.config, block);
        }
        a.window.clear();
        a.window.extend_from_slice(tokens);
        (a.start, a.len) = (0, 0);
    }

    fn logits(&mut self, token: u32, pos: usize) -> Result<&[f32], ModelError> {
        let (m, state) = (self.model, &mut self.state);
        // The batched path serves the announced window in order; anything else (no window,
        // another token, a jump) runs the reference forward for that position.
        let Some(a) = self.ahead.as_mut().filter(|a| a.window.get(pos) == Some(&token)) else {
            return super::try_forward(&m.config, &m.weights, state, token, pos);
        };
        if !(a.start..a.start + a.len).contains(&pos) {
            if pos != a.start + a.len {
                a.window.clear();
                return super::try_forward(&m.config, &m.weights, state, token, pos);
            }
            let end = a.window.len().min(pos + a.batch.max_positions());
            let tokens = &a.window[pos..end];
            try_forward_batch(
                &m.config,
                &m.weights,
                state,
                &mut a.batch,
                Block { tokens, pos0: pos, logits: BatchLogits::Every },
            )?;
            (a.start, a.len) = (pos, end - pos);
        }
        let vocab = m.config.vocab_size;
        Ok(&a.batch.logits()[(pos - a.start) * vocab..][..vocab])
    }
}
