//! `quantlab quantize` on checkpoints of any size (issue #17): tensors quantized in row chunks
//! that give the same bytes as one piece and whatever the thread count, safetensors written one
//! tensor at a time (header first), and the peak memory of a 7B-shaped run bounded by the
//! largest tensor, not the model.

use crate::model_quant::values;
use half::f16;
use quantlab::formats::chunked::{plan, quantize_in_chunks};
use quantlab::formats::{quantize, GgmlType, QuantScheme, TensorShape};
use quantlab::io::gguf_writer::GgufWriter;
use quantlab::io::safetensors::{self as st, Checkpoint, Entry};
use safetensors::Dtype;
use std::path::Path;
use std::process::Command;

/// Every scheme that splits gives, chunk by chunk, exactly the one-piece tensor: ggml blocks
/// (a k-quant too), INT groups and channels with codes that do not fill whole bytes per row,
/// FP8 per channel, and bitsandbytes with and without double quantization.
#[test]
fn chunks_join_into_the_one_piece_tensor() {
    let cases = [
        ("q4_0", 256),
        ("q4_k", 256),
        ("q6_k", 512),
        ("int4-asym-g128", 256),
        ("int3-asym-g32", 96),
        ("int5-sym-channel", 100),
        ("fp8-e4m3-channel", 100),
        ("nf4", 100),
        ("nf4-b64-dq", 256),
        ("fp4-b128", 200),
    ];
    for (format, cols) in cases {
        let scheme = QuantScheme::parse(format).unwrap();
        let shape = TensorShape::new(3 * (1 << 18) / cols + 7, cols);
        let chunks = plan(&scheme, shape).unwrap_or_else(|| panic!("{format} splits"));
        assert!(chunks.len() >= 3, "{format}: {} chunks", chunks.len());
        let v = values(shape.len(), cols as u64);
        let whole = quantize(&scheme, &v, shape).unwrap();
        assert!(quantize_in_chunks(&scheme, &v, shape).unwrap() == whole, "{format}");
    }
    // A per-tensor scale spans every row: not split.
    assert!(plan(&QuantScheme::parse("int8-sym-tensor").unwrap(), TensorShape::new(4096, 4096)).is_none());
}

/// A NaN is reported at the tensor's row, whichever chunk holds it.
#[test]
fn chunked_errors_name_the_tensors_row() {
    let scheme = QuantScheme::parse("q4_0").unwrap();
    let shape = TensorShape::new(3000, 256);
    let mut v = values(shape.len(), 3);
    v[2500 * 256 + 5] = f32::NAN;
    let e = quantize_in_chunks(&scheme, &v, shape).unwrap_err().to_string();
    assert_eq!(e, quantize(&scheme, &v, shape).unwrap_err().to_string());
    assert!(e.contains("row 2500, column 5"), "{e}");
}

fn quantlab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

fn f16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()).collect()
}

/// A small checkpoint whose matrices split into several chunks (and a norm that is copied).
fn write_small_checkpoint(path: &Path) {
    let entries: Vec<Entry> = vec![
        ("model.layers.0.mlp.up_proj.weight".into(), Dtype::F16, vec![2100, 256], f16_bytes(&values(2100 * 256, 1))),
        ("model.layers.0.input_layernorm.weight".into(), Dtype::F16, vec![256], f16_bytes(&values(256, 2))),
        ("model.layers.0.self_attn.o_proj.weight".into(), Dtype::BF16, vec![1030, 512], {
            values(1030 * 512, 3).iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect()
        }),
    ];
    st::write_safetensors(path, &entries, Default::default()).unwrap();
}

