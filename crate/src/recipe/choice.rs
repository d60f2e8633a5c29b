//! Choosing one format per unit within a size budget, from sensitivity scans (`quantlab
//! sensitivity -f q4_0,q5_0,q8_0 --target-…`).
//!
//! Each unit (a tensor, or a layer's matrices) has a few choices: a format, the bytes the unit
//! takes in it, and the KL divergence the unit alone causes in it (measured by a scan, or taken
//! as 0 for a high format assumed lossless). The model's KL is **assumed additive** over units:
//! the KL of a mix is taken as the sum of its units' KLs measured one at a time. Interactions are
//! ignored; the recipe should be evaluated (`quantlab eval --recipe`) rather than trusted.
//!
//! The choice is a multiple-choice knapsack: exactly one choice per unit, least total KL, total
//! bytes within the budget. [`choose`] solves it exactly by dynamic programming over the bytes
//! above the cheapest mix, counted in steps of `q` bytes with each choice's extra bytes rounded
//! **up** to a whole step, so the result never exceeds the budget. With at most [`MAX_STEPS`]
//! steps of slack, `q` is 1 byte and the result is the optimum; otherwise it is at least as good
//! as the optimum for a budget smaller by `q` bytes per unit (a fraction of a percent of the
//! slack of a real model). A ratio greedy is not used: with several formats per unit it can
//! miss by a lot (it cannot undo a cheap upgrade that blocks a better one).

/// One way to store a unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// Bytes of the unit's matrices in this choice.
    pub bytes: u64,
    /// The KL the unit alone causes in this choice.
    pub kl: f64,
}

/// The most byte steps the table spans (its memory is units × steps bytes).
pub const MAX_STEPS: u64 = 1 << 16;

/// The choices taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Per unit, the index of its choice.
    pub picks: Vec<usize>,
    pub bytes: u64,
    /// The sum of the picked choices' KLs.
    pub kl: f64,
}

/// Why no selection exists.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChoiceError {
    #[error("unit {unit} has no choice")]
    NoChoice { unit: usize },
    #[error("unit {unit} has more than 255 choices ({count})")]
    TooManyChoices { unit: usize, count: usize },
    #[error("unit {unit}'s choice {choice} has a KL that is not a number ({kl})")]
    NotFinite { unit: usize, choice: usize, kl: f64 },
    #[error("the budget ({budget} bytes) is below the smallest mix ({least} bytes)")]
    OverBudget { budget: u64, least: u64 },
}

/// The least-KL selection of one choice per unit within `budget` bytes (see the module docs).
/// Ties go to the unit's cheaper choice.
pub fn choose(units: &[Vec<Choice>], budget: u64) -> Result<Selection, ChoiceError> {
    let mut least = 0u64;
    for (u, choices) in units.iter().enumerate() {
        if choices.len() > usize::from(u8::MAX) {
            return Err(ChoiceError::TooManyChoices { unit: u, count: choices.len() });
        }
        if let Some((c, x)) = choices.iter().enumerate().find(|(_, x)| !x.kl.is_finite()) {
            return Err(ChoiceError::NotFinite { unit: u, choice: c, kl: x.kl });
        }
        let min = choices.iter().map(|c| c.bytes).min().ok_or(ChoiceError::NoChoice { unit: u })?;
        least = least.saturating_add(min);
    }
    let Some(slack) = budget.checked_sub(least) else {
        return Err(ChoiceError::OverBudget { budget, least });
    };
    let step = slack.div_ceil(MAX_STEPS).max(1);
    let cap = (slack / step) as usize;
    // Per unit, its choices in ascending bytes (so ties keep the cheaper) with their extra steps.
    let tables: Vec<Vec<(usize, usize)>> = units
        .iter()
        .map(|choices| {
            let min = choices.iter().map(|c| c.bytes).min().unwrap_or(0);
            let mut order: Vec<usize> = (0..choices.len()).collect();
            order.sort_by_key(|&i| (choices[i].bytes, i));
            let steps = |i: usize| ((choices[i].bytes - min).div_ceil(step)).min(cap as u64 + 1) as usize;
            order.into_iter().map(|i| (i, steps(i))).collect()
        })
        .collect();
    // best[s]: the least KL of the units so far within s steps; taken[u][s]: unit u's choice there.
    let mut best = vec![0.0f64; cap + 1];
    let mut taken = vec![vec![0u8; cap + 1]; units.len()];
    for (u, table) in tables.iter().enumerate() {
        let mut next = vec![f64::INFINITY; cap + 1];
        for s in 0..=cap {
            for &(i, w) in table {
                if w <= s {
                    let kl = best[s - w] + units[u][i].kl;
                    if kl < next[s] {
                        next[s] = kl;
                        taken[u][s] = i as u8;
                    }
                }
            }
        }
        best = next;
    }
    let mut picks = vec![0; units.len()];
    let mut s = cap;
    for u in (0..units.len()).rev() {
        let i = usize::from(taken[u][s]);
        picks[u] = i;
        s -= tables[u].iter().find(|&&(j, _)| j == i).map_or(0, |&(_, w)| w);
    }
    let bytes = picks.iter().zip(units).map(|(&i, c)| c[i].bytes).sum();
    let kl = picks.iter().zip(units).map(|(&i, c)| c[i].kl).sum();
    Ok(Selection { picks, bytes, kl })
}
