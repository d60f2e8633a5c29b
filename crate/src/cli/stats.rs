//! `quantlab stats MODEL.gguf [--tensor NAME] [--formats [LIST]] [--outlier-k K] [--json]`:
//! per-tensor weight statistics and, with `--formats`, what each format would do to them.
//!
//! Each tensor is dequantized from its stored type (so a Q4_1 model's weights are the Q4_1
//! values), then:
//! - statistics ([`crate::stats::weights`]): shape, stored type, absmax, RMS, excess kurtosis,
//!   outlier output/input channels (`absmax > k × median channel absmax`);
//! - per format ([`crate::stats::metrics`]): bits per weight (everything stored), MSE,
//!   max |error|, SQNR (dB), cosine similarity. A format that cannot take the tensor (e.g. a
//!   group size that does not divide the row length) gets a row saying why.
//!
//! Without `--tensor`, every 2-D tensor is reported, in file order.

use super::display::{bytes, Table};
use super::{map_file, CliError};
use crate::formats::{dequantize_row, quantize, QuantScheme, TensorShape};
use crate::gguf::{GgufFile, TensorInfo};
use crate::stats::metrics::{format_report, FormatReport};
use crate::stats::weights::{weight_stats, DEFAULT_OUTLIER_K};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The formats `--formats` compares when given without a list.
pub const DEFAULT_FORMATS: &str = "int8-sym-channel,int4-asym-g64,int4-sym-channel,q4_0,q4_1,q8_0,fp8-e4m3-channel";

#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    /// The GGUF model file.
    pub model: PathBuf,
    /// Only this tensor (any tensor, 1-D ones included); default: every 2-D tensor.
    #[arg(long)]
    pub tensor: Option<String>,
    /// Compare formats: a comma-separated list of format names (e.g.
    /// int8-sym-channel,int4-asym-g128,q4_0,fp8-e4m3). Without a list: the default set.
    #[arg(long, num_args = 0..=1, default_missing_value = DEFAULT_FORMATS, value_name = "LIST")]
    pub formats: Option<String>,
    /// Outlier rule: a channel is an outlier when its absmax exceeds K × the median channel
    /// absmax.
    #[arg(long, default_value_t = DEFAULT_OUTLIER_K, value_name = "K")]
    pub outlier_k: f64,
    /// Print one JSON object {file, outlier_k, formats, tensors} instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One tensor's summary statistics.
#[derive(Debug, Clone, Serialize)]
pub struct TensorStats {
    pub name: String,
    /// `[rows, cols]`: cols = row length (ggml's first dimension).
    pub shape: [usize; 2],
    #[serde(rename = "type")]
    pub ty: String,
    pub absmax: f32,
    pub rms: f64,
    pub mean: f64,
    pub std: f64,
    pub excess_kurtosis: Option<f64>,
    pub outlier_rows: Vec<usize>,
    pub outlier_cols: Vec<usize>,
    pub formats: Vec<FormatRow>,
}

/// A format's result on a tensor, or why it does not apply.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum FormatRow {
    Ok(FormatReport),
    Unavailable { format: String, unavailable: String },
}

#[derive(Serialize)]
struct StatsJson<'a> {
    file: String,
    outlier_k: f64,
    formats: Vec<String>,
    tensors: &'a [TensorStats],
}

/// Parses a comma-separated format list (names as [`QuantScheme::parse`]).
pub fn parse_formats(list: &str) -> Result<Vec<QuantScheme>, CliError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| QuantScheme::parse(s).map_err(|e| CliError::Message(e.to_string())))
        .collect()
}

pub fn run(args: &StatsArgs) -> Result<String, CliError> {
    if !(args.outlier_k.is_finite() && args.outlier_k > 0.0) {
        return Err(CliError::Message(format!("--outlier-k must be a positive number, got {}", args.outlier_k)));
    }
    let schemes = match &args.formats {
        Some(list) => parse_formats(list)?,
        None => Vec::new(),
    };
    let map = map_file(&args.model)?;
    let gguf = GgufFile::parse(&map, map.len() as u64)
        .map_err(|source| CliError::Gguf { path: args.model.clone(), source })?;
    let selected: Vec<&TensorInfo> = match &args.tensor {
        Some(name) => vec![gguf.tensor(name).ok_or_else(|| {
            let similar: Vec<&str> = gguf
                .tensors
                .iter()
                .map(|t| t.name.as_str())
                .filter(|n| n.contains(name.as_str()) || name.contains(*n))
                .take(5)
                .collect();
            let hint = if similar.is_empty() {
                "; `quantlab info` lists the tensors".to_string()
            } else {
                format!("; similar: {}", similar.join(", "))
            };
            CliError::Message(format!("no tensor named '{name}' in {}{hint}", args.model.display()))
        })?],
        None => gguf.tensors.iter().filter(|t| t.dims.len() == 2).collect(),
    };
    let mut tensors = Vec::with_capacity(selected.len());
    for t in selected {
        tensors.push(tensor_stats(&gguf, &map, t, &schemes, args.outlier_k)?);
    }
    if args.json {
        let json = StatsJson {
            file: args.model.display().to_string(),
            outlier_k: args.outlier_k,
            formats: schemes.iter().map(QuantScheme::name).collect(),
            tensors: &tensors,
        };
        let mut s = serde_json::to_string_pretty(&json).map_err(|e| CliError::Output(e.to_string()))?;
        s.push('\n');
        Ok(s)
    } else {
        Ok(text(&args.model, &tensors, args.outlier_k))
    }
}

