//! Inferring the topics of a whole corpus that topicctl reads itself: `infer` reads new
//! documents, `export --format pyldavis` the job's training corpus.
//!
//! [`CorpusBatches`] parses a Matrix Market file (plain, .gz or .bz2) with topicd's own
//! reader in a thread of its own, which works ahead of the daemon by up to [`AHEAD`]
//! batches, and hands out [`Batch`]es that one `infer` request can carry (see [`Limits`]):
//! at most [`MAX_INFER_DOCS`] documents, at most [`MAX_BATCH_ENTRIES`] entries, and no more
//! documents than keep the reply (one vector of num_topics values per document) within a
//! page. [`infer`] sends one batch and checks the reply's shape; [`Meter`] shows progress
//! and throughput on a terminal.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};
use indicatif::{HumanDuration, ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use topicd::corpus::{CorpusError, MmOptions, MmReader, SparseChunk};
use topicd_protocol::{
    Document, JobId, MAX_INFER_DOCS, MAX_INFER_PAYLOAD_BYTES, MAX_PAGE_BYTES, document_bytes,
};

use crate::daemon::Daemon;
use crate::output;

/// Most entries (term, weight) in one batch: with a length pair per document, at most
/// [`MAX_INFER_PAYLOAD_BYTES`] once encoded, so that a request stays within what the daemon
/// reads ([`topicd_protocol::MAX_REQUEST_BYTES`]).
pub const MAX_BATCH_ENTRIES: usize = 64 << 10;

/// Bytes an entry adds to a document in a request, at most.
const ENTRY_BYTES: usize = document_bytes(1) - document_bytes(0);

// A full batch fits a request, whatever its split between documents and entries.
const _: () = assert!(
    MAX_BATCH_ENTRIES * ENTRY_BYTES + MAX_INFER_DOCS * document_bytes(0) <= MAX_INFER_PAYLOAD_BYTES
);

/// Batches the reading thread may have ready while the daemon works.
const AHEAD: usize = 16;

/// How many documents and entries one `infer` request may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Documents per batch.
    pub docs: usize,
    /// Entries per batch, unless a single document has more.
    pub entries: usize,
    /// Entries of a single document (sent alone) that still fit in a frame.
    pub doc_entries: usize,
}

impl Limits {
    /// The limits for a model of `num_topics` topics.
    pub fn for_topics(num_topics: u32) -> Limits {
        // The reply holds docs × num_topics float64 (and a length per vector).
        let reply_docs = MAX_PAGE_BYTES / (8 * (num_topics as usize + 1));
        Limits {
            docs: MAX_INFER_DOCS.min(reply_docs).max(1),
            entries: MAX_BATCH_ENTRIES,
            // A document alone in its request.
            doc_entries: (MAX_INFER_PAYLOAD_BYTES - document_bytes(0)) / ENTRY_BYTES,
        }
    }
}

/// Consecutive documents of a corpus, as `infer` takes them.
#[derive(Debug, PartialEq)]
pub struct Batch {
    /// The 0-based number of the first document in the corpus.
    pub first_doc: u64,
    /// The documents: 0-based term ids and their weights.
    pub docs: Vec<Document>,
}

/// A document too large for any request: its number and its entries.
#[derive(Debug, PartialEq, Eq)]
struct TooLarge(u64, usize);

/// Cut a chunk into batches within `limits` (a chunk holds at most `limits.docs`
/// documents).
fn split(chunk: &SparseChunk, limits: &Limits) -> Result<Vec<Batch>, TooLarge> {
    let mut batches = Vec::new();
    let mut current = Batch {
        first_doc: chunk.first_doc,
        docs: Vec::new(),
    };
    let mut entries = 0;
    for (id, terms, weights) in chunk.docs() {
        let n = terms.len();
        if n > limits.doc_entries {
            return Err(TooLarge(id, n));
        }
        if !current.docs.is_empty()
            && (current.docs.len() >= limits.docs || entries + n > limits.entries)
        {
            let next = Batch {
                first_doc: id,
                docs: Vec::new(),
            };
            batches.push(std::mem::replace(&mut current, next));
            entries = 0;
        }
        current.docs.push(Document {
            terms: terms.to_vec(),
            weights: weights.to_vec(),
        });
        entries += n;
    }
    if !current.docs.is_empty() {
        batches.push(current);
    }
    Ok(batches)
}

/// A corpus being read in batches by a thread of its own.
pub struct CorpusBatches {
    batches: mpsc::Receiver<Result<Batch, CorpusError>>,
    num_docs: u64,
    delivered: u64,
    file: String,
}

