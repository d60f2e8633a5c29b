//! `quantize` of a safetensors checkpoint to safetensors: every tensor's entries planned first
//! (the header goes out before any data), then each tensor decoded a chunk of rows at a time,
//! quantized on the pool and written, into one file or into restartable shards
//! ([`super::shards`]).

use super::output::OutputFile;
use super::parallel::ParallelRtn;
use super::progress::Progress;
use super::quantize::{decide, msg, st_facts, QuantizeArgs};
use super::recipe_run::LoadedRecipe;
use super::shards;
use super::CliError;
use crate::formats::TensorShape;
use crate::io::export::{quantize_rows_named_with, ExportError, SaturationLog, Totals};
use crate::io::safetensors::{self as st, Checkpoint, CheckpointTensor};
use crate::io::safetensors_stream::{planned_entries, Slot, StreamWriter};
use crate::policy::{Action, Target, TypeMix};
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub(super) fn from_safetensors(
    args: &QuantizeArgs,
    target: &Target,
    recipe: Option<&LoadedRecipe>,
) -> Result<(Totals, Totals, Vec<String>), CliError> {
    let scheme = &target.scheme;
    let policy = args.policy(target, recipe);
    let ck = Checkpoint::open(&args.input).map_err(|e| msg(e.to_string()))?;
    if let Some(r) = recipe {
        r.check_tensors(|name| ck.tensors.iter().any(|t| t.name == name && policy.selects(&st_facts(t))))?;
    }
    // Every file the checkpoint is read from: the path given, the index, each shard.
    let mut inputs = vec![args.input.clone(), args.input.join("model.safetensors.index.json")];
    inputs.extend(ck.shards.iter().cloned());
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
    // Every tensor's fate first: the header (names, dtypes, shapes) goes out before any data.
    let mut plan = Vec::with_capacity(ck.tensors.len());
    for t in &ck.tensors {
        let n = t.n_elements() as u64;
        let (action, note) = decide(&st_facts(t), scheme, &policy);
        notes.extend(note);
        before.add(t.dtype.to_string(), n, t.n_bytes() as u64);
        let slots = match &action {
            Action::Quantize(s) => planned_entries(&t.name, s, &t.shape).map_err(|e| msg(e.to_string()))?,
            // Plain floats are never converted (the row-does-not-fit case keeps them as they are).
            Action::Copy | Action::ToF16 => vec![Slot { name: t.name.clone(), dtype: t.dtype, shape: t.shape.clone() }],
        };
        plan.push(Planned { t, action, slots });
    }
    let mut meta = ck.metadata.clone();
    meta.extend(st::quantlab_metadata(&scheme.name()));
    let mut run = ShardRun {
        ck: &ck,
        after: Totals::default(),
        log: SaturationLog::new(args.saturation()),
        rtn: args.rtn()?,
        progress: Progress::new(ck.tensors.iter().map(|t| t.n_bytes() as u64).sum()),
    };
    let Some(limit) = &args.shard_size else {
        run.write(&args.output, &plan, meta, &inputs)?;
        notes.extend(run.log.note());
        run.progress.clear();
        return Ok((before, run.after, notes));
    };
    let limit = shards::parse_size(limit).map_err(msg)?;
    let sizes: Vec<u64> = plan.iter().map(Planned::out_bytes).collect();
    let groups = shards::plan(&sizes, limit);
    let (mut weight_map, mut total_size, mut kept) = (Vec::new(), 0u64, 0);
    for (k, group) in groups.iter().enumerate() {
        let path = shards::shard_path(&args.output, k, groups.len());
        let part = &plan[group.clone()];
        let mut manifest = shards::Manifest::default();
        for item in [env!("CARGO_PKG_VERSION").to_string(), scheme.name(), format!("{:?}", args.saturation())] {
            manifest.add(&item);
        }
        manifest.add(&format!("all_tensors={} shard {k} of {}", args.all_tensors, groups.len()));
        if let Some(r) = recipe {
            manifest.add(&r.recipe.to_json());
        }
        for p in part {
            manifest.add(&format!("{} {:?} {:?} {:?}", p.t.name, p.t.dtype, p.t.shape, p.slots));
        }
        ck.shards.iter().for_each(|s| manifest.add_file(s));
        let mut meta = meta.clone();
        meta.insert(shards::MANIFEST_KEY.to_string(), manifest.hex());
        if shards::is_complete(&path, &manifest.hex()) {
            kept += 1;
            for p in part {
                run.after.add(p.label(), p.t.n_elements() as u64, p.out_bytes());
                run.progress.done(p.t.n_bytes() as u64, &p.t.name);
            }
        } else {
            run.write(&path, part, meta, &inputs)?;
        }
        let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        weight_map.extend(part.iter().flat_map(|p| p.slots.iter().map(|s| (s.name.clone(), file.clone()))));
        total_size += part.iter().map(Planned::out_bytes).sum::<u64>();
    }
    shards::write_index(&args.output, &weight_map, total_size, &inputs)?;
    notes.extend(run.log.note());
    if kept > 0 {
        notes.push(format!(
            "{kept} of {} shards were already complete (same input and options, by their manifest) and were kept",
            groups.len()
        ));
    }
    run.progress.clear();
    Ok((before, run.after, notes))
}

