//! Dense linear algebra for the numerics: orthonormalisation, Gram matrices, small
//! eigen- and singular value decompositions, and the BLAS thread setting.
//!
//! Storage convention: a tall `m × l` matrix `M` (one row per term) is held as its
//! transpose `Mt`, an `l × m` nalgebra matrix. nalgebra is column-major, so row `t` of `M`
//! — everything about term `t` — is one contiguous slice of `l` values, which is what the
//! sparse products in [`crate::lsi::products`] gather from and scatter into.
//!
//! Determinism: every product over the long dimension `m` is cut into blocks of
//! [`BLOCK`] columns, computed in parallel (each block one single-threaded BLAS call) and
//! summed in block order, so results are the same bits whatever the number of threads.

use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;

/// Columns per block of the blocked products over the long dimension.
pub const BLOCK: usize = 2048;

/// The columns (`k` values each) `ids` of `values` (column `i` is `values[i·k..(i+1)·k]`),
/// which must be strictly ascending, as disjoint mutable slices — carved out one after
/// another, so that different threads may fill them.
///
/// # Panics
/// If the ids are not strictly ascending or a column lies outside `values` (callers check
/// ids that come from outside).
pub fn columns_mut<'a, T>(values: &'a mut [T], k: usize, ids: &[u32]) -> Vec<&'a mut [T]> {
    let mut columns = Vec::with_capacity(ids.len());
    let mut rest = values;
    let mut start_of_rest = 0;
    for &id in ids {
        let start = id as usize * k;
        assert!(
            start >= start_of_rest,
            "column ids must be strictly ascending"
        );
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(start - start_of_rest);
        let (column, tail) = tail.split_at_mut(k);
        columns.push(column);
        rest = tail;
        start_of_rest = start + k;
    }
    columns
}

/// `G = Mt · Mtᵀ` (that is `MᵀM`, `l × l`), summed over column blocks in order.
pub fn gram(mt: &DMatrix<f64>) -> DMatrix<f64> {
    let l = mt.nrows();
    let partials: Vec<DMatrix<f64>> = block_starts(mt.ncols())
        .into_par_iter()
        .map(|(start, len)| {
            let mut g = DMatrix::zeros(l, l);
            blas::syrk_upper(l, len, &mt.as_slice()[start * l..], g.as_mut_slice());
            g
        })
        .collect();
    let mut g = partials
        .into_iter()
        .fold(DMatrix::zeros(l, l), |acc, p| acc + p);
    g.fill_lower_triangle_with_upper_triangle();
    g
}

/// `At · Btᵀ` (that is `AᵀB` of two tall matrices), summed over column blocks in order.
pub fn cross(at: &DMatrix<f64>, bt: &DMatrix<f64>) -> DMatrix<f64> {
    assert_eq!(
        at.ncols(),
        bt.ncols(),
        "cross product of matrices over different terms"
    );
    let (r1, r2) = (at.nrows(), bt.nrows());
    let partials: Vec<DMatrix<f64>> = block_starts(at.ncols())
        .into_par_iter()
        .map(|(start, len)| {
            let mut c = DMatrix::zeros(r1, r2);
            let a = &at.as_slice()[start * r1..];
            let b = &bt.as_slice()[start * r2..];
            blas::gemm(false, true, r1, r2, len, a, r1, b, r2, c.as_mut_slice(), r1);
            c
        })
        .collect();
    partials
        .into_iter()
        .fold(DMatrix::zeros(r1, r2), |acc, p| acc + p)
}

/// `Rt · Mt` for a small `r × l` matrix `Rt` and a wide `l × m` matrix `Mt`, computed in
/// column blocks (each block is independent, so the result does not depend on threads).
pub fn left_multiply(rt: &DMatrix<f64>, mt: &DMatrix<f64>) -> DMatrix<f64> {
    let (r, l) = rt.shape();
    assert_eq!(l, mt.nrows(), "left_multiply of mismatched shapes");
    let mut out = DMatrix::zeros(r, mt.ncols());
    if r == 0 || l == 0 {
        return out;
    }
    out.as_mut_slice()
        .par_chunks_mut(r * BLOCK)
        .enumerate()
        .for_each(|(b, dst)| {
            let len = dst.len() / r;
            let src = &mt.as_slice()[b * BLOCK * l..];
            blas::gemm(false, false, r, len, l, rt.as_slice(), r, src, l, dst, r);
        });
    out
}

