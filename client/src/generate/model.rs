//! The generative model of `topicctl generate`: its random numbers, the background and topic
//! term distributions, and each document as a pure function of (seed, document index).
//!
//! - Random numbers: xoshiro256++ (Blackman and Vigna, 2019), its state filled by
//!   SplitMix64 from a 64-bit key. Document `i` uses the key
//!   `splitmix64(splitmix64(seed) ^ i)`; the topics use `splitmix64(seed ^ TOPICS_KEY)`.
//!   Integer draws are exact on every platform; the few draws that go through `ln`, `cos`
//!   or `exp` (document lengths, topic weights) are rounded or compared, so a last-bit
//!   difference between C libraries could only matter on an exact tie.
//! - Terms are drawn from Walker alias tables (one 64-bit draw per term).

use crate::prepare::splitmix64;

/// Domain separation of the topics' key from the documents' keys.
const TOPICS_KEY: u64 = 0x746f_7069_6373_2121;

/// xoshiro256++ seeded by SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// The generator whose state is the first four SplitMix64 outputs after `key`.
    pub fn new(key: u64) -> Rng {
        let mut x = key;
        let mut s = [0; 4];
        for word in &mut s {
            *word = splitmix64(x);
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        }
        Rng { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
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
    /// For each `i`: keep `i` when the low 64 bits of the draw are below the first, else
    /// take the second (together: one cache line read per draw).
    cells: Vec<(u64, u32)>,
}

impl Alias {
    /// The table of non-negative `weights` (not all 0), by Vose's method.
    pub fn new(weights: &[f64]) -> Alias {
        let n = weights.len();
        let sum: f64 = weights.iter().sum();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / sum).collect();
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&i| scaled[i as usize] < 1.0);
        let mut keep = vec![u64::MAX; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            keep[s as usize] = (scaled[s as usize] * 2f64.powi(64)) as u64;
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

    /// One draw.
    pub fn sample(&self, rng: &mut Rng) -> u32 {
        let product = u128::from(rng.next_u64()) * self.cells.len() as u128;
        let i = (product >> 64) as usize;
        let (keep, alias) = self.cells[i];
        if (product as u64) < keep {
            i as u32
        } else {
            alias
        }
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
    terms: usize,
    background: Alias,
    /// Each topic's own terms, most probable first, and their probabilities.
    topics: Vec<(Vec<u32>, Vec<f64>)>,
    topic_tables: Vec<Alias>,
    /// A draw below this takes a background term.
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
        Model {
            shape,
            terms,
            background: Alias::new(&weights),
            topic_tables: topics.iter().map(|(_, w)| Alias::new(w)).collect(),
            topics,
            background_threshold: (shape.background * 2f64.powi(64)) as u64,
        }
    }

    /// Number of terms.
    pub fn terms(&self) -> usize {
        self.terms
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
    /// `counts` is scratch space of one zero per term, left zero.
    pub fn document(&self, seed: u64, index: u64, counts: &mut [u32], out: &mut Vec<(u32, u32)>) {
        out.clear();
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
        let thresholds: Vec<(u32, u64)> = mixture
            .iter()
            .map(|&(topic, g)| {
                cumulative += g / total;
                (topic, (cumulative.min(1.0) * 2f64.powi(64)) as u64)
            })
            .collect();
        for _ in 0..length {
            let term = if rng.next_u64() < self.background_threshold {
                self.background.sample(&mut rng)
            } else {
                let u = rng.next_u64();
                let topic = thresholds
                    .iter()
                    .find(|&&(_, t)| u < t)
                    .map_or(thresholds[thresholds.len() - 1].0, |&(k, _)| k)
                    as usize;
                let j = self.topic_tables[topic].sample(&mut rng);
                self.topics[topic].0[j as usize]
            };
            let count = &mut counts[term as usize];
            if *count == 0 {
                out.push((term, 0));
            }
            *count += 1;
        }
        out.sort_unstable_by_key(|&(term, _)| term);
        for (term, count) in out.iter_mut() {
            *count = std::mem::take(&mut counts[*term as usize]);
        }
    }
}
