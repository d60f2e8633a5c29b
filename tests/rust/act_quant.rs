//! Activation quantization (`quantlab::model::act_quant`), static range calibration
//! (`quantlab::calib::ranges`) and SmoothQuant (`quantlab::methods::smoothquant`):
//!
//! - every quantizer, the |x| histogram, the four range rules (with the MSE and KL curves) and
//!   the smoothing factors and folded weights against the numpy port in
//!   `scripts/dev/make_act_quant_goldens.py` (fixtures in tests/fixtures/act_quant/: heavy-tailed
//!   data with outlier channels);
//! - on a small model: the batched forward equals the per-position one bit for bit with
//!   quantized activations (per-token and static; per-tensor dynamic with blocks of one, and
//!   differs from per-token with larger blocks, as its scale spans the block); the smoothed float
//!   model's logits equal the original's within f32 rounding, and smoothing lowers the error of
//!   per-tensor INT8 activations on a model with outlier channels (what SmoothQuant is for).

use quantlab::calib::ranges::{
    bin_of, calibrate_ranges, kl_curve, kl_levels, mse_curve, percentile_threshold, threshold, AbsHistogram,
    ChannelAbsMax, RangeRule, HIST_BINS, START_BIN,
};
use quantlab::calib::{collect, CalibHooks, ChunkPlan};
use quantlab::formats::TensorShape;
use quantlab::methods::smoothquant::{fold, smooth_model, smoothing_factors};
use quantlab::model::weights::Layer;
use quantlab::model::{
    forward, forward_batch, ActGranularity, ActHead, ActQuant, ActQuantizer, ActRanges, ActType, ActivationObserver,
    BatchLogits, BatchState, Block, Config, LinearInput, Matrix, Model, PathStats, State, Weights,
};
use std::collections::BTreeMap;
use std::path::Path;

fn raw(name: &str) -> Vec<u8> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/act_quant"));
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn f32s(name: &str) -> Vec<f32> {
    raw(name).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn f64s(name: &str) -> Vec<f64> {
    raw(name).chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
}

fn manifest() -> serde_json::Value {
    serde_json::from_slice(&raw("manifest.json")).unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// Static ranges of `t` for every input of a model of `n_layers` layers (and its classifier).
fn uniform_ranges(n_layers: usize, t: f32) -> ActRanges {
    let mut thresholds: BTreeMap<LinearInput, f32> =
        (0..n_layers).flat_map(quantlab::model::act_quant::layer_inputs).map(|i| (i, t)).collect();
    thresholds.insert(LinearInput::Classifier, t);
    ActRanges { thresholds }
}

#[test]
fn quantizers_match_the_numpy_reference() {
    let m = manifest();
    let width = m["width"].as_u64().unwrap() as usize;
    let inputs = f32s("inputs.f32.bin");
    let ranges = uniform_ranges(1, m["static_threshold"].as_f64().unwrap() as f32);
    // LLM.int8()'s golden is bitsandbytes' (tests/rust/llm_int8.rs).
    for quant in ActQuant::ALL.into_iter().filter(|&q| q != ActQuant::LLM_INT8) {
        let q = ActQuantizer::new(quant, ActHead::Float, Some(&ranges), 1).unwrap();
        let mut got = inputs.clone();
        q.apply(LinearInput::AttentionOutput { layer: 0 }, &mut got, width);
        let want = f32s(&format!("{}.f32.bin", quant.name()));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            // `==`: the rules are exact (±0 may differ in sign between codes and numpy).
            assert!(g == w, "{quant}: element {i} (input {}): {g} vs numpy {w}", inputs[i]);
        }
        assert_ne!(want, inputs, "{quant}: the golden must actually round");
    }
}

#[test]
fn histogram_and_ranges_match_the_numpy_reference() {
    let m = manifest();
    let c = &m["calib"];
    let (width, rows) = (c["width"].as_u64().unwrap() as usize, c["rows"].as_u64().unwrap() as usize);
    let want = |k: &str| c["ranges"][k].as_f64().unwrap() as f32;
    let data = f32s("calib.f32.bin");
    let input = LinearInput::FfnDown { layer: 3 };
    // The two passes of `calibrate_ranges`, chunk by chunk as the forward shows them.
    let mut absmax = ChannelAbsMax::default();
    for chunk in data.chunks_exact(rows * width) {
        absmax.observe(input, chunk, width);
    }
    let max = absmax.tensor_max(input);
    assert_eq!(max, want("max"));
    let mut hist = AbsHistogram::new(BTreeMap::from([(input, max)]));
    for chunk in data.chunks_exact(rows * width) {
        hist.observe(input, chunk, width);
    }
    let counts = &hist.counts[&input];
    let golden: Vec<u64> =
        raw("hist.u32.bin").chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap()).into()).collect();
    assert_eq!(counts, &golden);
    assert_eq!(bin_of(max, max), HIST_BINS - 1);

    assert_eq!(threshold(RangeRule::MinMax, counts, max, ActType::Int8), want("minmax"));
    for p in [99.99, 99.9] {
        assert_eq!(percentile_threshold(counts, max, p), want(&format!("p{p}")), "p{p}");
    }
    for ty in ActType::ALL {
        let curve = mse_curve(counts, max, ty);
        let golden = f64s(&format!("mse-{}.f64.bin", ty.name()));
        assert_eq!(curve.len(), HIST_BINS - START_BIN);
        for (i, (a, b)) in curve.iter().zip(&golden).enumerate() {
            assert!(close(*a, *b, 1e-12), "mse {}: candidate {i}: {a} vs numpy {b}", ty.name());
        }
        assert_eq!(threshold(RangeRule::Mse, counts, max, ty), want(&format!("mse-{}", ty.name())), "{}", ty.name());
    }
    for ty in [ActType::Int8, ActType::Int4] {
        let curve = kl_curve(counts, kl_levels(ty));
        let golden = f64s(&format!("kl-{}.f64.bin", ty.name()));
        assert_eq!(curve.len(), golden.len());
        for (i, (a, b)) in curve.iter().zip(&golden).enumerate() {
            assert!(close(*a, *b, 1e-9), "kl {}: candidate {i}: {a} vs numpy {b}", ty.name());
        }
        let t = threshold(RangeRule::Kl, counts, max, ty);
        assert_eq!(t, want(&format!("kl-{}", ty.name())), "{}", ty.name());
        // The heavy tail makes KL clip far below the max.
        assert!(t < max / 2.0, "kl {}: {t} of {max}", ty.name());
    }
}

