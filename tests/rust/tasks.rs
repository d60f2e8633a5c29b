//! The instruct task suite (crate/src/model/tasks.rs): the rules on hand-written answers, the
//! suite file's checks, and `quantlab eval --tasks` end to end on the default model.

use crate::gguf::model_path;
use quantlab::model::tasks::{parse_suite, score, Answer, Ending, Rule, TaskError, Verdict};

fn ans(text: &str) -> Answer {
    Answer { text: text.into(), tokens: 5, ending: Ending::EndOfTurn }
}

fn valid(rule: &Rule, text: &str) -> bool {
    rule.check(&ans(text)) == Verdict::Valid
}

fn rule(json: &str) -> Rule {
    serde_json::from_str(json).unwrap()
}

#[test]
fn json_keys_rule() {
    let r = rule(r#"{"kind": "json_keys", "keys": ["city", "country"]}"#);
    assert!(valid(&r, r#"{"city": "Paris", "country": "France"}"#));
    assert!(valid(&r, "  {\"country\": \"France\", \"city\": \"Paris\", \"extra\": 1}\n"));
    assert!(valid(&r, "```json\n{\"city\": \"Paris\", \"country\": \"France\"}\n```"));
    assert!(!valid(&r, r#"{"city": "Paris"}"#), "a key is missing");
    assert!(!valid(&r, r#"["city", "country"]"#), "not an object");
    assert!(!valid(&r, r#"Sure! {"city": "Paris", "country": "France"}"#), "text around the JSON");
    assert!(!valid(&r, r#"{"city": "Paris", "country": "France""#), "unterminated");
}

#[test]
fn one_word_rule() {
    let r = rule(r#"{"kind": "one_word", "answer": "Paris"}"#);
    for ok in ["Paris", "paris.", " \"Paris\" ", "PARIS!", "`Paris`"] {
        assert!(valid(&r, ok), "{ok:?}");
    }
    for bad in ["The capital is Paris.", "Lyon", "", "Paris France"] {
        assert!(!valid(&r, bad), "{bad:?}");
    }
    let any = rule(r#"{"kind": "one_word"}"#);
    assert!(valid(&any, "Dog.") && !valid(&any, "A dog."));
}

#[test]
fn number_rule() {
    let r = rule(r#"{"kind": "number", "answer": 7}"#);
    for ok in ["7", "7.", " 7 ", "7.0"] {
        assert!(valid(&r, ok), "{ok:?}");
    }
    for bad in ["seven", "8", "The answer is 7.", "7 days"] {
        assert!(!valid(&r, bad), "{bad:?}");
    }
    assert!(valid(&rule(r#"{"kind": "number"}"#), "-3.5"));
}

#[test]
fn stop_rule() {
    let r = rule(r#"{"kind": "stop", "max_words": 3}"#);
    assert!(valid(&r, "Hello there!"));
    assert!(!valid(&r, "Hello there, how are you?"), "too many words");
    let cut = Answer { text: "Hi".into(), tokens: 48, ending: Ending::Budget };
    assert!(matches!(r.check(&cut), Verdict::Invalid(_)), "cut by the budget is not stopping");
}

#[test]
fn repeat_rule() {
    let r = rule(r#"{"kind": "repeat", "text": "XK-42-blue"}"#);
    assert!(valid(&r, "XK-42-blue") && valid(&r, "XK-42-blue\n"));
    for bad in ["xk-42-blue", "\"XK-42-blue\"", "XK-42-blue.", "Sure: XK-42-blue"] {
        assert!(!valid(&r, bad), "{bad:?}");
    }
}

#[test]
fn suite_file_and_scores() {
    let suite = parse_suite(
        r#"{"max_new_tokens": 16, "tasks": [
            {"id": "a", "prompt": "p", "rule": {"kind": "number", "answer": 4}},
            {"id": "b", "prompt": "q", "rule": {"kind": "repeat", "text": "x"}, "max_new_tokens": 8}]}"#,
    )
    .unwrap();
    assert_eq!((suite.budget(&suite.tasks[0]), suite.budget(&suite.tasks[1])), (16, 8));
    let base = vec![ans("4"), ans("y")];
    let s = score(&suite, vec![ans("4"), ans("x")], Some(&base));
    assert_eq!((s.valid, s.agreement), (1.0, Some(0.5)));
    assert_eq!(s.tasks[1].agrees_with_base, Some(false));
    let b = score(&suite, base.clone(), None);
    assert_eq!((b.valid, b.agreement), (0.5, None));
    assert!(b.tasks[1].why.is_some());

    assert_eq!(parse_suite(r#"{"tasks": []}"#), Err(TaskError::Empty));
    let dup = r#"{"tasks": [{"id": "a", "prompt": "p", "rule": {"kind": "stop", "max_words": 1}},
                            {"id": "a", "prompt": "q", "rule": {"kind": "stop", "max_words": 1}}]}"#;
    assert_eq!(parse_suite(dup), Err(TaskError::DuplicateId("a".into())));
    assert!(matches!(
        parse_suite(r#"{"tasks": [{"id": "a", "prompt": "p", "rule": {"kind": "vibes"}}]}"#),
        Err(TaskError::Json(_))
    ));
}

/// The committed suite parses, has 10–20 tasks and uses every rule kind.
#[test]
fn committed_suite_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tasks/instruct-checks.json");
    let suite = parse_suite(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!((10..=20).contains(&suite.tasks.len()), "{} tasks", suite.tasks.len());
    for kind in ["json_keys", "one_word", "number", "stop", "repeat"] {
        let uses = suite.tasks.iter().any(|t| serde_json::to_value(&t.rule).unwrap()["kind"] == kind);
        assert!(uses, "no {kind} task");
    }
}

#[test]
fn cli_eval_tasks_end_to_end() {
    let Some(path) = model_path() else { return };
    let dir = std::env::temp_dir().join(format!("quantlab-tasks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("three.json");
    std::fs::write(
        &file,
        r#"{"max_new_tokens": 24, "tasks": [
            {"id": "capital", "prompt": "What is the capital of France? Answer with one word only.", "rule": {"kind": "one_word", "answer": "Paris"}},
            {"id": "sum", "prompt": "What is 3 + 4? Reply with only the number.", "rule": {"kind": "number", "answer": 7}},
            {"id": "repeat", "prompt": "Repeat exactly this text and nothing else: XK-42-blue", "rule": {"kind": "repeat", "text": "XK-42-blue"}}]}"#,
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["eval", path.to_str().unwrap(), "--tasks", file.to_str().unwrap(), "-f", "q8_0"];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_quantlab")).args(&args).output().unwrap()
    };
    let o = run(&["--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["format"], "base (Q4_1 checkpoint)");
    assert!(rows[0]["agreement"].is_null());
    for row in rows {
        let tasks = row["tasks"].as_array().unwrap();
        assert_eq!(tasks.len(), 3);
        let valid = tasks.iter().filter(|t| t["valid"] == true).count() as f64 / 3.0;
        assert_eq!(row["valid"].as_f64().unwrap(), valid);
        for t in tasks {
            assert!(t["tokens"].as_u64().unwrap() <= 24, "{t}");
            // The validity each answer got is the rule's verdict on the text reported.
            assert_eq!(t["valid"] == true, t["why"].is_null(), "{t}");
        }
    }
    // Agreement is the share of answers equal to the base's.
    let base: Vec<&str> = rows[0]["tasks"].as_array().unwrap().iter().map(|t| t["text"].as_str().unwrap()).collect();
    let q8 = rows[1]["tasks"].as_array().unwrap();
    let same = q8.iter().zip(&base).filter(|(t, b)| t["text"].as_str().unwrap().trim() == b.trim()).count();
    assert_eq!(rows[1]["agreement"].as_f64().unwrap(), same as f64 / 3.0);

    let o = run(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.lines().any(|l| l.starts_with("format ") && l.contains("valid") && l.contains("agreement")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("q8_0 ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("capital ")), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}
