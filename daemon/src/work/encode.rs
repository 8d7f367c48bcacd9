//! Numbers as bytes: the layouts in which the work's sums and grids are checkpointed (and
//! sent between hosts). Little-endian throughout; every length is checked against the bytes
//! at hand before anything is allocated, so a damaged or hostile buffer is an error.
//!
//! ```text
//! sum     u8 kind (0 sketch, 1 power, 2 gram)
//!   sketch  u64 samples  u64 terms  i128 × samples·terms (Yt)  i128 × terms (bounds)  i128 (F)
//!   power   u64 rows  u64 cols  f64 × rows·cols (column-major)
//!   gram    u64 rows  u64 cols  f64 × rows·cols
//! grids   u64 terms  f64 × terms  f64 (the Gram grid)
//! ```

use nalgebra::DMatrix;
use topicd_numerics::lsi::{Grids, PassSum};

/// Encode a pass's (partial) sum.
pub fn pass_sum_to_bytes(sum: &PassSum) -> Vec<u8> {
    let mut out = Vec::new();
    match sum {
        PassSum::Sketch {
            samples,
            y,
            bounds,
            frobenius,
        } => {
            out.reserve(17 + 16 * (y.len() + bounds.len() + 1));
            out.push(0);
            out.extend_from_slice(&(*samples as u64).to_le_bytes());
            out.extend_from_slice(&(bounds.len() as u64).to_le_bytes());
            for v in y.iter().chain(bounds).chain([frobenius]) {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        PassSum::Power { y: m } | PassSum::Gram { x: m } => {
            out.push(if matches!(sum, PassSum::Power { .. }) {
                1
            } else {
                2
            });
            put_matrix(&mut out, m);
        }
    }
    out
}

/// Decode a pass's sum written by [`pass_sum_to_bytes`].
pub fn pass_sum_from_bytes(bytes: &[u8]) -> Result<PassSum, String> {
    let (&kind, rest) = bytes.split_first().ok_or("an empty sum")?;
    match kind {
        0 => {
            let mut r = Reader(rest);
            let (samples, terms) = (r.u64()? as usize, r.u64()? as usize);
            let count = samples
                .checked_mul(terms)
                .and_then(|n| n.checked_add(terms + 1))
                .filter(|&n| n.checked_mul(16) == Some(r.0.len()))
                .ok_or("a sketch sum whose size does not match its shape")?;
            let mut values: Vec<i128> =
                r.0.chunks_exact(16)
                    .map(|b| i128::from_le_bytes(b.try_into().expect("16 bytes")))
                    .collect();
            debug_assert_eq!(values.len(), count);
            let frobenius = values.pop().ok_or("a sketch sum without F")?;
            let bounds = values.split_off(samples * terms);
            Ok(PassSum::Sketch {
                samples,
                y: values,
                bounds,
                frobenius,
            })
        }
        1 => Ok(PassSum::Power {
            y: matrix_from(rest)?,
        }),
        2 => Ok(PassSum::Gram {
            x: matrix_from(rest)?,
        }),
        other => Err(format!("a sum of unknown kind {other}")),
    }
}

/// Encode the grids of a randomized SVD.
pub fn grids_to_bytes(grids: &Grids) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * (grids.terms.len() + 2));
    out.extend_from_slice(&(grids.terms.len() as u64).to_le_bytes());
    for v in grids.terms.iter().chain([&grids.gram]) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Decode grids written by [`grids_to_bytes`]; every grid must be a positive power of two.
pub fn grids_from_bytes(bytes: &[u8]) -> Result<Grids, String> {
    let mut r = Reader(bytes);
    let terms = r.u64()? as usize;
    if terms.checked_add(1).and_then(|n| n.checked_mul(8)) != Some(r.0.len()) {
        return Err("grids whose size does not match their count".into());
    }
    let mut values: Vec<f64> = r.0.chunks_exact(8).map(f64_of).collect();
    if !values
        .iter()
        .all(|v| *v > 0.0 && v.is_finite() && v.to_bits() & ((1 << 52) - 1) == 0)
    {
        return Err("a grid that is not a power of two".into());
    }
    let gram = values.pop().ok_or("grids without the Gram grid")?;
    Ok(Grids {
        terms: values,
        gram,
    })
}

fn put_matrix(out: &mut Vec<u8>, m: &DMatrix<f64>) {
    out.reserve(16 + 8 * m.len());
    out.extend_from_slice(&(m.nrows() as u64).to_le_bytes());
    out.extend_from_slice(&(m.ncols() as u64).to_le_bytes());
    for v in m.as_slice() {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn matrix_from(bytes: &[u8]) -> Result<DMatrix<f64>, String> {
    let mut r = Reader(bytes);
    let (rows, cols) = (r.u64()? as usize, r.u64()? as usize);
    if rows.checked_mul(cols).and_then(|n| n.checked_mul(8)) != Some(r.0.len()) {
        return Err("a matrix whose size does not match its shape".into());
    }
    Ok(DMatrix::from_iterator(
        rows,
        cols,
        r.0.chunks_exact(8).map(f64_of),
    ))
}

fn f64_of(b: &[u8]) -> f64 {
    f64::from_le_bytes(b.try_into().expect("8 bytes"))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u64(&mut self) -> Result<u64, String> {
        if self.0.len() < 8 {
            return Err("truncated".into());
        }
        let (head, rest) = self.0.split_at(8);
        self.0 = rest;
        Ok(u64::from_le_bytes(head.try_into().expect("8 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_grids_round_trip_and_damage_is_an_error() {
        let sketch = PassSum::Sketch {
            samples: 2,
            y: vec![1, -2, i128::MAX, 4, 5, 6],
            bounds: vec![7, 8, 9],
            frobenius: -10,
        };
        let power = PassSum::Power {
            y: DMatrix::from_fn(2, 3, |r, c| r as f64 - c as f64 * 0.5),
        };
        let gram = PassSum::Gram {
            x: DMatrix::from_element(2, 2, 1.5),
        };
        for sum in [sketch, power, gram] {
            let bytes = pass_sum_to_bytes(&sum);
            assert_eq!(pass_sum_from_bytes(&bytes).unwrap(), sum);
            assert!(pass_sum_from_bytes(&bytes[..bytes.len() - 1]).is_err());
            let mut huge = bytes.clone();
            huge[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
            assert!(pass_sum_from_bytes(&huge).is_err());
        }
        assert!(pass_sum_from_bytes(&[]).is_err());
        assert!(pass_sum_from_bytes(&[7]).is_err());

        let grids = Grids {
            terms: vec![1.0, 0.25, 2f64.powi(-40)],
            gram: 8.0,
        };
        let bytes = grids_to_bytes(&grids);
        assert_eq!(grids_from_bytes(&bytes).unwrap(), grids);
        let mut bad = bytes.clone();
        bad[8..16].copy_from_slice(&3.0f64.to_le_bytes());
        assert!(grids_from_bytes(&bad).is_err(), "3 is not a power of two");
        assert!(grids_from_bytes(&bytes[..20]).is_err());
    }
}
