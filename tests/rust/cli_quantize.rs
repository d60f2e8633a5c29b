//! `quantlab quantize`: the default model to q8_0 / q4_0 read back and checked against
//! `quantize_row`, the tensor policy on small built files, safetensors checkpoints, errors.

use crate::gguf::model_path;
use crate::io::write_sharded;
use quantlab::cli::quantize::{self, QuantizeArgs};
use quantlab::formats::{self, dequantize_row, quantize_row, QuantScheme, TensorShape};
use quantlab::gguf::{GgmlType, GgufFile, MetadataValue, TensorInfo};
use quantlab::io::gguf_writer::GgufWriter;
use quantlab::io::safetensors::{self as st, Checkpoint};
use safetensors::Dtype;
use std::path::{Path, PathBuf};
use std::process::Command;

fn args(input: &Path, format: &str, output: &Path, all_tensors: bool) -> QuantizeArgs {
    // One type everywhere: these tests check the format on every weight (the file types'
    // per-tensor rules are tests/rust/presets.rs).
    QuantizeArgs { all_tensors, pure: true, ..QuantizeArgs::new(input, format, output) }
}

fn run(input: &Path, format: &str, output: &Path) -> Result<String, String> {
    quantize::run(&args(input, format, output, false)).map_err(|e| e.to_string())
}

fn read(path: &Path) -> (Vec<u8>, GgufFile) {
    let bytes = std::fs::read(path).unwrap();
    let f = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    (bytes, f)
}

fn decode(f: &GgufFile, bytes: &[u8], t: &TensorInfo) -> Vec<f32> {
    let mut v = vec![0f32; t.n_elements() as usize];
    dequantize_row(t.ty, f.tensor_data(bytes, t).unwrap(), &mut v).unwrap();
    v
}

fn encode(ty: GgmlType, v: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; ty.bytes_for(v.len() as u64).unwrap() as usize];
    quantize_row(ty, v, &mut out).unwrap();
    out
}

/// Quantizes the default model to `ty` and checks the result tensor by tensor.
fn check_default_model(ty: GgmlType, ftype: u32) {
    let Some(model) = model_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.gguf");
    let report = run(&model, &ty.name().to_lowercase(), &out).unwrap();
    assert!(report.contains("tensor data") && report.contains("bits per weight"), "{report}");
    assert!(!dir.path().join("out.gguf.partial").exists());

    let (src_bytes, src) = read(&model);
    let (out_bytes, dst) = read(&out);
    // Metadata: every key in order, file type and quantization version updated.
    let added = usize::from(src.get("general.quantization_version").is_none());
    assert_eq!(dst.metadata.len(), src.metadata.len() + added);
    for ((k1, v1), (k2, v2)) in src.metadata.iter().zip(&dst.metadata) {
        assert_eq!(k1, k2);
        if k1 != "general.file_type" {
            assert_eq!(v1, v2, "{k1}");
        }
    }
    assert_eq!(dst.get("general.file_type"), Some(&MetadataValue::U32(ftype)));
    assert_eq!(dst.get("general.quantization_version"), Some(&MetadataValue::U32(2)));
    assert_eq!(dst.tensors.len(), src.tensors.len());
    let (mut quantized, mut copied) = (0, 0);
    for (s, d) in src.tensors.iter().zip(&dst.tensors) {
        assert_eq!((&s.name, &s.dims), (&d.name, &d.dims));
        if s.dims.len() == 1 {
            assert_eq!(d.ty, GgmlType::F32, "{}: 1-D stays F32", d.name);
        } else {
            assert_eq!(d.ty, ty, "{}: every weight of this model fits the 32-block", d.name);
        }
        let got = dst.tensor_data(&out_bytes, d).unwrap();
        if s.ty == d.ty {
            assert_eq!(got, src.tensor_data(&src_bytes, s).unwrap(), "{}: copied unchanged", d.name);
            copied += 1;
        } else {
            let want = encode(ty, &decode(&src, &src_bytes, s));
            assert!(got == want.as_slice(), "{}: bytes equal quantize_row of the dequantized source", d.name);
            quantized += 1;
        }
    }
    let n_src_ty = src.tensors.iter().filter(|t| t.ty == ty).count();
    assert_eq!((quantized, copied), (211 - n_src_ty, 61 + n_src_ty));
    assert!(report.contains(&format!("{} x {}", 211, ty.name())), "{report}");
}

