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
//! reduction. The sums are exact ([`super::pass_sum`]), so chunks may be added in any
//! order and grouped in any way — by a worker that sends one partial sum for all the
//! chunks it was given ([`StochasticSvd::merge`]) — with the same bits as one machine
//! adding them one by one. A pass can be cut anywhere: a checkpoint is the pass, `Q`, the
//! grids and the partial sum, with the set of chunks it covers.
//!
//! [`stochastic_svd`] is the same algorithm on one chunk held in memory: gensim's per-chunk
//! SVD of the one-pass algorithm, with nothing to sum across chunks.

use std::sync::Arc;

use nalgebra::DMatrix;

use super::pass_sum::{Grids, PassSum, SketchTerm, SumError, SumShape};
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
    /// The grids of the passes after the sketch (`None` during pass 0).
    pub grids: Option<Arc<Grids>>,
    /// The partial sum of this pass; `None` while nothing is summed (the empty sum, which
    /// is never allocated: the first partial sum of a pass becomes the sum).
    pub acc: Option<PassSum>,
}

/// What every task of a pass needs besides its chunk: which product to form, `Qt`, and the
/// grid its terms are rounded to — and what it takes to close the pass ([`PassInput::end`])
/// and to start the next one ([`PassInput::next`]), so that whoever holds a pass's whole sum
/// can carry on alone.
#[derive(Clone, Debug)]
pub struct PassInput {
    /// Terms of the model (`m`).
    pub num_terms: usize,
    /// Topics `k` the model keeps at the end.
    pub num_topics: usize,
    /// Power iterations `q`.
    pub power_iters: u32,
    /// The pass, `0..=q+1`.
    pub pass: u32,
    /// Samples `l` (rows of `Qt`, or of the sketch in pass 0).
    pub samples: usize,
    /// The job's seed (pass 0 draws the sketch from it).
    pub seed: u64,
    /// What the pass sums.
    pub product: Product,
    /// `Qt` from the end of the previous pass (`None` in pass 0).
    pub qt: Option<Arc<DMatrix<f64>>>,
    /// The grids (`None` in pass 0).
    pub grids: Option<Arc<Grids>>,
}

impl PassInput {
    /// Close the pass whose whole sum is `sum`: `Q = qr(Y)` after the sketch and the power
    /// passes (with the grids after the sketch), the projection after the last pass.
    pub fn end(&self, sum: PassSum) -> PassEnd {
        if self.product == Product::Gram {
            let qt = self.qt.as_ref().expect("the last pass has Q");
            return PassEnd::Model(projection_from_gram(sum.into_value(), qt, self.num_topics));
        }
        let grids = sum.grids().map(Arc::new);
        let (qt, _) = linalg::qr(sum.into_value());
        PassEnd::Next {
            q: Arc::new(qt),
            grids,
        }
    }

    /// The input of the pass after this one, which ended as `end` (`None` after the last).
    pub fn next(&self, end: &PassEnd) -> Option<PassInput> {
        let PassEnd::Next { q, grids } = end else {
            return None;
        };
        Some(PassInput {
            qt: Some(q.clone()),
            ..self.next_without_q(q.nrows(), grids.clone())
        })
    }

    /// [`next`](Self::next) without its `Qt` (of `rows` rows), which is kept elsewhere:
    /// everything else the next pass's tasks are checked against.
    pub fn next_without_q(&self, rows: usize, grids: Option<Arc<Grids>>) -> PassInput {
        let pass = self.pass + 1;
        PassInput {
            pass,
            samples: rows,
            product: if pass <= self.power_iters {
                Product::Power
            } else {
                Product::Gram
            },
            qt: None,
            grids: grids.or_else(|| self.grids.clone()),
            ..self.clone()
        }
    }

    /// Whether `end` has the shape of an end of this pass (what a worker sends is checked).
    pub fn end_fits(&self, end: &PassEnd) -> bool {
        match end {
            PassEnd::Model(p) => {
                self.product == Product::Gram
                    && p.num_terms() == self.num_terms
                    && p.num_topics() <= self.num_topics.min(self.samples)
            }
            PassEnd::Next { q, grids } => {
                q.ncols() == self.num_terms && self.next_fits(q.nrows(), grids.as_deref())
            }
        }
    }

    /// Whether a `Qt` of `rows` rows (over this pass's terms) and `grids` have the shape of
    /// an end of this pass that is not the last.
    pub fn next_fits(&self, rows: usize, grids: Option<&Grids>) -> bool {
        self.product != Product::Gram
            && rows <= self.samples
            && match grids {
                Some(g) => self.product == Product::Sketch && g.terms.len() == self.num_terms,
                None => self.product == Product::Power,
            }
    }

