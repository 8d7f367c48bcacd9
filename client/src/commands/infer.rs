//! `topicctl infer`: the topic weights of new documents under a finished model.
//!
//! topicctl reads the corpus itself (see [`CorpusBatches`]: term ids must be below the
//! model's num_terms, and an LDA model wants counts), sends it to the daemon in batches and
//! writes one line per document, in the corpus's order. A few requests are in flight at once,
//! and a thread formats and writes the lines of one batch while the daemon computes the
//! next ones:
//!
//! - text: `DOC<TAB>topic:weight topic:weight ...` (DOC is the 0-based document number;
//!   a document without any topic kept ends at the tab; a weight is the shortest decimal
//!   that reads back as the same f64, as JSON writes it: `0.25`, `1.0`, `-3.2e-7`);
//! - `--json`: `{"doc": DOC, "topics": [[topic, weight], ...]}`;
//! - `--npy`: one NumPy array, documents × num_topics float64 in C order, every weight kept
//!   (no text to format: the fastest output).
//!
//! LDA keeps the topics with θ ≥ max(minimum_probability, 1e-8), gensim's
//! `get_document_topics` (minimum_probability defaults to the job's own); LSI keeps the
//! weights with |w| > 1e-9, gensim's `full2sparse`. The output goes to stdout or, with
//! `--out`, to a file that appears once complete ([`AtomicFile`]).

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use rayon::prelude::*;

use anyhow::{Context as _, bail};
use serde::Serialize;
use topicd::corpus::MmOptions;
use topicd_protocol::{JobId, ModelSpec};

use crate::batches::{self, CorpusBatches, Limits, Meter};
use crate::daemon::Daemon;
use crate::npy::NpyWriter;
use topicd::atomic_file::AtomicFile;

/// What `infer` was asked for.
pub struct Options {
    /// The documents.
    pub corpus: PathBuf,
    /// Where the lines go; stdout if `None`.
    pub out: Option<PathBuf>,
    /// LDA's threshold; the job's own when `None`.
    pub minimum_probability: Option<f64>,
    /// How the weights are written.
    pub format: Format,
    /// Which model: see [`super::model_source::ModelChoice`].
    pub model: super::model_source::ModelChoice,
}

/// How `infer` writes the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `DOC<TAB>topic:weight ...` lines, the topics kept only.
    Text,
    /// `{"doc": DOC, "topics": [[topic, weight], ...]}` lines, the topics kept only.
    Json,
    /// A .npy array of every weight (documents × num_topics).
    Npy,
}

/// gensim's floor under `minimum_probability` in `get_document_topics`.
const PROBABILITY_FLOOR: f64 = 1e-8;

/// gensim's `full2sparse` threshold for LSI weights.
const LSI_EPSILON: f64 = 1e-9;

/// Which topics of a document's dense vector are written.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Keep {
    /// LDA: θ_k at least this.
    AtLeast(f64),
    /// LSI: |w_k| above [`LSI_EPSILON`].
    NonZero,
}

impl Keep {
    /// The topics kept, as (topic, weight).
    fn select(self, weights: &[f64]) -> Vec<(u32, f64)> {
        let kept = |w: f64| match self {
            Keep::AtLeast(p) => w >= p,
            Keep::NonZero => w.abs() > LSI_EPSILON,
        };
        (0u32..)
            .zip(weights.iter().copied())
            .filter(|&(_, w)| kept(w))
            .collect()
    }
}

