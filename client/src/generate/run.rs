//! The passes of `generate`: counting the document frequencies, (compressed) counting the
//! TF-IDF entries, then writing the files in document order.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;
use topicd::atomic_file::{self, AtomicFile};
use topicd_numerics::tfidf::Idf;

use super::{GenerateArgs, Model, WIKIPEDIA, token, token_width};
use crate::prepare::{Encoder, MmWriter, format_document, output_path};

/// Documents made per batch (by every core) before they are written (in order).
const BATCH: u64 = 4096;

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

/// One document's lines.
struct Written {
    bow: String,
    bow_entries: u64,
    max_id: Option<u32>,
    tfidf: String,
    tfidf_entries: u64,
    tfidf_max_id: Option<u32>,
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
    let mut dfs = vec![0u64; args.terms];
    let mut tokens = 0;
    for_batches(args.docs, |range| {
        let docs = bags(&model, args.seed, range);
        for doc in &docs {
            for &(term, count) in doc {
                dfs[term as usize] += 1;
                tokens += u64::from(count);
            }
        }
        Ok(())
    })?;
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
            let (mut nnz, mut max) = (0, 0);
            for_batches(args.docs, |range| {
                for doc in bags(&model, args.seed, range) {
                    let (ids, _) = weigh(&idf, &doc);
                    nnz += ids.len() as u64;
                    max = max.max(ids.last().map_or(0, |&id| u64::from(id) + 1));
                }
                Ok(())
            })?;
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

    // Pass 2: the corpora, each batch made while the previous one is written.
    let mut pending: Vec<Written> = Vec::new();
    let (mut tfidf_nnz, mut bytes) = (0, 0);
    let mut write = |docs: Vec<Written>| -> anyhow::Result<()> {
        for doc in docs {
            bow.write_document(&doc.bow, doc.bow_entries, doc.max_id)
                .with_context(|| cannot("write", &bow_path))?;
            tfidf
                .write_document(&doc.tfidf, doc.tfidf_entries, doc.tfidf_max_id)
                .with_context(|| cannot("write", &tfidf_path))?;
            tfidf_nnz += doc.tfidf_entries;
            bytes += (doc.bow.len() + doc.tfidf.len()) as u64;
        }
        Ok(())
    };
    for_batches(args.docs, |range| {
        let previous = std::mem::take(&mut pending);
        let (written, made) = rayon::join(|| write(previous), || lines(&model, &idf, args, range));
        pending = made;
        written
    })?;
    write(pending)?;
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

/// Call `f` with the document ranges of the batches, in order.
fn for_batches(
    docs: u64,
    mut f: impl FnMut(Range<u64>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    (0..docs.div_ceil(BATCH)).try_for_each(|b| f(b * BATCH..((b + 1) * BATCH).min(docs)))
}

/// The bags of words of documents `range`, made by every core.
fn bags(model: &Model, seed: u64, range: Range<u64>) -> Vec<Vec<(u32, u32)>> {
    range
        .into_par_iter()
        .map_init(
            || vec![0; model.terms()],
            |counts, i| {
                let mut bag = Vec::new();
                model.document(seed, i, counts, &mut bag);
                bag
            },
        )
        .collect()
}

/// A bag of words weighted as `TfidfModel(dictionary=...)`.
fn weigh(idf: &Idf, bag: &[(u32, u32)]) -> (Vec<u32>, Vec<f64>) {
    let terms: Vec<u32> = bag.iter().map(|&(id, _)| id).collect();
    let counts: Vec<f64> = bag.iter().map(|&(_, c)| f64::from(c)).collect();
    let (mut ids, mut values) = (Vec::new(), Vec::new());
    idf.weigh_doc(&terms, &counts, &mut ids, &mut values);
    (ids, values)
}

/// The lines of documents `range`, made by every core.
fn lines(model: &Model, idf: &Idf, args: &GenerateArgs, range: Range<u64>) -> Vec<Written> {
    range
        .into_par_iter()
        .map_init(
            || (vec![0; model.terms()], Vec::new()),
            |(counts, bag), i| {
                model.document(args.seed, i, counts, bag);
                let mut written = Written {
                    bow: String::with_capacity(bag.len() * 16),
                    bow_entries: bag.len() as u64,
                    max_id: bag.last().map(|&(id, _)| id),
                    tfidf: String::with_capacity(bag.len() * 32),
                    tfidf_entries: 0,
                    tfidf_max_id: None,
                };
                format_document(&mut written.bow, i, bag);
                let (ids, values) = weigh(idf, bag);
                written.tfidf_entries = ids.len() as u64;
                written.tfidf_max_id = ids.last().copied();
                let weights: Vec<(u32, f64)> = ids.into_iter().zip(values).collect();
                format_document(&mut written.tfidf, i, &weights);
                written
            },
        )
        .collect()
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
            let mut encoder = compression.encoder(file);
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
