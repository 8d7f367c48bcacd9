//! The passes of `generate`: counting the document frequencies, (compressed) counting the
//! TF-IDF entries, then writing the files in document order.
//!
//! The documents are cut into pieces of consecutive documents. Counting, a piece is 256
//! documents and each core sums its own frequencies. Writing, a piece is about
//! [`PIECE_BYTES`] of text (its number of documents is set from the mean document's text,
//! known after pass 1, so it depends on the options alone), formatted and, with
//! compression, compressed as one member of each corpus, by any core; a batch of pieces is
//! made while the one before is written. Each piece's buffers and each core's scratch are
//! reused from piece to piece: nothing is allocated per document, and memory is the
//! vocabulary's tables and two batches of pieces, whatever the number of documents.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;
use topicd::atomic_file::{self, AtomicFile};
use topicd_numerics::tfidf::Idf;

use super::{GenerateArgs, Model, WIKIPEDIA, token, token_width};
use crate::prepare::{Block, Encoder, Meter, MmWriter, output_path};

/// Documents per piece when counting.
const COUNT_PIECE: u64 = 256;
/// Text per piece when writing, both corpora together (before compression): about 0.7 MB
/// of the bag-of-words corpus and 1.3 MB of the TF-IDF one, each a member when compressed.
pub const PIECE_BYTES: u64 = 2 << 20;
/// Fewest pieces per batch; a batch has at least two per thread.
const MIN_BATCH_PIECES: usize = 4;

/// What `generate` wrote.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    /// Documents.
    pub documents: u64,
    /// Terms of the dictionary.
    pub terms: usize,
    /// Planted topics.
    pub topics: usize,
    /// Tokens of all documents.
    pub tokens: u64,
    /// Non-zero entries of the bag-of-words corpus.
    pub bow_nnz: u64,
    /// Non-zero entries of the TF-IDF corpus.
    pub tfidf_nnz: u64,
    /// Terms in no document (the dictionary lists them with a frequency of 0).
    pub unused_terms: usize,
    /// Bytes of the corpora before compression.
    pub bytes: u64,
    /// The files written.
    pub files: Vec<PathBuf>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// One core's working space, reused from document to document.
#[derive(Default)]
struct Scratch {
    /// The tokens of a document (see [`Model::document`]).
    tokens: Vec<u32>,
    bag: Vec<(u32, u32)>,
    terms: Vec<u32>,
    tf: Vec<f64>,
    ids: Vec<u32>,
    values: Vec<f64>,
    weights: Vec<(u32, f64)>,
}

impl Scratch {
    /// Document `i`'s bag of words.
    fn document(&mut self, model: &Model, seed: u64, i: u64) -> &[(u32, u32)] {
        model.document(seed, i, &mut self.tokens, &mut self.bag);
        &self.bag
    }

    /// The last document's bag weighed as `TfidfModel(dictionary=...)`.
    fn weigh(&mut self, idf: &Idf) -> &[(u32, f64)] {
        self.terms.clear();
        self.tf.clear();
        self.ids.clear();
        self.values.clear();
        self.weights.clear();
        self.terms.extend(self.bag.iter().map(|&(id, _)| id));
        self.tf.extend(self.bag.iter().map(|&(_, c)| f64::from(c)));
        idf.weigh_doc(&self.terms, &self.tf, &mut self.ids, &mut self.values);
        self.weights
            .extend(self.ids.iter().copied().zip(self.values.iter().copied()));
        &self.weights
    }
}

/// One value per thread of the pool, each used by its own thread (its lock is not
/// contended): working space allocated once per thread, not per piece nor per split.
struct PerThread<T>(Vec<Mutex<T>>);

impl<T> PerThread<T> {
    fn new(make: impl Fn() -> T) -> PerThread<T> {
        let threads = rayon::current_num_threads().max(1);
        PerThread((0..threads).map(|_| Mutex::new(make())).collect())
    }

