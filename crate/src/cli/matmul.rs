//! `--matmul exact|int8` and `--activations llm-int8 [--llm-int8-threshold T]` for `generate` and
//! `eval`: the CPU forward's product arithmetic ([`crate::model::int_path`]) and LLM.int8()
//! ([`crate::model::llm_int8`]), with what `generate` and `eval` print about them (which path
//! each product took, LLM.int8()'s outlier columns per layer).

use std::io::Write;

use super::device::GpuArgs;
use super::CliError;
use crate::model::act_quant::layer_inputs;
use crate::model::llm_int8::{llm_int8_model, DEFAULT_THRESHOLD};
use crate::model::{ActQuant, ActQuantizer, Config, KvType, LinearInput, MatmulPath, Model, PathStats, State};

/// `--matmul`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MatmulArg {
    /// f32 products (the reference).
    #[default]
    Exact,
    /// Integer dot products where a kernel exists.
    Int8,
}

impl MatmulArg {
    pub fn path(self) -> MatmulPath {
        match self {
            MatmulArg::Exact => MatmulPath::Exact,
            MatmulArg::Int8 => MatmulPath::Int8,
        }
    }
}

/// The `--matmul` help text.
pub const MATMUL_HELP: &str = "How the CPU forward's weight products run. exact (default): f32 products, the \
reference every number the lab quotes comes from. int8: integer dot products where a kernel exists, a labelled mode \
that changes the arithmetic: with f32 activations, Q4_0/Q4_1/Q8_0 weights times the activations quantized per 32 \
values to ggml's Q8_0/Q8_1 blocks (llama.cpp's CPU path; the activation rounding changes the numbers); with \
--activations int8-token or llm-int8, int8 per-channel weights (int8-sym-channel) times the per-token int8 codes in \
i32, and with int8-token Q8_0 weights too, block by block (the same numbers as the simulated path up to float \
summation order). Other products stay exact f32. eval's first \
row is then the base on the exact path, the reference; generate and eval print how many products ran each path";

/// The activation quantizer `q` with `--llm-int8-threshold` applied (LLM.int8() only).
pub fn with_threshold(opts: GpuArgs, q: ActQuantizer) -> Result<ActQuantizer, CliError> {
    if q.quant != ActQuant::LLM_INT8 {
        return Ok(q);
    }
    q.with_threshold(opts.llm_int8_threshold.unwrap_or(DEFAULT_THRESHOLD))
        .map_err(|e| CliError::Message(format!("--llm-int8-threshold: {e}")))
}

/// For `--activations llm-int8`: `model` with int8 vector-wise layer weights (LLM.int8()'s),
/// said on `err`; `None` for the other formats.
pub fn llm_int8_weights(
    quant: Option<ActQuant>,
    model: &Model,
    name: &str,
    err: &mut dyn Write,
) -> Result<Option<Model>, CliError> {
    if quant != Some(ActQuant::LLM_INT8) {
        return Ok(None);
    }
    let m = llm_int8_model(model).map_err(|e| CliError::Message(format!("{name}: LLM.int8() weights: {e}")))?;
    let _ = writeln!(
        err,
        "{name}: LLM.int8() weights: every layer matrix re-quantized int8 vector-wise (per output row absmax) from its \
         values; embedding and LM head as they are"
    );
    Ok(Some(m))
}

/// One line: which path the products took, e.g. `matmul int8: 210 products by integer dots, 1 in f32`.
pub fn path_line(path: MatmulPath, stats: &PathStats) -> String {
    match path {
        MatmulPath::Exact => format!("matmul exact: {} products in f32", stats.float),
        MatmulPath::Int8 => format!(
            "matmul int8: {} products by integer dots, {} in f32 (no integer kernel for their weight type or \
             activations)",
            stats.integer, stats.float
        ),
    }
}

/// LLM.int8()'s outlier columns per layer (nothing when there are none counted): for each layer
/// input, the mean and the most outlier columns per product and how many columns ever were.
pub fn outlier_lines(stats: &PathStats, n_layers: usize) -> Vec<String> {
    if stats.outliers.is_empty() {
        return Vec::new();
    }
    let mut lines =
        vec!["LLM.int8() outlier columns per product (mean / max / distinct columns) at attn_q/k/v, attn_output, \
              ffn_gate/up, ffn_down inputs:"
            .to_string()];
    for layer in 0..n_layers {
        let cells: Vec<String> = layer_inputs(layer)
            .iter()
            .map(|i| {
                stats.outliers.get(i).map_or("-".into(), |c| format!("{:.2}/{}/{}", c.mean(), c.max, c.distinct()))
            })
            .collect();
        lines.push(format!("  layer {layer:>2}: {}", cells.join("  ")));
    }
    if let Some(c) = stats.outliers.get(&LinearInput::Classifier) {
        lines.push(format!("  LM head: {:.2}/{}/{}", c.mean(), c.max, c.distinct()));
    }
    lines
}

/// An eval row's name with what sets it apart: its KV cache (`kv`, when the run quantizes it)
/// and the integer path.
pub fn row_name(name: &str, kv: Option<KvType>, path: MatmulPath) -> String {
    let mut s = name.to_string();
    if let Some(kv) = kv {
        s.push_str(&format!(", KV {kv}"));
    }
    if path != MatmulPath::Exact {
        s.push_str(&format!(", matmul {}", path.name()));
    }
    s
}

/// Prints on stderr, for the run `name` with `state` on a model of `config`: [`path_line`] and
/// [`outlier_lines`].
pub fn report(name: &str, path: MatmulPath, state: &State, config: &Config) {
    eprintln!("{name}: {}", path_line(path, &state.stats));
    for line in outlier_lines(&state.stats, config.n_layers) {
        eprintln!("{line}");
    }
}
