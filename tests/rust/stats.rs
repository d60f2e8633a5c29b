//! Error metrics, weight statistics, format levels/codes and `quantlab stats`: synthetic
//! tensors with known answers, the ggml golden blocks (gguf-py's dequantization as the
//! independent reference for levels and codes), and the default model.

use crate::gguf::model_path;
use crate::int_fp8::Rng;
use quantlab::cli::stats::{self as cli_stats, FormatRow, StatsArgs};
use quantlab::formats::ggml::levels;
use quantlab::formats::quantized::GgmlTensor;
use quantlab::formats::{dequantize_row, quantize, QuantScheme, QuantizedTensor, TensorShape};
use quantlab::gguf::{GgmlType, GgufFile};
use quantlab::stats::metrics::{chunk_metrics, error_metrics, format_report, group_metrics};
use quantlab::stats::weights::{level_occupancy, outlier_channels, weight_stats};
use quantlab::stats::{values_histogram, DEFAULT_OUTLIER_K};
use std::path::PathBuf;
use std::process::Command;

fn sqnr(name: &str, x: &[f32], shape: TensorShape) -> f64 {
    let q = quantize(&QuantScheme::parse(name).unwrap(), x, shape).unwrap();
    format_report(x, &q).unwrap().metrics.sqnr_db
}

#[test]
fn sqnr_grows_about_six_db_per_bit_on_gaussian_data() {
    let mut rng = Rng::new(42);
    let shape = TensorShape::new(64, 512);
    let x = rng.normals(shape.len(), 0.02);
    let s: Vec<f64> = [8, 4, 3, 2].iter().map(|b| sqnr(&format!("int{b}-sym-channel"), &x, shape)).collect();
    assert!(s[0] > s[1] && s[1] > s[2] && s[2] > s[3], "{s:?}");
    // Uniform-noise theory: each bit halves the step, +6.02 dB. Min-max RTN on Gaussian rows
    // follows it within a dB or two per bit from 3 bits up; int2 (3 levels) is coarser.
    let per_bit = (s[0] - s[1]) / 4.0;
    assert!((5.5..=6.5).contains(&per_bit), "int8 vs int4: {per_bit} dB/bit ({s:?})");
    assert!((4.5..=7.5).contains(&(s[1] - s[2])), "int4 vs int3: {s:?}");
    assert!((3.0..=9.0).contains(&(s[2] - s[3])), "int3 vs int2: {s:?}");
    // Finer groups help, asymmetric ranges and MSE clipping never hurt much on symmetric data.
    assert!(sqnr("int4-sym-g32", &x, shape) > s[1]);
    assert!(sqnr("int4-sym-channel-mse", &x, shape) >= s[1]);
    // FP8: E4M3 has 3 mantissa bits (~ 6·4 + const dB), E5M2 two.
    let e4 = sqnr("fp8-e4m3-channel", &x, shape);
    let e5 = sqnr("fp8-e5m2-channel", &x, shape);
    assert!(e4 > e5 + 4.0 && e4 > 25.0, "e4m3 {e4} e5m2 {e5}");
}

#[test]
fn metrics_per_row_and_group_agree_with_the_tensor() {
    let mut rng = Rng::new(7);
    let shape = TensorShape::new(8, 64);
    let x = rng.normals(shape.len(), 1.0);
    let q = quantize(&QuantScheme::parse("int4-asym-g32").unwrap(), &x, shape).unwrap();
    let y = q.dequantize().unwrap();
    let total = error_metrics(&x, &y);
    let rows = chunk_metrics(&x, &y, shape.cols);
    let groups = group_metrics(&x, &y, &q);
    assert_eq!((rows.len(), groups.len()), (8, 16));
    let mse_rows: f64 = rows.iter().map(|m| m.mse).sum::<f64>() / 8.0;
    let mse_groups: f64 = groups.iter().map(|m| m.mse).sum::<f64>() / 16.0;
    assert!((mse_rows - total.mse).abs() < 1e-12 && (mse_groups - total.mse).abs() < 1e-12);
    let max = groups.iter().map(|m| m.max_abs_error).fold(0.0, f64::max);
    assert_eq!(max, total.max_abs_error);
    assert!(total.cosine > 0.99 && total.cosine <= 1.0);
}

#[test]
fn weight_stats_find_planted_outlier_channels() {
    let mut rng = Rng::new(9);
    let shape = TensorShape::new(32, 128);
    let mut x = rng.normals(shape.len(), 0.02);
    for r in 0..shape.rows {
        x[r * shape.cols + 17] *= 40.0; // input channel 17: 40× larger
        x[r * shape.cols + 90] *= 3.0; // 3×: below the k = 6 rule
    }
    let s = weight_stats(&x, shape, DEFAULT_OUTLIER_K);
    assert_eq!(s.outlier_cols, vec![17]);
    assert!(s.outlier_rows.is_empty());
    assert_eq!(s.col_absmax.len(), 128);
    assert_eq!(s.row_rms.len(), 32);
    assert!(s.excess_kurtosis.unwrap() > 10.0, "planted outliers make heavy tails");
    assert_eq!(outlier_channels(&s.col_absmax, 2.0), vec![17, 90], "a lower k also flags the 3× channel");
    // Gaussian without outliers: excess kurtosis near 0.
    let g = weight_stats(&rng.normals(100_000, 1.0), TensorShape::new(100, 1000), DEFAULT_OUTLIER_K);
    assert!(g.excess_kurtosis.unwrap().abs() < 0.1, "{:?}", g.excess_kurtosis);
    assert!((g.rms - 1.0).abs() < 0.01);
}

