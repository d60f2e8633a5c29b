//! `quantlab quantize IN -f FORMAT -o OUT [--all-tensors]`: re-quantize a checkpoint.
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
//! See [`POLICY`] for which tensors are quantized.

mod hf;

use super::display::{bytes, Table};
use super::output::{refuse_input_as_output, OutputFile};
use super::{map_file, CliError};
use crate::formats::{GgmlType, QuantScheme, Saturation, TensorShape};
use crate::io::export::{
    self, entry_label, quantize_named, ExportError, ExportKind, ImportanceWeighted, RoundToNearest, SaturationLog,
    TensorMethod, Totals,
};
use crate::io::imatrix::Imatrix;
use crate::io::safetensors::{self as st, Checkpoint, Entry};
use crate::methods::gptq::ColumnOrder;
use crate::policy::{Action, Target, TensorFacts, TensorPolicy, TypeMix};
use std::fmt::Write as _;
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
    #[arg(short = 'f', long = "format")]
    pub format: String,
    /// Output file: .gguf for the ggml types, .safetensors for the others (f16/bf16/f32: either).
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
    /// How codes are chosen: rtn (round to nearest) or gptq (GGUF input only; INT sym/asym
    /// per-channel or group formats and q4_0 q4_1 q5_0 q5_1 q8_0; other tensors and formats are
    /// rounded to nearest). GPTQ's Hessians come from the float model's activations on the
    /// calibration text (not layer-sequential); the token embedding is rounded to nearest.
    #[arg(long, value_enum, default_value_t = Method::Rtn)]
    pub method: Method,
    /// Calibration text for --method gptq (UTF-8 file; default: Moby-Dick chapters 4+, never the
    /// eval chapters 1-3).
    #[arg(long, value_name = "FILE")]
    pub calib: Option<PathBuf>,
    /// Calibration tokens for --method gptq (whole chunks of up to 512 tokens). Use more than a
    /// layer's inputs (1536 for the default model's ffn_down): with fewer, GPTQ fits the
    /// calibration rows rather than the layer.
    #[arg(long, value_name = "N", default_value_t = crate::calib::DEFAULT_TOKENS)]
    pub calib_tokens: usize,
    /// GPTQ only: quantize columns in descending Hessian-diagonal order (desc_act), with static
    /// groups.
    #[arg(long)]
    pub act_order: bool,
    /// llama.cpp importance matrix (`quantlab imatrix` or `llama-imatrix` output, GGUF or legacy
    /// .dat): each tensor quantized to a ggml type uses its entry (looked up by tensor name) as
    /// llama-quantize does; a tensor without one is rounded to nearest, with a note. GGUF input
    /// and output only.
    #[arg(long, value_name = "FILE")]
    pub imatrix: Option<PathBuf>,
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
            method: Method::Rtn,
            calib: None,
            calib_tokens: crate::calib::DEFAULT_TOKENS,
            act_order: false,
            imatrix: None,
        }
    }
}

/// How `quantize` chooses codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    Rtn,
    Gptq,
}

/// The output container, from the output's extension.
type OutKind = ExportKind;

pub use crate::policy::name_is_quantizable;

/// The shared policy's decision for one tensor (see [`crate::policy`]).
fn decide(c: &TensorFacts, scheme: &QuantScheme, all_tensors: bool) -> (Action, Option<String>) {
    let d = TensorPolicy { all_tensors, mix: TypeMix::Pure }.decide(c, scheme);
    (d.action, d.note)
}

impl QuantizeArgs {
    fn target(&self) -> Result<Target, CliError> {
        let target = Target::parse(&self.format).map_err(|e| msg(e.to_string()))?;
        Ok(if self.pure { target.pure() } else { target })
    }

    fn saturation(&self) -> Saturation {
        if self.allow_saturation {
            Saturation::Allow
        } else {
            Saturation::Refuse
        }
    }
}

fn msg(s: impl Into<String>) -> CliError {
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

fn is_gguf_input(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return true;
    }
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok()
        && &magic == b"GGUF"
}

/// The report printed after a successful run.
fn summary(
    args: &QuantizeArgs,
    target: &Target,
    before: &Totals,
    after: &Totals,
    notes: &[String],
    secs: f64,
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "quantized {} -> {} ({})", args.input.display(), args.output.display(), target.name());
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
    let target = args.target()?;
    let scheme = target.scheme;
    let out = out_kind(&args.output)?;
    check_container(&scheme, out, &args.output)?;
    if !args.input.exists() {
        return Err(msg(format!("cannot open '{}': no such file or directory", args.input.display())));
    }
    // Checked again with every shard once a checkpoint is open; this catches the plain case
    // before any work.
    refuse_input_as_output(&args.output, std::slice::from_ref(&args.input))?;
    let start = Instant::now();
    if args.method == Method::Gptq && args.imatrix.is_some() {
        return Err(msg("--imatrix and --method gptq are two ways of choosing the codes: pick one"));
    }
    if args.method == Method::Gptq && !is_gguf_input(&args.input) {
        return Err(msg("--method gptq needs a GGUF model as input (it runs the model for calibration)"));
    }
    let (before, after, notes) = if is_gguf_input(&args.input) {
        from_gguf(args, &target, out)?
    } else {
        if args.imatrix.is_some() {
            return Err(msg("--imatrix applies to a GGUF input written as GGUF only"));
        }
        match out {
            OutKind::Gguf => hf::from_hf(args, &target)?,
            OutKind::Safetensors => from_safetensors(args, &target)?,
        }
    };
    Ok(summary(args, &target, &before, &after, &notes, start.elapsed().as_secs_f64()))
}

