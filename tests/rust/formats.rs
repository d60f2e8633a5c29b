//! GGML block formats: golden tests against gguf-py (tests/fixtures/ggml, made by
//! scripts/dev/make_ggml_goldens.py), hand-checked blocks, error cases and round-trip bounds.

use quantlab::formats::ggml::{q4_0, q4_1, q5_0, q5_1, q8_0, q8_k};
use quantlab::formats::GgmlType;
use quantlab::formats::{can_dequantize, can_quantize, dequantize_row, quantize_row, FormatError};

use crate::fixtures::{ggml_dir as fixture_dir, read_ggml as read, read_ggml_f32 as read_f32};

struct Case {
    name: String,
    ty: GgmlType,
    n_values: usize,
    input: Option<String>,
    packed: String,
    dequantized: String,
    block_values: usize,
    labels: Vec<String>,
}

impl Case {
    /// Label of the block holding value `i` (for F16/BF16 cases: the value group).
    fn label(&self, i: usize) -> String {
        let b = i / self.block_values;
        match self.labels.get(b) {
            Some(l) if self.block_values > 1 => format!("block {b} ({l})"),
            _ => format!("value {i}"),
        }
    }
}

fn cases() -> Vec<Case> {
    let manifest: serde_json::Value = serde_json::from_slice(&read("manifest.json")).expect("manifest.json");
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    manifest["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: s(&c["name"]),
            ty: GgmlType::from_name(c["type"].as_str().unwrap()).expect("known type"),
            n_values: c["n_values"].as_u64().unwrap() as usize,
            input: c["input"].as_str().map(str::to_string),
            packed: s(&c["packed"]),
            dequantized: s(&c["dequantized"]),
            block_values: c["block_values"].as_u64().unwrap() as usize,
            labels: c["labels"].as_array().unwrap().iter().map(s).collect(),
        })
        .collect()
}

/// Bit-identical, except that any NaN matches any NaN (payload quieting differs between
/// f16 conversion routines). Signed zeros must match.
fn same_f32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn assert_same_f32(case: &Case, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{}: length", case.name);
    let bad: Vec<usize> = (0..got.len()).filter(|&i| !same_f32(got[i], want[i])).collect();
    if let Some(&i) = bad.first() {
        panic!(
            "{}: {} of {} values differ; first at {i} in {}: got {:e} ({:#010x}), gguf-py {:e} ({:#010x})",
            case.name,
            bad.len(),
            got.len(),
            case.label(i),
            got[i],
            got[i].to_bits(),
            want[i],
            want[i].to_bits()
        );
    }
}

#[test]
fn golden_dequantize_matches_gguf_py() {
    let cases = cases();
    assert!(cases.len() >= 20, "manifest lists {} cases", cases.len());
    for case in &cases {
        let packed = read(&case.packed);
        let want = read_f32(&case.dequantized);
        assert_eq!(want.len(), case.n_values, "{}", case.name);
        let mut got = vec![0.0f32; case.n_values];
        dequantize_row(case.ty, &packed, &mut got).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_same_f32(case, &got, &want);
    }
}

#[test]
fn golden_quantize_matches_gguf_py() {
    let mut n = 0;
    for case in cases().iter().filter(|c| c.input.is_some()) {
        let input = read_f32(case.input.as_deref().unwrap());
        let want = read(&case.packed);
        let mut got = vec![0u8; want.len()];
        quantize_row(case.ty, &input, &mut got).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let bytes_per_block = case.ty.type_size() * case.block_values / case.ty.block_size();
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            let block = i / bytes_per_block;
            let r = block * bytes_per_block..(block + 1) * bytes_per_block;
            panic!(
                "{}: byte {i} differs, in {}:\n got     {:02x?}\n gguf-py {:02x?}",
                case.name,
                case.label(block * case.block_values),
                &got[r.clone()],
                &want[r]
            );
        }
        n += 1;
    }
    assert_eq!(n, 7, "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, F16, BF16 have quantizer goldens");
}

