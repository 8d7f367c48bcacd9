//! The sum of a pass of the randomized SVD, computed exactly, so that it does not depend on
//! the order in which the chunks' terms are added: a worker may add up the chunks it was
//! given and send one partial sum, and any grouping and order of chunks over workers gives
//! the same bits as one machine adding them one by one.
//!
//! Floating-point addition is not associative, so "exact" needs a representation in which
//! every addition is exact:
//!
//! ```text
//! pass 0 (sketch)     Y = Σ_c A_c·O_c      128-bit fixed point, LSB 2⁻⁶⁴: each chunk's term
//!                                          is rounded once to the grid, then integer sums
//! passes 1..=q        Y = Σ_c A_c·A_cᵀ·Q   f64 on a per-term grid q_t = 2^(E_t − 52)
//! last pass           X = Σ_c Z_cᵀ·Z_c     f64 on one grid q = 2^(E − 52)
//! ```
//!
//! On a grid, a sum of multiples of `q` below `2⁵³·q` in magnitude is exact in f64, so f64
//! additions are exact as long as every partial sum stays below that bound. The bounds come
//! from pass 0, which also sums, per term, `B_t = Σ_d |a_td|·‖a_d‖` and `F = Σ_d ‖a_d‖²`
//! (rounded up on the fixed-point grid: exact upper bounds). Because `Q` has orthonormal
//! columns, `|Σ_{d∈S} a_td (a_dᵀQ)_j| ≤ Σ_d |a_td|·‖a_d‖ = B_t` for any subset `S` of the
//! documents, and `|Σ_{d∈S} z_di z_dj| ≤ F`; with `2^E_t ≥ 4·B_t` every partial sum stays
//! within the grid's exact range whatever the order. Each chunk's term is rounded once to
//! its grid (the only rounding, at about `2⁻⁵⁰` of the bound — the size of the rounding
//! error a plain f64 sum makes anyway), and the fixed point of pass 0 keeps every value at
//! or above `2⁻¹¹` to full f64 precision.
//!
//! Sums only travel in the grid's representation: 16 bytes a value in pass 0, 8 after.

use nalgebra::DMatrix;
use rayon::prelude::*;

use super::products::TermSums;
use crate::grid::{grid_of, round_to};
use crate::linalg;

/// `2⁶⁴`, the scale of the fixed point of pass 0.
const FIXED_SCALE: f64 = 18_446_744_073_709_551_616.0;

/// Largest magnitude a value of pass 0 may have (`2⁶²`): far above any real corpus
/// (`Σ_d |a_td|·|o_dj|` of one term), and low enough that no sum overflows 128 bits.
const FIXED_LIMIT: f64 = 4_611_686_018_427_387_904.0;

/// Largest magnitude of a value in units of its grid: `2⁵¹` (the rounding trick of
/// [`on_grid`] needs it; the bounds keep values under `2⁵⁰`), so that sums stay exact.
const GRID_LIMIT: f64 = 2_251_799_813_685_248.0;

/// Values per parallel block when two partial sums are added.
const MERGE_BLOCK: usize = 1 << 16;

/// One chunk's term of pass 0: the sketch, and the chunk's share of the bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct SketchTerm {
    /// `A_c·O_c` on the chunk's terms.
    pub sums: TermSums,
    /// `Σ_{d∈c} |a_td|·‖a_d‖` for each term of `sums.terms`.
    pub bounds: Vec<f64>,
    /// `Σ_{d∈c} ‖a_d‖²`.
    pub frobenius: f64,
}

/// The exact running sum of one pass; see the [module documentation](self).
#[derive(Clone, Debug, PartialEq)]
pub enum PassSum {
    /// Pass 0: `Yt` (`l × m`, term-major) and the bounds, in fixed point (LSB 2⁻⁶⁴).
    Sketch {
        /// Samples `l`.
        samples: usize,
        /// `Yt`, `l` values per term.
        y: Vec<i128>,
        /// `B_t` per term, rounded up.
        bounds: Vec<i128>,
        /// `F`, rounded up.
        frobenius: i128,
    },
    /// Passes `1..=q`: `Yt` on the per-term grid.
    Power {
        /// `Yt` (`l × m`).
        y: DMatrix<f64>,
    },
    /// The last pass: `X` (`l × l`) on one grid.
    Gram {
        /// `X`.
        x: DMatrix<f64>,
    },
}

