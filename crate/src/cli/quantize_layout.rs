//! `quantlab quantize MODEL.gguf -f int4-sym-g64 --layout gptq|awq [--method rtn|gptq|awq|hqq]
//! -o DIR`: the model's linear layers quantized by the method and written as a Hugging Face
//! checkpoint directory transformers loads pre-quantized (`DIR/model.safetensors` in the
//! AutoGPTQ or AutoAWQ layout, `DIR/config.json` with its `quantization_config`; see
//! [`crate::model::hf_layout`]).
//!
//! The calibration methods quantize exactly the layers the layout stores (the seven linears of
//! every block), so the embedding stays float during calibration, as it does in the file. Each
//! file is written through [`OutputFile`] (a temporary renamed into place, never over an input).
//! The progress bar counts input bytes, as for the other outputs.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::gptq::Method;
use super::output::{refuse_input_as_output, OutputFile};
use super::progress::Progress;
use super::quantize::{is_gguf_input, msg, QuantizeArgs};
use super::{map_file, CliError};
use crate::formats::QuantScheme;
use crate::gguf::GgufFile;
use crate::io::export::TensorMethod;
use crate::io::gptq_layout::{self, DescAct, Layout};
use crate::model::hf_layout::{export_hf_layout, layout_schemes, LayoutOptions};

/// `--layout`: which loader's safetensors layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// AutoGPTQ / optimum (`quant_method: gptq`, checkpoint_format gptq): INT2/4/8 groups.
    Gptq,
    /// AutoAWQ GEMM (`quant_method: awq`, version gemm): INT4 groups.
    Awq,
}

impl LayoutArg {
    pub fn layout(self) -> Layout {
        match self {
            LayoutArg::Gptq => Layout::Gptq,
            LayoutArg::Awq => Layout::Awq,
        }
    }
}

/// The two files of the output directory.
const FILES: [&str; 2] = ["model.safetensors", "config.json"];

/// Refuses options that do not apply to a layout export, and an output that is not a directory
/// or would replace the input.
fn check(args: &QuantizeArgs, layout: Layout) -> Result<QuantScheme, CliError> {
    let given = [
        ("--recipe", args.recipe.is_some()),
        ("--imatrix", args.imatrix.is_some()),
        ("--all-tensors", args.all_tensors),
        ("--pure", args.pure),
        ("--shard-size", args.shard_size.is_some()),
        ("--allow-saturation", args.allow_saturation),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
        return Err(msg(format!(
            "{flag} does not apply with --layout: the layout quantizes every block's linear layers to one format, and \
             its f16 scales cannot hold saturated groups"
        )));
    }
    let scheme = QuantScheme::parse(&args.format).map_err(|e| msg(format!("--layout {layout}: {e}")))?;
    gptq_layout::check_scheme(&scheme, layout).map_err(|e| msg(e.to_string()))?;
    if !args.input.is_file() || !is_gguf_input(&args.input) {
        return Err(msg(format!(
            "--layout needs a GGUF model file as input; '{}' is not one (convert a Hugging Face checkpoint first: \
             quantlab quantize DIR -f f16 -o model.gguf)",
            args.input.display()
        )));
    }
    if args.output.is_file() {
        return Err(msg(format!(
            "--layout writes a directory (model.safetensors, config.json); '{}' is a file",
            args.output.display()
        )));
    }
    for name in FILES {
        refuse_input_as_output(&args.output.join(name), std::slice::from_ref(&args.input))?;
    }
    Ok(scheme)
}

/// Writes `bytes` as `dir/name` through a temporary file.
fn write_file(dir: &Path, name: &str, bytes: &[u8], input: &Path) -> Result<PathBuf, CliError> {
    let path = dir.join(name);
    let out = OutputFile::create(&path, &[input.to_path_buf()])?;
    let mut w = std::io::BufWriter::new(out.file());
    w.write_all(bytes).map_err(|e| CliError::Output(format!("{}: {e}", path.display())))?;
    w.into_inner().map_err(|e| CliError::Output(format!("{}: {}", path.display(), e.error())))?;
    out.commit()?;
    Ok(path)
}

