//! [`Scorer`]: the per-position half of [`super::eval::evaluate`], split out so a caller whose
//! logits arrive asynchronously (the GPU in wasm, where a buffer map is a Promise) can feed it
//! position by position and source by source, and get exactly the metrics `evaluate` gives.
//!
//! At each position the base's logits come first ([`Scorer::base`]): its log-softmax (one
//! `vocab`-sized f64 buffer), argmax and NLL are kept, then every other source's logits
//! ([`Scorer::source`]) are scored against them (NLL, KL, top-1, the paired sums). Nothing of a
//! position survives the next `base` call, so a caller holds at most one row of logits per
//! source. The arithmetic (and the order of every f64 sum) is `evaluate`'s, so the CLI's
//! numbers do not change by a bit.

use super::eval::{argmax, kl_divergence, log_softmax, EvalError, EvalHooks, EvalPlan, Metrics};
use super::eval_stats::PairedAcc;
use super::ModelError;

/// Running sums of one source.
#[derive(Default, Clone)]
struct Acc {
    nll: f64,
    nll2: f64,
    count: usize,
    kl: f64,
    kl_max: f64,
    agree: usize,
    run: usize,
    secs: f64,
    paired: PairedAcc,
}

impl Acc {
    fn finish(&self, is_base: bool, timed: bool) -> Metrics {
        let n = self.count as f64;
        let mean = self.nll / n;
        let ppl = mean.exp();
        let var = self.nll2 / n - mean * mean;
        let stderr = if self.count > 1 && var > 0.0 { (var / (n - 1.0)).sqrt() * ppl } else { 0.0 };
        Metrics {
            tokens_scored: self.count,
            mean_nll: mean,
            ppl,
            ppl_stderr: stderr,
            kl_mean: (!is_base).then(|| self.kl / n),
            kl_max: (!is_base).then_some(self.kl_max),
            top1_agreement: (!is_base).then(|| self.agree as f64 / n),
            paired: if is_base { None } else { self.paired.finish() },
            tokens_run: self.run,
            forward_secs: timed.then_some(self.secs),
        }
    }
}

/// The base's view of the position being scored.
#[derive(Default)]
struct Current {
    vocab: usize,
    target: usize,
    scored: bool,
    base_top: usize,
    base_nll: f64,
}

/// Accumulates the metrics of `sources` models over a plan's windows and reports progress to
/// the evaluation's hooks (see the module docs).
pub struct Scorer<'p, 'h> {
    plan: &'p EvalPlan,
    hooks: EvalHooks<'h>,
    acc: Vec<Acc>,
    base_lp: Vec<f64>,
    lp: Vec<f64>,
    current: Current,
}

impl<'p, 'h> Scorer<'p, 'h> {
    /// A scorer for `sources` models over `plan` (source 0 is the base), reporting to `hooks`.
    pub fn new(plan: &'p EvalPlan, sources: usize, hooks: EvalHooks<'h>) -> Result<Scorer<'p, 'h>, EvalError> {
        if sources == 0 {
            return Err(EvalError::NoSource);
        }
        Ok(Scorer {
            plan,
            hooks,
            acc: vec![Acc::default(); sources],
            base_lp: Vec::new(),
            lp: Vec::new(),
            current: Current::default(),
        })
    }

    /// Positions whose logits each window needs: `0 ..= ctx − 2` (position `ctx − 1` predicts
    /// nothing).
    pub fn positions_per_window(&self) -> usize {
        self.plan.ctx - 1
    }

    /// Positions over the whole plan, as the `positions` hook counts them.
    pub fn positions_total(&self) -> usize {
        self.plan.windows.len() * self.positions_per_window()
    }

    /// Starts position `pos` of window `window` with the base's `logits` there.
    pub fn base(&mut self, window: usize, pos: usize, logits: &[f32]) -> Result<(), EvalError> {
        let target = self.plan.windows[window][pos + 1] as usize;
        let vocab = logits.len();
        self.acc[0].run += 1;
        // The forward checks the token it is fed; the target is only indexed here.
        if target >= vocab {
            return Err(ModelError::TokenOutOfRange { token: target as u32, vocab_size: vocab }.into());
        }
        let scored = pos >= self.plan.first_logit;
        self.current = Current { vocab, target, scored, base_top: 0, base_nll: 0.0 };
        if scored {
            log_softmax(logits, &mut self.base_lp);
            self.current.base_top = argmax(logits);
            let v = -self.base_lp[target];
            self.current.base_nll = v;
            let a = &mut self.acc[0];
            a.nll += v;
            a.nll2 += v * v;
            a.count += 1;
        }
        Ok(())
    }

    /// Source `index` (1.., in the order of [`Scorer::new`]'s count) at the position
    /// [`Scorer::base`] started.
    pub fn source(&mut self, index: usize, logits: &[f32]) -> Result<(), EvalError> {
        let c = &self.current;
        let a = &mut self.acc[index];
        a.run += 1;
        if logits.len() != c.vocab {
            return Err(EvalError::VocabMismatch { index, expected: c.vocab, got: logits.len() });
        }
        if !c.scored {
            return Ok(());
        }
        log_softmax(logits, &mut self.lp);
        let v = -self.lp[c.target];
        a.nll += v;
        a.nll2 += v * v;
        a.count += 1;
        let kl = kl_divergence(&self.base_lp, &self.lp);
        a.kl += kl;
        a.kl_max = a.kl_max.max(kl);
        let same_top = argmax(logits) == c.base_top;
        a.agree += usize::from(same_top);
        a.paired.push(c.base_nll, v, kl, same_top);
        Ok(())
    }

    /// The hooks' clock (0 without one).
    pub fn now(&self) -> f64 {
        self.hooks.clock.map_or(0.0, |c| c())
    }

    /// Adds the forward time since `t0` (from [`Scorer::now`]) to source `index`.
    pub fn add_secs_since(&mut self, index: usize, t0: f64) {
        self.acc[index].secs += self.now() - t0;
    }

    /// Every source has run position `pos` of window `window`: the `positions` hook hears it,
    /// and its `false` is [`EvalError::Cancelled`].
    pub fn position_done(&mut self, window: usize, pos: usize) -> Result<(), EvalError> {
        let positions_done = window * self.positions_per_window() + pos + 1;
        let positions_total = self.positions_total();
        let go_on = self.hooks.positions.as_mut().is_none_or(|cb| cb(positions_done, positions_total));
        if go_on {
            Ok(())
        } else {
            Err(EvalError::Cancelled { positions_done, positions_total })
        }
    }

    /// Window `window` is done: the `progress` hook hears it.
    pub fn window_done(&mut self, window: usize) {
        let windows = self.plan.windows.len();
        if let Some(p) = self.hooks.progress.as_mut() {
            p(window + 1, windows);
        }
    }

    /// One [`Metrics`] per source, in order (`forward_secs` when the hooks have a clock).
    pub fn finish(self) -> Vec<Metrics> {
        let timed = self.hooks.clock.is_some();
        self.acc.iter().enumerate().map(|(i, a)| a.finish(i == 0, timed)).collect()
    }
}
