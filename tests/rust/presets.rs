//! llama.cpp's file types: the per-tensor types quantlab picks for the default model equal those
//! `llama-quantize --allow-requantize` wrote (tests/fixtures/presets/*.json, made by
//! scripts/dev/make_preset_goldens.sh and read with gguf-py), checked on the model's tensor
//! list without quantizing; then one file type through `quantlab quantize` end to end.

use crate::gguf::model_path;
use quantlab::cli::quantize::{self, QuantizeArgs};
use quantlab::formats::ggml::presets::LlamaFileType;
use quantlab::formats::{GgmlType, ALL_TYPES};
use quantlab::gguf::{GgufFile, MetadataValue};
use quantlab::io::export::{model_shape, tensor_facts};
use quantlab::policy::{Action, Target, TensorPolicy, TypeMix};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/presets")
}

/// A golden: llama-quantize's file type number and the type of every tensor, by name.
struct Golden {
    file_type: LlamaFileType,
    llama_ftype: u32,
    tensors: BTreeMap<String, GgmlType>,
}

fn golden(name: &str) -> Golden {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensors = v["tensors"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, t)| {
            let ty = t.as_str().unwrap();
            let ty = ALL_TYPES.into_iter().find(|g| g.name() == ty).unwrap_or_else(|| panic!("type {ty}"));
            (k.clone(), ty)
        })
        .collect();
    Golden {
        file_type: LlamaFileType::parse(v["file_type"].as_str().unwrap()).unwrap(),
        llama_ftype: v["general.file_type"].as_u64().unwrap() as u32,
        tensors,
    }
}

/// Every golden's name (the file stems), sorted.
fn golden_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| e.unwrap().path().file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

/// The type quantlab's policy gives each tensor of `f` under `ft`.
fn our_types(f: &GgufFile, ft: LlamaFileType) -> BTreeMap<String, GgmlType> {
    let shape = model_shape(f).expect("the default model has a block count");
    let policy = TensorPolicy { mix: TypeMix::LlamaCpp(ft), ..TensorPolicy::default() };
    let scheme = Target::parse(ft.name()).unwrap().scheme;
    f.tensors
        .iter()
        .map(|t| {
            let ty = match policy.decide_in(&tensor_facts(t), &scheme, Some(&shape)).action {
                Action::Copy => t.ty,
                Action::Quantize(s) => s.ggml_type().unwrap(),
                Action::ToF16 => GgmlType::F16,
            };
            (t.name.clone(), ty)
        })
        .collect()
}

#[test]
fn goldens_cover_every_quantized_file_type() {
    let names = golden_names();
    for ft in LlamaFileType::ALL.into_iter().filter(|f| f.default_type().block_size() > 1) {
        assert!(names.contains(&ft.name().to_string()), "no golden for {}", ft.name());
    }
}

#[test]
fn per_tensor_types_equal_llama_quantize() {
    let Some(model) = model_path() else { return };
    let bytes = std::fs::read(&model).unwrap();
    let f = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    for name in golden_names() {
        let g = golden(&name);
        assert_eq!(g.llama_ftype, g.file_type.id(), "{name}: general.file_type");
        let ours = our_types(&f, g.file_type);
        let diff: Vec<String> = g
            .tensors
            .iter()
            .filter(|(n, ty)| ours.get(*n) != Some(ty))
            .map(|(n, ty)| format!("{n}: llama.cpp {ty}, quantlab {:?}", ours.get(n)))
            .collect();
        assert!(diff.is_empty(), "{name}:\n{}", diff.join("\n"));
        assert_eq!(ours.len(), g.tensors.len(), "{name}");
    }
}

#[test]
fn quantize_cli_q4_k_m_writes_llama_quantize_types() {
    let Some(model) = model_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q4_k_m.gguf");
    let args = QuantizeArgs::new(model, "q4_k_m", &out);
    let report = quantize::run(&args).unwrap();
    assert!(report.contains("(q4_k_m)"), "{report}");
    // The tied embedding (also the output matrix) is one of the tensors the report explains.
    assert!(report.contains("token_embd.weight: Q8_0 instead of Q4_K"), "{report}");
    let bytes = std::fs::read(&out).unwrap();
    let f = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    assert_eq!(f.get("general.file_type"), Some(&MetadataValue::U32(LlamaFileType::Q4_K_M.id())));
    let g = golden("q4_k_m");
    let written: BTreeMap<String, GgmlType> = f.tensors.iter().map(|t| (t.name.clone(), t.ty)).collect();
    assert_eq!(written, g.tensors);
}
