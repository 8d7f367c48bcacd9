//! The generative model of `topicctl generate`: its random numbers, the background and topic
//! term distributions, and each document as a pure function of (seed, document index).
//!
//! - Random numbers: xoshiro256++ (`rand_xoshiro`, Blackman and Vigna, 2019), its state
//!   filled by SplitMix64 from a 64-bit key (`seed_from_u64`). Document `i` uses the key
//!   `splitmix64(splitmix64(seed) ^ i)`; the topics use `splitmix64(seed ^ TOPICS_KEY)`.
//!   Integer draws are exact on every platform; the few draws that go through `ln`, `cos`
//!   or `exp` (document lengths, topic weights) are rounded or compared, so a last-bit
//!   difference between C libraries could only matter on an exact tie.
//! - Terms are drawn from Walker alias tables (one 64-bit draw per term). The background's
//!   is in two: its first [`HEAD_TERMS`] terms (about 70% of its mass for wiki_en's shape,
//!   a table that stays in a core's cache), and the others.

use rand::{Rng as _, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::prepare::splitmix64;

/// Terms of the background's first table.
pub const HEAD_TERMS: usize = 8192;

/// Domain separation of the topics' key from the documents' keys.
const TOPICS_KEY: u64 = 0x746f_7069_6373_2121;

/// xoshiro256++ seeded by SplitMix64, and the draws `generate` makes of it.
#[derive(Clone, Debug)]
pub struct Rng(Xoshiro256PlusPlus);

impl Rng {
    /// The generator seeded from `key` (its state: SplitMix64's outputs after `key`).
    pub fn new(key: u64) -> Rng {
        Rng(Xoshiro256PlusPlus::seed_from_u64(key))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in (0, 1].
    pub fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (multiply-shift: a bias below n / 2^64).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.open01(), self.open01());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Walker's alias table: draws index `i` with probability `weights[i] / sum`.
#[derive(Clone, Debug)]
pub struct Alias {
    /// For each `i`: keep `i` when the draw's fraction (32 bits) is below the first, else
    /// take the second. 8 bytes a cell: the background's table of 100,000 terms is read at
    /// random once per token, and stays in a core's cache better small.
    cells: Vec<(u32, u32)>,
}

impl Alias {
    /// The table of non-negative `weights` (not all 0), by Vose's method.
    pub fn new(weights: &[f64]) -> Alias {
        let n = weights.len();
        let sum: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / sum).collect();
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&i| scaled[i as usize] < 1.0);
        let mut keep = vec![u32::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            keep[s as usize] = (scaled[s as usize] * 2f64.powi(32)) as u32;
            alias[s as usize] = l;
            scaled[l as usize] -= 1.0 - scaled[s as usize];
            if scaled[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left is 1 up to rounding: always kept.
        Alias {
            cells: keep.into_iter().zip(alias).collect(),
        }
    }

    /// One draw (without a branch on the table's contents, so that the draws of a
    /// document overlap their cache misses).
    pub fn sample(&self, rng: &mut Rng) -> u32 {
        let product = u128::from(rng.next_u64()) * self.cells.len() as u128;
        let i = (product >> 64) as usize;
        let (keep, alias) = self.cells[i];
        let fraction = ((product as u64) >> 32) as u32;
        let kept = u32::from(fraction < keep).wrapping_neg();
        (i as u32 & kept) | (alias & !kept)
    }
}

/// The shape of the corpus: the figures of the module documentation of `generate`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shape {
    /// Zipf–Mandelbrot exponent of the background: weight of rank r (0-based) ∝ (r + offset)^−exponent.
    pub zipf_exponent: f64,
    /// Zipf–Mandelbrot offset (the frequent words gensim's filter_extremes removed).
    pub zipf_offset: f64,
    /// μ of the log-normal number of tokens per document.
    pub length_mu: f64,
    /// σ of the log-normal number of tokens per document.
    pub length_sigma: f64,
    /// Share of a document's tokens drawn from the background rather than its topics.
    pub background: f64,
    /// Most topics in one document (each has 1 to this many, uniformly).
    pub max_doc_topics: u64,
    /// Most terms of a topic's own.
    pub max_topic_terms: usize,
}

/// English Wikipedia's shape (gensim's wiki_en after filter_extremes).
pub const WIKIPEDIA: Shape = Shape {
    zipf_exponent: 1.05,
    zipf_offset: 30.0,
    length_mu: 5.13,
    length_sigma: 1.0,
    background: 0.4,
    max_doc_topics: 3,
    max_topic_terms: 1000,
};

/// The planted model: a background distribution and K topics over V terms.
#[derive(Clone, Debug)]
pub struct Model {
    shape: Shape,
    /// The background's first [`HEAD_TERMS`] terms, and the others (ids from
    /// [`HEAD_TERMS`] on; `None` with fewer terms).
    head: Alias,
    tail: Option<Alias>,
    /// Each topic's own terms, most probable first, and their probabilities.
    topics: Vec<(Vec<u32>, Vec<f64>)>,
    /// The draw of a rank within a topic's own terms: the same law for every topic, so
    /// one table, always in cache; the terms of the ranks drawn most are too.
    own: Alias,
    /// A draw below this takes a term of the background's head, below the next one a
    /// term of its tail, else a topic's term.
    head_threshold: u64,
    background_threshold: u64,
}

impl Model {
    /// The model of `terms` terms and `topics` topics (1 ≤ topics ≤ terms) for `seed`.
    ///
    /// Term `r` is the background's rank r. The topics' own terms are disjoint: the terms
    /// past the first 5% (the background's head, shared by all), shuffled, then cut in
    /// `topics` slices of at most `max_topic_terms`; within its slice a topic's weights
    /// are Zipf (∝ 1 / (j + 1)).
    pub fn new(shape: Shape, seed: u64, terms: usize, topics: usize) -> Model {
        let weights: Vec<f64> = (0..terms)
            .map(|r| (r as f64 + shape.zipf_offset).powf(-shape.zipf_exponent))
            .collect();
        let head = (terms / 20).min(terms - topics);
        let mut pool: Vec<u32> = (head as u32..terms as u32).collect();
        let mut rng = Rng::new(splitmix64(seed ^ TOPICS_KEY));
        for i in (1..pool.len()).rev() {
            pool.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let per_topic = (pool.len() / topics).min(shape.max_topic_terms);
        let topics: Vec<(Vec<u32>, Vec<f64>)> = pool
            .chunks_exact(per_topic)
            .take(topics)
            .map(|slice| {
                let w: Vec<f64> = (0..slice.len()).map(|j| 1.0 / (j as f64 + 1.0)).collect();
                let sum: f64 = w.iter().sum();
                (slice.to_vec(), w.iter().map(|x| x / sum).collect())
            })
            .collect();
        let split = weights.len().min(HEAD_TERMS);
        let (head, tail) = weights.split_at(split);
        let head_share = head.iter().sum::<f64>() / weights.iter().sum::<f64>();
        Model {
            shape,
            head: Alias::new(head),
            tail: (!tail.is_empty()).then(|| Alias::new(tail)),
            own: Alias::new(&topics[0].1),
            topics,
            head_threshold: (shape.background * head_share * 2f64.powi(64)) as u64,
            background_threshold: (shape.background * 2f64.powi(64)) as u64,
        }
    }

    /// Each topic's own terms, most probable first, with their probabilities (summing to 1).
    pub fn topics(&self) -> &[(Vec<u32>, Vec<f64>)] {
        &self.topics
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Document `index`'s bag of words, `(term, count)` by increasing term, into `out`.
    /// `tokens` is scratch space.
    pub fn document(
        &self,
        seed: u64,
        index: u64,
        tokens: &mut Vec<u32>,
        out: &mut Vec<(u32, u32)>,
    ) {
        out.clear();
        tokens.clear();
        let mut rng = Rng::new(splitmix64(splitmix64(seed) ^ index));
        let length = (self.shape.length_mu + self.shape.length_sigma * rng.normal())
            .exp()
            .round()
            .clamp(1.0, 1e7) as u64;
        // A Dirichlet(1, ..., 1) draw over 1 to max_doc_topics topics chosen at random.
        let chosen = 1 + rng.below(self.shape.max_doc_topics) as usize;
        let mut mixture = [(0u32, 0.0f64); 8];
        let mixture = &mut mixture[..chosen.min(8)];
        for slot in mixture.iter_mut() {
            *slot = (
                rng.below(self.topics.len() as u64) as u32,
                -rng.open01().ln(),
            );
        }
        let total: f64 = mixture.iter().map(|&(_, g)| g).sum();
        let mut cumulative = 0.0;
        let mut thresholds = [(0u32, 0u64); 8];
        let thresholds = &mut thresholds[..mixture.len()];
        for (threshold, &(topic, g)) in thresholds.iter_mut().zip(mixture.iter()) {
            cumulative += g / total;
            *threshold = (topic, (cumulative.min(1.0) * 2f64.powi(64)) as u64);
        }
        let last = thresholds[thresholds.len() - 1].0;
        // The tokens first, then counted by sorting: no table of counts per term to read
        // at random, no branch on what was drawn before.
        tokens.extend((0..length).map(|_| {
            let u = rng.next_u64();
            if u < self.head_threshold {
                self.head.sample(&mut rng)
            } else if let (Some(tail), true) = (&self.tail, u < self.background_threshold) {
                HEAD_TERMS as u32 + tail.sample(&mut rng)
            } else {
                let u = rng.next_u64();
                let topic = thresholds
                    .iter()
                    .find(|&&(_, t)| u < t)
                    .map_or(last, |&(k, _)| k) as usize;
                let j = self.own.sample(&mut rng);
                self.topics[topic].0[j as usize]
            }
        }));
        tokens.sort_unstable();
        for &term in tokens.iter() {
            match out.last_mut() {
                Some((last, count)) if *last == term => *count += 1,
                _ => out.push((term, 1)),
            }
        }
    }
}
