//! `quantlab quantize IN -f FORMAT -o OUT [--all-tensors]`: re-quantize a checkpoint.
//! `quantlab quantize IN --recipe recipe.json -o OUT`: per-tensor formats and methods from a
//! recipe file ([`crate::recipe`]).
//! `quantlab quantize IN.gguf -f int4-sym-g64 --layout gptq|awq -o DIR`: a Hugging Face
//! checkpoint directory in AutoGPTQ's or AutoAWQ's layout ([`super::quantize_layout`]).
//!
//! Inputs: a GGUF file (any tensor type the dequantizer reads), or a safetensors checkpoint (a
//! `.safetensors` file, a sharded checkpoint's `*.index.json`, or a directory holding either).
//! Outputs: `.gguf` for the ggml types (q8_0 q4_0 q4_1 q5_0 q5_1 q2_k..q6_k, and f16 bf16 f32),
//! `.safetensors` for the other formats (int*, nf4/fp4, fp8; f16 bf16 f32 too). A GGUF input
//! keeps all its metadata (tokenizer, hyper-parameters), so llama.cpp loads the result. A
//! Hugging Face LLaMA checkpoint written to `.gguf` is converted as llama.cpp's
//! `convert_hf_to_gguf.py` does (tensor names, q/k rows, `llama.*` and tokenizer keys; see
//! [`crate::model::hf_gguf`], through `quantize/hf.rs`), then quantized like a GGUF input; to
//! `.safetensors` its tensors keep their names.
//!
//! See [`POLICY`] for which tensors are quantized. Every output is written one tensor at a
//! time, each tensor's row chunks quantized on `--threads` cores ([`super::parallel`]); a
//! safetensors input goes through `quantize_safetensors.rs` (optionally into restartable shards,
//! `--shard-size`).

mod hf;

use super::display::{bytes, Table};
pub use super::gptq::{Method, MethodArgs};
use super::output::{refuse_input_as_output, OutputFile};
use super::parallel::ParallelRtn;
use super::progress::Progress;
use super::recipe_run::{self, LoadedRecipe, RecipeMethods};
use super::{map_file, CliError};
use crate::formats::{GgmlType, QuantScheme, Saturation};
use crate::gguf::GgufFile;
use crate::io::export::{self, ExportError, ExportKind, ImportanceWeighted, TensorMethod, Totals};
use crate::io::imatrix::Imatrix;
use crate::io::safetensors as st;
use crate::policy::{Action, Target, TensorFacts, TensorPolicy, TypeMix};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The tensor policy, shown by `quantlab quantize --help`.
pub const POLICY: &str = "\
Tensor policy (default, modelled on llama.cpp's llama-quant.cpp):
  - a tensor is quantized when it has 2 or more dimensions, its name ends in 'weight', and
    the name does not contain 'norm', 'ffn_gate_inp', 'pos_embd', 'position_embd' or
    'token_types' (norms, MoE routers and position tables stay as they are);
  - with a llama.cpp file type (q2_k, q3_k_s|m|l, q4_k_s|m, q5_k_s|m, q6_k, q4_0, q4_1, q5_0,
    q5_1, q8_0, iq4_nl, f16, bf16; q3_k/q4_k/q5_k mean q3_k_m/q4_k_m/q5_k_m, as in
    llama-quantize) on a GGUF input, each weight gets the type llama-quantize gives it:
    token_embd.weight and output.weight (the output matrix, token_embd when tied) Q6_K or Q8_0,
    more bits for some attn_v, ffn_down and attn_output layers; the report lists every tensor
    whose type differs from the file type's default, and why. With --pure (and for formats that
    are not file types) every weight gets the target type;
  - with --recipe FILE, each tensor the recipe lists gets its entry's format and method (the
    rows below still apply: a fallback is reported as for -f); the others get the recipe's
    default as they would get -f;
  - 1-D tensors (norms, biases) are never quantized: they are copied (F32 in llama.cpp files);
  - a weight whose row length (last PyTorch dimension, ggml's ne[0]) is not a multiple of the
    format's block or group size is never truncated or padded. K-quants fall back like llama.cpp
    (llama-quant.cpp): q4_k -> q5_0, q5_k -> q5_1, q6_k -> q8_0, q2_k/q3_k -> q4_0; int gN /
    nf4 / fp4 bN fall back to the largest power-of-two group >= 32 dividing the row. Otherwise
    (or if the fallback does not fit either) the tensor is kept as it is when F32/F16/BF16
    (a llama.cpp file type converts it to F16, as llama-quantize does), else stored as F16. Every fallback
    is reported (name, row length, requested and actual format);
  - a tensor already in the target ggml type is copied unchanged;
  - NaN or infinite values are an error naming the tensor, row and column;
  - a block whose scale does not fit the format's scale storage (f16 scales: INT group scales
    above 65504, ggml d/dmin overflowing to infinity on weights near the f32 limit) would decode
    wrong: it is an error naming the tensor and block, unless --allow-saturation, which writes
    it and reports the count.
  --all-tensors quantizes every tensor with 2 or more dimensions whose row length fits the
  block, whatever its name; 1-D tensors are still copied.
