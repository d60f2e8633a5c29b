//! The threads of this build of the wasm core. The threaded build (scripts/build-wasm.sh,
//! `+atomics`, shared memory) exports wasm-bindgen-rayon's `initThreadPool(n)`, which the lab
//! worker awaits before anything else: it starts `n` web workers that run `model::pool`'s tasks.
//! The single-thread build exports no `initThreadPool` and reports one thread.

use serde::Serialize;
use tsify_next::Tsify;
use wasm_bindgen::prelude::*;

use super::{to_js, Js, LabJsError};

// `initThreadPool` is wasm-bindgen-rayon's own `#[wasm_bindgen]` export; naming it here links the
// crate into the module (no Rust code calls it).
#[cfg(target_feature = "atomics")]
#[allow(unused_imports)]
pub use wasm_bindgen_rayon::init_thread_pool;

/// The compute threads of this module and what each has done (a diagnostic: tests check that
/// more than one thread computed).
#[derive(Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null, hashmap_as_object)]
pub struct ThreadStats {
    /// Threads the products split over (1 in the single-thread build).
    pub threads: u32,
    /// Tasks each pool thread has run since the module started (empty without a pool).
    pub tasks_per_thread: Vec<u64>,
}

/// This module's threads and the tasks each has run.
#[wasm_bindgen(js_name = threadStats)]
pub fn thread_stats() -> Result<Js<ThreadStats>, LabJsError> {
    use crate::model::pool;
    let threads = u32::try_from(pool::threads()).unwrap_or(u32::MAX);
    to_js(&ThreadStats { threads, tasks_per_thread: pool::tasks_per_thread() })
}