/// `Mt ← Rt · Mt` in place, for a square `l × l` matrix `Rt`: the blocks and BLAS calls of
/// [`left_multiply`] (so the same bits), each block computed from a copy of itself, without
/// a second `l × m` matrix.
fn left_multiply_in_place(rt: &DMatrix<f64>, mt: &mut DMatrix<f64>) {
    let l = mt.nrows();
    assert_eq!(
        rt.shape(),
        (l, l),
        "left_multiply_in_place of mismatched shapes"
    );
    if l == 0 {
        return;
    }
    mt.as_mut_slice()
        .par_chunks_mut(l * BLOCK)
        .for_each_init(Vec::new, |src, dst| {
            src.clear();
            src.extend_from_slice(dst);
            blas::gemm(
                false,
                false,
                l,
                dst.len() / l,
                l,
                rt.as_slice(),
                l,
                src,
                l,
                dst,
                l,
            );
        });
}

fn block_starts(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .step_by(BLOCK)
        .map(|s| (s, BLOCK.min(n - s)))
        .collect()
}

/// Thin QR of the tall matrix `M`, given and returned transposed: `M = Q·R` with
/// `Qt` of shape `r × m` (orthonormal rows, `r = min(l, m)`) and `R` of shape `r × l`.
///
/// Cholesky-QR2 (Fukaya et al. 2014): `R₁ = chol(MᵀM)`, `Q₁ = M R₁⁻¹`, then once more on
/// `Q₁` — two Gram products and two triangular products, all at GEMM speed. When `M` is
/// too ill-conditioned for that (or rank-deficient), Householder QR from LAPACK. `Q`
/// takes the place of `M`: no other `l × m` matrix is allocated on the Cholesky path.
pub fn qr(mut mt: DMatrix<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
    let Some((linv1, r1)) = cholesky_qr(&mt) else {
        return householder_qr(&mt);
    };
    left_multiply_in_place(&linv1, &mut mt); // Q₁ = M R₁⁻¹
    let (q, r2) = match cholesky_qr(&mt) {
        Some((linv2, r2)) => {
            left_multiply_in_place(&linv2, &mut mt);
            (mt, r2)
        }
        // Q₁ too ill-conditioned for a second round (in theory only): Householder on it
        None => householder_qr(&mt),
    };
    (q, r2 * r1)
}

/// One round of Cholesky-QR: `(R⁻ᵀ, R)` with `R = chol(MᵀM)`, so that `Qt = R⁻ᵀ·Mt`; or
/// `None` when the Gram matrix is numerically singular.
fn cholesky_qr(mt: &DMatrix<f64>) -> Option<(DMatrix<f64>, DMatrix<f64>)> {
    let l = mt.nrows();
    if l == 0 || l > mt.ncols() {
        return None;
    }
    let g = gram(mt);
    let chol = g.cholesky()?;
    let lower = chol.l();
    // The pivots are the diagonal of R; their spread bounds cond(M). Past ~1e6 the
    // squared condition number of the Gram matrix leaves too few digits: use Householder.
    let diag = lower.diagonal();
    let (lo, hi) = diag.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &d| {
        (lo.min(d), hi.max(d))
    });
    if lo.is_nan() || lo <= hi * 1e-6 {
        return None;
    }
    let linv = lower.solve_lower_triangular(&DMatrix::identity(l, l))?;
    Some((linv, lower.transpose()))
}

/// Householder QR for the matrices Cholesky-QR refuses: LAPACK (geqrf + orgqr) for a
/// tall `M`; nalgebra's own for a wide one (fewer terms than samples: tiny problems),
/// which LAPACK's driver refuses.
fn householder_qr(mt: &DMatrix<f64>) -> (DMatrix<f64>, DMatrix<f64>) {
    use nalgebra_lapack::QrDecomposition;
    let (l, m) = mt.shape();
    if l == 0 || m == 0 {
        return (DMatrix::zeros(0, m), DMatrix::zeros(0, l));
    }
    if m < l {
        let (q, r) = mt.transpose().qr().unpack();
        return (q.transpose(), r);
    }
    let qr = nalgebra_lapack::QR::new(mt.transpose()).expect("LAPACK QR of a tall matrix");
    (qr.q().transpose(), qr.r())
}

/// Eigen-decomposition of a symmetric matrix, eigenvalues in descending order (columns
/// of the returned vectors follow them).
pub fn symmetric_eigen_desc(x: DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    let n = x.nrows();
    let eig = SymmetricEigen::new(x);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let values = order.iter().map(|&i| eig.eigenvalues[i]).collect();
    let vectors = DMatrix::from_fn(n, n, |r, c| eig.eigenvectors[(r, order[c])]);
    (values, vectors)
}

