//! [`exp_digamma`](super::exp_digamma) four arguments at a time in AVX2 registers.
//!
//! Each lane does the scalar function's IEEE operations in the same order (nothing is fused:
//! `_mm256_mul_pd` then `_mm256_add_pd`, as Rust never contracts `a * b + c`), so each result
//! is the same bits; the branches become both paths and a blend. What differs is only how
//! the lanes get their operands:
//! - the fit's coefficients, picked per lane by the octave of the argument, come from a
//!   register of the four octaves' coefficient through a cross-lane permute;
//! - `2ⁿ` of [`exp`](super::exp) is read from the bits of the rounding trick's sum
//!   (`n + 1.5·2⁵²` holds `n` in its low bits) instead of a conversion to an integer.
//!
//! A group of four with an argument the fast paths do not cover (not in `(0, ∞)`, or a ψ
//! whose exponential goes to the library's `exp`) is done by the scalar function.

use std::arch::x86_64::{
    __m256d, __m256i, _CMP_GE_OQ, _CMP_GT_OQ, _CMP_LE_OQ, _CMP_LT_OQ, _mm256_add_epi64,
    _mm256_add_pd, _mm256_and_pd, _mm256_and_si256, _mm256_andnot_pd, _mm256_blendv_pd,
    _mm256_castpd_ps, _mm256_castpd_si256, _mm256_castps_pd, _mm256_castsi256_pd, _mm256_cmp_pd,
    _mm256_div_pd, _mm256_loadu_pd, _mm256_movemask_pd, _mm256_mul_pd, _mm256_or_si256,
    _mm256_permutevar8x32_ps, _mm256_set1_epi64x, _mm256_set1_pd, _mm256_setzero_pd,
    _mm256_slli_epi64, _mm256_srli_epi64, _mm256_storeu_pd, _mm256_sub_epi64, _mm256_sub_pd,
};

use super::{EXP_PSI_SERIES, LN2_HI, LN2_LO, PSI_TABLES, SERIES_FROM, SHIFTER, exp_digamma};

/// [`PSI_TABLES`] by coefficient: row `j` holds coefficient `j` of the four octaves.
const PSI_BY_COEFFICIENT: [[f64; 4]; 21] = {
    let mut out = [[0.0; 4]; 21];
    let mut j = 0;
    while j < 21 {
        let mut octave = 0;
        while octave < 4 {
            out[j][octave] = PSI_TABLES[octave][j];
            octave += 1;
        }
        j += 1;
    }
    out
};

/// `values[i] = exp_digamma(values[i])` for every `i`.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn exp_digamma_in_place(values: &mut [f64]) {
    let len = values.len();
    let p = values.as_mut_ptr();
    // SAFETY: source and destination are the same `len` values; each group is read whole
    // before it is written.
    unsafe { map(p, p, len) }
}

/// `dst[i] = exp_digamma(src[i])` for every `i` (the lengths must be equal).
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn exp_digamma_into(src: &[f64], dst: &mut [f64]) {
    assert_eq!(src.len(), dst.len(), "exp_digamma_into: lengths differ");
    // SAFETY: both hold `src.len()` values and do not overlap (a shared and a unique borrow).
    unsafe { map(src.as_ptr(), dst.as_mut_ptr(), src.len()) }
}

/// The groups of four in registers, the rest (and any group [`four`] refuses) by the scalar
/// function.
///
/// # Safety
/// AVX2; `src` readable and `dst` writable for `len` values; if they overlap, they are the
/// same.
#[target_feature(enable = "avx2")]
unsafe fn map(src: *const f64, dst: *mut f64, len: usize) {
    let body = len / 4 * 4;
    for i in (0..len).step_by(4) {
        // SAFETY: i < len; i + 4 <= len for the groups of the body (the caller's bounds).
        unsafe {
            let lanes = if i < body {
                four(_mm256_loadu_pd(src.add(i)))
            } else {
                None
            };
            match lanes {
                Some(y) => _mm256_storeu_pd(dst.add(i), y),
                None => {
                    for j in i..(i + 4).min(len) {
                        *dst.add(j) = exp_digamma(*src.add(j));
                    }
                }
            }
        }
    }
}

/// `exp ψ` of four arguments, or `None` where a lane needs the scalar function.
#[target_feature(enable = "avx2")]
fn four(x: __m256d) -> Option<__m256d> {
    let set = _mm256_set1_pd;
    let zero = _mm256_setzero_pd();
    let one = set(1.0);
    let usual = _mm256_and_pd(
        _mm256_cmp_pd::<_CMP_GT_OQ>(x, zero),
        _mm256_cmp_pd::<_CMP_LT_OQ>(x, set(f64::INFINITY)),
    );
    if _mm256_movemask_pd(usual) != 0b1111 {
        return None;
    }
    let inv = _mm256_div_pd(one, x);

    // From 16 up: x · Σ_n E_n x^−n, by Horner from the last term (a fold from 0.0).
    let large = _mm256_cmp_pd::<_CMP_GE_OQ>(x, set(SERIES_FROM));
    let mut acc = zero;
    for &e in EXP_PSI_SERIES.iter().rev() {
        acc = _mm256_add_pd(_mm256_mul_pd(acc, inv), set(e));
    }
    let series = _mm256_mul_pd(x, acc);
    if _mm256_movemask_pd(large) == 0b1111 {
        return Some(series);
    }

    // Below 16: ψ from the fit on y's octave (y = x + 1 below 1, then ψ(x) = ψ(y) − 1/x).
    let below_one = _mm256_cmp_pd::<_CMP_LT_OQ>(x, one);
    let y = _mm256_blendv_pd(x, _mm256_add_pd(x, one), below_one);
    let fitted = tabulated_psi(y);
    let psi = _mm256_blendv_pd(fitted, _mm256_sub_pd(fitted, inv), below_one);
    // exp's own range, on the lanes that use it
    let in_range = _mm256_and_pd(
        _mm256_cmp_pd::<_CMP_GE_OQ>(psi, set(-700.0)),
        _mm256_cmp_pd::<_CMP_LE_OQ>(psi, set(700.0)),
    );
    if _mm256_movemask_pd(_mm256_andnot_pd(large, _mm256_andnot_pd(in_range, usual))) != 0 {
        return None;
    }
    Some(_mm256_blendv_pd(exp(psi), series, large))
}

