//! Unit tests of the GGUF reader: a valid sample round-trips, every kind of malformed header
//! gives its specific error, and no mutation or truncation of a small file panics.

use super::test_builder::{array_body, gguf_str, sample, tt, vt, GgufBuilder};
use super::*;

fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
    GgufFile::parse(bytes, bytes.len() as u64)
}

fn err(bytes: &[u8]) -> GgufError {
    match parse(bytes) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn sample_parses_with_all_value_types() {
    let b = sample();
    let bytes = b.build();
    let f = parse(&bytes).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.alignment, 32);
    assert_eq!(f.data_offset, (b.header().len() as u64).next_multiple_of(32));
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.get_u64("t.u8"), Some(200));
    assert_eq!(f.get("t.i8"), Some(&MetadataValue::I8(-1)));
    assert_eq!(f.get_u64("t.i8"), None, "negative ints are not u64");
    assert_eq!(f.get_u64("t.u16"), Some(65535));
    assert_eq!(f.get("t.i16"), Some(&MetadataValue::I16(-2)));
    assert_eq!(f.get("t.i64").and_then(MetadataValue::as_i64), Some(-4));
    assert_eq!(f.get_f64("t.f64"), Some(2.5));
    assert_eq!(f.get_bool("t.bool"), Some(true));
    assert_eq!(f.get_u64("llama.attention.head_count_kv"), Some(2));
    let nested = f.get_array("t.nested").unwrap();
    assert_eq!(
        nested,
        &MetadataArray::Array(vec![MetadataArray::U8(vec![1, 2, 3]), MetadataArray::String(vec!["x".into()])])
    );
    assert_eq!(f.get_array("tokenizer.ggml.token_type").unwrap().as_i32s(), Some(&[1, 1, 1, 1, 3][..]));

    assert_eq!(f.tensors.len(), 4);
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.ty, q.row_len(), q.n_rows(), q.n_elements(), q.n_bytes()), (GgmlType::Q4_1, 64, 64, 4096, 2560));
    assert_eq!(q.absolute_offset(&f), f.data_offset + q.offset);
    assert_eq!(q.absolute_offset(f.data_offset), f.data_offset + q.offset);
    let data = f.tensor_data(&bytes, q).unwrap();
    assert_eq!(data.len(), 2560);
    assert_eq!(&data[..3], &[62, 63, 64], "tensor #2's byte j is 2*31+j");
    for t in &f.tensors {
        assert_eq!(t.offset % 32, 0);
    }
}

#[test]
fn summary_of_sample() {
    let f = parse(&sample().build()).unwrap();
    let s = ModelSummary::from_gguf(&f);
    assert_eq!(s.architecture.as_deref(), Some("llama"));
    assert_eq!(s.file_type.as_deref(), Some("MOSTLY_Q4_1"));
    assert_eq!(
        (s.block_count, s.embedding_length, s.head_count, s.head_count_kv),
        (Some(1), Some(64), Some(4), Some(2))
    );
    assert_eq!(s.rms_norm_eps, Some(1e-5));
    assert_eq!(s.vocab_size, Some(5), "falls back to the token list length");
    assert_eq!(s.parameter_count, 320 + 64 + 4096 + 320);
    assert_eq!(s.tensor_bytes, 340 + 256 + 2560 + 640);
    let types: Vec<_> = s.types.iter().map(|t| (t.ty, t.tensors)).collect();
    assert_eq!(types, [(GgmlType::F32, 1), (GgmlType::F16, 1), (GgmlType::Q4_1, 1), (GgmlType::Q8_0, 1)]);
}

