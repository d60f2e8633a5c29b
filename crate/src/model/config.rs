//! Hyper-parameters of a LLaMA model, from GGUF metadata (`llama.*` keys, llama.cpp naming).

use super::{ModelError, SUPPORTED_ARCHITECTURES};
use crate::gguf::GgufFile;

/// Largest dimension accepted from metadata: far above any real model, low enough that
/// products of a few of them cannot overflow and hostile files cannot ask for absurd buffers.
pub(super) const MAX_DIM: u64 = 1 << 20;

/// The model's shape, like llama2.c's `Config`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Transformer width (`embedding_length`).
    pub dim: usize,
    /// FFN inner width (`feed_forward_length`).
    pub hidden_dim: usize,
    /// Number of transformer blocks (`block_count`).
    pub n_layers: usize,
    /// Query heads (`attention.head_count`).
    pub n_heads: usize,
    /// Key/value heads (`attention.head_count_kv`, default `n_heads`); `n_heads` is a multiple.
    pub n_kv_heads: usize,
    /// Per-head width: `attention.key_length`, else `dim / n_heads`.
    pub head_dim: usize,
    /// Leading dims of each head that RoPE rotates (`rope.dimension_count`, else `head_dim`).
    pub rope_dim: usize,
    /// Vocabulary size (`vocab_size`, else the rows of `token_embd.weight`).
    pub vocab_size: usize,
    /// Trained context length (`context_length`); [`State`](super::State) may allocate less.
    pub seq_len: usize,
    /// RoPE base frequency (`rope.freq_base`, default 10000).
    pub rope_theta: f32,
    /// RMSNorm epsilon (`attention.layer_norm_rms_epsilon`, default 1e-5).
    pub rms_eps: f32,
    /// No `output.weight`: the classifier is `token_embd.weight`.
    pub tied_embeddings: bool,
}

impl Config {
    /// Reads and checks the hyper-parameters. Errors name the key that is missing or wrong.
    pub fn from_gguf(f: &GgufFile) -> Result<Config, ModelError> {
        let arch = f.architecture();
        if !arch.is_some_and(|a| SUPPORTED_ARCHITECTURES.contains(&a)) {
            return Err(ModelError::UnsupportedArchitecture { found: arch.map(str::to_string) });
        }
        let arch = arch.unwrap_or_default();
        let key = |s: &str| format!("{arch}.{s}");
        let bad = |s: &str, reason: String| ModelError::BadMetadata { key: key(s), reason };
        let opt_u = |s: &str| -> Result<Option<usize>, ModelError> {
            match f.get(&key(s)) {
                None => Ok(None),
                Some(v) => match v.as_u64() {
                    Some(n) if (1..=MAX_DIM).contains(&n) => Ok(Some(n as usize)),
                    Some(n) => Err(bad(s, format!("{n} is out of range 1..={MAX_DIM}"))),
                    None => Err(bad(s, format!("expected a positive integer, found {}", v.type_name()))),
                },
            }
        };
        let req_u = |s: &str| opt_u(s)?.ok_or_else(|| ModelError::MissingMetadata { key: key(s) });
        let opt_f = |s: &str, default: f32| -> Result<f32, ModelError> {
            match f.get(&key(s)) {
                None => Ok(default),
                Some(v) => match v.as_f64() {
                    Some(x) if x.is_finite() && x > 0.0 => Ok(x as f32),
                    Some(x) => Err(bad(s, format!("{x} is not a positive finite number"))),
                    None => Err(bad(s, format!("expected a number, found {}", v.type_name()))),
                },
            }
        };

        let dim = req_u("embedding_length")?;
        let hidden_dim = req_u("feed_forward_length")?;
        let n_layers = req_u("block_count")?;
        let n_heads = req_u("attention.head_count")?;
        let n_kv_heads = opt_u("attention.head_count_kv")?.unwrap_or(n_heads);
        let head_dim = head_dim(dim, n_heads, n_kv_heads, opt_u("attention.key_length")?).map_err(|p| match p {
            HeadsProblem::KvHeads(r) => bad("attention.head_count_kv", r),
            HeadsProblem::Heads(r) => bad("attention.head_count", r),
            HeadsProblem::HeadDim(r) => bad("attention.key_length", r),
        })?;
        if let Some(v) = opt_u("attention.value_length")? {
            if v != head_dim {
                return Err(bad(
                    "attention.value_length",
                    format!("{v} differs from the key length {head_dim} (not supported)"),
                ));
            }
        }
        let rope_dim = opt_u("rope.dimension_count")?.unwrap_or(head_dim);
        if rope_dim > head_dim || rope_dim % 2 != 0 {
            return Err(bad(
                "rope.dimension_count",
                format!("{rope_dim} must be even and at most head_dim {head_dim}"),
            ));
        }
        if let Some(t) = f.get(&key("rope.scaling.type")).and_then(|v| v.as_str()) {
            if t != "none" {
                return Err(ModelError::NotImplemented(format!("RoPE scaling '{t}' ({})", key("rope.scaling.type"))));
            }
        }
        if let Some(n) = f.get(&key("expert_count")).and_then(|v| v.as_u64()) {
            if n > 0 {
                return Err(ModelError::NotImplemented(format!("mixture-of-experts llama ({n} experts)")));
            }
        }
        let embd_rows = f.tensor("token_embd.weight").map(|t| t.n_rows());
        let vocab_size = match opt_u("vocab_size")? {
            Some(v) => v,
            None => match embd_rows {
                Some(r) if (1..=u64::from(u32::MAX)).contains(&r) => r as usize,
                _ => return Err(ModelError::MissingTensor { name: "token_embd.weight".into() }),
            },
        };
        let seq_len = opt_u("context_length")?.unwrap_or(2048);
        Ok(Config {
            dim,
            hidden_dim,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            rope_dim,
            vocab_size,
            seq_len,
            rope_theta: opt_f("rope.freq_base", 10000.0)?,
            rms_eps: opt_f("attention.layer_norm_rms_epsilon", 1e-5)?,
            tied_embeddings: f.tensor("output.weight").is_none(),
        })
    }

    /// Width of all query heads together (`n_heads * head_dim`).
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// Width of all key (or value) heads together (`n_kv_heads * head_dim`).
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }
}

/// Which attention hyper-parameter [`head_dim`] found inconsistent, and why.
pub(super) enum HeadsProblem {
    KvHeads(String),
    Heads(String),
    HeadDim(String),
}

/// The per-head width (`explicit`, else `dim / n_heads`) after checking that the kv heads
/// divide the query heads and that the head widths stay within [`MAX_DIM`]. Shared by the GGUF
/// and Hugging Face readers, which name the keys differently.
pub(super) fn head_dim(
    dim: usize,
    n_heads: usize,
    n_kv_heads: usize,
    explicit: Option<usize>,
) -> Result<usize, HeadsProblem> {
    if !n_heads.is_multiple_of(n_kv_heads) {
        return Err(HeadsProblem::KvHeads(format!("{n_kv_heads} does not divide the {n_heads} query heads")));
    }
    let head_dim = match explicit {
        Some(h) => h,
        None if dim.is_multiple_of(n_heads) => dim / n_heads,
        None => return Err(HeadsProblem::Heads(format!("{n_heads} does not divide dim {dim}"))),
    };
    for (what, heads) in [("n_heads * head_dim", n_heads), ("n_kv_heads * head_dim", n_kv_heads)] {
        let n = heads as u64 * head_dim as u64;
        if n > MAX_DIM {
            return Err(HeadsProblem::HeadDim(format!("{what} = {n} exceeds {MAX_DIM}")));
        }
    }
    Ok(head_dim)
}
