//! What the stored codes of a ggml tensor can decode to, for drawing a format's levels over a
//! histogram, and the codes themselves (one per weight) for level-occupancy counts.
//!
//! A **group** is the set of weights that share every decoding parameter:
//!
//! | type  | group | code (one `u8` per weight)          | level for code `c`              |
//! |-------|-------|-------------------------------------|---------------------------------|
//! | Q8_0  | block of 32 | `q + 128` (q the stored i8)   | `(c − 128) · d`                 |
//! | Q4_0  | block of 32 | the nibble 0..15              | `(c − 8) · d`                   |
//! | Q4_1  | block of 32 | the nibble 0..15              | `c · d + m`                     |
//! | Q5_0  | block of 32 | the 5-bit value 0..31         | `(c − 16) · d`                  |
//! | Q5_1  | block of 32 | the 5-bit value 0..31         | `c · d + m`                     |
//! | Q2_K  | sub-block of 16 | 2-bit value 0..3          | `(d·sc)·c − dmin·mn`            |
//! | Q3_K  | sub-block of 16 | `q + 4`, 0..7 (q in −4..3) | `(d·(sc−32))·(c − 4)`          |
//! | Q4_K  | sub-block of 32 | the nibble 0..15          | `(d·sc)·c − dmin·mn`            |
//! | Q5_K  | sub-block of 32 | the 5-bit value 0..31     | `(d·sc)·c − dmin·mn`            |
//! | Q6_K  | sub-block of 16 | the 6-bit value 0..63     | `(d·sc)·(c − 32)`               |
//! | Q8_K  | block of 256 | `q + 128`                    | `d · (c − 128)` (f32 `d`)       |
//!
//! For the K-quants "group" means the **sub-block** (16 or 32 weights) with its own decoded
//! 6/4-bit scale and minimum, not the 256-weight super-block. Levels are evaluated with the
//! same f32 operations, in the same order, as [`crate::formats::dequantize_row`], so every
//! dequantized weight is exactly one of its group's levels (tested). They are returned
//! ascending without duplicates (a negative `d` flips the order; NaN levels are dropped).
//!
//! Other types (F32/F16/BF16: every float is a level; IQ/MXFP4/TQ: not done yet) return
//! [`FormatError::Unsupported`].

use super::{q2_k, q3_k, q4_0, q4_1, q4_k, q5_0, q5_1, q5_k, q6_k, q8_0, q8_k, QK_K};
use crate::formats::{int::sort_unique, FormatError, GgmlType};

/// Weights per group for `ty`, or `None` when levels/codes are not supported for it.
pub fn group_len(ty: GgmlType) -> Option<usize> {
    use GgmlType::*;
    match ty {
        Q8_0 | Q4_0 | Q4_1 | Q5_0 | Q5_1 => Some(32),
        Q2_K | Q3_K | Q6_K => Some(16),
        Q4_K | Q5_K => Some(32),
        Q8_K => Some(QK_K),
        _ => None,
    }
}

/// How many distinct codes [`codes`] can return for `ty` (the level-occupancy length).
pub fn n_codes(ty: GgmlType) -> Option<usize> {
    use GgmlType::*;
    match ty {
        Q8_0 | Q8_K => Some(256),
        Q4_0 | Q4_1 | Q4_K => Some(16),
        Q5_0 | Q5_1 | Q5_K => Some(32),
        Q2_K => Some(4),
        Q3_K => Some(8),
        Q6_K => Some(64),
        _ => None,
    }
}

/// True if [`levels`] and [`codes`] handle `ty`.
pub fn supports(ty: GgmlType) -> bool {
    group_len(ty).is_some()
}

/// Number of groups in a tensor of `n_values` weights of type `ty`.
pub fn n_groups(ty: GgmlType, n_values: usize) -> Result<usize, FormatError> {
    let len = group_len(ty).ok_or(FormatError::Unsupported(ty))?;
    Ok(n_values / len)
}

fn read<B: bytemuck::Pod>(data: &[u8], block: usize) -> B {
    let size = size_of::<B>();
    bytemuck::pod_read_unaligned(&data[block * size..(block + 1) * size])
}

