//! Loading Hugging Face LLaMA checkpoints (`quantlab::model::hf`) against transformers itself.
//!
//! The fixtures in tests/fixtures/hf/ are tiny random `LlamaForCausalLM`s saved by
//! `save_pretrained` (scripts/dev/make_hf_fixture.py): f32 untied in one file, bf16 tied in two
//! shards, f16 with one kv head and head_dim 8 ≠ hidden/heads. Each `reference.json` holds
//! transformers' float32 logits for a 10-token prompt and its 8-token greedy continuation.
//! transformers applies RoPE with `rotate_half` on the stored q/k rows, so matching it checks
//! our row permutation (undoing it in one layer moves the logits by ~5, `unpermuted_rows_differ`).
//!
//! Tolerance: both sides compute in f32 on identical weights (bf16/f16 widened exactly), so
//! logits differ only by summation order and libm: measured max |Δlogit| = 5.1e-6 (f32),
//! 3.5e-6 (bf16), 2.5e-6 (f16) on logits of magnitude ≤ 5. Asserted: |Δ| ≤ 1e-4, ~20× the
//! measurement and 3–4 orders of magnitude below
//! what a wrong permutation, GQA mapping or tied classifier does. Greedy tokens must be identical
//! (the fixture script only keeps seeds whose greedy steps have top-1/top-2 gaps ≥ 0.05).

use quantlab::io::safetensors::{serialize, Checkpoint};
use quantlab::model::{forward, Matrix, Model, ModelError, State};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub(crate) const TOL: f32 = 1e-4;
pub(crate) const VARIANTS: [&str; 3] = ["f32-untied", "bf16-tied-sharded", "f16-mqa-headdim"];

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/hf")).join(name)
}

pub(crate) fn reference(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap()
}

pub(crate) fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()
}

fn argmax(v: &[f32]) -> u32 {
    // First maximum, like torch.argmax.
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best }) as u32
}

/// Max |Δ| between our logits for the prompt and the reference, and the greedy continuation.
pub(crate) fn run(model: &Model, reference: &Value) -> (f32, Vec<u32>) {
    let prompt = ids(&reference["tokens"]);
    let n_greedy = reference["greedy"].as_array().unwrap().len();
    let mut state = State::new(&model.config, prompt.len() + n_greedy);
    let mut max_diff = 0f32;
    let mut last = Vec::new();
    for (pos, &tok) in prompt.iter().enumerate() {
        let logits = forward(&model.config, &model.weights, &mut state, tok, pos);
        let expected = reference["logits"][pos].as_array().unwrap();
        assert_eq!(logits.len(), expected.len());
        for (a, e) in logits.iter().zip(expected) {
            max_diff = max_diff.max((a - e.as_f64().unwrap() as f32).abs());
        }
        last = logits.to_vec();
    }
    let mut greedy = Vec::new();
    for step in 0..n_greedy {
        let next = argmax(&last);
        greedy.push(next);
        if step + 1 < n_greedy {
            last = forward(&model.config, &model.weights, &mut state, next, prompt.len() + step).to_vec();
        }
    }
    (max_diff, greedy)
}

#[test]
fn logits_and_greedy_match_transformers() {
    for v in VARIANTS {
        let dir = fixture(v);
        let model = Model::from_hf_path(&dir).unwrap_or_else(|e| panic!("{v}: {e}"));
        let reference = reference(&dir);
        let (diff, greedy) = run(&model, &reference);
        eprintln!("{v}: max |Δlogit| = {diff:.2e}");
        assert!(diff <= TOL, "{v}: max |Δlogit| = {diff} > {TOL}");
        assert_eq!(greedy, ids(&reference["greedy"]), "{v}: greedy continuation");
    }
}

