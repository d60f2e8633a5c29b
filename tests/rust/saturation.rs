//! Scales that overflow their storage type (issue #17): an error naming the tensor and block
//! by default, counted under `--allow-saturation`; one case per format family, then the CLI.

use quantlab::formats::saturation::{find_overflow, Overflow, Saturation};
use quantlab::formats::GgmlType;
use quantlab::formats::{quantize, QuantScheme, TensorShape};
use quantlab::io::export::{quantize_named, ExportError, SaturationLog};
use quantlab::io::gguf_writer::GgufWriter;
use std::path::Path;
use std::process::{Command, Output};

/// Where [`values_with`] puts the big values: row 1, columns 0..32 (block 8 of 32 values,
/// block 1 of 256).
const BIG: std::ops::Range<usize> = 256..288;

/// 4 rows of 256 values in [-1, 1), with `big` (signed) in [`BIG`].
fn values_with(big: f32) -> (Vec<f32>, TensorShape) {
    let mut v: Vec<f32> = (0..1024).map(|i| ((i * 37 % 101) as f32 / 50.5) - 1.0).collect();
    for x in &mut v[BIG] {
        *x = big * x.signum();
    }
    (v, TensorShape::new(4, 256))
}

fn overflow_of(format: &str, big: f32) -> Option<Overflow> {
    let (v, shape) = values_with(big);
    let q = quantize(&QuantScheme::parse(format).unwrap(), &v, shape).unwrap();
    find_overflow(&q).unwrap()
}

#[test]
fn int_group_scales_above_f16_are_found() {
    // int4 sym: scale = absmax / 7; 1e6 / 7 is far above 65504, 4e5 / 7 = 57142 fits.
    let o = overflow_of("int4-sym-g32", 1e6).expect("saturated");
    assert_eq!(o, Overflow { blocks: 1, first_block: 8, block_len: 32 });
    assert_eq!(overflow_of("int4-sym-g32", 4e5), None);
    assert_eq!(overflow_of("int8-asym-g64", 1e8).map(|o| (o.blocks, o.first_block)), Some((1, 4)));
    // f32 scales (per channel, per tensor) hold any finite range.
    assert_eq!(overflow_of("int4-sym-channel", 1e30), None);
    assert_eq!(overflow_of("int8-asym-tensor", 1e30), None);
}

#[test]
fn ggml_scales_that_overflow_f16_are_found() {
    // Q4_0: d = max / -8 as f16, infinite above 8·65504.
    for (format, big, block_len) in [
        ("q4_0", 1e6, 32),
        ("q8_0", 1e7, 32),
        ("q4_1", 1e6, 32),
        ("q5_0", 1e7, 32),
        ("q4_k", 3e38, 256),
        ("q6_k", 1e10, 256),
        ("f16", 1e5, 1),
    ] {
        let o = overflow_of(format, big).unwrap_or_else(|| panic!("{format}: no overflow found"));
        assert_eq!(o.block_len, block_len, "{format}");
        assert_eq!(o.first_block, BIG.start / block_len, "{format}");
        // The same weights scaled into range are fine: the check adds no false positives.
        assert_eq!(overflow_of(format, 100.0), None, "{format}");
    }
}

#[test]
fn bnb_and_fp8_keep_f32_scales_and_decode_huge_weights() {
    for format in ["nf4", "fp4-b64", "nf4-dq", "fp8-e4m3", "fp8-e5m2"] {
        let (v, shape) = values_with(3e38);
        let q = quantize(&QuantScheme::parse(format).unwrap(), &v, shape).unwrap();
        assert_eq!(find_overflow(&q).unwrap(), None, "{format}");
        let d = q.dequantize().unwrap();
        // The huge block comes back huge and finite (within the format's coarse steps).
        assert!(d[BIG].iter().zip(&v[BIG]).all(|(a, b)| a.is_finite() && (a / b - 1.0).abs() < 0.5), "{format}");
    }
}

#[test]
fn export_refuses_by_default_and_counts_when_allowed() {
    let (v, shape) = values_with(1e6);
    let scheme = QuantScheme::parse("q4_0").unwrap();
    let mut refuse = SaturationLog::new(Saturation::Refuse);
    let e = quantize_named("blk.0.attn_q.weight", &scheme, &v, shape, &mut refuse).unwrap_err();
    assert_eq!(
        e,
        ExportError::Saturated {
            tensor: "blk.0.attn_q.weight".into(),
            scheme: "q4_0".into(),
            blocks: 1,
            first_block: 8,
            block_len: 32
        }
    );
    let text = e.to_string();
    assert!(text.contains("blk.0.attn_q.weight") && text.contains("block 8") && text.contains("--allow-saturation"));
    let mut allow = SaturationLog::new(Saturation::Allow);
    quantize_named("a", &scheme, &v, shape, &mut allow).unwrap();
    quantize_named("b", &QuantScheme::parse("int4-sym-g32").unwrap(), &v, shape, &mut allow).unwrap();
    quantize_named("c", &scheme, &values_with(1.0).0, shape, &mut allow).unwrap();
    assert_eq!((allow.blocks, allow.tensors), (2, 2));
    assert!(allow.note().unwrap().contains("2 block(s) in 2 tensor(s)"));
}

fn quantlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quantlab")).args(args).output().expect("run quantlab")
}

/// A GGUF file holding one [4, 256] F32 weight with a huge block.
fn write_huge_gguf(path: &Path) {
    let (v, _) = values_with(1e6);
    let mut w = GgufWriter::new();
    w.add_tensor("blk.0.attn_q.weight", &[256, 4], GgmlType::F32).unwrap();
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, w.to_bytes(&[bytes]).unwrap()).unwrap();
}

#[test]
fn cli_quantize_stops_on_saturation_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("huge.gguf");
    write_huge_gguf(&input);
    let i = input.to_str().unwrap();
    for (format, ext) in [("q4_0", "gguf"), ("int4-sym-g32", "safetensors")] {
        let out = dir.path().join(format!("out.{ext}"));
        let o = out.to_str().unwrap();
        let r = quantlab(&["quantize", i, "-f", format, "-o", o]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{format}: {err}");
        assert!(err.contains("blk.0.attn_q.weight") && err.contains("block 8"), "{format}: {err}");
        assert!(!out.exists(), "{format}: no output after the error");
        let r = quantlab(&["quantize", i, "-f", format, "-o", o, "--allow-saturation"]);
        let stdout = String::from_utf8_lossy(&r.stdout);
        assert!(r.status.success(), "{format}: {}", String::from_utf8_lossy(&r.stderr));
        assert!(stdout.contains("--allow-saturation: 1 block(s) in 1 tensor(s)"), "{format}: {stdout}");
        assert!(out.exists());
    }
    let help = String::from_utf8_lossy(&quantlab(&["quantize", "--help"]).stdout).to_string();
    assert!(help.contains("--allow-saturation"), "{help}");
}
