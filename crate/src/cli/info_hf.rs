//! `quantlab info DIR [--json]` for a Hugging Face checkpoint (directory, `.safetensors` or
//! `.index.json`): shards, whether the llama forward can load it (and if not, why), the
//! hyper-parameters it would use, and the tensor table — without reading the weights.

use super::display::{bytes, count, Table};
use super::CliError;
use crate::io::Checkpoint;
use crate::model::Config;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Serialize)]
struct HfInfoJson<'a> {
    checkpoint: String,
    shards: Vec<String>,
    /// `config.json` as written (null when missing).
    config: Option<&'a serde_json::Value>,
    /// Why the llama forward cannot load the config (null when it can).
    config_error: Option<String>,
    parameters: u64,
    tensor_bytes: u64,
    tensors: Vec<HfTensorJson<'a>>,
}

#[derive(Serialize)]
struct HfTensorJson<'a> {
    name: &'a str,
    dtype: String,
    /// PyTorch order (the row length last).
    shape: &'a [usize],
    bytes: usize,
    shard: usize,
}

pub fn run(path: &Path, json: bool) -> Result<String, CliError> {
    let ck = Checkpoint::open(path).map_err(|e| CliError::Message(e.to_string()))?;
    let config = ck.config.as_ref().map(Config::from_hf_config);
    let config_error = match &config {
        None => Some(crate::model::ModelError::NoHfConfig.to_string()),
        Some(Err(e)) => Some(e.to_string()),
        Some(Ok(_)) => None,
    };
    let parameters: u64 = ck.tensors.iter().map(|t| t.n_elements() as u64).sum();
    let tensor_bytes: u64 = ck.tensors.iter().map(|t| t.n_bytes() as u64).sum();
    if json {
        let out = HfInfoJson {
            checkpoint: path.display().to_string(),
            shards: ck.shards.iter().map(|s| s.display().to_string()).collect(),
            config: ck.config.as_ref(),
            config_error,
            parameters,
            tensor_bytes,
            tensors: ck
                .tensors
                .iter()
                .map(|t| HfTensorJson {
                    name: &t.name,
                    dtype: t.dtype.to_string(),
                    shape: &t.shape,
                    bytes: t.n_bytes(),
                    shard: t.shard,
                })
                .collect(),
        };
        let mut s = serde_json::to_string(&out).map_err(|e| CliError::Output(e.to_string()))?;
        s.push('\n');
        return Ok(s);
    }

    let mut o = String::new();
    let _ = writeln!(o, "checkpoint    {} (Hugging Face safetensors)", path.display());
    for s in &ck.shards {
        let _ = writeln!(o, "shard         {}", s.display());
    }
    let arch = ck.config.as_ref().and_then(|c| c.get("architectures")).map_or("-".into(), |a| a.to_string());
    let _ = writeln!(o, "architecture  {arch}");
    match (&config, &config_error) {
        (Some(Ok(c)), _) => {
            let _ = writeln!(o, "\nhyper-parameters (as the llama forward reads them)");
            let mut hp = Table::new(&[("", false), ("", true)]);
            for (k, v) in [
                ("hidden_size", c.dim.to_string()),
                ("intermediate_size", c.hidden_dim.to_string()),
                ("num_hidden_layers", c.n_layers.to_string()),
                ("num_attention_heads", c.n_heads.to_string()),
                ("num_key_value_heads", c.n_kv_heads.to_string()),
                ("head_dim", c.head_dim.to_string()),
                ("max_position_embeddings", c.seq_len.to_string()),
                ("rope_theta", c.rope_theta.to_string()),
                ("rms_norm_eps", c.rms_eps.to_string()),
                ("vocab_size", c.vocab_size.to_string()),
                ("tie_word_embeddings", c.tied_embeddings.to_string()),
            ] {
                hp.row(vec![k.to_string(), v]);
            }
            o.extend(hp.render("  ").lines().skip(1).map(|l| format!("{l}\n")));
        }
        (_, Some(e)) => {
            let _ = writeln!(o, "\nnot loadable  {e}");
        }
        _ => {}
    }
    let mut dtypes: BTreeMap<String, usize> = BTreeMap::new();
    for t in &ck.tensors {
        *dtypes.entry(t.dtype.to_string()).or_default() += 1;
    }
    let dtypes: Vec<String> = dtypes.iter().map(|(d, n)| format!("{n} x {d}")).collect();
    let _ = writeln!(o, "\nparameters    {} ({parameters})", count(parameters));
    let _ = writeln!(o, "tensor data   {tensor_bytes} bytes ({})", bytes(tensor_bytes));
    let _ = writeln!(o, "tensor types  {}", dtypes.join(", "));
    let _ = writeln!(o, "\ntensors ({}; shape in PyTorch order, row length last)", ck.tensors.len());
    let mut t = Table::new(&[("name", false), ("shape", false), ("dtype", false), ("bytes", true), ("shard", true)]);
    for ti in &ck.tensors {
        let shape = format!("[{}]", ti.shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", "));
        t.row(vec![ti.name.clone(), shape, ti.dtype.to_string(), ti.n_bytes().to_string(), ti.shard.to_string()]);
    }
    o.push_str(&t.render("  "));
    Ok(o)
}