Output metadata (GGUF): every key of the input, in order, with general.file_type set to
llama.cpp's ftype (the file type's, or with --pure the type's: Q4_K -> MOSTLY_Q4_K_S, ...) and
general.quantization_version = 2.
Hugging Face input to .gguf: a LlamaForCausalLM checkpoint (config.json, safetensors, a
byte-level BPE tokenizer.json; tokenizer_config.json optional) is converted as llama.cpp's
convert_hf_to_gguf.py converts it: GGUF tensor names (token_embd, blk.N.attn_q ..., output
unless tied), q/k rows permuted for llama.cpp's RoPE, 1-D tensors F32, the llama.* and
general.* keys and the tokenizer.* keys (tokens, types, merges, special ids, add_bos/add_eos,
chat template); the policy above then applies to the GGUF names. What cannot be converted
faithfully is an error naming the file and key.";

#[derive(Debug, Clone, clap::Args)]
#[command(after_help = POLICY)]
pub struct QuantizeArgs {
    /// Input: a .gguf file, a .safetensors file, a sharded checkpoint's index.json, or a
    /// directory holding a safetensors checkpoint. A Hugging Face LLaMA checkpoint (config.json,
    /// tokenizer.json beside it) written to .gguf is converted as convert_hf_to_gguf.py does.
    pub input: PathBuf,
    /// Target: a llama.cpp file type (q4_k_m, q3_k_s, q4_0, q6_k, iq4_nl …: per-tensor types as
    /// llama-quantize picks them) or a format, e.g. int4-asym-g128, nf4, fp8-e4m3 (`quantlab formats` lists them).
    #[arg(
        short = 'f',
        long = "format",
        required_unless_present = "recipe",
        conflicts_with = "recipe",
        default_value = "",
        hide_default_value = true
    )]
    pub format: String,
    /// A recipe file (recipe.json) instead of -f: a default target and per-tensor formats and
    /// methods (rtn, imatrix with --imatrix, gptq with the --calib options). Schema: version 1,
    /// {"version": 1, "name": "...", "default": {"format": "q4_0", "method": "rtn"},
    /// "tensors": [{"name": "blk.0.ffn_down.weight", "format": "q8_0", "method": "rtn"}]};
    /// unknown fields, formats and tensor names are errors naming the entry and field.
    #[arg(long, value_name = "FILE")]
    pub recipe: Option<PathBuf>,
    /// Output file: .gguf for the ggml types, .safetensors for the others (f16/bf16/f32: either);
    /// with --layout, a directory.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Quantize every tensor with 2+ dimensions whose row length fits the block, whatever its name.
    #[arg(long)]
    pub all_tensors: bool,
    /// One type for every quantized tensor (llama-quantize's --pure): no per-tensor rules of the
    /// file type (q4_k_m then means q4_k everywhere).
    #[arg(long)]
    pub pure: bool,
    /// Write blocks whose scale overflows the format's scale type (f16 scales above 65504: the
    /// block decodes wrong) and report how many, instead of stopping with an error naming the
    /// tensor and block.
    #[arg(long)]
    pub allow_saturation: bool,
    #[command(flatten)]
    pub method: MethodArgs,
    /// llama.cpp importance matrix (`quantlab imatrix` or `llama-imatrix` output, GGUF or legacy
    /// .dat): each tensor quantized to a ggml type uses its entry (looked up by tensor name) as
    /// llama-quantize does; a tensor without one is rounded to nearest, with a note. GGUF input
    /// and output only. A recipe's imatrix entries read it too.
    #[arg(long, value_name = "FILE")]
    pub imatrix: Option<PathBuf>,
    /// Split a safetensors output into shards of at most SIZE (500MB, 5GB, …) next to an index
    /// `OUTPUT.index.json`; a rerun with the same arguments keeps the shards already complete.
    #[arg(long, value_name = "SIZE")]
    pub shard_size: Option<String>,
    /// Threads quantizing each tensor's rows (default: all cores). The output does not depend
    /// on it. GPTQ and --imatrix choose their own.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Write a Hugging Face checkpoint directory (-o DIR: model.safetensors + config.json) that
    /// transformers loads pre-quantized: gptq (AutoGPTQ/optimum: qweight, qzeros, scales, g_idx;
    /// INT2/4/8) or awq (AutoAWQ GEMM; INT4). GGUF LLaMA input; -f an INT group format (e.g.
    /// int4-sym-g64) whose group size divides every linear's input count; the blocks' linear
    /// layers are quantized with --method, the embedding and lm_head are written F16, norms F32.
    #[arg(long, value_enum, value_name = "LAYOUT")]
    pub layout: Option<super::quantize_layout::LayoutArg>,
}

