//! `topicctl generate`: a synthetic corpus of English Wikipedia's shape with planted topics,
//! written as `topicctl prepare` writes a real one (gensim's `wordids.txt` and Matrix Market
//! corpora, through `prepare`'s writers and `topicd_numerics::tfidf`), deterministic from
//! its seed. This module owns the command's options, the passes and the topics file; the
//! generative model is in `model`.
//!
//! The shape ([`model::WIKIPEDIA`]), after gensim's wiki_en (3.9M documents, 100,000
//! terms, about 0.76G non-zeros: 195 distinct terms per document on average):
//!
//! - tokens per document: log-normal, `round(exp(5.13 + 1.0·Z))` (at least 1): mean
//!   e^5.63 ≈ 279 tokens, median 169, heavy-tailed; with 100,000 terms and 100 topics, about
//!   195 distinct terms per document;
//! - background: Zipf–Mandelbrot over the vocabulary, term r (0-based) ∝ (r + 30)^−1.05 (the
//!   offset stands for the stop words filter_extremes removed), 40% of the tokens;
//! - topics (K, default 100): each owns a disjoint set of at most 1,000 terms taken at random
//!   outside the background's head (the first 5% of the terms), Zipf-weighted within the set
//!   (∝ 1/(j+1)); a document mixes 1 to 3 topics chosen at random with Dirichlet(1, ..., 1)
//!   weights, which draw the other 60% of its tokens.
//!
//! Document i is a pure function of (seed, i) (see `model`), so the generator runs twice
//! cheaply: pass 1 counts the document frequencies (the dictionary's, exact), pass 2 writes;
//! with compression, a pass in between counts the TF-IDF entries, as a compressed file's size
//! line comes first. Documents are made in pieces of about 2 MB of text by every core
//! (rayon), formatted there, compressed there as one gzip member or bzip2 stream per piece
//! and corpus (files of several members, which gensim, `gzip -d`, `bzip2 -d` and topicd
//! read as one), and written in order; the pieces depend on the options alone, so the
//! files do not depend on the number of threads.
//!
//! Memory does not grow with the number of documents: the vocabulary's tables (the
//! dictionary's frequencies and IDF, 100,000 terms: a few MB) and two batches of pieces
//! (two pieces per thread, at least four), whose buffers are reused; nothing is kept per
//! document. Peak RSS, 100,000 terms, plain files, release build on 2 cores: 24 MB at
//! 100,000 documents, 30 MB at 1,000,000 (the difference: pieces that were larger, bounded
//! by the room reserved per piece).
//!
//! Cost (2 cores, `perf`): drawing the tokens is about half of the CPU time (done once per
//! pass), formatting the numbers (`itoa`, `zmij`) and the TF-IDF weights most of the rest;
//! bzip2 at level 9 costs more than all of them together and gzip about as much.
//! Figures in `docs/scaling.md`.
//!
//! Files (PREFIX_ as `prepare`; `.gz`/`.bz2` appended with --compress, but to the topics):
//! `wordids.txt` (term r is `w` and r in at least 6 digits, so ids and names sort alike),
//! `bow.mm`, `tfidf.mm`, and `topics.txt`, the planted topics:
//!
//! ```text
//! # topicctl generate: seed 1, 100000 docs, 100000 terms, 100 topics
//! # background 0.4: zipf exponent 1.05 offset 30
//! # topic<TAB>term id<TAB>token<TAB>probability within the topic's own terms
//! 0    59192    w059192    1.345134e-1
//! ```
//!
//! Columns are separated by tabs. Every term of every topic is listed, most probable first.
//! A topic's term distribution, as a document sees it, is
//! `background · zipf + (1 − background) · own`, `zipf` being the background's law over
//! all the terms and `own` the probabilities listed.

mod model;
mod run;

use std::path::PathBuf;

use clap::Args;

pub use model::{Model, WIKIPEDIA};
pub use run::run;

use crate::prepare::Compression;

/// `generate`'s options.
#[derive(Clone, Debug, Args)]
pub struct GenerateArgs {
    /// Number of documents (at least 1).
    #[arg(long, value_name = "N")]
    pub docs: u64,

    /// Number of terms of the vocabulary (at least --topics); wiki_en has 100000.
    #[arg(long, value_name = "V", default_value_t = 100_000)]
    pub terms: usize,

    /// Seed: the same seed and options give the same files, byte for byte, on any machine
    /// and with any number of threads.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,

    /// Prefix of the files written: PREFIX_wordids.txt, PREFIX_bow.mm, PREFIX_tfidf.mm (as
    /// `prepare` writes them) and PREFIX_topics.txt (the planted topics). The directory is
    /// created if needed; each file appears complete, replacing an older one.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,

    /// Compress the dictionary and the corpora (not the topics): gz or bz2, appended to
    /// their names (PREFIX_bow.mm.bz2, as gensim's make_wiki writes them).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub compress: Option<Compression>,

    /// Number of planted topics (K); each document mixes 1 to 3 of them.
    #[arg(long, value_name = "K", default_value_t = 100)]
    pub topics: usize,
}

impl GenerateArgs {
    /// Why the options cannot be used, if they cannot.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.docs == 0 {
            anyhow::bail!("--docs 0: generate at least one document");
        }
        if self.topics == 0 {
            anyhow::bail!("--topics 0: plant at least one topic");
        }
        if self.terms < self.topics {
            anyhow::bail!(
                "--terms {} is fewer than --topics {}: each topic needs terms of its own",
                self.terms,
                self.topics
            );
        }
        if self.terms > u32::MAX as usize / 2 {
            anyhow::bail!("--terms {}: at most {}", self.terms, u32::MAX / 2);
        }
        Ok(())
    }
}

/// The token of term `id`: `w` and the id in at least 6 digits (all of the same width).
pub fn token(id: u32, width: usize) -> String {
    format!("w{id:0width$}")
}

/// The width of the tokens' numbers for `terms` terms.
pub fn token_width(terms: usize) -> usize {
    terms.saturating_sub(1).to_string().len().max(6)
}

#[cfg(test)]
mod tests;
