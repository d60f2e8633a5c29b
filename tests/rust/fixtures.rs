//! Reading the golden files of tests/fixtures/ggml (shared by the format test modules).

use std::path::PathBuf;

/// tests/fixtures/ggml, found from the crate's manifest directory.
pub fn ggml_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/ggml")
}

/// The bytes of one fixture file; panics with its path if it cannot be read.
pub fn read_ggml(name: &str) -> Vec<u8> {
    let path = ggml_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture file of little-endian f32 values.
pub fn read_ggml_f32(name: &str) -> Vec<f32> {
    read_ggml(name).chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}