impl QuantizeArgs {
    /// `quantlab quantize INPUT -f FORMAT -o OUTPUT` with every other option at its default.
    pub fn new(input: impl Into<PathBuf>, format: &str, output: impl Into<PathBuf>) -> QuantizeArgs {
        QuantizeArgs {
            input: input.into(),
            format: format.to_string(),
            output: output.into(),
            all_tensors: false,
            pure: false,
            allow_saturation: false,
            method: MethodArgs::default(),
            imatrix: None,
            recipe: None,
            threads: None,
            shard_size: None,
            layout: None,
        }
    }
}

/// The output container, from the output's extension.
type OutKind = ExportKind;

pub use crate::policy::name_is_quantizable;

/// The shared policy's decision for one tensor (see [`crate::policy`]).
pub(super) fn decide(c: &TensorFacts, scheme: &QuantScheme, policy: &TensorPolicy) -> (Action, Option<String>) {
    let d = TensorPolicy { mix: TypeMix::Pure, ..*policy }.decide(c, scheme);
    (d.action, d.note)
}

impl QuantizeArgs {
    fn target(&self, recipe: Option<&LoadedRecipe>) -> Result<Target, CliError> {
        if let Some(r) = recipe {
            return Ok(r.target);
        }
        let target = Target::parse(&self.format).map_err(|e| msg(e.to_string()))?;
        Ok(if self.pure { target.pure() } else { target })
    }

    /// The run's tensor policy.
    pub(super) fn policy<'r>(&self, target: &Target, recipe: Option<&'r LoadedRecipe>) -> TensorPolicy<'r> {
        match recipe {
            Some(r) => r.policy(self.all_tensors),
            None => TensorPolicy { all_tensors: self.all_tensors, mix: target.mix, per_tensor: None },
        }
    }

    /// The round-to-nearest quantizer on `--threads` cores.
    pub(super) fn rtn(&self) -> Result<ParallelRtn, CliError> {
        ParallelRtn::new(self.threads.unwrap_or_else(crate::model::weights::default_threads)).map_err(msg)
    }

    pub(super) fn saturation(&self) -> Saturation {
        if self.allow_saturation {
            Saturation::Allow
        } else {
            Saturation::Refuse
        }
    }
}

pub(super) fn msg(s: impl Into<String>) -> CliError {
    CliError::Message(s.into())
}

fn out_kind(path: &Path) -> Result<OutKind, CliError> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("gguf") => Ok(OutKind::Gguf),
        Some("safetensors") => Ok(OutKind::Safetensors),
        _ => Err(msg(format!("output '{}' must end in .gguf or .safetensors", path.display()))),
    }
}

fn with_ext(path: &Path, ext: &str) -> String {
    path.with_extension(ext).display().to_string()
}

/// Checks that the format can be stored in the output's container (suggesting a path that fits).
fn check_container(scheme: &QuantScheme, out: OutKind, path: &Path) -> Result<(), CliError> {
    export::check_container(scheme, out).map_err(|e| {
        let ext = match e {
            ExportError::NeedsGguf { .. } => "gguf",
            _ => "safetensors",
        };
        let what = e.to_string();
        let what = what.split(": write it to").next().unwrap_or(&what).to_string();
        msg(format!("{what}: use a .{ext} output, e.g. '{}'", with_ext(path, ext)))
    })
}

