//! AWQ against an independent numpy port of the published search (scripts/dev/awq_reference.py,
//! fixtures in tests/fixtures/awq/), and against round to nearest on a real layer.
//!
//! What is exact and why: `mean |x|` of the f16-valued inputs is exact in f64 in any order; the
//! scales are the same f64 operations (C `pow`, the normalisation) rounded to f32; `W·s`, the
//! quantizer, `/s`, `x/s` and the clamps are the same single f32 operations. Only the output
//! differences are summed differently (f64 matrix products there, f32 dot products with 8
//! partial sums here), a relative difference near 1e-6 in each loss — far below the margin
//! between the best ratio and the runner-up the script records (checked here) and below any
//! real gap between two clip candidates. So the ratio, the scales, the clip values and the
//! decoded weights are compared exactly; the losses within 1e-4 relative.

use half::f16;
use quantlab::formats::{QuantScheme, TensorShape};
use quantlab::methods::awq::{quantize, Activations, Clip, Linear};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Manifest {
    rows: usize,
    cols: usize,
    tokens: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    scheme: String,
    ratio_index: usize,
    losses: Vec<f64>,
    best_loss_margin: f64,
}

fn read(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/awq").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn f16s(name: &str) -> Vec<f32> {
    read(name).chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
}

fn f32s(name: &str) -> Vec<f32> {
    read(name).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// `mean |x|` per column in f64 (exact for these inputs), stored as f32.
fn abs_mean(x: &[f32], cols: usize) -> Vec<f32> {
    let mut sum = vec![0f64; cols];
    for row in x.chunks_exact(cols) {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += f64::from(v.abs());
        }
    }
    let n = (x.len() / cols) as f64;
    sum.iter().map(|&s| (s / n) as f32).collect()
}

#[test]
fn awq_matches_the_numpy_reference() {
    let m: Manifest = serde_json::from_slice(&read("manifest.json")).unwrap();
    let (w, x) = (f16s("w.f16.bin"), f16s("x.f16.bin"));
    assert_eq!((w.len(), x.len()), (m.rows * m.cols, m.tokens * m.cols));
    let mean = abs_mean(&x, m.cols);
    let acts = Activations { rows: &x, abs_mean: &mean };
    assert_eq!(m.cases.len(), 2);
    for case in &m.cases {
        assert!(case.best_loss_margin > 1e-3, "{}: the fixture's best ratio is not clear", case.scheme);
        let scheme = QuantScheme::parse(&case.scheme).unwrap();
        let linear = Linear { scheme: &scheme, weights: &w, shape: TensorShape::new(m.rows, m.cols) };
        let out = quantize(linear, &acts, Clip::Search).unwrap();
        assert_eq!(out.choice.ratio_index, case.ratio_index, "{}", case.scheme);
        for (i, (a, b)) in out.choice.losses.iter().zip(&case.losses).enumerate() {
            assert!((a - b).abs() <= 1e-4 * b, "{} ratio {i}: loss {a} vs {b}", case.scheme);
        }
        assert_eq!(out.choice.scales, f32s(&format!("{}.scales.f32.bin", case.scheme)), "{}", case.scheme);
        assert_eq!(out.clip.as_deref(), Some(&f32s(&format!("{}.clip.f32.bin", case.scheme))[..]), "{}", case.scheme);
        let expected = f32s(&format!("{}.deq.f32.bin", case.scheme));
        let differing = out.values.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 0, "{}: {differing} of {} weights differ", case.scheme, expected.len());
        assert_eq!(out.tensor.scheme(), scheme);
        // The scales protect the salient channels: AWQ's output error is below the unscaled
        // ratio 0's (round to nearest of the unscaled weights, before clipping).
        assert!(case.losses[case.ratio_index] < case.losses[0]);
    }
}
