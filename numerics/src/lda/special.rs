//! The special functions of variational LDA: digamma ψ, trigamma ψ′, ln Γ, and
//! `exp(ψ(x))`, the one the E-step evaluates K times per document per iteration.
//!
//! LDA meets mostly small arguments (a prior of 1/K plus a little) and moderate ones, and
//! evaluates them by the million, so ψ and ln Γ avoid loops of recurrence steps:
//! - below 1, one recurrence step and the fit on `[1, 2]`;
//! - on `[1, 16)`, Chebyshev fits of degree 20 on `[1,2]`, `[2,4]`, `[4,8]`, `[8,16]`
//!   (error under 5e-16), evaluated as polynomials by Estrin's scheme, the interval picked
//!   from the exponent bits;
//! - from 16 up, the asymptotic series (Bernoulli numbers), converged to ~1e-17 there.
//!
//! ψ′ is rarely needed (prior updates) and keeps the simple shift-and-series scheme.
//!
//! `exp ψ` of a slice ([`exp_digamma_into`], [`exp_digamma_in_place`]) goes four arguments
//! at a time in AVX2 registers where the CPU has them (`lanes`), with the same bits.

#[cfg(target_arch = "x86_64")]
mod lanes;

/// Where the asymptotic series take over.
const SERIES_FROM: f64 = 16.0;

/// `Σ c_j t^j` by Estrin's scheme: a tree of independent multiply-adds, five levels deep
/// instead of Horner's chain of twenty.
#[inline]
fn estrin(c: &[f64; 21], t: f64) -> f64 {
    let (t2, t4) = (t * t, t * t * t * t);
    let (t8, t16) = (t4 * t4, t4 * t4 * t4 * t4);
    let pair = |i: usize| c[i] + c[i + 1] * t;
    let quad = |i: usize| pair(i) + pair(i + 2) * t2;
    let octet = |i: usize| quad(i) + quad(i + 4) * t4;
    let low = octet(0) + octet(8) * t8;
    let high = quad(16) + c[20] * t4;
    low + high * t16
}

/// A function tabulated on `[1, 16)`: the octave `[2^i, 2^(i+1))` of `x` picks the fit.
#[inline]
fn tabulated(tables: &[[f64; 21]; 4], x: f64) -> f64 {
    debug_assert!((1.0..SERIES_FROM).contains(&x));
    let octave = ((x.to_bits() >> 52) & 0x7ff) as usize - 1023;
    let low = (1u64 << octave) as f64;
    estrin(&tables[octave], 2.0 * x / low - 3.0)
}

/// ψ(x) = d/dx ln Γ(x), for x > 0.
///
/// ```text
/// ψ(x) = ψ(x + 1) − 1/x;   ψ(y) ≈ ln y − 1/(2y) − Σ B_{2j}/(2j y^{2j})   (y ≥ 16)
/// ```
pub fn digamma(x: f64) -> f64 {
    if x < 1.0 {
        tabulated(&PSI_TABLES, x + 1.0) - 1.0 / x
    } else if x < SERIES_FROM {
        tabulated(&PSI_TABLES, x)
    } else {
        let inv = 1.0 / x;
        let inv2 = inv * inv;
        // B2/2 = 1/12, B4/4 = -1/120, B6/6 = 1/252, B8/8 = -1/240, B10/10 = 1/132
        let series = inv2
            * (1.0 / 12.0
                - inv2
                    * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 / 132.0))));
        x.ln() - 0.5 * inv - series
    }
}