/// Dequantizes one tensor and measures it (and each scheme on it).
pub fn tensor_stats(
    gguf: &GgufFile,
    file: &[u8],
    t: &TensorInfo,
    schemes: &[QuantScheme],
    outlier_k: f64,
) -> Result<TensorStats, CliError> {
    let data = gguf.tensor_data(file, t).map_err(|e| CliError::Message(e.to_string()))?;
    let cols = t.row_len() as usize;
    let rows = t.n_rows() as usize;
    let shape = TensorShape::new(rows, cols);
    let mut values = vec![0f32; shape.len()];
    dequantize_row(t.ty, data, &mut values)
        .map_err(|e| CliError::Message(format!("{}: cannot decode {}: {e}", t.name, t.ty)))?;
    let s = weight_stats(&values, shape, outlier_k);
    let formats = schemes
        .iter()
        .map(|scheme| match quantize(scheme, &values, shape).and_then(|q| format_report(&values, &q)) {
            Ok(r) => FormatRow::Ok(r),
            Err(e) => FormatRow::Unavailable { format: scheme.name(), unavailable: e.to_string() },
        })
        .collect();
    Ok(TensorStats {
        name: t.name.clone(),
        shape: [rows, cols],
        ty: t.ty.to_string(),
        absmax: s.absmax,
        rms: s.rms,
        mean: s.mean,
        std: s.std,
        excess_kurtosis: s.excess_kurtosis,
        outlier_rows: s.outlier_rows,
        outlier_cols: s.outlier_cols,
        formats,
    })
}

fn sci(v: f64) -> String {
    format!("{v:.3e}")
}

/// The human-readable report.
pub fn text(path: &std::path::Path, tensors: &[TensorStats], outlier_k: f64) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "file {}: {} tensor(s); shape is rows x cols (cols = row length); outlier channel = absmax > {outlier_k} x \
         median channel absmax; kurtosis is excess (0 = Gaussian)",
        path.display(),
        tensors.len()
    );
    let mut t = Table::new(&[
        ("name", false),
        ("shape", false),
        ("type", false),
        ("absmax", true),
        ("rms", true),
        ("kurtosis", true),
        ("outlier rows", true),
        ("outlier cols", true),
    ]);
    for s in tensors {
        t.row(vec![
            s.name.clone(),
            format!("{} x {}", s.shape[0], s.shape[1]),
            s.ty.clone(),
            format!("{:.4}", s.absmax),
            format!("{:.5}", s.rms),
            s.excess_kurtosis.map_or("-".into(), |k| format!("{k:.2}")),
            s.outlier_rows.len().to_string(),
            s.outlier_cols.len().to_string(),
        ]);
    }
    o.push('\n');
    o.push_str(&t.render(""));
    for s in tensors.iter().filter(|s| !s.formats.is_empty()) {
        let _ = writeln!(o, "\n{} ({} x {}, {})", s.name, s.shape[0], s.shape[1], s.ty);
        let mut t = Table::new(&[
            ("format", false),
            ("bpw", true),
            ("size", true),
            ("MSE", true),
            ("max|err|", true),
            ("SQNR dB", true),
            ("cosine", true),
        ]);
        for f in &s.formats {
            match f {
                FormatRow::Ok(r) => {
                    let m = &r.metrics;
                    t.row(vec![
                        r.format.clone(),
                        format!("{:.3}", r.bits_per_weight),
                        bytes(r.bytes),
                        sci(m.mse),
                        sci(m.max_abs_error),
                        if m.sqnr_db.is_finite() { format!("{:.2}", m.sqnr_db) } else { format!("{}", m.sqnr_db) },
                        format!("{:.6}", m.cosine),
                    ]);
                }
                FormatRow::Unavailable { .. } => {}
            }
        }
        o.push_str(&t.render("  "));
        for f in &s.formats {
            if let FormatRow::Unavailable { unavailable, .. } = f {
                let _ = writeln!(o, "  n/a: {unavailable}");
            }
        }
    }
    o
}