/// Thin SVD of a small matrix: `(U, S)` with singular values in descending order.
pub fn svd_desc(k: DMatrix<f64>) -> (DMatrix<f64>, Vec<f64>) {
    let (rows, cols) = k.shape();
    let svd = k.svd(true, false);
    let u = svd.u.expect("U was requested");
    let n = rows.min(cols);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| svd.singular_values[b].total_cmp(&svd.singular_values[a]));
    let s = order.iter().map(|&i| svd.singular_values[i]).collect();
    let u = DMatrix::from_fn(rows, n, |r, c| u[(r, order[c])]);
    (u, s)
}

/// Safe wrappers of the two BLAS level-3 calls topicd uses, on column-major slices.
mod blas {
    use std::ffi::c_int;

    const COL_MAJOR: c_int = 102;
    const NO_TRANS: c_int = 111;
    const TRANS: c_int = 112;
    const UPPER: c_int = 121;

    unsafe extern "C" {
        fn cblas_dgemm(
            order: c_int,
            ta: c_int,
            tb: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: f64,
            a: *const f64,
            lda: c_int,
            b: *const f64,
            ldb: c_int,
            beta: f64,
            c: *mut f64,
            ldc: c_int,
        );
        fn cblas_dsyrk(
            order: c_int,
            uplo: c_int,
            trans: c_int,
            n: c_int,
            k: c_int,
            alpha: f64,
            a: *const f64,
            lda: c_int,
            beta: f64,
            c: *mut f64,
            ldc: c_int,
        );
    }

    fn int(x: usize) -> c_int {
        c_int::try_from(x).expect("matrix dimension beyond the BLAS integer range")
    }

    /// `C = op(A)·op(B)` with `op(A)` `m × k` and `op(B)` `k × n` (leading dimensions given).
    #[allow(clippy::too_many_arguments)]
    pub fn gemm(
        trans_a: bool,
        trans_b: bool,
        m: usize,
        n: usize,
        k: usize,
        a: &[f64],
        lda: usize,
        b: &[f64],
        ldb: usize,
        c: &mut [f64],
        ldc: usize,
    ) {
        let (a_rows, a_cols) = if trans_a { (k, m) } else { (m, k) };
        let (b_rows, b_cols) = if trans_b { (n, k) } else { (k, n) };
        assert!(lda >= a_rows.max(1) && ldb >= b_rows.max(1) && ldc >= m.max(1));
        assert!(a_cols == 0 || a.len() >= lda * (a_cols - 1) + a_rows);
        assert!(b_cols == 0 || b.len() >= ldb * (b_cols - 1) + b_rows);
        assert!(n == 0 || c.len() >= ldc * (n - 1) + m);
        let t = |x: bool| if x { TRANS } else { NO_TRANS };
        // SAFETY: the asserts above keep every access inside the slices.
        unsafe {
            cblas_dgemm(
                COL_MAJOR,
                t(trans_a),
                t(trans_b),
                int(m),
                int(n),
                int(k),
                1.0,
                a.as_ptr(),
                int(lda),
                b.as_ptr(),
                int(ldb),
                0.0,
                c.as_mut_ptr(),
                int(ldc),
            )
        }
    }

    /// Upper triangle of `C = A·Aᵀ` for `A` `n × k` (leading dimension `n`), `C` `n × n`.
    pub fn syrk_upper(n: usize, k: usize, a: &[f64], c: &mut [f64]) {
        assert!(a.len() >= n * k && c.len() >= n * n);
        // SAFETY: as above.
        unsafe {
            cblas_dsyrk(
                COL_MAJOR,
                UPPER,
                NO_TRANS,
                int(n),
                int(k),
                1.0,
                a.as_ptr(),
                int(n.max(1)),
                0.0,
                c.as_mut_ptr(),
                int(n.max(1)),
            )
        }
    }
}

unsafe extern "C" {
    fn openblas_set_num_threads(n: std::ffi::c_int);
    fn openblas_get_num_threads() -> std::ffi::c_int;
    fn openblas_get_config() -> *const std::ffi::c_char;
    fn openblas_get_parallel() -> std::ffi::c_int;
}

