//! The streamed randomized SVD (Halko, Martinsson, Tropp 2011, §4–5; gensim's
//! `stochastic_svd`), as a state machine fed one chunk at a time.
//!
//! With `l = k + p` (p = `extra_samples`) and `q` = `power_iters`, it makes `q + 2` passes:
//!
//! ```text
//! pass 0        Y = Σ_c A_c·O_c        O_c ~ N(0,1)^(c × l)      then Q = qr(Y)
//! pass 1..=q    Y = Σ_c A_c·(A_cᵀ·Q)                             then Q = qr(Y)
//! pass q+1      X = Σ_c (QᵀA_c)(QᵀA_c)ᵀ  = B·Bᵀ                  then U_X S² = eig(X)
//!               S = √S², U = Q·U_X, both clipped to k
//! ```
//!
//! Every pass is a sum over chunks: [`pass_term`] is the task (one chunk's term, a pure
//! function of the chunk and the pass's [`PassInput`]) and [`StochasticSvd::add`] the
//! reduction, applied in chunk order. So a pass can be cut anywhere (a checkpoint is the
//! pass number, the chunks done, `Q` and the partial sum) and its tasks computed anywhere
//! without changing a bit of the result. Applied to a single chunk held in memory, the same
//! machine is gensim's per-chunk SVD of the one-pass algorithm.

use std::sync::Arc;

use nalgebra::DMatrix;

use super::products::{self, TermMajor, TermSums};
use super::projection::{Projection, clip_spectrum};
use crate::chunk::SparseChunk;
use crate::linalg;

/// Where the randomized SVD stands: the pass and what it has summed so far.
#[derive(Clone, Debug, PartialEq)]
pub struct SvdState {
    /// The pass being summed, `0..=q+1`.
    pub pass: u32,
    /// `Qt` from the end of the previous pass (`None` during pass 0).
    pub q: Option<Arc<DMatrix<f64>>>,
    /// The partial sum of this pass: `Yt` (`l × m`) in passes `0..=q`, `X` (`l × l`) in
    /// the last.
    pub acc: DMatrix<f64>,
}

/// What every task of a pass needs besides its chunk: which product to form, and `Qt`.
#[derive(Clone, Debug)]
pub struct PassInput {
    /// Terms of the model (`m`).
    pub num_terms: usize,
    /// Samples `l` (rows of `Qt`, or of the sketch in pass 0).
    pub samples: usize,
    /// The job's seed (pass 0 draws the sketch from it).
    pub seed: u64,
    /// What the pass sums.
    pub product: Product,
    /// `Qt` from the end of the previous pass (`None` in pass 0).
    pub qt: Option<Arc<DMatrix<f64>>>,
}

/// The product a pass sums over chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    /// Pass 0: `Y = Σ A_c·O_c` with a Gaussian `O_c`.
    Sketch,
    /// Passes `1..=q`: `Y = Σ A_c·(A_cᵀ·Q)`.
    Power,
    /// The last pass: `X = Σ (QᵀA_c)(QᵀA_c)ᵀ`.
    Gram,
}

/// One chunk's term of a pass's sum (a task's result).
#[derive(Clone, Debug, PartialEq)]
pub enum PassTerm {
    /// `A_c·Z_c` on the chunk's terms (sketch and power passes).
    Terms(TermSums),
    /// `Z_cᵀZ_c` (the last pass), `l × l`.
    Gram(DMatrix<f64>),
}

/// The task of a pass: one chunk's term of its sum.
pub fn pass_term(input: &PassInput, chunk: &SparseChunk) -> PassTerm {
    match (&input.qt, input.product) {
        (None, _) | (_, Product::Sketch) => {
            let ot = products::gaussian(chunk, input.samples, input.seed);
            PassTerm::Terms(products::term_sums(
                &TermMajor::new(chunk, input.num_terms),
                &ot,
            ))
        }
        (Some(qt), Product::Power) => {
            let zt = products::project(chunk, qt);
            PassTerm::Terms(products::term_sums(
                &TermMajor::new(chunk, input.num_terms),
                &zt,
            ))
        }
        (Some(qt), Product::Gram) => PassTerm::Gram(linalg::gram(&products::project(chunk, qt))),
    }
}

