//! `quantlab info MODEL.gguf [--json]`: what is in a GGUF file, without loading its weights.

use super::display::{bytes, count, opt, shape, Table};
use super::{map_file, CliError};
use crate::formats::GgmlType;
use crate::gguf::{Abbreviated, GgufFile, MetadataJson, ModelSummary};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Arrays longer than this are shown as their first elements plus a length.
const MAX_ARRAY_ITEMS_JSON: usize = 16;
const MAX_ARRAY_ITEMS_TEXT: usize = 8;

#[derive(Debug, Clone, clap::Args)]
pub struct InfoArgs {
    /// The GGUF model file, or a Hugging Face checkpoint directory.
    pub model: PathBuf,
    /// Print one JSON object {file, version, summary, metadata, tensors} instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &InfoArgs) -> Result<String, CliError> {
    if super::load::is_hf_checkpoint(&args.model) {
        return super::info_hf::run(&args.model, args.json);
    }
    let map = map_file(&args.model)?;
    let gguf = GgufFile::parse(&map, map.len() as u64)
        .map_err(|source| CliError::Gguf { path: args.model.clone(), source })?;
    if args.json {
        json(&args.model, &gguf)
    } else {
        Ok(text(&args.model, &gguf))
    }
}

/// The human-readable report.
pub fn text(path: &Path, f: &GgufFile) -> String {
    let s = ModelSummary::from_gguf(f);
    let mut o = String::new();
    let _ = writeln!(o, "file          {}", path.display());
    let _ = writeln!(o, "size          {} bytes ({})", f.file_len, bytes(f.file_len));
    let _ = writeln!(
        o,
        "GGUF version  {} ({} metadata keys, {} tensors, alignment {}, data at byte {})",
        f.version,
        f.metadata.len(),
        f.tensors.len(),
        f.alignment,
        f.data_offset
    );
    let _ = writeln!(o, "architecture  {}", opt(s.architecture.as_deref()));
    let _ = writeln!(o, "name          {}", opt(s.name.as_deref()));
    let file_type = match (&s.file_type, s.file_type_id) {
        (Some(n), Some(id)) => format!("{n} ({id})"),
        _ => "-".to_string(),
    };
    let _ = writeln!(o, "file type     {file_type}");

    let _ = writeln!(o, "\nhyper-parameters");
    let mut hp = Table::new(&[("", false), ("", true)]);
    for (k, v) in [
        ("context_length", opt(s.context_length)),
        ("embedding_length", opt(s.embedding_length)),
        ("block_count", opt(s.block_count)),
        ("feed_forward_length", opt(s.feed_forward_length)),
        ("head_count", opt(s.head_count)),
        ("head_count_kv", opt(s.head_count_kv)),
        ("rope_freq_base", opt(s.rope_freq_base)),
        ("rms_norm_eps", opt(s.rms_norm_eps)),
        ("vocab_size", opt(s.vocab_size)),
    ] {
        hp.row(vec![k.to_string(), v]);
    }
    // Skip the (empty) header line of the two-column table.
    o.extend(hp.render("  ").lines().skip(1).map(|l| format!("{l}\n")));

    let mut tok = opt(s.tokenizer_model.as_deref());
    if let Some(pre) = &s.tokenizer_pre {
        let _ = write!(tok, " (pre-tokenizer {pre})");
    }
    if let Some(n) = f.get_array("tokenizer.ggml.tokens").map(|a| a.len()) {
        let _ = write!(tok, ", {n} tokens");
    }
    if let Some(n) = s.merges {
        let _ = write!(tok, ", {n} merges");
    }
    let _ = writeln!(o, "\ntokenizer     {tok}");
    let _ = writeln!(o, "parameters    {} ({})", count(s.parameter_count), s.parameter_count);
    let _ = writeln!(
        o,
        "tensor data   {} bytes ({}), {:.3} bits per weight",
        s.tensor_bytes,
        bytes(s.tensor_bytes),
        s.bits_per_weight
    );
    let types: Vec<String> = s.types.iter().map(|t| format!("{} x {}", t.tensors, t.ty)).collect();
    let _ = writeln!(o, "tensor types  {}", types.join(", "));

    let _ = writeln!(o, "\nmetadata ({} keys; long arrays abbreviated)", f.metadata.len());
    for (k, v) in &f.metadata {
        let _ = writeln!(o, "  {k} = {}", Abbreviated { value: v, max: MAX_ARRAY_ITEMS_TEXT });
    }

    let _ = writeln!(
        o,
        "\ntensors ({}; shape in ggml order, row length first, PyTorch order is the reverse; \
         offsets relative to the data section at byte {})",
        f.tensors.len(),
        f.data_offset
    );
    let mut t = Table::new(&[
        ("name", false),
        ("shape", false),
        ("type", false),
        ("bytes", true),
        ("bpw", true),
        ("offset", true),
    ]);
    for ti in &f.tensors {
        t.row(vec![
            ti.name.clone(),
            shape(&ti.dims),
            ti.ty.to_string(),
            ti.n_bytes().to_string(),
            format!("{:.2}", ti.bits_per_weight()),
            ti.offset.to_string(),
        ]);
    }
    o.push_str(&t.render("  "));
    o
}

#[derive(Serialize)]
struct InfoJson<'a> {
    file: String,
    file_len: u64,
    version: u32,
    alignment: u64,
    data_offset: u64,
    summary: ModelSummary,
    metadata: MetadataJson<'a>,
    tensors: Vec<TensorJson<'a>>,
}

#[derive(Serialize)]
struct TensorJson<'a> {
    name: &'a str,
    /// ggml order (row length first).
    dims: &'a [u64],
    #[serde(rename = "type")]
    ty: GgmlType,
    bytes: u64,
    bits_per_weight: f64,
    /// Relative to the data section.
    offset: u64,
    absolute_offset: u64,
}

/// One JSON object (one line): file, version, summary, metadata (arrays longer than 16 as
/// `{type, len, head}`), tensors.
pub fn json(path: &Path, f: &GgufFile) -> Result<String, CliError> {
    let out = InfoJson {
        file: path.display().to_string(),
        file_len: f.file_len,
        version: f.version,
        alignment: f.alignment,
        data_offset: f.data_offset,
        summary: ModelSummary::from_gguf(f),
        metadata: MetadataJson { entries: &f.metadata, max: MAX_ARRAY_ITEMS_JSON },
        tensors: f
            .tensors
            .iter()
            .map(|t| TensorJson {
                name: &t.name,
                dims: &t.dims,
                ty: t.ty,
                bytes: t.n_bytes(),
                bits_per_weight: t.bits_per_weight(),
                offset: t.offset,
                absolute_offset: t.absolute_offset(f),
            })
            .collect(),
    };
    let mut s = serde_json::to_string(&out).map_err(|e| CliError::Output(e.to_string()))?;
    s.push('\n');
    Ok(s)
}