/// The level of every code of group `group` (index = code), in decoding order.
fn raw_levels(ty: GgmlType, data: &[u8], group: usize) -> Result<Vec<f32>, FormatError> {
    use GgmlType::*;
    let (block_values, block_bytes) = ty.block_layout();
    let glen = group_len(ty).ok_or(FormatError::Unsupported(ty))?;
    let per_block = block_values / glen;
    let (b, sub) = (group / per_block, group % per_block);
    if (b + 1) * block_bytes > data.len() {
        return Err(FormatError::WrongByteCount {
            ty,
            n_values: (group + 1) * glen,
            expected: (b + 1) * block_bytes,
            got: data.len(),
        });
    }
    Ok(match ty {
        Q8_0 => {
            let blk: q8_0::BlockQ8_0 = read(data, b);
            let d = blk.d.to_f32();
            (0..256).map(|c| (c - 128) as f32 * d).collect()
        }
        Q4_0 => {
            let d = read::<q4_0::BlockQ4_0>(data, b).d.to_f32();
            (0..16).map(|c| (c - 8) as f32 * d).collect()
        }
        Q4_1 => {
            let blk: q4_1::BlockQ4_1 = read(data, b);
            let (d, m) = (blk.d.to_f32(), blk.m.to_f32());
            (0..16).map(|c| c as f32 * d + m).collect()
        }
        Q5_0 => {
            let d = read::<q5_0::BlockQ5_0>(data, b).d.to_f32();
            (0..32).map(|c| (c - 16) as f32 * d).collect()
        }
        Q5_1 => {
            let blk: q5_1::BlockQ5_1 = read(data, b);
            let (d, m) = (blk.d.to_f32(), blk.m.to_f32());
            (0..32).map(|c| c as f32 * d + m).collect()
        }
        Q2_K => {
            let blk: q2_k::BlockQ2K = read(data, b);
            let sc = blk.scales[sub];
            let dl = blk.d.to_f32() * (sc & 0xF) as f32;
            let ml = blk.dmin.to_f32() * (sc >> 4) as f32;
            (0..4).map(|c| dl * c as f32 - ml).collect()
        }
        Q3_K => {
            let blk: q3_k::BlockQ3K = read(data, b);
            let dl = blk.d.to_f32() * q3_k::unpack_scales(&blk.scales)[sub] as i32 as f32;
            (0..8).map(|c| dl * (c - 4) as f32).collect()
        }
        Q4_K | Q5_K => {
            let (d, dmin, scales) = if ty == Q4_K {
                let blk: q4_k::BlockQ4K = read(data, b);
                (blk.d, blk.dmin, blk.scales)
            } else {
                let blk: q5_k::BlockQ5K = read(data, b);
                (blk.d, blk.dmin, blk.scales)
            };
            let (sc, mn) = q4_k::get_scale_min_k4(sub, &scales);
            let (d1, m1) = (d.to_f32() * sc as f32, dmin.to_f32() * mn as f32);
            let n = if ty == Q4_K { 16 } else { 32 };
            (0..n).map(|c| d1 * c as f32 - m1).collect()
        }
        Q6_K => {
            let blk: q6_k::BlockQ6K = read(data, b);
            let d = blk.d.to_f32();
            let sc = blk.scales[sub];
            (0..64).map(|c| d * sc as f32 * (c - 32) as f32).collect()
        }
        Q8_K => {
            let blk: q8_k::BlockQ8K = read(data, b);
            (0..256).map(|c| blk.d * (c - 128) as f32).collect()
        }
        _ => return Err(FormatError::Unsupported(ty)),
    })
}

/// The values group `group` of a `ty` tensor stored in `data` can decode to, ascending, without
/// duplicates.
pub fn levels(ty: GgmlType, data: &[u8], group: usize) -> Result<Vec<f32>, FormatError> {
    let mut v = raw_levels(ty, data, group)?;
    sort_unique(&mut v);
    Ok(v)
}

/// The value of `code` in group `group` (the same f32 the dequantizer produces).
pub fn level_of(ty: GgmlType, data: &[u8], group: usize, code: u8) -> Result<f32, FormatError> {
    raw_levels(ty, data, group)?.get(code as usize).copied().ok_or(FormatError::Unsupported(ty))
}

