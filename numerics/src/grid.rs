//! Grids on which floating-point sums are exact: what makes a sum independent of the order
//! of its terms, so that workers may add up what they computed before sending it, and any
//! grouping of the work over workers gives the same bits.
//!
//! A grid is a power of two `q`. Multiples of `q` below `2⁵³·q` in magnitude are exact in
//! f64, and so is the sum of two of them as long as it stays below that bound. So if every
//! term is rounded to `q` once ([`round_to`]) and `2^E = 2⁵²·q` is at least four times a
//! bound on every partial sum ([`grid_of`]), the additions make no error, in any order.

/// `1.5·2⁵²`: adding and subtracting it rounds an f64 below `2⁵¹` in magnitude to the
/// nearest integer (ties to even) in two additions, with no library call.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// The grid for sums bounded by `bound` in magnitude: `2^(E−52)` with `2^E ≥ 4·bound`
/// (1 for a bound that is not positive).
pub fn grid_of(bound: f64) -> f64 {
    if bound.is_nan() || bound <= 0.0 {
        return 1.0;
    }
    // at least 2^-1000, so that the grid and ROUNDER·grid are normal numbers
    let exponent = ((4.0 * bound).log2().ceil() as i32).max(-948);
    // log2 may be off by one ulp near a power of two: make sure 2^E really covers 4·bound
    let exponent = if 2f64.powi(exponent) < 4.0 * bound {
        exponent + 1
    } else {
        exponent
    };
    2f64.powi(exponent - 52)
}

/// `v` rounded to the nearest multiple of `grid` (a power of two, so the division is
/// exact). Exact only for `|v| < 2⁵¹·grid`, which the caller's bound guarantees.
#[inline]
pub fn round_to(v: f64, grid: f64) -> f64 {
    ((v / grid + ROUNDER) - ROUNDER) * grid
}

/// Whether `grid` is a grid: a positive, finite power of two.
pub fn is_grid(grid: f64) -> bool {
    grid > 0.0 && grid.is_normal() && grid.to_bits() & ((1 << 52) - 1) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_covers_four_times_its_bound() {
        for bound in [1e-300, 0.3, 1.0, 2.0, 3.0, 1000.0, 1e12] {
            let q = grid_of(bound);
            assert!(is_grid(q));
            assert!(q * 2f64.powi(52) >= 4.0 * bound, "{bound}");
            assert!(
                q * 2f64.powi(51) < 4.0 * bound || bound < 1e-280,
                "{bound}: tight"
            );
        }
        assert_eq!(grid_of(0.0), 1.0);
        assert_eq!(grid_of(f64::NAN), 1.0);
    }

    /// The point of a grid: rounded terms sum to the same bits in any order.
    #[test]
    fn sums_on_a_grid_do_not_depend_on_the_order() {
        let terms: Vec<f64> = (1..2000u32)
            .map(|i| ((i as f64) * 0.618_033_988_7).fract() / (i as f64).sqrt())
            .collect();
        let q = grid_of(terms.iter().sum::<f64>());
        let rounded: Vec<f64> = terms.iter().map(|&t| round_to(t, q)).collect();
        let forward: f64 = rounded.iter().sum();
        let backward: f64 = rounded.iter().rev().sum();
        let halves = rounded[..700].iter().sum::<f64>() + rounded[700..].iter().sum::<f64>();
        assert_eq!(forward.to_bits(), backward.to_bits());
        assert_eq!(forward.to_bits(), halves.to_bits());
        let plain: f64 = terms.iter().sum();
        assert!((forward - plain).abs() <= 1e-12 * plain);
    }
}
