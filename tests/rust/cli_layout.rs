//! `quantlab quantize MODEL.gguf -f int4-… --layout gptq|awq -o DIR` end to end on the tiny
//! Hugging Face fixture (tests/fixtures/hf/f32-untied, converted to GGUF first): the directory
//! holds a config.json transformers' LlamaConfig reads and a model.safetensors whose linears,
//! unpacked as the loaders unpack them, are round to nearest of the checkpoint's own weights in
//! the checkpoint's own row order (llama.cpp's q/k permutation undone).

use std::path::{Path, PathBuf};

use half::f16;
use quantlab::cli::quantize::{self, QuantizeArgs};
use quantlab::cli::quantize_layout::LayoutArg;
use quantlab::formats::int::IntTensor;
use quantlab::formats::{QuantScheme, TensorShape};
use quantlab::io::gptq_layout::{unpack, Layout, Packed};
use quantlab::io::Checkpoint;
use quantlab::model::Config;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/hf/f32-untied")
}

/// The fixture converted to an F32 GGUF (q/k rows permuted as convert_hf_to_gguf.py does).
fn tiny_gguf(dir: &Path) -> PathBuf {
    let out = dir.join("tiny.gguf");
    quantize::run(&QuantizeArgs::new(fixture(), "f32", &out)).unwrap();
    out
}

fn layout_args(input: &Path, format: &str, layout: LayoutArg, out: &Path) -> QuantizeArgs {
    QuantizeArgs { layout: Some(layout), ..QuantizeArgs::new(input, format, out) }
}

fn read_config(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap()
}

/// What the linears of a written checkpoint must be, given the method that quantized them.
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Round to nearest of the fixture's weights, exactly.
    Rtn,
    /// Near the fixture's weights (GPTQ's codes differ from RTN's).
    Near,
    /// AWQ: `W·diag(s)` with the norm divided by `s`, so `W'[:, j]·norm'[j]` is near
    /// `W[:, j]·norm[j]` for the matrices reading a norm (v and up rows may also carry the next
    /// matrix's scales, so q, k and gate are compared).
    AwqScaled,
}

fn unpack_linear(st: &SafeTensors, prefix: &str, layout: Layout, shape: (usize, usize), q: &Value) -> Vec<f32> {
    let (bits, group) = (q["bits"].as_u64().unwrap() as u8, q["group_size"].as_u64().unwrap() as usize);
    let get = |k: &str| st.tensor(&format!("{prefix}.{k}")).unwrap();
    let (qw, qz, sc) = (get("qweight"), get("qzeros"), get("scales"));
    let gi = (layout == Layout::Gptq).then(|| get("g_idx"));
    let p = Packed { qweight: qw.data(), qzeros: qz.data(), scales: sc.data(), g_idx: gi.as_ref().map(|g| g.data()) };
    unpack(prefix, layout, shape, bits, group, &p).unwrap().dequantize()
}

fn relative_error(got: &[f32], want: &[f32]) -> f64 {
    let err = got.iter().zip(want).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>();
    err / want.iter().map(|b| f64::from(*b).powi(2)).sum::<f64>()
}