/// One code per weight (see the module table), in tensor order. `data` must hold whole blocks.
pub fn codes(ty: GgmlType, data: &[u8]) -> Result<Vec<u8>, FormatError> {
    use GgmlType::*;
    if !supports(ty) {
        return Err(FormatError::Unsupported(ty));
    }
    let (block_values, block_bytes) = ty.block_layout();
    if !data.len().is_multiple_of(block_bytes) {
        return Err(FormatError::WrongByteCount {
            ty,
            n_values: data.len() / block_bytes * block_values,
            expected: data.len() / block_bytes * block_bytes,
            got: data.len(),
        });
    }
    let n_blocks = data.len() / block_bytes;
    let mut out = vec![0u8; n_blocks * block_values];
    for (b, y) in out.chunks_exact_mut(block_values).enumerate() {
        match ty {
            Q8_0 => {
                let blk: q8_0::BlockQ8_0 = read(data, b);
                for (o, &q) in y.iter_mut().zip(&blk.qs) {
                    *o = (q as i32 + 128) as u8;
                }
            }
            Q8_K => {
                let blk: q8_k::BlockQ8K = read(data, b);
                for (o, &q) in y.iter_mut().zip(&blk.qs) {
                    *o = (q as i32 + 128) as u8;
                }
            }
            Q4_0 | Q4_1 => {
                let qs =
                    if ty == Q4_0 { read::<q4_0::BlockQ4_0>(data, b).qs } else { read::<q4_1::BlockQ4_1>(data, b).qs };
                for (j, &q) in qs.iter().enumerate() {
                    y[j] = q & 0xF;
                    y[j + 16] = q >> 4;
                }
            }
            Q5_0 | Q5_1 => {
                let (qh, qs) = if ty == Q5_0 {
                    let blk: q5_0::BlockQ5_0 = read(data, b);
                    (blk.qh, blk.qs)
                } else {
                    let blk: q5_1::BlockQ5_1 = read(data, b);
                    (blk.qh, blk.qs)
                };
                let qh = u32::from_le_bytes(qh);
                for (j, &q) in qs.iter().enumerate() {
                    y[j] = (q & 0xF) | ((((qh >> j) << 4) & 0x10) as u8);
                    y[j + 16] = (q >> 4) | (((qh >> (j + 12)) & 0x10) as u8);
                }
            }
            Q2_K => {
                let blk: q2_k::BlockQ2K = read(data, b);
                let mut i = 0;
                for q in blk.qs.chunks_exact(32) {
                    for shift in [0, 2, 4, 6] {
                        for &byte in q {
                            y[i] = (byte >> shift) & 3;
                            i += 1;
                        }
                    }
                }
            }
            Q3_K => {
                let blk: q3_k::BlockQ3K = read(data, b);
                let (mut i, mut m) = (0, 1u8);
                for q in blk.qs.chunks_exact(32) {
                    for shift in [0, 2, 4, 6] {
                        for (&ql, &hm) in q.iter().zip(&blk.hmask) {
                            y[i] = ((ql >> shift) & 3) + if hm & m != 0 { 4 } else { 0 };
                            i += 1;
                        }
                        m <<= 1;
                    }
                }
            }
            Q4_K => {
                let blk: q4_k::BlockQ4K = read(data, b);
                for (q, out) in blk.qs.chunks_exact(32).zip(y.chunks_exact_mut(64)) {
                    for l in 0..32 {
                        out[l] = q[l] & 0xF;
                        out[l + 32] = q[l] >> 4;
                    }
                }
            }
            Q5_K => {
                let blk: q5_k::BlockQ5K = read(data, b);
                let (mut u1, mut u2) = (1u8, 2u8);
                for (ql, out) in blk.qs.chunks_exact(32).zip(y.chunks_exact_mut(64)) {
                    for l in 0..32 {
                        out[l] = (ql[l] & 0xF) + if blk.qh[l] & u1 != 0 { 16 } else { 0 };
                        out[l + 32] = (ql[l] >> 4) + if blk.qh[l] & u2 != 0 { 16 } else { 0 };
                    }
                    u1 <<= 2;
                    u2 <<= 2;
                }
            }
            Q6_K => {
                let blk: q6_k::BlockQ6K = read(data, b);
                for h in 0..2 {
                    let ql = &blk.ql[64 * h..64 * h + 64];
                    let qh = &blk.qh[32 * h..32 * h + 32];
                    let y = &mut y[128 * h..128 * h + 128];
                    for l in 0..32 {
                        y[l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
                        y[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                        y[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                        y[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                    }
                }
            }
            _ => return Err(FormatError::Unsupported(ty)),
        }
    }
    Ok(out)
}
