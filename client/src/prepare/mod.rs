//! `topicctl prepare`: raw text to gensim's dictionary and Matrix Market corpora, as
//! gensim's `simple_preprocess` + `Dictionary` + `filter_extremes` + `doc2bow` +
//! `TfidfModel` + `MmCorpus.serialize` would write them.
//!
//! | module | owns |
//! |---|---|
//! | `text` | reading documents from a file, a directory or standard input, compressed or not, in batches of bounded documents |
//! | `tokenize` | `simple_preprocess`: decoding, lowercasing, deaccenting, the token pattern, lengths, stop words |
//! | `vocabulary` | counting document frequencies, `filter_extremes`, `compactify`, `save_as_text` |
//! | `mm_writer` | `MmCorpus.serialize`'s files, byte for byte, plain or compressed |
//! | `mm_text` | the entries' text: integers, and floats as Python's `repr` |
//! | `compression` | gzip and bzip2 settings, and independent members compressed in parallel |
//!
//! The TF-IDF weights are `topicd_numerics::tfidf`'s, the daemon's own for `submit --tfidf`.
//!
//! Two passes over the input: the first counts the vocabulary and document frequencies of
//! the training documents, the second writes the corpora. Memory is bounded by the
//! vocabulary and a few batches of documents in flight, not by the corpus. One thread reads
//! and decompresses; the documents of each batch are tokenized by every core (rayon), in
//! order. The outputs are written beside their final names and appear together at the end,
//! complete ([`topicd::atomic_file`]); nothing is left behind on failure.
//!
//! Held-out split: document `i` (0-based, in input order) is held out when
//! `splitmix64(splitmix64(seed) ^ i) / 2^64 < heldout` (see [`is_heldout`]): a pure
//! function of the seed and the index, so the split does not depend on threads or batches.

mod compression;
mod mm_text;
mod mm_writer;
mod text;
mod tokenize;
mod vocabulary;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use topicd::atomic_file::{self, AtomicFile};

pub use compression::{Compression, Encoder};
pub use mm_text::format_document;
pub use mm_writer::{Block, MmWriter};
pub use text::{Batch, MAX_DOCUMENT, Source};
pub use tokenize::Tokenizer;

use topicd_numerics::tfidf::Idf;
use vocabulary::{Counter, Vocabulary};

/// What `prepare` does.
#[derive(Debug)]
pub struct Options {
    /// The documents: a file (one per line), a directory of `.txt` files, or `-`.
    pub docs: PathBuf,
    /// The outputs' prefix: `PREFIX_wordids.txt`, `PREFIX_bow.mm`, ...
    pub out: PathBuf,
    /// `simple_preprocess`'s settings and the stop words.
    pub tokenizer: Tokenizer,
    /// `filter_extremes`' no_below.
    pub no_below: u64,
    /// `filter_extremes`' no_above.
    pub no_above: f64,
    /// `filter_extremes`' keep_n (`None`: no limit).
    pub keep_n: Option<usize>,
    /// Fraction of documents held out, in [0, 1).
    pub heldout: f64,
    /// Seed of the held-out split.
    pub seed: u64,
    /// Longest document accepted, in bytes.
    pub max_document: usize,
}

/// What `prepare` wrote.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    /// Documents read.
    pub documents: u64,
    /// Documents of the training corpus (the dictionary's num_docs).
    pub train_documents: u64,
    /// Documents held out.
    pub heldout_documents: u64,
    /// Distinct tokens before filter_extremes.
    pub tokens_before_filter: usize,
    /// Terms in the dictionary.
    pub terms: usize,
    /// Non-zero entries of the bag-of-words training corpus.
    pub bow_nnz: u64,
    /// Non-zero entries of the TF-IDF corpus.
    pub tfidf_nnz: u64,
    /// The files written.
    pub files: Vec<PathBuf>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Whether document `index` is held out: `splitmix64(splitmix64(seed) ^ index)`, as a