fn from_gguf(args: &QuantizeArgs, target: &Target, out: OutKind) -> Result<(Totals, Totals, Vec<String>), CliError> {
    let map = map_file(&args.input)?;
    let output = OutputFile::create(&args.output, std::slice::from_ref(&args.input))?;
    let mut w = std::io::BufWriter::new(output.file());
    let policy = TensorPolicy { all_tensors: args.all_tensors, mix: target.mix };
    let mut method_notes = Vec::new();
    let mut gptq = match args.method {
        Method::Rtn => None,
        Method::Gptq => {
            let order = if args.act_order { ColumnOrder::ActOrder } else { ColumnOrder::Natural };
            let (m, line) = super::gptq::calibrate(&args.input, args.calib.as_deref(), args.calib_tokens, order)?;
            method_notes.push(line);
            Some(m)
        }
    };
    let imatrix = read_imatrix(args, out)?;
    let mut weighted = imatrix.as_ref().map(|imatrix| ImportanceWeighted { imatrix, notes: Vec::new() });
    let method: &mut dyn TensorMethod = match (gptq.as_mut(), weighted.as_mut()) {
        (Some(m), _) => m,
        (None, Some(w)) => w,
        (None, None) => &mut RoundToNearest,
    };
    let summary = export::quantize_gguf_with(
        &map,
        &target.scheme,
        out,
        &policy,
        args.saturation(),
        &mut w,
        &mut |_, _, _| true,
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
    let mut notes = method_notes;
    notes.extend(weighted.into_iter().flat_map(|w| w.notes));
    if let Some(m) = &gptq {
        notes.push(format!("GPTQ quantized {} tensors; {} rounded to nearest", m.gptq_tensors, m.rtn_tensors));
    }
    notes.extend(summary.notes);
    notes.extend(summary.saturated.note());
    Ok((summary.before, summary.after, notes))
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

fn from_safetensors(args: &QuantizeArgs, target: &Target) -> Result<(Totals, Totals, Vec<String>), CliError> {
    let scheme = &target.scheme;
    let ck = Checkpoint::open(&args.input).map_err(|e| msg(e.to_string()))?;
    // Every file the checkpoint is read from: the path given, the index, each shard.
    let mut inputs = vec![args.input.clone(), args.input.join("model.safetensors.index.json")];
    inputs.extend(ck.shards.iter().cloned());
    let output = OutputFile::create(&args.output, &inputs)?;
    let mut notes = Vec::new();
    if let TypeMix::LlamaCpp(ft) = target.mix {
        if ft.default_type().block_size() > 1 {
            notes.push(format!(
                "llama.cpp's per-tensor rules of {} key on GGUF tensor names: this safetensors checkpoint gets {} \
                 on every quantized tensor (as --pure)",
                ft.name(),
                scheme.name()
            ));
        }
    }
    let mut before = Totals::default();
    let mut after = Totals::default();
    let mut log = SaturationLog::new(args.saturation());
    let mut entries: Vec<Entry> = Vec::with_capacity(ck.tensors.len());
    for t in &ck.tensors {
        let n = t.n_elements() as u64;
        let row_len = t.shape.last().copied().unwrap_or(1) as u64;
        let float = matches!(t.dtype, safetensors::Dtype::F32 | safetensors::Dtype::F16 | safetensors::Dtype::BF16);
        // The stored ggml type, for a plain-float dtype (so an f16 target copies f16 tensors).
        let stored =
            [GgmlType::F32, GgmlType::F16, GgmlType::BF16].into_iter().find(|&ty| st::float_dtype(ty) == Some(t.dtype));
        let c =
            TensorFacts { name: &t.name, n_dims: t.shape.len(), row_len, decodable: float, plain_float: float, stored };
        let (action, note) = decide(&c, scheme, args.all_tensors);
        notes.extend(note);
        before.add(t.dtype.to_string(), n, t.n_bytes() as u64);
        let produced = match &action {
            Action::Quantize(s) => {
                let values = ck.tensor_f32(t).map_err(|e| msg(e.to_string()))?;
                let shape = TensorShape::new((n / row_len.max(1)) as usize, row_len as usize);
                let q = quantize_named(&t.name, s, &values, shape, &mut log).map_err(|e| msg(e.to_string()))?;
                st::quantized_entries(&t.name, &q, &t.shape).map_err(|e| msg(e.to_string()))?
            }
            // Plain floats are never converted (the row-does-not-fit case keeps them as they are).
            Action::Copy | Action::ToF16 => vec![(t.name.clone(), t.dtype, t.shape.clone(), ck.raw(t).to_vec())],
        };
        after.add(entry_label(&action, &produced), n, produced.iter().map(|e| e.3.len() as u64).sum());
        entries.extend(produced);
    }
    notes.extend(log.note());
    let mut meta = ck.metadata.clone();
    meta.extend(st::quantlab_metadata(&scheme.name()));
    st::write_safetensors(output.tmp_path(), &entries, meta).map_err(|e| msg(e.to_string()))?;
    output.commit()?;
    Ok((before, after, notes))
}
