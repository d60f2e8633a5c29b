//! LLM.int8() (`quantlab::model::llm_int8`) and the integer path of the forward
//! (`quantlab::model::int_path`, `State::matmul`):
//!
//! - the weight codes, input codes, outlier columns and products against the numpy port of
//!   bitsandbytes' functions in `scripts/dev/make_llm_int8_goldens.py` (tests/fixtures/llm_int8/),
//!   by the simulated and by the integer path;
//! - with threshold ∞, LLM.int8() is W8A8 per-token on the same int8 per-channel weights;
//! - the integer path ran (the state's counters, not timing), the readable and the batched
//!   forwards give the same logits in it, and on int8 per-channel weights it equals the
//!   simulated path up to float summation order.

use crate::act_quant::{batched_with, model, per_position_with, same_bits, tokens};
use quantlab::formats::{quantize, QuantScheme, QuantizedTensor, TensorShape};
use quantlab::model::int_path::product_as_forward;
use quantlab::model::llm_int8::{llm_int8_model, vectorwise_weights, TokenCodes};
use quantlab::model::{
    quantize_model, ActHead, ActQuant, ActQuantError, ActQuantizer, LinearInput, MatmulPath, Matrix, PathStats,
    TensorPolicy,
};
use std::path::Path;

fn raw(name: &str) -> Vec<u8> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/llm_int8"));
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn f32s(name: &str) -> Vec<f32> {
    raw(name).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn i8s(name: &str) -> Vec<i8> {
    raw(name).into_iter().map(|b| b as i8).collect()
}

fn llm_int8(threshold: f32) -> ActQuantizer {
    ActQuantizer::new(ActQuant::LLM_INT8, ActHead::Float, None, 2).unwrap().with_threshold(threshold).unwrap()
}

fn int8_token() -> ActQuantizer {
    ActQuantizer::new(ActQuant::parse("int8-token").unwrap(), ActHead::Float, None, 2).unwrap()
}

/// `Σ_j |x_bj|·|w_rj|` per output: the scale of the f32 rounding a product may carry.
fn magnitudes(x: &[f32], w: &[f32], cols: usize) -> Vec<f32> {
    x.chunks_exact(cols)
        .flat_map(|xr| w.chunks_exact(cols).map(move |wr| xr.iter().zip(wr).map(|(a, b)| (a * b).abs()).sum()))
        .collect()
}

/// Every `got` within `rel · magnitude` of `want` (`rel` ≈ a few times `cols · ε`, the bound of
/// a reordered f32 sum).
fn within(got: &[f32], want: &[f32], mags: &[f32], rel: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, ((g, w), m)) in got.iter().zip(want).zip(mags).enumerate() {
        assert!((g - w).abs() <= rel * m + 1e-30, "{what}: output {i}: {g} vs {w} (magnitude {m})");
    }
}

#[test]
fn llm_int8_matches_the_bitsandbytes_port() {
    let m: serde_json::Value = serde_json::from_slice(&raw("manifest.json")).unwrap();
    let (rows, cols, out) = ["rows", "cols", "out"].map(|k| m[k].as_u64().unwrap() as usize).into();
    let (x, w) = (f32s("x.f32.bin"), f32s("w.f32.bin"));
    let t = vectorwise_weights(&w, TensorShape::new(out, cols));
    let codes: Vec<i8> = t.codes().iter().map(|&c| (i32::from(c) - 128) as i8).collect();
    assert_eq!(codes, i8s("cb.i8.bin"), "weight codes");
    let scb = f32s("scb.f32.bin");
    assert!(t.scales.iter().zip(&scb).all(|(s, b)| *s == b / 127.0), "weight scales");
    let deq = t.dequantize();
    let matrix = Matrix::from_quantized(QuantizedTensor::Int(t)).unwrap();
    let mags = magnitudes(&x, &deq, cols);
    for case in m["cases"].as_array().unwrap() {
        let threshold = case["threshold"].as_f64().unwrap() as f32;
        let want_cols: Vec<usize> =
            case["outlier_cols"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as usize).collect();
        let c = TokenCodes::llm_int8(&x, cols, threshold);
        assert_eq!(c.outliers, want_cols, "T={threshold}: outlier columns");
        assert!(!c.outliers.is_empty());
        assert_eq!(c.codes, i8s(&format!("ca-{threshold:.1}.i8.bin")), "T={threshold}: input codes");
        let sca = f32s(&format!("sca-{threshold:.1}.f32.bin"));
        assert!(c.scales.iter().zip(&sca).all(|(s, a)| *s == a / 127.0), "T={threshold}: input scales");
        let want = f32s(&format!("y-{threshold:.1}.f32.bin"));
        assert_eq!(want.len(), rows * out);
        let q = llm_int8(threshold);
        for path in [MatmulPath::Exact, MatmulPath::Int8] {
            let mut stats = PathStats::default();
            let input = LinearInput::Ffn { layer: 1 };
            let got = product_as_forward(&matrix, Some(&q), path, input, &x, 2, &mut stats);
            within(&got, &want, &mags, 4e-6, &format!("T={threshold} {path:?}"));
            let integer = u64::from(path == MatmulPath::Int8);
            assert_eq!((stats.integer, stats.float), (integer, 1 - integer), "{path:?}");
            let o = &stats.outliers[&input];
            assert_eq!((o.products, o.max, o.distinct()), (1, want_cols.len(), want_cols.len()));
        }
        // Without the decomposition (∞) the outlier columns are rounded with the rest: worse.
        let inf = product_as_forward(
            &matrix,
            Some(&llm_int8(f32::INFINITY)),
            MatmulPath::Int8,
            LinearInput::Ffn { layer: 0 },
            &x,
            1,
            &mut PathStats::default(),
        );
        let exact = product_as_forward(
            &matrix,
            None,
            MatmulPath::Exact,
            LinearInput::Ffn { layer: 0 },
            &x,
            1,
            &mut PathStats::default(),
        );
        let err = |y: &[f32]| y.iter().zip(&exact).map(|(a, b)| (a - b).abs()).sum::<f32>();
        assert!(err(&want) < 0.5 * err(&inf), "T={threshold}: {} vs ∞ {}", err(&want), err(&inf));
    }
}