#[test]
fn every_dequantizable_type_has_a_golden_or_a_hand_test() {
    let cases = cases();
    let hand_tested = [GgmlType::F32, GgmlType::F64, GgmlType::Q8_K];
    for ty in quantlab::gguf::ALL_TYPES.into_iter().filter(|&t| can_dequantize(t)) {
        assert!(hand_tested.contains(&ty) || cases.iter().any(|c| c.ty == ty), "{ty} has no golden case");
    }
    for ty in quantlab::gguf::ALL_TYPES.into_iter().filter(|&t| can_quantize(t)) {
        // The K-quants' and IQ4_NL's quantizer goldens come from llama.cpp's C code: kq_manifest.json,
        // tests/rust/kquants.rs.
        let k_quant = matches!(
            ty,
            GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K | GgmlType::IQ4_NL
        );
        assert!(
            ty == GgmlType::F32 || k_quant || cases.iter().any(|c| c.ty == ty && c.input.is_some()),
            "{ty} has no quantizer golden"
        );
    }
}

#[test]
fn unaligned_source_bytes_decode_the_same() {
    for case in cases() {
        let packed = read(&case.packed);
        let mut shifted = vec![0u8; packed.len() + 1];
        shifted[1..].copy_from_slice(&packed);
        let (mut a, mut b) = (vec![0.0f32; case.n_values], vec![0.0f32; case.n_values]);
        dequantize_row(case.ty, &packed, &mut a).unwrap();
        dequantize_row(case.ty, &shifted[1..], &mut b).unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| same_f32(*x, *y)), "{}", case.name);
    }
}

#[test]
fn block_struct_api_matches_byte_api() {
    let input: Vec<f32> = (0..128).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).collect();
    let mut blocks = vec![bytemuck::Zeroable::zeroed(); 4];
    q4_1::quantize_ref(&input, &mut blocks);
    let mut bytes = vec![0u8; 80];
    quantize_row(GgmlType::Q4_1, &input, &mut bytes).unwrap();
    assert_eq!(bytemuck::cast_slice::<q4_1::BlockQ4_1, u8>(&blocks), &bytes[..]);
    let (mut a, mut b) = (vec![0.0; 128], vec![0.0; 128]);
    q4_1::dequantize_ref(&blocks, &mut a);
    dequantize_row(GgmlType::Q4_1, &bytes, &mut b).unwrap();
    assert_eq!(a, b);
}

#[test]
fn q8_k_by_hand() {
    let mut b: q8_k::BlockQ8K = bytemuck::Zeroable::zeroed();
    b.d = 0.37;
    for (j, q) in b.qs.iter_mut().enumerate() {
        *q = (j as i32 * 7 % 256 - 128) as i8;
    }
    b.bsums = [123; 16]; // not used by dequantization
    let mut y = vec![0.0f32; 256];
    dequantize_row(GgmlType::Q8_K, bytemuck::bytes_of(&b), &mut y).unwrap();
    for (j, &v) in y.iter().enumerate() {
        assert_eq!(v.to_bits(), (0.37f32 * b.qs[j] as f32).to_bits(), "value {j}");
    }
}

#[test]
fn f32_and_f64_by_hand() {
    let xs = [0.0f32, -0.0, 1.5, -3.25e-39, f32::MAX, f32::INFINITY];
    let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut y = [0.0f32; 6];
    dequantize_row(GgmlType::F32, &bytes, &mut y).unwrap();
    assert!(xs.iter().zip(&y).all(|(a, b)| a.to_bits() == b.to_bits()));
    let mut back = vec![0u8; 20];
    quantize_row(GgmlType::F32, &xs[..5], &mut back).unwrap();
    assert_eq!(back, bytes[..20]);

    // C's (float) cast: round to nearest-even, overflow to inf, NaN stays NaN.
    let ds = [1.0f64 + 2f64.powi(-24), 1.0 + 3.0 * 2f64.powi(-24), -1e300, 1e-50, 0.1, f64::NAN];
    let want = [1.0f32, 1.0 + 2f32.powi(-22), f32::NEG_INFINITY, 0.0, 0.1f32, f32::NAN];
    let bytes: Vec<u8> = ds.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut y = [0.0f32; 6];
    dequantize_row(GgmlType::F64, &bytes, &mut y).unwrap();
    for i in 0..6 {
        assert!(same_f32(y[i], want[i]), "F64 value {i}: {} vs {}", y[i], want[i]);
    }
}

