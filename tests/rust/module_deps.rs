//! The direction of the crate's module dependencies (issue #12): the format maths (`formats`)
//! uses none of the container, file or model modules, and no two of `formats`, `gguf`,
//! `policy`, `io`, `model` use each other both ways. Read from the source text: a module "uses"
//! another when its code (comments left out) names `crate::other`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The modules whose dependencies must form no cycle, lowest layer first.
const LAYERED: [&str; 5] = ["formats", "gguf", "policy", "io", "model"];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `src/<module>.rs` and every `.rs` file under `src/<module>/`.
fn module_files(module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let single = src_dir().join(format!("{module}.rs"));
    if single.is_file() {
        files.push(single);
    }
    let mut dirs = vec![src_dir().join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no source files for module '{module}'");
    files
}

/// The source without `//` comments (doc links to other modules are not dependencies).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("readable source");
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The crate's top-level modules that `code` names as `crate::m` or inside `crate::{m, ...}`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        // Paths like `other_crate::` are not ours (`$crate::` in a macro of this crate is).
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        let list = match rest.strip_prefix('{') {
            Some(group) => &group[..group.find('}').unwrap_or(group.len())],
            None => rest,
        };
        for item in list.split(',') {
            let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.insert(name);
            }
            if rest.starts_with('{') {
                continue;
            }
            break;
        }
    }
    out
}

/// The other top-level modules `module` uses.
fn uses(module: &str) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = module_files(module).iter().flat_map(|f| named_modules(&code_of(f))).collect();
    out.remove(module);
    out
}

#[test]
fn named_modules_reads_paths_and_groups() {
    let code = "use crate::formats::GgmlType;\nuse crate::{gguf::GgufFile, io};\nlet x = $crate::model::f();\nfoo_crate::stats::g();";
    let found: Vec<String> = named_modules(code).into_iter().collect();
    assert_eq!(found, ["formats", "gguf", "io", "model"]);
}

#[test]
fn formats_uses_no_container_file_or_model_module() {
    let used = uses("formats");
    for other in ["gguf", "io", "model", "policy"] {
        assert!(!used.contains(other), "formats uses crate::{other}; the format maths must not depend on it");
    }
}

#[test]
fn io_and_model_depend_one_way() {
    let (io, model) = (uses("io"), uses("model"));
    assert!(!(io.contains("model") && model.contains("io")), "io uses model and model uses io: a dependency cycle");
}

#[test]
fn layered_modules_have_no_cycle() {
    // Depth-first search for a back edge over the layered modules' use graph.
    let graph: Vec<(&str, BTreeSet<String>)> = LAYERED.iter().map(|&m| (m, uses(m))).collect();
    let edges = |m: &str| -> Vec<&str> {
        let used = &graph.iter().find(|(n, _)| *n == m).expect("layered module").1;
        LAYERED.iter().copied().filter(|o| used.contains(*o)).collect()
    };
    fn visit<'a>(m: &'a str, path: &mut Vec<&'a str>, done: &mut Vec<&'a str>, edges: &dyn Fn(&str) -> Vec<&'a str>) {
        if done.contains(&m) {
            return;
        }
        if let Some(at) = path.iter().position(|&p| p == m) {
            panic!("module dependency cycle: {} -> {m}", path[at..].join(" -> "));
        }
        path.push(m);
        for next in edges(m) {
            visit(next, path, done, edges);
        }
        path.pop();
        done.push(m);
    }
    let mut done = Vec::new();
    for m in LAYERED {
        visit(m, &mut Vec::new(), &mut done, &edges);
    }
}