    /// The shape of the pass's sum.
    pub fn shape(&self) -> SumShape {
        let (samples, terms) = (self.samples, self.num_terms);
        match self.product {
            Product::Sketch => SumShape::Sketch { samples, terms },
            Product::Power => SumShape::Power { samples, terms },
            Product::Gram => SumShape::Gram { samples },
        }
    }
}

/// How a pass ended ([`PassInput::end`]).
#[derive(Clone, Debug, PartialEq)]
pub enum PassEnd {
    /// `Qt` for the next pass, and the grids if this pass (the sketch) set them.
    Next {
        /// `Qt` (`l × m`, orthonormal rows).
        q: Arc<DMatrix<f64>>,
        /// The grids of the passes after the sketch; `None`: unchanged.
        grids: Option<Arc<Grids>>,
    },
    /// The model, after the last pass.
    Model(Projection),
}

impl PassEnd {
    /// The model, after the last pass.
    pub fn into_model(self) -> Option<Projection> {
        match self {
            PassEnd::Model(projection) => Some(projection),
            PassEnd::Next { .. } => None,
        }
    }
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
    /// Pass 0: `A_c·O_c` on the chunk's terms, with the chunk's share of the bounds.
    Sketch(SketchTerm),
    /// A power pass: `A_c·Z_c` on the chunk's terms.
    Power(TermSums),
    /// The last pass: `Z_cᵀZ_c`, `l × l`.
    Gram(DMatrix<f64>),
}

/// The task of a pass: one chunk's term of its sum.
pub fn pass_term(input: &PassInput, chunk: &SparseChunk) -> PassTerm {
    let a = TermMajor::new(chunk, input.num_terms);
    let docs = chunk.num_docs();
    match (&input.qt, input.product) {
        (Some(qt), Product::Power) => PassTerm::Power(products::term_sums(
            &a,
            &products::project_by_term(&a, docs, qt),
        )),
        (Some(qt), Product::Gram) => {
            PassTerm::Gram(linalg::gram(&products::project_by_term(&a, docs, qt)))
        }
        _ => {
            let ot = products::gaussian(chunk, input.samples, input.seed);
            let sums = products::term_sums(&a, &ot);
            let norms = products::doc_norms(chunk);
            PassTerm::Sketch(SketchTerm {
                bounds: products::term_bounds(&a, &sums.terms, &norms),
                frobenius: norms.iter().map(|n| n * n).sum(),
                sums,
            })
        }
    }
}

/// A randomized SVD in progress.
#[derive(Clone, Debug)]
pub struct StochasticSvd {
    num_terms: usize,
    num_topics: usize,
    samples: usize,
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
        let samples = num_topics + extra_samples;
        StochasticSvd {
            num_terms,
            num_topics,
            samples,
            power_iters,
            seed,
            state: SvdState {
                pass: 0,
                q: None,
                grids: None,
                acc: None,
            },
        }
    }

    /// Continue from a checkpointed state; `acc` may be `None` for a pass not yet begun
    /// (an empty sum). Fails when the state does not fit the shape of this SVD.
    pub fn resume(
        mut self,
        pass: u32,
        q: Option<Arc<DMatrix<f64>>>,
        grids: Option<Arc<Grids>>,
        acc: Option<PassSum>,
    ) -> Result<StochasticSvd, String> {
        let (l, m) = (self.samples, self.num_terms);
        let misfit = || {
            format!(
                "the checkpoint of pass {pass} does not fit an SVD of {m} terms and {l} samples"
            )
        };
        let fits = match (&q, &grids, pass) {
            (None, None, 0) => true,
            (Some(q), Some(g), p) => {
                p > 0
                    && p <= self.power_iters + 1
                    && q.ncols() == m
                    && q.nrows() <= l
                    && g.terms.len() == m
            }
            _ => false,
        };
        if !fits {
            return Err(misfit());
        }
        self.state = SvdState {
            pass,
            q,
            grids,
            acc: None,
        };
        if let Some(acc) = acc {
            // merging it into the empty sum of the pass checks its kind and shape
            self.merge(acc).map_err(|_| misfit())?;
        }
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
            num_topics: self.num_topics,
            power_iters: self.power_iters,
            pass: self.state.pass,
            samples: self.state.q.as_ref().map_or(self.samples, |q| q.nrows()),
            seed: self.seed,
            product,
            qt: self.state.q.clone(),
            grids: self.state.grids.clone(),
        }
    }

    /// An empty partial sum of the current pass, for a worker to add its chunks to.
    pub fn empty_sum(&self) -> PassSum {
        empty_sum(&self.pass_input())
    }

    /// Add one chunk's term to the sum of the current pass (the reduction; any order).
    pub fn add(&mut self, term: &PassTerm) -> Result<(), SumError> {
        let shape = self.pass_input().shape();
        let acc = self.state.acc.get_or_insert_with(|| PassSum::zeros(shape));
        add_term(acc, term, self.state.grids.as_deref())
    }

    /// Add a partial sum of the current pass (a worker's chunks). The first one of a pass
    /// becomes the sum ([`PassSum::plus_zero`]): no empty sum is allocated and added to.
    pub fn merge(&mut self, partial: PassSum) -> Result<(), SumError> {
        let shape = self.pass_input().shape();
        match &mut self.state.acc {
            Some(acc) => acc.merge(&partial),
            None if partial.shape() == Some(shape) => {
                self.state.acc = Some(partial.plus_zero());
                Ok(())
            }
            None => Err(SumError::Internal(
                "internal error: a partial sum of another pass or shape".into(),
            )),
        }
    }

    /// The sum of the current pass, taken out of the state.
    fn take_sum(&mut self) -> PassSum {
        let shape = self.pass_input().shape();
        self.state
            .acc
            .take()
            .unwrap_or_else(|| PassSum::zeros(shape))
    }

    /// Close the current pass. Returns the projection after the last pass.
    pub fn end_pass(&mut self) -> Option<Projection> {
        let sum = self.take_sum();
        let end = self.pass_input().end(sum);
        self.adopt(end)
    }

    /// Go on from the end of the current pass computed elsewhere ([`PassInput::end`] of the
    /// whole sum, by a worker that summed every chunk of it): this state's own sum must be
    /// empty. Returns the projection after the last pass.
    pub fn adopt(&mut self, end: PassEnd) -> Option<Projection> {
        debug_assert!(self.state.acc.is_none(), "a pass ended twice");
        self.state.acc = None;
        match end {
            PassEnd::Model(projection) => Some(projection),
            PassEnd::Next { q, grids } => {
                self.state.pass += 1;
                self.state.q = Some(q);
                if let Some(grids) = grids {
                    self.state.grids = Some(grids);
                }
                None
            }
        }
    }
}

