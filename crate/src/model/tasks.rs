//! Task-level checks for an instruct model (`quantlab eval --tasks`): short prompts whose
//! answers either follow a stated rule or do not, run greedily on the base and on each
//! quantized copy. Perplexity can stay close while a format breaks instruction following (a
//! JSON object loses a key, the model no longer stops); these checks see that directly.
//!
//! # Suite file (`tasks/instruct-checks.json`, users can extend it)
//!
//! ```json
//! {
//!   "max_new_tokens": 48,
//!   "tasks": [
//!     {"id": "json-city", "prompt": "…", "rule": {"kind": "json_keys", "keys": ["city", "country"]}},
//!     {"id": "word-capital", "prompt": "…", "rule": {"kind": "one_word", "answer": "Paris"}},
//!     {"id": "number-sum", "prompt": "…", "rule": {"kind": "number", "answer": 7}},
//!     {"id": "stop-short", "prompt": "…", "rule": {"kind": "stop", "max_words": 5}},
//!     {"id": "repeat-code", "prompt": "…", "rule": {"kind": "repeat", "text": "XK-42-blue"}}
//!   ]
//! }
//! ```
//!
//! `max_new_tokens` (optional, default [`DEFAULT_MAX_NEW_TOKENS`]) bounds every answer; a task
//! may set its own. Each prompt is ONE user message in the model's chat template with the
//! assistant turn opened; generation is greedy and ends at an end-of-generation token or the
//! budget. The rules ([`Rule::check`]) see the answer with surrounding whitespace trimmed:
//!
//! - `json_keys {keys}`: a JSON object (a ```` ``` ```` / ```` ```json ```` fence around it is
//!   allowed) holding every key;
//! - `one_word {answer?}`: one word (surrounding quotes and a final `.`/`!` allowed), equal to
//!   `answer` ignoring case when given;
//! - `number {answer?}`: a number (same allowances), equal to `answer` when given;
//! - `stop {max_words}`: the model ended its turn itself (not cut by the budget) within
//!   `max_words` words;
//! - `repeat {text}`: exactly `text`.
//!
//! Agreement: a quantized model's answer equals the base's character for character (trimmed).

use super::generate::{generate, StopReason};
use super::{Model, ModelError, Sampler, SamplerConfig, State};
use crate::tokenizer::{ChatMessage, Tokenizer, TokenizerError};
use serde::{Deserialize, Serialize};

/// Answer budget when the suite does not set one.
pub const DEFAULT_MAX_NEW_TOKENS: usize = 48;

/// The committed suite (`tasks/instruct-checks.json`), compiled in so the web lab runs the very
/// file the CLI reads by default, with no second copy to keep in step.
pub const DEFAULT_SUITE: &str = include_str!("../../../tasks/instruct-checks.json");

/// A suite of tasks (the data file).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSuite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
    #[serde(default = "default_budget")]
    pub max_new_tokens: usize,
    pub tasks: Vec<Task>,
}

fn default_budget() -> usize {
    DEFAULT_MAX_NEW_TOKENS
}

/// One prompt and the rule its answer must follow.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub id: String,
    pub prompt: String,
    pub rule: Rule,
    /// Overrides the suite's `max_new_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<usize>,
}

/// What makes an answer valid (see the module docs).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    JsonKeys {
        keys: Vec<String>,
    },
    OneWord {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<String>,
    },
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<f64>,
    },
    Stop {
        max_words: usize,
    },
    Repeat {
        text: String,
    },
}

/// Why a suite file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    #[error("the task suite is not valid: {0}")]
    Json(String),
    #[error("the task suite has no tasks")]
    Empty,
    #[error("task ids must be unique: '{0}' appears twice")]
    DuplicateId(String),
    #[error("task '{0}': max_new_tokens must be at least 1")]
    ZeroBudget(String),
    #[error("cancelled after {done} of {total} tasks")]
    Cancelled { done: usize, total: usize },
    #[error("the chat template: {0}")]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Parses and checks a suite file's text.
