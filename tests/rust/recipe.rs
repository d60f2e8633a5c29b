//! Recipes (`recipe.json`): parsing and its errors, the per-tensor policy, `quantize --recipe`
//! against `-f`, the multiple-choice selection against brute force, and `quantlab sensitivity` end to end
//! on the tiny Hugging Face fixture.

use crate::cli_quantize::tiny_gguf;
use clap::Parser;
use quantlab::cli::{self, quantize, Cli};
use quantlab::error::{ErrorKind, HasKind, Input};
use quantlab::formats::{GgmlType, QuantScheme};
use quantlab::gguf::GgufFile;
use quantlab::policy::{Action, TensorFacts, TensorPolicy, TensorSchemes};
use quantlab::recipe::choice::{choose, Choice, ChoiceError, Selection, MAX_STEPS};
use quantlab::recipe::{EntryRef, Method, Recipe, RecipeError};
use std::path::Path;

const MIXED: &str = r#"{
  "version": 1,
  "name": "mixed",
  "default": { "format": "q4_0", "method": "rtn" },
  "tensors": [
    { "name": "token_embd.weight", "format": "q8_0" },
    { "name": "blk.0.attn_q.weight", "format": "q5_1", "method": "gptq" },
    { "name": "blk.0.ffn_up.weight", "format": "q4_k", "method": "imatrix" }
  ]
}"#;