#[test]
fn smoothing_matches_the_numpy_reference() {
    let act_max = f32s("sq-act-max.f32.bin");
    let (norm, w) = (f32s("sq-norm.f32.bin"), f32s("sq-w.f32.bin"));
    let width = act_max.len();
    let split = [32 * width, 48 * width];
    for alpha in [0.5f32, 0.8] {
        let parts = [&w[..split[0]], &w[split[0]..split[1]], &w[split[1]..]];
        let s = smoothing_factors(&act_max, &parts, alpha);
        for (i, (a, b)) in s.iter().zip(f32s(&format!("sq-s-{alpha}.f32.bin"))).enumerate() {
            assert!(close(f64::from(*a), f64::from(b), 1e-6), "α {alpha}: factor {i}: {a} vs numpy {b}");
        }
        assert_eq!(s[9], 1e-5, "a channel that never fired gets the floor");
        let (mut n, mut mats) = (norm.clone(), parts.map(<[f32]>::to_vec));
        fold(&mut n, &mut mats.iter_mut().collect::<Vec<_>>(), &s);
        let want_n = f32s(&format!("sq-norm-{alpha}.f32.bin"));
        let want_w = f32s(&format!("sq-w-{alpha}.f32.bin"));
        for (a, b) in n.iter().zip(&want_n).chain(mats.concat().iter().zip(&want_w)) {
            assert!(close(f64::from(*a), f64::from(*b), 2e-6), "α {alpha}: {a} vs numpy {b}");
        }
    }
}

// ---- a small model ------------------------------------------------------------------------

pub(crate) fn config() -> Config {
    Config {
        dim: 64,
        hidden_dim: 96,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 16,
        rope_dim: 16,
        vocab_size: 40,
        seq_len: 32,
        rope_theta: 10000.0,
        rms_eps: 1e-5,
        tied_embeddings: false,
    }
}

fn matrix(rows: usize, cols: usize, seed: u64) -> Matrix {
    let scale = 2.0 / (cols as f32).sqrt();
    let data = crate::model_quant::values(rows * cols, seed).into_iter().map(|v| v * scale).collect();
    Matrix::F32 { shape: TensorShape::new(rows, cols), data }
}

