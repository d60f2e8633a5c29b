//! GEMV strategies ([`GemvStrategy`]): which one-token product kernel a [`super::GpuMatrix`]
//! runs, which ones an adapter supports, and the default per adapter kind (with the
//! measurements behind it).

use crate::gpu::repack::Layout;
use crate::gpu::{GpuContext, GpuError};

/// Threads per GEMV workgroup (override `WG_SIZE`; a power of two ≤ 256), both strategies.
pub const GEMV_WG_SIZE: u32 = 64;
/// Row sets (of `SG_ROWS` rows) per subgroup-GEMV workgroup: override `GROUP_ROWS` =
/// 8·`SG_ROWS`, one set per subgroup when subgroups have 8 lanes (lavapipe on AVX2); wider
/// subgroups loop over the sets, so any subgroup size gives the same result.
pub(super) const SUBGROUP_ROW_SETS: u32 = 8;

/// How [`super::GpuMatrix::encode`] runs a one-token product (GEMV). GEMM and gather_rows don't change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GemvStrategy {
    /// `gemv` (matmul_common.wgsl, any adapter): `row_threads` threads per output row (override
    /// `ROW_THREADS`, a power of two ≤ [`GEMV_WG_SIZE`]), their partial sums reduced in workgroup
    /// memory with barriers when > 1; 1 = every invocation streams a whole row, no barrier.
    Workgroup { row_threads: u32 },
    /// `gemv_subgroup` (matmul_gemv_subgroup.wgsl, adapters with SUBGROUP only): one subgroup
    /// computes `rows` consecutive rows (override `SG_ROWS`, 1..=64) sharing each activation load;
    /// lanes read consecutive runs of 4 chunks and reduce with `subgroupAdd`.
    Subgroup { rows: u32 },
    /// `gemv_rows` (matmul_common.wgsl, any adapter): every invocation computes `rows`
    /// consecutive rows (override `ROWS_PER_THREAD`, 1..=16) over the whole K, sharing each
    /// activation load among them like `Subgroup` but with no cross-lane sum (no subgroups,
    /// no workgroup memory): for CPU adapters without subgroups (SwiftShader in Chromium).
    Rows { rows: u32 },
}

impl GemvStrategy {
    /// What [`super::GpuMatrix::upload`] uses on `gpu`, from the measurements in BENCHMARKS.md
    /// ("GPU kernels"):
    /// - subgroups on a software adapter (lavapipe) → `Subgroup { rows: 64 }`, the fastest GEMV
    ///   there for the quantized formats at 1×576×1536 and 1×4096×4096 (f32: close to its best,
    ///   32 rows), and a faster GPU decode of the default model than 16 rows (BENCHMARKS.md,
    ///   second run of 2026-12-02). A CPU adapter is bound by instructions per lane, and lavapipe
    ///   executes each storage load lane by lane and value by value: 64 rows sharing each
    ///   activation load (and its Σ v and nibble scaling) leave mostly the weights' own loads,
    ///   and INT's runs of 4 chunks load a block scale once per 32 weights. 16 rows and 1
    ///   thread/row were slower. The cost: a workgroup covers 512 rows, so a matrix of
    ///   fewer rows runs on one core.
    /// - subgroups on a real GPU → `Subgroup { rows: 1 }`, the usual subgroup-per-row GEMV
    ///   (contiguous loads, no barrier, the most workgroups for small matrices). Not measured
    ///   here: this machine has no GPU.
    /// - no subgroups, software adapter (SwiftShader in Chromium: wgpu's WebGPU backend never
    ///   reports subgroups, see gpu/mod.rs) → `Rows { rows: 16 }`: each invocation computes 16
    ///   rows sharing each activation load, the subgroup GEMV's saving without subgroups. In
    ///   headless Chromium (BENCHMARKS.md, "gemv_rows in Chromium") it beat 1 thread/row for
    ///   f32, INT4 and Q4_1 at both shapes. 1 thread/row (no barriers on a CPU) beats 4 and 64
    ///   threads/row. The cost: a workgroup covers 1024
    ///   rows, so a matrix of fewer rows runs on one core.
    /// - no subgroups, real GPU → 64 threads per row: coalesced loads, a tree reduction.
    pub fn default_for(gpu: &GpuContext) -> GemvStrategy {
        match (gpu.adapter.subgroups, gpu.adapter.is_fallback) {
            (true, true) => GemvStrategy::Subgroup { rows: 64 },
            (true, false) => GemvStrategy::Subgroup { rows: 1 },
            (false, true) => GemvStrategy::Rows { rows: 16 },
            (false, false) => GemvStrategy::Workgroup { row_threads: GEMV_WG_SIZE },
        }
    }

