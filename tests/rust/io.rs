//! GGUF writer (round trips through our reader, llama.cpp's layout rules) and safetensors I/O
//! (single file, sharded with an index, errors).

use crate::gguf::model_path;
use quantlab::gguf::{GgmlType, GgufFile, MetadataArray, MetadataValue};
use quantlab::io::gguf_writer::{llama_ftype, pad, GgufWriteError, GgufWriter};
use quantlab::io::safetensors::{self as st, Checkpoint, Entry, SafetensorsError};
use safetensors::Dtype;
use std::path::Path;

/// One key of every value type, arrays of every element type, nested arrays, unicode.
fn all_value_types() -> Vec<(String, MetadataValue)> {
    use MetadataArray as A;
    use MetadataValue as M;
    [
        ("general.architecture", M::String("llama".into())),
        ("t.u8", M::U8(200)),
        ("t.i8", M::I8(-3)),
        ("t.u16", M::U16(65000)),
        ("t.i16", M::I16(-30000)),
        ("t.u32", M::U32(4_000_000_000)),
        ("t.i32", M::I32(-2_000_000_000)),
        ("t.f32", M::F32(1e-5)),
        ("t.bool", M::Bool(true)),
        ("t.str", M::String("héllo \"wörld\"\n".into())),
        ("t.u64", M::U64(u64::MAX)),
        ("t.i64", M::I64(i64::MIN)),
        ("t.f64", M::F64(-0.125)),
        ("a.u8", M::Array(A::U8(vec![1, 2, 3]))),
        ("a.i8", M::Array(A::I8(vec![-1, 0, 1]))),
        ("a.u16", M::Array(A::U16(vec![7]))),
        ("a.i16", M::Array(A::I16(vec![-7, 7]))),
        ("a.u32", M::Array(A::U32(vec![]))),
        ("a.i32", M::Array(A::I32(vec![i32::MIN, i32::MAX]))),
        ("a.f32", M::Array(A::F32(vec![0.5, -1.5]))),
        ("a.bool", M::Array(A::Bool(vec![true, false, true]))),
        ("a.str", M::Array(A::String(vec!["a".into(), "".into(), "ü".into()]))),
        ("a.u64", M::Array(A::U64(vec![1 << 40]))),
        ("a.i64", M::Array(A::I64(vec![-(1 << 40)]))),
        ("a.f64", M::Array(A::F64(vec![1e300]))),
        ("a.nested", M::Array(A::Array(vec![A::U8(vec![1]), A::String(vec!["x".into()])]))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn q8_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; GgmlType::Q8_0.bytes_for(v.len() as u64).unwrap() as usize];
    quantlab::formats::quantize_row(GgmlType::Q8_0, v, &mut out).unwrap();
    out
}

#[test]
fn writer_round_trips_metadata_and_tensors() {
    let mut w = GgufWriter::with_metadata(all_value_types()).unwrap();
    let a = values(64 * 3, 1);
    let b = values(32 * 2, 2);
    let c = values(5, 3);
    w.add_tensor("blk.0.attn_q.weight", &[64, 3], GgmlType::F32).unwrap();
    w.add_tensor("blk.0.ffn_up.weight", &[32, 2], GgmlType::Q8_0).unwrap();
    w.add_tensor("norm.weight", &[5], GgmlType::F32).unwrap();
    let data = [f32_bytes(&a), q8_bytes(&b), f32_bytes(&c)];
    let file = w.to_bytes(&data).unwrap();
    assert_eq!(file.len() as u64, w.file_len());

    let f = GgufFile::parse(&file, file.len() as u64).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.metadata, all_value_types(), "every value type, in order");
    assert_eq!(f.alignment, 32);
    assert_eq!(f.tensors, w.tensors());
    for (t, d) in f.tensors.iter().zip(&data) {
        assert_eq!(f.tensor_data(&file, t).unwrap(), d.as_slice(), "{}", t.name);
    }
    // Writing what we read gives the same bytes.
    let mut again = GgufWriter::with_metadata(f.metadata.clone()).unwrap();
    for t in &f.tensors {
        again.add_tensor(&t.name, &t.dims, t.ty).unwrap();
    }
    assert_eq!(again.to_bytes(&data).unwrap(), file);
    assert_eq!(w.llama_cpp_problems().len(), 1, "the nested array is flagged");
}