pub fn parse_suite(json: &str) -> Result<TaskSuite, TaskError> {
    let suite: TaskSuite = serde_json::from_str(json).map_err(|e| TaskError::Json(e.to_string()))?;
    if suite.tasks.is_empty() {
        return Err(TaskError::Empty);
    }
    for (i, t) in suite.tasks.iter().enumerate() {
        if suite.tasks[..i].iter().any(|u| u.id == t.id) {
            return Err(TaskError::DuplicateId(t.id.clone()));
        }
        if suite.budget(t) == 0 {
            return Err(TaskError::ZeroBudget(t.id.clone()));
        }
    }
    Ok(suite)
}

impl TaskSuite {
    /// The answer budget of `task`.
    pub fn budget(&self, task: &Task) -> usize {
        task.max_new_tokens.unwrap_or(self.max_new_tokens)
    }
}

/// How an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify))]
pub enum Ending {
    /// The model emitted an end-of-generation token.
    EndOfTurn,
    /// The token budget ran out first.
    Budget,
}

/// A generated answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
pub struct Answer {
    pub text: String,
    pub tokens: usize,
    pub ending: Ending,
}

/// The rule's judgement of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid(String),
}

/// Trims whitespace, one pair of surrounding quotes or backticks, then a final `.` or `!`.
fn bare(text: &str) -> &str {
    let mut t = text.trim();
    for q in ['"', '\'', '`'] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            t = t[1..t.len() - 1].trim();
            break;
        }
    }
    t.strip_suffix(['.', '!']).unwrap_or(t).trim()
}

/// The text inside a Markdown code fence (```` ```json ```` or ```` ``` ````), else the text.
fn unfenced(text: &str) -> &str {
    let t = text.trim();
    let Some(inner) = t.strip_prefix("```").and_then(|r| r.strip_suffix("```")) else { return t };
    let inner = inner.strip_prefix("json").unwrap_or(inner);
    inner.trim()
}

impl Rule {
    /// Judges `answer` by this rule.
    pub fn check(&self, answer: &Answer) -> Verdict {
        let invalid = Verdict::Invalid;
        let text = answer.text.trim();
        match self {
            Rule::JsonKeys { keys } => match serde_json::from_str::<serde_json::Value>(unfenced(text)) {
                Ok(serde_json::Value::Object(map)) => match keys.iter().find(|k| !map.contains_key(*k)) {
                    None => Verdict::Valid,
                    Some(k) => invalid(format!("the object has no key \"{k}\"")),
                },
                Ok(_) => invalid("JSON, but not an object".into()),
                Err(e) => invalid(format!("not JSON: {e}")),
            },
            Rule::OneWord { answer: want } => {
                let w = bare(text);
                if w.is_empty() || w.split_whitespace().count() != 1 {
                    return invalid(format!("{} words, not one", w.split_whitespace().count()));
                }
                match want {
                    Some(a) if !w.eq_ignore_ascii_case(a) => invalid(format!("\"{w}\", not \"{a}\"")),
                    _ => Verdict::Valid,
                }
            }
            Rule::Number { answer: want } => {
                let w = bare(text);
                match w.parse::<f64>() {
                    Err(_) => invalid(format!("\"{w}\" is not a number")),
                    Ok(x) => match want {
                        Some(a) if x != *a => invalid(format!("{x}, not {a}")),
                        _ => Verdict::Valid,
                    },
                }
            }
            Rule::Stop { max_words } => {
                let n = text.split_whitespace().count();
                if answer.ending == Ending::Budget {
                    invalid(format!("did not stop within {} tokens", answer.tokens))
                } else if n > *max_words {
                    invalid(format!("{n} words, more than {max_words}"))
                } else {
                    Verdict::Valid
                }
            }
            Rule::Repeat { text: want } => {
                if text == want {
                    Verdict::Valid
                } else {
                    invalid("not the exact string".into())
                }
            }
        }
    }
}

