//! The sensitivity scan and the recipe builder for the web lab: the very code of
//! `quantlab sensitivity` ([`crate::model::sensitivity::run`], [`crate::recipe::recommend`])
//! and of `quantlab eval --recipe` ([`crate::recipe::memory`]).
//!
//! ```text
//! model.sensitivity(formats, text, {tokens?, ctx?, unit?: "tensor"|"layer", units?: string[]},
//!                   onProgress?(done, total) -> bool|void) -> LabSensitivity
//! scan.report() -> {format, unit, ctx, windows, tokens_scored, uniform_bytes, elements, uniform,
//!                   units: [{unit, tensors, bytes, bytes_high, kl, kl_stderr, delta_ln_ppl,
//!                            delta_ln_ppl_stderr, top1}],     // ranked, as `--json` writes them
//!                   other_scans: [{format, uniform_bytes, uniform, units}]}
//! scan.recommend({highFormat?, budgetBytes? | bitsPerWeight? | targetFormat?})
//!   -> {budget_bytes, bytes, bits_per_weight, formats, choices, predicted_kl, recipe, recipe_json}
//! model.quantizeRecipe(recipeJson, mix: "llama.cpp"|"pure", onProgress?(done, total, tensor))
//!   -> LabModel
//! ```
//! `formats` is `-f`'s comma-separated list (`"q4_0,q5_0,q8_0"`: each scanned in turn, the
//! recipe choosing among them per unit); `tokens` (default 1024), `ctx` (default 512) and `unit` (default "layer") are
//! `quantlab sensitivity`'s `-f`, `--calib-tokens`, `--ctx` and `--unit`; `units` scans only the
//! units of those names (a quick look; the CLI scans them all). The scan's progress counts
//! model-positions (every unit and the uniform model over every scored position); `false`
//! cancels with an Error of kind `cancelled`. `highFormat` defaults to q8_0, as `--high`;
//! `recipe_json` is the file `--recipe-out` writes. Field names are the CLI's (snake case), so
//! a scan's JSON compares with `quantlab sensitivity --json` as it is.

use std::rc::Rc;

use serde::{Deserialize, Serialize};
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use super::model::{js_count, options, JsCallback, LabModel, Loaded};
use super::{js_err, to_js, Js, LabJsError};
use crate::error::Input;
use crate::formats::QuantScheme;
use crate::model::eval::DEFAULT_CTX;
use crate::model::sensitivity::{self, quantize_all, FormatScan, Scan, UnitKind};
use crate::model::weights::default_threads;
use crate::model::QuantReport;
use crate::recipe::memory::{quantize_in_memory, Unlisted};
use crate::recipe::recommend::{options as format_options, recommend, Budget, RecommendError, Recommendation};
use crate::recipe::Recipe;

/// `quantlab sensitivity`'s default `--calib-tokens`.
const DEFAULT_TOKENS: usize = 1024;
/// `quantlab sensitivity`'s default `--high`.
const DEFAULT_HIGH: &str = "q8_0";

/// Options of `sensitivity` (every field optional; an unknown key is an error).
#[derive(Deserialize, Default, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct ScanOpts {
    /// Calibration tokens scored per unit (whole windows of `ctx`; default 1024).
    #[tsify(optional)]
    tokens: Option<f64>,
    /// Window length (default 512, capped by the tokens and the model's context).
    #[tsify(optional)]
    ctx: Option<f64>,
    /// What one step quantizes (default "layer").
    #[tsify(optional, type = "\"tensor\" | \"layer\"")]
    unit: Option<String>,
    /// Scan only these units (names as the report gives them: `blk.3`, `blk.3.attn_v.weight`).
    #[tsify(optional)]
    units: Option<Vec<String>>,
}

/// Options of `recommend`: the high format and one budget.
#[derive(Deserialize, Default, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct RecommendOpts {
    #[tsify(optional)]
    high_format: Option<String>,
    #[tsify(optional)]
    budget_bytes: Option<f64>,
    #[tsify(optional)]
    bits_per_weight: Option<f64>,
    /// The size of the model in this format everywhere (`--target-format`).
    #[tsify(optional)]
    target_format: Option<String>,
}

/// A finished scan, kept with its model so a recipe can be recommended for any budget.
#[wasm_bindgen]
pub struct LabSensitivity {
    model: Rc<Loaded>,
    /// Each format as the caller named it, with its scan (at least one).
    scans: Vec<(String, Scan)>,
    /// The plan's window length, windows and scored tokens.
    ctx: usize,
    windows: usize,
    tokens_scored: usize,
    /// The high format of the last recommendation and the model's sizes in it.
    high: Option<(String, QuantReport)>,
}

/// The scan's report: `quantlab sensitivity --json`'s fields about the scan.
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ScanReport {
    /// The first format's scan.
    #[serde(flatten)]
    scan: FormatScan,
    unit: &'static str,
    ctx: usize,
    windows: usize,
    tokens_scored: usize,
    elements: u64,
    /// The other formats' scans, in the order given.
    other_scans: Vec<FormatScan>,
}

/// A recommendation and its recipe file.
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct RecipeAdvice {
    #[serde(flatten)]
    recommendation: Recommendation,
    /// The recipe as `--recipe-out` writes it.
    recipe_json: String,
}

fn scheme(name: &str) -> Result<QuantScheme, LabJsError> {
    QuantScheme::parse(name).map_err(js_err)
}