/// A tensor of the input, what the policy decided for it, and the entries it becomes.
struct Planned<'a> {
    t: &'a CheckpointTensor,
    action: Action,
    slots: Vec<Slot>,
}

impl Planned<'_> {
    /// Its output bytes as planned (exact, but for the bound on a double-quantized
    /// bitsandbytes quant-state).
    fn out_bytes(&self) -> u64 {
        self.slots.iter().map(|s| Slot::byte_len(s.dtype, &s.shape).unwrap_or(0) as u64).sum()
    }

    /// Its type in the summary.
    fn label(&self) -> String {
        match &self.action {
            Action::Quantize(s) => s.name(),
            _ => self.t.dtype.to_string(),
        }
    }
}

/// What the safetensors output's files share while they are written.
struct ShardRun<'a> {
    ck: &'a Checkpoint,
    after: Totals,
    log: SaturationLog,
    rtn: ParallelRtn,
    progress: Progress,
}

impl ShardRun<'_> {
    /// Writes the tensors `plan` to the safetensors file `path` (through a temporary renamed
    /// when complete), one tensor at a time.
    fn write(
        &mut self,
        path: &Path,
        plan: &[Planned],
        meta: HashMap<String, String>,
        inputs: &[PathBuf],
    ) -> Result<(), CliError> {
        let ck = self.ck;
        let output = OutputFile::create(path, inputs)?;
        let write_err = |e: st::SafetensorsError| CliError::Output(format!("{}: {e}", path.display()));
        let mut file = std::io::BufWriter::new(output.file());
        let slots = plan.iter().flat_map(|p| p.slots.iter().cloned()).collect();
        let mut w = StreamWriter::begin(&mut file, slots, meta).map_err(write_err)?;
        for p in plan {
            let (t, action) = (p.t, &p.action);
            let bytes = match action {
                Action::Quantize(s) => {
                    let cols = t.shape.last().copied().unwrap_or(1).max(1);
                    let shape = TensorShape::new(t.n_elements() / cols, cols);
                    // Each chunk of rows is read once: its mapped pages go as soon as it is decoded.
                    let decode = |rows: Range<usize>, out: &mut [f32]| {
                        ck.rows_f32(t, rows.clone(), out).map_err(|e| ExportError::Tensor(e.to_string()))?;
                        ck.release(t, Some(rows));
                        Ok(())
                    };
                    let q = quantize_rows_named_with(&t.name, s, shape, &decode, &mut self.log, &mut self.rtn)
                        .map_err(|e| msg(e.to_string()))?;
                    let entries = st::quantized_entries(&t.name, &q, &t.shape).map_err(|e| msg(e.to_string()))?;
                    drop(q);
                    for e in &entries {
                        w.write(&e.0, e.1, &e.2, &e.3).map_err(write_err)?;
                    }
                    entries.iter().map(|e| e.3.len() as u64).sum()
                }
                Action::Copy | Action::ToF16 => {
                    w.write(&t.name, t.dtype, &t.shape, ck.raw(t)).map_err(write_err)?;
                    t.n_bytes() as u64
                }
            };
            ck.release(t, None);
            self.after.add(p.label(), t.n_elements() as u64, bytes);
            self.progress.done(t.n_bytes() as u64, &t.name);
        }
        w.finish().map_err(write_err)?;
        file.into_inner().map_err(|e| CliError::Output(format!("{}: {}", path.display(), e.error())))?;
        output.commit()
    }
}
