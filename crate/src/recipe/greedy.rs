//! Choosing which units to promote to a higher format within a size budget, from a sensitivity
//! scan (`quantlab sensitivity --target-bpw …`).
//!
//! Each candidate is a unit (a tensor, or a layer's matrices) with the bytes promotion adds and
//! the KL divergence it removes. The model's KL is **assumed additive** over units: the KL of a
//! mix is taken as the sum of the KLs of its units measured one at a time, so promoting a unit
//! removes its own measured KL, whatever else is promoted. Interactions between units are
//! ignored; the recipe should be evaluated (`quantlab eval --recipe`) rather than trusted.
//!
//! The choice is a 0/1 knapsack. [`promote`] is the greedy rule: take units in decreasing KL
//! removed per extra byte, skipping any that no longer fits, until none fits; then, if one unit
//! alone removes more than that whole set (a large, very sensitive unit the ratio order passed
//! over), take it alone instead. The result never exceeds the budget and removes at least half
//! of the best possible KL reduction, and at least the optimum minus the largest single gain;
//! it is the optimum when every unit costs the same bytes (as the layers of a model do).

/// One unit's promotion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Bytes the unit gains at the higher format (0 when it does not grow).
    pub extra_bytes: u64,
    /// KL the promotion removes (the unit's KL at the lower format, less its KL at the higher).
    pub gain: f64,
}

/// The units to promote (indices into `candidates`, ascending) within `budget` extra bytes.
/// Units that remove nothing (gain ≤ 0 or not finite) are never promoted.
pub fn promote(candidates: &[Candidate], budget: u64) -> Vec<usize> {
    let useful = |c: &Candidate| c.gain.is_finite() && c.gain > 0.0;
    let mut order: Vec<usize> = (0..candidates.len()).filter(|&i| useful(&candidates[i])).collect();
    // Gain per byte, descending; a unit that costs nothing comes first. Ties: lower index.
    let ratio = |c: &Candidate| if c.extra_bytes == 0 { f64::INFINITY } else { c.gain / c.extra_bytes as f64 };
    order.sort_by(|&a, &b| ratio(&candidates[b]).total_cmp(&ratio(&candidates[a])).then(a.cmp(&b)));
    let (mut used, mut chosen, mut total) = (0u64, Vec::new(), 0.0);
    for i in order {
        let c = &candidates[i];
        if let Some(after) = used.checked_add(c.extra_bytes).filter(|&u| u <= budget) {
            used = after;
            total += c.gain;
            chosen.push(i);
        }
    }
    let best_single = (0..candidates.len())
        .filter(|&i| useful(&candidates[i]) && candidates[i].extra_bytes <= budget)
        .max_by(|&a, &b| candidates[a].gain.total_cmp(&candidates[b].gain).then(b.cmp(&a)));
    if let Some(i) = best_single.filter(|&i| candidates[i].gain > total) {
        return vec![i];
    }
    chosen.sort_unstable();
    chosen
}

/// The total extra bytes and gain of a selection.
pub fn totals(candidates: &[Candidate], chosen: &[usize]) -> (u64, f64) {
    chosen.iter().fold((0, 0.0), |(b, g), &i| (b + candidates[i].extra_bytes, g + candidates[i].gain))
}