/// A randomized SVD in progress.
#[derive(Clone, Debug)]
pub struct StochasticSvd {
    num_terms: usize,
    num_topics: usize,
    power_iters: u32,
    seed: u64,
    state: SvdState,
}

impl StochasticSvd {
    /// Start an SVD of rank `num_topics` over `num_terms` terms with `extra_samples`
    /// oversampling and `power_iters` power iterations.
    pub fn new(
        num_terms: usize,
        num_topics: usize,
        extra_samples: usize,
        power_iters: u32,
        seed: u64,
    ) -> StochasticSvd {
        let l = num_topics + extra_samples;
        StochasticSvd {
            num_terms,
            num_topics,
            power_iters,
            seed,
            state: SvdState {
                pass: 0,
                q: None,
                acc: DMatrix::zeros(l, num_terms),
            },
        }
    }

    /// Continue from a checkpointed state; `acc` may be `None` for a pass not yet begun
    /// (all zeros). Fails when the state does not fit the shape of this SVD.
    pub fn resume(
        mut self,
        pass: u32,
        q: Option<Arc<DMatrix<f64>>>,
        acc: Option<DMatrix<f64>>,
    ) -> Result<StochasticSvd, String> {
        let (l, m) = (self.state.acc.nrows(), self.num_terms);
        let shape = match (&q, pass) {
            (None, 0) => Some((l, m)),
            (Some(q), p)
                if p > 0 && p <= self.power_iters + 1 && q.ncols() == m && q.nrows() <= l =>
            {
                Some(if p <= self.power_iters {
                    (q.nrows(), m)
                } else {
                    (q.nrows(), q.nrows())
                })
            }
            _ => None,
        };
        let acc = match (shape, acc) {
            (Some(shape), Some(acc)) if acc.shape() == shape => acc,
            (Some((r, c)), None) => DMatrix::zeros(r, c),
            _ => {
                return Err(format!(
                    "the checkpoint of pass {pass} does not fit an SVD of {m} terms and {l} samples"
                ));
            }
        };
        self.state = SvdState { pass, q, acc };
        Ok(self)
    }

    /// The state to checkpoint.
    pub fn state(&self) -> &SvdState {
        &self.state
    }

    /// Passes over the corpus in all: `q + 2`.
    pub fn passes(&self) -> u32 {
        self.power_iters + 2
    }

    /// The pass being summed.
    pub fn pass(&self) -> u32 {
        self.state.pass
    }

    /// What the tasks of the current pass need besides their chunks.
    pub fn pass_input(&self) -> PassInput {
        let product = match &self.state.q {
            None => Product::Sketch,
            Some(_) if self.state.pass <= self.power_iters => Product::Power,
            Some(_) => Product::Gram,
        };
        PassInput {
            num_terms: self.num_terms,
            samples: self.state.acc.nrows(),
            seed: self.seed,
            product,
            qt: self.state.q.clone(),
        }
    }

    /// Add one chunk's term to the sum of the current pass (the reduction: call it in
    /// chunk order).
    pub fn add(&mut self, term: &PassTerm) {
        match term {
            PassTerm::Terms(sums) => products::add_term_sums(&mut self.state.acc, sums),
            PassTerm::Gram(x) => self.state.acc += x,
        }
    }

    /// Compute one chunk's term and add it (a pass on this thread's pool).
    pub fn absorb(&mut self, chunk: &SparseChunk) {
        let term = pass_term(&self.pass_input(), chunk);
        self.add(&term);
    }

    /// Close the current pass. Returns the projection after the last pass.
    pub fn end_pass(&mut self) -> Option<Projection> {
        if self.state.pass <= self.power_iters {
            let (qt, _) = linalg::qr(&self.state.acc);
            let r = qt.nrows();
            self.state.pass += 1;
            self.state.acc = if self.state.pass <= self.power_iters {
                DMatrix::zeros(r, self.num_terms)
            } else {
                DMatrix::zeros(r, r)
            };
            self.state.q = Some(Arc::new(qt));
            None
        } else {
            Some(self.finish())
        }
    }