    /// Every strategy worth testing or benchmarking on `gpu`: the portable ones (`Workgroup`,
    /// `Rows`) always, the subgroup ones only when the adapter has subgroups.
    pub fn supported(gpu: &GpuContext) -> Vec<GemvStrategy> {
        let mut all: Vec<GemvStrategy> =
            [1, 4, GEMV_WG_SIZE].into_iter().map(|row_threads| GemvStrategy::Workgroup { row_threads }).collect();
        if gpu.adapter.subgroups {
            all.extend([1, 4, 8, 16, 32, 64].map(|rows| GemvStrategy::Subgroup { rows }));
        }
        all.extend([4, 16].map(|rows| GemvStrategy::Rows { rows }));
        all
    }

    /// Short name for tables and test messages, e.g. `"1 thread/row"`, `"subgroup×4 rows"`.
    pub fn label(self) -> String {
        match self {
            GemvStrategy::Workgroup { row_threads: 1 } => "1 thread/row".to_string(),
            GemvStrategy::Workgroup { row_threads } => format!("{row_threads} threads/row"),
            GemvStrategy::Subgroup { rows: 1 } => "subgroup/row".to_string(),
            GemvStrategy::Subgroup { rows } => format!("subgroup/{rows} rows"),
            GemvStrategy::Rows { rows: 1 } => "1 row/thread".to_string(),
            GemvStrategy::Rows { rows } => format!("{rows} rows/thread"),
        }
    }

    pub(super) fn check(self, gpu: &GpuContext, name: &str) -> Result<(), GpuError> {
        let refuse = |message: String| Err(GpuError::Validation { what: name.to_string(), message });
        match self {
            GemvStrategy::Workgroup { row_threads: t } if !t.is_power_of_two() || t > GEMV_WG_SIZE => {
                refuse(format!("GEMV threads per row must be a power of two ≤ {GEMV_WG_SIZE}, got {t}"))
            }
            GemvStrategy::Subgroup { rows } if !(1..=64).contains(&rows) => {
                refuse(format!("subgroup GEMV rows per subgroup must be 1 to 64, got {rows}"))
            }
            GemvStrategy::Rows { rows } if !(1..=16).contains(&rows) => {
                refuse(format!("GEMV rows per thread must be 1 to 16, got {rows}"))
            }
            GemvStrategy::Subgroup { .. } if !gpu.adapter.subgroups => refuse(format!(
                "the subgroup GEMV needs subgroups, which adapter '{}' does not offer",
                gpu.adapter.name
            )),
            _ => Ok(()),
        }
    }

    /// Output rows one GEMV workgroup covers.
    pub(super) fn rows_per_group(self) -> u32 {
        match self {
            GemvStrategy::Workgroup { row_threads } => GEMV_WG_SIZE / row_threads,
            GemvStrategy::Subgroup { rows } => SUBGROUP_ROW_SETS * rows,
            GemvStrategy::Rows { rows } => GEMV_WG_SIZE * rows,
        }
    }
}

/// 8-weight chunks a row-sharing GEMV (`gemv_subgroup`, `gemv_rows`) takes per step when `rows`
/// rows share each activation load: runs of 4 only where the format loads them as one (INT4/INT8, FP8) and
/// enough rows share each activation load; otherwise they measured slower on lavapipe (f32 at
/// 16 rows, INT at 4 rows; BENCHMARKS.md, "GPU kernels").
pub(super) fn chunk_run(layout: Layout, rows: u32) -> f64 {
    if matches!(layout, Layout::Int { bits: 4 | 8, .. } | Layout::Fp8 { .. }) && rows >= 16 {
        4.0
    } else {
        2.0
    }
}
