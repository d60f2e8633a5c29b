//! llama.cpp's imatrix files (`io::imatrix`): the GGUF layout written and read back, the legacy
//! `.dat` layout read, malformed files refused with a kind; and `quantlab imatrix` on the
//! default model, whose sums equal the calibration collector's over the same chunks.

use crate::gguf::model_path;
use quantlab::calib::{collect, CalibHooks, ChunkPlan, LinearInput, SumSquares};
use quantlab::cli::imatrix::{self, ImatrixArgs};
use quantlab::cli::quantize::{self, QuantizeArgs};
use quantlab::error::{ErrorKind, HasKind, Input};
use quantlab::formats::{dequantize_row, quantize_row, quantize_row_weighted};
use quantlab::gguf::{GgmlType, GgufFile, MetadataValue};
use quantlab::io::imatrix::{Imatrix, ImatrixEntry, ImatrixError, ImatrixLayout};
use quantlab::model::Model;

fn sample() -> Imatrix {
    Imatrix {
        layout: ImatrixLayout::Gguf,
        datasets: vec!["calib.txt".into()],
        chunk_count: 3,
        chunk_size: 512,
        entries: vec![
            ImatrixEntry { name: "blk.0.attn_q.weight".into(), sums: vec![2.0, 4.0, 8.0], counts: vec![4.0] },
            ImatrixEntry { name: "blk.0.ffn_down.weight".into(), sums: vec![1.0, 3.0], counts: vec![0.0] },
        ],
    }
}

#[test]
fn gguf_round_trip_and_importance() {
    let m = sample();
    let bytes = m.to_gguf().unwrap();
    let g = GgufFile::parse(&bytes, bytes.len() as u64).unwrap();
    assert_eq!(g.get_str("general.type"), Some("imatrix"));
    assert_eq!(g.get("imatrix.chunk_count"), Some(&MetadataValue::U32(3)));
    assert_eq!(g.get("imatrix.chunk_size"), Some(&MetadataValue::U32(512)));
    let t = g.tensor("blk.0.attn_q.weight.in_sum2").unwrap();
    assert_eq!((t.dims.as_slice(), t.ty), (&[3u64, 1][..], GgmlType::F32));
    assert_eq!(g.tensor("blk.0.attn_q.weight.counts").unwrap().dims, [1, 1]);

    let back = Imatrix::from_bytes(&bytes).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.importance("blk.0.attn_q.weight", 3).unwrap(), Some(vec![0.5, 1.0, 2.0]));
    // A zero count means no data: llama-quantize uses 1 for every column.
    assert_eq!(back.importance("blk.0.ffn_down.weight", 2).unwrap(), Some(vec![1.0, 1.0]));
    assert_eq!(back.importance("blk.1.attn_q.weight", 3).unwrap(), None);
    let err = back.importance("blk.0.attn_q.weight", 576).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::bad(Input::Data));
}

fn legacy_bytes() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(1i32.to_le_bytes());
    let name = b"blk.0.attn_k.weight";
    b.extend((name.len() as i32).to_le_bytes());
    b.extend(name);
    b.extend(10i32.to_le_bytes()); // ncall
    b.extend(2i32.to_le_bytes()); // nval
    for v in [5.0f32, 20.0] {
        b.extend(v.to_le_bytes());
    }
    b.extend(10i32.to_le_bytes()); // chunk count
    b.extend(4i32.to_le_bytes());
    b.extend(b"wiki");
    b
}

#[test]
fn legacy_dat_is_read() {
    let m = Imatrix::from_bytes(&legacy_bytes()).unwrap();
    assert_eq!(m.layout, ImatrixLayout::LegacyDat);
    assert_eq!((m.chunk_count, m.datasets.as_slice()), (10, &["wiki".to_string()][..]));
    assert_eq!(m.importance("blk.0.attn_k.weight", 2).unwrap(), Some(vec![0.5, 2.0]));
}

#[test]
fn malformed_files_are_refused_with_a_kind() {
    let legacy = legacy_bytes();
    for cut in [2, 10, 30, 40] {
        let err = Imatrix::from_bytes(&legacy[..cut]).unwrap_err();
        assert!(matches!(err, ImatrixError::BadLegacy { .. }), "cut {cut}: {err:?}");
        assert_eq!(err.kind(), ErrorKind::bad(Input::File));
    }
    let good = sample().to_gguf().unwrap();
    // Cut into the last tensor's data (past the alignment padding after it).
    let err = Imatrix::from_bytes(&good[..good.len() - 40]).unwrap_err();
    assert!(matches!(err, ImatrixError::Gguf(_) | ImatrixError::BadTensor { .. }), "{err:?}");
    // A model file is not an imatrix.
    if let Some(path) = model_path() {
        let bytes = std::fs::read(path).unwrap();
        let err = Imatrix::from_bytes(&bytes).unwrap_err();
        assert!(matches!(err, ImatrixError::WrongType { .. }), "{err:?}");
    }
}

