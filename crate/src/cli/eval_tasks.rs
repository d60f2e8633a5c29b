//! `quantlab eval MODEL --tasks [FILE] [-f F ...] [--threads N] [--json]`: the task suite of
//! [`crate::model::tasks`] (default `tasks/instruct-checks.json`, looked up in the current
//! directory, then next to the crate) answered greedily by the base and by each in-memory
//! quantized copy, on the CPU; a table of valid % and agreement % with the base's answers,
//! then each task's outcome.

use super::display::Table;
use super::eval::EvalArgs;
use super::load::load_model;
use super::CliError;
use crate::model::tasks::{parse_suite, run_suite, score, Answer, SuiteResult, TaskResult, TaskSuite};
use crate::model::{quantize_model, TensorPolicy};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The suite file's path relative to the repository root.
pub const DEFAULT_TASKS: &str = "tasks/instruct-checks.json";

/// One model's row.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRow {
    pub format: String,
    #[serde(flatten)]
    pub result: SuiteResult,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub model: String,
    pub source_format: String,
    pub suite: String,
    pub max_new_tokens: usize,
    pub threads: usize,
    pub rows: Vec<TaskRow>,
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

/// `FILE`, else the default suite here or next to the crate.
fn suite_path(file: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(f) = file {
        return Ok(f.to_path_buf());
    }
    let here = PathBuf::from(DEFAULT_TASKS);
    if here.is_file() {
        return Ok(here);
    }
    let crate_rel = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(DEFAULT_TASKS);
    if crate_rel.is_file() {
        return Ok(crate_rel);
    }
    Err(msg(format!("the task suite {DEFAULT_TASKS} is missing (pass --tasks FILE)")))
}

/// Runs the suite on the base and every `--format`.
pub fn report(args: &EvalArgs, file: Option<&Path>) -> Result<TaskReport, CliError> {
    let targets = super::eval::targets(args)?;
    let path = suite_path(file)?;
    let raw = std::fs::read_to_string(&path).map_err(|e| msg(format!("cannot read '{}': {e}", path.display())))?;
    let suite: TaskSuite = parse_suite(&raw).map_err(|e| msg(format!("'{}': {e}", path.display())))?;
    let (model, tok, _source) = load_model(&args.model)?;
    let threads = args.threads.unwrap_or_else(crate::model::weights::default_threads).max(1);
    let show = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = |name: &str, done: usize, total: usize| {
        if show {
            eprint!("\rquantlab eval --tasks: {name}: task {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
        true
    };

    let (main_type, _census) = model.weights.source_format();
    let base_name = format!("base ({main_type} checkpoint)");
    let fail = |e| msg(format!("task suite: {e}"));
    let base: Vec<Answer> =
        run_suite(&model, &tok, &suite, threads, &mut |d, t| progress(&base_name, d, t)).map_err(fail)?;
    let mut rows = Vec::new();
    for t in &targets {
        let policy = TensorPolicy { mix: t.mix, ..TensorPolicy::default() };
        let (q, _rep) = quantize_model(&model, &t.scheme, &policy)
            .map_err(|e| msg(format!("cannot quantize to {}: {e}", t.name())))?;
        let name = t.name();
        let answers = run_suite(&q, &tok, &suite, threads, &mut |d, t| progress(&name, d, t)).map_err(fail)?;
        rows.push(TaskRow { format: name, result: score(&suite, answers, Some(&base)) });
    }
    for path in &args.recipe {
        let (name, q, _rep) = super::recipe_run::quantize_in_memory(&model, path, args.pure)?;
        let answers = run_suite(&q, &tok, &suite, threads, &mut |d, t| progress(&name, d, t)).map_err(fail)?;
        rows.push(TaskRow { format: name, result: score(&suite, answers, Some(&base)) });
    }
    rows.insert(0, TaskRow { format: base_name, result: score(&suite, base, None) });
    Ok(TaskReport {
        model: args.model.display().to_string(),
        source_format: main_type,
        suite: path.display().to_string(),
        max_new_tokens: suite.max_new_tokens,
        threads,
        rows,
    })
}

fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

/// The human-readable report.
pub fn text(r: &TaskReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "model {}: base = the {} checkpoint as stored", r.model, r.source_format);
    let n = r.rows.first().map_or(0, |row| row.result.tasks.len());
    let _ = writeln!(
        o,
        "tasks: {} ({n} tasks), greedy, chat template, at most {} new tokens each; CPU, {} thread(s)",
        r.suite, r.max_new_tokens, r.threads
    );
    let _ = writeln!(o, "valid = the answer follows its task's rule; agreement = the same answer as the base");
    let mut t = Table::new(&[("format", false), ("valid", true), ("agreement", true)]);
    for row in &r.rows {
        t.row(vec![row.format.clone(), pct(row.result.valid), row.result.agreement.map_or("-".into(), pct)]);
    }
    o.push('\n');
    o.push_str(&t.render(""));
    // Per task: validity per model, and "=" / "≠" where the answer equals the base's or not.
    let mut t = Table::new(&[("task", false), ("base", false), ("formats", false)]);
    let mark = |tr: &TaskResult| {
        let same = match tr.agrees_with_base {
            Some(true) => " =",
            Some(false) => " ≠",
            None => "",
        };
        format!("{}{same}", if tr.valid { "valid" } else { "INVALID" })
    };
    if let Some((base, rest)) = r.rows.split_first() {
        for (i, task) in base.result.tasks.iter().enumerate() {
            let others: Vec<String> =
                rest.iter().map(|row| format!("{}: {}", row.format, mark(&row.result.tasks[i]))).collect();
            t.row(vec![task.id.clone(), mark(task), others.join(", ")]);
        }
    }
    let _ = writeln!(o, "\nper task (= / ≠: the same answer as the base or not):");
    o.push_str(&t.render(""));
    o
}