pub(super) fn is_gguf_input(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return true;
    }
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok()
        && &magic == b"GGUF"
}

/// The report printed after a successful run.
fn summary(args: &QuantizeArgs, target: &str, before: &Totals, after: &Totals, notes: &[String], secs: f64) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "quantized {} -> {} ({target})", args.input.display(), args.output.display());
    for n in notes {
        let _ = writeln!(o, "note: {n}");
    }
    let mut t = Table::new(&[("type", false), ("tensors", true), ("parameters", true), ("bytes", true), ("bpw", true)]);
    for r in &after.rows {
        t.row(vec![
            r.0.clone(),
            r.1.to_string(),
            r.2.to_string(),
            r.3.to_string(),
            format!("{:.3}", export::bpw(r.3, r.2)),
        ]);
    }
    let _ = writeln!(o, "\noutput tensors by type");
    o.push_str(&t.render("  "));
    let _ = writeln!(o, "\ninput tensors   {}", before.brief());
    let _ = writeln!(o, "output tensors  {}", after.brief());
    let _ = writeln!(
        o,
        "tensor data     {} -> {} ({:.3} -> {:.3} bits per weight)",
        bytes(before.bytes()),
        bytes(after.bytes()),
        before.bpw(),
        after.bpw()
    );
    let _ = writeln!(o, "time            {secs:.2} s");
    o
}

pub fn run(args: &QuantizeArgs) -> Result<String, CliError> {
    if let Some(layout) = args.layout {
        return super::quantize_layout::run(args, layout.layout());
    }
    let recipe = args.recipe.as_deref().map(|p| recipe_run::load(p, args.pure)).transpose()?;
    let target = args.target(recipe.as_ref())?;
    let scheme = target.scheme;
    let out = out_kind(&args.output)?;
    check_container(&scheme, out, &args.output)?;
    if let Some(r) = &recipe {
        r.check_container(out)?;
        if args.method.method != Method::Rtn {
            return Err(msg("--method and --recipe both choose the methods: the recipe names each tensor's"));
        }
        if r.uses(Method::Imatrix) && args.imatrix.is_none() {
            return Err(msg("the recipe uses the imatrix method: give the importance matrix with --imatrix FILE"));
        }
    }
    if args.method.method == Method::Imatrix {
        return Err(msg(super::gptq::IMATRIX_BY_FILE));
    }
    let gptq = args.method.method == Method::Gptq || recipe.as_ref().is_some_and(|r| r.uses(Method::Gptq));
    if !args.input.exists() {
        return Err(msg(format!("cannot open '{}': no such file or directory", args.input.display())));
    }
    // Checked again with every shard once a checkpoint is open; this catches the plain case
    // before any work.
    refuse_input_as_output(&args.output, std::slice::from_ref(&args.input))?;
    let start = Instant::now();
    if args.method.method == Method::Gptq && args.imatrix.is_some() {
        return Err(msg("--imatrix and --method gptq are two ways of choosing the codes: pick one"));
    }
    if gptq && !is_gguf_input(&args.input) {
        return Err(msg("--method gptq needs a GGUF model as input (it runs the model for calibration)"));
    }
    if recipe.as_ref().is_some_and(|r| r.uses(Method::Hqq)) && !is_gguf_input(&args.input) {
        return Err(msg(
            "the recipe uses the hqq method, which takes a GGUF model as input (convert the checkpoint first)",
        ));
    }
    if args.method.method == Method::Awq && args.imatrix.is_some() {
        return Err(msg("--imatrix and --method awq are two ways of choosing the codes: pick one"));
    }
    if args.method.method == Method::Awq && !is_gguf_input(&args.input) {
        return Err(msg("--method awq needs a GGUF model as input (it runs the model for calibration)"));
    }
    if args.method.method == Method::Hqq {
        super::hqq::check(&args.method, &[scheme])?;
        if args.imatrix.is_some() {
            return Err(msg("--imatrix and --method hqq are two ways of choosing the codes: pick one"));
        }
        if !is_gguf_input(&args.input) {
            return Err(msg("--method hqq takes a GGUF model as input (convert a checkpoint to GGUF first)"));
        }
    }
    if args.shard_size.is_some() && (out == OutKind::Gguf || is_gguf_input(&args.input)) {
        return Err(msg("--shard-size applies to a safetensors checkpoint written as .safetensors"));
    }
    let (before, after, notes) = if is_gguf_input(&args.input) {
        from_gguf(args, &target, recipe.as_ref(), out)?
    } else {
        if args.imatrix.is_some() {
            return Err(msg("--imatrix applies to a GGUF input written as GGUF only"));
        }
        match out {
            OutKind::Gguf => {
                if recipe.is_some() {
                    return Err(msg(
                        "--recipe with a Hugging Face checkpoint written as GGUF: convert it first (-f f16 or f32), then apply the recipe to the GGUF",
                    ));
                }
                hf::from_hf(args, &target)?
            }
            OutKind::Safetensors => super::quantize_safetensors::from_safetensors(args, &target, recipe.as_ref())?,
        }
    };
    let (name, notes) = match &recipe {
        Some(r) => (r.name(), std::iter::once(r.describe()).chain(notes).collect()),
        None => (target.name(), notes),
    };
    Ok(summary(args, &name, &before, &after, &notes, start.elapsed().as_secs_f64()))
}

