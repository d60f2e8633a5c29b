//! [`run`] on wasm32: the same contract as the native pool (`pool.rs`), on whatever threads the
//! build has.
//!
//! - The threaded build (`+atomics`, shared memory; scripts/build-wasm.sh) hands the tasks to
//!   rayon's global pool, whose workers are web workers that wasm-bindgen-rayon's
//!   `initThreadPool` starts before the lab computes anything. The calling thread (the lab's
//!   own worker) blocks until every task has finished, so tasks may borrow from its stack.
//! - The single-thread build runs the tasks in order on the calling thread.
//!
//! Either way task `i` computes the same thing whichever thread runs it, so results do not
//! depend on the build or the thread count. [`tasks_per_thread`] counts the tasks each pool
//! thread ran, so a test can see that more than one thread computed.

#[cfg(target_feature = "atomics")]
mod threaded {
    use rayon::prelude::*;
    use std::sync::Mutex;

    /// Tasks run per pool thread (index = rayon's thread index), grown as threads show up.
    static TASKS: Mutex<Vec<u64>> = Mutex::new(Vec::new());

    /// Runs `task(i)` for every `i` in `0..n_tasks` on the pool; returns when all have finished.
    pub fn run(n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        if n_tasks <= 1 {
            (0..n_tasks).for_each(task);
            return;
        }
        // One task per rayon job (max_len 1), so every task may go to a different worker, as
        // with the native pool.
        (0..n_tasks).into_par_iter().with_max_len(1).for_each(|i| {
            task(i);
            if let Some(t) = rayon::current_thread_index() {
                let mut counts = TASKS.lock().unwrap_or_else(|e| e.into_inner());
                if counts.len() <= t {
                    counts.resize(t + 1, 0);
                }
                counts[t] += 1;
            }
        });
    }

    /// Threads a product may use: the pool's workers.
    pub fn threads() -> usize {
        rayon::current_num_threads()
    }

    /// Tasks each pool thread has run since the module started, one entry per thread.
    pub fn tasks_per_thread() -> Vec<u64> {
        let mut counts = TASKS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        counts.resize(threads().max(counts.len()), 0);
        counts
    }
}

#[cfg(target_feature = "atomics")]
pub use threaded::{run, tasks_per_thread, threads};

/// Runs `task(i)` for every `i` in `0..n_tasks` on the calling thread, in order.
#[cfg(not(target_feature = "atomics"))]
pub fn run(n_tasks: usize, task: &(dyn Fn(usize) + Sync)) {
    (0..n_tasks).for_each(task);
}

/// Threads a product may use: the single-thread build has one.
#[cfg(not(target_feature = "atomics"))]
pub fn threads() -> usize {
    1
}

/// The single-thread build has no pool threads: nothing is counted.
#[cfg(not(target_feature = "atomics"))]
pub fn tasks_per_thread() -> Vec<u64> {
    Vec::new()
}