#[test]
fn occupancy_and_histogram_of_dequantized_values() {
    let mut rng = Rng::new(13);
    let shape = TensorShape::new(4, 256);
    let x = rng.normals(shape.len(), 1.0);
    for name in ["int4-sym-channel", "int3-asym-g64", "fp8-e4m3-tensor", "q4_0", "q8_0", "q5_1"] {
        let q = quantize(&QuantScheme::parse(name).unwrap(), &x, shape).unwrap();
        let occ = level_occupancy(&q);
        assert_eq!(occ.iter().sum::<u64>(), shape.len() as u64, "{name}");
        let y = q.dequantize().unwrap();
        let h = values_histogram(&y, 64, None).unwrap();
        assert_eq!(h.total, shape.len() as u64);
        // Every reconstructed value is one of its group's levels.
        for (i, v) in y.iter().enumerate() {
            assert!(q.levels(q.group_of(i)).contains(v), "{name}: value {i} = {v}");
        }
        if name == "int4-sym-channel" {
            assert_eq!(occ.len(), 16);
            assert_eq!(occ[0], 0, "the restricted symmetric range never uses code 0");
        }
    }
}

fn ggml_fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ggml").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// For random/edge-case ggml blocks decoded by gguf-py: the value of each weight's code in its
/// group's level table is exactly gguf-py's dequantized value, and is one of the group's levels.
#[test]
fn ggml_codes_and_levels_reproduce_gguf_py_dequantization() {
    use GgmlType::*;
    for ty in [Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K] {
        let name = ty.name();
        let packed = ggml_fixture(&format!("deq_{name}.packed.bin"));
        let want: Vec<f32> = ggml_fixture(&format!("deq_{name}.deq.f32.bin"))
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let codes = levels::codes(ty, &packed).unwrap();
        assert_eq!(codes.len(), want.len());
        let glen = levels::group_len(ty).unwrap();
        let n_codes = levels::n_codes(ty).unwrap();
        let mut checked = 0;
        for g in 0..levels::n_groups(ty, want.len()).unwrap() {
            let lv = levels::levels(ty, &packed, g).unwrap();
            assert!(lv.windows(2).all(|w| w[0] < w[1]), "{name} group {g}: not ascending");
            for i in g * glen..(g + 1) * glen {
                assert!((codes[i] as usize) < n_codes);
                let v = levels::level_of(ty, &packed, g, codes[i]).unwrap();
                if want[i].is_nan() {
                    assert!(v.is_nan(), "{name} value {i}");
                    continue;
                }
                assert_eq!(v.to_bits(), want[i].to_bits(), "{name} value {i} (group {g}, code {})", codes[i]);
                assert!(lv.contains(&v), "{name} value {i}: {v} not among group {g}'s levels");
                checked += 1;
            }
        }
        assert!(checked > want.len() / 2, "{name}: too few finite values checked");
    }
    assert!(levels::codes(GgmlType::IQ4_NL, &[0; 18]).is_err());
}

#[test]
fn ggml_tensor_dispatch_uses_sub_blocks() {
    let packed = ggml_fixture("deq_Q6_K.packed.bin");
    let n = packed.len() / 210 * 256;
    let t = QuantizedTensor::Ggml(GgmlTensor { ty: GgmlType::Q6_K, shape: TensorShape::new(1, n), data: packed });
    assert_eq!(t.group_len(), 16);
    assert_eq!(t.n_groups(), n / 16);
    assert_eq!(t.codes().len(), n);
    assert!(t.levels(0).len() <= 64);
}

// ---------------------------------------------------------------- the default model

