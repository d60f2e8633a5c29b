//! `quantlab layer-error MODEL -f FORMAT [--pure] [--calib FILE] [--calib-tokens N] [--act-order]
//! [--tensor NAME]... [--method gptq|awq]... [--json]`: each block matrix's relative output error
//! `‖WX − ŴX‖² / ‖WX‖²` on the float model's calibration inputs, for round to nearest, GPTQ and
//! AWQ ([`crate::methods::layer_error`]), with the calibration text, tokens and chunks of
//! `quantlab eval --method gptq|awq` ([`super::gptq::calibration_plan`]).

use super::display::Table;
use super::gptq::{calibration_plan, MethodArgs};
use super::load::load_model;
use super::CliError;
use crate::calib::CalibHooks;
use crate::methods::gptq::{ColumnOrder, GptqOptions};
use crate::methods::layer_error::{layer_errors, Compared, LayerErrorOptions, LayerErrorRow, TensorSelection};
use crate::model::TensorPolicy;
use crate::policy::Target;
use serde::Serialize;
use std::path::PathBuf;

/// A method compared with round to nearest (`--method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareArg {
    Gptq,
    Awq,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LayerErrorArgs {
    /// The model: a GGUF file or a Hugging Face LLaMA directory.
    pub model: PathBuf,
    /// The target (a format such as int4-sym-g64, or a llama.cpp file type such as q4_0, which
    /// gets llama-quantize's per-tensor types unless --pure).
    #[arg(short = 'f', long = "format")]
    pub format: String,
    /// One type for every matrix, without a file type's per-tensor rules.
    #[arg(long)]
    pub pure: bool,
    /// Calibration text (UTF-8 file; default: Moby-Dick chapters 4+, never the eval chapters 1-3).
    #[arg(long, value_name = "FILE")]
    pub calib: Option<PathBuf>,
    /// Calibration tokens (whole chunks of up to 512 tokens), as for `eval --method gptq|awq`.
    #[arg(long, value_name = "N", default_value_t = crate::calib::DEFAULT_TOKENS)]
    pub calib_tokens: usize,
    /// GPTQ's desc_act column order with static groups.
    #[arg(long)]
    pub act_order: bool,
    /// Only this block matrix (repeatable, e.g. blk.0.attn_q.weight); the model runs up to the
    /// last layer named. Default: every block matrix.
    #[arg(long = "tensor", value_name = "NAME")]
    pub tensors: Vec<String>,
    /// The methods compared with round to nearest (repeatable; default: gptq and awq).
    #[arg(long = "method", value_enum, value_name = "M")]
    pub methods: Vec<CompareArg>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerErrorReport {
    pub model: String,
    pub target: String,
    pub calibration: String,
    pub tokens: usize,
    pub chunks: usize,
    pub chunk: usize,
    pub rows: Vec<LayerErrorRow>,
}

pub fn run(args: &LayerErrorArgs) -> Result<String, CliError> {
    let r = report(args)?;
    if args.json {
        let mut s = serde_json::to_string_pretty(&r).map_err(|e| CliError::Output(e.to_string()))?;
        s.push('\n');
        return Ok(s);
    }
    Ok(text(&r))
}

pub fn report(args: &LayerErrorArgs) -> Result<LayerErrorReport, CliError> {
    let msg = |e: &dyn std::fmt::Display| CliError::Message(e.to_string());
    let t = Target::parse(&args.format).map_err(|e| msg(&e))?;
    let t = if args.pure { t.pure() } else { t };
    let (model, tok, _) = load_model(&args.model)?;
    let method_args =
        MethodArgs { calib: args.calib.clone(), calib_tokens: args.calib_tokens, ..MethodArgs::default() };
    let (ids, plan, source) = calibration_plan(&model, &tok, &method_args)?;
    let order = if args.act_order { ColumnOrder::ActOrder } else { ColumnOrder::Natural };
    let mut methods: Vec<Compared> = args
        .methods
        .iter()
        .map(|m| match m {
            CompareArg::Gptq => Compared::Gptq,
            CompareArg::Awq => Compared::Awq,
        })
        .collect();
    if methods.is_empty() {
        methods = Compared::ALL.to_vec();
    }
    methods.sort();
    methods.dedup();
    let options = LayerErrorOptions {
        tensors: if args.tensors.is_empty() {
            TensorSelection::All
        } else {
            TensorSelection::Only(args.tensors.clone())
        },
        methods,
        gptq: GptqOptions { order, ..Default::default() },
    };
    let policy = TensorPolicy { mix: t.mix, ..TensorPolicy::default() };
    let out =
        layer_errors(&model, &ids, &plan, &t.scheme, &policy, &options, CalibHooks::default()).map_err(|e| msg(&e))?;
    Ok(LayerErrorReport {
        model: args.model.display().to_string(),
        target: t.name(),
        calibration: source,
        tokens: out.run.tokens,
        chunks: out.run.chunks,
        chunk: out.run.chunk,
        rows: out.rows,
    })
}

fn text(r: &LayerErrorReport) -> String {
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3e}"));
    let ratio = |v: Option<f64>, rtn: f64| {
        v.filter(|_| rtn > 0.0).map_or_else(|| "-".to_string(), |v| format!("{:.3}", v / rtn))
    };
    let mut table = Table::new(&[
        ("tensor", false),
        ("format", false),
        ("RTN", true),
        ("GPTQ", true),
        ("AWQ", true),
        ("GPTQ/RTN", true),
        ("AWQ/RTN", true),
    ]);
    for row in &r.rows {
        table.row(vec![
            row.tensor.clone(),
            row.format.clone(),
            num(Some(row.rtn)),
            num(row.gptq),
            num(row.awq),
            ratio(row.gptq, row.rtn),
            ratio(row.awq, row.rtn),
        ]);
    }
    format!(
        "{}: relative output error ‖WX − ŴX‖² / ‖WX‖² at {} on the float model's inputs\n\
         calibration: {} tokens ({} chunks of {}) of {}; GPTQ and AWQ calibrated layer by layer on the same tokens\n\n{}",
        r.model,
        r.target,
        r.tokens,
        r.chunks,
        r.chunk,
        r.calibration,
        table.render("  ")
    )
}
