//! A recommended recipe from sensitivity scans: one format per unit, chosen among the scanned
//! formats (each unit's KL measured in each) and optionally a high format assumed lossless, with
//! the least total KL within a byte budget ([`super::choice::choose`], an exact multiple-choice
//! knapsack). Used by `quantlab sensitivity --target-…` and the lab's recipe builder (one code
//! path).
//!
//! The KL is **assumed additive** over units (the recipe's predicted KL is the sum of its units'
//! KLs, each measured alone). Scanning several formats lets the recipe put insensitive units
//! *below* the format of the budget's size to pay for sensitive ones above it; the uniform model
//! at each scanned format is one of the mixes searched, so by the scans' own numbers the recipe
//! is never worse than it. An assumed format's KL is taken as 0 (not measured; q8_0, the default,
//! is close to lossless). The recipe lists every scanned tensor with its format, so the
//! unlisted-tensor rules of a file type never apply to them.

use super::choice::{self, Choice, ChoiceError};
use super::{DefaultEntry, Method, Recipe, RecipeError, TensorEntry, VERSION};
use crate::model::quantize::QuantReport;
use crate::model::sensitivity::{tensor_bytes, Scan};

/// The size a recipe may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// Bytes of the weight matrices.
    Bytes(u64),
    /// Bits per weight of the weight matrices.
    BitsPerWeight(f64),
}

/// Where a format's per-unit KL comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    /// A scan of the model at the format: every unit's KL measured.
    Scanned(&'a Scan),
    /// The model's sizes at the format, which is taken as lossless (KL 0, not measured).
    Assumed(&'a QuantReport),
}

/// A format the recipe may give a unit, as the user named it.
#[derive(Debug, Clone, Copy)]
pub struct FormatOption<'a> {
    pub format: &'a str,
    pub source: Source<'a>,
}

/// How many units a format got, and their bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
pub struct FormatShare {
    pub format: String,
    pub units: usize,
    pub bytes: u64,
}

/// One unit's format in the recipe and its KL there (0 for an assumed format).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
pub struct UnitChoice {
    pub unit: String,
    pub format: String,
    pub bytes: u64,
    pub kl: f64,
}

/// The recommended mix.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
pub struct Recommendation {
    /// The weight matrices' byte budget, and what the recipe takes.
    pub budget_bytes: u64,
    pub bytes: u64,
    pub bits_per_weight: f64,
    /// Per format, in the order given.
    pub formats: Vec<FormatShare>,
    /// Every unit, in the model's order.
    pub choices: Vec<UnitChoice>,
    /// Sum of the chosen units' KLs (the additive estimate).
    pub predicted_kl: f64,
    pub recipe: Recipe,
}

/// Why no recipe could be recommended.
#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error("the target must be a positive number of bits per weight, got {0}")]
    BitsPerWeight(f64),
    #[error("no scanned format to recommend from")]
    NoScan,
    #[error("the scan of {format} has other units than the scan of {first}: scan every format with the same units")]
    UnitsDiffer { format: String, first: String },
    #[error(
        "the budget ({budget} bytes) is below the smallest mix of {formats} ({least} bytes): choose a smaller format"
    )]
    BelowSmallest { budget: u64, least: u64, formats: String },
    #[error("at most 255 formats, got {0}")]
    TooManyFormats(usize),
    #[error("unit {unit} at {format}: its KL is not a number ({kl})")]
    NotFinite { unit: String, format: String, kl: f64 },
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

/// The options of a recommendation: every scanned format (named as the user named it), then
/// `high` assumed lossless with the model's sizes in it, unless it was scanned too (then its
/// measured KLs stand). The CLI and the lab build them here.
pub fn options<'a>(scans: &[(&'a str, &'a Scan)], high: &'a str, high_sizes: &'a QuantReport) -> Vec<FormatOption<'a>> {
    let mut out: Vec<FormatOption> =
        scans.iter().map(|&(format, scan)| FormatOption { format, source: Source::Scanned(scan) }).collect();
    if !scans.iter().any(|(_, s)| s.low.scheme == high_sizes.scheme) {
        out.push(FormatOption { format: high, source: Source::Assumed(high_sizes) });
    }
    out
}