#[test]
fn abbreviated_views_cut_long_arrays() {
    let tokens: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
    let v = MetadataValue::Array(MetadataArray::String(tokens));
    let j = serde_json::to_value(Abbreviated { value: &v, max: 16 }).unwrap();
    assert_eq!(j["type"], "array<string>");
    assert_eq!(j["len"], 100);
    assert_eq!(j["head"].as_array().unwrap().len(), 16);
    let text = Abbreviated { value: &v, max: 3 }.to_string();
    assert_eq!(text, r#"[string; 100] ["t0", "t1", "t2", ...]"#);
    let full = serde_json::to_value(&v).unwrap();
    assert_eq!(full.as_array().unwrap().len(), 100, "plain serialization keeps everything");
    let entries = vec![("b".to_string(), MetadataValue::U32(1)), ("a".to_string(), v)];
    let s = serde_json::to_string(&MetadataJson { entries: &entries, max: 2 }).unwrap();
    assert!(s.starts_with(r#"{"b":1,"a":{"type":"array<string>","len":100,"head":["t0","t1"]}"#), "{s}");
}

#[test]
fn magic_version_and_endianness() {
    let mut b = sample().build();
    b[..4].copy_from_slice(b"PK\x03\x04");
    assert_eq!(err(&b).to_string(), r"not a GGUF file (magic is 'PK\x03\x04', expected 'GGUF')");
    assert_eq!(err(&[]), GgufError::Empty);
    assert!(matches!(err(b"GG"), GgufError::BadMagic { .. }));

    let mut v = sample();
    v.version = 1;
    assert_eq!(err(&v.build()), GgufError::Version1);
    v.version = 4;
    assert_eq!(err(&v.build()), GgufError::UnsupportedVersion(4));
    v.version = 0x0300_0000;
    let e = err(&v.build());
    assert!(matches!(e, GgufError::BigEndian { swapped: 3, .. }));
    assert!(e.to_string().contains("big-endian"), "{e}");
    v.version = 2;
    assert_eq!(parse(&v.build()).unwrap().version, 2);
}

#[test]
fn truncated_prefix_asks_for_more() {
    let bytes = sample().build();
    let full_len = bytes.len() as u64;
    let mut len = 16usize;
    // The retry loop a browser runs: read the hinted prefix until the parse succeeds.
    let f = loop {
        match GgufFile::parse(&bytes[..len], full_len) {
            Ok(f) => break f,
            Err(e) => {
                assert!(e.is_truncated(), "{e}");
                let n = e.needed_bytes().expect("a retry hint") as usize;
                assert!(n > len && n <= bytes.len(), "{n} vs {len}");
                len = n;
            }
        }
    };
    assert_eq!(f, parse(&bytes).unwrap());
    assert!(len <= f.data_offset as usize);
}

#[test]
fn truncated_file_at_every_byte() {
    let bytes = sample().build();
    for n in 0..bytes.len() {
        let e = err(&bytes[..n]);
        assert!(e.is_truncated() || n < 4, "cut at {n}: {e}");
        assert_eq!(e.needed_bytes(), None, "the whole file was given; more cannot help");
        if n >= 4 {
            assert!(e.to_string().contains("truncated"), "cut at {n}: {e}");
        }
    }
    let last = bytes.len() - 1;
    assert_eq!(
        err(&bytes[..last]).to_string(),
        format!(
            "file is truncated: tensor 'output.weight' needs bytes {}..{} but the file has {last} bytes",
            last + 1 - 640,
            last + 1
        )
    );
}

#[test]
fn huge_lengths_do_not_allocate() {
    let key_huge = GgufBuilder::new().kv_raw(b"k", vt::STRING, &u64::MAX.to_le_bytes()).build();
    assert!(matches!(err(&key_huge), GgufError::Inconsistent(_) | GgufError::Truncated { .. }));
    let str_huge = GgufBuilder::new().kv_raw(b"k", vt::STRING, &(1u64 << 60).to_le_bytes()).build();
    assert!(err(&str_huge).is_truncated());
    for elem in [vt::U8, vt::U32, vt::F64, vt::STRING, vt::ARRAY, vt::BOOL] {
        let arr = GgufBuilder::new().kv_raw(b"k", vt::ARRAY, &array_body(elem, 1 << 40, &[])).build();
        assert!(err(&arr).is_truncated(), "element type {elem}");
        let arr = GgufBuilder::new().kv_raw(b"k", vt::ARRAY, &array_body(elem, u64::MAX / 2, &[])).build();
        assert!(matches!(err(&arr), GgufError::Inconsistent(_) | GgufError::Truncated { .. }));
    }
    let mut b = sample();
    b.n_tensors_override = Some(u64::MAX / 4);
    assert!(matches!(err(&b.build()), GgufError::Inconsistent(_)));
    b.n_tensors_override = Some(1 << 40);
    assert!(err(&b.build()).is_truncated());
    let mut b = sample();
    b.n_kv_override = Some(1 << 50);
    assert!(err(&b.build()).is_truncated());
}

#[test]
fn metadata_errors() {
    let bad_type = GgufBuilder::new().kv_raw(b"weird", 13, &[0; 8]).build();
    assert_eq!(err(&bad_type), GgufError::UnknownValueType { key: "weird".into(), id: 13 });
    let bad_elem = GgufBuilder::new().kv_raw(b"arr", vt::ARRAY, &array_body(99, 0, &[])).build();
    assert_eq!(err(&bad_elem), GgufError::UnknownValueType { key: "arr".into(), id: 99 });
    let dup = GgufBuilder::new().kv_u32("a", 1).kv_u32("a", 2).build();
    assert_eq!(err(&dup), GgufError::DuplicateKey("a".into()));
    let utf8 = GgufBuilder::new().kv_raw(b"name", vt::STRING, &gguf_str(b"\xff\xfe")).build();
    assert_eq!(err(&utf8).to_string(), "invalid UTF-8 in the value of metadata key 'name'");
    let utf8_key = GgufBuilder::new().kv_raw(b"\xc3", vt::U8, &[0]).build();
    assert!(err(&utf8_key).to_string().contains("metadata key #0"));
    let elem = array_body(vt::STRING, 2, &[gguf_str(b"ok"), gguf_str(b"\x80")].concat());
    let utf8_elem = GgufBuilder::new().kv_raw(b"toks", vt::ARRAY, &elem).build();
    assert_eq!(err(&utf8_elem).to_string(), "invalid UTF-8 in element 1 of metadata key 'toks'");
    let bad_bool = GgufBuilder::new().kv_raw(b"b", vt::BOOL, &[2]).build();
    assert!(matches!(err(&bad_bool), GgufError::Inconsistent(_)));
    // Arrays nested 100 deep.
    let mut body = array_body(vt::U8, 0, &[]);
    for _ in 0..100 {
        body = array_body(vt::ARRAY, 1, &body);
    }
    let deep = GgufBuilder::new().kv_raw(b"deep", vt::ARRAY, &body).build();
    assert!(err(&deep).to_string().contains("nests arrays"));
}

#[test]
fn alignment_rules() {
    for a in [0u32, 3, 48] {
        let b = GgufBuilder::new().kv_u32("general.alignment", a).build();
        assert!(matches!(err(&b), GgufError::BadAlignment(_)), "alignment {a}");
    }
    let b = GgufBuilder::new().kv_u64("general.alignment", 32).build();
    assert!(err(&b).to_string().contains("must be a u32"));
    let f = parse(&sample().alignment(64).build()).unwrap();
    assert_eq!((f.alignment, f.data_offset % 64), (64, 0));
    assert!(f.tensors.iter().all(|t| t.offset % 64 == 0));
}

#[test]
fn tensor_info_errors() {
    let e = err(&GgufBuilder::new().tensor_raw(b"t5", &[1, 1, 1, 1, 1], tt::F32, None, 4).build());
    assert_eq!(e, GgufError::TooManyDims { tensor: "t5".into(), n_dims: 5 });
    let e = err(&GgufBuilder::new().tensor_raw(b"z", &[4, 0], tt::F32, None, 0).build());
    assert!(matches!(e, GgufError::BadDims { .. }) && e.to_string().contains("zero"), "{e}");
    let e = err(&GgufBuilder::new().tensor_raw(b"big", &[1 << 32, 1 << 32], tt::F32, None, 4).build());
    assert!(e.to_string().contains("overflows"), "{e}");
    let e = err(&GgufBuilder::new().tensor_raw(b"x", &[32], 4, None, 32).build());
    assert!(matches!(e, GgufError::TensorType { source: TypeIdError::Retired(4), .. }), "{e}");
    let e = err(&GgufBuilder::new().tensor_raw(b"x", &[32], 1000, None, 32).build());
    assert!(matches!(e, GgufError::TensorType { source: TypeIdError::Unknown(1000), .. }), "{e}");
    let e = err(&GgufBuilder::new().tensor_raw(b"x", &[33, 2], tt::Q4_1, None, 40).build());
    assert_eq!(e.to_string(), "tensor 'x' has type Q4_1 but its row length 33 is not a multiple of the 32-value block");
    let e = err(&GgufBuilder::new().tensor("a", &[8], tt::F32).tensor("a", &[8], tt::F32).build());
    assert_eq!(e, GgufError::DuplicateTensor("a".into()));
    let e = err(&GgufBuilder::new().tensor_raw(b"\xff", &[8], tt::F32, None, 32).build());
    assert!(matches!(e, GgufError::InvalidUtf8(_)));
}

#[test]
fn tensor_placement_errors() {
    let e = err(&GgufBuilder::new().tensor_raw(b"m", &[8], tt::F32, Some(16), 32).build());
    assert_eq!(e, GgufError::Misaligned { tensor: "m".into(), offset: 16, alignment: 32 });
    let e = err(&GgufBuilder::new()
        .tensor_raw(b"a", &[16], tt::F32, Some(0), 64)
        .tensor_raw(b"b", &[16], tt::F32, Some(32), 64)
        .build());
    assert!(matches!(e, GgufError::Overlap { .. }), "{e}");
    assert!(e.to_string().contains("'a'") && e.to_string().contains("'b'"));
    // Out of bounds: the builder writes the data, then the file is given as shorter.
    let bytes = GgufBuilder::new().tensor("w", &[64], tt::F32).build();
    let e = GgufFile::parse(&bytes[..bytes.len() - 10], bytes.len() as u64 - 10).unwrap_err();
    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }) && e.to_string().contains("tensor 'w'"));
    // Offset near u64::MAX must not overflow.
    let e = err(&GgufBuilder::new().tensor_raw(b"far", &[8], tt::F32, Some(u64::MAX - 31), 32).header());
    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }), "{e}");
    // The tensor request check on a hand-made info.
    let bytes = sample().build();
    let f = parse(&bytes).unwrap();
    let mut t = f.tensors[0].clone();
    t.offset = 1 << 40;
    assert!(f.tensor_data(&bytes, &t).unwrap_err().is_truncated());
}

