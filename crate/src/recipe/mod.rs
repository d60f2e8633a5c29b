//! Recipe files (`recipe.json`): a mixed-precision plan naming, for each tensor that should not
//! get the run's format, its own format and the method that chooses its codes.
//! `quantlab quantize IN --recipe FILE -o OUT` writes it, `quantlab eval MODEL --recipe FILE`
//! evaluates it in memory, and `quantlab sensitivity … --recipe-out FILE` recommends one.
//!
//! # Schema (version 1)
//!
//! ```json
//! {
//!   "version": 1,
//!   "name": "q4_0 with 4 layers at q8_0",
//!   "default": { "format": "q4_0", "method": "rtn" },
//!   "tensors": [
//!     { "name": "token_embd.weight", "format": "q8_0", "method": "rtn" },
//!     { "name": "blk.3.ffn_down.weight", "format": "q8_0" }
//!   ]
//! }
//! ```
//!
//! - `version` (required): `1`. Any other value is refused before the rest is read, so a newer
//!   file fails with the version rather than with a field this version does not know.
//! - `name` (optional): what reports call the recipe (`quantlab eval` shows its row under it;
//!   without it, the file's name).
//! - `default` (required): the run's target for every tensor not listed: `format` as
//!   `quantlab quantize -f` takes it (a llama.cpp file type such as `q4_k_m` or `q4_0` keeps
//!   llama-quantize's per-tensor rules for the unlisted tensors, `--pure` turns them off; or a
//!   format such as `int4-sym-g64`), and `method`.
//! - `tensors` (optional): entries with the exact GGUF tensor name, a `format` (one type, as
//!   `quantlab formats` lists them; not a file type) and a `method`. A name may appear once.
//! - `method` (optional, default `rtn`): `rtn` (round to nearest, every format), `imatrix`
//!   (llama.cpp's importance-weighted search; the types with one: q4_0 q4_1 q5_0 q5_1 q2_k …
//!   q6_k; needs `--imatrix FILE`), `gptq` (INT per channel or group, q4_0 q4_1 q5_0 q5_1
//!   q8_0; calibrated as `quantlab quantize --method gptq`) or `hqq` (calibration-free; q4_1
//!   q5_1 and INT asymmetric min/max per channel or group). `awq` is refused: its scales are
//!   folded into norms a layer's matrices share, so it cannot be given to single tensors (run
//!   `quantlab quantize --method awq` on the whole model).
//!
//! Unknown fields are refused everywhere. Every error names the entry (`default`,
//! `tensors[3] ("blk.0.attn_q.weight")`) and the field.
//!
//! A listed tensor's format replaces the run's for that tensor in the shared tensor policy
//! ([`crate::policy::TensorPolicy::per_tensor`]): row fallbacks still apply and are reported,
//! and tensors the policy never quantizes (norms, 1-D tensors) cannot be listed.

pub mod choice;
pub mod memory;
pub mod recommend;

use crate::formats::{QuantScheme, SchemeError, ValueType};
use crate::methods::{awq, gptq, hqq};
use crate::policy::{Target, TensorSchemes};
use serde::{Deserialize, Serialize};

/// The schema version this module reads and writes.
pub const VERSION: u32 = 1;

/// How a tensor's codes are chosen: recipe files, the lab's Methods panel and the CLI's
/// `--method` name them (the CLI chooses the importance matrix with `--imatrix FILE`, not with
/// `--method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Round to nearest: the format's own quantizer.
    #[default]
    Rtn,
    /// llama.cpp's importance-matrix search.
    #[cfg_attr(not(target_arch = "wasm32"), value(skip))]
    Imatrix,
    /// GPTQ, calibrated layer by layer.
    Gptq,
    /// AWQ (activation-aware scales folded into the norms, then clipping), layer by layer.
    Awq,
    /// HQQ: each group's zero point optimised on the weights alone (no calibration).
    Hqq,
}

impl Method {
    /// Every method, in the order the lab lists them.
    pub const ALL: [Method; 5] = [Method::Rtn, Method::Imatrix, Method::Gptq, Method::Awq, Method::Hqq];

