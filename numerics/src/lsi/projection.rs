//! The LSI model, `(U, S)`, and what can be done with one: merge two, clip a spectrum,
//! fix signs, read topics, project documents.

use nalgebra::DMatrix;

use crate::linalg;

/// A rank-`k` truncated SVD of a terms × documents matrix: `A ≈ U·S·Vᵀ` without `V`.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    /// `Uᵀ`, `k × m`: row `i` is the `i`-th left singular vector.
    pub ut: DMatrix<f64>,
    /// The singular values, largest first.
    pub s: Vec<f64>,
}

impl Projection {
    /// A projection with no factors over `num_terms` terms.
    pub fn empty(num_terms: usize) -> Projection {
        Projection {
            ut: DMatrix::zeros(0, num_terms),
            s: vec![],
        }
    }

    /// Number of terms `m` (rows of U).
    pub fn num_terms(&self) -> usize {
        self.ut.ncols()
    }

    /// Number of factors kept `k` (columns of U).
    pub fn num_topics(&self) -> usize {
        self.s.len()
    }

    /// Merge two projections of disjoint sets of documents (Řehůřek 2011, Algorithm 3),
    /// `self` covering the older documents, whose spectrum is first scaled by `decay`:
    ///
    /// ```text
    /// C = U₁ᵀU₂;   Q R = qr(U₂ − U₁C)
    /// K = [ γ·S₁   C·S₂ ]        U_K S_K = svd(K)
    ///     [ 0      R·S₂ ]        U = [U₁ Q]·U_K,  S = S_K,  both clipped to k
    /// ```
    pub fn merge(self, other: Projection, decay: f64, k: usize) -> Projection {
        if other.s.is_empty() {
            return self;
        }
        if self.s.is_empty() {
            return other;
        }
        let (k1, k2) = (self.num_topics(), other.num_topics());
        let c = linalg::cross(&self.ut, &other.ut); // k1 × k2
        let residual = &other.ut - linalg::left_multiply(&c.transpose(), &self.ut);
        let (qt, r) = linalg::qr(residual);
        let rk = qt.nrows();
        let mut kmat = DMatrix::zeros(k1 + rk, k1 + k2);
        for i in 0..k1 {
            kmat[(i, i)] = decay * self.s[i];
        }
        for j in 0..k2 {
            for i in 0..k1 {
                kmat[(i, k1 + j)] = c[(i, j)] * other.s[j];
            }
            for i in 0..rk {
                kmat[(k1 + i, k1 + j)] = r[(i, j)] * other.s[j];
            }
        }
        let (uk, sk) = linalg::svd_desc(kmat);
        let energy: Vec<f64> = sk.iter().map(|s| s * s).collect();
        let keep = clip_spectrum(&energy, k, 0.001);
        let left = uk.view((0, 0), (k1, keep)).transpose();
        let right = uk.view((k1, 0), (rk, keep)).transpose();
        let ut = linalg::left_multiply(&left, &self.ut) + linalg::left_multiply(&right, &qt);
        let mut merged = Projection {
            ut,
            s: sk[..keep].to_vec(),
        };
        merged.fix_signs();
        merged
    }

    /// gensim's sign convention: every singular vector has a non-negative first entry.
    pub fn fix_signs(&mut self) {
        for i in 0..self.ut.nrows() {
            if self.ut.ncols() > 0 && self.ut[(i, 0)] < 0.0 {
                self.ut.row_mut(i).neg_mut();
            }
        }
    }

    /// The `topn` terms of factor `topic` with the largest absolute weight in the unit
    /// vector `U[:, topic] / ‖U[:, topic]‖`, strongest first, sign kept (gensim's
    /// `show_topic`). Ties go to the lower term id.
    pub fn topic(&self, topic: usize, topn: usize) -> Vec<(u32, f64)> {
        let row = self.ut.row(topic);
        let norm = row.norm();
        let mut order: Vec<u32> = (0..row.len() as u32).collect();
        let topn = topn.min(order.len());
        let by_weight = |a: &u32, b: &u32| {
            row[*b as usize]
                .abs()
                .total_cmp(&row[*a as usize].abs())
                .then(a.cmp(b))
        };
        if topn < order.len() {
            order.select_nth_unstable_by(topn, by_weight);
            order.truncate(topn);
        }
        order.sort_by(by_weight);
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        order
            .into_iter()
            .map(|t| (t, row[t as usize] * scale))
            .collect()
    }
}

/// How many factors to keep of a spectrum `e` (squared singular values, largest first):
/// the fewest whose remaining energy falls under `min(discard, 1/k)`, at most `k`
/// (gensim's `clip_spectrum`).
///
/// ```text
/// rel_i = |1 − Σ_{j≤i} e_j / Σ e|;   keep = min(k, 1 + #{i : rel_i > min(discard, 1/k)})
/// ```
pub fn clip_spectrum(e: &[f64], k: usize, discard: f64) -> usize {
    let total: f64 = e.iter().sum();
    if total.is_nan() || total <= 0.0 || k == 0 {
        return 0;
    }
    let threshold = discard.min(1.0 / k as f64);
    let mut cumulative = 0.0;
    let small = 1 + e
        .iter()
        .filter(|&&x| {
            cumulative += x;
            (1.0 - cumulative / total).abs() > threshold
        })
        .count();
    small.min(k).min(e.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_spectrum_keeps_the_energy_like_gensim() {
        // energy 100, 10, 1, 0.001: remaining after each 0.1099.., 0.00999.., 1e-5, 0
        let e = [100.0, 10.0, 1.0, 0.001];
        assert_eq!(clip_spectrum(&e, 10, 0.001), 3);
        assert_eq!(clip_spectrum(&e, 2, 0.001), 2);
        assert_eq!(clip_spectrum(&e, 10, 1e-6), 4);
        assert_eq!(clip_spectrum(&[0.0, 0.0], 5, 0.001), 0);
    }

    #[test]
    fn signs_make_the_first_entry_non_negative() {
        let mut p = Projection {
            ut: DMatrix::from_row_slice(2, 3, &[-1.0, 2.0, 3.0, 0.5, -1.0, 0.0]),
            s: vec![2.0, 1.0],
        };
        p.fix_signs();
        assert_eq!(
            p.ut,
            DMatrix::from_row_slice(2, 3, &[1.0, -2.0, -3.0, 0.5, -1.0, 0.0])
        );
    }

    #[test]
    fn topic_orders_by_absolute_weight_and_normalises() {
        let p = Projection {
            ut: DMatrix::from_row_slice(1, 4, &[0.0, -3.0, 4.0, 0.0]),
            s: vec![1.0],
        };
        let top = p.topic(0, 2);
        assert_eq!((top[0].0, top[1].0), (2, 1));
        assert!((top[0].1 - 0.8).abs() < 1e-15 && (top[1].1 + 0.6).abs() < 1e-15);
        assert_eq!(p.topic(0, 9).len(), 4);
    }
}