#[test]
fn writer_follows_llama_cpp_layout() {
    // 64-byte alignment: the key is written as a u32, the data section and every tensor
    // (the last one too) are padded to it, offsets are the running padded sums.
    let mut w = GgufWriter::new();
    w.set("general.architecture", MetadataValue::String("x".into())).unwrap();
    w.set_alignment(64).unwrap();
    let sizes = [(vec![3u64], GgmlType::F32), (vec![32, 1], GgmlType::Q4_0), (vec![7, 2], GgmlType::F16)];
    for (i, (dims, ty)) in sizes.iter().enumerate() {
        w.add_tensor(&format!("t{i}"), dims, *ty).unwrap();
    }
    let offsets: Vec<u64> = w.tensors().iter().map(|t| t.offset).collect();
    assert_eq!(offsets, [0, 64, 128], "12 B -> 64, 18 B -> 64");
    let data: Vec<Vec<u8>> = w.tensors().iter().map(|t| vec![0x5a; t.n_bytes() as usize]).collect();
    let file = w.to_bytes(&data).unwrap();
    let f = GgufFile::parse(&file, file.len() as u64).unwrap();
    assert_eq!(f.get("general.alignment"), Some(&MetadataValue::U32(64)));
    assert_eq!(f.alignment, 64);
    assert_eq!(f.data_offset % 64, 0);
    assert_eq!(f.data_offset, pad(w.header_bytes().len() as u64, 64));
    assert_eq!(file.len() as u64, f.data_offset + 128 + pad(28, 64), "the last tensor is padded too");
    // Padding bytes are zeros.
    assert!(file[(f.data_offset + 12) as usize..(f.data_offset + 64) as usize].iter().all(|&b| b == 0));

    // The default alignment is not written as a key.
    let mut d = GgufWriter::new();
    d.set_alignment(32).unwrap();
    assert!(d.metadata().is_empty());
    assert_eq!(pad(0, 32), 0);
    assert_eq!(pad(1, 32), 32);
    assert_eq!(pad(32, 32), 32);
}

#[test]
fn writer_rejects_what_llama_cpp_rejects() {
    let mut w = GgufWriter::new();
    assert!(matches!(w.set("", MetadataValue::U8(1)), Err(GgufWriteError::EmptyKey(_))));
    assert!(matches!(w.set("general.alignment", MetadataValue::U64(32)), Err(GgufWriteError::BadAlignment(_))));
    assert!(matches!(w.set("general.alignment", MetadataValue::U32(48)), Err(GgufWriteError::BadAlignment(_))));
    let dup = vec![("a".to_string(), MetadataValue::U8(1)), ("a".to_string(), MetadataValue::U8(2))];
    assert_eq!(GgufWriter::with_metadata(dup).unwrap_err(), GgufWriteError::DuplicateKey("a".into()));

    w.add_tensor("x", &[32], GgmlType::Q8_0).unwrap();
    assert_eq!(w.add_tensor("x", &[32], GgmlType::F32).unwrap_err(), GgufWriteError::DuplicateTensor("x".into()));
    let long = "n".repeat(64);
    assert!(matches!(w.add_tensor(&long, &[1], GgmlType::F32), Err(GgufWriteError::NameTooLong { len: 64, .. })));
    w.add_tensor(&"n".repeat(63), &[1], GgmlType::F32).unwrap();
    assert!(matches!(w.add_tensor("five", &[1, 1, 1, 1, 1], GgmlType::F32), Err(GgufWriteError::BadDimCount { .. })));
    assert!(matches!(w.add_tensor("zero", &[0, 4], GgmlType::F32), Err(GgufWriteError::BadDims { .. })));
    let e = w.add_tensor("odd", &[576, 2], GgmlType::Q4_K).unwrap_err();
    assert_eq!(
        e.to_string(),
        "tensor 'odd' has type Q4_K but its row length 576 is not a multiple of the 256-value block"
    );
    // Wrong data size is caught before anything past the header is written.
    let e = w.to_bytes(&[vec![0u8; 33], vec![0u8; 4]]).unwrap_err();
    assert!(matches!(e, GgufWriteError::WrongDataSize { expected: 34, got: 33, .. }), "{e}");
}

#[test]
fn ftypes_match_llama_h() {
    assert_eq!(llama_ftype(GgmlType::F32), Some(0));
    assert_eq!(llama_ftype(GgmlType::F16), Some(1));
    assert_eq!(llama_ftype(GgmlType::Q4_0), Some(2));
    assert_eq!(llama_ftype(GgmlType::Q4_1), Some(3));
    assert_eq!(llama_ftype(GgmlType::Q8_0), Some(7));
    assert_eq!(llama_ftype(GgmlType::Q5_0), Some(8));
    assert_eq!(llama_ftype(GgmlType::Q5_1), Some(9));
    assert_eq!(llama_ftype(GgmlType::Q2_K), Some(10));
    assert_eq!(llama_ftype(GgmlType::Q4_K), Some(14));
    assert_eq!(llama_ftype(GgmlType::Q6_K), Some(18));
    assert_eq!(llama_ftype(GgmlType::BF16), Some(32));
    for ty in [GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K] {
        let name = quantlab::gguf::ftype_name(llama_ftype(ty).unwrap() as u64).unwrap();
        assert_eq!(name, format!("MOSTLY_{}_S", ty.name()));
    }
}