/// ln Γ(x), for x > 0.
///
/// ```text
/// ln Γ(x) = ln Γ(x + 1) − ln x;   ln Γ(y) ≈ (y − ½) ln y − y + ½ ln 2π + Σ B_{2j} / (2j(2j−1) y^{2j−1})
/// ```
pub fn ln_gamma(x: f64) -> f64 {
    if x < 1.0 {
        tabulated(&LN_GAMMA_TABLES, x + 1.0) - x.ln()
    } else if x < SERIES_FROM {
        tabulated(&LN_GAMMA_TABLES, x)
    } else {
        let inv = 1.0 / x;
        let inv2 = inv * inv;
        // B2/2 = 1/12, B4/12 = -1/360, B6/30 = 1/1260, B8/56 = -1/1680, B10/90 = 1/1188
        let series = inv
            * (1.0 / 12.0
                - inv2
                    * (1.0 / 360.0
                        - inv2 * (1.0 / 1260.0 - inv2 * (1.0 / 1680.0 - inv2 / 1188.0))));
        (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + series
    }
}

/// `(ψ(x), ln Γ(x))` together, sharing the range reduction and the powers of `t` (the
/// bound needs both for every `λ_kw`).
pub fn digamma_and_ln_gamma(x: f64) -> (f64, f64) {
    if x < SERIES_FROM {
        let (y, shift_psi, shift_lng) = if x < 1.0 {
            (x + 1.0, -1.0 / x, -x.ln())
        } else {
            (x, 0.0, 0.0)
        };
        let octave = ((y.to_bits() >> 52) & 0x7ff) as usize - 1023;
        let t = 2.0 * y / (1u64 << octave) as f64 - 3.0;
        // both inlined: the powers of t are computed once
        let (psi, lng) = (
            estrin(&PSI_TABLES[octave], t),
            estrin(&LN_GAMMA_TABLES[octave], t),
        );
        (psi + shift_psi, lng + shift_lng)
    } else {
        (digamma(x), ln_gamma(x))
    }
}

/// The `E_n` of `exp ψ(y) = y · Σ_n E_n y^−n` (the exponential of ψ's series, in exact
/// fractions).
#[rustfmt::skip]
const EXP_PSI_SERIES: [f64; 9] = [
    1.0, -1.0 / 2.0, 1.0 / 24.0, 1.0 / 48.0, 23.0 / 5760.0, -17.0 / 3840.0,
    -10099.0 / 2903040.0, 2501.0 / 1161216.0, 795697.0 / 199065600.0,
];

/// `exp(ψ(x))` for x > 0; from 16 up without a logarithm or an exponential:
///
/// ```text
/// exp ψ(y) = y · Σ_n E_n y^−n = y − ½ + 1/(24y) + 1/(48y²) + 23/(5760y³) − …   (y ≥ 16)
/// ```
#[inline]
pub fn exp_digamma(x: f64) -> f64 {
    if x < SERIES_FROM {
        return exp(digamma(x));
    }
    let inv = 1.0 / x;
    x * EXP_PSI_SERIES
        .iter()
        .rev()
        .fold(0.0, |acc, &e| acc * inv + e)
}

/// `dst[i] = exp_digamma(src[i])`: the same bits, four at a time in AVX2 registers where the
/// CPU has them (the E-step's `K` per document per iteration, the columns of exp E[log β]).
pub fn exp_digamma_into(src: &[f64], dst: &mut [f64]) {
    assert_eq!(src.len(), dst.len(), "exp_digamma_into: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { lanes::exp_digamma_into(src, dst) };
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = exp_digamma(s);
    }
}

/// [`exp_digamma_into`] in place.
pub fn exp_digamma_in_place(values: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { lanes::exp_digamma_in_place(values) };
    }
    for v in values {
        *v = exp_digamma(*v);
    }
}

/// ln 2 split so that `n · LN2_HI` is exact (fdlibm's constants).
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
/// The rest of ln 2.
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
/// `1.5·2⁵²`: adding and subtracting it rounds to the nearest integer (no SSE4.1 `round`
/// on the baseline target).
const SHIFTER: f64 = 6_755_399_441_055_744.0;

/// `e^x`, inlined (the E-step calls it K times per document per iteration): `x = n ln 2 + r`
/// with `|r| ≤ ½ ln 2`, `e^r` by its Taylor polynomial to degree 13 (truncation under 1e-17),
/// scaled by `2^n` through the exponent bits. Within 2 ulps of the correctly rounded value;
/// arguments whose result is huge or subnormal go to the library's `exp`.
#[inline]
pub fn exp(x: f64) -> f64 {
    if !(-700.0..=700.0).contains(&x) {
        return x.exp();
    }
    let n = (x * std::f64::consts::LOG2_E + SHIFTER) - SHIFTER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let r2 = r * r;
    let r4 = r2 * r2;
    // 1/k! for k = 0..=13, paired for a shallow evaluation
    let p = |a: f64, b: f64| a + b * r;
    let low = (p(1.0, 1.0) + p(1.0 / 2.0, 1.0 / 6.0) * r2)
        + (p(1.0 / 24.0, 1.0 / 120.0) + p(1.0 / 720.0, 1.0 / 5040.0) * r2) * r4;
    let high = (p(1.0 / 40320.0, 1.0 / 362880.0) + p(1.0 / 3628800.0, 1.0 / 39916800.0) * r2)
        + p(1.0 / 479001600.0, 1.0 / 6227020800.0) * r4;
    let poly = low + high * (r4 * r4);
    let scale = f64::from_bits(((n as i64 + 1023) as u64) << 52);
    poly * scale
}

