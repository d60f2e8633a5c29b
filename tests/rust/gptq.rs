//! GPTQ against an independent numpy port of the published algorithm
//! (scripts/dev/gptq_reference.py, fixtures in tests/fixtures/gptq/).
//!
//! The fixture's XᵀX is exact in f64 in any summation order (int8 inputs times powers of two),
//! the column updates are the same operations in the same order in both, and each weight is
//! rounded in f32 by the format's rule; the only difference is the Cholesky factor of H⁻¹
//! (LAPACK's route through three factorisations there, one factorisation here), a relative
//! difference near 1e-15, far below the f32 rounding of the values handed to the quantizer. So
//! the dequantized weights are compared exactly; a code could only differ for a weight within
//! about 1e-15 of a rounding boundary.

use half::f16;
use quantlab::formats::{GgmlType, QuantScheme, QuantizedTensor, TensorShape};
use quantlab::methods::gptq::{quantize, ColumnOrder, GptqOptions, SecondMomentRef};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Manifest {
    rows: usize,
    cols: usize,
    samples: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    scheme: String,
    act_order: bool,
    deq: String,
}

fn read(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gptq").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `Σ xᵀx` of the fixture's inputs, exact.
fn second_moment(m: &Manifest) -> Vec<f64> {
    let x8 = read("x.i8.bin");
    let exp = read("x_exp.i8.bin");
    let x: Vec<f64> =
        x8.iter().enumerate().map(|(i, &v)| f64::from(v as i8) * 2f64.powi(exp[i % m.cols] as i8 as i32)).collect();
    let mut xtx = vec![0f64; m.cols * m.cols];
    for row in x.chunks_exact(m.cols) {
        for i in 0..m.cols {
            for j in 0..m.cols {
                xtx[i * m.cols + j] += row[i] * row[j];
            }
        }
    }
    xtx
}

#[test]
fn gptq_matches_the_numpy_reference() {
    let m: Manifest = serde_json::from_slice(&read("manifest.json")).unwrap();
    let w: Vec<f32> = read("w.f16.bin").chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
    let xtx = second_moment(&m);
    let shape = TensorShape::new(m.rows, m.cols);
    assert_eq!(m.cases.len(), 5);
    for case in &m.cases {
        let scheme = QuantScheme::parse(&case.scheme).unwrap();
        let order = if case.act_order { ColumnOrder::ActOrder } else { ColumnOrder::Natural };
        let options = GptqOptions { order, ..Default::default() };
        let out = quantize(&scheme, &w, shape, SecondMomentRef { xtx: &xtx, samples: m.samples }, &options).unwrap();
        let expected: Vec<f32> =
            read(&case.deq).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let differing = out.values.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(
            differing,
            0,
            "{} act_order={}: {differing} of {} weights differ",
            case.scheme,
            case.act_order,
            expected.len()
        );
        assert_eq!(out.tensor.dequantize().unwrap(), out.values);
        if scheme.ggml_type() == Some(GgmlType::Q4_0) {
            assert!(matches!(out.tensor, QuantizedTensor::Ggml(_)));
        }
    }
}