#[test]
fn size_and_support_errors() {
    let mut out = vec![0.0f32; 33];
    assert_eq!(
        dequantize_row(GgmlType::Q4_0, &[0; 18], &mut out),
        Err(FormatError::NotWholeBlocks { ty: GgmlType::Q4_0, n_values: 33, block: 32 })
    );
    let mut out = vec![0.0f32; 64];
    assert_eq!(
        dequantize_row(GgmlType::Q4_1, &[0; 39], &mut out),
        Err(FormatError::WrongByteCount { ty: GgmlType::Q4_1, n_values: 64, expected: 40, got: 39 })
    );
    let mut out = vec![0.0f32; 256];
    assert_eq!(dequantize_row(GgmlType::IQ2_XXS, &[0; 66], &mut out), Err(FormatError::Unsupported(GgmlType::IQ2_XXS)));
    let mut bytes = vec![0u8; 66];
    assert_eq!(
        quantize_row(GgmlType::IQ2_XXS, &[0.0; 256], &mut bytes),
        Err(FormatError::Unsupported(GgmlType::IQ2_XXS))
    );
    let mut bytes = vec![0u8; 33];
    assert_eq!(
        quantize_row(GgmlType::Q8_0, &[0.0; 32], &mut bytes),
        Err(FormatError::WrongByteCount { ty: GgmlType::Q8_0, n_values: 32, expected: 34, got: 33 })
    );
    for ty in quantlab::gguf::ALL_TYPES {
        let (block, bytes) = ty.block_layout();
        let mut out = vec![0.0f32; block];
        let ok = dequantize_row(ty, &vec![0u8; bytes], &mut out).is_ok();
        assert_eq!(ok, can_dequantize(ty), "{ty}");
        let mut packed = vec![0u8; bytes];
        let ok = quantize_row(ty, &vec![0.0; block], &mut packed).is_ok();
        assert_eq!(ok, can_quantize(ty), "{ty}");
    }
}

#[test]
fn non_finite_input_is_rejected_with_its_position() {
    for ty in quantlab::gguf::ALL_TYPES.into_iter().filter(|&t| can_quantize(t)) {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut x = vec![0.5f32; 256];
            x[37] = bad;
            x[50] = f32::NAN;
            let mut out = vec![0xAAu8; ty.bytes_for(256).unwrap() as usize];
            assert_eq!(quantize_row(ty, &x, &mut out), Err(FormatError::NonFinite { index: 37 }), "{ty}");
            assert!(out.iter().all(|&b| b == 0xAA), "{ty}: nothing written");
        }
    }
}

/// C's min/max scans keep the first of equal values, so +0 / -0 order decides the sign of
/// Q4_1 / Q5_1's stored minimum (gguf-py's numpy keeps the last one; not in the goldens).
#[test]
fn signed_zero_minimum_follows_c_scan_order() {
    for (first, m_bits) in [(0.0f32, 0x0000u16), (-0.0, 0x8000)] {
        let x: [f32; 32] = std::array::from_fn(|j| if j % 2 == 0 { first } else { -first });
        let b = q4_1::quantize_block(&x);
        assert_eq!((b.d.to_bits(), b.m.to_bits()), (0, m_bits), "Q4_1, first zero {first:?}");
        let b = q5_1::quantize_block(&x);
        assert_eq!((b.d.to_bits(), b.m.to_bits()), (0, m_bits), "Q5_1, first zero {first:?}");
        // Q4_0 / Q5_0 start from max = +0 and only replace it on a strictly larger |v|.
        assert_eq!(q4_0::quantize_block(&x).d.to_bits(), 0x8000, "Q4_0: d = +0 / -8");
        assert_eq!(q5_0::quantize_block(&x).d.to_bits(), 0x8000, "Q5_0: d = +0 / -16");
    }
}