pub fn run(args: &QuantizeArgs, layout: Layout) -> Result<String, CliError> {
    let start = Instant::now();
    let scheme = check(args, layout)?;
    let map = map_file(&args.input)?;
    let fail = |e: &dyn std::fmt::Display| msg(format!("{}: {e}", args.input.display()));
    let schemes = layout_schemes(&map, &scheme).map_err(|e| fail(&e))?;
    let mut notes = Vec::new();
    let mut rtn = args.rtn()?;
    let (mut gptq, mut awq, mut hqq) = (None, None, None);
    let mut scaled: Option<Vec<u8>> = None;
    match args.method.method {
        Method::Rtn => {}
        Method::Gptq => {
            let (model, tokenizer, _) = super::load::load_model(&args.input)?;
            let (m, line) = super::gptq::calibrate(&model, &tokenizer, &args.method, &schemes)?;
            notes.push(line);
            gptq = Some(m);
        }
        Method::Awq => {
            let (model, tokenizer, _) = super::load::load_model(&args.input)?;
            let (m, line) = super::awq::calibrate(&model, &tokenizer, &args.method, &schemes)?;
            notes.push(line);
            // AWQ's scales are folded into the norms, which the checkpoint must carry.
            scaled = Some(super::awq::with_norms(&map, &m)?);
            awq = Some(m);
        }
        Method::Imatrix => return Err(msg(super::gptq::IMATRIX_BY_FILE)),
        Method::Hqq => {
            super::hqq::check(&args.method, &[scheme])?;
            hqq = Some(super::hqq::HqqMethod::default());
        }
    }
    let method: &mut dyn TensorMethod = match (gptq.as_mut(), awq.as_mut(), hqq.as_mut()) {
        (Some(m), ..) => m,
        (None, Some(m), _) => m,
        (None, None, Some(m)) => m,
        (None, None, None) => &mut rtn,
    };
    let desc_act = match (args.method.method, args.method.act_order) {
        (Method::Gptq, true) => DescAct::StaticGroups,
        _ => DescAct::No,
    };
    let opts = LayoutOptions { layout, scheme, desc_act };
    // Progress in input bytes, as the other quantize outputs count it.
    let f = GgufFile::parse(&map, map.len() as u64).map_err(|e| fail(&e))?;
    let sizes: HashMap<&str, u64> = f.tensors.iter().map(|t| (t.name.as_str(), t.n_bytes())).collect();
    let progress = Progress::new(sizes.values().sum());
    let source: &[u8] = scaled.as_deref().unwrap_or(&map);
    let checkpoint = export_hf_layout(source, &opts, method, &mut |_, _, name| {
        progress.done(sizes.get(name).copied().unwrap_or(0), name);
        true
    })
    .map_err(|e| fail(&e))?;
    progress.clear();
    std::fs::create_dir_all(&args.output)
        .map_err(|e| CliError::Output(format!("cannot create '{}': {e}", args.output.display())))?;
    let st = write_file(&args.output, FILES[0], &checkpoint.safetensors, &args.input)?;
    let config = write_file(&args.output, FILES[1], checkpoint.config.as_bytes(), &args.input)?;
    if let Some(m) = &gptq {
        notes.push(format!("GPTQ quantized {} tensors; {} rounded to nearest", m.gptq_tensors, m.rtn_tensors));
    }
    if let Some(m) = &awq {
        notes.push(format!("AWQ quantized {} tensors; {} rounded to nearest", m.awq_tensors, m.rtn_tensors));
    }
    notes.extend(hqq.map(|h| h.note()));
    let mut out = format!(
        "quantized {} -> {} ({} layout, {})\n",
        args.input.display(),
        args.output.display(),
        layout,
        scheme.name()
    );
    for n in notes {
        out += &format!("note: {n}\n");
    }
    out += &format!(
        "{}  {} bytes ({} linear layers quantized, {} tensors kept in float)\n{}  {} bytes\ntime  {:.2} s\n",
        st.display(),
        checkpoint.safetensors.len(),
        checkpoint.quantized,
        checkpoint.kept,
        config.display(),
        checkpoint.config.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(out)
}