/// [`tabulated`](super::tabulated) on [`PSI_TABLES`] for `y` in `[1, 16)` (other lanes get a
/// value of no use, from the octave's low two bits).
#[target_feature(enable = "avx2")]
fn tabulated_psi(y: __m256d) -> __m256d {
    let bits = _mm256_castpd_si256(y);
    let exponent_field = _mm256_set1_epi64x(0x7ff0_0000_0000_0000);
    // 2^octave: y with its mantissa cleared (y > 0)
    let low = _mm256_castsi256_pd(_mm256_and_si256(bits, exponent_field));
    let octave = _mm256_and_si256(
        _mm256_sub_epi64(_mm256_srli_epi64::<52>(bits), _mm256_set1_epi64x(1023)),
        _mm256_set1_epi64x(3),
    );
    // as the two 32-bit halves of the f64 the octave picks: 2·octave and 2·octave + 1
    let twice = _mm256_slli_epi64::<1>(octave);
    let pick: __m256i = _mm256_or_si256(
        twice,
        _mm256_slli_epi64::<32>(_mm256_add_epi64(twice, _mm256_set1_epi64x(1))),
    );
    let c = |j: usize| {
        // SAFETY: a row of PSI_BY_COEFFICIENT is four f64.
        let row = unsafe { _mm256_loadu_pd(PSI_BY_COEFFICIENT[j].as_ptr()) };
        _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(row), pick))
    };
    let t = _mm256_sub_pd(
        _mm256_div_pd(_mm256_mul_pd(_mm256_set1_pd(2.0), y), low),
        _mm256_set1_pd(3.0),
    );
    estrin(c, t)
}

/// [`estrin`](super::estrin) lane by lane, the same tree.
#[target_feature(enable = "avx2")]
fn estrin(c: impl Fn(usize) -> __m256d, t: __m256d) -> __m256d {
    let (add, mul) = (_mm256_add_pd, _mm256_mul_pd);
    let t2 = mul(t, t);
    let t4 = mul(mul(mul(t, t), t), t);
    let t8 = mul(t4, t4);
    let t16 = mul(mul(mul(t4, t4), t4), t4);
    let pair = |i: usize| add(c(i), mul(c(i + 1), t));
    let quad = |i: usize| add(pair(i), mul(pair(i + 2), t2));
    let octet = |i: usize| add(quad(i), mul(quad(i + 4), t4));
    let low = add(octet(0), mul(octet(8), t8));
    let high = add(quad(16), mul(c(20), t4));
    add(low, mul(high, t16))
}

/// [`exp`](super::exp) lane by lane, for arguments in `[−700, 700]`.
#[target_feature(enable = "avx2")]
fn exp(x: __m256d) -> __m256d {
    let (add, sub, mul, set) = (_mm256_add_pd, _mm256_sub_pd, _mm256_mul_pd, _mm256_set1_pd);
    let shifted = add(mul(x, set(std::f64::consts::LOG2_E)), set(SHIFTER));
    let n = sub(shifted, set(SHIFTER));
    let r = sub(sub(x, mul(n, set(LN2_HI))), mul(n, set(LN2_LO)));
    let r2 = mul(r, r);
    let r4 = mul(r2, r2);
    let p = |a: f64, b: f64| add(set(a), mul(set(b), r));
    let low = add(
        add(p(1.0, 1.0), mul(p(1.0 / 2.0, 1.0 / 6.0), r2)),
        mul(
            add(
                p(1.0 / 24.0, 1.0 / 120.0),
                mul(p(1.0 / 720.0, 1.0 / 5040.0), r2),
            ),
            r4,
        ),
    );
    let high = add(
        add(
            p(1.0 / 40320.0, 1.0 / 362880.0),
            mul(p(1.0 / 3628800.0, 1.0 / 39916800.0), r2),
        ),
        mul(p(1.0 / 479001600.0, 1.0 / 6227020800.0), r4),
    );
    let poly = add(low, mul(high, mul(r4, r4)));
    // `shifted`'s bits are those of 1.5·2⁵² plus n; shifted by 52, only n + 1023 is left
    let scale = _mm256_castsi256_pd(_mm256_slli_epi64::<52>(_mm256_add_epi64(
        _mm256_castpd_si256(shifted),
        _mm256_set1_epi64x(1023),
    )));
    mul(poly, scale)
}
