//! `quantlab formats`: the format registry (`formats::registry`) as a table, or as JSON.

use clap::Args;

use super::CliError;
use crate::formats::registry::{self, GpuRule, Support};

#[derive(Debug, Args)]
pub struct FormatsArgs {
    /// Print the registry as JSON (the same records the web lab's `listFormats()` returns).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &FormatsArgs) -> Result<String, CliError> {
    let list = registry::list();
    if args.json {
        return serde_json::to_string_pretty(&list).map(|s| s + "\n").map_err(|e| CliError::Output(e.to_string()));
    }
    let mut out = format!("{:<38} {:>6}  {:<10} {:<6} {}\n", "format", "bits/w", "gpu", "gguf", "description");
    for f in &list {
        let e = &f.entry;
        let bits = f.bits_per_weight.map(|b| format!("{b:.3}")).unwrap_or_else(|| "-".into());
        let gpu = match e.gpu {
            GpuRule::Dedicated { .. } => "dedicated",
            GpuRule::Generic => "generic",
        };
        let gguf = e.gguf.map(|t| t.name()).unwrap_or("-");
        let read_only = if e.support == Support::DecodeOnly { " (read only)" } else { "" };
        out += &format!("{:<38} {bits:>6}  {gpu:<10} {gguf:<6} {}{read_only}\n", e.pattern, e.description);
    }
    let shape = registry::REFERENCE_SHAPE;
    out += &format!("\nbits/w: of the example name on a {}×{} matrix. Suggested names: ", shape.rows, shape.cols);
    let suggested: Vec<&str> = list.iter().flat_map(|f| f.suggestions.iter().map(|s| s.name)).collect();
    out += &suggested.join(" ");
    out += "\n\nllama.cpp file types (quantize/eval -f: llama-quantize's per-tensor types; --pure for one type):\n  ";
    let presets: Vec<&str> = registry::presets().iter().map(|p| p.name).collect();
    out += &presets.join(" ");
    out.push('\n');
    Ok(out)
}