/// fraction of 2^64, is below `fraction`.
pub fn is_heldout(seed: u64, index: u64, fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    let h = splitmix64(splitmix64(seed) ^ index);
    ((h >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

/// The output function of SplitMix64 (Steele, Lea and Flood, 2014).
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The output file `PREFIX_suffix`.
pub fn output_path(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.file_name().unwrap_or_default().to_owned();
    name.push("_");
    name.push(suffix);
    prefix.with_file_name(name)
}

/// Run `prepare`.
pub fn run(options: &Options) -> anyhow::Result<Summary> {
    let started = Instant::now();
    if options.out.file_name().is_none() || options.out.as_os_str().to_string_lossy().ends_with('/')
    {
        anyhow::bail!(
            "--out {}: give a prefix for the files' names, such as out/wiki",
            options.out.display()
        );
    }
    let dir = atomic_file::directory_of(&options.out).to_owned();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut source = Source::open(&options.docs, &dir)?;
    source.max_document = options.max_document;

    // Pass 1: the vocabulary of the training documents.
    let counter = count(&source, options)?;
    let documents_seen = counter.total;
    let tokens_before_filter = counter.counter.len();
    let vocabulary =
        counter
            .counter
            .filter_extremes(options.no_below, options.no_above, options.keep_n);

    let split = options.heldout > 0.0;
    let wordids = output_path(&options.out, "wordids.txt");
    let mut dictionary = create(&wordids)?;
    vocabulary
        .write_text(&mut dictionary)
        .with_context(|| format!("cannot write {}", wordids.display()))?;

    // Pass 2: the corpora.
    let bow_path = output_path(&options.out, if split { "bow_train.mm" } else { "bow.mm" });
    let tfidf_path = output_path(&options.out, "tfidf.mm");
    let heldout_path = output_path(&options.out, "bow_heldout.mm");
    let mut outputs = Outputs {
        bow: mm(&bow_path)?,
        tfidf: mm(&tfidf_path)?,
        heldout: if split {
            Some(mm(&heldout_path)?)
        } else {
            None
        },
        bow_nnz: 0,
        tfidf_nnz: 0,
    };
    let written = write_corpora(&source, options, &vocabulary, &mut outputs, documents_seen)?;
    if written != documents_seen {
        anyhow::bail!(
            "{}: changed while being read ({documents_seen} documents, then {written})",
            options.docs.display()
        );
    }

    let train_documents = outputs.bow.num_docs();
    let heldout_documents = outputs.heldout.as_ref().map_or(0, MmWriter::num_docs);
    let (bow_nnz, tfidf_nnz) = (outputs.bow_nnz, outputs.tfidf_nnz);
    let mut files = vec![wordids.clone(), bow_path.clone()];
    if split {
        files.push(heldout_path.clone());
    }
    files.push(tfidf_path.clone());
    let finished =
        |path: &Path, e: std::io::Error| anyhow::anyhow!("cannot write {}: {e}", path.display());
    dictionary
        .finish()
        .map_err(|e| finished(&wordids, e.into()))?;
    outputs.bow.finish().map_err(|e| finished(&bow_path, e))?;
    if let Some(heldout) = outputs.heldout {
        heldout.finish().map_err(|e| finished(&heldout_path, e))?;
    }
    outputs
        .tfidf
        .finish()
        .map_err(|e| finished(&tfidf_path, e))?;
    Ok(Summary {
        documents: documents_seen,
        train_documents,
        heldout_documents,
        tokens_before_filter,
        terms: vocabulary.len(),
        bow_nnz,
        tfidf_nnz,
        files,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn create(path: &Path) -> anyhow::Result<AtomicFile> {
    AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))
}

fn mm(path: &Path) -> anyhow::Result<MmWriter> {
    MmWriter::create(path).with_context(|| format!("cannot create {}", path.display()))
}

/// The corpora being written.
struct Outputs {
    bow: MmWriter,
    tfidf: MmWriter,
    heldout: Option<MmWriter>,
    bow_nnz: u64,
    tfidf_nnz: u64,
}

/// What pass 1 found.
struct Counted {
    counter: Counter,
    /// Documents read, held-out ones included.
    total: u64,
}

/// Pass 1: count the training documents' distinct tokens.
fn count(source: &Source, options: &Options) -> anyhow::Result<Counted> {
    let mut counter = Counter::default();
    let mut total = 0;
    let meter = Meter::new("counting", None);
    let tokenizer = &options.tokenizer;
    pipelined(source, |batch| {
        let docs: Vec<Option<Vec<Box<str>>>> = (0..batch.len())
            .into_par_iter()
            .map(|i| {
                if is_heldout(options.seed, batch.first + i as u64, options.heldout) {
                    return None;
                }
                let text = tokenizer.normalize(batch.doc(i));
                let mut tokens: Vec<&str> = tokenizer.tokens(&text).collect();
                tokens.sort_unstable();
                tokens.dedup();
                Some(tokens.into_iter().map(Box::from).collect())
            })
            .collect();
        for doc in docs.iter().flatten() {
            counter.add_document(doc);
        }
        total += batch.len() as u64;
        meter.add(batch.len());
        Ok(())
    })?;
    meter.finish();
    Ok(Counted { counter, total })
}

/// One document's lines in the output files.
#[derive(Default)]
struct Written {
    bow: Vec<u8>,
    bow_entries: u64,
    tfidf: Vec<u8>,
    tfidf_entries: u64,
    max_id: Option<u32>,
    tfidf_max_id: Option<u32>,
}

/// Pass 2: write the corpora; returns the number of documents read.
fn write_corpora(
    source: &Source,
    options: &Options,
    vocabulary: &Vocabulary,
    out: &mut Outputs,
    total: u64,
) -> anyhow::Result<u64> {
    // TfidfModel(dictionary=...)'s weights, from the dictionary's document frequencies
    let dfs = vocabulary.dfs().iter().enumerate();
    let tfidf = Idf::new(
        vocabulary.num_docs(),
        dfs.map(|(id, &df)| (id as u32, df)),
        vocabulary.dfs().len(),
    );
    let tokenizer = &options.tokenizer;
    let meter = Meter::new("writing", Some(total));
    let mut read = 0;
    pipelined(source, |batch| {
        // Each document's number in its corpus, decided in order.
        let (mut train, mut heldout) = (
            out.bow.num_docs(),
            out.heldout.as_ref().map_or(0, MmWriter::num_docs),
        );
        let places: Vec<(bool, u64)> = (0..batch.len() as u64)
            .map(|i| {
                let held = is_heldout(options.seed, batch.first + i, options.heldout);
                let counter = if held { &mut heldout } else { &mut train };
                *counter += 1;
                (held, *counter - 1)
            })
            .collect();
        let docs: Vec<Written> = places
            .par_iter()
            .enumerate()
            .map_init(Vec::new, |weights, (i, &(held, docno))| {
                let text = tokenizer.normalize(batch.doc(i));
                let mut ids: Vec<u32> = tokenizer
                    .tokens(&text)
                    .filter_map(|t| vocabulary.id(t))
                    .collect();
                ids.sort_unstable();
                let mut bow: Vec<(u32, u32)> = Vec::new();
                for id in ids {
                    match bow.last_mut() {
                        Some((last, count)) if *last == id => *count += 1,
                        _ => bow.push((id, 1)),
                    }
                }
                let mut written = Written {
                    bow_entries: bow.len() as u64,
                    max_id: bow.last().map(|&(id, _)| id),
                    ..Written::default()
                };
                format_document(&mut written.bow, docno, &bow);
                if !held {
                    let terms: Vec<u32> = bow.iter().map(|&(id, _)| id).collect();
                    let counts: Vec<f64> = bow.iter().map(|&(_, c)| f64::from(c)).collect();
                    let (mut ids, mut values) = (Vec::new(), Vec::new());
                    tfidf.weigh_doc(&terms, &counts, &mut ids, &mut values);
                    weights.clear();
                    weights.extend(ids.into_iter().zip(values));
                    written.tfidf_entries = weights.len() as u64;
                    written.tfidf_max_id = weights.last().map(|&(id, _)| id);
                    format_document(&mut written.tfidf, docno, weights);
                }
                written
            })
            .collect();
        for ((held, _), doc) in places.iter().zip(&docs) {
            let failed = |path: &Path| format!("cannot write {}", path.display());
            if *held {
                if let Some(heldout) = out.heldout.as_mut() {
                    heldout
                        .write_document(&doc.bow, doc.bow_entries, doc.max_id)
                        .context("cannot write the held-out corpus")?;
                }
            } else {
                out.bow
                    .write_document(&doc.bow, doc.bow_entries, doc.max_id)
                    .with_context(|| failed(&options.out))?;
                out.tfidf
                    .write_document(&doc.tfidf, doc.tfidf_entries, doc.tfidf_max_id)
                    .with_context(|| failed(&options.out))?;
                out.bow_nnz += doc.bow_entries;
                out.tfidf_nnz += doc.tfidf_entries;
            }
        }
        read += batch.len() as u64;
        meter.add(batch.len());
        Ok(())
    })?;
    meter.finish();
    Ok(read)
}

/// Read `source` on a thread of its own while `consume` handles the batches, in order.
pub fn pipelined(
    source: &Source,
    mut consume: impl FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<Batch>(2);
        let reader = scope.spawn(move || {
            source.read(|batch| {
                // The consumer stopped (it failed): its error is the one to report.
                sender.send(batch).map_err(|_| anyhow::anyhow!("stopped"))
            })
        });
        let consumed = receiver.iter().try_for_each(&mut consume);
        drop(receiver);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the reading thread panicked")));
        consumed.and(read)
    })
}

/// A progress bar on stderr when it is a terminal (nothing otherwise).
pub(crate) struct Meter {
    bar: Option<ProgressBar>,
}

impl Meter {
    /// A bar for `total` documents (a spinner when unknown), labelled `what`.
    pub(crate) fn new(what: &'static str, total: Option<u64>) -> Meter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let (bar, template) = match total {
                Some(total) => (
                    ProgressBar::new(total),
                    "{prefix} [{wide_bar}] {human_pos}/{human_len} docs, {per_sec}, ETA {eta}",
                ),
                None => (
                    ProgressBar::new_spinner(),
                    "{spinner} {prefix} {human_pos} docs, {per_sec}",
                ),
            };
            let style = ProgressStyle::with_template(template)
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = bar.with_style(style);
            bar.set_prefix(what);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Meter { bar }
    }

    /// `docs` more documents done (from any thread).
    pub(crate) fn add(&self, docs: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(docs as u64);
        }
    }

    /// Clear the bar.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
            let _ = std::io::stderr().flush();
        }
    }
}

#[cfg(test)]
mod tests;