/// Which pass a sum belongs to and its size: samples `l`, terms `m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SumShape {
    /// Pass 0: `l × m` values in fixed point and `m` bounds.
    Sketch {
        /// `l`.
        samples: usize,
        /// `m`.
        terms: usize,
    },
    /// A power pass: `l × m`.
    Power {
        /// `l`.
        samples: usize,
        /// `m`.
        terms: usize,
    },
    /// The last pass: `l × l`.
    Gram {
        /// `l`.
        samples: usize,
    },
}

/// The grids of the passes after the sketch, fixed at the end of pass 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Grids {
    /// The grid of each term's values in the power passes (a power of two; 1 for a term
    /// that no document contains).
    pub terms: Vec<f64>,
    /// The grid of `X` in the last pass.
    pub gram: f64,
}

/// Why a term could not be added to a sum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SumError {
    /// The corpus has values too large to sum exactly (beyond `2⁶²`): a problem of the input.
    TooLarge(String),
    /// Sums of different passes or shapes, or a bound that does not hold: a bug.
    Internal(String),
}

impl std::fmt::Display for SumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SumError::TooLarge(m) | SumError::Internal(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SumError {}

impl PassSum {
    /// An empty sketch sum over `num_terms` terms and `samples` samples.
    pub fn sketch(samples: usize, num_terms: usize) -> PassSum {
        PassSum::Sketch {
            samples,
            y: vec![0; samples * num_terms],
            bounds: vec![0; num_terms],
            frobenius: 0,
        }
    }

    /// An empty power-pass sum (`samples × num_terms`).
    pub fn power(samples: usize, num_terms: usize) -> PassSum {
        PassSum::Power {
            y: DMatrix::zeros(samples, num_terms),
        }
    }

    /// An empty sum of the last pass (`samples × samples`).
    pub fn gram(samples: usize) -> PassSum {
        PassSum::Gram {
            x: DMatrix::zeros(samples, samples),
        }
    }

    /// The empty sum of a pass of this shape.
    pub fn zeros(shape: SumShape) -> PassSum {
        match shape {
            SumShape::Sketch { samples, terms } => PassSum::sketch(samples, terms),
            SumShape::Power { samples, terms } => PassSum::power(samples, terms),
            SumShape::Gram { samples } => PassSum::gram(samples),
        }
    }

    /// Its shape; `None` for a sketch whose parts disagree (not `l` values per bound).
    pub fn shape(&self) -> Option<SumShape> {
        match self {
            PassSum::Sketch {
                samples, y, bounds, ..
            } => (y.len() == samples * bounds.len()).then_some(SumShape::Sketch {
                samples: *samples,
                terms: bounds.len(),
            }),
            PassSum::Power { y } => Some(SumShape::Power {
                samples: y.nrows(),
                terms: y.ncols(),
            }),
            PassSum::Gram { x } => {
                (x.nrows() == x.ncols()).then_some(SumShape::Gram { samples: x.nrows() })
            }
        }
    }

    /// `0 + self`: what merging this sum into the empty sum of its pass gives, without
    /// the empty sum (the first partial sum of a pass is taken this way). The same values;
    /// in floating point a −0 becomes +0, as the addition makes it.
    pub fn plus_zero(mut self) -> PassSum {
        let values = match &mut self {
            PassSum::Sketch { .. } => return self,
            PassSum::Power { y } => y.as_mut_slice(),
            PassSum::Gram { x } => x.as_mut_slice(),
        };
        values.par_chunks_mut(MERGE_BLOCK).for_each(|block| {
            for v in block {
                *v += 0.0;
            }
        });
        self
    }

    /// Add the sketch term of one chunk (pass 0).
    pub fn add_sketch(&mut self, term: &SketchTerm) -> Result<(), SumError> {
        let PassSum::Sketch {
            samples,
            y,
            bounds,
            frobenius,
        } = self
        else {
            return Err(wrong_pass("a sketch term"));
        };
        let l = *samples;
        check_terms(&term.sums, l, y.len() / l.max(1))?;
        if term.bounds.len() != term.sums.terms.len() {
            return Err(SumError::Internal(
                "a sketch term with a bound per term missing".into(),
            ));
        }
        linalg::columns_mut(y, l, &term.sums.terms)
            .into_par_iter()
            .zip(term.sums.sums.as_slice().par_chunks(l.max(1)))
            .try_for_each(|(acc, column)| {
                for (acc, &v) in acc.iter_mut().zip(column) {
                    *acc = checked_add(*acc, to_fixed(v, Rounding::Nearest)?)?;
                }
                Ok(())
            })?;
        for (&t, &bound) in term.sums.terms.iter().zip(&term.bounds) {
            let t = t as usize;
            bounds[t] = checked_add(bounds[t], to_fixed(bound, Rounding::Up)?)?;
        }
        *frobenius = checked_add(*frobenius, to_fixed(term.frobenius, Rounding::Up)?)?;
        Ok(())
    }

    /// Add one chunk's term of a power pass, each term's values rounded to its grid.
    pub fn add_power(&mut self, sums: &TermSums, grids: &Grids) -> Result<(), SumError> {
        let PassSum::Power { y } = self else {
            return Err(wrong_pass("a power-pass term"));
        };
        let l = y.nrows();
        check_terms(sums, l, y.ncols())?;
        linalg::columns_mut(y.as_mut_slice(), l, &sums.terms)
            .into_par_iter()
            .zip(sums.sums.as_slice().par_chunks(l.max(1)))
            .zip(sums.terms.par_iter())
            .try_for_each(|((acc, column), &t)| {
                let grid = grids.terms[t as usize];
                for (acc, &v) in acc.iter_mut().zip(column) {
                    *acc += on_grid(v, grid)?;
                }
                Ok(())
            })
    }

    /// Add one chunk's `Z_cᵀZ_c` to the sum of the last pass, rounded to its grid.
    pub fn add_gram(&mut self, gram: &DMatrix<f64>, grids: &Grids) -> Result<(), SumError> {
        let PassSum::Gram { x } = self else {
            return Err(wrong_pass("a Gram term"));
        };
        if gram.shape() != x.shape() {
            return Err(SumError::Internal(format!(
                "a Gram term of shape {:?} for a sum of shape {:?}",
                gram.shape(),
                x.shape()
            )));
        }
        for (acc, &v) in x.as_mut_slice().iter_mut().zip(gram.as_slice()) {
            *acc += on_grid(v, grids.gram)?;
        }
        Ok(())
    }

    /// Add another partial sum of the same pass (exact).
    pub fn merge(&mut self, other: &PassSum) -> Result<(), SumError> {
        match (self, other) {
            (
                PassSum::Sketch {
                    samples,
                    y,
                    bounds,
                    frobenius,
                },
                PassSum::Sketch {
                    samples: s2,
                    y: y2,
                    bounds: b2,
                    frobenius: f2,
                },
            ) if samples == s2 && y.len() == y2.len() && bounds.len() == b2.len() => {
                y.par_chunks_mut(MERGE_BLOCK)
                    .zip(y2.par_chunks(MERGE_BLOCK))
                    .try_for_each(|(a, b)| {
                        a.iter_mut()
                            .zip(b)
                            .try_for_each(|(a, &b)| checked_add(*a, b).map(|s| *a = s))
                    })?;
                for (a, &b) in bounds.iter_mut().zip(b2) {
                    *a = checked_add(*a, b)?;
                }
                *frobenius = checked_add(*frobenius, *f2)?;
                Ok(())
            }
            (PassSum::Power { y }, PassSum::Power { y: y2 }) if y.shape() == y2.shape() => {
                y.as_mut_slice()
                    .par_chunks_mut(MERGE_BLOCK)
                    .zip(y2.as_slice().par_chunks(MERGE_BLOCK))
                    .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
                Ok(())
            }
            (PassSum::Gram { x }, PassSum::Gram { x: x2 }) if x.shape() == x2.shape() => {
                *x += x2;
                Ok(())
            }
            _ => Err(SumError::Internal(
                "internal error: two partial sums of different passes or shapes".into(),
            )),
        }
    }

    /// The sum as floating-point numbers: `Yt` (`l × m`) or `X` (`l × l`).
    pub fn value(&self) -> DMatrix<f64> {
        match self {
            PassSum::Sketch { samples, y, .. } => {
                let m = y.len() / (*samples).max(1);
                DMatrix::from_iterator(*samples, m, y.iter().map(|&v| from_fixed(v)))
            }
            PassSum::Power { y } => y.clone(),
            PassSum::Gram { x } => x.clone(),
        }
    }

    /// [`value`](Self::value), consuming the sum: no copy after pass 0.
    pub fn into_value(self) -> DMatrix<f64> {
        match self {
            PassSum::Power { y } => y,
            PassSum::Gram { x } => x,
            sketch => sketch.value(),
        }
    }

    /// The grids of the passes after this sketch, from its bounds: for each term the
    /// smallest power of two `2^E_t ≥ 4·B_t`, and `q_t = 2^(E_t − 52)`; likewise for `F`.
    /// `None` for a sum that is not a sketch.
    pub fn grids(&self) -> Option<Grids> {
        let PassSum::Sketch {
            bounds, frobenius, ..
        } = self
        else {
            return None;
        };
        Some(Grids {
            terms: bounds.iter().map(|&b| grid_of(from_fixed(b))).collect(),
            gram: grid_of(from_fixed(*frobenius)),
        })
    }
}

#[derive(Clone, Copy)]
enum Rounding {
    Nearest,
    Up,
}

/// A value in the fixed point of pass 0: `v·2⁶⁴` rounded (to the nearest, ties away from
/// zero, or up), computed from the bits of `v` with integer operations only.
fn to_fixed(v: f64, rounding: Rounding) -> Result<i128, SumError> {
    if v.is_nan() || v.abs() >= FIXED_LIMIT {
        return Err(SumError::TooLarge(format!(
            "a value of {v:e} in the sketch is beyond what topicd sums exactly (2^62): the corpus has absurdly large values"
        )));
    }
    let bits = v.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    // v = ±mantissa · 2^(exponent − 1075), so v·2⁶⁴ = ±mantissa · 2^(exponent − 1011)
    let (mantissa, shift) = if exponent == 0 {
        (fraction, -1010) // subnormal
    } else {
        (fraction | (1 << 52), exponent - 1011)
    };
    let negative = bits >> 63 == 1;
    let magnitude: u128 = if shift >= 0 {
        u128::from(mantissa) << shift // below 2^126: |v| < 2^62
    } else if shift > -64 {
        let s = (-shift) as u32;
        let whole = u128::from(mantissa) >> s;
        let rest = u128::from(mantissa) & ((1u128 << s) - 1);
        let half = 1u128 << (s - 1);
        match rounding {
            Rounding::Nearest => whole + u128::from(rest >= half),
            Rounding::Up if negative => whole,
            Rounding::Up => whole + u128::from(rest > 0),
        }
    } else {
        // below 2⁻¹¹ of the LSB: rounds to 0 (or 1 when rounding a positive value up)
        u128::from(matches!(rounding, Rounding::Up) && !negative && mantissa > 0)
    };
    let magnitude = magnitude as i128;
    Ok(if negative { -magnitude } else { magnitude })
}

fn from_fixed(v: i128) -> f64 {
    v as f64 / FIXED_SCALE
}

/// A value rounded to a grid (a power of two, so the division is exact).
fn on_grid(v: f64, grid: f64) -> Result<f64, SumError> {
    let units = v / grid;
    if units.is_nan() || units.abs() >= GRID_LIMIT {
        return Err(SumError::Internal(format!(
            "internal error: a value of {v:e} exceeds the bound of its grid ({grid:e}); the pass's sum would not be exact"
        )));
    }
    Ok(round_to(v, grid))
}

fn checked_add(a: i128, b: i128) -> Result<i128, SumError> {
    a.checked_add(b).ok_or_else(|| {
        SumError::TooLarge(
            "a sum of the sketch overflows 128 bits: the corpus has absurdly large values".into(),
        )
    })
}

fn check_terms(sums: &TermSums, samples: usize, num_terms: usize) -> Result<(), SumError> {
    if sums.sums.nrows() != samples
        || sums.sums.ncols() != sums.terms.len()
        || sums.terms.iter().any(|&t| t as usize >= num_terms)
        || sums.terms.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(SumError::Internal(format!(
            "a chunk's term of {} × {} values does not fit a sum of {samples} samples over {num_terms} terms",
            sums.sums.nrows(),
            sums.terms.len()
        )));
    }
    Ok(())
}

