//! `quantlab quantize HF_DIR -f TYPE -o OUT.gguf`: a Hugging Face LLaMA checkpoint converted to
//! a GGUF model ([`crate::model::hf_gguf`]), through the same output file handling as every
//! other run (no input overwritten, temporary file renamed on success).

use super::{msg, CliError, QuantizeArgs};
use crate::cli::output::OutputFile;
use crate::io::export::Totals;
use crate::io::safetensors::Checkpoint;
use crate::model::hf_gguf::{convert_hf_to_gguf, HfQuantize, HfSource};
use crate::model::hf_vocab::HfTokenizerFiles;
use crate::policy::{Target, TensorPolicy};
use std::path::{Path, PathBuf};

/// The model directory of an input: the directory itself, or the one holding the file given.
fn model_dir(input: &Path) -> PathBuf {
    if input.is_dir() {
        return input.to_path_buf();
    }
    match input.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub(super) fn from_hf(args: &QuantizeArgs, target: &Target) -> Result<(Totals, Totals, Vec<String>), CliError> {
    let dir = model_dir(&args.input);
    let in_dir = |e: &dyn std::fmt::Display| msg(format!("{}: {e}", dir.display()));
    let ck = Checkpoint::open(&args.input).map_err(|e| msg(e.to_string()))?;
    let tokenizer = HfTokenizerFiles::read(&dir).map_err(|e| in_dir(&e))?;
    // Every file the conversion reads: the path given, the index, each shard, the JSON files.
    let mut inputs = vec![args.input.clone(), dir.join("model.safetensors.index.json")];
    inputs.extend(ck.shards.iter().cloned());
    inputs
        .extend(["config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"].map(|f| dir.join(f)));
    let output = OutputFile::create(&args.output, &inputs)?;
    let name = std::fs::canonicalize(&dir).ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    let src = HfSource { checkpoint: &ck, name: name.as_deref().unwrap_or("model"), tokenizer: &tokenizer };
    let policy = TensorPolicy { all_tensors: args.all_tensors, mix: target.mix, per_tensor: None };
    let mut rtn = args.rtn()?;
    let q = HfQuantize { scheme: &target.scheme, policy: &policy, saturation: args.saturation(), method: &mut rtn };
    let mut w = std::io::BufWriter::new(output.file());
    let summary = convert_hf_to_gguf(&src, q, &mut w, &mut |_, _, _| true).map_err(|e| in_dir(&e))?;
    w.into_inner().map_err(|e| CliError::Output(format!("{}: {}", args.output.display(), e.error())))?;
    output.commit()?;
    let mut notes = vec![format!(
        "converted from a Hugging Face checkpoint: tensor names, q/k rows, hyper-parameters and tokenizer as \
         convert_hf_to_gguf.py writes them for llama"
    )];
    notes.extend(summary.notes);
    notes.extend(summary.saturated.note());
    Ok((summary.before, summary.after, notes))
}