/// The least-KL recipe within `budget` with every unit in one of `options` (see the module docs).
/// The units are the first scan's; every scan must have the same. The first scanned format is the
/// recipe's default, which the matrices of units a partial scan left out keep.
pub fn recommend(options: &[FormatOption], budget: Budget) -> Result<Recommendation, RecommendError> {
    let scans: Vec<(&str, &Scan)> = options
        .iter()
        .filter_map(|o| match o.source {
            Source::Scanned(s) => Some((o.format, s)),
            Source::Assumed(_) => None,
        })
        .collect();
    let &(first, scan) = scans.first().ok_or(RecommendError::NoScan)?;
    for &(format, other) in &scans[1..] {
        let same = other.rows.len() == scan.rows.len()
            && other.rows.iter().zip(&scan.rows).all(|(a, b)| a.unit == b.unit && a.tensors == b.tensors);
        if !same {
            return Err(RecommendError::UnitsDiffer { format: format.into(), first: first.into() });
        }
    }
    let elements = scan.low.n_elements();
    let budget = budget.bytes(elements)?;
    // Matrices outside the scanned units (a partial scan) stay at the first format, the recipe's
    // default: their bytes come off the budget first.
    let fixed = scan.low.total_bytes().saturating_sub(scan.rows.iter().map(|r| r.bytes).sum());
    let formats_named = || options.iter().map(|o| o.format).collect::<Vec<_>>().join(", ");
    // Per unit, one choice per format, in the order of `options`.
    let units: Vec<Vec<Choice>> = (0..scan.rows.len())
        .map(|u| {
            let tensors = &scan.rows[u].tensors;
            options
                .iter()
                .map(|o| match o.source {
                    Source::Scanned(s) => Choice { bytes: s.rows[u].bytes, kl: s.rows[u].damage.kl },
                    Source::Assumed(report) => Choice { bytes: tensor_bytes(report, tensors), kl: 0.0 },
                })
                .collect()
        })
        .collect();
    let unit_name = |u: usize| scan.rows[u].unit.clone();
    let Some(for_units) = budget.checked_sub(fixed) else {
        return Err(RecommendError::BelowSmallest { budget, least: fixed, formats: formats_named() });
    };
    let selection = choice::choose(&units, for_units).map_err(|e| match e {
        ChoiceError::OverBudget { least, .. } => {
            RecommendError::BelowSmallest { budget, least: least + fixed, formats: formats_named() }
        }
        ChoiceError::NotFinite { unit, choice, kl } => {
            RecommendError::NotFinite { unit: unit_name(unit), format: options[choice].format.into(), kl }
        }
        // A unit has one choice per option, and there is a scan, so no unit is without one.
        ChoiceError::NoChoice { .. } => RecommendError::NoScan,
        ChoiceError::TooManyChoices { count, .. } => RecommendError::TooManyFormats(count),
    })?;
    let choices: Vec<UnitChoice> = selection
        .picks
        .iter()
        .enumerate()
        .map(|(u, &i)| UnitChoice {
            unit: unit_name(u),
            format: options[i].format.into(),
            bytes: units[u][i].bytes,
            kl: units[u][i].kl,
        })
        .collect();
    let formats: Vec<FormatShare> = options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let mine = || selection.picks.iter().enumerate().filter(move |&(_, &p)| p == i);
            let bytes = mine().map(|(u, _)| units[u][i].bytes).sum();
            FormatShare { format: o.format.into(), units: mine().count(), bytes }
        })
        .collect();
    let tensors = scan
        .rows
        .iter()
        .zip(&choices)
        .flat_map(|(r, c)| {
            let format = &c.format;
            r.tensors.iter().map(move |t| TensorEntry { name: t.clone(), format: format.clone(), method: Method::Rtn })
        })
        .collect();
    let bytes = selection.bytes + fixed;
    let bpw = 8.0 * bytes as f64 / elements as f64;
    let mix = formats.iter().filter(|f| f.units > 0).map(|f| format!("{} ×{}", f.format, f.units));
    let recipe = Recipe {
        version: VERSION,
        name: Some(format!("{} by {} ({bpw:.3} bpw)", mix.collect::<Vec<_>>().join(", "), scan.kind.name())),
        default: DefaultEntry { format: first.to_string(), method: Method::Rtn },
        tensors,
    };
    recipe.check()?;
    Ok(Recommendation {
        budget_bytes: budget,
        bytes,
        bits_per_weight: bpw,
        formats,
        choices,
        predicted_kl: selection.kl,
        recipe,
    })
}
