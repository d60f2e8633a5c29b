//! `quantize --shard-size SIZE`: a safetensors output split into shards of at most SIZE bytes
//! each (a tensor larger than SIZE gets a shard of its own), named as Hugging Face names them
//! (`OUT-00001-of-00004.safetensors`) next to an index `OUT.safetensors.index.json`, each shard
//! written atomically (its own temporary file, renamed when complete).
//!
//! Restartable: every shard's `__metadata__` holds a manifest, a hash of what made it (the
//! quantlab version, the format and the options that change bytes, the shard's place and
//! tensors, and each input file's size and modification time). A rerun with the same
//! arguments finds a shard whose manifest matches and skips it, so an interrupted run goes on
//! where it stopped; a changed input or option changes the manifest and the shard is written
//! anew.

use super::CliError;
use std::path::{Path, PathBuf};

/// The `__metadata__` key of a shard's manifest.
pub const MANIFEST_KEY: &str = "quantlab.manifest";

/// Parses a size: bytes, or a number with a decimal unit (`500MB`, `5GB`, `2.5G`; K, M, G, T,
/// with or without a trailing B), as Hugging Face's `max_shard_size` writes them.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix(['B', 'b']).unwrap_or(t);
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let scale: f64 = match unit.to_ascii_uppercase().as_str() {
        "" => 1.0,
        "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return Err(format!("'{s}' is not a size (e.g. 500MB, 5GB)")),
    };
    match num.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n * scale >= 1.0 => Ok((n * scale) as u64),
        _ => Err(format!("'{s}' is not a size of at least one byte (e.g. 500MB, 5GB)")),
    }
}

/// Groups consecutive items of sizes `sizes` into shards of at most `limit` bytes (an item
/// larger than `limit` alone): the ranges of item indices.
pub fn plan(sizes: &[u64], limit: u64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut total) = (0, 0u64);
    for (i, &s) in sizes.iter().enumerate() {
        if i > start && total + s > limit {
            out.push(start..i);
            (start, total) = (i, 0);
        }
        total += s;
    }
    if start < sizes.len() || out.is_empty() {
        out.push(start..sizes.len());
    }
    out
}

/// Shard `k` (from 0) of `n` for the output `out`: `DIR/STEM-0000k+1-of-0000n.safetensors`.
pub fn shard_path(out: &Path, k: usize, n: usize) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!("{stem}-{:05}-of-{n:05}.safetensors", k + 1))
}

/// The index next to `out`: `OUT.safetensors.index.json`.
pub fn index_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".index.json");
    out.with_file_name(name)
}

/// FNV-1a, 64 bits: stable across builds and platforms, unlike `std`'s hasher.
pub struct Manifest(u64);

impl Default for Manifest {
    fn default() -> Manifest {
        Manifest(0xcbf2_9ce4_8422_2325)
    }
}

impl Manifest {
    /// Adds `part` (followed by a separator, so `("ab", "c")` and `("a", "bc")` differ).
    pub fn add(&mut self, part: &str) {
        for b in part.bytes().chain([0xff]) {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Adds an input file's identity: path, size and modification time.
    pub fn add_file(&mut self, path: &Path) {
        let m = std::fs::metadata(path);
        let size = m.as_ref().map(|m| m.len()).unwrap_or(0);
        let mtime = m.and_then(|m| m.modified()).ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        self.add(&format!("{} {size} {:?}", path.display(), mtime));
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Whether the shard at `path` is complete and was made from the same manifest: its header
/// (read alone, not the data) holds `manifest`, and the data ends where the file ends.
pub fn is_complete(path: &Path, manifest: &str) -> bool {
    read_header(path).is_some_and(|(v, data_end)| {
        v.get("__metadata__").and_then(|m| m.get(MANIFEST_KEY)).and_then(|m| m.as_str()) == Some(manifest) && data_end
    })
}

/// The header of the safetensors file at `path` as JSON, and whether its last tensor ends
/// exactly at the end of the file.
fn read_header(path: &Path) -> Option<(serde_json::Value, bool)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut n = [0u8; 8];
    f.read_exact(&mut n).ok()?;
    let n = u64::from_le_bytes(n);
    // The reference reader's header limit; a longer one is not a shard of ours.
    if n > 100_000_000 || 8 + n > len {
        return None;
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
    let end = v
        .as_object()?
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    Some((v, 8 + n + end == len))
}

/// Writes the index (`weight_map`: tensor name → shard file name; `metadata.total_size`)
/// atomically.
pub fn write_index(
    out: &Path,
    weight_map: &[(String, String)],
    total_size: u64,
    inputs: &[PathBuf],
) -> Result<(), CliError> {
    let map: serde_json::Map<String, serde_json::Value> =
        weight_map.iter().map(|(n, f)| (n.clone(), serde_json::Value::from(f.as_str()))).collect();
    let index = serde_json::json!({ "metadata": { "total_size": total_size }, "weight_map": map });
    let path = index_path(out);
    let file = super::output::OutputFile::create(&path, inputs)?;
    let text = serde_json::to_string_pretty(&index).expect("JSON serializes") + "\n";
    std::io::Write::write_all(&mut file.file(), text.as_bytes())
        .map_err(|e| CliError::Output(format!("{}: {e}", path.display())))?;
    file.commit()
}