    pub fn name(self) -> &'static str {
        match self {
            Method::Rtn => "rtn",
            Method::Imatrix => "imatrix",
            Method::Gptq => "gptq",
            Method::Awq => "awq",
            Method::Hqq => "hqq",
        }
    }

    /// Whether this method can quantize to `scheme`.
    pub fn supports(self, scheme: &QuantScheme) -> bool {
        match self {
            Method::Rtn => true,
            Method::Imatrix => matches!(scheme.value, ValueType::Ggml { ty } if crate::formats::uses_importance(ty)),
            Method::Gptq => gptq::supports(scheme),
            Method::Awq => awq::supports(scheme),
            Method::Hqq => hqq::supports(scheme),
        }
    }

    /// The formats it can quantize to, as one line for users.
    pub fn formats_supported(self) -> &'static str {
        match self {
            Method::Rtn => "every format",
            Method::Imatrix => "q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k",
            Method::Gptq => gptq::SUPPORTED,
            Method::Awq => awq::SUPPORTED,
            Method::Hqq => hqq::SUPPORTED,
        }
    }

    /// Whether a recipe can give this method to one tensor while others get another. AWQ
    /// cannot: it folds its scales into the norm (or previous linear) that every matrix reading
    /// the same input shares, so it chooses the codes of a layer's groups together.
    pub fn per_tensor(self) -> bool {
        !matches!(self, Method::Awq)
    }
}

/// The run's target for the tensors a recipe does not list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct DefaultEntry {
    pub format: String,
    #[serde(default)]
    pub method: Method,
}

/// One tensor's own format and method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct TensorEntry {
    pub name: String,
    pub format: String,
    #[serde(default)]
    pub method: Method,
}

/// A recipe file (see the module docs). Build one with [`Recipe::parse`], which checks every
/// entry; a recipe built in code is checked by [`Recipe::check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub default: DefaultEntry,
    #[serde(default)]
    pub tensors: Vec<TensorEntry>,
}

/// Which part of a recipe an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryRef {
    Default,
    Tensor { index: usize, name: String },
}

impl std::fmt::Display for EntryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryRef::Default => write!(f, "default"),
            EntryRef::Tensor { index, name } => write!(f, "tensors[{index}] ({name:?})"),
        }
    }
}

/// Why a recipe was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecipeError {
    /// Not JSON, or not an object of the recipe's shape (serde's message, with line and column).
    #[error("not a recipe: {0}")]
    Syntax(String),
    #[error("field \"version\": {found} is not a recipe version this quantlab reads (it reads {VERSION})")]
    Version { found: String },
    /// An entry with an unknown or missing field, or a field of the wrong type.
    #[error("{entry}: {message}")]
    Entry { entry: EntryRef, message: String },
    #[error("{entry}: field \"format\": {source}")]
    Format { entry: EntryRef, source: SchemeError },
    #[error("{entry}: field \"method\": {} does not support {format} (it supports {})", method.name(), method.formats_supported())]
    Method { entry: EntryRef, method: Method, format: String },
    #[error(
        "{entry}: field \"method\": {} cannot be applied per tensor by a recipe (it folds scales into the norms \
         a layer's matrices share); quantize the whole model with --method {}",
        method.name(), method.name()
    )]
    NotPerTensor { entry: EntryRef, method: Method },
    #[error("{entry}: field \"name\": also listed as tensors[{first}]")]
    Duplicate { entry: EntryRef, first: usize },
    #[error("{entry}: field \"name\": the model has no tensor of that name that a run quantizes")]
    UnknownTensor { entry: EntryRef },
}

fn syntax(e: serde_json::Error) -> RecipeError {
    RecipeError::Syntax(e.to_string())
}

