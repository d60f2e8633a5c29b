//! `quantize`'s progress bar on stderr: input bytes done of the total, rate, ETA, and the
//! tensor being written. Drawn only when stderr is a terminal: a pipe or a log file (the tests,
//! CI) sees exactly what it saw before, the one summary at the end.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// The bar, or nothing when stderr is not a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total` input bytes.
    pub fn new(total: u64) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let style =
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {wide_msg}")
                .expect("a valid template");
        Progress { bar: Some(ProgressBar::new(total).with_style(style)) }
    }

    /// `bytes` more input bytes done, the last of them `name`'s.
    pub fn done(&self, bytes: u64, name: &str) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(name.to_string());
        }
    }

    /// Removes the bar (the summary follows).
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}