fn f32_tensor(st: &SafeTensors, name: &str) -> Vec<f32> {
    let v = st.tensor(name).unwrap();
    assert_eq!(v.dtype(), Dtype::F32, "{name}");
    v.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// AWQ's folded scales: each matrix reading a norm, times that norm, is the fixture's product.
fn check_awq_scaled(st: &SafeTensors, ck: &Checkpoint, q: &Value) {
    let norm = |name: &str| ck.tensor_f32(ck.tensor(name).unwrap()).unwrap();
    let reads = [
        ("self_attn.q_proj", "input_layernorm"),
        ("self_attn.k_proj", "input_layernorm"),
        ("mlp.gate_proj", "post_attention_layernorm"),
    ];
    for l in 0..2 {
        for (m, n) in reads {
            let t = ck.tensor(&format!("model.layers.{l}.{m}.weight")).unwrap();
            let (rows, cols) = (t.shape[0], t.shape[1]);
            let w = ck.tensor_f32(t).unwrap();
            let prefix = format!("model.layers.{l}.{m}");
            let got = unpack_linear(st, &prefix, Layout::Awq, (rows, cols), q);
            let norm_name = format!("model.layers.{l}.{n}.weight");
            let (before, after) = (norm(&norm_name), f32_tensor(st, &norm_name));
            assert_ne!(before, after, "{prefix}: AWQ scaled no norm");
            let scaled = |v: &[f32], norm: &[f32]| -> Vec<f32> {
                v.iter().enumerate().map(|(i, x)| x * norm[i % cols]).collect()
            };
            let e = relative_error(&scaled(&got, &after), &scaled(&w, &before));
            assert!(e < 0.05, "{prefix}: relative squared error {e}");
        }
    }
}

/// Checks the written directory against the fixture: the config, every tensor's dtype and
/// shape, and the linears as `expect` says.
fn check_checkpoint(out: &Path, layout: Layout, scheme: &str, expect: Expect) -> Value {
    let mut config = read_config(out);
    let q = config.as_object_mut().unwrap().remove("quantization_config").unwrap();
    let original: Value = serde_json::from_slice(&std::fs::read(fixture().join("config.json")).unwrap()).unwrap();
    assert_eq!(Config::from_hf_config(&config).unwrap(), Config::from_hf_config(&original).unwrap());
    assert_eq!((config["bos_token_id"].as_u64(), config["eos_token_id"].as_u64()), (Some(1), Some(2)));

    let scheme = QuantScheme::parse(scheme).unwrap();
    let (bits, group) = (q["bits"].as_u64().unwrap() as u8, q["group_size"].as_u64().unwrap() as usize);
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let ck = Checkpoint::open(&fixture().join("model.safetensors")).unwrap();
    let mut seen = 0;
    for t in &ck.tensors {
        let want = ck.tensor_f32(t).unwrap();
        if t.shape.len() == 2 && t.name.starts_with("model.layers.") {
            let prefix = t.name.strip_suffix(".weight").unwrap();
            let get = |k: &str| st.tensor(&format!("{prefix}.{k}")).unwrap();
            let (rows, cols) = (t.shape[0], t.shape[1]);
            let (qw, qz, sc) = (get("qweight"), get("qzeros"), get("scales"));
            assert_eq!((qw.dtype(), qz.dtype(), sc.dtype()), (Dtype::I32, Dtype::I32, Dtype::F16), "{prefix}");
            assert_eq!(sc.shape(), [cols / group, rows], "{prefix}");
            let gi = (layout == Layout::Gptq).then(|| get("g_idx"));
            match layout {
                Layout::Gptq => {
                    assert_eq!(qw.shape(), [cols * bits as usize / 32, rows], "{prefix}");
                    assert_eq!(gi.as_ref().unwrap().shape(), [cols], "{prefix}");
                }
                Layout::Awq => assert_eq!(qw.shape(), [cols, rows * bits as usize / 32], "{prefix}"),
            }
            assert_eq!(qz.shape(), [cols / group, rows * bits as usize / 32], "{prefix}");
            let got = unpack_linear(&st, prefix, layout, (rows, cols), &q);
            match expect {
                Expect::Rtn => {
                    let rtn = IntTensor::quantize(&scheme, &want, TensorShape::new(rows, cols)).unwrap();
                    assert_eq!(got, rtn.dequantize(), "{prefix}: not round to nearest of the checkpoint's rows");
                }
                // The weight is the same up to the grid: a permuted row would be far off.
                Expect::Near => assert!(relative_error(&got, &want) < 0.05, "{prefix}"),
                Expect::AwqScaled => {}
            }
            seen += 1;
        } else {
            let v = st.tensor(&t.name).unwrap();
            assert_eq!(v.shape(), &t.shape[..], "{}", t.name);
            let got: Vec<f32> = match v.dtype() {
                Dtype::F32 => v.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
                Dtype::F16 => v.data().chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
                d => panic!("{}: {d:?}", t.name),
            };
            assert_eq!(v.dtype() == Dtype::F32, t.shape.len() == 1, "{}: norms F32, matrices F16", t.name);
            let want: Vec<f32> = match v.dtype() {
                Dtype::F16 => want.iter().map(|&x| f16::from_f32(x).to_f32()).collect(),
                _ => want,
            };
            if expect != Expect::AwqScaled || !t.name.contains("layernorm") {
                assert_eq!(got, want, "{}", t.name);
            }
        }
    }
    if expect == Expect::AwqScaled {
        check_awq_scaled(&st, &ck, &q);
    }
    assert_eq!(seen, 14);
    let quantized_keys = if layout == Layout::Gptq { 4 } else { 3 };
    assert_eq!(st.names().len(), ck.tensors.len() - 14 + 14 * quantized_keys);
    q
}

#[test]
fn layout_export_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = tiny_gguf(dir.path());

    let out = dir.path().join("gptq");
    let report = quantize::run(&layout_args(&gguf, "int4-asym-g32", LayoutArg::Gptq, &out)).unwrap();
    assert!(report.contains("GPTQ layout") && report.contains("14 linear layers"), "{report}");
    let q = check_checkpoint(&out, Layout::Gptq, "int4-asym-g32", Expect::Rtn);
    let want = serde_json::json!({"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": false,
        "static_groups": false, "sym": false, "true_sequential": true, "checkpoint_format": "gptq"});
    assert_eq!(q, want);

    let out = dir.path().join("awq");
    quantize::run(&layout_args(&gguf, "int4-sym-g32", LayoutArg::Awq, &out)).unwrap();
    let q = check_checkpoint(&out, Layout::Awq, "int4-sym-g32", Expect::Rtn);
    let want =
        serde_json::json!({"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": true, "version": "gemm"});
    assert_eq!(q, want);

    // GPTQ itself, act-order (static groups: g_idx stays i / 32), on a short calibration text.
    let text = dir.path().join("calib.txt");
    std::fs::write(&text, "Call me Ishmael. Some years ago, never mind how long precisely. ".repeat(40)).unwrap();
    let out = dir.path().join("gptq-act");
    let mut args = layout_args(&gguf, "int8-sym-g32", LayoutArg::Gptq, &out);
    args.method.method = quantize::Method::Gptq;
    args.method.act_order = true;
    args.method.calib = Some(text);
    args.method.calib_tokens = 256;
    let report = quantize::run(&args).unwrap();
    assert!(report.contains("GPTQ quantized 14 tensors; 0 rounded to nearest"), "{report}");
    let q = check_checkpoint(&out, Layout::Gptq, "int8-sym-g32", Expect::Near);
    assert_eq!(
        (q["desc_act"].as_bool(), q["static_groups"].as_bool(), q["bits"].as_u64()),
        (Some(true), Some(true), Some(8))
    );

    // AWQ: the scaled norms go into the file with the scaled matrices.
    let out = dir.path().join("awq-method");
    let mut args = layout_args(&gguf, "int4-asym-g32", LayoutArg::Awq, &out);
    args.method.method = quantize::Method::Awq;
    args.method.calib = Some(dir.path().join("calib.txt"));
    args.method.calib_tokens = 256;
    let report = quantize::run(&args).unwrap();
    assert!(report.contains("AWQ quantized 14 tensors; 0 rounded to nearest"), "{report}");
    check_checkpoint(&out, Layout::Awq, "int4-asym-g32", Expect::AwqScaled);

    // HQQ (calibration-free): its zero points are integers of the same grid.
    let out = dir.path().join("hqq");
    let mut args = layout_args(&gguf, "int4-asym-g32", LayoutArg::Awq, &out);
    args.method.method = quantize::Method::Hqq;
    let report = quantize::run(&args).unwrap();
    assert!(report.contains("HQQ quantized 14 tensors; 0 rounded to nearest"), "{report}");
    check_checkpoint(&out, Layout::Awq, "int4-asym-g32", Expect::Near);
}