#[test]
fn infinite_threshold_is_w8a8_per_token_on_the_same_weights() {
    let m = llm_int8_model(&model(8.0)).unwrap();
    let toks = tokens(13, 7);
    let (inf, inf_stats) = per_position_with(&m, &toks, |s| s.act = Some(llm_int8(f32::INFINITY)));
    let (token, _) = per_position_with(&m, &toks, |s| s.act = Some(int8_token()));
    // Same scales (max|x| / 127); the codes' multipliers 127/max and 1/(max/127) could differ by
    // one ulp and move a code at an exact rounding tie, which this data does not hold.
    assert!(same_bits(&inf, &token), "llm-int8 at ∞ vs int8-token");
    assert!(inf_stats.outliers.values().all(|o| o.columns == 0 && o.products > 0));
    let (six, stats) = per_position_with(&m, &toks, |s| s.act = Some(llm_int8(6.0)));
    assert!(!same_bits(&six, &inf), "the outlier columns must change the logits");
    let outliers: u64 = stats.outliers.values().map(|o| o.columns).sum();
    assert!(outliers > 0, "the model's outlier channels (×8 norms) exceed 6: {stats:?}");
    // Those columns in float bring the logits closer to the model's f32-activation logits.
    let (float, _) = per_position_with(&m, &toks, |_| {});
    let err = |y: &[f32]| y.iter().zip(&float).map(|(a, b)| f64::from((a - b).abs())).sum::<f64>();
    assert!(err(&six) < err(&inf), "{} vs ∞ {}", err(&six), err(&inf));
}

#[test]
fn the_integer_path_runs_and_both_forwards_agree_in_it() {
    let base = model(8.0);
    let toks = tokens(13, 9);
    let int8 = |s: &mut quantlab::model::State| s.matmul = MatmulPath::Int8;
    for scheme in ["q4_0", "q4_1", "q8_0"] {
        let (m, _) = quantize_model(&base, &QuantScheme::parse(scheme).unwrap(), &TensorPolicy::default()).unwrap();
        let (want, stats) = per_position_with(&m, &toks, int8);
        // Every layer matrix and the (untied) classifier, at every position.
        assert_eq!(stats.integer, (7 * 2 + 1) * toks.len() as u64, "{scheme}: {stats:?}");
        assert_eq!(stats.float, 0, "{scheme}");
        for block in [1, 5, 13] {
            let (got, bstats) = batched_with(&m, &toks, block, int8);
            assert!(same_bits(&got, &want), "{scheme}: block {block}");
            assert!(bstats.integer > 0 && bstats.float == 0, "{scheme}: block {block}");
        }
        let (exact, estats) = per_position_with(&m, &toks, |_| {});
        assert_eq!(estats.integer, 0);
        assert!(!same_bits(&exact, &want), "{scheme}: 8-bit activations change the logits");
    }
    // LLM.int8() on its own weights: integer dots for the layers, f32 for the f32 classifier.
    let m = llm_int8_model(&base).unwrap();
    let setup = |s: &mut quantlab::model::State| {
        s.act = Some(llm_int8(6.0));
        s.matmul = MatmulPath::Int8;
    };
    let (want, stats) = per_position_with(&m, &toks, setup);
    assert_eq!((stats.integer, stats.float), (7 * 2 * toks.len() as u64, toks.len() as u64));
    assert!(same_bits(&batched_with(&m, &toks, 1, setup).0, &want));
}

