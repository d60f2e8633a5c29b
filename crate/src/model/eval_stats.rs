//! Paired statistics of a quantized model against its base on the same scored tokens, as
//! llama.cpp's `llama-perplexity --kl-divergence` reports them (`mean_and_uncertainty`,
//! `covariance` and the "Perplexity statistics" / "KL divergence statistics" block of
//! `tools/perplexity/perplexity.cpp`, read in the llama.cpp vendored by llama-cpp-python 0.3.36).
//!
//! Two formats' perplexities each carry a ± that mostly reflects how hard the text is, and that
//! difficulty is shared: a token the base finds hard, the quantized model finds hard too. The
//! paired numbers take the per-token differences `nll_q − nll_base` on the same tokens, whose
//! spread is far smaller, so a gap well inside both perplexities' intervals can still be many
//! standard errors from zero. llama.cpp writes the ln-ratio's uncertainty as
//! `sqrt(se_q² + se_base² − 2·cov)`; with its definitions that is exactly the standard error of
//! the mean of the per-token differences (`scripts/dev/paired_stats_reference.py` checks the
//! identity and writes the golden values the tests compare with).

/// `(mean, uncertainty)` of llama.cpp's `mean_and_uncertainty`: the uncertainty is
/// `sqrt((mean(x²) − mean(x)²)/(n − 1))`, 0 for 10 values or fewer or a non-positive variance.
fn mean_and_uncertainty(sum: f64, sum2: f64, count: usize) -> (f64, f64) {
    if count < 1 {
        return (0.0, 0.0);
    }
    let n = count as f64;
    let mean = sum / n;
    let var = sum2 / n - mean * mean;
    (mean, if var > 0.0 && count > 10 { (var / (n - 1.0)).sqrt() } else { 0.0 })
}

/// llama.cpp's `covariance`: `(mean(ab) − mean(a)·mean(b))/(n − 1)`, 0 below 10 values.
fn covariance(sum_a: f64, sum_b: f64, sum_ab: f64, count: usize) -> f64 {
    if count < 10 {
        return 0.0;
    }
    let n = count as f64;
    (sum_ab / n - (sum_a / n) * (sum_b / n)) / (n - 1.0)
}

/// Running sums over scored tokens of one quantized source against the base.
#[derive(Debug, Default, Clone)]
pub struct PairedAcc {
    count: usize,
    nll: f64,
    nll2: f64,
    nll_base: f64,
    nll_base2: f64,
    nll_nll_base: f64,
    kl: f64,
    kl2: f64,
    same_top: usize,
}

/// The paired summary ([`PairedAcc::finish`]); every "stderr" is one standard error.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct Paired {
    /// Mean of `nll_q − nll_base`, i.e. `ln(PPL(Q)/PPL(base))`.
    pub ln_ppl_ratio: f64,
    /// Standard error of the per-token paired differences' mean.
    pub ln_ppl_ratio_stderr: f64,
    /// `PPL(Q)/PPL(base)`.
    pub ppl_ratio: f64,
    pub ppl_ratio_stderr: f64,
    /// `PPL(Q) − PPL(base)` (the paired Δppl).
    pub delta_ppl: f64,
    /// Its standard error from the paired differences (llama.cpp's propagation through the
    /// covariance of the two mean NLLs).
    pub delta_ppl_stderr: f64,
    /// Correlation of the two mean NLLs' estimates (llama.cpp's `Cor(ln(PPL(Q)), ln(PPL(base)))`).
    pub nll_correlation: f64,
    /// Mean `KL(base ‖ Q)` in nats, and its standard error.
    pub kl_mean: f64,
    pub kl_stderr: f64,
    /// Share of tokens whose argmax is the base's ("same top p"), and its binomial standard
    /// error `sqrt(p(1 − p)/(n − 1))`.
    pub top1: f64,
    pub top1_stderr: f64,
}

impl PairedAcc {
    /// Adds one scored token: the base's and this source's NLL of the target, `KL(base ‖ Q)`
    /// there, and whether the two argmaxes agree.
    pub fn push(&mut self, nll_base: f64, nll: f64, kl: f64, same_top: bool) {
        self.count += 1;
        self.nll += nll;
        self.nll2 += nll * nll;
        self.nll_base += nll_base;
        self.nll_base2 += nll_base * nll_base;
        self.nll_nll_base += nll * nll_base;
        self.kl += kl;
        self.kl2 += kl * kl;
        self.same_top += usize::from(same_top);
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The summary; `None` before the first token.
    pub fn finish(&self) -> Option<Paired> {
        let n = self.count;
        if n == 0 {
            return None;
        }
        let (lq, lq_se) = mean_and_uncertainty(self.nll, self.nll2, n);
        let (lb, lb_se) = mean_and_uncertainty(self.nll_base, self.nll_base2, n);
        let (ppl, ppl_base) = (lq.exp(), lb.exp());
        let (ppl_se, ppl_base_se) = (ppl * lq_se, ppl_base * lb_se);
        let cov = covariance(self.nll, self.nll_base, self.nll_nll_base, n);
        let ln_ratio = lq - lb;
        // Rounding can leave a hair below zero when the two sources agree exactly.
        let ln_ratio_se = (lq_se * lq_se + lb_se * lb_se - 2.0 * cov).max(0.0).sqrt();
        let ratio = ln_ratio.exp();
        let ppl_cov = ppl * ppl_base * cov;
        let (kl_mean, kl_stderr) = mean_and_uncertainty(self.kl, self.kl2, n);
        let top1 = self.same_top as f64 / n as f64;
        let top1_stderr = if n > 1 { (top1 * (1.0 - top1) / (n as f64 - 1.0)).sqrt() } else { 0.0 };
        let denom = lq_se * lb_se;
        Some(Paired {
            ln_ppl_ratio: ln_ratio,
            ln_ppl_ratio_stderr: ln_ratio_se,
            ppl_ratio: ratio,
            ppl_ratio_stderr: ratio * ln_ratio_se,
            delta_ppl: ppl - ppl_base,
            delta_ppl_stderr: (ppl_se * ppl_se + ppl_base_se * ppl_base_se - 2.0 * ppl_cov).max(0.0).sqrt(),
            nll_correlation: if denom > 0.0 { cov / denom } else { 0.0 },
            kl_mean,
            kl_stderr,
            top1,
            top1_stderr,
        })
    }
}