/// Set the number of threads OpenBLAS may use inside one call. topicd parallelises above
/// BLAS (rayon over blocks and documents), so it sets 1: OpenBLAS's own threading on small
/// machines made gensim up to 10× slower.
pub fn set_blas_threads(n: usize) {
    let n = std::ffi::c_int::try_from(n.max(1)).unwrap_or(1);
    // SAFETY: plain setter of OpenBLAS, callable at any time.
    unsafe { openblas_set_num_threads(n) }
}

/// The BLAS/LAPACK library in use and its threading, for `topicd --version` and logs.
pub fn blas_description() -> String {
    // SAFETY: OpenBLAS returns a pointer to a static NUL-terminated string and two ints.
    let (config, threads, parallel) = unsafe {
        (
            std::ffi::CStr::from_ptr(openblas_get_config())
                .to_string_lossy()
                .trim()
                .to_string(),
            openblas_get_num_threads(),
            openblas_get_parallel(),
        )
    };
    let model = match parallel {
        0 => "sequential build",
        1 => "pthreads build",
        2 => "OpenMP build",
        _ => "unknown threading",
    };
    format!("{config} ({model}, {threads} BLAS thread(s) per call)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_mut_are_the_listed_columns() {
        let mut values: Vec<f64> = (0..12).map(f64::from).collect();
        let columns = columns_mut(&mut values, 3, &[0, 2, 3]);
        let seen: Vec<Vec<f64>> = columns.iter().map(|c| c.to_vec()).collect();
        assert_eq!(seen, [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0], [9.0, 10.0, 11.0]]);
    }

    fn tall(m: usize, l: usize, seed: u64) -> DMatrix<f64> {
        // a deterministic, well-spread matrix (transposed storage: l × m)
        let mut x = seed;
        DMatrix::from_fn(l, m, |_, _| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        })
    }

    fn assert_qr(mt: &DMatrix<f64>, tol: f64) {
        let (qt, r) = qr(mt.clone());
        let k = qt.nrows();
        let ident = &qt * qt.transpose();
        assert!(
            (ident - DMatrix::identity(k, k)).amax() < tol,
            "Q not orthonormal"
        );
        let rebuilt = r.transpose() * &qt; // Mt = Rᵀ Qt
        assert!(
            (rebuilt - mt).amax() < tol * mt.amax().max(1.0),
            "QR does not rebuild M"
        );
    }

    #[test]
    fn qr_of_a_tall_matrix_is_orthonormal_and_exact() {
        assert_qr(&tall(5000, 30, 1), 1e-12);
    }

    #[test]
    fn qr_of_a_rank_deficient_matrix_falls_back_to_householder() {
        let mut mt = tall(300, 10, 2);
        let row = mt.row(0).into_owned();
        mt.set_row(3, &(row * 2.0)); // column 3 of M = 2 × column 0
        assert_qr(&mt, 1e-10);
    }

    #[test]
    fn the_product_in_place_is_the_same_bits() {
        let mt = tall(3 * BLOCK + 77, 12, 4);
        let rt = tall(12, 12, 5);
        let mut in_place = mt.clone();
        left_multiply_in_place(&rt, &mut in_place);
        let bits = |m: &DMatrix<f64>| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&in_place), bits(&left_multiply(&rt, &mt)));
    }

    #[test]
    fn qr_of_a_wide_matrix_keeps_min_dimension() {
        let mt = tall(4, 9, 3); // M is 4 × 9
        let (qt, r) = qr(mt.clone());
        assert_eq!(qt.shape(), (4, 4));
        assert_eq!(r.shape(), (4, 9));
        assert!((r.transpose() * &qt - &mt).amax() < 1e-12);
    }

    #[test]
    fn gram_does_not_depend_on_block_boundaries() {
        let mt = tall(3 * BLOCK + 17, 5, 4);
        let direct = &mt * mt.transpose();
        assert!((gram(&mt) - direct).amax() < 1e-9);
    }

    #[test]
    fn eigen_and_svd_come_sorted() {
        let a = tall(6, 6, 5);
        let sym = &a * a.transpose();
        let (vals, vecs) = symmetric_eigen_desc(sym.clone());
        assert!(vals.windows(2).all(|w| w[0] >= w[1]));
        let rebuilt = &vecs * DMatrix::from_diagonal(&vals.clone().into()) * vecs.transpose();
        assert!((rebuilt - sym).amax() < 1e-12);
        let (u, s) = svd_desc(a.clone());
        assert!(s.windows(2).all(|w| w[0] >= w[1]));
        assert!((u.transpose() * &u - DMatrix::identity(6, 6)).amax() < 1e-12);
    }
}
