//! The `quantlab` command line (native only).
//!
//! Each subcommand is a sibling module (`info`, `quantize`, `stats`, `eval`, `generate`)
//! exposing a clap `Args` struct and a `run(&Args) -> Result<String, CliError>` that
//! returns the whole output, so tests can call it directly as well as through the binary.
//! [`main`] owns the process concerns: argument errors (exit 2, clap's wording), runtime errors
//! as `quantlab: error: <message>` (exit 1), and a closed pipe (`quantlab info m.gguf | head`)
//! being a normal end rather than an error.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub mod awq;
pub mod calib_text;
pub mod device;
pub mod display;
pub mod eval;
pub mod eval_act;
pub mod eval_tasks;
pub mod formats;
pub mod generate;
pub mod gptq;
pub mod hqq;
pub mod imatrix;
pub mod info;
pub mod info_hf;
pub mod layer_error;
pub mod load;
pub mod matmul;
pub mod output;
pub mod parallel;
pub mod progress;
pub mod quantize;
pub mod quantize_layout;
mod quantize_safetensors;
pub mod recipe_run;
pub mod sensitivity;
pub mod sensitivity_saved;
pub mod shards;
pub mod stats;

/// quantlab: inspect, quantize and evaluate LLM checkpoints.
#[derive(Debug, Parser)]
#[command(name = "quantlab", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a GGUF file's header: architecture, hyper-parameters, tokenizer, tensor table.
    Info(info::InfoArgs),
    /// Quantize a GGUF or safetensors checkpoint to another format (see --help for the tensor policy).
    Quantize(quantize::QuantizeArgs),
    /// Weight statistics per tensor (absmax, RMS, kurtosis, outlier channels) and, with --formats,
    /// each format's error (bpw, MSE, max |err|, SQNR, cosine).
    Stats(stats::StatsArgs),
    /// Perplexity of the model and of in-memory quantized copies (--format), with KL divergence
    /// and top-1 agreement against the base on the same windows.
    Eval(eval::EvalArgs),
    /// Generate text with the CPU or GPU forward (greedy or seeded sampling), optionally after
    /// re-quantizing the weights in memory (--format); timings on stderr.
    Generate(generate::GenerateArgs),
    /// llama.cpp's importance matrix (Σx² per input column of every blk.* matrix) over
    /// calibration text, written as llama-imatrix's GGUF file.
    Imatrix(imatrix::ImatrixArgs),
    /// Quantize one unit (a tensor, or a layer's matrices) at a time and rank the units by KL to
    /// the base on calibration text; with a size target, recommend a mixed recipe (--recipe-out).
    Sensitivity(sensitivity::SensitivityArgs),
    /// Each block matrix's relative output error ‖WX − ŴX‖² / ‖WX‖² on calibration inputs, for
    /// round to nearest, GPTQ and AWQ at one format.
    LayerError(layer_error::LayerErrorArgs),
    /// List the formats `--format` accepts: name patterns, bits per weight, GPU kernel, GGUF type.
    Formats(formats::FormatsArgs),
}

/// A failure worth telling the user about; the message is printed after `quantlab: error: `.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Message(String),
    #[error("{path}: {source}")]
    Gguf { path: PathBuf, source: crate::gguf::GgufError },
    #[error("cannot write output: {0}")]
    Output(String),
}

/// Runs a parsed command and returns what it prints on stdout.
pub fn run(cli: &Cli) -> Result<String, CliError> {
    match &cli.command {
        Command::Info(args) => info::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Formats(args) => formats::run(args),
        Command::Imatrix(args) => imatrix::run(args),
        Command::Sensitivity(args) => sensitivity::run(args),
        Command::LayerError(args) => layer_error::run(args),
    }
}

/// The process entry point (called by `src/main.rs`).
pub fn main() -> ExitCode {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and --version go to stdout with code 0, usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(&cli) {
        Ok(out) => match write_stdout(&out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report(&e),
        },
        Err(e) => report(&e),
    }
}

fn report(e: &CliError) -> ExitCode {
    eprintln!("quantlab: error: {e}");
    ExitCode::from(1)
}

/// Writes `out`; a reader that went away (`| head`) is not an error.
fn write_stdout(out: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Output(e.to_string())),
        _ => Ok(()),
    }
}

/// A bug should still read as a one-line message, not a backtrace dump.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("quantlab: internal error (this is a bug, please report it): {msg}{at}");
    }));
}

/// Memory-maps a model file after checking the cases a user gets wrong (missing file, a
/// directory, an empty file), so huge models cost no reads beyond the pages touched.
pub fn map_file(path: &Path) -> Result<memmap2::Mmap, CliError> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CliError::Message(format!("cannot open '{shown}': no such file")),
        _ => CliError::Message(format!("cannot open '{shown}': {e}")),
    })?;
    if meta.is_dir() {
        return Err(CliError::Message(format!("'{shown}' is a directory, not a model file")));
    }
    if meta.len() == 0 {
        return Err(CliError::Message(format!("'{shown}' is empty (0 bytes), not a model file")));
    }
    let file = std::fs::File::open(path).map_err(|e| CliError::Message(format!("cannot open '{shown}': {e}")))?;
    // SAFETY: the map is read-only. If another process truncates the file while we run, reads
    // of the vanished pages fault (SIGBUS); every mmap-based model loader (llama.cpp included)
    // accepts this, and it is the price of not reading gigabytes up front.
    unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| CliError::Message(format!("cannot map '{shown}' into memory: {e}")))
}