#[test]
fn default_model_to_q8_0() {
    check_default_model(GgmlType::Q8_0, 7);
}

#[test]
fn default_model_to_q4_0() {
    check_default_model(GgmlType::Q4_0, 2);
}

/// A small GGUF: 2-D weights of several row lengths, a norm, a non-weight 2-D tensor, and a
/// Q4_1 weight, so every branch of the policy shows up.
pub fn tiny_gguf(dir: &Path, poison: Option<(usize, f32)>) -> PathBuf {
    let mut w = GgufWriter::new();
    w.set("general.architecture", MetadataValue::String("llama".into())).unwrap();
    w.set("general.file_type", MetadataValue::U32(0)).unwrap();
    w.set("tokenizer.ggml.tokens", MetadataValue::Array(quantlab::gguf::MetadataArray::String(vec!["a".into()])))
        .unwrap();
    let tensors: [(&str, &[u64], GgmlType); 6] = [
        ("token_embd.weight", &[256, 4], GgmlType::F32),
        ("blk.0.attn_q.weight", &[512, 2], GgmlType::F16),
        ("blk.0.ffn_down.weight", &[48, 3], GgmlType::F32),
        ("blk.0.attn_norm.weight", &[256], GgmlType::F32),
        ("blk.0.ffn_up.weight", &[96, 2], GgmlType::Q4_1),
        ("rope_freqs", &[32, 2], GgmlType::F32),
    ];
    let mut data = Vec::new();
    for (i, (name, dims, ty)) in tensors.iter().enumerate() {
        w.add_tensor(name, dims, *ty).unwrap();
        let n = dims.iter().product::<u64>() as usize;
        let mut v: Vec<f32> = (0..n).map(|j| ((j * 7 + i * 13) % 29) as f32 / 7.0 - 2.0).collect();
        if let Some((at, x)) = poison.filter(|_| i == 0) {
            v[at] = x;
        }
        // F32 bytes directly: `quantize_row` refuses the NaN we plant on purpose.
        data.push(if *ty == GgmlType::F32 {
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        } else {
            encode(*ty, &v)
        });
    }
    let path = dir.join("tiny.gguf");
    std::fs::write(&path, w.to_bytes(&data).unwrap()).unwrap();
    path
}

