//! The vectorizable quantizers (`quantize_block_fast` of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, used by
//! `formats::quantize_row`) against the plain references (`quantize_block` / `quantize_ref`):
//! same bytes on every golden input in tests/fixtures/ggml and on random blocks of many shapes
//! (Gaussian and uniform at scales from 1e-38 to 1e38, exact half-step ties, signed zeros,
//! constant blocks, `+a`/`-a` ties, subnormals that make the scale's reciprocal overflow, and
//! ranges that overflow f32).

use quantlab::formats::ggml::{q4_0, q4_1, q5_0, q5_1, q8_0};
use quantlab::formats::quantize_row;
use quantlab::formats::GgmlType;

use crate::fixtures::read_ggml_f32 as read_f32;

/// Checks one block with every type; returns a description of the first mismatch.
fn check_block(x: &[f32; 32]) -> Result<(), String> {
    fn same<B: bytemuck::Pod>(ty: &str, x: &[f32; 32], fast: B, reference: B) -> Result<(), String> {
        let (f, r) = (bytemuck::bytes_of(&fast), bytemuck::bytes_of(&reference));
        if f == r {
            Ok(())
        } else {
            Err(format!("{ty}: fast {f:02x?}\n reference {r:02x?}\n input {x:?}"))
        }
    }
    same("Q4_0", x, q4_0::quantize_block_fast(x), q4_0::quantize_block(x))?;
    same("Q4_1", x, q4_1::quantize_block_fast(x), q4_1::quantize_block(x))?;
    same("Q5_0", x, q5_0::quantize_block_fast(x), q5_0::quantize_block(x))?;
    same("Q5_1", x, q5_1::quantize_block_fast(x), q5_1::quantize_block(x))?;
    same("Q8_0", x, q8_0::quantize_block_fast(x), q8_0::quantize_block(x))
}

/// `quantize_row` (the fast path) against `quantize_ref` on a whole row.
fn check_row(x: &[f32]) {
    fn row<B: bytemuck::Pod>(ty: GgmlType, x: &[f32], quantize_ref: fn(&[f32], &mut [B])) {
        let mut want = vec![B::zeroed(); x.len() / 32];
        quantize_ref(x, &mut want);
        let mut got = vec![0u8; std::mem::size_of::<B>() * want.len()];
        quantize_row(ty, x, &mut got).unwrap();
        assert!(got == bytemuck::cast_slice::<B, u8>(&want), "{ty}: quantize_row differs from quantize_ref");
    }
    row(GgmlType::Q4_0, x, q4_0::quantize_ref);
    row(GgmlType::Q4_1, x, q4_1::quantize_ref);
    row(GgmlType::Q5_0, x, q5_0::quantize_ref);
    row(GgmlType::Q5_1, x, q5_1::quantize_ref);
    row(GgmlType::Q8_0, x, q8_0::quantize_ref);
}

