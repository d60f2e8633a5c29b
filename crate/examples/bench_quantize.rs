//! Single-threaded quantize throughput of every GGUF block type `formats::quantize_row` can
//! write, in MB/s of f32 input (best of several runs over ~16M Gaussian floats).
//!
//!     cargo run --release --example bench_quantize --no-default-features [-- --n 16777216 --runs 3 --tsv]
//!
//! Time is the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, Linux), not wall time: the machine
//! this was written on is shared, and CPU time is what stays comparable under contention (the C
//! bench measures the same way). On other systems it falls back to wall time.
//!
//! `--tsv` prints `TYPE<TAB>MB/s` lines (for scripts/bench-quantize.sh, which sets them next to
//! llama.cpp's C reference); otherwise a markdown table. The data generator (SplitMix64, seed
//! 42, Box-Muller) is the one in scripts/dev/kquant_goldens.c's `bench` mode.

use std::time::Instant;

/// Seconds of CPU time used by this thread (wall time where that clock is unavailable).
fn thread_seconds(start: Instant) -> f64 {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: clock_gettime writes one timespec (two 64-bit fields on 64-bit Linux).
        if cfg!(target_pointer_width = "64") && unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.sec as f64 + 1e-9 * ts.nsec as f64;
        }
    }
    start.elapsed().as_secs_f64()
}

use quantlab::formats::quantize_row;
use quantlab::gguf::GgmlType;

const TYPES: [GgmlType; 10] = [
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }
    fn normal(&mut self) -> f64 {
        let u1 = self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

fn main() {
    let mut n: usize = 16 << 20;
    let mut runs = 3;
    let mut tsv = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--n" => n = args.next().and_then(|v| v.parse().ok()).expect("--n <floats>"),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs <count>"),
            "--tsv" => tsv = true,
            _ => panic!("unknown argument {a} (expected --n N, --runs R, --tsv)"),
        }
    }
    n -= n % 256;
    let mut rng = SplitMix64(42);
    let x: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();

    if !tsv {
        println!("{n} Gaussian f32 values, best of {runs} runs, single thread (thread CPU time)\n");
        println!("| type | MB/s (f32 input) |");
        println!("|------|-----------------:|");
    }
    for ty in TYPES {
        let mut out = vec![0u8; ty.bytes_for(n as u64).unwrap() as usize];
        let mut best = f64::INFINITY;
        let epoch = Instant::now();
        for _ in 0..runs {
            let t0 = thread_seconds(epoch);
            quantize_row(ty, &x, &mut out).unwrap();
            best = best.min(thread_seconds(epoch) - t0);
        }
        std::hint::black_box(&out);
        let mbps = n as f64 * 4.0 / 1e6 / best;
        if tsv {
            println!("{ty}\t{mbps:.1}");
        } else {
            println!("| {ty} | {mbps:.1} |");
        }
    }
}