/// Two layers; the norms' weights have a few channels `outlier` times larger than the rest, so
/// the layers' inputs carry outlier channels as LLM activations do.
pub(crate) fn model(outlier: f32) -> Model {
    let c = config();
    let norm = |seed: u64| {
        let mut v: Vec<f32> = crate::model_quant::values(c.dim, seed).iter().map(|x| 1.0 + 0.5 * x).collect();
        v[5] *= outlier;
        v[33] *= -outlier;
        v
    };
    let layers = (0..c.n_layers as u64)
        .map(|l| Layer {
            attn_norm: norm(100 + l),
            wq: matrix(c.q_dim(), c.dim, 10 * l + 1),
            wk: matrix(c.kv_dim(), c.dim, 10 * l + 2),
            wv: matrix(c.kv_dim(), c.dim, 10 * l + 3),
            wo: matrix(c.dim, c.q_dim(), 10 * l + 4),
            ffn_norm: norm(200 + l),
            w_gate: matrix(c.hidden_dim, c.dim, 10 * l + 5),
            w_down: matrix(c.dim, c.hidden_dim, 10 * l + 6),
            w_up: matrix(c.hidden_dim, c.dim, 10 * l + 7),
        })
        .collect();
    let weights = Weights {
        token_embd: matrix(c.vocab_size, c.dim, 90),
        layers,
        output_norm: norm(300),
        output: Some(matrix(c.vocab_size, c.dim, 91)),
    };
    Model { config: c, weights }
}

pub(crate) fn tokens(n: usize, seed: u64) -> Vec<u32> {
    crate::model_quant::values(n, seed).iter().map(|v| ((v + 0.5).abs() * 39.0) as u32 % 40).collect()
}

/// Logits of every position through the per-position forward.
fn per_position(m: &Model, toks: &[u32], act: Option<ActQuantizer>) -> Vec<f32> {
    per_position_with(m, toks, |s| s.act = act.clone()).0
}

/// [`per_position`] with the state set up by `setup`; also the state's product stats.
pub(crate) fn per_position_with(m: &Model, toks: &[u32], setup: impl Fn(&mut State)) -> (Vec<f32>, PathStats) {
    let mut s = State::new(&m.config, toks.len());
    setup(&mut s);
    let logits =
        toks.iter().enumerate().flat_map(|(p, &t)| forward(&m.config, &m.weights, &mut s, t, p).to_vec()).collect();
    (logits, s.stats)
}

/// Logits of every position through the batched forward in blocks of `block`.
fn batched(m: &Model, toks: &[u32], act: Option<ActQuantizer>, block: usize) -> Vec<f32> {
    batched_with(m, toks, block, |s| s.act = act.clone()).0
}

/// [`batched`] with the state set up by `setup`; also the state's product stats.
pub(crate) fn batched_with(m: &Model, toks: &[u32], block: usize, setup: impl Fn(&mut State)) -> (Vec<f32>, PathStats) {
    let mut s = State::new(&m.config, toks.len());
    setup(&mut s);
    let mut b = BatchState::new(&m.config, block);
    let mut out = Vec::new();
    for (i, part) in toks.chunks(block).enumerate() {
        let blk = Block { tokens: part, pos0: i * block, logits: BatchLogits::Every };
        out.extend_from_slice(forward_batch(&m.config, &m.weights, &mut s, &mut b, blk));
    }
    (out, s.stats)
}

pub(crate) fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn batched_forward_equals_per_position_with_quantized_activations() {
    let m = model(8.0);
    let toks = tokens(13, 7);
    let calib = tokens(32, 8);
    let plan = ChunkPlan::new(16, 32, None);
    let float = per_position(&m, &toks, None);
    for quant in ActQuant::ALL {
        for head in [ActHead::Float, ActHead::Quantized] {
            let ranges = quant.is_static().then(|| {
                let rule = if quant.ty == ActType::Fp8E4M3 { RangeRule::Mse } else { RangeRule::Kl };
                calibrate_ranges(&m, &calib, &plan, rule, quant.ty, CalibHooks::default()).unwrap().0
            });
            let q = ActQuantizer::new(quant, head, ranges.as_ref(), m.config.n_layers).unwrap();
            let want = per_position(&m, &toks, Some(q.clone()));
            assert!(!same_bits(&want, &float), "{quant}: quantizing must change the logits");
            let blocks: &[usize] = match quant.granularity {
                // Scales (outlier columns) that span the rows read at once.
                ActGranularity::PerTensorDynamic | ActGranularity::PerTokenOutliers => &[1],
                _ => &[1, 5, 13],
            };
            for &block in blocks {
                assert!(
                    same_bits(&batched(&m, &toks, Some(q.clone()), block), &want),
                    "{quant} {head:?}: block {block}"
                );
            }
        }
    }
    // Per-tensor dynamic scales span the block: with blocks of 5 they differ from per-token's.
    let q = |g| ActQuantizer::new(ActQuant { ty: ActType::Int8, granularity: g }, ActHead::Float, None, 2).unwrap();
    let tensor = batched(&m, &toks, Some(q(ActGranularity::PerTensorDynamic)), 5);
    assert!(!same_bits(&tensor, &batched(&m, &toks, Some(q(ActGranularity::PerToken)), 5)));
    assert!(same_bits(&batched(&m, &toks, None, 5), &float), "off, the forward is the f32 one");
}

