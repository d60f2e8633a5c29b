//! `quantlab imatrix MODEL [--text FILE] [--tokens N] [--chunk N] [--threads N] -o imatrix.gguf`:
//! llama.cpp's importance matrix of a model over calibration text, written as the GGUF file
//! `llama-imatrix` writes and `llama-quantize --imatrix` (and `quantlab quantize --imatrix`)
//! reads (see [`crate::io::imatrix`]).
//!
//! As llama-imatrix: the text is tokenized with the model's BOS setting, cut into chunks of
//! `--chunk` tokens (each from a fresh cache, its first token replaced by BOS when the model adds
//! one; see [`crate::calib`]), and for every `blk.*` weight matrix Σx² of its input per column and
//! the number of rows are stored (the classifier is left out, as llama-imatrix does without
//! `--process-output`). Without `--text`, the text is Moby-Dick chapters 4+ (never the eval
//! chapters 1–3).

use super::calib_text::calibration_text;
use super::load::load_model;
use super::output::OutputFile;
use super::CliError;
use crate::calib::{collect, imatrix_tokens, CalibHooks, SumSquares, DEFAULT_CHUNK, DEFAULT_TOKENS};
use crate::io::imatrix::Imatrix;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, clap::Args)]
pub struct ImatrixArgs {
    /// The model: a GGUF file or a Hugging Face LLaMA directory.
    pub model: PathBuf,
    /// Calibration text (UTF-8) instead of Moby-Dick chapters 4+.
    #[arg(long, value_name = "FILE")]
    pub text: Option<PathBuf>,
    /// Use at most this many tokens (whole chunks only).
    #[arg(long, default_value_t = DEFAULT_TOKENS, value_name = "N")]
    pub tokens: usize,
    /// Tokens per chunk (llama-imatrix's -c).
    #[arg(long, default_value_t = DEFAULT_CHUNK, value_name = "N")]
    pub chunk: usize,
    /// Threads for the matrix products (default: all cores). Results do not depend on it.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Output imatrix file (GGUF).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

pub fn run(args: &ImatrixArgs) -> Result<String, CliError> {
    if args.chunk == 0 {
        return Err(CliError::Message("--chunk must be at least 1".into()));
    }
    let (model, tokenizer, shown) = load_model(&args.model)?;
    let (text, source) = calibration_text(args.text.as_deref(), args.tokens)?;
    let add_bos = tokenizer.add_bos_default();
    let (tokens, mut plan) = imatrix_tokens(&tokenizer, &text, args.chunk, args.tokens);
    plan.threads = args.threads.unwrap_or_else(crate::model::weights::default_threads).max(1);
    let start = Instant::now();
    let mut sums = SumSquares::new();
    let run = collect(&model, &tokens, &plan, &mut sums, CalibHooks::default())
        .map_err(|e| CliError::Message(format!("{}: {e}", args.model.display())))?;
    let secs = start.elapsed().as_secs_f64();

    let tied = model.weights.output.is_none();
    let imatrix = Imatrix::from_sums(&sums, tied, vec![source.clone()], &run);
    let bytes = imatrix.to_gguf().map_err(|e| CliError::Output(e.to_string()))?;
    let out = OutputFile::create(&args.output, std::slice::from_ref(&args.model))?;
    out.file().write_all(&bytes).map_err(|e| CliError::Output(format!("{}: {e}", args.output.display())))?;
    out.commit()?;
    Ok(format!(
        "model:   {shown}\ntext:    {source} ({} tokens, BOS {})\nchunks:  {} of {} tokens ({} tokens) in {secs:.1} s\n\
         wrote:   {} ({} tensors)\n",
        tokens.len(),
        if add_bos { "per chunk" } else { "none" },
        run.chunks,
        run.chunk,
        run.tokens,
        args.output.display(),
        imatrix.entries.len(),
    ))
}
