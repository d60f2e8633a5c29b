//! Importance-weighted quantization (`formats::quantize_row_weighted`, llama-quantize's imatrix
//! path) against llama.cpp's own C: tests/fixtures/ggml/kqi_<TYPE>.packed.bin are
//! `quantize_<type>(kq.in.f32.bin as rows of 512, kqi.qw.f32.bin)` from ggml-quants.c (made by
//! scripts/dev/make_kquant_goldens.sh).

use std::path::PathBuf;

use quantlab::formats::{quantize_row, quantize_row_weighted, FormatError, GgmlType};

const ROW: usize = 512;

fn fixture_f32(name: &str) -> Vec<f32> {
    fixture(name).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ggml").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn row_bytes(ty: GgmlType) -> usize {
    ty.bytes_for(ROW as u64).unwrap() as usize
}

fn quantize_rows(ty: GgmlType, x: &[f32], qw: Option<&[f32]>) -> Result<Vec<u8>, FormatError> {
    let row_bytes = row_bytes(ty);
    let mut out = vec![0u8; x.len() / ROW * row_bytes];
    for (src, dst) in x.chunks_exact(ROW).zip(out.chunks_exact_mut(row_bytes)) {
        quantize_row_weighted(ty, src, qw, dst)?;
    }
    Ok(out)
}

#[test]
fn weighted_types_match_llama_cpp_with_an_importance() {
    let x = fixture_f32("kq.in.f32.bin");
    let qw = fixture_f32("kqi.qw.f32.bin");
    assert_eq!(qw.len(), ROW);
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ] {
        let got = quantize_rows(ty, &x, Some(&qw)).unwrap();
        let want = fixture(&format!("kqi_{ty}.packed.bin"));
        assert_eq!(got.len(), want.len(), "{ty}");
        let block = ty.block_layout().1;
        if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
            panic!("{ty}: first differing byte {i} (block {}, value {})", i / block, i / block * ty.block_size());
        }
        // The importance changes the result: not the plain reference's bytes.
        let plain = quantize_rows(ty, &x, None).unwrap();
        assert_ne!(plain, got, "{ty}");
    }
}

#[test]
fn importance_is_checked_and_ignored_where_ggml_ignores_it() {
    let x = fixture_f32("kq.in.f32.bin");
    let row = &x[12 * 256..12 * 256 + ROW];
    let qw = fixture_f32("kqi.qw.f32.bin");
    let mut dst = vec![0u8; row_bytes(GgmlType::Q4_0)];
    assert_eq!(
        quantize_row_weighted(GgmlType::Q4_0, row, Some(&qw[..256]), &mut dst),
        Err(FormatError::ImportanceLength { n_values: ROW, got: 256 })
    );
    let mut bad = qw.clone();
    bad[7] = -1.0;
    assert_eq!(
        quantize_row_weighted(GgmlType::Q4_0, row, Some(&bad), &mut dst),
        Err(FormatError::BadImportance { index: 7 })
    );
    // Q8_0 has no weighted quantizer in ggml: same bytes as without an importance.
    let mut a = vec![0u8; row_bytes(GgmlType::Q8_0)];
    let mut b = a.clone();
    quantize_row_weighted(GgmlType::Q8_0, row, Some(&qw), &mut a).unwrap();
    quantize_row(GgmlType::Q8_0, row, &mut b).unwrap();
    assert_eq!(a, b);
}