#[test]
fn default_model_rewritten_unchanged() {
    // Copying every tensor of the real model through the writer reproduces the file exactly
    // (the model was written by llama.cpp's own writer with the same rules).
    let Some(path) = model_path() else { return };
    let bytes = std::fs::read(path).unwrap();
    let f = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    let mut w = GgufWriter::with_metadata(f.metadata.clone()).unwrap();
    for t in &f.tensors {
        w.add_tensor(&t.name, &t.dims, t.ty).unwrap();
    }
    let mut out = Vec::new();
    w.write(&mut out, |_, t| Ok(f.tensor_data(&bytes, f.tensor(&t.name).unwrap()).unwrap())).unwrap();
    assert_eq!(out.len(), bytes.len());
    assert!(out == bytes, "byte-identical copy of the llama.cpp-written model");
}

// ---------------------------------------------------------------- safetensors

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect()
}

fn bf16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect()
}

/// A two-shard checkpoint with F32, F16, BF16 and I64 tensors, an index and a config.json.
pub fn write_sharded(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let emb = values(64 * 4, 10);
    let q = values(64 * 8, 11);
    let up = values(128 * 8, 12);
    let norm = values(64, 13);
    let shard1: Vec<Entry> = vec![
        ("model.embed_tokens.weight".into(), Dtype::F32, vec![4, 64], f32_bytes(&emb)),
        ("model.layers.0.self_attn.q_proj.weight".into(), Dtype::F16, vec![8, 64], f16_bytes(&q)),
    ];
    let shard2: Vec<Entry> = vec![
        ("model.layers.0.mlp.up_proj.weight".into(), Dtype::BF16, vec![8, 128], bf16_bytes(&up)),
        ("model.norm.weight".into(), Dtype::F32, vec![64], f32_bytes(&norm)),
        ("model.position_ids".into(), Dtype::I64, vec![2], [0i64, 1].iter().flat_map(|x| x.to_le_bytes()).collect()),
    ];
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let n1 = "model-00001-of-00002.safetensors";
    let n2 = "model-00002-of-00002.safetensors";
    st::write_safetensors(&dir.join(n1), &shard1, meta.clone()).unwrap();
    st::write_safetensors(&dir.join(n2), &shard2, meta).unwrap();
    let mut map = serde_json::Map::new();
    for (e, n) in shard1.iter().map(|e| (e, n1)).chain(shard2.iter().map(|e| (e, n2))) {
        map.insert(e.0.clone(), n.into());
    }
    let index = serde_json::json!({"metadata": {"total_size": 1234}, "weight_map": map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("config.json"), r#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}"#).unwrap();
    let round = |v: &[f32], f: fn(f32) -> f32| v.iter().map(|&x| f(x)).collect::<Vec<_>>();
    vec![
        ("model.embed_tokens.weight".into(), emb),
        ("model.layers.0.self_attn.q_proj.weight".into(), round(&q, |x| half::f16::from_f32(x).to_f32())),
        ("model.layers.0.mlp.up_proj.weight".into(), round(&up, |x| half::bf16::from_f32(x).to_f32())),
        ("model.norm.weight".into(), norm),
    ]
}

#[test]
fn sharded_checkpoint_reads_all_float_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    let expected = write_sharded(dir.path());
    for open in [dir.path().to_path_buf(), dir.path().join("model.safetensors.index.json")] {
        let ck = Checkpoint::open(&open).unwrap();
        assert_eq!(ck.shards.len(), 2);
        assert_eq!(ck.tensors.len(), 5);
        assert_eq!(ck.config.as_ref().unwrap()["hidden_size"], 64);
        assert_eq!(ck.metadata.get("format").map(String::as_str), Some("pt"));
        for (name, want) in &expected {
            let t = ck.tensor(name).unwrap();
            assert_eq!(&ck.tensor_f32(t).unwrap(), want, "{name}");
        }
        let ids = ck.tensor("model.position_ids").unwrap();
        let e = ck.tensor_f32(ids).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tensor 'model.position_ids' has dtype I64; only F32, F16 and BF16 tensors can be read as values"
        );
        assert_eq!(ck.raw(ids), [0u8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    }
    // A single shard opens on its own too.
    let one = Checkpoint::open(&dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    assert_eq!(one.tensors.len(), 3);
    assert_eq!(one.tensor("model.layers.0.mlp.up_proj.weight").unwrap().shape, [8, 128]);
}

#[test]
fn checkpoint_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    write_sharded(dir.path());
    let index = dir.path().join("model.safetensors.index.json");

    // Missing shard.
    let shard2 = dir.path().join("model-00002-of-00002.safetensors");
    let saved = std::fs::read(&shard2).unwrap();
    std::fs::remove_file(&shard2).unwrap();
    let e = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("model-00002-of-00002.safetensors") && e.contains("does not exist") && e.contains("3 tensors"),
        "{e}"
    );

    // Truncated shard.
    std::fs::write(&shard2, &saved[..saved.len() - 10]).unwrap();
    let e = Checkpoint::open(dir.path()).unwrap_err();
    assert!(matches!(e, SafetensorsError::Header { .. }), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    // Header cut in the middle.
    std::fs::write(&shard2, &saved[..20]).unwrap();
    let e = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("runs past the end") && e.contains("00002"), "{e}");
    // Corrupt header JSON.
    let mut bad = saved.clone();
    bad[8] = b'[';
    std::fs::write(&shard2, &bad).unwrap();
    let e = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors file") && e.contains("corrupt header"), "{e}");
    std::fs::write(&shard2, &saved).unwrap();

    // Index: bad JSON, no weight_map, a tensor the shard lacks.
    let good_index = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, "{\"weight_map\": ").unwrap();
    let e = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors index") && e.contains("bad JSON"), "{e}");
    std::fs::write(&index, "{\"metadata\": {}}").unwrap();
    let e = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("no \"weight_map\""), "{e}");
    let ghost = good_index.replace(
        "\"model.norm.weight\"",
        "\"model.ghost.weight\": \"model-00002-of-00002.safetensors\", \"model.norm.weight\"",
    );
    std::fs::write(&index, ghost).unwrap();
    let e = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("'model.ghost.weight'") && e.contains("does not contain it"), "{e}");
    std::fs::write(&index, &good_index).unwrap();

    // Bad config.json.
    std::fs::write(dir.path().join("config.json"), "{").unwrap();
    let e = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("not valid JSON"), "{e}");

    // Missing path, empty directory.
    let e = Checkpoint::open(&dir.path().join("nope.safetensors")).unwrap_err().to_string();
    assert!(e.contains("no such file"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = Checkpoint::open(empty.path()).unwrap_err().to_string();
    assert!(e.contains("no .safetensors file"), "{e}");
}

#[test]
fn safetensors_writer_checks_entries() {
    let ok: Entry = ("a".into(), Dtype::F32, vec![2], vec![0; 8]);
    let bytes = st::serialize(std::slice::from_ref(&ok), st::quantlab_metadata("f16")).unwrap();
    let back = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(back.tensor("a").unwrap().shape(), [2]);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta[st::FORMAT_KEY], "f16");
    assert_eq!(meta[st::VERSION_KEY], env!("CARGO_PKG_VERSION"));
    let e = st::serialize(&[("a".into(), Dtype::F16, vec![3], vec![0; 4])], Default::default()).unwrap_err();
    assert!(e.to_string().contains("tensor 'a' (F16 [3]) needs 6 bytes but has 4"), "{e}");
    let e = st::serialize(&[ok.clone(), ok], Default::default()).unwrap_err();
    assert!(e.to_string().contains("duplicate tensor name 'a'"), "{e}");
}