#[test]
fn layout_export_errors() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = tiny_gguf(dir.path());
    let out = dir.path().join("o");
    let run = |format: &str, layout| quantize::run(&layout_args(&gguf, format, layout, &out)).unwrap_err().to_string();
    let e = run("int3-asym-g32", LayoutArg::Gptq);
    assert!(e.contains("3-bit codes cannot be written in the GPTQ layout"), "{e}");
    let e = run("int8-asym-g32", LayoutArg::Awq);
    assert!(e.contains("4-bit codes only"), "{e}");
    let e = run("q4_0", LayoutArg::Gptq);
    assert!(e.contains("not an integer format"), "{e}");
    let e = run("q4_k_m", LayoutArg::Gptq);
    assert!(e.contains("--layout GPTQ"), "{e}");
    let e = run("int4-sym-channel", LayoutArg::Gptq);
    assert!(e.contains("f32 scale per output channel"), "{e}");
    let e = run("int4-asym-g128", LayoutArg::Awq);
    assert!(e.contains("blk.0.attn_q.weight") && e.contains("not a multiple of the group size 128"), "{e}");
    assert!(!out.exists(), "nothing written on an error");

    let mut args = layout_args(&gguf, "int4-sym-g32", LayoutArg::Gptq, &out);
    args.pure = true;
    assert!(quantize::run(&args).unwrap_err().to_string().contains("--pure does not apply with --layout"));

    // The output directory over the input: the input file is DIR/model.safetensors.
    let inside = dir.path().join("over");
    std::fs::create_dir(&inside).unwrap();
    let input = inside.join("model.safetensors");
    std::fs::copy(&gguf, &input).unwrap();
    let e = quantize::run(&layout_args(&input, "int4-sym-g32", LayoutArg::Gptq, &inside)).unwrap_err().to_string();
    assert!(e.contains("is the input file"), "{e}");
    assert_eq!(std::fs::read(&input).unwrap(), std::fs::read(&gguf).unwrap());
    // A safetensors checkpoint as input.
    let e = quantize::run(&layout_args(&fixture().join("model.safetensors"), "int4-sym-g32", LayoutArg::Gptq, &out))
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a GGUF model file"), "{e}");
    // A file as the output directory.
    let e = quantize::run(&layout_args(&gguf, "int4-sym-g32", LayoutArg::Gptq, &gguf)).unwrap_err().to_string();
    assert!(e.contains("writes a directory"), "{e}");
}