#[test]
fn parses_and_round_trips() {
    let r = Recipe::parse(MIXED).unwrap();
    assert_eq!(r.name.as_deref(), Some("mixed"));
    assert_eq!(r.tensors.len(), 3);
    assert_eq!(r.method_for("blk.0.attn_q.weight"), Method::Gptq);
    assert_eq!(r.method_for("token_embd.weight"), Method::Rtn, "an entry without a method is rtn");
    assert_eq!(r.method_for("blk.0.attn_k.weight"), Method::Rtn, "unlisted: the default's");
    assert_eq!(Recipe::parse(&r.to_json()).unwrap(), r);
    let schemes = r.schemes().unwrap();
    assert_eq!(schemes.get("blk.0.ffn_up.weight"), Some(&QuantScheme::ggml(GgmlType::Q4_K)));
    // A minimal recipe: no name, no tensors.
    let r = Recipe::parse(r#"{"version": 1, "default": {"format": "int4-sym-g64"}}"#).unwrap();
    assert!(r.tensors.is_empty() && r.name.is_none());
    assert_eq!(Recipe::parse(&r.to_json()).unwrap(), r);
}

fn parse_err(text: &str) -> RecipeError {
    Recipe::parse(text).unwrap_err()
}

fn tensor(index: usize, name: &str) -> EntryRef {
    EntryRef::Tensor { index, name: name.into() }
}

#[test]
fn errors_name_the_entry_and_field() {
    let e = parse_err(r#"{"version": 2, "default": {"format": "q4_0"}, "future": true}"#);
    assert_eq!(e, RecipeError::Version { found: "2".into() }, "the version is checked before unknown fields");
    assert!(matches!(parse_err(r#"{"default": {"format": "q4_0"}}"#), RecipeError::Syntax(_)));
    assert!(matches!(parse_err("[1]"), RecipeError::Syntax(_)));
    assert!(matches!(
        parse_err(r#"{"version": 1, "default": {"format": "q4_0"}, "extra": 1}"#),
        RecipeError::Syntax(_)
    ));

    let e = parse_err(r#"{"version": 1, "default": {"format": "q4_0", "methd": "rtn"}}"#);
    assert!(matches!(&e, RecipeError::Entry { entry: EntryRef::Default, message } if message.contains("methd")), "{e}");
    let e = parse_err(
        r#"{"version": 1, "default": {"format": "q4_0"}, "tensors": [{"name": "a.weight", "format": "q8_0"}, {"name": "b.weight", "fromat": "q8_0"}]}"#,
    );
    assert!(
        matches!(&e, RecipeError::Entry { entry, message } if *entry == tensor(1, "b.weight") && message.contains("fromat")),
        "{e}"
    );
    assert!(e.to_string().starts_with("tensors[1] (\"b.weight\"): unknown field `fromat`"), "{e}");
    let e = parse_err(
        r#"{"version": 1, "default": {"format": "q4_0"}, "tensors": [{"name": "a.weight", "format": "q8_0", "method": "awesome"}]}"#,
    );
    assert!(matches!(&e, RecipeError::Entry { entry, .. } if *entry == tensor(0, "a.weight")), "{e}");

    let e = parse_err(r#"{"version": 1, "default": {"format": "q9_0"}}"#);
    assert!(matches!(e, RecipeError::Format { entry: EntryRef::Default, .. }), "{e}");
    let e = parse_err(
        r#"{"version": 1, "default": {"format": "q4_0"}, "tensors": [{"name": "a.weight", "format": "q4_k_m"}]}"#,
    );
    assert!(
        matches!(&e, RecipeError::Format { entry, .. } if *entry == tensor(0, "a.weight")),
        "a file type is no per-tensor format: {e}"
    );
    assert!(e.to_string().starts_with("tensors[0] (\"a.weight\"): field \"format\":"), "{e}");

    let e = parse_err(
        r#"{"version": 1, "default": {"format": "q4_0"}, "tensors": [{"name": "a.weight", "format": "nf4", "method": "gptq"}]}"#,
    );
    assert_eq!(e, RecipeError::Method { entry: tensor(0, "a.weight"), method: Method::Gptq, format: "nf4".into() });
    let e = parse_err(r#"{"version": 1, "default": {"format": "int4-sym-g64", "method": "imatrix"}}"#);
    assert!(matches!(e, RecipeError::Method { entry: EntryRef::Default, method: Method::Imatrix, .. }), "{e}");
    let e = parse_err(r#"{"version": 1, "default": {"format": "int4-sym-tensor", "method": "gptq"}}"#);
    assert!(matches!(e, RecipeError::Method { .. }), "GPTQ needs channel or group scales: {e}");

    let e = parse_err(
        r#"{"version": 1, "default": {"format": "q4_0"}, "tensors": [{"name": "a.weight", "format": "q8_0"}, {"name": "b.weight", "format": "q8_0"}, {"name": "a.weight", "format": "q5_0"}]}"#,
    );
    assert_eq!(e, RecipeError::Duplicate { entry: tensor(2, "a.weight"), first: 0 });

    let r = Recipe::parse(MIXED).unwrap();
    let e = r.check_tensors(|n| n != "blk.0.ffn_up.weight").unwrap_err();
    assert_eq!(e, RecipeError::UnknownTensor { entry: tensor(2, "blk.0.ffn_up.weight") });
    assert_eq!(e.kind(), ErrorKind::bad(Input::Model));
    assert_eq!(parse_err(r#"{"version": 1, "default": {"format": "q9_0"}}"#).kind(), ErrorKind::bad(Input::Format));
    assert_eq!(parse_err("{").kind(), ErrorKind::bad(Input::File));
}

#[test]
fn per_tensor_schemes_keep_the_fallbacks() {
    let schemes = TensorSchemes::new([
        ("blk.0.attn_q.weight".to_string(), QuantScheme::ggml(GgmlType::Q4_K)),
        ("blk.0.ffn_down.weight".to_string(), QuantScheme::ggml(GgmlType::Q8_0)),
    ]);
    let p = TensorPolicy { per_tensor: Some(&schemes), ..TensorPolicy::default() };
    let facts = |name, row_len| TensorFacts {
        name,
        n_dims: 2,
        row_len,
        decodable: true,
        plain_float: true,
        stored: Some(GgmlType::F32),
    };
    let q4_0 = QuantScheme::ggml(GgmlType::Q4_0);
    let d = p.decide(&facts("blk.0.attn_q.weight", 576), &q4_0);
    assert_eq!(d.action, Action::Quantize(QuantScheme::ggml(GgmlType::Q5_0)), "Q4_K's fallback on a 576 row");
    assert!(d.note.unwrap().contains("256-value block of q4_k; using q5_0"));
    let d = p.decide_in(&facts("blk.0.ffn_down.weight", 1536), &q4_0, None);
    assert_eq!((d.action, d.note), (Action::Quantize(QuantScheme::ggml(GgmlType::Q8_0)), None));
    let d = p.decide(&facts("blk.0.attn_k.weight", 576), &q4_0);
    assert_eq!(d.action, Action::Quantize(q4_0), "unlisted: the run's scheme");
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn recipe_args(input: &Path, recipe: &Path, output: &Path) -> quantize::QuantizeArgs {
    quantize::QuantizeArgs { recipe: Some(recipe.into()), ..quantize::QuantizeArgs::new(input, "", output) }
}

#[test]
fn quantize_recipe_matches_format_and_mixes() {
    let dir = tempfile::tempdir().unwrap();
    let input = tiny_gguf(dir.path(), None);
    let quantized = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.0.ffn_up.weight"];
    // Every quantized tensor listed with q8_0 = -f q8_0 --pure; a default-only recipe = -f q8_0.
    let all: Vec<String> = quantized.iter().map(|n| format!(r#"{{"name": "{n}", "format": "q8_0"}}"#)).collect();
    let listed = write(
        dir.path(),
        "listed.json",
        &format!(r#"{{"version": 1, "default": {{"format": "q4_0"}}, "tensors": [{}]}}"#, all.join(",")),
    );
    let default_only = write(dir.path(), "default.json", r#"{"version": 1, "default": {"format": "q8_0"}}"#);
    let plain = dir.path().join("plain.gguf");
    quantize::run(&quantize::QuantizeArgs { pure: true, ..quantize::QuantizeArgs::new(&input, "q8_0", &plain) })
        .unwrap();
    let plain = std::fs::read(&plain).unwrap();
    for (recipe, pure) in [(&default_only, false), (&listed, true)] {
        let out = dir.path().join("r.gguf");
        let report = quantize::run(&quantize::QuantizeArgs { pure, ..recipe_args(&input, recipe, &out) }).unwrap();
        assert!(report.contains("recipe"), "{report}");
        let got = std::fs::read(&out).unwrap();
        // Same tensors byte for byte; the header differs only in general.file_type for the
        // listed recipe (its default is q4_0).
        let (a, b) =
            (GgufFile::parse(&got, got.len() as u64).unwrap(), GgufFile::parse(&plain, plain.len() as u64).unwrap());
        assert_eq!(a.tensors.len(), b.tensors.len());
        for (x, y) in a.tensors.iter().zip(&b.tensors) {
            assert_eq!((&x.name, x.ty), (&y.name, y.ty));
            assert_eq!(a.tensor_data(&got, x).unwrap(), b.tensor_data(&plain, y).unwrap(), "{}", x.name);
        }
        if recipe == &default_only {
            assert_eq!(got, plain, "byte for byte");
        }
    }

    // Mixed: each tensor in its format; the 48-wide row still falls back (and says so).
    let mixed = write(
        dir.path(),
        "mixed.json",
        r#"{"version": 1, "name": "mix", "default": {"format": "q8_0"}, "tensors": [
            {"name": "blk.0.attn_q.weight", "format": "q4_0"},
            {"name": "blk.0.ffn_up.weight", "format": "q5_1"},
            {"name": "blk.0.ffn_down.weight", "format": "q4_0"}]}"#,
    );
    let out = dir.path().join("mixed.gguf");
    let report = quantize::run(&recipe_args(&input, &mixed, &out)).unwrap();
    assert!(report.contains("(mix)") && report.contains("blk.0.ffn_down.weight: row length 48"), "{report}");
    let bytes = std::fs::read(&out).unwrap();
    let f = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let ty = |n: &str| f.tensor(n).unwrap().ty;
    assert_eq!(ty("token_embd.weight"), GgmlType::Q8_0);
    assert_eq!(ty("blk.0.attn_q.weight"), GgmlType::Q4_0);
    assert_eq!(ty("blk.0.ffn_up.weight"), GgmlType::Q5_1);
    assert_eq!(ty("blk.0.ffn_down.weight"), GgmlType::F32);

    // Errors: a tensor the model does not quantize, a format the container cannot hold, the
    // imatrix method without --imatrix, -f beside --recipe.
    for (text, want) in [
        (
            r#"{"version": 1, "default": {"format": "q8_0"}, "tensors": [{"name": "blk.0.attn_norm.weight", "format": "q4_0"}]}"#,
            "tensors[0] (\"blk.0.attn_norm.weight\"): field \"name\": the model has no tensor",
        ),
        (
            r#"{"version": 1, "default": {"format": "q8_0"}, "tensors": [{"name": "blk.0.attn_q.weight", "format": "nf4"}]}"#,
            "tensors[0] (\"blk.0.attn_q.weight\"): nf4",
        ),
        (
            r#"{"version": 1, "default": {"format": "q8_0"}, "tensors": [{"name": "blk.0.attn_q.weight", "format": "q4_0", "method": "imatrix"}]}"#,
            "--imatrix FILE",
        ),
    ] {
        let bad = write(dir.path(), "bad.json", text);
        let e = quantize::run(&recipe_args(&input, &bad, &dir.path().join("bad.gguf"))).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    let parsed =
        Cli::try_parse_from(["quantlab", "quantize", "x.gguf", "-f", "q4_0", "--recipe", "r.json", "-o", "y.gguf"]);
    assert!(parsed.is_err(), "-f and --recipe conflict");
    assert!(Cli::try_parse_from(["quantlab", "quantize", "x.gguf", "-o", "y.gguf"]).is_err(), "-f or --recipe");
}

/// The least total KL within the budget, one choice per unit, by trying every combination.
fn brute_force(units: &[Vec<Choice>], budget: u64) -> Option<f64> {
    let mut best: Option<f64> = None;
    let mut picks = vec![0usize; units.len()];
    loop {
        let bytes: u64 = picks.iter().zip(units).map(|(&i, c)| c[i].bytes).sum();
        let kl: f64 = picks.iter().zip(units).map(|(&i, c)| c[i].kl).sum();
        if bytes <= budget && best.is_none_or(|b| kl < b) {
            best = Some(kl);
        }
        // The next combination, as an odometer.
        let Some(u) = (0..units.len()).find(|&u| picks[u] + 1 < units[u].len()) else { return best };
        picks[u] += 1;
        picks[..u].fill(0);
    }
}

fn check_selection(units: &[Vec<Choice>], budget: u64, sel: &Selection) {
    let bytes: u64 = sel.picks.iter().zip(units).map(|(&i, c)| c[i].bytes).sum();
    let kl: f64 = sel.picks.iter().zip(units).map(|(&i, c)| c[i].kl).sum();
    assert_eq!(sel.bytes, bytes);
    assert!((sel.kl - kl).abs() < 1e-12);
    assert!(bytes <= budget, "over budget: {bytes} > {budget}");
}

#[test]
fn multiple_choice_selection_is_optimal() {
    let c = |bytes: u64, kl: f64| Choice { bytes, kl };
    // A hand table: three units, formats of 4, 5 and 6 bytes a unit (a q4/q5/q6 ladder); unit 0
    // is sensitive, unit 2 barely. Within 15 bytes, the size of the middle format everywhere
    // (KL 4 + 1 + 0.1 = 5.1), the optimum puts unit 2 below it to pay for unit 0 above it:
    // (6, 5, 4), KL 1 + 1 + 0.2 = 2.2; every other mix of at most 15 bytes is worse (by hand:
    // (6, 4, 5) 4.1, (5, 6, 4) 4.7, (6, 4, 4) 4.2, (5, 5, 4) 5.2 …).
    let units = vec![
        vec![c(4, 9.0), c(5, 4.0), c(6, 1.0)],
        vec![c(4, 3.0), c(5, 1.0), c(6, 0.5)],
        vec![c(4, 0.2), c(5, 0.1), c(6, 0.05)],
    ];
    let sel = choose(&units, 15).unwrap();
    assert_eq!((sel.picks.clone(), sel.bytes), (vec![2, 1, 0], 15));
    assert!((sel.kl - 2.2).abs() < 1e-12);
    // One byte more: (6, 6, 4), KL 1.7, beats (6, 5, 5), KL 2.1.
    let sel = choose(&units, 16).unwrap();
    assert_eq!((sel.picks.clone(), sel.bytes), (vec![2, 2, 0], 16));
    assert!((sel.kl - 1.7).abs() < 1e-12);
    // Enough for everything at the top; and the bottom everywhere, the only mix within 12.
    assert_eq!(choose(&units, 100).unwrap().picks, vec![2, 2, 2]);
    assert_eq!(choose(&units, 12).unwrap().picks, vec![0, 0, 0]);
    // Below the smallest mix, a unit without choices, a KL that is not a number: named errors.
    assert_eq!(choose(&units, 11), Err(ChoiceError::OverBudget { budget: 11, least: 12 }));
    assert_eq!(choose(&[vec![c(4, 1.0)], vec![]], 10), Err(ChoiceError::NoChoice { unit: 1 }));
    let nan = choose(&[vec![c(4, 1.0)], vec![c(4, 1.0), c(5, f64::NAN)]], 10);
    assert!(matches!(nan, Err(ChoiceError::NotFinite { unit: 1, choice: 1, .. })), "{nan:?}");

    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    for case in 0..400 {
        let n = 1 + next(6) as usize;
        let units: Vec<Vec<Choice>> =
            (0..n).map(|_| (0..1 + next(4)).map(|_| c(1 + next(100), next(1000) as f64 / 100.0)).collect()).collect();
        let budget = next(400);
        match (choose(&units, budget), brute_force(&units, budget)) {
            (Ok(sel), Some(best)) => {
                check_selection(&units, budget, &sel);
                assert!((sel.kl - best).abs() < 1e-9, "case {case}: {} vs the optimum {best}", sel.kl);
            }
            (Err(ChoiceError::OverBudget { .. }), None) => {}
            (got, best) => panic!("case {case}: {got:?} vs {best:?}"),
        }
    }
    // A slack of more than MAX_STEPS bytes is counted in coarser steps: still within the budget,
    // and at least as good as the exact optimum for a budget smaller by a step per unit.
    for case in 0..100 {
        let n = 1 + next(5) as usize;
        let scale = 1000 + next(200_000);
        let units: Vec<Vec<Choice>> = (0..n)
            .map(|_| (0..1 + next(4)).map(|_| c(scale * (1 + next(100)), next(1000) as f64 / 100.0)).collect())
            .collect();
        let budget = scale * next(400);
        let Ok(sel) = choose(&units, budget) else { continue };
        check_selection(&units, budget, &sel);
        let least: u64 = units.iter().map(|u| u.iter().map(|c| c.bytes).min().unwrap()).sum();
        let step = (budget - least).div_ceil(MAX_STEPS).max(1);
        if let Some(worse) = budget.checked_sub(step * n as u64).and_then(|b| brute_force(&units, b)) {
            assert!(sel.kl <= worse + 1e-9, "case {case}: {} vs {worse}", sel.kl);
        }
        assert!(sel.kl >= brute_force(&units, budget).unwrap() - 1e-9);
    }
}

fn run_cli(args: &[&str]) -> Result<String, String> {
    let cli =
        Cli::try_parse_from(std::iter::once("quantlab").chain(args.iter().copied())).map_err(|e| e.to_string())?;
    cli::run(&cli).map_err(|e| e.to_string())
}

#[test]
fn sensitivity_scan_and_recipe_on_a_tiny_model() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf/f32-untied");
    let model = model.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..40).map(|i| format!("Call me Ishmael, said the {i}th sailor to the sea. ")).collect();
    let calib = write(dir.path(), "calib.txt", &text);
    let calib = calib.to_str().unwrap();
    let recipe_out = dir.path().join("recipe.json");
    let common = ["--calib", calib, "--calib-tokens", "192", "--ctx", "64", "--threads", "1", "--json"];

    let mut args = vec!["sensitivity", model, "-f", "int4-sym-g32", "--target-format", "q5_0"];
    args.extend(common);
    args.extend(["--recipe-out", recipe_out.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_str(&run_cli(&args).unwrap()).unwrap();
    assert_eq!(json["unit"], "layer");
    assert_eq!((json["windows"].as_u64(), json["tokens_scored"].as_u64()), (Some(3), Some(3 * 63)));
    let units = json["units"].as_array().unwrap();
    let names: std::collections::BTreeSet<&str> = units.iter().map(|u| u["unit"].as_str().unwrap()).collect();
    assert_eq!(names, ["blk.0", "blk.1", "output", "token_embd"].into_iter().collect());
    let kls: Vec<f64> = units.iter().map(|u| u["kl"].as_f64().unwrap()).collect();
    assert!(kls.iter().all(|k| k.is_finite() && *k > 0.0), "{kls:?}");
    assert!(kls.windows(2).all(|w| w[0] >= w[1]), "ranked by KL: {kls:?}");
    assert!(json["uniform"]["kl"].as_f64().unwrap() > kls[0], "all units hurt more than the worst alone");

    // The recommendation is the brute-force optimum of the reported table (4 units, each at
    // int4-sym-g32 with its KL or at q8_0 taken as lossless), within the budget; the recipe file
    // reads back.
    let rec = &json["recommendation"];
    let budget = rec["budget_bytes"].as_u64().unwrap();
    let table = |u: &serde_json::Value| {
        let at = |key: &str| u[key].as_u64().unwrap();
        vec![Choice { bytes: at("bytes"), kl: u["kl"].as_f64().unwrap() }, Choice { bytes: at("bytes_high"), kl: 0.0 }]
    };
    let tables: Vec<Vec<Choice>> = units.iter().map(table).collect();
    let best = brute_force(&tables, budget).unwrap();
    assert!((rec["predicted_kl"].as_f64().unwrap() - best).abs() < 1e-12, "{rec} vs {best}");
    assert!(rec["bytes"].as_u64().unwrap() <= budget);
    let recipe = Recipe::parse(&std::fs::read_to_string(&recipe_out).unwrap()).unwrap();
    assert_eq!(serde_json::to_value(&recipe).unwrap(), rec["recipe"]);
    let high: Vec<&str> = recipe.tensors.iter().filter(|t| t.format == "q8_0").map(|t| t.name.as_str()).collect();
    let choices = rec["choices"].as_array().unwrap();
    let promoted: usize = choices
        .iter()
        .filter(|c| c["format"] == "q8_0")
        .map(|c| units.iter().find(|u| u["unit"] == c["unit"]).unwrap()["tensors"].as_array().unwrap().len())
        .sum();
    assert!(promoted > 0);
    assert_eq!(high.len(), promoted);
    assert_eq!(recipe.tensors.len(), 2 * 7 + 2, "every matrix listed");

    // Three formats scanned: each unit at int4-sym-g32, q5_0 or q8_0 with its measured KL (q8_0
    // is scanned, so not assumed lossless). The recipe is the optimum of the three tables, and by
    // those tables no worse than q5_0 everywhere, the budget's own mix.
    let mut args = vec!["sensitivity", model, "-f", "int4-sym-g32,q5_0,q8_0", "--target-format", "q5_0"];
    args.extend(common);
    let json: serde_json::Value = serde_json::from_str(&run_cli(&args).unwrap()).unwrap();
    let others = json["other_scans"].as_array().unwrap();
    assert_eq!(others.iter().map(|o| o["format"].as_str().unwrap()).collect::<Vec<_>>(), ["q5_0", "q8_0"]);
    let kl_at = |scan: &serde_json::Value, unit: &serde_json::Value| {
        let row = scan["units"].as_array().unwrap().iter().find(|u| u["unit"] == *unit).unwrap();
        Choice { bytes: row["bytes"].as_u64().unwrap(), kl: row["kl"].as_f64().unwrap() }
    };
    let units = json["units"].as_array().unwrap();
    let tables: Vec<Vec<Choice>> = units
        .iter()
        .map(|u| vec![kl_at(&json, &u["unit"]), kl_at(&others[0], &u["unit"]), kl_at(&others[1], &u["unit"])])
        .collect();
    let rec = &json["recommendation"];
    let budget = rec["budget_bytes"].as_u64().unwrap();
    assert_eq!(budget, others[0]["uniform_bytes"].as_u64().unwrap(), "--target-format q5_0: q5_0's size");
    let predicted = rec["predicted_kl"].as_f64().unwrap();
    assert!((predicted - brute_force(&tables, budget).unwrap()).abs() < 1e-12);
    let uniform_q5: f64 = tables.iter().map(|t| t[1].kl).sum();
    assert!(predicted <= uniform_q5 + 1e-12, "{predicted} > q5_0 everywhere {uniform_q5}");
    let shares = rec["formats"].as_array().unwrap();
    assert_eq!(shares.len(), 3, "no assumed q8_0 beside the scanned one: {shares:?}");
    let counted: u64 = shares.iter().map(|f| f["units"].as_u64().unwrap()).sum();
    assert_eq!(counted, 4);

    // --scans: the same recommendation from one-format `--json` reports, without scanning again;
    // files in the wrong order are refused, naming the file.
    let mut files = Vec::new();
    for f in ["int4-sym-g32", "q5_0", "q8_0"] {
        let mut args = vec!["sensitivity", model, "-f", f];
        args.extend(common);
        let path = write(dir.path(), &format!("scan-{f}.json"), &run_cli(&args).unwrap());
        files.push(path.to_str().unwrap().to_string());
    }
    let mut args = vec!["sensitivity", model, "-f", "int4-sym-g32,q5_0,q8_0", "--target-format", "q5_0", "--json"];
    let joined = files.join(",");
    args.extend(["--scans", &joined]);
    let saved: serde_json::Value = serde_json::from_str(&run_cli(&args).unwrap()).unwrap();
    assert_eq!(saved["recommendation"], json["recommendation"]);
    assert_eq!((saved["windows"].as_u64(), saved["tokens_scored"].as_u64()), (Some(3), Some(3 * 63)));
    let swapped = format!("{},{},{}", files[1], files[0], files[2]);
    let args = ["sensitivity", model, "-f", "int4-sym-g32,q5_0,q8_0", "--target-format", "q5_0", "--scans", &swapped];
    let e = run_cli(&args).unwrap_err();
    assert!(e.contains("scan-q5_0.json") && e.contains("a scan of q5_0, not of int4-sym-g32"), "{e}");

    // A format equal to the stored one changes nothing: every KL is 0.
    let mut args = vec!["sensitivity", model, "-f", "f32", "--unit", "tensor"];
    args.extend(common);
    let json: serde_json::Value = serde_json::from_str(&run_cli(&args).unwrap()).unwrap();
    let units = json["units"].as_array().unwrap();
    assert_eq!(units.len(), 2 * 7 + 2);
    assert!(units.iter().all(|u| u["kl"].as_f64() == Some(0.0)), "{units:?}");

    // eval --recipe: the recipe's row, under its name, beside -f.
    let eval_text = write(dir.path(), "eval.txt", &text.replace("sailor", "whale"));
    let out = run_cli(&[
        "eval",
        model,
        "--text",
        eval_text.to_str().unwrap(),
        "--ctx",
        "64",
        "--max-windows",
        "2",
        "--device",
        "cpu",
        "--threads",
        "1",
        "-f",
        "int4-sym-g32",
        "--recipe",
        recipe_out.to_str().unwrap(),
        "--json",
    ])
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["format"].as_str(), recipe.name.as_deref());
}

#[test]
fn awq_is_refused_per_tensor_and_hqq_entries_match_the_whole_model_method() {
    let e = parse_err(
        r#"{"version": 1, "default": {"format": "q8_0"}, "tensors": [{"name": "blk.0.attn_q.weight", "format": "q4_0", "method": "awq"}]}"#,
    );
    assert_eq!(e, RecipeError::NotPerTensor { entry: tensor(0, "blk.0.attn_q.weight"), method: Method::Awq });
    assert!(e.to_string().starts_with("tensors[0] (\"blk.0.attn_q.weight\"): field \"method\": awq cannot"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = parse_err(r#"{"version": 1, "default": {"format": "int4-sym-g32", "method": "awq"}}"#);
    assert_eq!(e, RecipeError::NotPerTensor { entry: EntryRef::Default, method: Method::Awq });
    // HQQ writes asymmetric min/max grids only.
    let e = parse_err(
        r#"{"version": 1, "default": {"format": "q8_0"}, "tensors": [{"name": "a.weight", "format": "q4_0", "method": "hqq"}]}"#,
    );
    assert_eq!(e, RecipeError::Method { entry: tensor(0, "a.weight"), method: Method::Hqq, format: "q4_0".into() });

    // An hqq entry gets the same bytes as `--method hqq` gives that tensor; the others stay RTN.
    let dir = tempfile::tempdir().unwrap();
    let input = tiny_gguf(dir.path(), None);
    let recipe = write(
        dir.path(),
        "hqq.json",
        r#"{"version": 1, "default": {"format": "q5_1"}, "tensors": [{"name": "blk.0.ffn_up.weight", "format": "q5_1", "method": "hqq"}]}"#,
    );
    let (mixed, hqq, rtn) = (dir.path().join("m.gguf"), dir.path().join("h.gguf"), dir.path().join("r.gguf"));
    quantize::run(&quantize::QuantizeArgs { pure: true, ..recipe_args(&input, &recipe, &mixed) }).unwrap();
    let mut whole = quantize::QuantizeArgs { pure: true, ..quantize::QuantizeArgs::new(&input, "q5_1", &hqq) };
    whole.method.method = Method::Hqq;
    quantize::run(&whole).unwrap();
    quantize::run(&quantize::QuantizeArgs { pure: true, ..quantize::QuantizeArgs::new(&input, "q5_1", &rtn) }).unwrap();
    let read = |p: &Path| std::fs::read(p).unwrap();
    let (m, h, r) = (read(&mixed), read(&hqq), read(&rtn));
    let data = |bytes: &[u8], name: &str| {
        let f = GgufFile::parse(bytes, bytes.len() as u64).unwrap();
        f.tensor_data(bytes, f.tensor(name).unwrap()).unwrap().to_vec()
    };
    let up = "blk.0.ffn_up.weight";
    assert_eq!(data(&m, up), data(&h, up), "the hqq entry");
    assert_ne!(data(&m, up), data(&r, up), "HQQ is not round to nearest here");
    assert_eq!(data(&m, "blk.0.attn_q.weight"), data(&r, "blk.0.attn_q.weight"), "unlisted: rtn");

    // --method takes the recipe's names, except imatrix (chosen by --imatrix FILE).
    let parse =
        |m: &str| Cli::try_parse_from(["quantlab", "quantize", "x.gguf", "-f", "q4_0", "--method", m, "-o", "y.gguf"]);
    for m in ["rtn", "gptq", "awq", "hqq"] {
        assert!(parse(m).is_ok(), "{m}");
    }
    assert!(parse("imatrix").is_err());
}
