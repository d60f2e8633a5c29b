//! `--recipe FILE` on `quantlab quantize` and `quantlab eval`: reading a recipe
//! ([`crate::recipe`]), checking it against the model and the output, and quantizing each
//! tensor with its entry's method.

use super::gptq::GptqMethod;
use super::hqq::HqqMethod;
use super::CliError;
use crate::formats::{QuantScheme, QuantizedTensor, TensorShape};
use crate::io::export::{self, ExportError, ExportKind, ImportanceWeighted, RoundToNearest, TensorMethod};
use crate::model::{Model, QuantReport};
use crate::policy::{Target, TensorPolicy, TensorSchemes, TypeMix};
use crate::recipe::memory::{self, Unlisted};
use crate::recipe::{Method, Recipe};
use std::path::{Path, PathBuf};

/// A recipe read from a file, with its target and per-tensor schemes.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    pub recipe: Recipe,
    pub path: PathBuf,
    pub target: Target,
    pub schemes: TensorSchemes,
}

fn err(path: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::Message(format!("recipe '{}': {e}", path.display()))
}

/// Reads and checks the recipe at `path`; `pure` drops the default file type's per-tensor rules
/// (as `--pure` does for `-f`).
pub fn load(path: &Path, pure: bool) -> Result<LoadedRecipe, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(path, e))?;
    let recipe = Recipe::parse(&text).map_err(|e| err(path, e))?;
    let target = recipe.target().map_err(|e| err(path, e))?;
    let target = if pure { target.pure() } else { target };
    let schemes = recipe.schemes().map_err(|e| err(path, e))?;
    Ok(LoadedRecipe { recipe, path: path.to_path_buf(), target, schemes })
}

impl LoadedRecipe {
    /// What reports call it: the recipe's `name`, else `recipe <file name>`.
    pub fn name(&self) -> String {
        self.recipe.name.clone().unwrap_or_else(|| {
            format!(
                "recipe {}",
                self.path.file_name().map_or(self.path.display().to_string(), |n| n.to_string_lossy().into())
            )
        })
    }

    /// The tensor policy of a run of this recipe.
    pub fn policy(&self, all_tensors: bool) -> TensorPolicy<'_> {
        TensorPolicy { all_tensors, mix: self.target.mix, per_tensor: Some(&self.schemes) }
    }

    /// Every listed name must be a tensor the run quantizes (`quantizable`).
    pub fn check_tensors(&self, quantizable: impl Fn(&str) -> bool) -> Result<(), CliError> {
        self.recipe.check_tensors(quantizable).map_err(|e| err(&self.path, e))
    }

    /// Every format of the recipe must fit the output container.
    pub fn check_container(&self, kind: ExportKind) -> Result<(), CliError> {
        export::check_container(&self.target.scheme, kind).map_err(|e| err(&self.path, format!("default: {e}")))?;
        for (index, t) in self.recipe.tensors.iter().enumerate() {
            let scheme = self.schemes.get(&t.name).expect("every listed tensor has its scheme");
            export::check_container(scheme, kind)
                .map_err(|e| err(&self.path, format!("tensors[{index}] ({:?}): {e}", t.name)))?;
        }
        Ok(())
    }

    pub fn uses(&self, method: Method) -> bool {
        self.recipe.methods().any(|m| m == method)
    }

    /// A note on the llama.cpp rules the unlisted tensors follow, for reports.
    pub fn describe(&self) -> String {
        let rules = match self.target.mix {
            TypeMix::LlamaCpp(ft) => format!("{}'s per-tensor rules", ft.name()),
            TypeMix::Pure => self.target.scheme.name(),
        };
        format!(
            "recipe '{}': {} listed tensor(s) with their own format; the others {} ({})",
            self.path.display(),
            self.recipe.tensors.len(),
            rules,
            self.recipe.default.method.name()
        )
    }
}

/// `model` quantized in memory as the recipe at `path` says (`quantlab eval --recipe`), with
/// the recipe's name ([`crate::recipe::memory`]: round-to-nearest entries only).
pub fn quantize_in_memory(model: &Model, path: &Path, pure: bool) -> Result<(String, Model, QuantReport), CliError> {
    let r = load(path, pure)?;
    let unlisted = if pure { Unlisted::Pure } else { Unlisted::FileTypeRules };
    let (q, report) =
        memory::quantize_in_memory(model, &r.recipe, unlisted, &mut |_, _, _| true).map_err(|e| err(path, e))?;
    Ok((r.name(), q, report))
}

/// Each tensor quantized by its recipe entry's method (the default's for unlisted tensors).
pub struct RecipeMethods<'a> {
    pub recipe: &'a Recipe,
    /// Present when the recipe uses `imatrix`.
    pub imatrix: Option<ImportanceWeighted<'a>>,
    /// Present when the recipe uses `gptq`.
    pub gptq: Option<GptqMethod>,
    /// For the recipe's `hqq` entries (no calibration, so always ready).
    pub hqq: HqqMethod,
}

impl TensorMethod for RecipeMethods<'_> {
    fn quantize(
        &mut self,
        name: &str,
        scheme: &QuantScheme,
        values: &[f32],
        shape: TensorShape,
    ) -> Result<QuantizedTensor, ExportError> {
        let method: &mut dyn TensorMethod = match self.recipe.method_for(name) {
            Method::Rtn => &mut RoundToNearest,
            Method::Imatrix => self.imatrix.as_mut().expect("an imatrix is read when the recipe uses it"),
            Method::Gptq => self.gptq.as_mut().expect("GPTQ is calibrated when the recipe uses it"),
            Method::Hqq => &mut self.hqq,
            // Recipe::check refuses it; a recipe built in code past the check gets this error.
            m @ Method::Awq => {
                return Err(ExportError::Tensor(format!(
                    "tensor '{name}': a recipe cannot apply {} to one tensor (use --method {} on the whole model)",
                    m.name(),
                    m.name()
                )))
            }
        };
        method.quantize(name, scheme, values, shape)
    }
}
