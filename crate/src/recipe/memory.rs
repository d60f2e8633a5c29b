//! A recipe applied to a model in memory: `quantlab eval --recipe` and the lab's
//! `LabModel.quantizeRecipe`. Round-to-nearest entries only: the calibrated methods need their
//! calibration run, which `quantlab quantize --recipe` does when it writes a file.

use super::{Method, Recipe, RecipeError};
use crate::model::quantize::{quantize_model_with_progress, QuantizeModelError};
use crate::model::{Model, QuantReport};
use crate::policy::TensorPolicy;

/// The types of the tensors a recipe does not list, when its default is a llama.cpp file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlisted {
    /// llama-quantize's per-tensor rules of that file type.
    FileTypeRules,
    /// The default's one type everywhere (`--pure`).
    Pure,
}

/// Why a recipe could not be applied in memory.
#[derive(Debug, thiserror::Error)]
pub enum InMemoryError {
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error(
        "uses the {} method, which is not run in memory: write it with `quantlab quantize --recipe` and evaluate that file",
        .0.name()
    )]
    Method(Method),
    #[error("cannot quantize: {0}")]
    Quantize(#[from] QuantizeModelError),
}

/// `model` quantized as `recipe` says, the unlisted tensors as `unlisted` says. `progress(done, total, tensor)` as
/// [`quantize_model_with_progress`]'s (`false` cancels).
pub fn quantize_in_memory(
    model: &Model,
    recipe: &Recipe,
    unlisted: Unlisted,
    progress: &mut dyn FnMut(usize, usize, &str) -> bool,
) -> Result<(Model, QuantReport), InMemoryError> {
    if let Some(m) = recipe.methods().find(|&m| m != Method::Rtn) {
        return Err(InMemoryError::Method(m));
    }
    let target = recipe.target()?;
    let target = if unlisted == Unlisted::Pure { target.pure() } else { target };
    let schemes = recipe.schemes()?;
    let names: Vec<String> = model.weights.matrices().into_iter().map(|(n, _)| n).collect();
    recipe.check_tensors(|name| names.iter().any(|n| n == name))?;
    let policy = TensorPolicy { all_tensors: false, mix: target.mix, per_tensor: Some(&schemes) };
    Ok(quantize_model_with_progress(model, &target.scheme, &policy, progress)?)
}