#[wasm_bindgen]
impl LabModel {
    /// The sensitivity scan of this model to `formats` over `text` (see the module docs).
    pub fn sensitivity(
        &self,
        formats: &str,
        text: &str,
        #[wasm_bindgen(unchecked_param_type = "ScanOpts | undefined | null")] opts: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<LabSensitivity, JsValue> {
        let o: ScanOpts = options(opts, "sensitivity", &["tokens", "ctx", "unit", "units"])?;
        let names: Vec<String> = formats.split(',').map(|f| f.trim().to_string()).collect();
        let schemes = names.iter().map(|f| scheme(f)).collect::<Result<Vec<_>, _>>()?;
        let tokens = js_count(o.tokens.unwrap_or(DEFAULT_TOKENS as f64), "tokens")? as usize;
        let ctx = js_count(o.ctx.unwrap_or(DEFAULT_CTX as f64), "ctx")? as usize;
        let kind = match o.unit.as_deref() {
            None | Some("layer") => UnitKind::Layer,
            Some("tensor") => UnitKind::Tensor,
            Some(other) => {
                let message = format!("unknown unit '{other}': use \"tensor\" or \"layer\"");
                return Err(LabJsError::bad(Input::Options, message).into());
            }
        };
        let model = &self.inner.model;
        let plan = sensitivity::scan_plan(&self.inner.tokenizer, text, tokens, ctx, model.config.seq_len)
            .map_err(|e| js_err(e).context("sensitivity"))?;
        let mut callback = JsCallback::new(on_progress);
        let mut progress = |done: usize, total: usize| callback.call(&[done.into(), total.into()]);
        let threads = default_threads();
        let result = sensitivity::run_formats(model, &schemes, kind, o.units.as_deref(), &plan, threads, &mut progress);
        callback.finish()?;
        let scans = result.map_err(|e| js_err(e).context(format!("sensitivity to {formats}")))?;
        Ok(LabSensitivity {
            model: Rc::clone(&self.inner),
            scans: names.into_iter().zip(scans).collect(),
            ctx: plan.ctx,
            windows: plan.windows.len(),
            tokens_scored: plan.tokens_scored(),
            high: None,
        })
    }

    /// This model quantized as `recipeJson` says, as `quantlab eval --recipe` quantizes it
    /// (round-to-nearest entries; `mix` "pure" is `--pure`). `onProgress(done, total, tensor)`.
    #[wasm_bindgen(js_name = quantizeRecipe)]
    pub fn quantize_recipe(
        &self,
        recipe_json: &str,
        mix: &str,
        on_progress: Option<js_sys::Function>,
    ) -> Result<LabModel, JsValue> {
        let recipe = Recipe::parse(recipe_json).map_err(|e| js_err(e).context("recipe"))?;
        let unlisted = match mix {
            "llama.cpp" => Unlisted::FileTypeRules,
            "pure" => Unlisted::Pure,
            other => {
                let message = format!("unknown type mix '{other}': use \"llama.cpp\" or \"pure\"");
                return Err(LabJsError::bad(Input::Options, message).into());
            }
        };
        let mut callback = JsCallback::new(on_progress);
        let mut progress =
            |done: usize, total: usize, name: &str| callback.call(&[done.into(), total.into(), name.into()]);
        let result = quantize_in_memory(&self.inner.model, &recipe, unlisted, &mut progress);
        callback.finish()?;
        let (model, report) = result.map_err(|e| js_err(e).context("recipe"))?;
        Ok(self.derived(model, report))
    }
}

#[wasm_bindgen]
impl LabSensitivity {
    /// The scan's rows, ranked, and its totals (see the module docs).
    pub fn report(&self) -> Result<Js<ScanReport>, LabJsError> {
        let ((first, scan), others) = self.scans.split_first().ok_or_else(|| js_err(RecommendError::NoScan))?;
        let other_scans =
            others.iter().map(|(f, s)| Ok(s.report(scheme(f)?.name()))).collect::<Result<_, LabJsError>>()?;
        to_js(&ScanReport {
            scan: scan.report(scheme(first)?.name()),
            unit: scan.kind.name(),
            ctx: self.ctx,
            windows: self.windows,
            tokens_scored: self.tokens_scored,
            elements: scan.low.n_elements(),
            other_scans,
        })
    }

    /// The recipe `quantlab sensitivity --high H --target-…` recommends for this scan.
    pub fn recommend(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "RecommendOpts")] opts: JsValue,
    ) -> Result<Js<RecipeAdvice>, LabJsError> {
        let known = ["highFormat", "budgetBytes", "bitsPerWeight", "targetFormat"];
        let o: RecommendOpts = options(opts, "recommendation", &known)?;
        let high = o.high_format.unwrap_or_else(|| DEFAULT_HIGH.to_string());
        let model = &self.model.model;
        let budget = match (o.budget_bytes, o.bits_per_weight, &o.target_format) {
            (Some(b), None, None) => Budget::Bytes(js_count(b, "budgetBytes")?),
            (None, Some(x), None) => Budget::BitsPerWeight(x),
            (None, None, Some(f)) => Budget::Bytes(quantize_all(model, &scheme(f)?).map_err(js_err)?.1.total_bytes()),
            _ => {
                let message = "give exactly one of budgetBytes, bitsPerWeight and targetFormat";
                return Err(LabJsError::bad(Input::Options, message));
            }
        };
        // The model at the high format once per high format (a whole quantization).
        let high_sizes = match self.high.take() {
            Some((name, sizes)) if name == high => sizes,
            _ => quantize_all(model, &scheme(&high)?).map_err(js_err)?.1,
        };
        for (_, scan) in &mut self.scans {
            scan.set_high(&high_sizes);
        }
        let named: Vec<(&str, &Scan)> = self.scans.iter().map(|(f, s)| (f.as_str(), s)).collect();
        let recommendation = recommend(&format_options(&named, &high, &high_sizes), budget).map_err(js_err);
        self.high = Some((high, high_sizes));
        let recommendation = recommendation?;
        let recipe_json = recommendation.recipe.to_json();
        to_js(&RecipeAdvice { recommendation, recipe_json })
    }
}
