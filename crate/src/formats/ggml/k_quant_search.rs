//! The scale searches and rounding helpers shared by the K-quant quantizers, transcribed from
//! ggml-quants.c (`nearest_int`, `make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`,
//! `GGML_FP32_TO_FP16`).
//!
//! These are the reference (`quantize_row_q*_K_ref`) versions: f32 arithmetic, operation by
//! operation in the C order (`a += w * x * l` is `a + ((w * x) * l)`; no fused multiply-add),
//! and C's integer conversions spelled out (`as u8` / `as i8` wrap like C's implicit
//! conversions to `uint8_t` / `int8_t`). Outputs are bit-identical to ggml built without FMA
//! contraction (the default for x86-64 ggml-base, which holds ggml-quants.c).

/// ggml's `GROUP_MAX_EPS`: a group whose largest |x| is below this quantizes to all zeros.
pub const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `nearest_int`: round to nearest, ties to even, by adding 1.5 * 2^23 and reading the
/// low mantissa bits. Exact for |x| <= 4194303 (the C code asserts that in debug builds only);
/// outside that range, and for inf / NaN, this returns what the C bit trick returns (e.g.
/// NaN gives 0 for the default x86 NaN and for wasm's canonical NaN).
#[inline(always)]
pub fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    let i = val.to_bits() as i32;
    (i & 0x007f_ffff) - 0x0040_0000
}

/// C's `MAX(lo, MIN(hi, l))` for `lo <= hi`, written with `select_unpredictable` so it compiles
/// to conditional moves: on random data the clamps of the searches are taken unpredictably and
/// branches would mispredict (same result as `l.clamp(lo, hi)`).
#[inline(always)]
pub fn clamp_int(l: i32, lo: i32, hi: i32) -> i32 {
    let l = std::hint::select_unpredictable(l > hi, hi, l);
    std::hint::select_unpredictable(l < lo, lo, l)
}

/// ggml's `ggml_compute_fp32_to_fp16` (`GGML_FP32_TO_FP16` without F16C): round to nearest
/// even, overflow to infinity, NaN to a quiet NaN (0x7e00 with the input's sign).
#[inline]
pub fn fp32_to_fp16(f: f32) -> half::f16 {
    let scale_to_inf = f32::from_bits(0x7780_0000); // 0x1.0p+112
    let scale_to_zero = f32::from_bits(0x0880_0000); // 0x1.0p-110
    let mut base = (f.abs() * scale_to_inf) * scale_to_zero;
    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    let mut bias = shl1_w & 0xff00_0000;
    if bias < 0x7100_0000 {
        bias = 0x7100_0000;
    }
    #[allow(clippy::assign_op_pattern)] // C's operand order
    {
        base = f32::from_bits((bias >> 1) + 0x0780_0000) + base;
    }
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7c00;
    let mantissa_bits = bits & 0x0000_0fff;
    let nonsign = exp_bits + mantissa_bits;
    let h = (sign >> 16) | if shl1_w > 0xff00_0000 { 0x7e00 } else { nonsign };
    half::f16::from_bits(h as u16)
}

/// Sub-block `j` of `N` values of a super-block's quants, as an array (`&mut l[N*j..N*j+N]`).
#[inline(always)]
pub fn sub_mut<T, const N: usize>(l: &mut [T], j: usize) -> &mut [T; N] {
    (&mut l[N * j..N * j + N]).try_into().unwrap()
}

/// Index of the first element with the largest |x| and that element (`max`), as the scans in
/// `make_qx_quants` / `make_q3_quants` (`if (ax > amax)`: the first of equal magnitudes wins).
#[inline]
fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    (amax, max)
}

/// ggml's `make_qx_quants` with `qw == NULL`: symmetric quants `L[i]` in `0..2*nmax` (stored
/// with an offset of `nmax`) and the returned scale `d` so that `x ~ d * (L - nmax)`.
///
/// `rmse_type` 0 just rounds with `-nmax / max`; otherwise the weights are
/// 1: x², 2: 1, 3: |x|, else sqrt(|x|), and 18 further candidate scales
/// `-(nmax + 0.1 * is) / max`, `is` in -9..=9 (not 0), are tried, keeping the one maximising
/// `sumlx² / suml2` (the weighted least-squares fit). A negative `rmse_type` returns early with
/// the average of the fitted and the initial scale. Q6_K uses `(n, nmax, rmse_type) =
/// (16, 32, 1)`.
#[inline]
pub fn make_qx_quants<const N: usize>(x: &[f32; N], nmax: i32, l_out: &mut [i8; N], rmse_type: i32) -> f32 {
    super::weighted_search::make_qx_quants_weighted(x, nmax, l_out, rmse_type, None)
}