#[test]
fn policy_on_built_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let input = tiny_gguf(dir.path(), None);
    let out = dir.path().join("q8.gguf");
    let report = run(&input, "q8_0", &out).unwrap();
    let (_, f) = read(&out);
    let types: Vec<(&str, GgmlType)> = f.tensors.iter().map(|t| (t.name.as_str(), t.ty)).collect();
    assert_eq!(
        types,
        [
            ("token_embd.weight", GgmlType::Q8_0),
            ("blk.0.attn_q.weight", GgmlType::Q8_0),
            ("blk.0.ffn_down.weight", GgmlType::F32), // row 48: not a multiple of 32
            ("blk.0.attn_norm.weight", GgmlType::F32),
            ("blk.0.ffn_up.weight", GgmlType::Q8_0),
            ("rope_freqs", GgmlType::F32), // not a 'weight'
        ]
    );
    assert!(
        report.contains(
            "note: blk.0.ffn_down.weight: row length 48 is not a multiple of the 32-value block of q8_0; kept as it is"
        ),
        "{report}"
    );
    assert_eq!(f.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap().len(), 1);

    // --all-tensors also takes the 2-D non-weight; the 1-D norm and the misfit row still stay.
    let all = dir.path().join("all.gguf");
    quantize::run(&args(&input, "q8_0", &all, true)).unwrap();
    let (_, f) = read(&all);
    assert_eq!(f.tensor("rope_freqs").unwrap().ty, GgmlType::Q8_0);
    assert_eq!(f.tensor("blk.0.attn_norm.weight").unwrap().ty, GgmlType::F32);
    assert_eq!(f.tensor("blk.0.ffn_down.weight").unwrap().ty, GgmlType::F32);

    // A Q4_1 weight whose row does not fit the 256-block falls back to Q5_0 (llama.cpp's
    // fallback for Q4_K, 96 being a multiple of 32); an F32 one whose row fits neither stays.
    if formats::can_quantize(GgmlType::Q4_K) {
        let k = dir.path().join("q4k.gguf");
        let report = run(&input, "q4_k", &k).unwrap();
        let (_, f) = read(&k);
        assert_eq!(f.tensor("token_embd.weight").unwrap().ty, GgmlType::Q4_K);
        assert_eq!(f.tensor("blk.0.attn_q.weight").unwrap().ty, GgmlType::Q4_K);
        assert_eq!(f.tensor("blk.0.ffn_up.weight").unwrap().ty, GgmlType::Q5_0);
        assert_eq!(f.tensor("blk.0.ffn_down.weight").unwrap().ty, GgmlType::F32);
        assert!(
            report.contains(
                "blk.0.ffn_up.weight: row length 96 is not a multiple of the 256-value block of q4_k; using q5_0"
            ),
            "{report}"
        );
        assert_eq!(f.get("general.file_type"), Some(&MetadataValue::U32(14)));
    } else {
        eprintln!("note: Q4_K quantizer not available yet; q4_k policy check skipped");
    }

    // f16 target: weights to F16, the F16 one copied.
    let h = dir.path().join("f16.gguf");
    run(&input, "f16", &h).unwrap();
    let (_, f) = read(&h);
    assert_eq!(f.tensor("blk.0.ffn_up.weight").unwrap().ty, GgmlType::F16);
    assert_eq!(f.tensor("blk.0.ffn_down.weight").unwrap().ty, GgmlType::F16, "F16 has no block constraint");
    assert_eq!(f.get("general.file_type"), Some(&MetadataValue::U32(1)));
}