/// An empty partial sum of the pass that `input` describes.
pub fn empty_sum(input: &PassInput) -> PassSum {
    PassSum::zeros(input.shape())
}

/// Add one chunk's term to a (partial) sum of its pass.
pub fn add_term(acc: &mut PassSum, term: &PassTerm, grids: Option<&Grids>) -> Result<(), SumError> {
    let grids = || {
        grids.ok_or_else(|| {
            SumError::Internal("internal error: a pass after the sketch without its grids".into())
        })
    };
    match term {
        PassTerm::Sketch(sketch) => acc.add_sketch(sketch),
        PassTerm::Power(sums) => acc.add_power(sums, grids()?),
        PassTerm::Gram(x) => acc.add_gram(x, grids()?),
    }
}

/// `U_X S² = eig(X)`, `S = √S²`, `U = Q·U_X`, clipped to the factors that carry energy
/// (gensim discards the last 1e-6 of the energy here).
fn projection_from_gram(x: DMatrix<f64>, qt: &DMatrix<f64>, num_topics: usize) -> Projection {
    let (eigenvalues, ux) = linalg::symmetric_eigen_desc(x);
    let energy: Vec<f64> = eigenvalues.iter().map(|&e| e.max(0.0)).collect();
    let keep = clip_spectrum(&energy, num_topics, 1e-6);
    let uxt = ux.columns(0, keep).transpose();
    let mut projection = Projection {
        ut: linalg::left_multiply(&uxt, qt),
        s: energy[..keep].iter().map(|e| e.sqrt()).collect(),
    };
    projection.fix_signs();
    projection
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
    let a = TermMajor::new(chunk, num_terms);
    let range = |zt: &DMatrix<f64>| {
        let mut yt = DMatrix::zeros(zt.nrows(), num_terms);
        products::add_term_sums(&mut yt, &products::term_sums(&a, zt));
        linalg::qr(yt).0
    };
    let mut qt = range(&products::gaussian(chunk, num_topics + extra_samples, seed));
    let project = |qt: &DMatrix<f64>| products::project_by_term(&a, chunk.num_docs(), qt);
    for _ in 0..power_iters {
        qt = range(&project(&qt));
    }
    let x = linalg::gram(&project(&qt));
    projection_from_gram(x, &qt, num_topics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsi::products::tests::{chunk_from_dense, low_rank};

    fn chunks(a: &DMatrix<f64>, chunk_docs: usize) -> Vec<SparseChunk> {
        (0..a.ncols())
            .step_by(chunk_docs)
            .enumerate()
            .map(|(i, start)| {
                let len = chunk_docs.min(a.ncols() - start);
                chunk_from_dense(&a.columns(start, len).into_owned(), i as u64, start as u64)
            })
            .collect()
    }

    fn run(a: &DMatrix<f64>, chunk_docs: usize, k: usize, q: u32) -> Projection {
        let chunks = chunks(a, chunk_docs);
        let mut svd = StochasticSvd::new(a.nrows(), k, 10, q, 7);
        loop {
            for chunk in &chunks {
                svd.add(&pass_term(&svd.pass_input(), chunk)).unwrap();
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
        // the in-memory SVD of the whole matrix as one chunk agrees
        let whole = stochastic_svd(&chunk_from_dense(&a, 0, 0), 60, 5, 10, 2, 7);
        for (s, e) in whole.s.iter().zip(sigmas) {
            assert!((s - e).abs() < 1e-9 * e, "{s} vs {e}");
        }
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
    fn a_pass_ended_by_whoever_holds_its_sum_continues_with_the_same_bits() {
        let a = low_rank(50, 45, &[7.0, 3.0, 2.0, 0.5]);
        let chunks = chunks(&a, 4);
        let straight = run(&a, 4, 3, 2);
        // a "worker" sums every pass, ends it and starts the next from its own end; the
        // job adopts each end and would hand out the same input
        let mut svd = StochasticSvd::new(50, 3, 10, 2, 7);
        let mut input = svd.pass_input();
        let p = loop {
            let mut sum = empty_sum(&input);
            for chunk in &chunks {
                add_term(&mut sum, &pass_term(&input, chunk), input.grids.as_deref()).unwrap();
            }
            let end = input.end(sum);
            assert!(input.end_fits(&end));
            let next = input.next(&end);
            if let Some(p) = svd.adopt(end) {
                assert!(next.is_none());
                break p;
            }
            let (ours, next) = (svd.pass_input(), next.unwrap());
            assert_eq!(
                (ours.pass, ours.samples, ours.product),
                (next.pass, next.samples, next.product)
            );
            assert!(Arc::ptr_eq(
                ours.qt.as_ref().unwrap(),
                next.qt.as_ref().unwrap()
            ));
            assert_eq!(ours.grids, next.grids);
            input = next;
        };
        assert_eq!(p, straight);
        // an end of another pass, or of another shape, does not fit
        let first = StochasticSvd::new(50, 3, 10, 2, 7).pass_input();
        let model = PassEnd::Model(p);
        assert!(!first.end_fits(&model));
        let narrow = PassEnd::Next {
            q: Arc::new(DMatrix::zeros(13, 49)),
            grids: None,
        };
        assert!(!first.end_fits(&narrow));
    }

    #[test]
    fn any_order_and_grouping_of_chunks_gives_the_same_bits() {
        let a = low_rank(50, 45, &[7.0, 3.0, 2.0, 0.5]);
        let chunks = chunks(&a, 4);
        let straight = run(&a, 4, 3, 2);
        // three "workers" take the chunks round-robin, in reverse, and send partial sums
        let mut svd = StochasticSvd::new(50, 3, 10, 2, 7);
        let p = loop {
            let input = svd.pass_input();
            let mut partials = vec![empty_sum(&input); 3];
            for (c, chunk) in chunks.iter().enumerate().rev() {
                let term = pass_term(&input, chunk);
                add_term(&mut partials[c % 3], &term, input.grids.as_deref()).unwrap();
            }
            for partial in partials.into_iter().rev() {
                svd.merge(partial).unwrap();
            }
            if let Some(p) = svd.end_pass() {
                break p;
            }
        };
        assert_eq!(p, straight);
    }

    #[test]
    fn the_result_does_not_depend_on_resuming_from_a_state() {
        let a = low_rank(40, 30, &[4.0, 2.0, 1.0]);
        let chunks = chunks(&a, 6);
        let straight = run(&a, 6, 3, 2);
        let mut svd = StochasticSvd::new(40, 3, 10, 2, 7);
        for chunk in &chunks {
            svd.add(&pass_term(&svd.pass_input(), chunk)).unwrap();
        }
        svd.end_pass();
        svd.add(&pass_term(&svd.pass_input(), &chunks[0])).unwrap();
        let saved = svd.state().clone();
        let mut resumed = StochasticSvd::new(40, 3, 10, 2, 7)
            .resume(saved.pass, saved.q, saved.grids, saved.acc)
            .unwrap();
        for chunk in &chunks[1..] {
            resumed
                .add(&pass_term(&resumed.pass_input(), chunk))
                .unwrap();
        }
        let p = loop {
            if let Some(p) = resumed.end_pass() {
                break p;
            }
            for chunk in &chunks {
                resumed
                    .add(&pass_term(&resumed.pass_input(), chunk))
                    .unwrap();
            }
        };
        assert_eq!(p, straight);
        let fresh = || StochasticSvd::new(40, 3, 10, 2, 7);
        assert!(fresh().resume(1, None, None, None).is_err());
        let sketch = Some(PassSum::sketch(2, 2));
        assert!(fresh().resume(0, None, None, sketch).is_err());
    }
}