/// Found by the `safetensors_index` fuzz target: a shard name with a directory part
/// ("model-00002-of-000/2.safetensors") was taken as a path below the index's directory.
#[test]
fn index_shards_are_plain_file_names() {
    let index = Path::new("/checkpoint/model.safetensors.index.json");
    for shard in [
        "model-00002-of-000/2.safetensors",
        "sub/model.safetensors",
        "../model.safetensors",
        "/model.safetensors",
        ".",
        "",
        "model.safetensors/",
    ] {
        let text = serde_json::json!({"weight_map": {"w": shard}}).to_string();
        match st::parse_index(text.as_bytes(), index) {
            Err(SafetensorsError::Index { reason, .. }) => {
                assert!(reason.contains("not a file name next to the index"), "{shard}: {reason}")
            }
            other => panic!("{shard:?}: {other:?}"),
        }
    }
    let text = serde_json::json!({"weight_map": {"w": "model-00001-of-00002.safetensors"}}).to_string();
    let (shards, map) = st::parse_index(text.as_bytes(), index).unwrap();
    assert_eq!(shards, [Path::new("/checkpoint/model-00001-of-00002.safetensors")]);
    assert_eq!(map, [("w".to_string(), "model-00001-of-00002.safetensors".to_string())]);
    // Shards are listed once each, sorted, however many tensors name them.
    let text = serde_json::json!({"weight_map": {"a": "s2.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}});
    let (shards, map) = st::parse_index(text.to_string().as_bytes(), index).unwrap();
    assert_eq!(shards, [Path::new("/checkpoint/s1.safetensors"), Path::new("/checkpoint/s2.safetensors")]);
    assert_eq!(map.len(), 3);
}
