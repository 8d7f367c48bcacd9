//! `export --format pyldavis`: the five arguments of `pyLDAvis.prepare`, for an LDA job:
//!
//! ```python
//! import json, numpy as np, pyLDAvis
//! load = lambda name: np.load(f"{out}/{name}.npy")
//! vis = pyLDAvis.prepare(load("topic_term_dists"), load("doc_topic_dists"),
//!                        load("doc_lengths"), json.load(open(f"{out}/vocab.json")),
//!                        load("term_frequency"))
//! ```
//!
//! - `topic_term_dists.npy` (K × V): λ_k / Σ_w λ_kw, streamed page by page;
//! - `doc_topic_dists.npy` (D × K): θ of every training document: topicctl reads the job's
//!   corpus (it must be readable here, and unchanged since the job was submitted: its
//!   fingerprint is checked) and sends it to `infer` batch by batch, streaming the rows;
//! - `doc_lengths.npy` (D): the sum of the counts of each document;
//! - `term_frequency.npy` (V): the sum of the counts of each term over the corpus;
//! - `vocab.json`: the V tokens (see [`dictionary::write_vocab_json`]).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use topicd::corpus::MmOptions;
use topicd_protocol::{JobId, ModelInfo};

use super::{commit, create, dictionary, write_matrix, write_vector};
use crate::batches::{self, CorpusBatches, Limits, Meter};
use crate::daemon::Daemon;
use crate::npy::NpyWriter;
use crate::output;

/// Write the five files into `out`; returns their paths in `pyLDAvis.prepare`'s order.
pub async fn write(
    daemon: &Daemon,
    job: JobId,
    model: &ModelInfo,
    out: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let info = daemon.status(job).await?;
    let corpus = info.spec.corpus.clone();
    if corpus.is_dir() {
        // an imported model (`topicctl import`): its "corpus" is the directory it came from
        anyhow::bail!(
            "job {job} was imported from {}, without the documents it was trained on, which \
             pyLDAvis needs (doc_topic_dists): prepare it in Python from the model and its corpus",
            output::printable_path(&corpus)
        );
    }
    // Hash the corpus while the topics are fetched.
    let fingerprint = tokio::task::spawn_blocking({
        let corpus = corpus.clone();
        move || topicd::corpus::fingerprint(&corpus)
    });

    let topic_term = out.join("topic_term_dists.npy");
    let shape = (u64::from(model.num_topics), model.num_terms);
    let (totals, num_terms) = (&model.topic_totals, model.num_terms);
    write_matrix(daemon, job, "λ", shape, &topic_term, |first, values| {
        for (i, v) in (first..).zip(values.iter_mut()) {
            *v /= totals[(i / num_terms) as usize];
        }
    })
    .await?;
    let vocab = dictionary::write_vocab_json(daemon, job, model, out).await?;

    let shown = output::printable_path(&corpus);
    let now = fingerprint
        .await
        .context("the corpus fingerprint was lost")?
        .with_context(|| format!("cannot read the job's corpus {shown}"))?;
    if now != info.corpus_fingerprint {
        bail!(
            "the job's corpus {shown} has changed since job {job} was submitted ({now}, was \
             {}): its documents' topics would not be the model's",
            info.corpus_fingerprint
        );
    }
    let (doc_topic, lengths, frequency) = write_documents(daemon, job, model, &corpus, out).await?;
    let term_frequency = write_vector(out, "term_frequency.npy", &frequency)?;
    Ok(vec![topic_term, doc_topic, lengths, vocab, term_frequency])
}

/// `doc_topic_dists.npy` and `doc_lengths.npy`, streamed as the corpus is read and
/// inferred; returns their paths and the term frequencies.
async fn write_documents(
    daemon: &Daemon,
    job: JobId,
    model: &ModelInfo,
    corpus: &Path,
    out: &Path,
) -> anyhow::Result<(PathBuf, PathBuf, Vec<f64>)> {
    let options = MmOptions {
        max_terms: model.num_terms,
        counts: true,
        dictionary: None,
    };
    let mut docs = CorpusBatches::open(corpus, options, Limits::for_topics(model.num_topics))?;
    let num_docs = docs.num_docs();
    if num_docs != model.num_docs {
        bail!(
            "the job's corpus {} holds {num_docs} documents, but the model was trained on {}",
            output::printable_path(corpus),
            model.num_docs
        );
    }
    let topics_path = out.join("doc_topic_dists.npy");
    let lengths_path = out.join("doc_lengths.npy");
    let context = |path: &Path| format!("cannot write {}", path.display());
    let shape = [num_docs, u64::from(model.num_topics)];
    let mut topics =
        NpyWriter::new(create(&topics_path)?, &shape).with_context(|| context(&topics_path))?;
    let mut lengths = NpyWriter::new(create(&lengths_path)?, &[num_docs])
        .with_context(|| context(&lengths_path))?;
    let mut frequency = vec![0.0; model.num_terms as usize];
    let mut meter = Meter::new(num_docs, "inferred", true);
    while let Some(batch) = docs.next().await? {
        let count = batch.docs.len();
        for doc in &batch.docs {
            lengths
                .write(&[doc.weights.iter().sum()])
                .with_context(|| context(&lengths_path))?;
            // Term ids were checked against num_terms by the reader.
            for (&t, &w) in doc.terms.iter().zip(&doc.weights) {
                frequency[t as usize] += w;
            }
        }
        for theta in batches::infer(daemon, job, batch, model.num_topics).await? {
            topics
                .write(&theta)
                .with_context(|| context(&topics_path))?;
        }
        meter.add(count);
    }
    let file = topics.finish().with_context(|| context(&topics_path))?;
    commit(file, &topics_path)?;
    let file = lengths.finish().with_context(|| context(&lengths_path))?;
    commit(file, &lengths_path)?;
    meter.finish();
    Ok((topics_path, lengths_path, frequency))
}