#[test]
fn weights_stay_in_the_stored_dtype() {
    let f32_model = Model::from_hf_path(&fixture("f32-untied")).unwrap();
    let bf16 = Model::from_hf_path(&fixture("bf16-tied-sharded")).unwrap();
    let f16 = Model::from_hf_path(&fixture("f16-mqa-headdim")).unwrap();
    assert_eq!(f32_model.weights.layers[0].wq.type_name(), "F32");
    assert_eq!(bf16.weights.layers[1].w_down.type_name(), "BF16");
    assert_eq!(f16.weights.token_embd.type_name(), "F16");
    assert!(bf16.config.tied_embeddings && bf16.weights.output.is_none());
    assert!(!f32_model.config.tied_embeddings && f32_model.weights.output.is_some());
    // 2 bytes a weight for the matrices, as in the file (norms are widened to f32).
    let file_bytes: usize =
        Checkpoint::open(&fixture("bf16-tied-sharded")).unwrap().tensors.iter().map(|t| t.n_bytes()).sum();
    let norms = 4 * 64 * (2 * 2 + 1);
    assert_eq!(bf16.weights.resident_bytes(), file_bytes - norms / 2 + norms);
    assert_eq!(f16.config.q_dim(), 32);
    assert_eq!((f16.config.n_kv_heads, f16.config.rope_theta, f16.config.rms_eps), (1, 500.0, 1e-6));
}

#[test]
fn file_and_index_paths_load_the_same_model() {
    let dir = fixture("bf16-tied-sharded");
    let by_dir = Model::from_hf_path(&dir).unwrap();
    let by_index = Model::from_hf_path(&dir.join("model.safetensors.index.json")).unwrap();
    assert_eq!(by_dir.weights.layers[1].wk, by_index.weights.layers[1].wk);
    let single = fixture("f32-untied");
    let by_file = Model::from_hf_path(&single.join("model.safetensors")).unwrap();
    assert_eq!(by_file.config, Model::from_hf_path(&single).unwrap().config);
}

/// A copy of a fixture directory whose config.json and tensors can be edited.
pub(crate) struct Edited {
    pub(crate) dir: tempfile::TempDir,
}

