//! Next-token selection: greedy (argmax) or temperature / top-k / top-p sampling with a seeded
//! PRNG. Pure code (no clock, no OS randomness), so it runs the same natively and on wasm32.
//!
//! # The PRNG
//!
//! [`Rng`] is PCG32 (O'Neill's `pcg32`, XSH-RR output, 64-bit LCG state with multiplier
//! 6364136223846793005 and the fixed stream increment 1442695040888963407), seeded like the
//! reference `pcg32_srandom_r`: `state = 0; step; state += seed; step`.
//! [`Rng::next_f32`] takes the top 24 bits of one output: uniform on `[0, 1)`.
//!
//! # Sampling, step by step ([`Sampler::sample`])
//!
//! 1. `temperature <= 0`, `top_k == 1` or `top_p <= 0`: greedy — the largest logit, the lowest
//!    id on ties ([`argmax`]). No random number is drawn.
//! 2. Candidates: every token (or, with `top_k = k > 0`, the `k` largest logits), sorted by
//!    logit descending, ties by id ascending.
//! 3. Probabilities: softmax of `logit / temperature` over the candidates (f64, max-subtracted).
//! 4. Top-p (nucleus, `0 < top_p < 1`): keep the shortest prefix whose probabilities sum to at
//!    least `top_p` (at least one token); `top_p >= 1` keeps all.
//! 5. Draw `u = next_f32()` and return the first candidate whose cumulative (renormalised)
//!    probability exceeds `u · total` (the last candidate if rounding leaves none).
//!
//! Every non-greedy pick over more than one logit draws exactly one number (even when no
//! candidate is left), as the GPU sampler does: the sampler after `n` picks is
//! [`Sampler::resumed`]`(config, n)`, which is what lets a generation stopped on one backend
//! continue on another with the same random stream.

/// PCG32: a small, fast, seedable generator (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

const PCG_MUL: u64 = 6364136223846793005;
const PCG_INC: u64 = 1442695040888963407;

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut r = Rng { state: 0 };
        r.next_u32();
        r.state = r.state.wrapping_add(seed);
        r.next_u32();
        r
    }

    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(PCG_MUL).wrapping_add(PCG_INC);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// Uniform on `[0, 1)` (24 random bits).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 24) as f32
    }
}

/// How to pick the next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerConfig {
    /// 0 (or below) = greedy.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 = no limit.
    pub top_k: usize,
    /// Nucleus threshold in (0, 1); 1 (or above) = no limit, 0 (or below) = greedy.
    pub top_p: f32,
    pub seed: u64,
}

impl Default for SamplerConfig {
    /// Greedy.
    fn default() -> Self {
        SamplerConfig { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 }
    }
}

impl SamplerConfig {
    pub fn is_greedy(&self) -> bool {
        // Written so that a NaN temperature or top_p also means greedy.
        let positive = |v: f32| v.partial_cmp(&0.0) == Some(std::cmp::Ordering::Greater);
        !positive(self.temperature) || self.top_k == 1 || !positive(self.top_p)
    }
}

/// The index of the largest value, the lowest index on ties; NaN never wins (0 when all are
/// NaN or the slice is empty).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    let mut found = false;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v || (!found && !v.is_nan()) {
            best = i;
            best_v = v;
            found = true;
        }
    }
    best as u32
}

/// A configured sampler with its PRNG.
#[derive(Debug, Clone)]
pub struct Sampler {
    pub config: SamplerConfig,
    rng: Rng,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Sampler {
        Sampler { config, rng: Rng::new(config.seed) }
    }

    /// The sampler as it is after `picks` calls of [`Self::sample`] on logits of more than one
    /// value: the same random stream from there on (greedy draws nothing, so it is [`Self::new`]).
    pub fn resumed(config: SamplerConfig, picks: usize) -> Sampler {
        let mut sampler = Sampler::new(config);
        if !config.is_greedy() {
            for _ in 0..picks {
                sampler.rng.next_f32();
            }
        }
        sampler
    }

    /// Picks the next token from `logits` (see the module docs).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let c = self.config;
        if c.is_greedy() || logits.len() <= 1 {
            return argmax(logits);
        }
        // Drawn first, so every pick advances the stream once (see the module docs).
        let draw = self.rng.next_f32() as f64;
        let order = |a: &u32, b: &u32| {
            let (x, y) = (logits[*a as usize], logits[*b as usize]);
            y.total_cmp(&x).then(a.cmp(b))
        };
        let mut ids: Vec<u32> = (0..logits.len() as u32).filter(|&i| !logits[i as usize].is_nan()).collect();
        if ids.is_empty() {
            return 0;
        }
        if c.top_k > 0 && c.top_k < ids.len() {
            ids.select_nth_unstable_by(c.top_k - 1, order);
            ids.truncate(c.top_k);
        }
        ids.sort_unstable_by(order);
        let max = logits[ids[0] as usize] as f64;
        let t = c.temperature as f64;
        let mut probs: Vec<f64> = ids.iter().map(|&i| ((logits[i as usize] as f64 - max) / t).exp()).collect();
        let sum: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        let mut keep = probs.len();
        if c.top_p < 1.0 {
            let mut cum = 0.0;
            for (n, p) in probs.iter().enumerate() {
                cum += p;
                if cum >= c.top_p as f64 {
                    keep = n + 1;
                    break;
                }
            }
        }
        let total: f64 = probs[..keep].iter().sum();
        let u = draw * total;
        let mut cum = 0.0;
        for (n, p) in probs[..keep].iter().enumerate() {
            cum += p;
            if u < cum {
                return ids[n];
            }
        }
        ids[keep - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcg32_is_deterministic_and_uniformish() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u32> = (0..8).map(|_| a.next_u32()).collect();
        assert_eq!(xs, (0..8).map(|_| b.next_u32()).collect::<Vec<_>>());
        assert_ne!(xs, (0..8).map(|_| Rng::new(43).next_u32()).collect::<Vec<_>>());
        let mut r = Rng::new(1);
        let mean: f64 = (0..10000).map(|_| r.next_f32() as f64).sum::<f64>() / 10000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }

    #[test]
    fn resumed_sampler_continues_the_stream() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 7919) % 23) as f32 * 0.3).collect();
        let config = SamplerConfig { temperature: 1.3, top_k: 0, top_p: 0.9, seed: 9 };
        let mut full = Sampler::new(config);
        // A pick with every logit NaN draws too, like every other pick.
        let at = |i: usize| if i == 3 { &[f32::NAN; 50][..] } else { &logits[..] };
        let picks: Vec<u32> = (0..12).map(|i| full.sample(at(i))).collect();
        for n in [0, 3, 4, 11] {
            let mut resumed = Sampler::resumed(config, n);
            let rest: Vec<u32> = (n..12).map(|i| resumed.sample(at(i))).collect();
            assert_eq!(rest, picks[n..], "resumed after {n} picks");
        }
    }

    #[test]
    fn argmax_ties_and_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 1.0, 0.5]), 1);
        assert_eq!(argmax(&[]), 0);
    }
}