#[test]
fn errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let input = tiny_gguf(dir.path(), None);
    let out = dir.path().join("o.gguf");

    let e = run(&input, "q9_9", &out).unwrap_err();
    assert!(
        e.contains("unknown format 'q9_9'") && e.contains("Valid formats") && e.contains("int8-sym-channel"),
        "{e}"
    );
    let e = run(&input, "q8_0", &dir.path().join("o.safetensors")).unwrap_err();
    assert!(e.contains("q8_0 is a GGUF") && e.contains("o.gguf"), "{e}");
    let e = run(&input, "int8-sym-channel", &out).unwrap_err();
    assert!(e.contains("cannot be stored in GGUF") && e.contains("o.safetensors"), "{e}");
    let e = run(&input, "q8_0", &dir.path().join("o.bin")).unwrap_err();
    assert!(e.contains("must end in .gguf or .safetensors"), "{e}");
    let e = run(&dir.path().join("missing.gguf"), "q8_0", &out).unwrap_err();
    assert!(e.contains("no such file"), "{e}");
    let e = run(&input, "q8_0", &input).unwrap_err();
    assert!(e.contains("overwrite the input"), "{e}");

    // NaN: the tensor and the position are named, and no output is left behind.
    let nan_dir = tempfile::tempdir().unwrap();
    let poisoned = tiny_gguf(nan_dir.path(), Some((256 * 2 + 5, f32::NAN)));
    let bad_out = nan_dir.path().join("nan.gguf");
    let e = run(&poisoned, "q8_0", &bad_out).unwrap_err();
    assert!(e.contains("tensor 'token_embd.weight'") && e.contains("row 2, column 5") && e.contains("NaN"), "{e}");
    assert!(!bad_out.exists() && !nan_dir.path().join("nan.gguf.partial").exists());
    let inf = tiny_gguf(nan_dir.path(), Some((7, f32::INFINITY)));
    let e = run(&inf, "q4_0", &bad_out).unwrap_err();
    assert!(e.contains("row 0, column 7") && e.contains("inf"), "{e}");

    // Through the binary: exit code 1 and one error line.
    let o = Command::new(env!("CARGO_BIN_EXE_quantlab"))
        .args(["quantize".as_ref(), input.as_os_str(), "-f".as_ref(), "awq".as_ref(), "-o".as_ref(), out.as_os_str()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.starts_with("quantlab: error: unknown format 'awq'"), "{err}");
    let help = Command::new(env!("CARGO_BIN_EXE_quantlab")).args(["quantize", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--all-tensors") && help.contains("token_embd.weight and output.weight"), "{help}");
}

#[test]
fn sharded_safetensors_to_f16_and_bf16() {
    let dir = tempfile::tempdir().unwrap();
    let expected = write_sharded(dir.path());
    let out = dir.path().join("out").with_extension("safetensors");

    // A safetensors input becomes a GGUF model only as a complete Hugging Face LLaMA checkpoint
    // (tests/rust/hf_convert.rs converts those); this one's config.json lacks hyper-parameters.
    let e = run(dir.path(), "q8_0", &dir.path().join("x.gguf")).unwrap_err();
    assert!(e.contains("config.json: 'intermediate_size' is missing"), "{e}");
    assert!(!dir.path().join("x.gguf").exists());

    let report = quantize::run(&args(dir.path(), "f16", &out, true)).unwrap();
    assert!(report.contains("input tensors") && report.contains("F16"), "{report}");
    let ck = Checkpoint::open(&out).unwrap();
    assert_eq!(ck.metadata[st::FORMAT_KEY], "f16");
    assert_eq!(ck.metadata["format"], "pt", "source __metadata__ kept");
    let dtype = |n: &str| ck.tensor(n).unwrap().dtype;
    assert_eq!(dtype("model.embed_tokens.weight"), Dtype::F16);
    assert_eq!(dtype("model.layers.0.self_attn.q_proj.weight"), Dtype::F16);
    assert_eq!(dtype("model.layers.0.mlp.up_proj.weight"), Dtype::F16);
    assert_eq!(dtype("model.norm.weight"), Dtype::F32, "1-D stays");
    assert_eq!(dtype("model.position_ids"), Dtype::I64, "non-float copied");
    for (name, src) in &expected {
        let t = ck.tensor(name).unwrap();
        assert_eq!(t.shape, Checkpoint::open(dir.path()).unwrap().tensor(name).unwrap().shape);
        if t.dtype == Dtype::F16 {
            assert_eq!(ck.raw(t), encode(GgmlType::F16, src), "{name}");
        }
    }

    // bf16 with the default policy; shards given as the index file.
    let b = dir.path().join("b.safetensors");
    run(&dir.path().join("model.safetensors.index.json"), "bf16", &b).unwrap();
    let ck = Checkpoint::open(&b).unwrap();
    let t = ck.tensor("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert_eq!(t.dtype, Dtype::BF16);
    assert_eq!(ck.raw(t), encode(GgmlType::BF16, &expected[1].1));
    assert_eq!(ck.tensor("model.layers.0.mlp.up_proj.weight").unwrap().dtype, Dtype::BF16, "already bf16: copied");
}

#[test]
fn safetensors_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_sharded(dir.path());
    let out = dir.path().join("o.safetensors");
    let shard = dir.path().join("model-00001-of-00002.safetensors");
    let saved = std::fs::read(&shard).unwrap();

    std::fs::write(&shard, &saved[..saved.len() / 2]).unwrap();
    let e = run(dir.path(), "f16", &out).unwrap_err();
    assert!(e.contains("model-00001-of-00002.safetensors") && e.contains("truncated"), "{e}");
    std::fs::remove_file(&shard).unwrap();
    let e = run(dir.path(), "f16", &out).unwrap_err();
    assert!(e.contains("does not exist") && e.contains("model-00001-of-00002.safetensors"), "{e}");
    std::fs::write(&shard, &saved).unwrap();

    // A NaN in a safetensors tensor.
    let nan = dir.path().join("nan");
    std::fs::create_dir(&nan).unwrap();
    let mut v = vec![0.5f32; 64 * 2];
    v[64 + 3] = f32::NAN;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    st::write_safetensors(
        &nan.join("model.safetensors"),
        &[("w.weight".into(), Dtype::F32, vec![2, 64], bytes)],
        Default::default(),
    )
    .unwrap();
    let e = run(&nan, "bf16", &out).unwrap_err();
    assert!(e.contains("tensor 'w.weight'") && e.contains("row 1, column 3"), "{e}");
}

#[test]
fn int_and_fp8_to_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let expected = write_sharded(dir.path());
    let check = |format: &str, parts: &[&str]| {
        let out = dir.path().join(format!("{format}.safetensors"));
        let report = run(dir.path(), format, &out).unwrap();
        let ck = Checkpoint::open(&out).unwrap();
        assert_eq!(ck.metadata[st::FORMAT_KEY], QuantScheme::parse(format).unwrap().name(), "{report}");
        // Every quantized weight's entries equal `quantized_entries` of `quantize` on its values.
        for (name, values) in &expected[..3] {
            let src = Checkpoint::open(dir.path()).unwrap();
            let shape = src.tensor(name).unwrap().shape.clone();
            let ts = TensorShape::new(shape[0], shape[1]);
            let q = formats::quantize(&QuantScheme::parse(format).unwrap(), values, ts).unwrap();
            for (ename, dtype, eshape, bytes) in st::quantized_entries(name, &q, &shape).unwrap() {
                let t = ck.tensor(&ename).unwrap_or_else(|| panic!("{format}: {ename} missing"));
                assert_eq!((t.dtype, &t.shape, ck.raw(t)), (dtype, &eshape, bytes.as_slice()), "{ename}");
            }
            for p in parts {
                assert!(ck.tensor(&format!("{name}{p}")).is_some(), "{format}: {name}{p}");
            }
        }
        assert_eq!(ck.tensor("model.norm.weight").unwrap().dtype, Dtype::F32);
        ck
    };
    let ck = check("int8-sym-channel", &["", ".scale", ".shape"]);
    let w = ck.tensor("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert_eq!((w.dtype, w.shape.as_slice()), (Dtype::U8, &[8usize, 64][..]));
    assert_eq!(ck.tensor("model.layers.0.self_attn.q_proj.weight.scale").unwrap().shape, [8]);
    let ck = check("int4-asym-g32", &["", ".scale", ".zero_point", ".shape"]);
    let s = ck.tensor("model.layers.0.mlp.up_proj.weight.scale").unwrap();
    assert_eq!((s.dtype, s.shape.as_slice()), (Dtype::F16, &[8usize, 4][..]));
    assert_eq!(ck.tensor("model.layers.0.mlp.up_proj.weight").unwrap().shape, [8 * 128 / 2]);
    let ck = check("fp8-e4m3", &["", ".scale"]);
    let w = ck.tensor("model.embed_tokens.weight").unwrap();
    assert_eq!((w.dtype, w.shape.as_slice()), (Dtype::F8_E4M3, &[4usize, 64][..]));
    // Dequantizing from the file alone: decode(code) * scale equals the quantizer's output.
    let scale = f32::from_le_bytes(ck.raw(ck.tensor("model.embed_tokens.weight.scale").unwrap()).try_into().unwrap());
    let q =
        formats::quantize(&QuantScheme::parse("fp8-e4m3").unwrap(), &expected[0].1, TensorShape::new(4, 64)).unwrap();
    let from_file: Vec<f32> = ck.raw(w).iter().map(|&c| formats::fp8::decode_e4m3(c) * scale).collect();
    assert_eq!(from_file, q.dequantize().unwrap());
    check("fp8-e5m2-channel", &["", ".scale"]);

    // A group that does not divide a row: reported, the largest dividing power-of-two group used.
    let out = dir.path().join("g128.safetensors");
    let report = run(dir.path(), "int4-sym-g128", &out).unwrap();
    assert!(
        report.contains("model.embed_tokens.weight: row length 64 is not a multiple of the 128-value block"),
        "{report}"
    );
    let ck = Checkpoint::open(&out).unwrap();
    assert!(report.contains("using int4-sym-g64"), "{report}");
    assert!(ck.tensor("model.embed_tokens.weight.scale").is_some());
    assert!(ck.tensor("model.layers.0.mlp.up_proj.weight.scale").is_some());
}