impl Edited {
    pub(crate) fn new(variant: &str) -> Edited {
        let dir = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(fixture(variant)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
        Edited { dir }
    }

    pub(crate) fn config(&self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> &Self {
        let path = self.dir.path().join("config.json");
        let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(v.as_object_mut().unwrap());
        std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
        self
    }

    /// Rewrites the single-file checkpoint with `edit` applied to its (name, dtype, shape, bytes).
    fn tensors(&self, edit: impl FnOnce(&mut Vec<quantlab::io::Entry>)) -> &Self {
        let path = self.dir.path().join("model.safetensors");
        let ck = Checkpoint::open(&path).unwrap();
        let mut entries: Vec<_> =
            ck.tensors.iter().map(|t| (t.name.clone(), t.dtype, t.shape.clone(), ck.raw(t).to_vec())).collect();
        drop(ck);
        edit(&mut entries);
        std::fs::write(&path, serialize(&entries, Default::default()).unwrap()).unwrap();
        self
    }

    fn load(&self) -> Result<Model, ModelError> {
        Model::from_hf_path(self.dir.path())
    }
}

#[test]
fn transformers_4_config_keys_give_the_same_model() {
    // rope_theta at the top level and rope_scaling: null, as transformers 4 writes them.
    let e = Edited::new("f16-mqa-headdim");
    e.config(|c| {
        let theta = c.remove("rope_parameters").unwrap()["rope_theta"].clone();
        c.insert("rope_theta".into(), theta);
        c.insert("rope_scaling".into(), Value::Null);
    });
    let model = e.load().unwrap();
    assert_eq!(model.config.rope_theta, 500.0);
    let (diff, greedy) = run(&model, &reference(&fixture("f16-mqa-headdim")));
    assert!(diff <= TOL, "{diff}");
    assert_eq!(greedy, ids(&reference(&fixture("f16-mqa-headdim"))["greedy"]));
}

#[test]
fn unpermuted_rows_differ() {
    // The permutation is what makes the logits match: undo it on layer 0's q and the logits
    // move by far more than the tolerance.
    let dir = fixture("f32-untied");
    let mut model = Model::from_hf_path(&dir).unwrap();
    let Matrix::F32 { data, shape } = &mut model.weights.layers[0].wq else { panic!("f32 fixture") };
    let (hd, cols) = (model.config.head_dim, shape.cols);
    let permuted = data.clone();
    for h in 0..model.config.n_heads {
        for i in 0..hd / 2 {
            for a in 0..2 {
                let (dst, src) = (h * hd + a * hd / 2 + i, h * hd + 2 * i + a);
                data[dst * cols..(dst + 1) * cols].copy_from_slice(&permuted[src * cols..(src + 1) * cols]);
            }
        }
    }
    let (diff, _) = run(&model, &reference(&dir));
    assert!(diff > 100.0 * TOL, "{diff}");
}

#[test]
fn bad_checkpoints_are_refused_with_the_reason() {
    let msg = |r: Result<Model, ModelError>| r.unwrap_err().to_string();

    let e = msg(Edited::new("f32-untied")
        .config(|c| {
            c.insert("architectures".into(), serde_json::json!(["Qwen2ForCausalLM"]));
            c.insert("model_type".into(), "qwen2".into());
        })
        .load());
    assert!(e.contains("Qwen2ForCausalLM") && e.contains("supports LlamaForCausalLM"), "{e}");

    let e = msg(Edited::new("f32-untied")
        .config(|c| {
            c.insert("rope_scaling".into(), serde_json::json!({"rope_type": "llama3", "factor": 8.0}));
        })
        .load());
    assert!(e.contains("rope_scaling") && e.contains("llama3"), "{e}");

    let missing = "model.layers.1.mlp.up_proj.weight";
    let e = Edited::new("f32-untied").tensors(|t| t.retain(|t| t.0 != missing)).load().unwrap_err();
    assert_eq!(e, ModelError::MissingTensor { name: missing.into() });

    // k_proj with the rows of q_proj (4 heads instead of the 2 kv heads).
    let k = "model.layers.0.self_attn.k_proj.weight";
    let e = Edited::new("f32-untied")
        .tensors(|t| {
            let q = t.iter().find(|t| t.0 == "model.layers.0.self_attn.q_proj.weight").unwrap().clone();
            let slot = t.iter_mut().find(|t| t.0 == k).unwrap();
            (slot.2, slot.3) = (q.2, q.3);
        })
        .load()
        .unwrap_err();
    assert_eq!(e, ModelError::BadTensorShape { name: k.into(), expected: vec![32, 64], got: vec![64, 64] });
    assert!(e.to_string().contains("[64, 64], expected [32, 64]"), "{e}");

    let bias = "model.layers.0.self_attn.q_proj.bias";
    let e = Edited::new("f32-untied")
        .tensors(|t| t.push((bias.into(), safetensors::Dtype::F32, vec![64], vec![0; 256])))
        .load()
        .unwrap_err();
    assert!(matches!(&e, ModelError::UnexpectedTensor { name, .. } if name == bias), "{e}");

    let no_config = Edited::new("f32-untied");
    std::fs::remove_file(no_config.dir.path().join("config.json")).unwrap();
    assert_eq!(no_config.load().unwrap_err(), ModelError::NoHfConfig);

    let e = msg(Edited::new("f32-untied")
        .tensors(|t| {
            let emb = t.iter_mut().find(|t| t.0 == "model.embed_tokens.weight").unwrap();
            emb.1 = safetensors::Dtype::I32;
        })
        .load());
    assert!(e.contains("model.embed_tokens.weight") && e.contains("I32"), "{e}");
}

#[test]
fn cli_loader_reads_the_tokenizer_and_special_ids() {
    let dir = fixture("f32-untied");
    let reference = reference(&dir);
    let (model, tok, source) = quantlab::cli::load::load_model(&dir).unwrap();
    assert!(source.contains("Hugging Face safetensors"), "{source}");
    // bos/eos from generation_config.json.
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(2)));
    let prompt = tok.encode(reference["text"]["prompt"].as_str().unwrap(), tok.add_bos_default(), false);
    assert_eq!(prompt, ids(&reference["text"]["ids"]));
    let expected = ids(&reference["text"]["greedy"]);
    let mut state = State::new(&model.config, 64);
    let mut logits = Vec::new();
    for (pos, &t) in prompt.iter().enumerate() {
        logits = forward(&model.config, &model.weights, &mut state, t, pos).to_vec();
    }
    let mut greedy = vec![argmax(&logits)];
    for step in 1..expected.len() {
        let pos = prompt.len() + step - 1;
        greedy.push(argmax(forward(&model.config, &model.weights, &mut state, greedy[step - 1], pos)));
    }
    assert_eq!(greedy, expected);
}

