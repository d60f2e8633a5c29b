//! The calibration text of the data-driven commands (`quantlab imatrix`, and the methods that
//! need activations): a user's UTF-8 file, or by default Moby-Dick chapters
//! [`CALIBRATION_CHAPTERS`] (4+, never the eval chapters 1–3) from `data/moby-dick/`, in
//! chapter order, joined as the eval text is.

use super::eval::data_dir;
use super::CliError;
use crate::calib::{CALIBRATION_CHAPTERS, CHARS_PER_TOKEN};
use crate::model::eval::join_chapters;
use std::path::Path;

/// The calibration text and a description of where it came from: `file`'s contents, or enough
/// calibration chapters for about `tokens` tokens.
pub fn calibration_text(file: Option<&Path>, tokens: usize) -> Result<(String, String), CliError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Message(format!("cannot read the calibration text '{}': {e}", path.display())))?;
        return Ok((text, path.display().to_string()));
    }
    let dir = data_dir().ok_or_else(|| {
        CliError::Message(
            "the calibration text data/moby-dick/ is missing (run scripts/setup.sh, or pass --text FILE)".into(),
        )
    })?;
    let want_chars = tokens.saturating_mul(CHARS_PER_TOKEN);
    let (mut texts, mut chars, mut last) = (Vec::new(), 0usize, *CALIBRATION_CHAPTERS.start());
    for n in CALIBRATION_CHAPTERS {
        let p = dir.join(format!("chapter_{n}.json"));
        let raw = std::fs::read_to_string(&p)
            .map_err(|e| CliError::Message(format!("cannot read '{}': {e}", p.display())))?;
        let v: serde_json::Value =
            serde_json::from_str(&raw).map_err(|e| CliError::Message(format!("'{}' is not JSON: {e}", p.display())))?;
        let t =
            v["text"].as_str().ok_or_else(|| CliError::Message(format!("'{}' has no \"text\" string", p.display())))?;
        chars += t.len();
        texts.push(t.to_string());
        last = n;
        if chars >= want_chars {
            break;
        }
    }
    let source = format!("Moby-Dick chapters {}-{last} (data/moby-dick/chapter_N.json)", CALIBRATION_CHAPTERS.start());
    Ok((join_chapters(&texts), source))
}
