//! The dense f64 linear algebra GPTQ needs: Cholesky factorisation and the upper Cholesky
//! factor of an inverse. Square matrices are row-major `n × n` slices.

/// The matrix is not (numerically) positive definite: pivot `index` was `pivot ≤ 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NotPositiveDefinite {
    pub index: usize,
    pub pivot: f64,
}

/// Lower Cholesky factor `L` of symmetric positive definite `a` (`a = L·Lᵀ`), reading only the
/// lower triangle. The strict upper triangle of the result is zero.
pub(crate) fn cholesky_lower(a: &[f64], n: usize) -> Result<Vec<f64>, NotPositiveDefinite> {
    let mut l = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            // Row i and row j of L are both filled up to column j - 1 (row-major: contiguous).
            let dot: f64 = l[i * n..i * n + j].iter().zip(&l[j * n..j * n + j]).map(|(x, y)| x * y).sum();
            let v = a[i * n + j] - dot;
            if i == j {
                if v <= 0.0 || !v.is_finite() {
                    return Err(NotPositiveDefinite { index: i, pivot: v });
                }
                l[i * n + i] = v.sqrt();
            } else {
                l[i * n + j] = v / l[j * n + j];
            }
        }
    }
    Ok(l)
}

/// Inverse of lower-triangular `l` (non-zero diagonal), itself lower triangular.
fn invert_lower(l: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0f64; n * n];
    // Row i of L⁻¹ by forward substitution, `inv[i][j] = −(Σ_{j≤k<i} l[i][k]·inv[k][j]) / l[i][i]`,
    // accumulated over whole rows k (contiguous, unlike a column-by-column walk); each sum takes
    // its terms in increasing k, as the column walk does.
    let mut acc = vec![0.0f64; n];
    for i in 0..n {
        let (done, rest) = inv.split_at_mut(i * n);
        acc[..i].fill(0.0);
        for k in 0..i {
            let lik = l[i * n + k];
            for (a, x) in acc[..=k].iter_mut().zip(&done[k * n..k * n + k + 1]) {
                *a += lik * x;
            }
        }
        let d = l[i * n + i];
        let row = &mut rest[..n];
        for j in 0..i {
            row[j] = -acc[j] / d;
        }
        row[i] = 1.0 / d;
    }
    inv
}

/// The upper Cholesky factor `U` of `h⁻¹` (`h⁻¹ = Uᵀ·U`, `U` upper triangular with a positive
/// diagonal), what the GPTQ reference gets as `cholesky(cholesky_inverse(cholesky(H)),
/// upper=True)`.
///
/// Computed with one factorisation instead of three: with `J` the order-reversing permutation,
/// let `L` be the lower Cholesky factor of `J·h·J`. Then `h⁻¹ = J·L⁻ᵀ·L⁻¹·J = Aᵀ·A` with
/// `A = J·L⁻¹·J`, which is upper triangular with a positive diagonal, so `A = U` (the factor is
/// unique).
pub(crate) fn upper_cholesky_of_inverse(h: &[f64], n: usize) -> Result<Vec<f64>, NotPositiveDefinite> {
    let rev = |i: usize| n - 1 - i;
    let mut reversed = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            reversed[i * n + j] = h[rev(i) * n + rev(j)];
        }
    }
    let l = cholesky_lower(&reversed, n).map_err(|e| NotPositiveDefinite { index: rev(e.index), ..e })?;
    let inv = invert_lower(&l, n);
    let mut u = vec![0.0f64; n * n];
    for i in 0..n {
        for j in i..n {
            u[i * n + j] = inv[rev(i) * n + rev(j)];
        }
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed symmetric positive definite matrix: `B·Bᵀ + n·I` for a deterministic `B`.
    fn spd(n: usize) -> Vec<f64> {
        let b: Vec<f64> = (0..n * n).map(|k| ((k * 7919 % 97) as f64 - 48.0) / 17.0).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] =
                    (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>() + if i == j { n as f64 } else { 0.0 };
            }
        }
        a
    }

    #[test]
    fn upper_factor_of_the_inverse() {
        let n = 9;
        let h = spd(n);
        let u = upper_cholesky_of_inverse(&h, n).unwrap();
        // Upper triangular with a positive diagonal, and (UᵀU)·H = I.
        for i in 0..n {
            assert!(u[i * n + i] > 0.0);
            for j in 0..i {
                assert_eq!(u[i * n + j], 0.0);
            }
        }
        for i in 0..n {
            for j in 0..n {
                let hinv_row_h: f64 =
                    (0..n).map(|k| (0..n).map(|m| u[m * n + i] * u[m * n + k]).sum::<f64>() * h[k * n + j]).sum();
                let expect = if i == j { 1.0 } else { 0.0 };
                assert!((hinv_row_h - expect).abs() < 1e-10, "({i},{j}) = {hinv_row_h}");
            }
        }
    }

    #[test]
    fn not_positive_definite_is_an_error() {
        let h = [1.0, 2.0, 2.0, 1.0];
        assert!(cholesky_lower(&h, 2).is_err());
        assert!(upper_cholesky_of_inverse(&h, 2).is_err());
    }
}