pub(crate) fn quantlab(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

#[test]
fn cli_eval_perplexity_matches_transformers() {
    // Tolerance: the reference perplexity is exp of a float64 mean of log-softmaxes of
    // transformers' f32 logits; ours differ by ≤ 1e-5 per logit (above), so 1e-5 relative.
    let dir = fixture("f32-untied");
    let e = &reference(&dir)["eval"];
    let text = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(text.path(), e["text"].as_str().unwrap()).unwrap();
    let ctx = e["ctx"].to_string();
    let o = quantlab(&[
        "eval".as_ref(),
        dir.as_os_str(),
        "--text".as_ref(),
        text.path().as_os_str(),
        "--ctx".as_ref(),
        ctx.as_ref(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["tokens_scored"], e["tokens_scored"]);
    let (ppl, expected) = (report["rows"][0]["ppl"].as_f64().unwrap(), e["ppl"].as_f64().unwrap());
    assert!(((ppl - expected) / expected).abs() < 1e-5, "ppl {ppl} vs transformers {expected}");

    let o = quantlab(&[
        "generate".as_ref(),
        dir.as_os_str(),
        "-p".as_ref(),
        "Call me".as_ref(),
        "-n".as_ref(),
        "4".as_ref(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Hugging Face safetensors"));

    // A directory without tokenizer.json loads as a model but cannot run text.
    let o = quantlab(&["generate".as_ref(), fixture("bf16-tied-sharded").as_os_str(), "-p".as_ref(), "x".as_ref()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() == Some(1) && err.contains("tokenizer.json"), "{err}");
}

#[test]
fn cli_info_describes_a_checkpoint_without_loading_it() {
    let dir = fixture("bf16-tied-sharded");
    let o = quantlab(&["info".as_ref(), dir.as_os_str()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    for needle in ["LlamaForCausalLM", "num_key_value_heads", "model.layers.1.mlp.down_proj.weight", "20 x BF16"] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let o = quantlab(&["info".as_ref(), dir.as_os_str(), "--json".as_ref()]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["shards"].as_array().unwrap().len(), 2);
    assert_eq!(v["tensors"].as_array().unwrap().len(), 20);
    assert_eq!(v["config_error"], Value::Null);
    let total: u64 = v["tensors"].as_array().unwrap().iter().map(|t| t["bytes"].as_u64().unwrap()).sum();
    assert_eq!(v["tensor_bytes"].as_u64(), Some(total));

    // A config the forward refuses is described, with the reason, rather than an error.
    let e = Edited::new("f32-untied");
    e.config(|c| {
        c.insert("attention_bias".into(), Value::Bool(true));
    });
    let o = quantlab(&["info".as_ref(), e.dir.path().as_os_str()]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(o.status.success() && text.contains("not loadable") && text.contains("attention_bias"), "{text}");
}