#[test]
fn fast_quantizers_match_reference_on_golden_inputs() {
    let names = [
        "quant_Q4_0.in.f32.bin",
        "quant_Q4_1.in.f32.bin",
        "quant_Q5_0.in.f32.bin",
        "quant_Q5_1.in.f32.bin",
        "quant_Q8_0.in.f32.bin",
        "kq.in.f32.bin",
    ];
    let mut blocks = 0;
    for name in names {
        let x = read_f32(name);
        assert!(x.len().is_multiple_of(32) && !x.is_empty(), "{name}");
        for (b, chunk) in x.chunks_exact(32).enumerate() {
            if let Err(e) = check_block(chunk.try_into().unwrap()) {
                panic!("{name} block {b}: {e}");
            }
            blocks += 1;
        }
        check_row(&x);
    }
    assert!(blocks > 100, "{blocks} golden blocks");
}

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn sign(&mut self) -> f32 {
        if self.next_u64() & 1 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    /// One block of a randomly chosen shape (`kind` in 0..12).
    fn block(&mut self, kind: u64) -> [f32; 32] {
        let scales = [1e-38, 1e-30, 1e-12, 1e-5, 1e-2, 1.0, 3.7, 1e3, 6.5e4, 1e12, 1e30, 1e37, 1.5e38];
        let mut x = [0.0f32; 32];
        match kind {
            // Gaussian at a random scale, sometimes with an offset (Q4_1/Q5_1 minimum).
            0 | 1 => {
                let s = self.pick(&scales);
                let off = if kind == 1 { self.normal() * 4.0 * s } else { 0.0 };
                for v in &mut x {
                    *v = (self.normal() * s + off) as f32;
                }
            }
            // Uniform at a random scale.
            2 => {
                let s = self.pick(&scales);
                for v in &mut x {
                    *v = ((self.unit() * 2.0 - 1.0) * s) as f32;
                }
            }
            // Exact half steps on a power-of-two grid with the extreme value that makes the
            // scale a power of two for one of the types: many `x / d + 0.5` ties.
            3 | 4 => {
                let e = self.below(60) as i32 - 30;
                let step = 2f32.powi(e);
                let top = self.pick(&[8, 16, 15, 31, 127, 254]) as i64;
                for v in &mut x {
                    *v = (self.below(2 * top as u64 + 1) as i64 - top) as f32 * 0.5 * step;
                }
                let j = self.below(32) as usize;
                x[j] = self.sign() * top as f32 * step;
                if kind == 4 {
                    // Shift so the minimum sits on the grid too (Q4_1/Q5_1 ties).
                    let m = self.below(20) as f32 * step;
                    for v in &mut x {
                        *v += m;
                    }
                }
            }
            // Zeros of both signs, sometimes with a few non-zero values.
            5 => {
                for v in &mut x {
                    *v = if self.next_u64() & 1 == 0 { 0.0 } else { -0.0 };
                }
                for _ in 0..self.below(3) {
                    let j = self.below(32) as usize;
                    x[j] = self.sign() * self.pick(&scales) as f32;
                }
            }
            // Constant block, or constant with signed zeros.
            6 => {
                let c = self.sign() * (self.unit() * self.pick(&scales)) as f32;
                x = [c; 32];
                if self.next_u64() & 1 == 0 {
                    x[self.below(32) as usize] = 0.0;
                    x[self.below(32) as usize] = -0.0;
                }
            }
            // `+a` and `-a` both present as the largest magnitude (first-occurrence rule).
            7 => {
                let a = self.pick(&scales) as f32;
                for v in &mut x {
                    *v = (self.normal() * 0.3) as f32 * a;
                }
                let (i, j) = (self.below(32) as usize, self.below(32) as usize);
                x[i] = a;
                x[j] = -a;
            }
            // Subnormals and tiny normals: the reciprocal scale overflows (fallback path).
            8 => {
                let s = self.pick(&[1e-45f64, 1e-42, 1e-40, 1e-38, 5e-37, 2e-36]);
                for v in &mut x {
                    *v = (self.normal() * s) as f32;
                }
            }
            // Near f32::MAX: `max - min` overflows (Q4_1/Q5_1) and huge f16 scales.
            9 => {
                for v in &mut x {
                    *v = self.sign() * (f32::MAX as f64 * (0.5 + 0.5 * self.unit())) as f32;
                }
            }
            // Sparse: mostly zeros of both signs with a few values.
            10 => {
                let s = self.pick(&scales);
                for v in &mut x {
                    *v = if self.below(4) == 0 { (self.normal() * s) as f32 } else { self.sign() * 0.0 };
                }
            }
            // Heavy-tailed (ratio of Gaussians) at a random scale.
            _ => {
                let s = self.pick(&scales);
                for v in &mut x {
                    *v = (self.normal() / self.normal().abs().max(1e-3) * s) as f32;
                }
            }
        }
        for v in &mut x {
            // Large scales can overflow to infinity; keep them as the largest finite values.
            *v = v.clamp(-f32::MAX, f32::MAX);
        }
        x
    }
}

#[test]
fn fast_quantizers_match_reference_on_random_blocks() {
    const KINDS: u64 = 12;
    const PER_KIND: usize = 1000;
    let mut rng = Rng(0x5EED_FA57);
    let mut row = Vec::with_capacity(32 * KINDS as usize * PER_KIND);
    for i in 0..KINDS as usize * PER_KIND {
        let x = rng.block(i as u64 % KINDS);
        if let Err(e) = check_block(&x) {
            panic!("random block {i} (kind {}): {e}", i as u64 % KINDS);
        }
        row.extend_from_slice(&x);
    }
    check_row(&row);
}

#[test]
fn fast_quantizers_match_reference_on_hand_picked_blocks() {
    let mut cases: Vec<[f32; 32]> =
        vec![[0.0; 32], [-0.0; 32], [f32::MAX; 32], [-f32::MAX; 32], [f32::MIN_POSITIVE; 32]];
    let mut x = [0.0f32; 32];
    x[5] = -0.0;
    cases.push(x);
    let mut x = [-0.0f32; 32];
    x[7] = 0.0;
    cases.push(x);
    let mut x = [1.0f32; 32];
    x[0] = f32::MAX;
    x[1] = -f32::MAX;
    cases.push(x);
    let mut x = [0.0f32; 32];
    x[3] = 1e-45;
    cases.push(x);
    let mut x = [0.0f32; 32];
    x[3] = -1e-45;
    x[9] = 1e-45;
    cases.push(x);
    // Every half step of one scale: k / 2 for k in -16..16, and the 127-grid for Q8_0.
    cases.push(std::array::from_fn(|j| (j as f32 - 16.0) * 0.5));
    cases.push(std::array::from_fn(|j| (j as f32 * 8.0 - 127.0) * 0.5));
    cases.push(std::array::from_fn(|j| if j == 31 { 127.0 } else { j as f32 * 4.0 + 0.5 }));
    for (i, x) in cases.iter().enumerate() {
        if let Err(e) = check_block(x) {
            panic!("hand-picked block {i}: {e}");
        }
    }
}
