//! The importance-weighted scale searches of ggml-quants.c, used when llama-quantize is given an
//! importance matrix (`quant_weights` non-NULL): `make_qx_quants` with `qw`, `make_qkx3_quants`,
//! `make_qp_quants`, and the per-value weights the legacy types' `quantize_row_q*_impl` build
//! from the importance. Same conventions as [`super::k_quant_search`]: f32, the C operation
//! order, no fused multiply-adds.

use super::k_quant_search::{clamp_int, make_qkx2_quants, nearest_int, GROUP_MAX_EPS};
use super::QK_K;

/// `Σ x²  / n` over a whole row, summed in order in f32: the legacy types' `sigma2`.
pub fn row_sigma2(x: &[f32]) -> f32 {
    let mut sum_x2 = 0.0f32;
    for &v in x {
        sum_x2 += v * v;
    }
    sum_x2 / x.len() as f32
}

/// The legacy types' search weights of one block: `qw[j] · sqrt(sigma2 + x[j]²)`.
pub fn legacy_block_weights<const N: usize>(x: &[f32; N], qw: &[f32], sigma2: f32) -> [f32; N] {
    std::array::from_fn(|j| qw[j] * (sigma2 + x[j] * x[j]).sqrt())
}

/// The legacy types' row loop with an importance: `f(block values, block search weights)` per
/// block of `N`, the weights from [`legacy_block_weights`] with the whole row's [`row_sigma2`].
/// Panics unless `x` and `qw` have the same length (whole blocks are asserted by the callers).
pub fn legacy_weighted_blocks<B, const N: usize>(
    x: &[f32],
    qw: &[f32],
    blocks: &mut [B],
    mut f: impl FnMut(&[f32; N], &[f32; N]) -> B,
) {
    assert_eq!(qw.len(), x.len(), "one importance per column");
    let sigma2 = row_sigma2(x);
    for ((b, xb), qb) in blocks.iter_mut().zip(x.chunks_exact(N)).zip(qw.chunks_exact(N)) {
        let xb: &[f32; N] = xb.try_into().expect("blocks of N");
        *b = f(xb, &legacy_block_weights(xb, qb, sigma2));
    }
}

/// A K-quant row with an importance: `block(values, importance)` per super-block of 256.
/// Panics unless `x`, `qw` and `blocks` agree in size.
pub fn super_blocks<B>(x: &[f32], qw: &[f32], blocks: &mut [B], block: impl Fn(&[f32; QK_K], &[f32; QK_K]) -> B) {
    super::assert_block_count(x.len(), blocks.len(), QK_K);
    assert_eq!(qw.len(), x.len(), "one importance per column");
    for ((b, xb), qb) in blocks.iter_mut().zip(x.chunks_exact(QK_K)).zip(qw.chunks_exact(QK_K)) {
        *b = block(xb.try_into().expect("QK_K values"), qb.try_into().expect("QK_K values"));
    }
}

/// Packs 32 five-bit quants as Q5_0 / Q5_1 store them: low nibbles in `qs`, the fifth bits in `qh`.
pub fn pack_q5(l: &[u8; 32]) -> ([u8; 16], [u8; 4]) {
    let mut qs = [0u8; 16];
    let mut qh = 0u32;
    for j in 0..16 {
        let (xi0, xi1) = (l[j], l[j + 16]);
        qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
        qh |= (((xi0 & 0x10) >> 4) as u32) << j;
        qh |= (((xi1 & 0x10) >> 4) as u32) << (j + 16);
    }
    (qs, qh.to_le_bytes())
}

