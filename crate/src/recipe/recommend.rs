//! A recommended recipe from a sensitivity scan: the scan's format everywhere, then units
//! promoted to a high format by [`super::greedy::promote`] within a byte budget. Used by
//! `quantlab sensitivity --target-…` and the lab's recipe builder (one code path).
//!
//! The KL is **assumed additive** over units, and a promoted unit's KL at the high format is
//! taken as 0 (it is not measured; q8_0, the default high format, is close to lossless). The
//! recipe lists every scanned tensor with its format, so the unlisted-tensor rules of a file
//! type never apply to them.

use super::greedy::{self, Candidate};
use super::{DefaultEntry, Method, Recipe, RecipeError, TensorEntry, VERSION};
use crate::model::sensitivity::{Scan, UnitRow};

/// The size a recipe may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// Bytes of the weight matrices.
    Bytes(u64),
    /// Bits per weight of the weight matrices.
    BitsPerWeight(f64),
}

/// The recommended mix.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
pub struct Recommendation {
    /// The weight matrices' byte budget, and what the recipe takes.
    pub budget_bytes: u64,
    pub bytes: u64,
    pub bits_per_weight: f64,
    /// Units promoted to the high format.
    pub promoted: Vec<String>,
    /// Sum of the KLs of the units left at the format (the additive estimate).
    pub predicted_kl: f64,
    pub recipe: Recipe,
}

/// Why no recipe could be recommended.
#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error("the target must be a positive number of bits per weight, got {0}")]
    BitsPerWeight(f64),
    #[error(
        "the budget ({budget} bytes) is below the model at {format} everywhere ({base} bytes): choose a smaller format"
    )]
    BelowUniform { budget: u64, base: u64, format: String },
    #[error("the recommended recipe: {0}")]
    Recipe(#[from] RecipeError),
}

impl Budget {
    /// The budget in bytes for a model of `elements` weights.
    pub fn bytes(self, elements: u64) -> Result<u64, RecommendError> {
        match self {
            Budget::Bytes(b) => Ok(b),
            Budget::BitsPerWeight(x) if x.is_finite() && x > 0.0 => Ok((x * elements as f64 / 8.0).floor() as u64),
            Budget::BitsPerWeight(x) => Err(RecommendError::BitsPerWeight(x)),
        }
    }
}

/// The greedy promotion of `scan`'s units (their `bytes_high` set by [`Scan::set_high`]) from
/// `format` (the scan's, as the user named it) to `high` within `budget`, as a recipe.
pub fn recommend(scan: &Scan, format: &str, high: &str, budget: Budget) -> Result<Recommendation, RecommendError> {
    let (base, elements) = (scan.low.total_bytes(), scan.low.n_elements());
    let budget = budget.bytes(elements)?;
    let Some(extra) = budget.checked_sub(base) else {
        return Err(RecommendError::BelowUniform { budget, base, format: format.to_string() });
    };
    let rows = &scan.rows;
    let candidates: Vec<Candidate> = rows
        .iter()
        .map(|r| Candidate { extra_bytes: r.bytes_high.saturating_sub(r.bytes), gain: r.damage.kl })
        .collect();
    let chosen = greedy::promote(&candidates, extra);
    let (used, gain) = greedy::totals(&candidates, &chosen);
    let total_kl: f64 = rows.iter().map(|r| r.damage.kl).sum();
    let promoted: Vec<&UnitRow> = chosen.iter().map(|&i| &rows[i]).collect();
    let bytes = base + used;
    let bpw = 8.0 * bytes as f64 / elements as f64;
    let tensors = rows
        .iter()
        .flat_map(|r| {
            let up = promoted.iter().any(|p| p.unit == r.unit);
            let format = if up { high } else { format };
            r.tensors.iter().map(move |t| TensorEntry { name: t.clone(), format: format.into(), method: Method::Rtn })
        })
        .collect();
    let recipe = Recipe {
        version: VERSION,
        name: Some(format!(
            "{format} with {} of {} {} units at {high} ({bpw:.3} bpw)",
            promoted.len(),
            rows.len(),
            scan.kind.name(),
        )),
        default: DefaultEntry { format: format.to_string(), method: Method::Rtn },
        tensors,
    };
    recipe.check()?;
    Ok(Recommendation {
        budget_bytes: budget,
        bytes,
        bits_per_weight: bpw,
        promoted: promoted.iter().map(|r| r.unit.clone()).collect(),
        predicted_kl: total_kl - gain,
        recipe,
    })
}
