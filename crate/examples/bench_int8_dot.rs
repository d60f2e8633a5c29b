//! Matrix-vector products with 8-bit activations (`quantlab::model::int8_dot`, ggml's scheme)
//! against the exact f32-activation product (`Matrix::matvec_threads`) on the same packed
//! weights, 1 thread, for Q4_0, Q4_1 and Q8_0 at the default model's matrix shapes. Prints a
//! markdown table: median time per product of each path (the 8-bit path includes quantizing the
//! activation vector), their ratio, and the relative error of the 8-bit result against the exact
//! one. Rounds of the two paths are interleaved so machine load hits both alike.
//!
//!     cargo run --release --no-default-features --example bench_int8_dot [-- --rounds 15]

use std::time::Instant;

use quantlab::formats::quantized::GgmlTensor;
use quantlab::formats::{GgmlType, QuantizedTensor, TensorShape};
use quantlab::model::int8_dot::Q8Activations;
use quantlab::model::{Matrix, Rng};

/// (rows, cols): attention q/o, ffn gate/up, ffn down of SmolLM2-135M, and a 4096² matrix.
const SHAPES: [(usize, usize); 4] = [(576, 576), (1536, 576), (576, 1536), (4096, 4096)];

fn normal(r: &mut Rng) -> f32 {
    let (u, v) = (r.next_f32().max(1e-7), r.next_f32());
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

fn median_us(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2] * 1e6
}

fn main() {
    let mut rounds = 15usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).expect("--rounds N"),
            other => panic!("unknown argument {other}"),
        }
    }
    println!("| type | matrix | exact f32 µs | 8-bit act. µs | speed-up | rel. error |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut rng = Rng::new(7);
    for ty in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
        for (rows, cols) in SHAPES {
            let w: Vec<f32> = (0..rows * cols).map(|_| normal(&mut rng) * 0.02).collect();
            let shape = TensorShape::new(rows, cols);
            let m = Matrix::Quantized(QuantizedTensor::Ggml(GgmlTensor::quantize(ty, &w, shape).unwrap()));
            let x: Vec<f32> = (0..cols).map(|_| normal(&mut rng)).collect();
            let (mut exact, mut fast) = (vec![0f32; rows], vec![0f32; rows]);
            // Products per timed sample: about 2 ms of work.
            let reps = (4_000_000 / (rows * cols)).max(1);
            let (mut t_exact, mut t_fast) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                let t = Instant::now();
                for _ in 0..reps {
                    m.matvec_threads(std::hint::black_box(&x), &mut exact, 1);
                }
                t_exact.push(t.elapsed().as_secs_f64() / reps as f64);
                let t = Instant::now();
                for _ in 0..reps {
                    let q = Q8Activations::quantize(std::hint::black_box(&x)).unwrap();
                    m.matvec_int8_threads(&q, &mut fast, 1).unwrap();
                }
                t_fast.push(t.elapsed().as_secs_f64() / reps as f64);
            }
            let norm = exact.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
            let err = exact.iter().zip(&fast).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>().sqrt();
            let (e, f) = (median_us(t_exact), median_us(t_fast));
            println!("| {ty:?} | {rows}×{cols} | {e:.1} | {f:.1} | {:.2}× | {:.2e} |", e / f, err / norm);
        }
    }
}