/// SplitMix64: a small deterministic PRNG for the property tests.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// A block of 32 values: uniform or roughly normal, with a random scale and offset.
    fn block(&mut self) -> [f32; 32] {
        let scale = 10f32.powf(self.unit() * 5.0 - 2.0); // 0.01 .. 1000
        let offset = if self.next_u64().is_multiple_of(3) { (self.unit() - 0.5) * scale } else { 0.0 };
        let normalish = self.next_u64().is_multiple_of(2);
        std::array::from_fn(|_| {
            let u = if normalish { (0..4).map(|_| self.unit()).sum::<f32>() - 2.0 } else { self.unit() * 2.0 - 1.0 };
            u * scale + offset
        })
    }
}

/// |x - deq(q(x))| <= |d| * (half_step + (|q| + 1) * 2^-10) + |m| * 2^-10 + 1e-6 * |x|, where the
/// 2^-10 terms cover the f16 rounding of the stored scale `d` and minimum `m` and
/// `half_step` is 0.5 (1.0 for the top code of Q4_0 / Q5_0, which is clamped).
#[test]
fn round_trip_error_is_within_half_a_step() {
    let mut rng = Rng(0x5EED_1234);
    let tol = |x: f32, y: f32, d: f32, m: f32, q: i32, half: f32| {
        let bound = d.abs() * (half + (q.abs() + 1) as f32 / 1024.0) + m.abs() / 1024.0 + 1e-6 * x.abs();
        assert!((x - y).abs() <= bound, "x {x} deq {y} d {d} m {m} q {q}: error {} > {bound}", (x - y).abs());
    };
    for _ in 0..2000 {
        let x = rng.block();
        let mut y = [0.0f32; 32];

        let b = q4_0::quantize_block(&x);
        q4_0::dequantize_block(&b, &mut y);
        for j in 0..32 {
            let code = if j < 16 { b.qs[j] & 15 } else { b.qs[j - 16] >> 4 } as i32;
            tol(x[j], y[j], b.d.to_f32(), 0.0, code - 8, if code == 15 { 1.0 } else { 0.5 });
        }

        let b = q5_0::quantize_block(&x);
        q5_0::dequantize_block(&b, &mut y);
        for j in 0..32 {
            let code = (y[j] / b.d.to_f32()).round() as i32 + 16;
            tol(x[j], y[j], b.d.to_f32(), 0.0, code - 16, if code == 31 { 1.0 } else { 0.5 });
        }

        let b = q8_0::quantize_block(&x);
        q8_0::dequantize_block(&b, &mut y);
        for j in 0..32 {
            tol(x[j], y[j], b.d.to_f32(), 0.0, b.qs[j] as i32, 0.5);
        }

        let b = q4_1::quantize_block(&x);
        q4_1::dequantize_block(&b, &mut y);
        for j in 0..32 {
            tol(x[j], y[j], b.d.to_f32(), b.m.to_f32(), 15, 0.5);
        }

        let b = q5_1::quantize_block(&x);
        q5_1::dequantize_block(&b, &mut y);
        for j in 0..32 {
            tol(x[j], y[j], b.d.to_f32(), b.m.to_f32(), 31, 0.5);
        }
    }
}

#[test]
fn fixtures_stay_small() {
    let total: u64 = std::fs::read_dir(fixture_dir()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(total < 300_000, "tests/fixtures/ggml is {total} bytes (budget 300 KB)");
}
