//! `quantlab sensitivity … --scans A.json,B.json`: the scans of `-f`'s formats read from the
//! `--json` reports of earlier runs instead of run again, so a recipe for another budget or
//! another mix of formats costs a quantization per format, not a scan (a tensor scan of the
//! default model takes many CPU-minutes per format).
//!
//! Each file must be a one-format report of the same model: its format `-f`'s (in order), its
//! unit `--unit`'s, every unit of the model once, each unit's bytes those of the model
//! quantized here (a report of another model or format is refused, naming the file), and all
//! files scored on the same calibration windows.

use super::CliError;
use crate::formats::QuantScheme;
use crate::model::sensitivity::{quantize_all, tensor_bytes, units, Damage, Scan, UnitKind, UnitRow};
use crate::model::Model;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The fields of a `--json` report a recommendation needs (the others are ignored).
#[derive(Debug, Deserialize)]
struct Saved {
    format: String,
    unit: String,
    text_source: String,
    ctx: usize,
    windows: usize,
    tokens_scored: usize,
    uniform: Damage,
    units: Vec<UnitRow>,
}

/// Where scans were scored: the report's text, window and token fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scored {
    pub text_source: String,
    pub ctx: usize,
    pub windows: usize,
    pub tokens_scored: usize,
}

fn bad(path: &Path, what: impl std::fmt::Display) -> CliError {
    CliError::Message(format!("--scans {}: {what}", path.display()))
}

/// The scans of `schemes` read from `paths` (one each, in order) for `model` by `kind`.
pub fn read(
    model: &Model,
    schemes: &[QuantScheme],
    kind: UnitKind,
    paths: &[PathBuf],
) -> Result<(Vec<Scan>, Scored), CliError> {
    if paths.len() != schemes.len() {
        let message =
            format!("--scans: {} file(s) for {} format(s) of -f: give one per format", paths.len(), schemes.len());
        return Err(CliError::Message(message));
    }
    let expected = units(model, kind);
    let mut plan: Option<Scored> = None;
    let mut scans = Vec::with_capacity(paths.len());
    for (scheme, path) in schemes.iter().zip(paths) {
        let text = std::fs::read_to_string(path).map_err(|e| bad(path, e))?;
        let saved: Saved = serde_json::from_str(&text).map_err(|e| bad(path, format!("not a --json report: {e}")))?;
        if saved.format != scheme.name() {
            return Err(bad(path, format!("a scan of {}, not of {}", saved.format, scheme.name())));
        }
        if saved.unit != kind.name() {
            return Err(bad(path, format!("scanned by {}, not by {}", saved.unit, kind.name())));
        }
        let here = Scored {
            text_source: saved.text_source,
            ctx: saved.ctx,
            windows: saved.windows,
            tokens_scored: saved.tokens_scored,
        };
        match &plan {
            Some(first) if *first != here => {
                return Err(bad(path, format!("scored on other windows than the first file ({here:?} vs {first:?})")))
            }
            _ => plan = Some(here),
        }
        let (_, low) = quantize_all(model, scheme).map_err(|e| bad(path, e))?;
        let mut by_name = saved.units;
        if by_name.len() != expected.len() {
            let message = format!("{} units, the model has {} {} units", by_name.len(), expected.len(), kind.name());
            return Err(bad(path, message));
        }
        let mut rows = Vec::with_capacity(expected.len());
        for unit in &expected {
            let i = by_name.iter().position(|r| r.unit == unit.name && r.tensors == unit.tensors);
            let row = by_name.swap_remove(i.ok_or_else(|| bad(path, format!("no unit {}", unit.name)))?);
            let bytes = tensor_bytes(&low, &unit.tensors);
            if row.bytes != bytes {
                let message =
                    format!("unit {} takes {} bytes there, {bytes} in this model: another model?", row.unit, row.bytes);
                return Err(bad(path, message));
            }
            rows.push(UnitRow { bytes_high: 0, ..row });
        }
        scans.push(Scan { kind, rows, uniform: saved.uniform, low });
    }
    let plan = plan.ok_or_else(|| CliError::Message("--scans: no file".into()))?;
    Ok((scans, plan))
}