impl CorpusBatches {
    /// Open `path` (reading its header here) and start reading it in the background.
    pub fn open(path: &Path, options: MmOptions, limits: Limits) -> anyhow::Result<Self> {
        let mut reader = MmReader::open(path, options)?;
        let num_docs = reader.header().num_docs;
        let (sender, batches) = mpsc::channel(AHEAD);
        let file = path.to_owned();
        let read = move || {
            loop {
                let batches = match reader.next_chunk(limits.docs) {
                    Ok(Some(chunk)) => split(&chunk, &limits).map_err(|TooLarge(doc, n)| {
                        CorpusError::in_file(
                            &file,
                            format!(
                                "document {doc} has {n} distinct terms, more than one infer \
                                 request can carry ({})",
                                limits.doc_entries
                            ),
                        )
                    }),
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                match batches {
                    Ok(batches) => {
                        for batch in batches {
                            // The receiver is gone when the command failed: stop reading.
                            if sender.blocking_send(Ok(batch)).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = sender.blocking_send(Err(e));
                        return;
                    }
                }
            }
        };
        std::thread::Builder::new()
            .name("corpus reader".into())
            .spawn(read)
            .context("cannot start the corpus reader")?;
        Ok(CorpusBatches {
            batches,
            num_docs,
            delivered: 0,
            file: output::printable_path(path),
        })
    }

    /// The number of documents the corpus's header declares.
    pub fn num_docs(&self) -> u64 {
        self.num_docs
    }

    /// The next batch, `None` after the last document.
    pub async fn next(&mut self) -> anyhow::Result<Option<Batch>> {
        match self.batches.recv().await {
            Some(Ok(batch)) => {
                self.delivered += batch.docs.len() as u64;
                Ok(Some(batch))
            }
            Some(Err(e)) => Err(e.into()),
            // The reader returns only after the last document or an error it has sent,
            // unless it panicked.
            None if self.delivered != self.num_docs => bail!(
                "reading {} stopped after {} of its {} documents",
                self.file,
                self.delivered,
                self.num_docs
            ),
            None => Ok(None),
        }
    }
}

/// The topic weights of a batch's documents, checked to be one vector of `num_topics`
/// values per document.
pub async fn infer(
    daemon: &Daemon,
    job: JobId,
    batch: Batch,
    num_topics: u32,
) -> anyhow::Result<Vec<Vec<f64>>> {
    let (first, count) = (batch.first_doc, batch.docs.len());
    let last = first + count as u64 - 1;
    let weights = daemon
        .infer(job, batch.docs)
        .await
        .with_context(|| format!("documents {first} to {last}"))?;
    if weights.len() != count {
        bail!(
            "topicd sent {} topic vectors for the {count} documents {first} to {last}",
            weights.len()
        );
    }
    if let Some(i) = weights.iter().position(|w| w.len() != num_topics as usize) {
        bail!(
            "topicd sent {} topic weights for document {} of a model of {num_topics} topics",
            weights[i].len(),
            first + i as u64
        );
    }
    Ok(weights)
}

/// Progress of a pass over a corpus: a bar on stderr (when asked for) and, at the end, the
/// throughput; both only when stderr is a terminal.
pub struct Meter {
    bar: Option<ProgressBar>,
    /// stderr is a terminal.
    terminal: bool,
    started: Instant,
    docs: u64,
    verb: &'static str,
}

impl Meter {
    /// A meter for `total` documents; `verb` says what is done to them (`inferred`). `bar`
    /// is false when stdout goes to the terminal too, which a bar would garble.
    pub fn new(total: u64, verb: &'static str, bar: bool) -> Meter {
        let terminal = io::stderr().is_terminal();
        let bar = (terminal && bar).then(|| {
            let style = ProgressStyle::with_template(
                "{spinner:.green} {prefix} [{wide_bar:.cyan/blue}] {human_pos}/{human_len} docs, \
                 ETA {eta}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::new(total).with_style(style);
            bar.set_prefix(verb);
            bar
        });
        Meter {
            bar,
            terminal,
            started: Instant::now(),
            docs: 0,
            verb,
        }
    }

    /// `docs` more documents done.
    pub fn add(&mut self, docs: usize) {
        self.docs += docs as u64;
        if let Some(bar) = &self.bar {
            bar.inc(docs as u64);
        }
    }

    /// Clear the bar and tell the throughput: `inferred 382 documents in 2 seconds
    /// (191 docs/s)`.
    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if !self.terminal {
            return;
        }
        let elapsed = self.started.elapsed();
        let rate = self.docs as f64 / elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            io::stderr().lock(),
            "{} {} documents in {} ({})",
            self.verb,
            self.docs,
            HumanDuration(elapsed),
            output::rate_text(rate)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents with 1, 3, 0, 2 and 4 entries.
    fn chunk() -> SparseChunk {
        let lengths = [1usize, 3, 0, 2, 4];
        let mut indptr = vec![0];
        let (mut terms, mut values) = (vec![], vec![]);
        for n in lengths {
            for t in 0..n {
                terms.push(t as u32);
                values.push((t + 1) as f64);
            }
            indptr.push(terms.len());
        }
        SparseChunk {
            index: 0,
            first_doc: 100,
            indptr,
            terms,
            values,
        }
    }

    fn shape(batches: &[Batch]) -> Vec<(u64, Vec<usize>)> {
        batches
            .iter()
            .map(|b| (b.first_doc, b.docs.iter().map(|d| d.terms.len()).collect()))
            .collect()
    }

    #[test]
    fn batches_are_cut_by_documents_and_entries() {
        let limits = Limits {
            docs: 2,
            entries: 100,
            doc_entries: 100,
        };
        let batches = split(&chunk(), &limits).unwrap();
        assert_eq!(
            shape(&batches),
            [(100, vec![1, 3]), (102, vec![0, 2]), (104, vec![4])]
        );
        assert_eq!(batches[0].docs[1].weights, [1.0, 2.0, 3.0]);

        let limits = Limits {
            docs: 10,
            entries: 4,
            doc_entries: 100,
        };
        assert_eq!(
            shape(&split(&chunk(), &limits).unwrap()),
            [(100, vec![1, 3, 0]), (103, vec![2]), (104, vec![4])]
        );
    }

    #[test]
    fn a_large_document_goes_alone_or_is_refused() {
        let limits = Limits {
            docs: 10,
            entries: 2,
            doc_entries: 3,
        };
        assert_eq!(split(&chunk(), &limits), Err(TooLarge(104, 4)));
        let limits = Limits {
            doc_entries: 4,
            ..limits
        };
        assert_eq!(
            shape(&split(&chunk(), &limits).unwrap()),
            [
                (100, vec![1]),
                (101, vec![3]),
                (102, vec![0, 2]),
                (104, vec![4])
            ]
        );
    }

    #[test]
    fn replies_stay_within_a_page() {
        assert_eq!(Limits::for_topics(100).docs, MAX_INFER_DOCS);
        let limits = Limits::for_topics(2000);
        assert!(limits.docs * 2001 * 8 <= MAX_PAGE_BYTES);
        assert!(limits.docs > 500);
        assert_eq!(Limits::for_topics(u32::MAX).docs, 1);
    }

    /// The frame of an `infer` request for `docs`, as topicctl would send it.
    fn infer_frame(docs: Vec<Document>) -> std::io::Result<Vec<u8>> {
        use topicd_protocol::ControlRequest;
        use topicd_protocol::framing::{ClientSide, Side};
        let mut context = tarpc::context::current();
        context.deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let message = tarpc::ClientMessage::Request(tarpc::Request {
            context,
            id: u64::MAX,
            message: ControlRequest::Infer {
                job: u64::MAX,
                docs,
            },
        });
        ClientSide::<ControlRequest, topicd_protocol::ControlResponse>::encode(&message)
    }

    /// A document of `n` entries with the largest term ids (the longest encoding).
    fn worst_document(n: usize) -> Document {
        Document {
            terms: vec![u32::MAX; n],
            weights: vec![0.5; n],
        }
    }

    #[test]
    fn the_largest_batches_fit_in_a_request() {
        let limits = Limits::for_topics(1);
        // Every document there can be, sharing every entry there can be.
        let per_doc = limits.entries / limits.docs;
        let docs = (0..limits.docs).map(|_| worst_document(per_doc)).collect();
        assert!(infer_frame(docs).is_ok());
        // The largest document, alone.
        assert!(limits.doc_entries > 75_000);
        assert!(infer_frame(vec![worst_document(limits.doc_entries)]).is_ok());
        // Beyond it, the request would not be sent.
        let too_many = topicd_protocol::MAX_REQUEST_BYTES / ENTRY_BYTES + 1;
        assert!(infer_frame(vec![worst_document(too_many)]).is_err());
    }
}
