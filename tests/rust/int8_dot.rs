//! 8-bit-activation products (`quantlab::model::int8_dot`) against an independent numpy port of
//! ggml's reference code (`scripts/dev/make_int8_dot_goldens.py`, fixtures in
//! tests/fixtures/int8_dot/): the activation blocks byte for byte, the reference dots bit for
//! bit; the fast (AVX2) dots within float-reordering distance of the reference; the threaded
//! product equal to the row dots whatever the thread count.

use std::path::Path;

use quantlab::formats::quantized::GgmlTensor;
use quantlab::formats::{GgmlType, QuantizedTensor, TensorShape};
use quantlab::model::int8_dot::{Int8DotType, Q8Activations, BLOCK};
use quantlab::model::Matrix;

const ROWS_W: usize = 6;
const COLS: usize = 256;

fn fixture(name: &str) -> Vec<u8> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/int8_dot"));
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn floats(name: &str) -> Vec<f32> {
    // Little-endian f32s (not bytemuck's pod_collect_to_vec, which needs its alloc feature: only
    // the gpu feature's dependencies turn it on, so the build without default features failed).
    fixture(name).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

const CASES: [(Int8DotType, GgmlType, &str, &str); 3] = [
    (Int8DotType::Q4_0, GgmlType::Q4_0, "q4_0", "q8_0"),
    (Int8DotType::Q4_1, GgmlType::Q4_1, "q4_1", "q8_1"),
    (Int8DotType::Q8_0, GgmlType::Q8_0, "q8_0", "q8_0"),
];

fn activations() -> Vec<Q8Activations> {
    let acts: Vec<_> = floats("x.f32.bin").chunks_exact(COLS).map(|x| Q8Activations::quantize(x).unwrap()).collect();
    assert_eq!(acts.len(), 4, "the fixture's activation rows");
    acts
}

#[test]
fn activation_blocks_equal_ggml_reference_bytes() {
    let acts = activations();
    for (name, with_sum) in [("q8_0", false), ("q8_1", true)] {
        let got: Vec<u8> = acts.iter().flat_map(|a| a.to_ggml_bytes(with_sum)).collect();
        assert_eq!(got, fixture(&format!("act_{name}.bin")), "{name} blocks");
    }
    assert!(Q8Activations::quantize(&[1.0; 33]).is_none(), "a length off the 32-value block");
}

#[test]
fn reference_dots_equal_the_numpy_port_bit_for_bit() {
    let acts = activations();
    for (ty, _, name, _) in CASES {
        let w = fixture(&format!("w_{name}.bin"));
        let want = floats(&format!("dot_{name}.f32.bin"));
        let rb = w.len() / ROWS_W;
        for (r, a) in acts.iter().enumerate() {
            for (c, row) in w.chunks_exact(rb).enumerate() {
                let got = ty.dot_ref(row, a);
                assert_eq!(
                    got.to_bits(),
                    want[r * ROWS_W + c].to_bits(),
                    "{name} x{r}·w{c}: {got} vs {}",
                    want[r * ROWS_W + c]
                );
            }
        }
    }
}

/// Σ over blocks of |that block's reference dot|: the scale of the float reordering error.
fn magnitude(ty: Int8DotType, row: &[u8], x: &[f32]) -> f32 {
    row.chunks_exact(ty.block_bytes())
        .zip(x.chunks_exact(BLOCK))
        .map(|(b, xb)| ty.dot_ref(b, &Q8Activations::quantize(xb).unwrap()).abs())
        .sum()
}

#[test]
fn fast_dots_match_the_reference_up_to_summation_order() {
    let x = floats("x.f32.bin");
    let acts = activations();
    for (ty, _, name, _) in CASES {
        let w = fixture(&format!("w_{name}.bin"));
        let rb = w.len() / ROWS_W;
        for (r, a) in acts.iter().enumerate() {
            for (c, row) in w.chunks_exact(rb).enumerate() {
                let (fast, slow) = (ty.dot(row, a), ty.dot_ref(row, a));
                // 8 blocks: each sum in another order and one fused multiply-add per block.
                let tol = 8.0 * f32::EPSILON * magnitude(ty, row, &x[r * COLS..][..COLS]);
                assert!((fast - slow).abs() <= tol, "{name} x{r}·w{c}: fast {fast} vs reference {slow} (tol {tol})");
            }
        }
    }
}

/// The fixture's weight rows repeated `copies` times (enough rows for the product to be split
/// over threads).
fn matrix(ty: GgmlType, name: &str, copies: usize) -> Matrix {
    let data = fixture(&format!("w_{name}.bin")).repeat(copies);
    Matrix::Quantized(QuantizedTensor::Ggml(GgmlTensor { ty, shape: TensorShape::new(ROWS_W * copies, COLS), data }))
}

const COPIES: usize = 200;

#[test]
fn matrix_products_are_the_row_dots_at_any_thread_count() {
    let x = floats("x.f32.bin");
    for (ty, gty, name, _) in CASES {
        let m = matrix(gty, name, COPIES);
        let w = fixture(&format!("w_{name}.bin")).repeat(COPIES);
        for xr in x.chunks_exact(COLS) {
            let a = Q8Activations::quantize(xr).unwrap();
            let want: Vec<f32> = w.chunks_exact(w.len() / (ROWS_W * COPIES)).map(|row| ty.dot(row, &a)).collect();
            for threads in [1, 2, 3] {
                let mut out = vec![f32::NAN; ROWS_W * COPIES];
                m.matvec_int8_threads(&a, &mut out, threads).expect("a type with a kernel");
                assert_eq!(out, want, "{name} at {threads} threads");
            }
            // Close to the exact f32 product: the activation rounding is the only difference.
            let mut exact = vec![0f32; ROWS_W * COPIES];
            m.matvec_threads(xr, &mut exact, 1);
            let norm = exact.iter().map(|v| v * v).sum::<f32>().sqrt();
            let err = exact.iter().zip(&want).map(|(e, g)| (e - g) * (e - g)).sum::<f32>().sqrt();
            assert!(err <= 0.02 * norm, "{name}: 8-bit activations moved the product by {err} (norm {norm})");
        }
    }
    let f32m = Matrix::F32 { shape: TensorShape::new(1, COLS), data: vec![1.0; COLS] };
    let a = Q8Activations::quantize(&x[..COLS]).unwrap();
    assert!(f32m.matvec_int8_threads(&a, &mut [0.0], 1).is_none(), "f32 weights have no 8-bit kernel");
    assert_eq!(Int8DotType::of(&matrix(GgmlType::Q4_1, "q4_1", 1)), Some(Int8DotType::Q4_1));
}