/// A GGUF file with one F16 matrix `[rows, cols]` that splits into several chunks.
fn write_small_gguf(path: &Path) {
    let (rows, cols) = (2100u64, 512u64);
    let mut w = GgufWriter::new();
    w.add_tensor("blk.0.ffn_up.weight", &[cols, rows], GgmlType::F16).unwrap();
    w.add_tensor("blk.0.attn_norm.weight", &[cols], GgmlType::F32).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    w.write(&mut out, |i, _| {
        Ok(match i {
            0 => f16_bytes(&values((rows * cols) as usize, 4)),
            _ => values(cols as usize, 5).iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
    })
    .unwrap();
}

/// One thread and three give the same file, byte for byte; the safetensors file reads back
/// with the reference reader.
#[test]
fn the_thread_count_does_not_change_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let st_in = dir.path().join("in.safetensors");
    let gguf_in = dir.path().join("in.gguf");
    write_small_checkpoint(&st_in);
    write_small_gguf(&gguf_in);
    let cases = [
        (&st_in, "int4-asym-g128", "safetensors"),
        (&st_in, "nf4-b64-dq", "safetensors"),
        (&st_in, "int3-sym-channel", "safetensors"),
        (&gguf_in, "q4_k", "gguf"),
        (&gguf_in, "q4_0", "gguf"),
        (&gguf_in, "int4-sym-g64", "safetensors"),
    ];
    for (input, format, ext) in cases {
        let mut files = Vec::new();
        for threads in ["1", "3"] {
            let out = dir.path().join(format!("{format}-{threads}.{ext}"));
            let r = quantlab(&[
                "quantize",
                input.to_str().unwrap(),
                "-f",
                format,
                "--pure",
                "--threads",
                threads,
                "-o",
                out.to_str().unwrap(),
            ]);
            assert!(r.status.success(), "{format} --threads {threads}: {}", String::from_utf8_lossy(&r.stderr));
            files.push(std::fs::read(&out).unwrap());
        }
        assert!(files[0] == files[1], "{format}: --threads 1 and 3 differ");
        if ext == "safetensors" {
            // The reference reader accepts it (offsets contiguous, header padded as allowed).
            let back = safetensors::SafeTensors::deserialize(&files[0]).unwrap();
            let ck = Checkpoint::open(&dir.path().join(format!("{format}-1.{ext}"))).unwrap();
            assert_eq!(ck.metadata.get(st::FORMAT_KEY).map(String::as_str), Some(format));
            if input == &st_in {
                // Every entry of a quantized tensor is what quantizing it in one piece gives.
                let name = "model.layers.0.mlp.up_proj.weight";
                let v: Vec<f32> = values(2100 * 256, 1).iter().map(|&x| f16::from_f32(x).to_f32()).collect();
                let scheme = QuantScheme::parse(format).unwrap();
                let q = quantize(&scheme, &v, TensorShape::new(2100, 256)).unwrap();
                for (n, dtype, shape, bytes) in st::quantized_entries(name, &q, &[2100, 256]).unwrap() {
                    let got = back.tensor(&n).unwrap_or_else(|_| panic!("{format}: no {n}"));
                    assert_eq!((got.dtype(), got.shape()), (dtype, shape.as_slice()), "{format}: {n}");
                    assert!(got.data() == bytes.as_slice(), "{format}: {n} differs");
                }
            }
        }
    }
}

/// `--shard-size`: shards next to an index that loads as the one-file output does; a rerun
/// keeps the shards already complete (same file, not rewritten) and writes only what is missing.
#[test]
fn sharded_output_is_restartable() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.safetensors");
    write_small_checkpoint(&input);
    let whole = dir.path().join("whole.safetensors");
    let out = dir.path().join("q.safetensors");
    let run = |extra: &[&str], out: &Path| {
        let mut args = vec!["quantize", input.to_str().unwrap(), "-f", "int4-asym-g128", "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let r = quantlab(&args);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        String::from_utf8_lossy(&r.stdout).into_owned()
    };
    run(&[], &whole);
    run(&["--shard-size", "200KB"], &out);
    let shards: Vec<_> = (1..=3).map(|k| dir.path().join(format!("q-{k:05}-of-00003.safetensors"))).collect();
    assert!(shards.iter().all(|s| s.is_file()), "{:?}", std::fs::read_dir(dir.path()).unwrap().collect::<Vec<_>>());
    assert!(!out.exists(), "the one-file output is not written when sharded");
    let index = dir.path().join("q.safetensors.index.json");
    let sharded = Checkpoint::open(&index).unwrap();
    let one = Checkpoint::open(&whole).unwrap();
    assert_eq!(sharded.tensors.len(), one.tensors.len());
    for t in &one.tensors {
        let s = sharded.tensor(&t.name).unwrap_or_else(|| panic!("{} missing", t.name));
        assert!(sharded.raw(s) == one.raw(t), "{} differs", t.name);
    }

    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let before: Vec<u64> = shards.iter().map(|s| inode(s)).collect();
    let report = run(&["--shard-size", "200KB"], &out);
    assert!(report.contains("3 of 3 shards were already complete"), "{report}");
    assert_eq!(shards.iter().map(|s| inode(s)).collect::<Vec<_>>(), before, "complete shards are not rewritten");

    // An interrupted run: the second shard is missing (never renamed into place).
    std::fs::remove_file(&shards[1]).unwrap();
    let report = run(&["--shard-size", "200KB"], &out);
    assert!(report.contains("2 of 3 shards were already complete"), "{report}");
    assert_eq!(inode(&shards[0]), before[0]);
    assert!(Checkpoint::open(&index).unwrap().tensors.len() == one.tensors.len());

    // Other options make other bytes: nothing is kept.
    let report = run(&["--shard-size", "200KB", "--all-tensors"], &out);
    assert!(!report.contains("already complete"), "{report}");
}

#[test]
fn shard_sizes_parse_and_group_tensors_in_order() {
    use quantlab::cli::shards::{parse_size, plan};
    assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
    assert_eq!(parse_size("500MB"), Ok(500_000_000));
    assert_eq!(parse_size("2.5G"), Ok(2_500_000_000));
    assert_eq!(parse_size("300kb"), Ok(300_000));
    assert_eq!(parse_size("4096"), Ok(4096));
    for bad in ["", "0", "5XB", "-1GB", "GB"] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
    assert_eq!(plan(&[5, 5, 5], 10), vec![0..2, 2..3]);
    // A tensor larger than the limit gets a shard of its own.
    assert_eq!(plan(&[20, 1, 1], 10), vec![0..1, 1..3]);
    assert_eq!(plan(&[], 10), vec![0..0]);
}