fn from_gguf(
    args: &QuantizeArgs,
    target: &Target,
    recipe: Option<&LoadedRecipe>,
    out: OutKind,
) -> Result<(Totals, Totals, Vec<String>), CliError> {
    let map = map_file(&args.input)?;
    let policy = args.policy(target, recipe);
    if let Some(r) = recipe {
        let f = GgufFile::parse(&map, map.len() as u64)
            .map_err(|source| CliError::Gguf { path: args.input.clone(), source })?;
        r.check_tensors(|name| f.tensors.iter().any(|t| t.name == name && policy.selects(&export::tensor_facts(t))))?;
    }
    let output = OutputFile::create(&args.output, std::slice::from_ref(&args.input))?;
    let mut w = std::io::BufWriter::new(output.file());
    let mut method_notes = Vec::new();
    let use_gptq = args.method.method == Method::Gptq || recipe.is_some_and(|r| r.uses(Method::Gptq));
    let mut gptq = match use_gptq {
        false => None,
        true => {
            let mut schemes = super::gptq::planned_schemes(&map, &target.scheme, &policy)?;
            if let Some(r) = recipe {
                // Only the recipe's GPTQ entries are quantized while GPTQ calibrates; the tensors it
                // gives another method stay as they are in the calibration model.
                schemes.retain(|name, _| r.recipe.method_for(name) == Method::Gptq);
            }
            let (model, tokenizer, _) = super::load::load_model(&args.input)?;
            let (m, line) = super::gptq::calibrate(&model, &tokenizer, &args.method, &schemes)?;
            method_notes.push(line);
            Some(m)
        }
    };
    let mut awq = match args.method.method {
        Method::Awq => {
            let schemes = super::gptq::planned_schemes(&map, &target.scheme, &policy)?;
            let (model, tokenizer, _) = super::load::load_model(&args.input)?;
            let (m, line) = super::awq::calibrate(&model, &tokenizer, &args.method, &schemes)?;
            method_notes.push(line);
            Some(m)
        }
        _ => None,
    };
    // AWQ's scaled norms replace the input's (see cli/awq.rs).
    let scaled_input = awq.as_ref().map(|m| super::awq::with_norms(&map, m)).transpose()?;
    let source: &[u8] = scaled_input.as_deref().unwrap_or(&map);
    let imatrix = read_imatrix(args, out)?;
    let mut weighted = imatrix.as_ref().map(|imatrix| ImportanceWeighted { imatrix, notes: Vec::new() });
    let mut per_recipe = recipe.map(|r| RecipeMethods {
        recipe: &r.recipe,
        imatrix: weighted.take(),
        gptq: gptq.take(),
        hqq: Default::default(),
    });
    let mut hqq = (args.method.method == Method::Hqq).then(super::hqq::HqqMethod::default);
    let mut rtn = args.rtn()?;
    let method: &mut dyn TensorMethod =
        match (per_recipe.as_mut(), gptq.as_mut(), awq.as_mut(), weighted.as_mut(), hqq.as_mut()) {
            (Some(r), ..) => r,
            (None, Some(m), ..) => m,
            (None, None, Some(a), ..) => a,
            (None, None, None, Some(w), _) => w,
            (None, None, None, None, Some(h)) => h,
            (None, None, None, None, None) => &mut rtn,
        };
    // Each tensor's input bytes, to count progress and drop its mapped pages once it is done
    // (they would otherwise stay resident: the whole model, by the end).
    let ranges = tensor_ranges(&map);
    let progress = Progress::new(ranges.values().map(|r| r.len() as u64).sum());
    let summary = export::quantize_gguf_with(
        source,
        &target.scheme,
        out,
        &policy,
        args.saturation(),
        &mut w,
        &mut |_, _, name| {
            if let Some(r) = ranges.get(name) {
                st::release_pages(&map, r.clone());
                progress.done(r.len() as u64, name);
            }
            true
        },
        method,
    )
    .map_err(|e| match e {
        ExportError::Gguf(source) => CliError::Gguf { path: args.input.clone(), source },
        ExportError::SplitGguf => msg(format!(
            "'{}' is one shard of a split GGUF model; merge it first (llama-gguf-split --merge)",
            args.input.display()
        )),
        ExportError::Write(s) => CliError::Output(s),
        e => msg(e.to_string()),
    })?;
    w.into_inner().map_err(|e| CliError::Output(format!("{}: {}", args.output.display(), e.error())))?;
    output.commit()?;
    progress.clear();
    if let Some(r) = per_recipe {
        (weighted, gptq) = (r.imatrix, r.gptq);
    }
    let mut notes = method_notes;
    notes.extend(weighted.into_iter().flat_map(|w| w.notes));
    if let Some(m) = &gptq {
        notes.push(format!("GPTQ quantized {} tensors; {} rounded to nearest", m.gptq_tensors, m.rtn_tensors));
    }
    if let Some(m) = &awq {
        notes.push(format!("AWQ quantized {} tensors; {} rounded to nearest", m.awq_tensors, m.rtn_tensors));
    }
    notes.extend(hqq.map(|h| h.note()));
    notes.extend(summary.notes);
    notes.extend(summary.saturated.note());
    Ok((summary.before, summary.after, notes))
}