    /// Call `f` with the calling thread's value.
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let i = rayon::current_thread_index().unwrap_or(0) % self.0.len();
        f(&mut self.0[i].lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn into_values(self) -> impl Iterator<Item = T> {
        self.0
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The documents of `piece` when pieces are `per_piece` documents.
fn piece_range(piece: u64, per_piece: u64, docs: u64) -> Range<u64> {
    piece * per_piece..((piece + 1) * per_piece).min(docs)
}

/// Documents per piece when writing: [`PIECE_BYTES`] of text for documents of
/// `mean_entries` entries, written with document and term numbers up to `docs` and `terms`.
pub fn docs_per_piece(mean_entries: f64, docs: u64, terms: usize) -> u64 {
    let digits = (docs.to_string().len() + terms.to_string().len()) as f64;
    // bow: "doc term count\n", tfidf: "doc term 0.xxxxxxxxxxxxxxxxx\n"
    let per_entry = 2.0 * (digits + 2.0) + 2.0 + 20.0;
    (PIECE_BYTES as f64 / (mean_entries.max(1.0) * per_entry)).clamp(1.0, 65536.0) as u64
}

/// One piece of both corpora.
#[derive(Default)]
struct Piece {
    bow: Block,
    tfidf: Block,
}

/// Run `generate`.
pub fn run(args: &GenerateArgs) -> anyhow::Result<Summary> {
    let started = Instant::now();
    args.check()?;
    if args.out.file_name().is_none() || args.out.as_os_str().to_string_lossy().ends_with('/') {
        anyhow::bail!(
            "--out {}: give a prefix for the files' names, such as out/synthetic",
            args.out.display()
        );
    }
    let dir = atomic_file::directory_of(&args.out).to_owned();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let model = Model::new(WIKIPEDIA, args.seed, args.terms, args.topics);
    let named = |suffix: &str| match args.compress {
        Some(c) => output_path(&args.out, &format!("{suffix}.{}", c.extension())),
        None => output_path(&args.out, suffix),
    };
    let (wordids, bow_path, tfidf_path) =
        (named("wordids.txt"), named("bow.mm"), named("tfidf.mm"));
    let topics_path = output_path(&args.out, "topics.txt");
    // Fail early on an output that cannot be created.
    let dictionary = AtomicFile::create(&wordids).with_context(|| cannot("create", &wordids))?;

    // Pass 1: document frequencies.
    let (dfs, tokens) = count_dfs(&model, args);
    let bow_nnz: u64 = dfs.iter().sum();
    let max_id = dfs
        .iter()
        .rposition(|&df| df > 0)
        .map_or(0, |i| i as u64 + 1);
    let idf = Idf::new(
        args.docs,
        dfs.iter().enumerate().map(|(id, &df)| (id as u32, df)),
        args.terms,
    );

    // Written now, appearing with the corpora at the end.
    let dictionary =
        write_dictionary(dictionary, args, &dfs).with_context(|| cannot("write", &wordids))?;
    let topics =
        write_topics(&topics_path, args, &model).with_context(|| cannot("write", &topics_path))?;

    let (mut bow, mut tfidf) = match args.compress {
        None => (mm(&bow_path)?, mm(&tfidf_path)?),
        Some(compression) => {
            // Pass 1½: the TF-IDF entries, for the size line that comes first.
            let (nnz, max) = count_tfidf(&model, &idf, args);
            let create = |path: &Path, sizes| {
                MmWriter::create_compressed(path, compression, sizes)
                    .with_context(|| cannot("create", path))
            };
            (
                create(&bow_path, [args.docs, max_id, bow_nnz])?,
                create(&tfidf_path, [args.docs, max, nnz])?,
            )
        }
    };

    // Pass 2: the corpora, each batch of pieces made while the previous one is written.
    let per_piece = docs_per_piece(bow_nnz as f64 / args.docs as f64, args.docs, args.terms);
    let pieces = args.docs.div_ceil(per_piece);
    let per_batch = (2 * rayon::current_num_threads()).max(MIN_BATCH_PIECES) as u64;
    let spare: Mutex<Vec<Piece>> = Mutex::new(Vec::new());
    let meter = Meter::new("writing", Some(args.docs));
    let (mut tfidf_nnz, mut bytes) = (0, 0);
    let mut write = |made: Vec<Piece>| -> anyhow::Result<()> {
        for piece in made {
            bow.write_block(&piece.bow)
                .with_context(|| cannot("write", &bow_path))?;
            tfidf
                .write_block(&piece.tfidf)
                .with_context(|| cannot("write", &tfidf_path))?;
            tfidf_nnz += piece.tfidf.entries();
            bytes += (piece.bow.text_len() + piece.tfidf.text_len()) as u64;
            spare.lock().unwrap_or_else(|e| e.into_inner()).push(piece);
        }
        Ok(())
    };
    let scratches = PerThread::new(Scratch::default);
    let make = |batch: Range<u64>| -> Vec<Piece> {
        batch
            .into_par_iter()
            .map(|p| {
                let reused = spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let mut piece = reused.unwrap_or_default();
                piece.bow.clear();
                piece.tfidf.clear();
                // About 2.8 and 1.6 times what a piece holds on average.
                piece.bow.reserve(PIECE_BYTES as usize);
                piece.tfidf.reserve(2 * PIECE_BYTES as usize);
                let range = piece_range(p, per_piece, args.docs);
                scratches.with(|scratch| {
                    for i in range.clone() {
                        piece.bow.push(i, scratch.document(&model, args.seed, i));
                        piece.tfidf.push(i, scratch.weigh(&idf));
                    }
                });
                if let Some(compression) = args.compress {
                    piece.bow.compress(compression);
                    piece.tfidf.compress(compression);
                }
                meter.add((range.end - range.start) as usize);
                piece
            })
            .collect()
    };
    let mut pending = Vec::new();
    for first in (0..pieces).step_by(per_batch as usize) {
        let previous = std::mem::take(&mut pending);
        let batch = first..(first + per_batch).min(pieces);
        let (written, made) = rayon::join(|| write(previous), || make(batch));
        pending = made;
        written?;
    }
    write(pending)?;
    meter.finish();
    bow.finish().with_context(|| cannot("write", &bow_path))?;
    tfidf
        .finish()
        .with_context(|| cannot("write", &tfidf_path))?;
    dictionary
        .finish()
        .with_context(|| cannot("write", &wordids))?;
    topics
        .finish()
        .with_context(|| cannot("write", &topics_path))?;
    Ok(Summary {
        documents: args.docs,
        terms: args.terms,
        topics: args.topics,
        tokens,
        bow_nnz,
        tfidf_nnz,
        unused_terms: dfs.iter().filter(|&&df| df == 0).count(),
        bytes,
        files: vec![wordids, bow_path, tfidf_path, topics_path],
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn cannot(what: &str, path: &Path) -> String {
    format!("cannot {what} {}", path.display())
}

fn mm(path: &Path) -> anyhow::Result<MmWriter> {
    MmWriter::create(path).with_context(|| cannot("create", path))
}

/// Pass 1: every term's document frequency, and the number of tokens.
fn count_dfs(model: &Model, args: &GenerateArgs) -> (Vec<u64>, u64) {
    let meter = Meter::new("counting", Some(args.docs));
    let counts = PerThread::new(|| (vec![0u64; args.terms], 0u64, Scratch::default()));
    (0..args.docs.div_ceil(COUNT_PIECE))
        .into_par_iter()
        .for_each(|p| {
            let range = piece_range(p, COUNT_PIECE, args.docs);
            counts.with(|(dfs, tokens, scratch)| {
                for i in range.clone() {
                    for &(term, count) in scratch.document(model, args.seed, i) {
                        dfs[term as usize] += 1;
                        *tokens += u64::from(count);
                    }
                }
            });
            meter.add((range.end - range.start) as usize);
        });
    meter.finish();
    let mut counts = counts.into_values();
    let (mut dfs, mut tokens, _) = counts.next().unwrap_or_default();
    for (more, more_tokens, _) in counts {
        dfs.iter_mut().zip(&more).for_each(|(x, y)| *x += y);
        tokens += more_tokens;
    }
    (dfs, tokens)
}

/// Pass 1½: the number of TF-IDF entries, and 1 + their largest term id.
fn count_tfidf(model: &Model, idf: &Idf, args: &GenerateArgs) -> (u64, u64) {
    let meter = Meter::new("weighing", Some(args.docs));
    let scratches = PerThread::new(Scratch::default);
    let counted = (0..args.docs.div_ceil(COUNT_PIECE))
        .into_par_iter()
        .map(|p| {
            let range = piece_range(p, COUNT_PIECE, args.docs);
            let (mut nnz, mut max) = (0, 0);
            scratches.with(|scratch| {
                for i in range.clone() {
                    scratch.document(model, args.seed, i);
                    let weights = scratch.weigh(idf);
                    nnz += weights.len() as u64;
                    max = max.max(weights.last().map_or(0, |&(id, _)| u64::from(id) + 1));
                }
            });
            meter.add((range.end - range.start) as usize);
            (nnz, max)
        })
        .reduce(|| (0, 0), |(n, m), (n2, m2)| (n + n2, m.max(m2)));
    meter.finish();
    counted
}

/// A text file written, to appear on [`Text::finish`].
enum Text {
    Plain(AtomicFile),
    Compressed(Box<Encoder>),
}

impl Text {
    fn finish(self) -> std::io::Result<()> {
        match self {
            Text::Plain(file) => Ok(file.finish()?),
            Text::Compressed(encoder) => encoder.finish(),
        }
    }
}

/// gensim's `save_as_text`: `num_docs`, then `id<TAB>token<TAB>df` by token (by id here).
fn write_dictionary(file: AtomicFile, args: &GenerateArgs, dfs: &[u64]) -> anyhow::Result<Text> {
    let width = token_width(args.terms);
    let fill = |out: &mut dyn Write| -> std::io::Result<()> {
        writeln!(out, "{}", args.docs)?;
        for (id, df) in dfs.iter().enumerate() {
            writeln!(out, "{id}\t{}\t{df}", token(id as u32, width))?;
        }
        Ok(())
    };
    Ok(match args.compress {
        None => {
            let mut file = file;
            fill(&mut file)?;
            Text::Plain(file)
        }
        Some(compression) => {
            let mut encoder: Encoder = compression.encoder(file);
            fill(&mut encoder)?;
            Text::Compressed(Box::new(encoder))
        }
    })
}

/// The planted topics (format in the module documentation).
fn write_topics(path: &Path, args: &GenerateArgs, model: &Model) -> anyhow::Result<Text> {
    let shape = model.shape();
    let width = token_width(args.terms);
    let mut file = AtomicFile::create(path)?;
    writeln!(
        file,
        "# topicctl generate: seed {}, {} docs, {} terms, {} topics",
        args.seed, args.docs, args.terms, args.topics
    )?;
    writeln!(
        file,
        "# background {}: zipf exponent {} offset {}",
        shape.background, shape.zipf_exponent, shape.zipf_offset
    )?;
    writeln!(
        file,
        "# topic\tterm id\ttoken\tprobability within the topic's own terms"
    )?;
    for (k, (terms, probabilities)) in model.topics().iter().enumerate() {
        for (&id, p) in terms.iter().zip(probabilities) {
            writeln!(file, "{k}\t{id}\t{}\t{p:.6e}", token(id, width))?;
        }
    }
    Ok(Text::Plain(file))
}