#[test]
fn integer_and_simulated_paths_agree_up_to_summation_order() {
    // One product: int8 per-channel weights, inputs with outlier channels, 64 rows.
    let (rows, cols, n) = (48, 256, 64);
    let w: Vec<f32> = crate::model_quant::values(rows * cols, 5).iter().map(|v| v * 0.1).collect();
    let mut x: Vec<f32> = crate::model_quant::values(n * cols, 6).iter().map(|v| v * 4.0).collect();
    for r in 0..n {
        x[r * cols + 17] *= 10.0;
    }
    let t = vectorwise_weights(&w, TensorShape::new(rows, cols));
    let mags = magnitudes(&x, &t.dequantize(), cols);
    let m = Matrix::from_quantized(QuantizedTensor::Int(t)).unwrap();
    for q in [int8_token(), llm_int8(6.0)] {
        let run = |path| {
            let mut stats = PathStats::default();
            (product_as_forward(&m, Some(&q), path, LinearInput::Attention { layer: 0 }, &x, 3, &mut stats), stats)
        };
        let ((sim, s1), (int, s2)) = (run(MatmulPath::Exact), run(MatmulPath::Int8));
        assert_eq!((s1.float, s2.integer), (1, 1));
        within(&int, &sim, &mags, 2.0 * cols as f32 * f32::EPSILON, q.quant.name());
        assert!(!same_bits(&int, &sim), "{}: the two paths sum in different orders", q.quant.name());
    }
    // Q8_0 weights with int8-token codes: i32 block sums, the same bound; LLM.int8()'s outlier
    // columns have no integer kernel there (the f32 product of the simulated values runs).
    let shape = TensorShape::new(rows, cols);
    let q8 = Matrix::from_quantized(quantize(&QuantScheme::parse("q8_0").unwrap(), &w, shape).unwrap()).unwrap();
    let mags = magnitudes(&x, &q8.to_f32(), cols);
    for (q, integer) in [(int8_token(), 1), (llm_int8(6.0), 0)] {
        let run = |path| {
            let mut stats = PathStats::default();
            (product_as_forward(&q8, Some(&q), path, LinearInput::Ffn { layer: 1 }, &x, 2, &mut stats), stats)
        };
        let ((sim, _), (int, s2)) = (run(MatmulPath::Exact), run(MatmulPath::Int8));
        assert_eq!((s2.integer, s2.float), (integer, 1 - integer), "q8_0, {}", q.quant.name());
        within(&int, &sim, &mags, 2.0 * cols as f32 * f32::EPSILON, &format!("q8_0, {}", q.quant.name()));
    }
    // Through the forward: logits within the same kind of bound, same greedy tokens.
    let base = llm_int8_model(&model(8.0)).unwrap();
    let toks = tokens(13, 3);
    for q in [int8_token(), llm_int8(6.0)] {
        let (sim, _) = per_position_with(&base, &toks, |s| s.act = Some(q.clone()));
        let (int, _) = per_position_with(&base, &toks, |s| {
            s.act = Some(q.clone());
            s.matmul = MatmulPath::Int8;
        });
        let scale = sim.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (i, (a, b)) in sim.iter().zip(&int).enumerate() {
            assert!((a - b).abs() <= 1e-4 * scale, "{}: logit {i}: {a} vs {b}", q.quant.name());
        }
    }
}

#[test]
fn bad_llm_int8_setups_are_errors() {
    for t in [0.0, -1.0, f32::NAN] {
        let e = ActQuantizer::new(ActQuant::LLM_INT8, ActHead::Float, None, 1).unwrap().with_threshold(t);
        assert!(matches!(e, Err(ActQuantError::BadThreshold { .. })), "{t}");
    }
    let int4 = ActQuant { ty: quantlab::model::ActType::Int4, ..ActQuant::LLM_INT8 };
    let e = ActQuantizer::new(int4, ActHead::Float, None, 1);
    assert!(matches!(e, Err(ActQuantError::OutliersNeedInt8 { .. })));
}