impl Recipe {
    /// Reads and checks a recipe: the version first, then the shape, every format and method,
    /// and duplicate names.
    pub fn parse(text: &str) -> Result<Recipe, RecipeError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(syntax)?;
        let Some(object) = value.as_object() else {
            return Err(RecipeError::Syntax("the recipe must be a JSON object".into()));
        };
        match object.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
            Some(v) => return Err(RecipeError::Version { found: v.to_string() }),
            None => return Err(RecipeError::Syntax("missing field `version`".into())),
        }
        // Entries one by one, so a bad field is reported with the entry it is in.
        if let Some(default) = object.get("default") {
            DefaultEntry::deserialize(default)
                .map_err(|e| RecipeError::Entry { entry: EntryRef::Default, message: e.to_string() })?;
        }
        if let Some(serde_json::Value::Array(entries)) = object.get("tensors") {
            for (index, entry) in entries.iter().enumerate() {
                TensorEntry::deserialize(entry).map_err(|e| {
                    let name = entry.get("name").and_then(|n| n.as_str()).unwrap_or("?").to_string();
                    RecipeError::Entry { entry: EntryRef::Tensor { index, name }, message: e.to_string() }
                })?;
            }
        }
        let recipe = Recipe::deserialize(&value).map_err(syntax)?;
        recipe.check()?;
        Ok(recipe)
    }

    /// The recipe as pretty JSON (what [`Recipe::parse`] reads back to an equal recipe).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a recipe serializes");
        s.push('\n');
        s
    }

    /// Checks the version, every format and method, and that no name is listed twice.
    pub fn check(&self) -> Result<(), RecipeError> {
        if self.version != VERSION {
            return Err(RecipeError::Version { found: self.version.to_string() });
        }
        let target = self.target()?;
        if !self.default.method.per_tensor() {
            return Err(RecipeError::NotPerTensor { entry: EntryRef::Default, method: self.default.method });
        }
        if !self.default.method.supports(&target.scheme) {
            return Err(RecipeError::Method {
                entry: EntryRef::Default,
                method: self.default.method,
                format: self.default.format.clone(),
            });
        }
        let mut seen = std::collections::HashMap::new();
        for (index, t) in self.tensors.iter().enumerate() {
            let entry = EntryRef::Tensor { index, name: t.name.clone() };
            if let Some(&first) = seen.get(t.name.as_str()) {
                return Err(RecipeError::Duplicate { entry, first });
            }
            seen.insert(t.name.as_str(), index);
            let scheme =
                QuantScheme::parse(&t.format).map_err(|source| RecipeError::Format { entry: entry.clone(), source })?;
            if !t.method.per_tensor() {
                return Err(RecipeError::NotPerTensor { entry, method: t.method });
            }
            if !t.method.supports(&scheme) {
                return Err(RecipeError::Method { entry, method: t.method, format: t.format.clone() });
            }
        }
        Ok(())
    }

    /// The run's target (the default entry's format).
    pub fn target(&self) -> Result<Target, RecipeError> {
        Target::parse(&self.default.format).map_err(|source| RecipeError::Format { entry: EntryRef::Default, source })
    }

    /// The listed tensors' schemes, for [`crate::policy::TensorPolicy::per_tensor`].
    pub fn schemes(&self) -> Result<TensorSchemes, RecipeError> {
        let mut pairs = Vec::with_capacity(self.tensors.len());
        for (index, t) in self.tensors.iter().enumerate() {
            let scheme = QuantScheme::parse(&t.format).map_err(|source| RecipeError::Format {
                entry: EntryRef::Tensor { index, name: t.name.clone() },
                source,
            })?;
            pairs.push((t.name.clone(), scheme));
        }
        Ok(TensorSchemes::new(pairs))
    }

    /// The method for tensor `name`: its entry's, else the default's.
    pub fn method_for(&self, name: &str) -> Method {
        self.tensors.iter().find(|t| t.name == name).map_or(self.default.method, |t| t.method)
    }

    /// Every method the recipe uses.
    pub fn methods(&self) -> impl Iterator<Item = Method> + '_ {
        std::iter::once(self.default.method).chain(self.tensors.iter().map(|t| t.method))
    }

    /// Checks every listed name against the tensors a run on the model quantizes
    /// (`quantizable(name)`).
    pub fn check_tensors(&self, quantizable: impl Fn(&str) -> bool) -> Result<(), RecipeError> {
        for (index, t) in self.tensors.iter().enumerate() {
            if !quantizable(&t.name) {
                return Err(RecipeError::UnknownTensor { entry: EntryRef::Tensor { index, name: t.name.clone() } });
            }
        }
        Ok(())
    }
}