#[test]
fn cli_writes_the_collectors_sums() {
    let Some(path) = model_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("calib.txt");
    let prose = "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money \
        in my purse, and nothing particular to interest me on shore, I thought I would sail about a little and see \
        the watery part of the world. It is a way I have of driving off the spleen and regulating the circulation. ";
    std::fs::write(&text, prose.repeat(2)).unwrap();
    let out = dir.path().join("imatrix.gguf");
    let args = |text: Option<&std::path::Path>| ImatrixArgs {
        model: path.clone(),
        text: text.map(Into::into),
        tokens: 64,
        chunk: 32,
        threads: Some(1),
        output: out.clone(),
    };
    let report = imatrix::run(&args(Some(&text))).unwrap();
    assert!(report.contains("chunks:  2 of 32 tokens"), "{report}");
    let m = Imatrix::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    let model = Model::from_gguf_bytes(&std::fs::read(&path).unwrap()).unwrap();
    let c = &model.config;
    assert_eq!(m.entries.len(), 7 * c.n_layers);
    assert_eq!((m.chunk_count, m.chunk_size), (2, 32));
    assert!(m.entry("token_embd.weight").is_none() && m.entry("output.weight").is_none());

    // The same tokens through the collector (SmolLM2 adds no BOS).
    let tok = quantlab::tokenizer::Tokenizer::from_gguf(
        &GgufFile::parse(&std::fs::read(&path).unwrap(), std::fs::metadata(&path).unwrap().len()).unwrap(),
    )
    .unwrap();
    let tokens = tok.encode(&std::fs::read_to_string(&text).unwrap(), tok.add_bos_default(), false);
    let mut sums = SumSquares::new();
    collect(&model, &tokens, &ChunkPlan::new(32, 64, None), &mut sums, CalibHooks::default()).unwrap();
    for (input, name) in [
        (LinearInput::Attention { layer: 3 }, "blk.3.attn_v.weight"),
        (LinearInput::AttentionOutput { layer: 0 }, "blk.0.attn_output.weight"),
        (LinearInput::Ffn { layer: 29 }, "blk.29.ffn_up.weight"),
        (LinearInput::FfnDown { layer: 7 }, "blk.7.ffn_down.weight"),
    ] {
        let e = m.entry(name).unwrap();
        let want = &sums.inputs[&input];
        assert_eq!(e.counts, [64.0], "{name}");
        let want_f32: Vec<f32> = want.sum_sq.iter().map(|&v| v as f32).collect();
        assert_eq!(e.sums, want_f32, "{name}");
    }
    assert_eq!(m.entry("blk.5.attn_q.weight").unwrap().sums, m.entry("blk.5.attn_k.weight").unwrap().sums);

    // The default text (Moby-Dick chapters 4+) names its chapters.
    imatrix::run(&args(None)).unwrap();
    let m = Imatrix::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    assert!(m.datasets[0].starts_with("Moby-Dick chapters 4-"), "{:?}", m.datasets);
}

#[test]
fn quantize_uses_the_entry_of_each_tensor() {
    let Some(path) = model_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cols = 576;
    let importance: Vec<f32> = (0..cols).map(|i| 0.01 + ((i * 37) % 101) as f32).collect();
    let m = Imatrix {
        layout: ImatrixLayout::Gguf,
        datasets: vec!["test".into()],
        chunk_count: 1,
        chunk_size: 512,
        entries: vec![ImatrixEntry {
            name: "blk.0.attn_q.weight".into(),
            sums: importance.iter().map(|v| v * 8.0).collect(),
            counts: vec![8.0],
        }],
    };
    let im = dir.path().join("im.gguf");
    std::fs::write(&im, m.to_gguf().unwrap()).unwrap();
    let out = dir.path().join("q.gguf");
    // One type everywhere (--pure): this checks the imatrix path, not the file type's rules.
    let report = quantize::run(&QuantizeArgs {
        pure: true,
        imatrix: Some(im.clone()),
        ..QuantizeArgs::new(&path, "q4_0", &out)
    })
    .unwrap();
    assert!(report.contains("blk.0.attn_k.weight: no imatrix entry"), "{report}");

    let src = std::fs::read(&path).unwrap();
    let sg = GgufFile::parse(&src, src.len() as u64).unwrap();
    let q = std::fs::read(&out).unwrap();
    let qg = GgufFile::parse(&q, q.len() as u64).unwrap();
    let values = |name: &str| {
        let t = sg.tensor(name).unwrap();
        let mut v = vec![0f32; t.n_elements() as usize];
        dequantize_row(t.ty, sg.tensor_data(&src, t).unwrap(), &mut v).unwrap();
        v
    };
    let row_bytes = GgmlType::Q4_0.bytes_for(cols as u64).unwrap() as usize;
    for (name, weighted) in [("blk.0.attn_q.weight", true), ("blk.0.attn_k.weight", false)] {
        let v = values(name);
        let mut want = vec![0u8; v.len() / cols * row_bytes];
        for (x, dst) in v.chunks_exact(cols).zip(want.chunks_exact_mut(row_bytes)) {
            match weighted {
                true => quantize_row_weighted(GgmlType::Q4_0, x, Some(&importance), dst).unwrap(),
                false => quantize_row(GgmlType::Q4_0, x, dst).unwrap(),
            }
        }
        let t = qg.tensor(name).unwrap();
        assert_eq!(t.ty, GgmlType::Q4_0);
        assert!(qg.tensor_data(&q, t).unwrap() == want.as_slice(), "{name}");
    }

    // Not for safetensors outputs.
    let err = quantize::run(&QuantizeArgs {
        imatrix: Some(im),
        ..QuantizeArgs::new(path, "int4-sym-g64", dir.path().join("q.safetensors"))
    })
    .unwrap_err();
    assert!(err.to_string().contains("--imatrix"), "{err}");
}