/// Where each tensor's bytes lie in the GGUF file `map` (empty if it does not parse: the
/// export then reports why).
fn tensor_ranges(map: &[u8]) -> HashMap<String, Range<usize>> {
    let Ok(f) = GgufFile::parse(map, map.len() as u64) else { return HashMap::new() };
    let base = map.as_ptr() as usize;
    f.tensors
        .iter()
        .filter_map(|t| {
            let data = f.tensor_data(map, t).ok()?;
            let start = data.as_ptr() as usize - base;
            Some((t.name.clone(), start..start + data.len()))
        })
        .collect()
}

/// What the policy needs to know about a safetensors tensor.
pub(super) fn st_facts(t: &st::CheckpointTensor) -> TensorFacts<'_> {
    let row_len = t.shape.last().copied().unwrap_or(1) as u64;
    let float = matches!(t.dtype, safetensors::Dtype::F32 | safetensors::Dtype::F16 | safetensors::Dtype::BF16);
    // The stored ggml type, for a plain-float dtype (so an f16 target copies f16 tensors).
    let stored =
        [GgmlType::F32, GgmlType::F16, GgmlType::BF16].into_iter().find(|&ty| st::float_dtype(ty) == Some(t.dtype));
    TensorFacts { name: &t.name, n_dims: t.shape.len(), row_len, decodable: float, plain_float: float, stored }
}

/// The `--imatrix` file, if given (only for a GGUF output: the importance steers ggml's searches).
fn read_imatrix(args: &QuantizeArgs, out: OutKind) -> Result<Option<Imatrix>, CliError> {
    let Some(path) = &args.imatrix else { return Ok(None) };
    if out != OutKind::Gguf {
        return Err(msg("--imatrix applies to the ggml (GGUF) formats only"));
    }
    let bytes = std::fs::read(path).map_err(|e| msg(format!("cannot read '{}': {e}", path.display())))?;
    Imatrix::from_bytes(&bytes).map(Some).map_err(|e| msg(format!("{}: {e}", path.display())))
}
