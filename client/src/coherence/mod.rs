//! Topic coherence as gensim 4.4's `CoherenceModel` computes it (u_mass, c_uci, c_npmi),
//! computed by topicctl over a corpus or texts it reads itself: the daemon only sends the
//! model's matrix and dictionary.
//!
//! | module | owns |
//! |---|---|
//! | [`top_words`] | each topic's `topn` top words, as `CoherenceModel(model=...)` picks them from `get_topics()` |
//! | [`counts`] | counting occurrences and co-occurrences of the top words only, in documents or gensim's sliding windows, on every core |
//! | [`sources`] | reading a bag-of-words corpus or raw texts once, streaming, and counting them |
//! | [`measures`] | the segmentations, the confirmation measures and numpy's mean, as gensim computes them |
//!
//! [`evaluate`] puts them together: the union of the topics' top words is numbered, the
//! input counted, and each topic's coherence computed, then their mean.

pub mod counts;
pub mod measures;
pub mod sources;
pub mod top_words;

use std::path::PathBuf;

use rustc_hash::FxHashMap;
use topicd_protocol::CorpusFormat;

use crate::prepare::Tokenizer;
use counts::Relevant;
pub use measures::Measure;
use sources::Units;

/// What the counts come from.
pub enum Input {
    /// A bag-of-words corpus with the model's term ids (u_mass).
    Corpus {
        /// Its path.
        path: PathBuf,
        /// Its format, or None to detect it.
        format: Option<CorpusFormat>,
    },
    /// Texts, tokenized as `prepare` does.
    Texts {
        /// A file of one document per line, a directory of `.txt` files, or `-`.
        path: PathBuf,
        /// `simple_preprocess`'s settings and stop words.
        tokenizer: Tokenizer,
        /// Sliding windows of this many tokens (c_uci, c_npmi), or None for whole documents
        /// (u_mass).
        window: Option<usize>,
    },
}

/// A model's coherence.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Documents counted, or sliding windows (gensim's `num_docs` of its accumulator).
    pub docs: u64,
    /// Each topic's coherence.
    pub topics: Vec<f64>,
    /// Their mean (gensim's `get_coherence()`).
    pub mean: f64,
}

/// The coherence of `topics` (each a list of term ids, best first) of a model of `num_terms`
/// terms, by `measure`, counted over `input`; `tokens` gives the token of each top word (those
/// without one never match a text).
pub fn evaluate(
    measure: Measure,
    topics: &[Vec<u32>],
    num_terms: u64,
    tokens: &FxHashMap<u32, String>,
    input: &Input,
) -> anyhow::Result<Evaluation> {
    let num_terms_index = usize::try_from(num_terms)
        .map_err(|_| anyhow::anyhow!("a model of {num_terms} terms is too large here"))?;
    let relevant = Relevant::new(topics, num_terms_index);
    let counts = match input {
        Input::Corpus { path, format } => {
            sources::count_corpus(path, *format, num_terms, &relevant)?
        }
        Input::Texts {
            path,
            tokenizer,
            window,
        } => {
            let mut numbers: FxHashMap<Box<str>, u32> = FxHashMap::default();
            for c in 0..relevant.len() as u32 {
                if let Some(token) = tokens.get(&relevant.id(c)) {
                    numbers.entry(token.as_str().into()).or_insert(c);
                }
            }
            let units = window.map_or(Units::Documents, Units::Windows);
            sources::count_texts(path, tokenizer, &numbers, &relevant, units)?
        }
    };
    let topics = measures::topic_coherences(measure, &relevant, &counts);
    let mean = measures::numpy_mean(&topics);
    Ok(Evaluation {
        docs: counts.docs,
        topics,
        mean,
    })
}
