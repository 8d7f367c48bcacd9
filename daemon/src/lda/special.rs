//! The special functions of variational LDA: digamma ψ, trigamma ψ′, ln Γ, and
//! `exp(ψ(x))`, the one the E-step evaluates K times per document per iteration.
//!
//! All use the same scheme: shift `x` up with the recurrence until it is large, then an
//! asymptotic series. Accuracy is a few ulps over the range LDA uses (x > 0).

/// Below this the functions shift `x` up with the recurrence.
const SHIFT_TO: f64 = 10.0;

/// ψ(x) = d/dx ln Γ(x), for x > 0.
///
/// ```text
/// ψ(x) = ψ(x + n) − Σ_{i<n} 1/(x+i);   ψ(y) ≈ ln y − 1/(2y) − Σ B_{2j}/(2j y^{2j})
/// ```
pub fn digamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < SHIFT_TO {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // B2/2 = 1/12, B4/4 = -1/120, B6/6 = 1/252, B8/8 = -1/240, B10/10 = 1/132, B12/12 = -691/32760
    let series = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2
                        * (1.0 / 252.0
                            - inv2
                                * (1.0 / 240.0 - inv2 * (1.0 / 132.0 - inv2 * 691.0 / 32760.0)))));
    shift + x.ln() - 0.5 * inv - series
}

/// ψ′(x), for x > 0.
///
/// ```text
/// ψ′(x) = ψ′(x + n) + Σ_{i<n} 1/(x+i)²;   ψ′(y) ≈ 1/y + 1/(2y²) + Σ B_{2j}/y^{2j+1}
/// ```
pub fn trigamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < SHIFT_TO {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // B2 = 1/6, B4 = -1/30, B6 = 1/42, B8 = -1/30, B10 = 5/66, B12 = -691/2730
    let series = inv
        * inv2
        * (1.0 / 6.0
            - inv2
                * (1.0 / 30.0
                    - inv2
                        * (1.0 / 42.0
                            - inv2 * (1.0 / 30.0 - inv2 * (5.0 / 66.0 - inv2 * 691.0 / 2730.0)))));
    shift + inv + 0.5 * inv2 + series
}

/// ln Γ(x), for x > 0.
///
/// ```text
/// ln Γ(x) = ln Γ(x + n) − ln Π_{i<n}(x+i);
/// ln Γ(y) ≈ (y − ½) ln y − y + ½ ln 2π + Σ B_{2j} / (2j(2j−1) y^{2j−1})
/// ```
pub fn ln_gamma(mut x: f64) -> f64 {
    let mut product = 1.0;
    while x < SHIFT_TO {
        product *= x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // B2/2 = 1/12, B4/12 = -1/360, B6/30 = 1/1260, B8/56 = -1/1680, B10/90 = 1/1188,
    // B12/132 = -691/360360
    let series = inv
        * (1.0 / 12.0
            - inv2
                * (1.0 / 360.0
                    - inv2
                        * (1.0 / 1260.0
                            - inv2
                                * (1.0 / 1680.0
                                    - inv2 * (1.0 / 1188.0 - inv2 * 691.0 / 360360.0)))));
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + series - product.ln()
}

/// `exp(ψ(x))` for x > 0, without the logarithm and the exponential of the large-x branch:
///
/// ```text
/// exp ψ(y) ≈ y − ½ + 1/(24y) + 1/(48y²) + 23/(5760y³) − 17/(3840y⁴)
///             − 10099/(2903040y⁵) + 2501/(1161216y⁶)                      (y ≥ 10)
/// exp ψ(x) = exp ψ(x + n) · exp(−Σ_{i<n} 1/(x+i))
/// ```
#[inline]
pub fn exp_digamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < SHIFT_TO {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let large = x - 0.5
        + inv
            * (1.0 / 24.0
                + inv
                    * (1.0 / 48.0
                        + inv
                            * (23.0 / 5760.0
                                - inv
                                    * (17.0 / 3840.0
                                        + inv
                                            * (10099.0 / 2903040.0 - inv * 2501.0 / 1161216.0)))));
    if shift == 0.0 {
        large
    } else {
        large * shift.exp()
    }
}

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
        close(digamma(0.01), -100.560_885_457_868_68, 1e-13);
        close(digamma(1e6), (1e6f64).ln() - 0.5e-6, 1e-14);
    }

    #[test]
    fn trigamma_and_ln_gamma_match_known_values() {
        close(trigamma(1.0), std::f64::consts::PI.powi(2) / 6.0, 1e-13);
        close(trigamma(0.5), std::f64::consts::PI.powi(2) / 2.0, 1e-13);
        close(ln_gamma(1.0).abs() + 1.0, 1.0, 1e-14);
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-14);
        close(ln_gamma(10.0), (362_880f64).ln(), 1e-14);
        close(ln_gamma(0.01), 4.599_479_878_042_022, 1e-13);
        close(ln_gamma(1000.5), 5_908.674_175_848_678, 1e-14);
    }

    #[test]
    fn exp_digamma_agrees_with_its_definition() {
        // the truncated series is good to about 1e-11 relative at the shift point
        for &x in &[1e-3, 0.01, 0.3, 1.0, 2.5, 9.9, 10.0, 10.1, 30.0, 1234.5] {
            close(exp_digamma(x), digamma(x).exp(), 1e-10);
        }
    }
}