/// ψ′(x), for x > 0.
///
/// ```text
/// ψ′(x) = ψ′(x + n) + Σ_{i<n} 1/(x+i)²;   ψ′(y) ≈ 1/y + 1/(2y²) + Σ B_{2j}/y^{2j+1}
/// ```
pub fn trigamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < SERIES_FROM {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // B2 = 1/6, B4 = -1/30, B6 = 1/42, B8 = -1/30, B10 = 5/66
    let series = inv
        * inv2
        * (1.0 / 6.0
            - inv2 * (1.0 / 30.0 - inv2 * (1.0 / 42.0 - inv2 * (1.0 / 30.0 - inv2 * 5.0 / 66.0))));
    shift + inv + 0.5 * inv2 + series
}

/// ψ and ln Γ on [1, 2], [2, 4], [4, 8], [8, 16]: Chebyshev fits of degree 20 (fitted with
/// mpmath at 40 digits), rewritten as polynomials in `t ∈ [−1, 1]` (at 50 digits; the
/// coefficients stay small, so the rewriting costs no accuracy).
#[rustfmt::skip]
#[allow(clippy::excessive_precision, clippy::approx_constant)]
const PSI_TABLES: [[f64; 21]; 4] = [
    [0.03648997397857652, 0.46740110027233733, -0.10359958052928922, 0.02935606320855599, -0.009047525590336525, 0.0028941532781850943, -0.0009430973035200641, 0.00031035808700957874, -0.0001026903798266152, 3.408252962606949e-05, -1.1332036692593472e-05, 3.772331551392476e-06, -1.2563223045561923e-06, 4.1720544460811873e-07, -1.3902420988067782e-07, 4.807607787569952e-08, -1.6023597952493624e-08, 3.956307634782942e-09, -1.3187006261204151e-09, 1.0549043240872727e-09, -3.5163130859121743e-10],
    [0.9227843350984671, 0.39493406684822524, -0.07705690315959389, 0.01982323371122425, -0.0056777551433986025, 0.0017180619825970483, -0.000536777381305675, 0.00017110621617785047, -5.5267832157959455e-05, 1.8012529451745148e-05, -5.907321342015833e-06, 1.946245937640596e-06, -6.43140918214749e-07, 2.123401254179768e-07, -7.044536224502511e-08, 2.4272355762957037e-08, -8.070348172527948e-09, 1.991846337734346e-09, -6.627726239080883e-10, 5.287252909149913e-10, -1.761339099822445e-10],
    [1.7061176684318005, 0.36264591147423003, -0.06557946449022879, 0.015770437590384358, -0.004255460894756555, 0.0012217359019686515, -0.00036447070977724906, 0.00011156719094152332, -3.478154328482366e-05, 1.099038434865011e-05, -3.508484595778886e-06, 1.1291031424764991e-06, -3.655931810294748e-07, 1.1862152625003856e-07, -3.875493903738562e-08, 1.3152344816607168e-08, -4.324300676049553e-09, 1.0683721769614762e-09, -3.5202995792283047e-10, 2.7464578091514744e-10, -9.100132677928523e-11],
    [2.442661679975812, 0.3476074914870732, -0.06037764295199118, 0.013974327798114437, -0.0036363738741533687, 0.0010087107451406951, -0.0002912909456062007, 8.646833394205532e-05, -2.6186610687945847e-05, 8.051535852398076e-06, -2.505050299349987e-06, 7.868956570208606e-07, -2.490673126463759e-07, 7.91392748144197e-08, -2.534363737889226e-08, 8.413086670666639e-09, -2.718511771506178e-09, 6.749229519071917e-10, -2.1877590642944417e-10, 1.6286091051465204e-10, -5.330107928130694e-11],
];
#[rustfmt::skip]
#[allow(clippy::excessive_precision, clippy::approx_constant)]
const LN_GAMMA_TABLES: [[f64; 21]; 4] = [
    [-0.12078223763524522, 0.01824498698928842, 0.11685027506808486, -0.017266596754893303, 0.003669507901051724, -0.0009047525587774183, 0.00024117944007714161, -6.73640956640644e-05, 1.939737894878507e-05, -5.7050071058003075e-06, 1.704132056930297e-06, -5.151386162494996e-07, 1.5716777868317938e-07, -4.8225224591327976e-08, 1.491809990103664e-08, -4.757499050282211e-09, 1.48712916485146e-09, -3.7297572593024853e-10, 1.1708511224652774e-10, -7.853220799917847e-11, 2.4932914252223764e-11],
    [0.6931471805599453, 0.9227843350984672, 0.19746703342411318, -0.025685634386543085, 0.004955808427788264, -0.0011355510284230146, 0.0002863436639948667, -7.668248560384313e-05, 2.138827553091083e-05, -6.140856218494791e-06, 1.8012585283051812e-06, -5.37075336241804e-07, 1.6217444176827799e-07, -4.9377341510646305e-08, 1.5185081314676905e-08, -4.8199404653175754e-09, 1.5017535042200437e-09, -3.762413629112971e-10, 1.1785544593339972e-10, -7.879177018717482e-11, 2.4994641488399916e-11],
    [4.787491742782046, 3.412235336863601, 0.3626459114742306, -0.04371964299349805, 0.007885218795173874, -0.0017021843576372775, 0.00040724530089141344, -0.00010413449115395395, 2.7891796201682928e-05, -7.729217349607015e-06, 2.1980826113894877e-06, -6.379539579648886e-07, 1.881707764525627e-07, -5.614688950313634e-08, 1.69643702763668e-08, -5.2950368185564485e-09, 1.6283415961571915e-09, -4.069693036673797e-10, 1.2610924092437554e-10, -8.242897513481089e-11, 2.5982129798080697e-11],
    [17.502307845873887, 9.770646719903247, 0.6952149829741471, -0.08050352393600253, 0.013974327798093242, -0.0029090990990116054, 0.0006724738303660917, -0.0001664519720196992, 4.32341651955325e-05, -1.163847665431804e-05, 3.2206209874379187e-06, -9.109832442585331e-07, 2.622834111316791e-07, -7.652100797705891e-08, 2.2632562889617288e-08, -6.9079416638374075e-09, 2.0850982541493253e-09, -5.204142858963321e-10, 1.5854897905143918e-10, -9.921327848598796e-11, 3.0856465606728894e-11],
];

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) {
        assert!((a - b).abs() <= rel * b.abs().max(1e-300), "{a} vs {b}");
    }

    #[test]
    fn digamma_matches_known_values() {
        // ψ(1) = −γ_E, ψ(1/2) = −γ_E − 2 ln 2, ψ(n+1) = H_n − γ_E
        let euler = 0.577_215_664_901_532_9;
        close(digamma(1.0), -euler, 1e-14);
        close(digamma(0.5), -euler - 2.0 * 2f64.ln(), 1e-14);
        close(
            digamma(11.0),
            (1..=10).map(|i| 1.0 / i as f64).sum::<f64>() - euler,
            1e-14,
        );
        close(digamma(0.01), -100.560_885_457_868_68, 1e-14);
        close(digamma(0.999), -0.578_861_802_108_645_4, 1e-14);
        close(digamma(1e-8), -100_000_000.577_215_65, 1e-14);
        close(digamma(1e6), (1e6f64).ln() - 0.5e-6, 1e-14);
    }

    #[test]
    fn trigamma_and_ln_gamma_match_known_values() {
        close(trigamma(1.0), std::f64::consts::PI.powi(2) / 6.0, 1e-13);
        close(trigamma(0.5), std::f64::consts::PI.powi(2) / 2.0, 1e-13);
        close(ln_gamma(1.0).abs() + 1.0, 1.0, 1e-14);
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-14);
        close(ln_gamma(10.0), (362_880f64).ln(), 1e-14);
        close(ln_gamma(0.01), 4.599_479_878_042_022, 1e-14);
        close(ln_gamma(0.7), 0.260_867_246_531_666_5, 1e-14);
        close(ln_gamma(1000.5), 5_908.674_175_848_678, 1e-14);
    }

    #[test]
    fn the_fits_join_without_gaps() {
        for &edge in &[1.0f64, 2.0, 4.0, 8.0, 16.0] {
            let (below, above) = (edge * (1.0 - 1e-15), edge);
            assert!(
                (digamma(below) - digamma(above)).abs() < 1e-14,
                "ψ at {edge}"
            );
            assert!(
                (ln_gamma(below) - ln_gamma(above)).abs() < 1e-13,
                "ln Γ at {edge}"
            );
        }
        // ψ(x+1) = ψ(x) + 1/x across the whole range
        for &x in &[0.003, 0.5, 1.5, 3.3, 7.7, 12.0, 20.0, 1e4] {
            assert!(
                (digamma(x + 1.0) - digamma(x) - 1.0 / x).abs() < 1e-12 * (1.0 + 1.0 / x),
                "{x}"
            );
            let tolerance = 1e-12 + 1e-15 * ln_gamma(x + 1.0).abs();
            assert!(
                (ln_gamma(x + 1.0) - ln_gamma(x) - x.ln()).abs() < tolerance,
                "{x}"
            );
        }
    }

    #[test]
    fn digamma_and_ln_gamma_together_equal_each_alone() {
        for &x in &[1e-6, 0.3, 0.999, 1.0, 3.7, 15.99, 16.0, 500.0] {
            assert_eq!(digamma_and_ln_gamma(x), (digamma(x), ln_gamma(x)), "{x}");
        }
    }

    #[test]
    fn exp_is_within_two_ulps_of_the_library() {
        let mut x = -745.0f64;
        while x < 710.0 {
            let (ours, libm) = (exp(x), x.exp());
            let ulps = (ours.to_bits() as i64 - libm.to_bits() as i64).abs();
            assert!(ulps <= 2, "exp({x}) = {ours} vs {libm}");
            x += 0.012_345_6;
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
    }

    #[test]
    fn exp_digamma_agrees_with_its_definition() {
        for &x in &[1e-3, 0.01, 0.3, 1.0, 2.5, 9.9, 10.0, 10.1, 30.0, 1234.5] {
            close(exp_digamma(x), digamma(x).exp(), 1e-13);
        }
    }

    /// The AVX2 lanes give the scalar function's bits for every kind of argument: each path
    /// (below 1, each octave of the fit, the series), their borders, arguments whose ψ goes
    /// to the library's `exp`, zero, NaN and infinity; in groups of four, mixed,
    /// with remainders of every length, in place and not.
    #[test]
    fn exp_digamma_in_lanes_is_the_scalar_bits() {
        #[cfg(target_arch = "x86_64")]
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("no AVX2 on this CPU: the lanes are not used, nothing to compare");
        }
        let mut special = vec![
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::MIN_POSITIVE,
            5e-324,
            1e-300,
            1.0 / 700.0,
            1.0 / 701.0,
            0.0014,
            0.00143,
            1e308,
        ];
        for border in [1.0f64, 2.0, 4.0, 8.0, 16.0] {
            special.extend([border.next_down(), border, border.next_up()]);
        }
        // log-uniform over 1e-6 .. 1e6, and uniform where LDA's values mostly are
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut uniform = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut values = special.clone();
        for _ in 0..200_000 {
            values.push(10f64.powf(12.0 * uniform() - 6.0));
            values.push(20.0 * uniform());
        }
        // the special values between ordinary ones, so that groups mix paths
        for (i, &v) in special.iter().enumerate() {
            values.insert(7 * i + 3, v);
        }
        let bits = |xs: &[f64]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let scalar: Vec<f64> = values.iter().map(|&x| exp_digamma(x)).collect();
        let mut lanes = vec![0.0; values.len()];
        exp_digamma_into(&values, &mut lanes);
        assert_eq!(bits(&lanes), bits(&scalar));
        let mut in_place = values.clone();
        exp_digamma_in_place(&mut in_place);
        assert_eq!(bits(&in_place), bits(&scalar));
        for len in 0..=9 {
            let mut part = vec![0.0; len];
            exp_digamma_into(&values[5..5 + len], &mut part);
            assert_eq!(bits(&part), bits(&scalar[5..5 + len]), "length {len}");
        }
    }
}