#[test]
fn header_only_prefix_is_enough() {
    let b = sample();
    let bytes = b.build();
    let header = b.header();
    let f = GgufFile::parse(&header, bytes.len() as u64).unwrap();
    assert_eq!(f.tensors.len(), 4);
}

/// A tiny deterministic generator (xorshift) so the fuzz test is reproducible.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn mutations_and_truncations_never_panic() {
    let bytes = sample().build();
    let header_len = sample().header().len();
    let full = bytes.len() as u64;
    for pos in 0..header_len {
        for val in [0x00u8, 0xFF, 0x80, 0x01, 0x7F] {
            let mut m = bytes.clone();
            m[pos] = val;
            let _ = parse(&m);
            let _ = GgufFile::parse(&m[..pos], full);
        }
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20_000 {
        let mut m = bytes.clone();
        let n_flips = 1 + xorshift(&mut seed) % 4;
        for _ in 0..n_flips {
            let p = (xorshift(&mut seed) as usize) % header_len;
            m[p] = xorshift(&mut seed) as u8;
        }
        let cut = (xorshift(&mut seed) as usize) % (m.len() + 1);
        if let Ok(f) = GgufFile::parse(&m[..cut], full) {
            let _ = ModelSummary::from_gguf(&f);
            for t in &f.tensors {
                let _ = f.tensor_data(&m, t);
            }
        }
        let _ = parse(&m);
    }
}
