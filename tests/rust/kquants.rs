//! K-quant quantizers (Q2_K..Q6_K) and the legacy 32-value ones against llama.cpp's own C
//! reference (tests/fixtures/ggml/kq_*, made by scripts/dev/make_kquant_goldens.sh from
//! ggml-quants.c's quantize_row_*_ref / dequantize_row_*), plus round-trip error properties.

use std::path::PathBuf;

use quantlab::formats::ggml::k_quant_search::{fp32_to_fp16, nearest_int};
use quantlab::formats::ggml::{q2_k, q3_k, q4_k, q5_k, q6_k};
use quantlab::formats::GgmlType;
use quantlab::formats::{can_quantize, dequantize_row, quantize_row, FormatError};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ggml").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// FNV-1a 64 of the little-endian f32 bytes, every NaN hashed as 0x7fc00000 (as the C harness).
fn deq_hash(y: &[f32]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in y {
        let u = if v.is_nan() { 0x7fc0_0000 } else { v.to_bits() };
        for b in u.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

struct Golden {
    input: Vec<f32>,
    labels: Vec<String>,
    /// (type, llama.cpp packed bytes, per-block hash of llama.cpp's dequantized output)
    types: Vec<(GgmlType, Vec<u8>, Vec<String>)>,
}

fn golden() -> Golden {
    let m: serde_json::Value = serde_json::from_slice(&fixture("kq_manifest.json")).unwrap();
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    let input: Vec<f32> = fixture(m["input"].as_str().unwrap())
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(input.len() as u64, m["n_values"].as_u64().unwrap());
    let labels: Vec<String> = m["labels"].as_array().unwrap().iter().map(s).collect();
    assert_eq!(labels.len() * 256, input.len());
    let types = m["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let ty = GgmlType::from_name(t["type"].as_str().unwrap()).unwrap();
            let hashes: Vec<String> = t["deq_hash"].as_array().unwrap().iter().map(s).collect();
            assert_eq!(hashes.len(), labels.len());
            (ty, fixture(t["packed"].as_str().unwrap()), hashes)
        })
        .collect();
    Golden { input, labels, types }
}

const K_TYPES: [GgmlType; 5] = [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K];

#[test]
fn golden_covers_every_k_quant_and_legacy_type() {
    let g = golden();
    let have: Vec<GgmlType> = g.types.iter().map(|t| t.0).collect();
    use GgmlType::*;
    for ty in [Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K] {
        assert!(have.contains(&ty), "{ty} missing from kq_manifest.json");
        assert!(can_quantize(ty), "{ty}");
    }
}

#[test]
fn quantize_is_byte_identical_to_llama_cpp() {
    let g = golden();
    for (ty, want, _) in &g.types {
        let mut got = vec![0u8; want.len()];
        quantize_row(*ty, &g.input, &mut got).unwrap();
        // Bytes per 256-value golden block (for 32-value types: 8 blocks).
        let per = want.len() / g.labels.len();
        let bad: Vec<usize> =
            (0..g.labels.len()).filter(|&b| got[b * per..(b + 1) * per] != want[b * per..(b + 1) * per]).collect();
        if let Some(&b) = bad.first() {
            let r = b * per..(b + 1) * per;
            panic!(
                "{ty}: {} of {} blocks differ from llama.cpp, first block {b} ({}):\n got   {:02x?}\n llama {:02x?}",
                bad.len(),
                g.labels.len(),
                g.labels[b],
                &got[r.clone()],
                &want[r]
            );
        }
    }
}

#[test]
fn dequantize_is_bit_identical_to_llama_cpp() {
    let g = golden();
    for (ty, packed, hashes) in &g.types {
        let mut y = vec![0.0f32; g.input.len()];
        dequantize_row(*ty, packed, &mut y).unwrap();
        for (b, want) in hashes.iter().enumerate() {
            let got = deq_hash(&y[256 * b..256 * (b + 1)]);
            assert_eq!(&got, want, "{ty}: dequantized block {b} ({}) differs from llama.cpp", g.labels[b]);
        }
    }
}

#[test]
fn block_api_matches_byte_api() {
    let g = golden();
    let x = &g.input;
    let n = x.len() / 256;
    fn check<B: bytemuck::Pod>(ty: GgmlType, x: &[f32], blocks: &[B]) {
        let mut bytes = vec![0u8; ty.bytes_for(x.len() as u64).unwrap() as usize];
        quantize_row(ty, x, &mut bytes).unwrap();
        assert_eq!(bytemuck::cast_slice::<B, u8>(blocks), &bytes[..], "{ty}");
    }
    let mut b2 = vec![bytemuck::Zeroable::zeroed(); n];
    q2_k::quantize_ref(x, &mut b2);
    check::<q2_k::BlockQ2K>(GgmlType::Q2_K, x, &b2);
    let mut b3 = vec![bytemuck::Zeroable::zeroed(); n];
    q3_k::quantize_ref(x, &mut b3);
    check::<q3_k::BlockQ3K>(GgmlType::Q3_K, x, &b3);
    let mut b4 = vec![bytemuck::Zeroable::zeroed(); n];
    q4_k::quantize_ref(x, &mut b4);
    check::<q4_k::BlockQ4K>(GgmlType::Q4_K, x, &b4);
    let mut b5 = vec![bytemuck::Zeroable::zeroed(); n];
    q5_k::quantize_ref(x, &mut b5);
    check::<q5_k::BlockQ5K>(GgmlType::Q5_K, x, &b5);
    let mut b6 = vec![bytemuck::Zeroable::zeroed(); n];
    q6_k::quantize_ref(x, &mut b6);
    check::<q6_k::BlockQ6K>(GgmlType::Q6_K, x, &b6);
}

#[test]
fn nearest_int_rounds_half_to_even_like_the_c_bit_trick() {
    for (x, want) in [(0.5f32, 0), (1.5, 2), (2.5, 2), (-0.5, 0), (-1.5, -2), (-2.5, -2), (3.49, 3), (-7.7, -8)] {
        assert_eq!(nearest_int(x), want, "{x}");
    }
    for i in -100_000..100_000 {
        let x = i as f32 * 0.173;
        assert_eq!(nearest_int(x), x.round_ties_even() as i32, "{x}");
    }
    // Outside the exact range the bit trick is still deterministic (C asserts in debug only).
    assert_eq!(nearest_int(f32::NAN), 0);
    assert_eq!(nearest_int(f32::INFINITY), -0x40_0000);
}

#[test]
fn fp32_to_fp16_matches_round_to_nearest_even() {
    let mut v = 0x0000_0000u32;
    while v < 0x7f80_0000 {
        for s in [0, 0x8000_0000] {
            let f = f32::from_bits(v | s);
            assert_eq!(fp32_to_fp16(f).to_bits(), half::f16::from_f32(f).to_bits(), "{f:e}");
        }
        v += 0x1237;
    }
    assert_eq!(fp32_to_fp16(f32::INFINITY).to_bits(), 0x7c00);
    assert_eq!(fp32_to_fp16(-f32::NAN).to_bits(), 0xfe00);
}

#[test]
fn k_quant_errors_and_non_finite_input() {
    for ty in K_TYPES {
        let bytes = ty.type_size();
        let mut out = vec![0xAAu8; bytes];
        let mut x = vec![0.25f32; 256];
        x[200] = f32::NAN;
        assert_eq!(quantize_row(ty, &x, &mut out), Err(FormatError::NonFinite { index: 200 }), "{ty}");
        assert!(out.iter().all(|&b| b == 0xAA), "{ty}: nothing written");
        assert!(matches!(quantize_row(ty, &[0.0; 128], &mut out), Err(FormatError::NotWholeBlocks { .. })), "{ty}");
        let mut short = vec![0u8; bytes - 1];
        assert!(matches!(quantize_row(ty, &[0.0; 256], &mut short), Err(FormatError::WrongByteCount { .. })), "{ty}");
    }
}

/// SplitMix64 + Box-Muller: standard normal f32 values.
fn normal_data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    let mut unit = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (((z ^ (z >> 31)) >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (unit(), unit());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

fn rmse(ty: GgmlType, x: &[f32]) -> f64 {
    let mut packed = vec![0u8; ty.bytes_for(x.len() as u64).unwrap() as usize];
    quantize_row(ty, x, &mut packed).unwrap();
    let mut y = vec![0.0f32; x.len()];
    dequantize_row(ty, &packed, &mut y).unwrap();
    let se: f64 = x.iter().zip(&y).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    (se / x.len() as f64).sqrt()
}

/// Round-trip RMSE on N(0, 1) data (256 blocks), against a bound per type and in strict order.
///
/// The bounds are those of a plain uniform quantizer without any scale search, `step / sqrt(12)`
/// with `step = spread / (levels - 1)`, where the spread of a sub-block of n normal values is
/// taken as its expected range (~3.5 for n = 16, ~4.1 for n = 32) for the asymmetric types
/// (Q2_K: 4 levels, n 16; Q4_K: 16 levels, n 32; Q5_K: 32 levels, n 32) and twice the expected
/// max |x| (~2 * 2.0 for n = 16, with nmax 4 / 32 half-steps) for the symmetric ones (Q3_K,
/// Q6_K), plus 10% for the 4/6-bit quantization of the sub-block scales:
/// Q2_K 3.5/3/√12 = 0.337 → 0.37; Q3_K 2.0/4/√12 = 0.144 → 0.16; Q4_K 4.1/15/√12 = 0.079 →
/// 0.087; Q5_K 4.1/31/√12 = 0.038 → 0.042; Q6_K 2.0/32/√12 = 0.018 → 0.02. ggml's searches
/// must do at least as well as that baseline; more bits must give strictly lower error.
#[test]
fn round_trip_rmse_is_bounded_and_ordered() {
    let x = normal_data(256 * 256, 7);
    let bounds = [0.37, 0.16, 0.087, 0.042, 0.02];
    let mut last = f64::INFINITY;
    for (ty, bound) in K_TYPES.into_iter().zip(bounds) {
        let e = rmse(ty, &x);
        eprintln!("{ty}: RMSE {e:.5} (bound {bound})");
        assert!(e < bound, "{ty}: RMSE {e} >= {bound}");
        assert!(e < last, "{ty}: RMSE {e} not below the previous type's {last}");
        last = e;
    }
    // Zero blocks come back exactly; constant blocks up to the f16 rounding of the scales
    // (relative 2^-11 each, two of them multiplied: < 1e-3) while the scales are normal f16
    // values (for |c| down to ~0.1; below that Q4_K's d = c / 63 / 15 turns subnormal).
    for ty in K_TYPES {
        assert_eq!(rmse(ty, &[0.0; 512]), 0.0, "{ty}: zeros");
        for c in [1.0f32, -2.0, 0.5, -3.25, 0.1, 7e4] {
            let e = rmse(ty, &vec![c; 512]);
            eprintln!("{ty}: constant {c}: RMSE {e:e}");
            assert!(e <= 1e-3 * c.abs() as f64, "{ty}: constant {c}: RMSE {e}");
        }
    }
}

/// The golden blocks plus 3000 random blocks of varied shape (scales 1e-5..1e3; Gaussian,
/// heavy-tailed, one-sided, sparse sub-blocks), for the fast paths' equivalence tests.
fn varied_blocks() -> Vec<[f32; 256]> {
    let g = golden();
    let mut blocks: Vec<[f32; 256]> = g.input.chunks_exact(256).map(|c| c.try_into().unwrap()).collect();
    let normal = normal_data(256 * 3000, 99);
    for (b, chunk) in normal.chunks_exact(256).enumerate() {
        let scale = 10f32.powi(b as i32 % 9 - 5);
        let mut x: [f32; 256] = chunk.try_into().unwrap();
        for (i, v) in x.iter_mut().enumerate() {
            *v = match b % 4 {
                0 => *v * scale,
                1 => *v * *v * *v * scale, // heavy tails
                2 => (*v + 0.5) * scale,   // one-sided
                _ => {
                    if i % 16 < 5 {
                        0.0
                    } else {
                        *v * scale
                    }
                } // sparse sub-blocks
            };
        }
        blocks.push(x);
    }
    blocks
}

/// Q6_K's fast path (candidate-parallel search, used by quantize_row) gives the same bytes as
/// the plain transcription, on the golden blocks and on 3000 random blocks of varied shape.
#[test]
fn q6_k_fast_path_equals_reference() {
    for (b, x) in varied_blocks().iter().enumerate() {
        let want = q6_k::quantize_block(x);
        let got = q6_k::quantize_block_fast(x);
        assert_eq!(bytemuck::bytes_of(&got), bytemuck::bytes_of(&want), "block {b}");
    }
}

/// Q2_K's, Q4_K's and Q5_K's fast path (speculative candidate-parallel make_qkx2_quants, used
/// by quantize_row) gives the same bytes as the plain transcription, on the same blocks plus
/// constant, all-negative, two-valued and single-spike sub-blocks (the search's early exits and
/// degenerate fits).
#[test]
fn qkx2_fast_paths_equal_reference() {
    let mut blocks = varied_blocks();
    let mut edge = [0.0f32; 256];
    for (i, v) in edge.iter_mut().enumerate() {
        *v = match i / 16 {
            0 => 0.0,
            1 => 2.5,
            2 => -1.0 - (i % 16) as f32,
            3 => {
                if i % 2 == 0 {
                    1.0
                } else {
                    -1.0
                }
            }
            4 => {
                if i % 16 == 3 {
                    7.0
                } else {
                    0.0
                }
            }
            _ => ((i * 37 % 101) as f32 - 50.0) * 0.01,
        };
    }
    blocks.push(edge);
    for (b, x) in blocks.iter().enumerate() {
        let (got, want) = (q2_k::quantize_block(x), q2_k::quantize_block_plain(x));
        assert_eq!(bytemuck::bytes_of(&got), bytemuck::bytes_of(&want), "Q2_K block {b}");
        let (got, want) = (q4_k::quantize_block(x), q4_k::quantize_block_plain(x));
        assert_eq!(bytemuck::bytes_of(&got), bytemuck::bytes_of(&want), "Q4_K block {b}");
        let (got, want) = (q5_k::quantize_block(x), q5_k::quantize_block_plain(x));
        assert_eq!(bytemuck::bytes_of(&got), bytemuck::bytes_of(&want), "Q5_K block {b}");
    }
}
