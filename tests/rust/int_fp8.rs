//! Integer RTN and FP8: golden tests against independent references (numpy implementation of
//! the documented INT formulas, scripts/dev/make_int_goldens.py; ml_dtypes for FP8,
//! scripts/dev/make_fp8_goldens.py) and property tests on pseudo-random data.

use quantlab::formats::fp8::{decode_e4m3, decode_e5m2, encode_e4m3, encode_e5m2, Fp8Format, Fp8Tensor};
use quantlab::formats::int::IntTensor;
use quantlab::formats::{quantize, Granularity, Mapping, QuantError, QuantScheme, QuantizedTensor, TensorShape};
use std::path::PathBuf;

fn fixtures(family: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(family)
}

fn read(family: &str, name: &str) -> Vec<u8> {
    let p = fixtures(family).join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub(crate) fn read_f32(family: &str, name: &str) -> Vec<f32> {
    read(family, name).chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// A small deterministic PRNG (xorshift64*), with a Box–Muller normal.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
    pub fn normals(&mut self, n: usize, sigma: f32) -> Vec<f32> {
        (0..n).map(|_| self.normal() * sigma).collect()
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> Option<usize> {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits())
}

// ---------------------------------------------------------------- FP8 against ml_dtypes

#[test]
fn fp8_decodes_all_256_codes_like_ml_dtypes() {
    for (name, decode) in [("e4m3", decode_e4m3 as fn(u8) -> f32), ("e5m2", decode_e5m2)] {
        let want = read_f32("fp8", &format!("decode_{name}.f32.bin"));
        assert_eq!(want.len(), 256);
        for (c, &w) in want.iter().enumerate() {
            let got = decode(c as u8);
            if w.is_nan() {
                assert!(got.is_nan(), "{name} code {c:#04x}: {got} should be NaN");
            } else {
                assert_eq!(got.to_bits(), w.to_bits(), "{name} code {c:#04x}: {got} vs {w}");
            }
        }
    }
    assert_eq!(decode_e4m3(0x7E), 448.0);
    assert_eq!(decode_e5m2(0x7B), 57344.0);
    assert_eq!(decode_e5m2(0x7C), f32::INFINITY);
    assert_eq!(decode_e4m3(0x01), 2f32.powi(-9));
    assert_eq!(decode_e5m2(0x01), 2f32.powi(-16));
}

#[test]
fn fp8_encodes_byte_exact_like_ml_dtypes() {
    let inputs = read_f32("fp8", "inputs.f32.bin");
    assert!(inputs.len() > 3000);
    for (name, encode, decode) in
        [("e4m3", encode_e4m3 as fn(f32) -> u8, decode_e4m3 as fn(u8) -> f32), ("e5m2", encode_e5m2, decode_e5m2)]
    {
        let want = read("fp8", &format!("{name}.u8.bin"));
        assert_eq!(want.len(), inputs.len());
        let mut mismatches = Vec::new();
        for (&x, &w) in inputs.iter().zip(&want) {
            let got = encode(x);
            let ok = if decode(w).is_nan() { decode(got).is_nan() } else { got == w };
            if !ok {
                mismatches.push(format!("{x:e} ({:#010x}): got {got:#04x} want {w:#04x}", x.to_bits()));
            }
        }
        assert!(
            mismatches.is_empty(),
            "{name}: {} mismatches, e.g. {:?}",
            mismatches.len(),
            &mismatches[..5.min(mismatches.len())]
        );
    }
}

#[test]
fn fp8_special_cases() {
    // Saturation (E4M3), overflow to inf (E5M2 raw), ties to even, signed zero.
    assert_eq!(encode_e4m3(1e9), 0x7E);
    assert_eq!(encode_e4m3(-500.0), 0xFE);
    assert_eq!(encode_e4m3(f32::INFINITY) & 0x7F, 0x7F);
    assert_eq!(encode_e5m2(1e9), 0x7C);
    assert_eq!(Fp8Format::E5M2.encode_saturating(1e9), 0x7B);
    assert_eq!(encode_e4m3(-0.0), 0x80);
    // 1.0625 is halfway between 1.0 (mantissa 000) and 1.125 (001): to even → 1.0.
    assert_eq!(decode_e4m3(encode_e4m3(1.0625)), 1.0);
    assert_eq!(decode_e4m3(encode_e4m3(1.1875)), 1.25);
    // Half the smallest subnormal rounds to zero (even), a bit more to the subnormal.
    assert_eq!(encode_e4m3(2f32.powi(-10)), 0x00);
    assert_eq!(encode_e4m3(2f32.powi(-10) * 1.01), 0x01);
}

#[test]
fn fp8_tensor_scales_levels_and_storage() {
    let mut rng = Rng::new(3);
    let shape = TensorShape::new(4, 64);
    let mut x = rng.normals(shape.len(), 0.02);
    x[64..128].fill(0.0);
    for (name, fmt) in [("fp8-e4m3-channel", Fp8Format::E4M3), ("fp8-e5m2-tensor", Fp8Format::E5M2)] {
        let scheme = QuantScheme::parse(name).unwrap();
        let t = Fp8Tensor::quantize(&scheme, &x, shape).unwrap();
        let deq = t.dequantize();
        let per_channel = name.ends_with("channel");
        assert_eq!(t.n_groups(), if per_channel { 4 } else { 1 });
        assert_eq!(t.storage_bytes(), 256 + 4 * t.n_groups() as u64);
        for g in 0..t.n_groups() {
            let len = if per_channel { 64 } else { 256 };
            let group = &x[g * len..(g + 1) * len];
            let absmax = group.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert_eq!(t.scales[g], absmax / fmt.max());
            let levels = t.levels(g);
            assert!(levels.windows(2).all(|w| w[0] < w[1]));
            if absmax == 0.0 {
                assert_eq!(levels, vec![0.0]);
            } else {
                // 126 (E4M3) / 123 (E5M2) positive finite values, their negatives, and zero.
                assert_eq!(levels.len(), if fmt == Fp8Format::E4M3 { 253 } else { 247 });
                assert_eq!(*levels.last().unwrap(), fmt.max() * t.scales[g]);
            }
        }
        for (i, (&xi, &yi)) in x.iter().zip(&deq).enumerate() {
            let g = t.group_of(i);
            assert!(t.levels(g).contains(&yi), "{name}: {yi} not a level of group {g}");
            // Relative error of a normal value is at most half an ulp: 2^-4 (E4M3), 2^-3 (E5M2).
            let rel = if fmt == Fp8Format::E4M3 { 1.0 / 16.0 } else { 1.0 / 8.0 };
            let sub = fmt.max() * t.scales[g] * 2f32.powi(-20);
            assert!((xi - yi).abs() <= xi.abs() * rel + sub, "{name}: {xi} -> {yi}");
            assert_eq!(yi, fmt.decode(t.codes()[i]) * t.scales[g]);
        }
    }
}

// ---------------------------------------------------------------- INT against numpy

#[derive(serde::Deserialize)]
struct IntManifest {
    cases: Vec<IntCase>,
}

#[derive(serde::Deserialize)]
struct IntCase {
    scheme: String,
    rows: usize,
    cols: usize,
    files: std::collections::HashMap<String, String>,
}

#[test]
fn int_matches_numpy_goldens_exactly() {
    let manifest: IntManifest = serde_json::from_slice(&read("int", "manifest.json")).unwrap();
    assert!(manifest.cases.len() >= 7);
    for case in &manifest.cases {
        let scheme = QuantScheme::parse(&case.scheme).unwrap();
        let x = read_f32("int", &case.files["in"]);
        let t = IntTensor::quantize(&scheme, &x, TensorShape::new(case.rows, case.cols)).unwrap();
        let name = &case.scheme;
        assert_eq!(t.codes(), read("int", &case.files["codes"]), "{name}: codes");
        let scales = read_f32("int", &case.files["scales"]);
        assert_eq!(same_bits(&t.scales, &scales), None, "{name}: scales {:?} vs {:?}", t.scales, scales);
        match case.files.get("zeros") {
            Some(z) => assert_eq!(t.zero_points, read("int", z), "{name}: zero points"),
            None => assert!(t.zero_points.is_empty()),
        }
        let deq = read_f32("int", &case.files["deq"]);
        let got = t.dequantize();
        assert_eq!(same_bits(&got, &deq), None, "{name}: dequantized values differ");
    }
}

#[test]
fn fixtures_stay_small() {
    let total: u64 = ["int", "fp8"]
        .iter()
        .flat_map(|f| std::fs::read_dir(fixtures(f)).unwrap())
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(total < 200_000, "tests/fixtures/{{int,fp8}} hold {total} bytes (budget 200 KB)");
}

// ---------------------------------------------------------------- INT properties

fn int_schemes() -> Vec<QuantScheme> {
    let mut out = Vec::new();
    for bits in [2u8, 3, 4, 8] {
        for mapping in [Mapping::Symmetric, Mapping::Asymmetric] {
            for g in [Granularity::Tensor, Granularity::Channel, Granularity::Group(2), Granularity::Group(32)] {
                out.push(QuantScheme::int(bits, mapping, g));
            }
        }
    }
    out
}

#[test]
fn minmax_rtn_error_is_at_most_half_a_step() {
    let mut rng = Rng::new(11);
    let shape = TensorShape::new(6, 64);
    let mut x = rng.normals(shape.len(), 0.1);
    x[70] = 3.0; // an outlier in row 1
    x[128..192].fill(0.25); // a constant row
    for scheme in int_schemes() {
        let t = IntTensor::quantize(&scheme, &x, shape).unwrap();
        let deq = t.dequantize();
        let codes = t.codes();
        for (i, (&xi, &yi)) in x.iter().zip(&deq).enumerate() {
            let g = t.group_of(i);
            let s = t.scales[g];
            // f16 scales may make the top level fall a hair short of the group maximum.
            let slack = if matches!(scheme.granularity, Granularity::Group(_)) { xi.abs() * 2e-3 } else { 0.0 };
            assert!((xi - yi).abs() <= s / 2.0 * (1.0 + 1e-5) + slack, "{scheme}: x[{i}] = {xi} -> {yi}, s = {s}");
            let levels = t.levels(g);
            assert!(levels.contains(&yi), "{scheme}: {yi} is not a level of group {g}");
            assert!(levels.contains(&0.0), "{scheme}: zero must be exactly representable");
            assert!(u32::from(codes[i]) < 1 << t.bits);
        }
        let bits = t.bits as u64;
        let n = shape.len() as u64;
        let sym = scheme.mapping == Mapping::Symmetric;
        let scale_bytes = if matches!(scheme.granularity, Granularity::Group(_)) { 2 } else { 4 };
        let g = t.n_groups() as u64;
        let want = (n * bits).div_ceil(8) + g * scale_bytes + if sym { 0 } else { (g * bits).div_ceil(8) };
        assert_eq!(t.storage_bytes(), want, "{scheme}");
        let expect_levels = if sym { (1 << t.bits) - 1 } else { 1 << t.bits };
        assert_eq!(t.levels(0).len(), expect_levels, "{scheme}");
    }
}

#[test]
fn int_dispatch_through_quantized_tensor() {
    let mut rng = Rng::new(5);
    let shape = TensorShape::new(3, 64);
    let x = rng.normals(shape.len(), 1.0);
    let q = quantize(&QuantScheme::parse("int4-asym-g32").unwrap(), &x, shape).unwrap();
    let QuantizedTensor::Int(t) = &q else { panic!("int family") };
    assert_eq!(q.n_groups(), 6);
    assert_eq!(q.codes(), t.codes());
    assert_eq!(q.levels(5), t.levels(5));
    assert_eq!(q.group_len(), 32);
    // 4.5 bpw + f16 scale per 32 + 4-bit zero point per 32 = 4 + 0.5 + 0.125.
    assert!((q.bits_per_weight() - 4.625).abs() < 1e-9, "{}", q.bits_per_weight());
    assert_eq!(q.dequantize().unwrap(), t.dequantize());
}

#[test]
fn bad_shapes_and_values_are_errors() {
    let s = QuantScheme::parse("int4-sym-g32").unwrap();
    let e = IntTensor::quantize(&s, &[0.0; 48], TensorShape::new(1, 48)).unwrap_err();
    assert!(matches!(e, QuantError::Shape { .. }), "{e}");
    assert!(e.to_string().contains("48") && e.to_string().contains("32"), "{e}");
    let mut x = vec![0.0; 64];
    x[40] = f32::NAN;
    let e = IntTensor::quantize(&s, &x, TensorShape::new(2, 32)).unwrap_err();
    assert!(matches!(e, QuantError::NonFinite { row: 1, col: 8, .. }), "{e}");
    assert!(e.to_string().contains("row 1, column 8"), "{e}");
}

#[test]
fn asymmetric_zero_point_and_constant_groups() {
    // Range [-1, 2] at 2 bits: s = 1, z = 1; levels -1, 0, 1, 2.
    let s = QuantScheme::int(2, Mapping::Asymmetric, Granularity::Tensor);
    let t = IntTensor::quantize(&s, &[-1.0, 0.4, 0.5, 1.5, 2.0, 9.0 / 4.0 - 0.25], TensorShape::new(1, 6)).unwrap();
    assert_eq!(t.scales, vec![1.0]);
    assert_eq!(t.zero_points, vec![1]);
    assert_eq!(t.levels(0), vec![-1.0, 0.0, 1.0, 2.0]);
    assert_eq!(t.dequantize(), vec![-1.0, 0.0, 0.0, 2.0, 2.0, 2.0]);
    // All-positive constant group: range widened to [0, c], value on the top level.
    let t = IntTensor::quantize(
        &QuantScheme::int(4, Mapping::Asymmetric, Granularity::Group(4)),
        &[0.3; 8],
        TensorShape::new(1, 8),
    )
    .unwrap();
    assert_eq!(t.zero_points, vec![0, 0]);
    assert_eq!(t.codes(), vec![15; 8]);
    assert!(t.dequantize().iter().all(|&v| (v - 0.3).abs() < 0.3 * 1e-3));
    // All-zero group: scale 0, exact.
    let t = IntTensor::quantize(
        &QuantScheme::int(3, Mapping::Symmetric, Granularity::Channel),
        &[0.0; 8],
        TensorShape::new(2, 4),
    )
    .unwrap();
    assert_eq!(t.scales, vec![0.0, 0.0]);
    assert_eq!(t.dequantize(), vec![0.0; 8]);
    assert_eq!(t.levels(1), vec![0.0]);
    assert_eq!(t.codes(), vec![4; 8]);
}

#[test]
fn percentile_and_mse_ranges_help_on_heavy_tails() {
    // Student-t-like heavy tails: clipping should beat min-max at 3 bits.
    let mut rng = Rng::new(21);
    let shape = TensorShape::new(16, 256);
    let x: Vec<f32> = (0..shape.len()).map(|_| rng.normal() / (rng.uniform() as f32 * 0.9 + 0.1)).collect();
    let mse = |name: &str| {
        let t = IntTensor::quantize(&QuantScheme::parse(name).unwrap(), &x, shape).unwrap();
        x.iter().zip(t.dequantize()).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>()
    };
    let minmax = mse("int3-sym-channel");
    let searched = mse("int3-sym-channel-mse");
    assert!(searched < minmax * 0.9, "mse search {searched} vs min-max {minmax}");
    assert!(mse("int3-sym-channel-p99") < minmax, "percentile clipping should help here");
    // The search never does worse than min-max (factor 1.0 is a candidate), per group too.
    for name in ["int4-asym-g32", "int2-sym-g64", "int8-sym-tensor"] {
        assert!(mse(&format!("{name}-mse")) <= mse(name));
    }
}
