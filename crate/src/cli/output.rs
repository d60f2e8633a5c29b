//! Output files that never destroy an input or someone else's file.
//!
//! - The output path is refused when it is the same file as any input (a GGUF file, every shard
//!   of a safetensors checkpoint and its index): files are compared by device and inode, so a
//!   symlink or hard link to an input counts as that input.
//! - The data goes to a fresh temporary file next to the output, created with `O_EXCL`
//!   (`create_new`) under a name no other run uses (`.NAME.quantlab-PID-N.tmp`), so an existing
//!   file, including one called `OUT.partial`, is never opened, truncated or removed.
//! - Only when everything is written is the temporary synced to disk and renamed over the
//!   output. On an error it is removed ([`Drop`]); on SIGINT, SIGTERM or SIGHUP a signal handler
//!   removes it before the process ends by that signal.

use super::CliError;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

/// Tries at most this many temporary names before giving up (each taken name means another
/// file with that name already exists).
const MAX_NAME_TRIES: u32 = 1000;

/// The output being written: a temporary file until [`OutputFile::commit`].
pub struct OutputFile {
    tmp: PathBuf,
    out: PathBuf,
    file: File,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Writing,
    Committed,
}

/// Errors when `out` is the same file as one of `inputs` (after symlinks and hard links).
/// An output that does not exist yet cannot be an input.
pub fn refuse_input_as_output(out: &Path, inputs: &[PathBuf]) -> Result<(), CliError> {
    let Ok(o) = std::fs::metadata(out) else { return Ok(()) };
    for input in inputs {
        if let Ok(i) = std::fs::metadata(input) {
            if (i.dev(), i.ino()) == (o.dev(), o.ino()) {
                return Err(CliError::Message(format!(
                    "the output '{}' is the input file '{}' (the same file on disk): writing it would overwrite \
                     the input; choose another output path",
                    out.display(),
                    input.display()
                )));
            }
        }
    }
    Ok(())
}

impl OutputFile {
    /// Checks `out` against `inputs` ([`refuse_input_as_output`]) and creates the temporary.
    pub fn create(out: &Path, inputs: &[PathBuf]) -> Result<OutputFile, CliError> {
        refuse_input_as_output(out, inputs)?;
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = out.file_name().ok_or_else(|| CliError::Output(format!("'{}' names no file", out.display())))?;
        let pid = std::process::id();
        for n in 0..MAX_NAME_TRIES {
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".quantlab-{pid}-{n}.tmp"));
            let tmp = dir.join(tmp_name);
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => {
                    register_for_signals(&tmp);
                    return Ok(OutputFile { tmp, out: out.to_path_buf(), file, state: State::Writing });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(CliError::Output(format!("cannot create '{}': {e}", tmp.display()))),
            }
        }
        Err(CliError::Output(format!(
            "cannot create a temporary file in '{}': {MAX_NAME_TRIES} names are taken",
            dir.display()
        )))
    }

    /// The temporary file, for writers that take a path (they must write this same file).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// The temporary file's handle, for writers that take a [`std::io::Write`].
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Syncs the temporary to disk and renames it over the output.
    pub fn commit(mut self) -> Result<(), CliError> {
        let failed = |e: std::io::Error| CliError::Output(format!("{}: {e}", self.out.display()));
        self.file.sync_all().map_err(failed)?;
        std::fs::rename(&self.tmp, &self.out).map_err(failed)?;
        self.state = State::Committed;
        unregister_for_signals();
        // The rename itself is durable once the directory is synced; not every file system lets
        // a directory be opened for that, and the data is already safe, so a failure is ignored.
        if let Some(dir) = self.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if self.state == State::Writing {
            unregister_for_signals();
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The temporary the signal handler removes: a NUL-terminated path, or null. Registered paths
/// are leaked, never freed, so the handler can never read freed memory (one path per output).
static TEMP_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
static INSTALL: Once = Once::new();
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn register_for_signals(tmp: &Path) {
    let Ok(c) = CString::new(tmp.as_os_str().as_bytes()) else { return };
    TEMP_PATH.store(c.into_raw(), Ordering::SeqCst);
    INSTALL.call_once(|| {
        for sig in SIGNALS {
            // SAFETY: `on_signal` only calls async-signal-safe functions (unlink, signal, raise).
            unsafe { libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) };
        }
    });
}

fn unregister_for_signals() {
    TEMP_PATH.store(std::ptr::null_mut(), Ordering::SeqCst);
}

/// Removes the registered temporary, then ends the process by the same signal (default action),
/// so the exit status still says what happened.
extern "C" fn on_signal(sig: libc::c_int) {
    let p = TEMP_PATH.swap(std::ptr::null_mut(), Ordering::SeqCst);
    // SAFETY: `p` is null or a leaked, never-freed C string; unlink, signal and raise are
    // async-signal-safe.
    unsafe {
        if !p.is_null() {
            libc::unlink(p);
        }
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}
