#!/usr/bin/env bash
# GPU weight-matmul benchmark (crate/examples/bench_gpu.rs) on the native adapter (lavapipe on a
# machine without a GPU): per format, GEMV (every strategy the adapter supports) and GEMM time,
# GB/s and GFLOP/s at 1×576×1536, 1×4096×4096 and 512×4096×4096 (64×4096×4096 with --quick, none
# with --gemv-only), then the GEMV 4096×4096 speed-up of every format over f32, per strategy and
# best against best. Prints markdown. With --w8a8 instead (crate/examples/bench_gpu_int8.rs): W8A8
# integer products (dot4I8Packed and the unpacked fallback) against f32 and int8-weight float
# products, GEMV and GEMM, with ratios.
#
#     scripts/bench-gpu.sh [--quick] [--gemv-only] [--formats f32,q4_1,int4-sym-g128]
#     scripts/bench-gpu.sh --w8a8
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -un)}
mkdir -p "$XDG_RUNTIME_DIR"
cd "$ROOT/crate"
example=bench_gpu
if [[ "${1:-}" == "--w8a8" ]]; then
  example=bench_gpu_int8
  shift
fi
nice cargo build -q --release --example "$example"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
nice cargo run -q --release --example "$example" -- "$@"
