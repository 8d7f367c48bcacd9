//! The dots of a sweep, `t_k = Σ_n r_n β_kn`, with eight running sums, so that the
//! additions pipeline and vectorise (a single running sum waits on every addition):
//!
//! ```text
//! s_l = Σ_{n ≡ l mod 8} r_n β_kn   (l = 0..8, in order of n, over the multiples of eight)
//! t_k = ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7)) + tail   (the tail from −0.0, in order)
//! ```
//!
//! The order is fixed, so is the result; the running sums can be carried from one block
//! of words to the next ([`accumulate`], then [`finish`]).

/// The eight running sums of one dot.
pub(super) type Lanes = [f64; 8];

/// Add `Σ a_n b_jn` over `a` (a multiple of eight long) to each `lanes[j]`.
#[inline(always)]
pub(super) fn accumulate<const N: usize>(
    a: &[f64],
    b: [&[f64]; N],
    mut lanes: [Lanes; N],
) -> [Lanes; N] {
    for (i, x) in a.chunks_exact(8).enumerate() {
        for (sums, b) in lanes.iter_mut().zip(b) {
            let y = &b[i * 8..i * 8 + 8];
            for l in 0..8 {
                sums[l] += x[l] * y[l];
            }
        }
    }
    lanes
}

/// [`accumulate`] in AVX2 registers: lanes 0–3 and 4–7 of each dot are two registers,
/// added the same way in the same order, so the sums are the same bits; the dots'
/// additions overlap.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) fn accumulate_avx2<const N: usize>(
    a: &[f64],
    b: [&[f64]; N],
    mut lanes: [Lanes; N],
) -> [Lanes; N] {
    use std::arch::x86_64::{
        _mm256_add_pd, _mm256_loadu_pd, _mm256_mul_pd, _mm256_setzero_pd, _mm256_storeu_pd,
    };
    let n = b.iter().fold(a.len(), |n, b| n.min(b.len())) / 8 * 8;
    // plain loops: a closure (`array::from_fn`) is not always inlined into an AVX2 build
    let mut low = [_mm256_setzero_pd(); N];
    let mut high = [_mm256_setzero_pd(); N];
    for (j, sums) in lanes.iter().enumerate() {
        // SAFETY: each Lanes is eight f64: two unaligned loads of four.
        unsafe {
            low[j] = _mm256_loadu_pd(&sums[0]);
            high[j] = _mm256_loadu_pd(&sums[4]);
        }
    }
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= the length of every slice.
        unsafe {
            let x = a.as_ptr().add(i);
            let (x0, x1) = (_mm256_loadu_pd(x), _mm256_loadu_pd(x.add(4)));
            for j in 0..N {
                let y = b[j].as_ptr().add(i);
                low[j] = _mm256_add_pd(low[j], _mm256_mul_pd(x0, _mm256_loadu_pd(y)));
                high[j] = _mm256_add_pd(high[j], _mm256_mul_pd(x1, _mm256_loadu_pd(y.add(4))));
            }
        }
    }
    for (j, sums) in lanes.iter_mut().enumerate() {
        // SAFETY: each Lanes is eight f64: two unaligned stores of four.
        unsafe {
            _mm256_storeu_pd(&mut sums[0], low[j]);
            _mm256_storeu_pd(&mut sums[4], high[j]);
        }
    }
    lanes
}

/// The dot from its running sums and its tail.
#[inline(always)]
pub(super) fn finish(s: Lanes, tail: f64) -> f64 {
    ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail
}

/// `Σ a_i b_i` from `−0.0` in order (a dot's tail), a plain loop so that it is inlined into
/// the AVX2 build too (an iterator's closures need not be).
#[inline(always)]
pub(super) fn tail_dot(a: &[f64], b: &[f64]) -> f64 {
    let mut sum = -0.0;
    for (x, y) in a.iter().zip(b) {
        sum += x * y;
    }
    sum
}