/// ggml's `make_qx_quants` with optional weights `qw` (NULL: the weights `rmse_type` names, see
/// [`super::k_quant_search::make_qx_quants`]). Quants `L[i]` in `0..2*nmax` (offset `nmax`);
/// returns the scale.
pub fn make_qx_quants_weighted<const N: usize>(
    x: &[f32; N],
    nmax: i32,
    l_out: &mut [i8; N],
    rmse_type: i32,
    qw: Option<&[f32; N]>,
) -> f32 {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let mut iscale = (-nmax) as f32 / max;
    if rmse_type == 0 {
        for (l_i, &xi) in l_out.iter_mut().zip(x) {
            *l_i = (nmax + clamp_int(nearest_int(iscale * xi), -nmax, nmax - 1)) as i8;
        }
        return 1.0 / iscale;
    }
    let (rmse_type, return_early) = if rmse_type < 0 { (-rmse_type, true) } else { (rmse_type, false) };
    let weight = |i: usize, xi: f32| match qw {
        Some(q) => q[i],
        None => match rmse_type {
            1 => xi * xi,
            2 => 1.0,
            3 => xi.abs(),
            _ => xi.abs().sqrt(),
        },
    };
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (i, (l_i, &xi)) in l_out.iter_mut().zip(x).enumerate() {
        let l = clamp_int(nearest_int(iscale * xi), -nmax, nmax - 1);
        *l_i = (l + nmax) as i8;
        let (w, lf) = (weight(i, xi), l as f32);
        sumlx += w * xi * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    if return_early {
        return if suml2 > 0.0 { 0.5 * (scale + 1.0 / iscale) } else { 1.0 / iscale };
    }
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for (i, &xi) in x.iter().enumerate() {
            let l = clamp_int(nearest_int(iscale * xi), -nmax, nmax - 1) as f32;
            let w = weight(i, xi);
            sumlx += w * xi * l;
            suml2 += w * l * l;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (l_i, &xi) in l_out.iter_mut().zip(x) {
                *l_i = (nmax + clamp_int(nearest_int(iscale * xi), -nmax, nmax - 1)) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// ggml's `make_qkx3_quants` with weights (every caller in ggml-quants.c passes them):
/// asymmetric quants `L[i]` in `0..=nmax` with a scale and a min, returned as
/// `(scale, the_min)` where `x ≈ scale·L − the_min`, searching `nstep + 1` candidate scales
/// `(rmin + rdelta·is + nmax) / (max − min)` by weighted least squares and keeping the one of
/// least weighted squared (or absolute, `use_mad`) error.
///
/// It is `make_qkx2_quants` but for one test: it returns early when `max <= min` (after `min`
/// is clamped to ≤ 0, so for an all-negative block) where qkx2 tests `max == min`.
#[allow(clippy::too_many_arguments)] // C's parameter list
pub fn make_qkx3_quants<const N: usize>(
    x: &[f32; N],
    nmax: i32,
    weights: &[f32; N],
    l_out: &mut [u8; N],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let (mut min, mut max) = (x[0], x[0]);
    for &v in &x[1..] {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max <= min {
        l_out.fill(0);
        return (0.0, -min);
    }
    let mut l_aux = [0u8; N];
    make_qkx2_quants(x, nmax, weights, l_out, &mut l_aux, rmin, rdelta, nstep, use_mad)
}

/// ggml's `make_qp_quants`: non-negative `x` (the sub-block scales of Q2_K / Q4_K) to quants in
/// `0..=nmax` with one scale, weighted by `quant_weights`: 8 candidate scales around
/// `max / nmax`, then up to five passes of weighted coordinate descent. Returns the scale.
pub fn make_qp_quants<const N: usize>(x: &[f32; N], nmax: i32, l_out: &mut [u8; N], quant_weights: &[f32; N]) -> f32 {
    let mut max = 0.0f32;
    for &v in x {
        max = if max > v { max } else { v }; // C's MAX(max, x[i])
    }
    if max < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let mut iscale = nmax as f32 / max;
    // C stores `nearest_int` into uint8_t: the low byte.
    for (l, &v) in l_out.iter_mut().zip(x) {
        *l = nearest_int(iscale * v) as u8;
    }
    let scale = 1.0 / iscale;
    let mut best_mse = 0.0f32;
    for i in 0..N {
        let diff = x[i] - scale * l_out[i] as f32;
        best_mse += quant_weights[i] * diff * diff;
    }
    for is in -4..=4 {
        if is == 0 {
            continue;
        }
        let iscale_is = (0.1 * is as f32 + nmax as f32) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0.0f32;
        for i in 0..N {
            let l = nearest_int(iscale_is * x[i]).min(nmax);
            let diff = x[i] - scale_is * l as f32;
            mse += quant_weights[i] * diff * diff;
        }
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..N {
        let l = nearest_int(iscale * x[i]).min(nmax);
        l_out[i] = l as u8;
        let w = quant_weights[i];
        sumlx += w * x[i] * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for i in 0..N {
            let w = quant_weights[i];
            let li = l_out[i] as f32;
            let mut slx = sumlx - w * x[i] * li;
            let mut sl2 = suml2 - w * li * li;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nearest_int(x[i] * sl2 / slx).min(nmax);
                if new_l != l_out[i] as i32 {
                    slx += w * x[i] * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l_out[i] = new_l as u8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}