#[test]
fn requantizing_q4_1_weights_with_q4_1_is_lossless() {
    let Some(path) = model_path() else { return };
    let file = std::fs::read(&path).unwrap();
    let gguf = GgufFile::parse(&file, file.len() as u64).unwrap();
    let names = ["blk.0.attn_q.weight", "blk.5.ffn_down.weight", "blk.29.ffn_gate.weight"];
    for name in names {
        let t = gguf.tensor(name).unwrap();
        assert_eq!(t.ty, GgmlType::Q4_1, "{name}");
        let data = gguf.tensor_data(&file, t).unwrap();
        let shape = TensorShape::new(t.n_rows() as usize, t.row_len() as usize);
        let mut x = vec![0f32; shape.len()];
        dequantize_row(t.ty, data, &mut x).unwrap();
        let q = quantize(&QuantScheme::parse("q4_1").unwrap(), &x, shape).unwrap();
        let QuantizedTensor::Ggml(g) = &q else { panic!() };
        let blocks_differ = g.data.chunks(20).zip(data.chunks(20)).filter(|(a, b)| a != b).count();
        let r = format_report(&x, &q).unwrap();
        assert_eq!(r.metrics.mse, 0.0, "{name}: {blocks_differ} blocks differ");
        assert_eq!(r.metrics.sqnr_db, f64::INFINITY);
        assert_eq!(blocks_differ, 0, "{name}: re-encoding must give the stored bytes");
        assert_eq!(r.bits_per_weight, 5.0);
        // Its levels are the file's own: every stored weight sits on one.
        for i in (0..shape.len()).step_by(997) {
            assert!(q.levels(q.group_of(i)).contains(&x[i]));
        }
    }
}

fn stats_args(tensor: Option<&str>, formats: Option<&str>, json: bool) -> Option<StatsArgs> {
    Some(StatsArgs {
        model: model_path()?,
        tensor: tensor.map(String::from),
        formats: formats.map(String::from),
        outlier_k: DEFAULT_OUTLIER_K,
        json,
    })
}

#[test]
fn stats_cli_one_tensor_with_formats() {
    let Some(args) = stats_args(Some("blk.0.attn_q.weight"), Some(cli_stats::DEFAULT_FORMATS), true) else { return };
    let out = cli_stats::run(&args).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let t = &v["tensors"][0];
    assert_eq!(t["name"], "blk.0.attn_q.weight");
    assert_eq!(t["shape"], serde_json::json!([576, 576]));
    assert_eq!(t["type"], "Q4_1");
    let rows = t["formats"].as_array().unwrap();
    let by_name = |n: &str| rows.iter().find(|r| r["format"] == n).unwrap_or_else(|| panic!("{n} in {rows:?}"));
    assert_eq!(by_name("q4_1")["metrics"]["sqnr_db"], "inf", "Q4_1 weights re-quantized with q4_1 are exact");
    let sq = |n: &str| by_name(n)["metrics"]["sqnr_db"].as_f64().unwrap();
    // Finer scales win at equal bits: q8_0 (per 32) beats per-channel int8; 8 bits beat 4.
    assert!(sq("q8_0") > sq("int8-sym-channel") && sq("int8-sym-channel") > sq("int4-asym-g64") + 15.0);
    assert!(sq("q8_0") > sq("q4_0"));
    assert_eq!(by_name("q8_0")["bits_per_weight"], 8.5);
    // Unavailable formats say why instead of failing the run.
    let args = stats_args(Some("blk.0.attn_q.weight"), Some("int4-sym-g128"), false).unwrap();
    let out = cli_stats::run(&args).unwrap();
    assert!(out.contains("n/a: int4-sym-g128") && out.contains("576"), "{out}");
}

#[test]
fn stats_cli_all_matrices_through_the_binary() {
    let Some(model) = model_path() else { return };
    let o = Command::new(env!("CARGO_BIN_EXE_quantlab")).arg("stats").arg(&model).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("211 tensor(s)"), "{}", &out[..300.min(out.len())]);
    let row = out.lines().find(|l| l.starts_with("token_embd.weight ")).expect("embedding row");
    assert!(row.contains("49152 x 576") && row.contains("Q8_0"), "{row}");
    let o = Command::new(env!("CARGO_BIN_EXE_quantlab"))
        .args(["stats".as_ref(), model.as_os_str(), "--tensor".as_ref(), "blk.0.attn_q".as_ref()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no tensor named 'blk.0.attn_q'") && err.contains("blk.0.attn_q.weight"), "{err}");
    let o = Command::new(env!("CARGO_BIN_EXE_quantlab"))
        .args(["stats".as_ref(), model.as_os_str(), "--formats".as_ref(), "int4-foo".as_ref()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("int4-foo"));
}

#[test]
fn stats_rows_are_ok_or_explained() {
    let Some(args) = stats_args(Some("blk.3.ffn_down.weight"), Some("int3-asym-g64-mse,nf4-b64,q6_k"), false) else {
        return;
    };
    let map = std::fs::read(&args.model).unwrap();
    let gguf = GgufFile::parse(&map, map.len() as u64).unwrap();
    let t = gguf.tensor("blk.3.ffn_down.weight").unwrap();
    let schemes = cli_stats::parse_formats(args.formats.as_deref().unwrap()).unwrap();
    let s = cli_stats::tensor_stats(&gguf, &map, t, &schemes, DEFAULT_OUTLIER_K).unwrap();
    assert_eq!(s.shape, [576, 1536]);
    assert!(matches!(&s.formats[0], FormatRow::Ok(r) if r.metrics.sqnr_db > 5.0));
    for f in &s.formats[1..] {
        if let FormatRow::Unavailable { format, unavailable } = f {
            assert!(!unavailable.is_empty(), "{format}");
        }
    }
}