/// Infer the topics of every document of `options.corpus` and write them.
pub async fn run(daemon: &Daemon, job: JobId, options: Options) -> anyhow::Result<()> {
    let model = super::model_source::model_info(daemon, job, options.model).await?;
    let lda = match model.kind.as_str() {
        "lda" => true,
        "lsi" => false,
        other => bail!("job {job} has a model of a kind topicctl does not know: {other}"),
    };
    // lines keep some topics (the .npy has every weight, and clap refuses a threshold there)
    let lines = match options.format {
        Format::Npy => None,
        Format::Text | Format::Json => {
            let keep = kept_topics(daemon, job, lda, options.minimum_probability).await?;
            Some((keep, options.format == Format::Json))
        }
    };
    let reader_options = MmOptions {
        max_terms: model.num_terms,
        counts: lda,
        dictionary: None,
    };
    let limits = Limits::for_topics(model.num_topics);
    let mut corpus = CorpusBatches::open(&options.corpus, reader_options, limits)?;
    let out = Sink::open(options.out.as_deref())?;
    let out = match lines {
        None => {
            let shape = [corpus.num_docs(), u64::from(model.num_topics)];
            let npy = NpyWriter::new(out, &shape);
            Output::Npy(npy.context("cannot write the .npy header")?)
        }
        Some((keep, json)) => Output::Lines { out, keep, json },
    };
    let bar = options.out.is_some() || !io::stdout().is_terminal();
    let mut meter = Meter::new(corpus.num_docs(), "inferred", bar);
    let writer = Writer::start(out);
    // Requests in flight: the daemon computes the next batches while this batch's lines
    // are written.
    let mut pending = FuturesOrdered::new();
    let mut more = true;
    let failed = 'batches: loop {
        while more && pending.len() < IN_FLIGHT {
            match corpus.next().await {
                Ok(Some(batch)) => {
                    let first = batch.first_doc;
                    pending.push_back(async move {
                        let weights = batches::infer(daemon, job, batch, model.num_topics).await;
                        (first, weights)
                    });
                }
                Ok(None) => more = false,
                Err(e) => break 'batches Some(e),
            }
        }
        let Some((first, weights)) = pending.next().await else {
            break None;
        };
        let weights = match weights {
            Ok(weights) => weights,
            Err(e) => break Some(e),
        };
        let count = weights.len();
        if !writer.write(first, weights) {
            break None; // the writer failed: its error is told below
        }
        meter.add(count);
    };
    // what stopped the batches comes first: a .npy cut short by it is incomplete too
    let out = writer.finish();
    if let Some(e) = failed {
        return Err(e);
    }
    let out = out?;
    super::model_source::still_the_same(daemon, job, &model).await?;
    out.finish()?;
    meter.finish();
    Ok(())
}

/// Batches sent to the daemon before the first answer is awaited: as many as the daemon
/// takes from one connection (`REQUESTS_PER_CONNECTION`), so that it computes them together
/// as one block.
const IN_FLIGHT: usize = 8;

/// Where the weights go, in their format.
enum Output {
    /// Lines of the topics kept, text or JSON.
    Lines { out: Sink, keep: Keep, json: bool },
    /// Every weight, as a .npy array.
    Npy(NpyWriter<Sink>),
}

impl Output {
    /// Write the weights of the batch that starts with document `first`.
    fn write(&mut self, first: u64, weights: &[Vec<f64>]) -> anyhow::Result<()> {
        match self {
            Output::Lines { out, keep, json } => {
                let lines: Vec<Vec<u8>> = weights
                    .par_iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let mut line = Vec::with_capacity(32 * w.len());
                        write_line(&mut line, first + i as u64, &keep.select(w), *json)
                            .map(|()| line)
                    })
                    .collect::<anyhow::Result<_>>()?;
                for line in lines {
                    out.write_all(&line)?;
                }
            }
            Output::Npy(npy) => {
                for w in weights {
                    npy.write(w)?;
                }
            }
        }
        Ok(())
    }

    /// The sink, once every weight is in it.
    fn finish(self) -> anyhow::Result<Sink> {
        Ok(match self {
            Output::Lines { out, .. } => out,
            Output::Npy(npy) => npy.finish()?,
        })
    }
}

/// The weights of inferred batches, formatted (on every core) and written in order by a
/// thread of their own, so that the daemon's next batches are computed meanwhile.
struct Writer {
    batches: SyncSender<(u64, Vec<Vec<f64>>)>,
    thread: std::thread::JoinHandle<anyhow::Result<Sink>>,
}

impl Writer {
    fn start(mut out: Output) -> Writer {
        let (batches, received) = sync_channel::<(u64, Vec<Vec<f64>>)>(1);
        let thread = std::thread::spawn(move || {
            for (first, weights) in received {
                out.write(first, &weights)?;
            }
            out.finish()
        });
        Writer { batches, thread }
    }

    /// Queue a batch's weights; false if the writer has stopped (on an error).
    fn write(&self, first: u64, weights: Vec<Vec<f64>>) -> bool {
        self.batches.send((first, weights)).is_ok()
    }