/// Greedy answer of `model` to `task` (one user message in the chat template), on `threads`.
pub fn answer(
    model: &Model,
    tokenizer: &Tokenizer,
    prompt: &str,
    max_new: usize,
    threads: usize,
) -> Result<Answer, TaskError> {
    let text = tokenizer.apply_chat_template(&[ChatMessage::new("user", prompt)], true)?;
    // The template's special tokens (`<|im_start|>`) are parsed, as for `generate --chat`.
    let tokens = tokenizer.encode(&text, tokenizer.add_bos_default(), true);
    let mut state = State::new(&model.config, tokens.len() + max_new);
    state.threads = threads.max(1);
    let mut sampler = Sampler::new(SamplerConfig { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 });
    let (out, stats) =
        generate(model, &mut state, &tokens, max_new, &mut sampler, |id| tokenizer.is_eog(id), || 0.0, |_| true)?;
    let ending = match stats.stop {
        StopReason::Eog(_) => Ending::EndOfTurn,
        StopReason::MaxTokens | StopReason::Callback => Ending::Budget,
    };
    Ok(Answer { text: tokenizer.decode_skip_special(&out), tokens: out.len(), ending })
}

/// One model's result on one task.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
#[cfg_attr(target_arch = "wasm32", serde(rename_all = "camelCase"))]
pub struct TaskResult {
    pub id: String,
    #[serde(flatten)]
    pub answer: Answer,
    pub valid: bool,
    /// Why the answer breaks the rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Whether the answer equals the base's (trimmed); `None` for the base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agrees_with_base: Option<bool>,
}

/// One model's results over the suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify_next::Tsify), tsify(missing_as_null, hashmap_as_object))]
pub struct SuiteResult {
    pub tasks: Vec<TaskResult>,
    /// Share of valid answers.
    pub valid: f64,
    /// Share of answers equal to the base's; `None` for the base.
    pub agreement: Option<f64>,
}

/// Scores `answers` (in task order) against the rules and, when given, the base's answers.
pub fn score(suite: &TaskSuite, answers: Vec<Answer>, base: Option<&[Answer]>) -> SuiteResult {
    let tasks: Vec<TaskResult> = suite
        .tasks
        .iter()
        .zip(answers)
        .enumerate()
        .map(|(i, (task, a))| {
            let why = match task.rule.check(&a) {
                Verdict::Valid => None,
                Verdict::Invalid(w) => Some(w),
            };
            TaskResult {
                id: task.id.clone(),
                agrees_with_base: base.map(|b| b[i].text.trim() == a.text.trim()),
                answer: a,
                valid: why.is_none(),
                why,
            }
        })
        .collect();
    let n = tasks.len().max(1) as f64;
    let valid = tasks.iter().filter(|t| t.valid).count() as f64 / n;
    let agreement = base.map(|_| tasks.iter().filter(|t| t.agrees_with_base == Some(true)).count() as f64 / n);
    SuiteResult { tasks, valid, agreement }
}

/// Answers every task of `suite` with `model` ([`answer`]), calling `progress(done, total)`
/// after each; its `false` stops with [`TaskError::Cancelled`] (a UI's cancel button: one task
/// is at most its answer budget of decode steps).
pub fn run_suite(
    model: &Model,
    tokenizer: &Tokenizer,
    suite: &TaskSuite,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize) -> bool,
) -> Result<Vec<Answer>, TaskError> {
    let total = suite.tasks.len();
    let mut out = Vec::with_capacity(total);
    for (i, t) in suite.tasks.iter().enumerate() {
        out.push(answer(model, tokenizer, &t.prompt, suite.budget(t), threads)?);
        if !progress(i + 1, total) && i + 1 < total {
            return Err(TaskError::Cancelled { done: i + 1, total });
        }
    }
    Ok(out)
}
