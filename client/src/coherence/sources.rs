//! Reading what the counts come from, once and streaming, with one thread reading (and
//! decompressing, parsing) ahead while every core counts the batch before:
//!
//! - a bag-of-words corpus in any format topicd reads ([`count_corpus`]), in chunks of
//!   [`CHUNK_DOCS`] documents; its term ids must be the model's (the header may not declare
//!   more terms than the model has); runs of empty documents are counted without being built;
//! - texts, one document per line or per `.txt` file as `prepare` reads them
//!   ([`count_texts`]), tokenized as `prepare` tokenizes them (`simple_preprocess` and the stop
//!   words) — the token lists a gensim user passes as `texts=` — and the tokens matched against
//!   the top words' tokens: as sliding windows (c_uci, c_npmi), or as whole documents (u_mass
//!   without a corpus: gensim's `doc2bow` of each text).

use std::path::Path;
use std::sync::mpsc;

use anyhow::Context as _;
use rustc_hash::FxHashMap;
use topicd::corpus::{CorpusReader, MmOptions, Piece};
use topicd_protocol::CorpusFormat;

use super::counts::{Counts, Relevant};
use crate::batches::Meter;
use crate::output;
use crate::prepare::{self, Source, Tokenizer};

/// Documents per chunk of a corpus: enough for every core to have work.
pub const CHUNK_DOCS: usize = 8192;

/// Count the documents of the corpus at `path` (in `format`, or detected), whose term ids
/// must be below `num_terms`.
pub fn count_corpus(
    path: &Path,
    format: Option<CorpusFormat>,
    num_terms: u64,
    relevant: &Relevant,
) -> anyhow::Result<Counts> {
    let mut reader = CorpusReader::open(path, format, MmOptions::default())?;
    let declared = reader.header().num_terms;
    if declared > num_terms {
        anyhow::bail!(
            "the corpus {} has {declared} terms (ids up to {}), but the model has {num_terms}: \
             count a corpus whose term ids are those of the job's dictionary",
            output::printable_path(path),
            declared - 1
        );
    }
    let mut meter = Meter::new(reader.header().num_docs, "counted", true);
    let mut total = relevant.zero();
    std::thread::scope(|scope| {
        let (sender, pieces) = mpsc::sync_channel(2);
        let read = scope.spawn(move || {
            loop {
                match reader.next_piece(CHUNK_DOCS) {
                    Ok(Some(piece)) => {
                        // The counting stopped: it failed, and says why.
                        if sender.send(piece).is_err() {
                            return Ok(());
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(anyhow::Error::from(e)),
                }
            }
        });
        for piece in pieces {
            let docs = match piece {
                Piece::Chunk(chunk) => {
                    let counts = relevant.count_parallel(chunk.num_docs(), |j, set, counts| {
                        relevant.count_document(chunk.doc(j).0, set, counts)
                    });
                    total = std::mem::replace(&mut total, relevant.zero()).sum(counts);
                    chunk.num_docs() as u64
                }
                Piece::Empty(run) => {
                    total.docs += run.docs;
                    run.docs
                }
            };
            meter.add(docs as usize);
        }
        read.join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the corpus reader panicked")))
    })?;
    meter.finish();
    Ok(total)
}

/// How `count_texts` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Units {
    /// Sliding windows of this many tokens.
    Windows(usize),
    /// Whole documents.
    Documents,
}

/// Count the texts of `docs` (a file of one document per line, a directory of `.txt` files,
/// or `-`), tokenized by `tokenizer`; `tokens` maps each top word's token to its contiguous
/// number.
pub fn count_texts(
    docs: &Path,
    tokenizer: &Tokenizer,
    tokens: &FxHashMap<Box<str>, u32>,
    relevant: &Relevant,
    units: Units,
) -> anyhow::Result<Counts> {
    let source = Source::open(docs, &std::env::temp_dir())?;
    let mut total = relevant.zero();
    prepare::pipelined(&source, |batch| {
        let counts = relevant.count_parallel(batch.len(), |i, set, counts| {
            let text = tokenizer.normalize(batch.doc(i));
            let words = tokenizer.tokens(&text).map(|t| tokens.get(t).copied());
            match units {
                Units::Windows(window) => {
                    let words: Vec<Option<u32>> = words.collect();
                    relevant.count_windows(&words, window, set, counts)
                }
                Units::Documents => relevant.count_words(words.flatten(), set, counts),
            }
        });
        total = std::mem::replace(&mut total, relevant.zero()).sum(counts);
        Ok(())
    })
    .with_context(|| format!("cannot count the texts {}", output::printable_path(docs)))?;
    Ok(total)
}