    /// Wait for every queued line to be written; the output, or why it could not be.
    fn finish(self) -> anyhow::Result<Sink> {
        drop(self.batches);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the thread writing the weights panicked"))?
    }
}

/// Which topics the lines keep: LDA's above `minimum_probability` (the job's own unless
/// given), LSI's non-zero weights (a threshold is refused there).
async fn kept_topics(
    daemon: &Daemon,
    job: JobId,
    lda: bool,
    minimum_probability: Option<f64>,
) -> anyhow::Result<Keep> {
    if lda {
        let p = match minimum_probability {
            Some(p) => p,
            None => job_minimum_probability(daemon, job).await?,
        };
        Ok(Keep::AtLeast(p.max(PROBABILITY_FLOOR)))
    } else if minimum_probability.is_some() {
        bail!("--minimum-probability applies to LDA models, and job {job} is an LSI model");
    } else {
        Ok(Keep::NonZero)
    }
}

/// The `minimum_probability` the job was trained with.
async fn job_minimum_probability(daemon: &Daemon, job: JobId) -> anyhow::Result<f64> {
    match daemon.status(job).await?.spec.model {
        ModelSpec::Lda(params) => Ok(params.minimum_probability),
        ModelSpec::Lsi(_) => bail!("job {job} has an LDA model but was submitted as LSI"),
    }
}

/// One JSON line.
#[derive(Serialize)]
struct JsonLine<'a> {
    doc: u64,
    topics: &'a [(u32, f64)],
}

/// The line of document `doc`.
fn write_line(
    out: &mut impl Write,
    doc: u64,
    topics: &[(u32, f64)],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, &JsonLine { doc, topics })?;
    } else {
        // itoa and zmij: the shortest digits that read back as the same f64, as in --json
        let (mut ints, mut floats) = (itoa::Buffer::new(), zmij::Buffer::new());
        out.write_all(ints.format(doc).as_bytes())?;
        out.write_all(b"\t")?;
        for (i, &(k, w)) in topics.iter().enumerate() {
            if i > 0 {
                out.write_all(b" ")?;
            }
            out.write_all(ints.format(k).as_bytes())?;
            out.write_all(b":")?;
            out.write_all(floats.format(w).as_bytes())?;
        }
    }
    out.write_all(b"\n")?;
    Ok(())
}

/// Where the lines go.
enum Sink {
    Stdout(BufWriter<io::Stdout>),
    File(AtomicFile, PathBuf),
}

impl Sink {
    fn open(path: Option<&Path>) -> anyhow::Result<Sink> {
        Ok(match path {
            None => Sink::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())),
            Some(path) => Sink::File(
                AtomicFile::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
                path.to_owned(),
            ),
        })
    }

    /// Flush stdout, or put the file in place.
    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(mut out) => Ok(out.flush()?),
            Sink::File(file, path) => file
                .finish()
                .with_context(|| format!("cannot write {}", path.display())),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout(out) => out.write(buf),
            Sink::File(file, _) => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout(out) => out.flush(),
            Sink::File(file, _) => file.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lda_keeps_probable_topics_and_lsi_non_zero_weights() {
        let theta = [0.5, 0.2, 0.1999, 1e-9, 0.0];
        assert_eq!(Keep::AtLeast(0.2).select(&theta), [(0, 0.5), (1, 0.2)]);
        let floor = Keep::AtLeast(0.0f64.max(PROBABILITY_FLOOR));
        assert_eq!(floor.select(&theta).len(), 3);
        let u = [3.0, -2e-9, 1e-9, -1e-10, 0.0];
        assert_eq!(Keep::NonZero.select(&u), [(0, 3.0), (1, -2e-9)]);
    }

    #[test]
    fn lines_in_text_and_json() {
        let mut out = Vec::new();
        write_line(&mut out, 7, &[(0, 0.75), (3, 0.25)], false).unwrap();
        write_line(&mut out, 8, &[], false).unwrap();
        write_line(&mut out, 9, &[(1, -0.5)], true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "7\t0:0.75 3:0.25\n8\t\n{\"doc\":9,\"topics\":[[1,-0.5]]}\n"
        );
    }
}