    /// `U_X S² = eig(X)`, `S = √S²`, `U = Q·U_X`, clipped to the factors that carry
    /// energy (gensim discards the last 1e-6 of the energy here).
    fn finish(&self) -> Projection {
        let qt = self.state.q.as_ref().expect("the last pass has Q");
        let (eigenvalues, ux) = linalg::symmetric_eigen_desc(self.state.acc.clone());
        let energy: Vec<f64> = eigenvalues.iter().map(|&e| e.max(0.0)).collect();
        let keep = clip_spectrum(&energy, self.num_topics, 1e-6);
        let uxt = ux.columns(0, keep).transpose();
        let mut projection = Projection {
            ut: linalg::left_multiply(&uxt, qt),
            s: energy[..keep].iter().map(|e| e.sqrt()).collect(),
        };
        projection.fix_signs();
        projection
    }
}

/// gensim's per-chunk SVD: the randomized SVD of one chunk held in memory.
pub fn stochastic_svd(
    chunk: &SparseChunk,
    num_terms: usize,
    num_topics: usize,
    extra_samples: usize,
    power_iters: u32,
    seed: u64,
) -> Projection {
    let mut svd = StochasticSvd::new(num_terms, num_topics, extra_samples, power_iters, seed);
    loop {
        svd.absorb(chunk);
        if let Some(projection) = svd.end_pass() {
            return projection;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsi::products::tests::{chunk_from_dense, low_rank};

    fn run(a: &DMatrix<f64>, chunk_docs: usize, k: usize, q: u32) -> Projection {
        let mut svd = StochasticSvd::new(a.nrows(), k, 10, q, 7);
        loop {
            for (i, start) in (0..a.ncols()).step_by(chunk_docs).enumerate() {
                let len = chunk_docs.min(a.ncols() - start);
                let block = a.columns(start, len).into_owned();
                svd.absorb(&chunk_from_dense(&block, i as u64, start as u64));
            }
            if let Some(p) = svd.end_pass() {
                return p;
            }
        }
    }

    #[test]
    fn recovers_the_exact_svd_of_a_low_rank_matrix() {
        let sigmas = [9.0, 5.0, 3.0, 2.0, 1.0];
        let a = low_rank(60, 40, &sigmas);
        let p = run(&a, 7, 5, 2);
        for (s, e) in p.s.iter().zip(sigmas) {
            assert!((s - e).abs() < 1e-9 * e, "{s} vs {e}");
        }
        // U spans the column space: A = U Uᵀ A
        let u = p.ut.transpose();
        assert!((&u * (&p.ut * &a) - &a).amax() < 1e-9);
        assert!(p.ut.column(0).iter().all(|&x| x >= 0.0));
    }

    #[test]
    fn truncates_to_k_and_matches_nalgebra_on_a_full_rank_matrix() {
        let a = DMatrix::from_fn(30, 25, |r, c| (((r * 17 + c * 5) % 11) as f64).sin() + 0.1);
        let exact = linalg::svd_desc(a.clone()).1;
        let p = run(&a, 4, 3, 4);
        assert_eq!(p.s.len(), 3);
        for (s, e) in p.s.iter().zip(&exact) {
            assert!((s - e).abs() < 1e-6 * e, "{s} vs {e}");
        }
    }

    #[test]
    fn the_result_does_not_depend_on_resuming_from_a_state() {
        let a = low_rank(40, 30, &[4.0, 2.0, 1.0]);
        let chunk = chunk_from_dense(&a, 0, 0);
        let straight = stochastic_svd(&chunk, 40, 3, 5, 2, 3);
        let mut svd = StochasticSvd::new(40, 3, 5, 2, 3);
        svd.absorb(&chunk);
        svd.end_pass();
        let saved = svd.state().clone();
        let mut resumed = StochasticSvd::new(40, 3, 5, 2, 3)
            .resume(saved.pass, saved.q, Some(saved.acc))
            .unwrap();
        let p = loop {
            resumed.absorb(&chunk);
            if let Some(p) = resumed.end_pass() {
                break p;
            }
        };
        assert_eq!(p, straight);
        assert!(
            StochasticSvd::new(40, 3, 5, 2, 3)
                .resume(1, None, None)
                .is_err()
        );
        let wrong = Some(DMatrix::zeros(2, 2));
        assert!(
            StochasticSvd::new(40, 3, 5, 2, 3)
                .resume(0, None, wrong)
                .is_err()
        );
    }
}