fn wrong_pass(what: &str) -> SumError {
    SumError::Internal(format!(
        "internal error: {what} added to the sum of another pass"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(ts: &[u32], l: usize, f: impl Fn(usize, usize) -> f64) -> TermSums {
        TermSums {
            terms: ts.to_vec(),
            sums: DMatrix::from_fn(l, ts.len(), f),
        }
    }

    /// Values whose f64 sums depend on the order.
    fn awkward(i: usize, j: usize, c: usize) -> f64 {
        let x = (1.0 + (i * 7 + j * 13 + c * 31) as f64).sqrt();
        if (i + j + c).is_multiple_of(3) {
            x * 1e12
        } else {
            x * 1e-7
        }
    }

    #[test]
    fn a_sketch_sum_is_the_same_in_any_order_and_grouping() {
        let (l, m) = (3, 5);
        let chunks: Vec<SketchTerm> = (0..6)
            .map(|c| SketchTerm {
                sums: terms(&[0, 2, 4], l, |i, j| awkward(i, j, c)),
                bounds: vec![1.5, 0.25 * c as f64, 1e-9],
                frobenius: 2.0 + c as f64,
            })
            .collect();
        let mut forward = PassSum::sketch(l, m);
        chunks.iter().for_each(|t| forward.add_sketch(t).unwrap());
        // two "workers" with interleaved chunks, merged in the other order
        let (mut a, mut b) = (PassSum::sketch(l, m), PassSum::sketch(l, m));
        for (i, t) in chunks.iter().enumerate().rev() {
            if i % 2 == 0 { &mut a } else { &mut b }
                .add_sketch(t)
                .unwrap();
        }
        b.merge(&a).unwrap();
        assert_eq!(b, forward);
        // and the value is the exact sum rounded once (here: close to the f64 sum)
        let plain: f64 = chunks.iter().map(|t| t.sums.sums[(0, 1)]).sum();
        assert!((forward.value()[(0, 2)] - plain).abs() <= 1e-15 * plain.abs());
        assert_eq!(
            forward.value()[(1, 1)],
            0.0,
            "a term no chunk has stays zero"
        );
    }

    #[test]
    fn power_and_gram_sums_on_their_grids_are_exact_in_any_order() {
        let (l, m) = (2, 4);
        let mut sketch = PassSum::sketch(l, m);
        sketch
            .add_sketch(&SketchTerm {
                sums: terms(&[0, 1, 3], l, |_, _| 1.0),
                bounds: vec![3e12, 7.0, 1e-3],
                frobenius: 5e12,
            })
            .unwrap();
        let grids = sketch.grids().unwrap();
        assert_eq!(grids.terms[2], 1.0, "an absent term");
        // 2⁵² units of the grid cover four to eight times the bound
        assert!(
            grids.terms[0] * 2f64.powi(52) >= 4.0 * 3e12
                && grids.terms[0] * 2f64.powi(52) < 8.0 * 3e12
        );
        let chunks: Vec<TermSums> = (0..7)
            .map(|c| {
                terms(&[0, 1, 3], l, |i, j| {
                    awkward(i, j, c) * 1e-1 * [1.0, 1e-12, 1e-15][j]
                })
            })
            .collect();
        let mut forward = PassSum::power(l, m);
        chunks
            .iter()
            .for_each(|t| forward.add_power(t, &grids).unwrap());
        let mut parts = [
            PassSum::power(l, m),
            PassSum::power(l, m),
            PassSum::power(l, m),
        ];
        for (c, t) in chunks.iter().enumerate().rev() {
            parts[c % 3].add_power(t, &grids).unwrap();
        }
        let mut merged = parts[2].clone();
        merged.merge(&parts[0]).unwrap();
        merged.merge(&parts[1]).unwrap();
        assert_eq!(merged, forward);

        let grams: Vec<DMatrix<f64>> = (0..5)
            .map(|c| DMatrix::from_fn(l, l, |i, j| awkward(i, j, c) * 1e-2))
            .collect();
        let (mut x1, mut x2) = (PassSum::gram(l), PassSum::gram(l));
        grams.iter().for_each(|g| x1.add_gram(g, &grids).unwrap());
        grams
            .iter()
            .rev()
            .for_each(|g| x2.add_gram(g, &grids).unwrap());
        assert_eq!(x1, x2);
    }

    #[test]
    fn the_fixed_point_rounds_like_the_definition() {
        let exact = |v: f64, up: bool| {
            // v·2⁶⁴ exactly as a rational: mantissa and exponent through f64 arithmetic
            // with a scale that keeps it exact, then rounded with f64 where it fits
            let scaled = v * FIXED_SCALE;
            if scaled.abs() < 2f64.powi(52) {
                if up {
                    scaled.ceil() as i128
                } else {
                    scaled.round() as i128
                }
            } else {
                scaled as i128 // an integer already
            }
        };
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            3.25e-17,
            -3.25e-17,
            1e-19,
            -1e-19,
            2.5 * 2f64.powi(-64),
            -2.5 * 2f64.powi(-64),
            1.5 * 2f64.powi(-64),
            7.3e-300,
            1e10,
            -123456.789,
            4e18,
        ] {
            assert_eq!(
                to_fixed(v, Rounding::Nearest).unwrap(),
                exact(v, false),
                "{v:e}"
            );
            assert_eq!(
                to_fixed(v, Rounding::Up).unwrap(),
                exact(v, true),
                "{v:e} up"
            );
        }
        assert_eq!(on_grid(2.5, 1.0).unwrap(), 2.0, "ties to even");
        assert_eq!(on_grid(-7.75, 0.5).unwrap(), -8.0);
        assert_eq!(on_grid(1e-300, 1.0).unwrap(), 0.0);
    }

    #[test]
    fn a_sum_taken_as_the_first_is_the_empty_sum_plus_it() {
        let bits = |s: &PassSum| match s {
            PassSum::Power { y: m } | PassSum::Gram { x: m } => {
                m.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            }
            PassSum::Sketch { y, .. } => y.iter().map(|&v| v as u64).collect(),
        };
        let signed = |i: usize, j: usize| [-0.0, 0.0, -1.5, 2.0][(i + 3 * j) % 4];
        let sums = [
            PassSum::Power {
                y: DMatrix::from_fn(3, 5, signed),
            },
            PassSum::Gram {
                x: DMatrix::from_fn(4, 4, signed),
            },
            PassSum::Sketch {
                samples: 2,
                y: vec![-3, 0, 5, 7],
                bounds: vec![1, 2],
                frobenius: 9,
            },
        ];
        for sum in sums {
            let shape = sum.shape().unwrap();
            let mut added = PassSum::zeros(shape);
            added.merge(&sum).unwrap();
            let taken = sum.plus_zero();
            assert_eq!(bits(&taken), bits(&added));
            assert_eq!(taken.shape(), Some(shape));
        }
        let torn = PassSum::Sketch {
            samples: 2,
            y: vec![1, 2, 3],
            bounds: vec![1, 2],
            frobenius: 1,
        };
        assert_eq!(torn.shape(), None, "3 values for 2 samples of 2 terms");
    }

    #[test]
    fn values_beyond_the_representation_are_errors_not_wrong_sums() {
        let mut sketch = PassSum::sketch(1, 1);
        let huge = SketchTerm {
            sums: terms(&[0], 1, |_, _| 1e30),
            bounds: vec![1.0],
            frobenius: 1.0,
        };
        assert!(
            matches!(sketch.add_sketch(&huge), Err(SumError::TooLarge(m)) if m.contains("absurdly large"))
        );
        let nan = SketchTerm {
            sums: terms(&[0], 1, |_, _| f64::NAN),
            bounds: vec![1.0],
            frobenius: 1.0,
        };
        assert!(sketch.add_sketch(&nan).is_err());
        let grids = Grids {
            terms: vec![1e-10],
            gram: 1.0,
        };
        let mut power = PassSum::power(1, 1);
        assert!(
            power
                .add_power(&terms(&[0], 1, |_, _| 1e10), &grids)
                .is_err()
        );
        assert!(
            power
                .add_power(&terms(&[3], 1, |_, _| 1.0), &grids)
                .is_err()
        );
        assert!(power.merge(&PassSum::gram(1)).is_err());
    }
}
