//! The instruct task suite in the page: `LabModel.runTasks`, the code path of `quantlab eval
//! --tasks` ([`crate::model::tasks`]: the same greedy answers, rules and scores), and the
//! committed suite compiled in ([`DEFAULT_SUITE`]), so the lab and the CLI read one file.
//!
//! ```text
//! defaultTaskSuite() -> string                        // tasks/instruct-checks.json as committed
//! checkTaskSuite(json) -> {ids, maxNewTokens}         // a user's suite, checked before a long run
//! model.runTasks(suiteJson?, baseAnswers?, onProgress?(done, total, taskId) -> bool|void)
//!   -> {tasks: [{id, text, tokens, ending: "end_of_turn"|"budget", valid, why?, agreesWithBase?}],
//!       valid, agreement?}
//! ```
//! `suiteJson` absent (or null) runs the default suite. `baseAnswers` is the base model's
//! `tasks` from an earlier `runTasks` on the same suite (extra fields ignored): with it, each
//! answer is compared with the base's and `agreement` is set, as the CLI's rows after the base.
//! `onProgress` is called after each task; returning `false` throws an Error of kind
//! `cancelled`. A bad suite throws kind `badInput` (what: `file`) naming what is wrong.

use serde::{Deserialize, Serialize};
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use super::model::{JsCallback, LabModel};
use super::{js_err, to_js, Js, LabJsError};
use crate::error::Input;
use crate::model::tasks::{parse_suite, run_suite, score, Answer, Ending, SuiteResult, DEFAULT_SUITE};
use crate::model::weights::default_threads;

/// `checkTaskSuite`'s result: what a suite holds.
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct TaskSuiteInfo {
    ids: Vec<String>,
    max_new_tokens: usize,
}

/// One entry of `baseAnswers`: a base `TaskResult`'s id and answer (its other fields ignored).
#[derive(Deserialize)]
struct BaseAnswer {
    id: String,
    text: String,
    tokens: usize,
    ending: Ending,
}

/// The committed suite file's text (`tasks/instruct-checks.json`), e.g. to show or extend it.
#[wasm_bindgen(js_name = defaultTaskSuite)]
pub fn default_task_suite() -> String {
    DEFAULT_SUITE.to_string()
}

/// Checks a suite file's text as `runTasks` would; its task ids and answer budget.
#[wasm_bindgen(js_name = checkTaskSuite)]
pub fn check_task_suite(json: &str) -> Result<Js<TaskSuiteInfo>, LabJsError> {
    let suite = parse_suite(json).map_err(js_err)?;
    to_js(&TaskSuiteInfo {
        ids: suite.tasks.iter().map(|t| t.id.clone()).collect(),
        max_new_tokens: suite.max_new_tokens,
    })
}

/// `baseAnswers` as the core's answers, in the suite's task order (ids checked against it).
fn base_answers(value: JsValue, ids: &[&str]) -> Result<Option<Vec<Answer>>, LabJsError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let bad = |m: String| LabJsError::bad(Input::Options, format!("baseAnswers: {m}"));
    let given: Vec<BaseAnswer> = serde_wasm_bindgen::from_value(value)
        .map_err(|e| bad(format!("{e} (expected the base's `tasks` from runTasks)")))?;
    if given.len() != ids.len() {
        return Err(bad(format!("{} answers for a suite of {} tasks", given.len(), ids.len())));
    }
    given
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(i, (b, id))| {
            if b.id != *id {
                return Err(bad(format!("answer {i} is for task '{}', the suite's task {i} is '{id}'", b.id)));
            }
            Ok(Answer { text: b.text, tokens: b.tokens, ending: b.ending })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[wasm_bindgen]
impl LabModel {
    /// Answers the task suite greedily and scores it (see the module docs).
    #[wasm_bindgen(js_name = runTasks)]
    pub fn run_tasks(
        &self,
        suite_json: Option<String>,
        #[wasm_bindgen(unchecked_param_type = "TaskResult[] | undefined | null")] base_answers_js: JsValue,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Js<SuiteResult>, JsValue> {
        let suite = parse_suite(suite_json.as_deref().unwrap_or(DEFAULT_SUITE)).map_err(js_err)?;
        let ids: Vec<&str> = suite.tasks.iter().map(|t| t.id.as_str()).collect();
        let base = base_answers(base_answers_js, &ids)?;
        let mut callback = JsCallback::new(on_progress);
        let mut progress =
            |done: usize, total: usize| callback.call(&[done.into(), total.into(), ids[done - 1].into()]);
        let (model, tok) = (&self.inner.model, &*self.inner.tokenizer);
        let answers = run_suite(model, tok, &suite, default_threads(), &mut progress);
        callback.finish()?;
        let answers = answers.map_err(|e| js_err(e).context("task suite"))?;
        Ok(to_js(&score(&suite, answers, base.as_deref()))?)
    }
}