/// Mean |Δlogit| between two runs.
fn mean_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs())).sum::<f64>() / a.len() as f64
}

#[test]
fn smoothing_keeps_the_float_model_and_helps_int8_activations() {
    let m = model(20.0);
    let calib = tokens(32, 9);
    let mut absmax = ChannelAbsMax::default();
    collect(&m, &calib, &ChunkPlan::new(16, 32, None), &mut absmax, CalibHooks::default()).unwrap();
    let (smoothed, factors) = smooth_model(&m, &absmax, 0.5).unwrap();
    assert_eq!(factors.len(), 2 * m.config.n_layers);
    // The outlier channels get the largest factors.
    for (input, s) in &factors {
        let top = s.iter().enumerate().fold(0, |b, (i, &v)| if v > s[b] { i } else { b });
        assert!(top == 5 || top == 33, "{input:?}: largest factor at channel {top}");
    }
    let toks = tokens(13, 7);
    let (float, smooth_float) = (per_position(&m, &toks, None), per_position(&smoothed, &toks, None));
    let scale = float.iter().fold(0f32, |a, v| a.max(v.abs()));
    for (i, (a, b)) in float.iter().zip(&smooth_float).enumerate() {
        // f32 rounding of `(x / s) · (s · w)` against `x · w`, through two layers: a few ulps of the scale.
        assert!((a - b).abs() <= 1e-5 * scale, "logit {i}: {a} vs smoothed {b} (scale {scale})");
    }
    let int8 = ActQuant { ty: ActType::Int8, granularity: ActGranularity::PerTensorDynamic };
    let q = ActQuantizer::new(int8, ActHead::Float, None, 2).unwrap();
    let naive = mean_abs_diff(&per_position(&m, &toks, Some(q.clone())), &float);
    let smoothed_err = mean_abs_diff(&per_position(&smoothed, &toks, Some(q)), &float);
    assert!(smoothed_err < 0.7 * naive, "per-tensor int8: smoothed {smoothed_err} vs naive {naive}");
}

#[test]
fn bad_setups_are_errors() {
    use quantlab::calib::ranges::RangeRuleError;
    use quantlab::model::ActQuantError;
    let int8s = ActQuant::parse("int8-static").unwrap();
    assert!(matches!(ActQuantizer::new(int8s, ActHead::Float, None, 2), Err(ActQuantError::NoRanges { .. })));
    let mut r = uniform_ranges(1, 1.0);
    assert!(matches!(
        ActQuantizer::new(int8s, ActHead::Float, Some(&r), 2),
        Err(ActQuantError::MissingRange { input: LinearInput::Attention { layer: 1 } })
    ));
    r.thresholds.insert(LinearInput::Ffn { layer: 0 }, f32::NAN);
    assert!(matches!(ActQuantizer::new(int8s, ActHead::Float, Some(&r), 1), Err(ActQuantError::BadRange { .. })));
    let m = model(1.0);
    let e = calibrate_ranges(
        &m,
        &tokens(32, 1),
        &ChunkPlan::new(16, 32, None),
        RangeRule::Kl,
        ActType::Fp8E4M3,
        CalibHooks::default(),
    );
    assert!(matches!(e, Err(quantlab::calib::CalibError::Range(RangeRuleError::KlNeedsIntegers { .. }))));
    assert!(smooth_model(&m, &ChannelAbsMax::default(), 0.5).is_err());
    assert!(smooth_model(&m, &ChannelAbsMax::default(), 1.5).is_err());
}