/// Same result as [`make_qx_quants`] (bit for bit), faster: the 18 candidate scales do not
/// depend on each other (only the comparison with the best so far does), so their sums are
/// computed side by side, one lane per candidate, each lane adding in C's order; the candidates
/// are then compared in C's order and the winner's quants recomputed. Used by Q6_K's
/// `quantize_block_fast`; `tests/rust/kquants.rs` checks it against the plain version.
#[inline]
pub fn make_qx_quants_fast<const N: usize>(x: &[f32; N], nmax: i32, l_out: &mut [i8; N], rmse_type: i32) -> f32 {
    if rmse_type <= 0 {
        return make_qx_quants(x, nmax, l_out, rmse_type);
    }
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let weight = |xi: f32| match rmse_type {
        1 => xi * xi,
        2 => 1.0,
        3 => xi.abs(),
        _ => xi.abs().sqrt(),
    };
    let iscale = (-nmax) as f32 / max;
    for (l_i, &xi) in l_out.iter_mut().zip(x) {
        *l_i = (clamp_int(nearest_int(iscale * xi), -nmax, nmax - 1) + nmax) as i8;
    }
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (&l_i, &xi) in l_out.iter().zip(x) {
        let w = weight(xi);
        let lf = (l_i as i32 - nmax) as f32;
        sumlx += w * xi * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;

    // Lanes 0..18 are is = -9..=-1, 1..=9; lanes 18, 19 repeat the last one and are ignored.
    const LANES: usize = 20;
    let mut isc = [0.0f32; LANES];
    for (k, is) in (-9..=9).filter(|&is| is != 0).enumerate() {
        isc[k] = -(nmax as f32 + 0.1 * is as f32) / max;
    }
    isc[18] = isc[17];
    isc[19] = isc[17];
    let mut slx = [0.0f32; LANES];
    let mut sl2 = [0.0f32; LANES];
    for &xi in x {
        let w = weight(xi);
        let wx = w * xi; // C's `w*x[i]*l` is `(w*x[i])*l`
        for k in 0..LANES {
            let l = clamp_int(nearest_int(isc[k] * xi), -nmax, nmax - 1) as f32;
            slx[k] += wx * l;
            sl2[k] += w * l * l;
        }
    }
    let mut winner = None;
    for k in 0..18 {
        if sl2[k] > 0.0 && slx[k] * slx[k] > best * sl2[k] {
            winner = Some(k);
            scale = slx[k] / sl2[k];
            best = scale * slx[k];
        }
    }
    if let Some(k) = winner {
        for (l_i, &xi) in l_out.iter_mut().zip(x) {
            *l_i = (nmax + clamp_int(nearest_int(isc[k] * xi), -nmax, nmax - 1)) as i8;
        }
    }
    scale
}

/// ggml's `make_q3_quants`: symmetric quants in `0..2*nmax` (offset `nmax`) and their scale.
/// With `do_rmse` (Q3_K: n = 16, nmax = 4), after rounding with `-nmax / max` it runs up to
/// five passes of coordinate descent: each `L[i]` is re-rounded against the fit of all the
/// others (weights x²) and kept if it raises `sumlx² / suml2`. Returns `sumlx / suml2`.
#[inline]
pub fn make_q3_quants<const N: usize>(x: &[f32; N], nmax: i32, l_out: &mut [i8; N], do_rmse: bool) -> f32 {
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        l_out.fill(0);
        return 0.0;
    }
    let iscale = (-nmax) as f32 / max;
    if do_rmse {
        let mut sumlx = 0.0f32;
        let mut suml2 = 0.0f32;
        for (l_i, &xi) in l_out.iter_mut().zip(x) {
            *l_i = clamp_int(nearest_int(iscale * xi), -nmax, nmax - 1) as i8;
        }
        for (&l_i, &xi) in l_out.iter().zip(x) {
            let w = xi * xi;
            let lf = l_i as f32;
            sumlx += w * xi * lf;
            suml2 += w * lf * lf;
        }
        for _ in 0..5 {
            let mut n_changed = 0;
            for (l_i, &xi) in l_out.iter_mut().zip(x) {
                let w = xi * xi;
                let li = *l_i as f32;
                let mut slx = sumlx - w * xi * li;
                if slx > 0.0 {
                    let mut sl2 = suml2 - w * li * li;
                    let new_l = clamp_int(nearest_int(xi * sl2 / slx), -nmax, nmax - 1);
                    if new_l != *l_i as i32 {
                        let nl = new_l as f32;
                        slx += w * xi * nl;
                        sl2 += w * nl * nl;
                        if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                            *l_i = new_l as i8;
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
        for l_i in l_out.iter_mut() {
            *l_i += nmax as i8;
        }
        return if suml2 > 0.0 { sumlx / suml2 } else { 0.0 };
    }
    for (l_i, &xi) in l_out.iter_mut().zip(x) {
        let l = clamp_int(nearest_int(iscale * xi), -nmax, nmax - 1);
        *l_i = (l + nmax) as i8;
    }
    1.0 / iscale
}

/// ggml's `make_qkx2_quants`: asymmetric quants `L[i]` in `0..=nmax` with a scale and a
/// minimum, `x ~ scale * L - the_min` (returns `(scale, the_min)`).
///
/// The minimum starts at `min(0, min x)` and the scale at `(max - min) / nmax`; then for
/// `is` in `0..=nstep` the quants are re-rounded with `iscale = (rmin + rdelta * is + nmax) /
/// (max - min)` and scale and minimum refitted by weighted least squares (minimum clamped to
/// <= 0), keeping the candidate with the smallest weighted error (|diff| if `use_mad`, else
/// diff²). `l_aux` is scratch. Q2_K: (16, 3, |x|, -0.5, 0.1, 15, mad);
/// Q4_K: (32, 15, av + |x|, -1, 0.1, 20, sq); Q5_K: (32, 31, av + |x|, -0.5, 0.1, 15, sq).
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn make_qkx2_quants<const N: usize>(
    x: &[f32; N],
    nmax: i32,
    weights: &[f32; N],
    l_out: &mut [u8; N],
    l_aux: &mut [u8; N],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let start = match qkx2_start(x, nmax, weights, l_out, nstep, use_mad) {
        Ok(start) => start,
        Err(result) => return result,
    };
    let Qkx2Start { mut min, max, sum_w, sum_x, mut scale, mut best_error } = start;
    let err = |diff: f32| if use_mad { diff.abs() } else { diff * diff };
    for is in 0..=nstep {
        let iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let mut sum_l = 0.0f32;
        let mut sum_l2 = 0.0f32;
        let mut sum_xl = 0.0f32;
        for i in 0..N {
            l_aux[i] = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax) as u8;
        }
        for i in 0..N {
            let w = weights[i];
            let lf = l_aux[i] as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..N {
                let diff = this_scale * l_aux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * err(diff);
            }
            if cur_error < best_error {
                *l_out = *l_aux;
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// The state of `make_qkx2_quants` when the candidate search begins: the range, the weighted
/// sums that do not depend on the quants, and the first fit (`l_out` holds its quants).
struct Qkx2Start {
    min: f32,
    max: f32,
    sum_w: f32,
    sum_x: f32,
    scale: f32,
    best_error: f32,
}

/// `make_qkx2_quants` up to the candidate search; `Err` is the result when it returns before
/// (constant input, or `nstep < 1`).
#[inline(always)]
fn qkx2_start<const N: usize>(
    x: &[f32; N],
    nmax: i32,
    weights: &[f32; N],
    l_out: &mut [u8; N],
    nstep: i32,
    use_mad: bool,
) -> Result<Qkx2Start, (f32, f32)> {
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..N {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out.fill(0);
        return Err((0.0, -min));
    }
    let err = |diff: f32| if use_mad { diff.abs() } else { diff * diff };
    let iscale = nmax as f32 / (max - min);
    let scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    // Rounding and sums in separate loops (same values, same order): the rounding loop
    // vectorizes, the sums stay sequential as in C.
    for i in 0..N {
        let l = nearest_int(iscale * (x[i] - min));
        l_out[i] = clamp_int(l, 0, nmax) as u8;
    }
    for i in 0..N {
        let diff = scale * l_out[i] as f32 + min - x[i];
        best_error += weights[i] * err(diff);
    }
    if nstep < 1 {
        return Err((scale, -min));
    }
    Ok(Qkx2Start { min, max, sum_w, sum_x, scale, best_error })
}

/// Same result as [`make_qkx2_quants`] (bit for bit), faster. In C each candidate's sums are
/// one dependent chain of adds, so the loop waits on add latency. Here 16 candidates are
/// evaluated side by side, one lane each, every lane adding in C's order; they are then
/// compared in C's order. Candidates are not independent: a winner replaces `min`, which the
/// following candidates round against. So the lanes are a speculation on `min` staying put:
/// when a winner changes `min`, the candidates after it are evaluated again from the new `min`.
/// Used by the Q2_K, Q4_K and Q5_K `quantize_block`s; `tests/rust/kquants.rs` checks it against
/// the plain version.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
#[inline]
pub fn make_qkx2_quants_fast<const N: usize>(
    x: &[f32; N],
    nmax: i32,
    weights: &[f32; N],
    l_out: &mut [u8; N],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    const LANES: usize = 16;
    let start = match qkx2_start(x, nmax, weights, l_out, nstep, use_mad) {
        Ok(start) => start,
        Err(result) => return result,
    };
    let Qkx2Start { mut min, max, sum_w, sum_x, mut scale, mut best_error } = start;
    let err = |diff: f32| if use_mad { diff.abs() } else { diff * diff };
    let mut first = 0;
    while first <= nstep {
        // Lane k is candidate first + k; lanes past nstep repeat nstep and are not compared.
        let mut iscale = [0.0f32; LANES];
        for (k, isc) in iscale.iter_mut().enumerate() {
            let is = (first + k as i32).min(nstep);
            *isc = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        }
        let mut quants = [[0.0f32; LANES]; N];
        let mut sum_l = [0.0f32; LANES];
        let mut sum_l2 = [0.0f32; LANES];
        let mut sum_xl = [0.0f32; LANES];
        for i in 0..N {
            let x_min = x[i] - min;
            let w = weights[i];
            for k in 0..LANES {
                let l = clamp_int(nearest_int(iscale[k] * x_min), 0, nmax) as f32;
                quants[i][k] = l;
                let wl = w * l; // C's `w*l*l` and `w*l*x[i]` are `(w*l)*l` and `(w*l)*x[i]`
                sum_l[k] += wl;
                sum_l2[k] += wl * l;
                sum_xl[k] += wl * x[i];
            }
        }
        let mut det = [0.0f32; LANES];
        let mut this_scale = [0.0f32; LANES];
        let mut this_min = [0.0f32; LANES];
        for k in 0..LANES {
            det[k] = sum_w * sum_l2[k] - sum_l[k] * sum_l[k];
            let fitted_min = (sum_l2[k] * sum_x - sum_l[k] * sum_xl[k]) / det[k];
            let clamped = fitted_min > 0.0;
            this_min[k] = if clamped { 0.0 } else { fitted_min };
            this_scale[k] =
                if clamped { sum_xl[k] / sum_l2[k] } else { (sum_w * sum_xl[k] - sum_x * sum_l[k]) / det[k] };
        }
        let mut cur_error = [0.0f32; LANES];
        for i in 0..N {
            for k in 0..LANES {
                let diff = this_scale[k] * quants[i][k] + this_min[k] - x[i];
                cur_error[k] += weights[i] * err(diff);
            }
        }
        let mut next = first + LANES as i32;
        for k in 0..LANES.min((nstep - first + 1) as usize) {
            if det[k] > 0.0 && cur_error[k] < best_error {
                for i in 0..N {
                    l_out[i] = quants[i][k] as u8;
                }
                best_error = cur_error[k];
                scale = this_scale[k];
                let min_changed = this_min[k].to_bits() != min.to_bits();
                min = this_min[k];
                if min_changed {
                    next = first + k as i32 + 1;
                    break;
                }
            }
        }
        first = next;
    }
    (scale, -min)
}
