//! `topicctl export`: write a finished job's model to files, each atomically (see
//! [`AtomicFile`]): a reader sees the old file or the complete new one, never a part.
//!
//! | module | writes |
//! |---|---|
//! | [`lsi`] | LSI: `u.npy`, `s.npy` (npy); `model.json` (json) |
//! | [`lda`] | LDA: `lambda.npy`, `alpha.npy`, `eta.npy` (npy); `model.json` (json) |
//! | [`pyldavis`] | LDA: the five arguments of `pyLDAvis.prepare` |
//! | [`dictionary`] | `dictionary.txt` (npy, both kinds) and `vocab.json` (pyldavis) |
//! | [`pages`] | fetching the model's matrix and the dictionary page by page, checking each page |
//!
//! This module checks the model's description against its kind, dispatches, and prints the
//! paths written.

mod dictionary;
mod lda;
mod lsi;
pub mod pages;
mod pyldavis;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use serde::Serialize;
use topicd_protocol::{JobId, ModelInfo, Topic};

use crate::daemon::Daemon;
use crate::npy::NpyWriter;
use crate::output;
use topicd::atomic_file::AtomicFile;

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The model's arrays for numpy (LSI: u, s; LDA: lambda, alpha, eta) and the
    /// dictionary for gensim.
    Npy,
    /// model.json: shape, singular values (LSI) or alpha (LDA), and topics.
    Json,
    /// LDA only: the arrays and vocabulary pyLDAvis.prepare takes.
    #[value(name = "pyldavis")]
    Pyldavis,
}

/// Export the model of `job` into `out` and print the paths written (a JSON array of them
/// with `--json`). `words` is the number of words per topic in `model.json`.
pub async fn run(
    daemon: &Daemon,
    job: JobId,
    choice: super::model_source::ModelChoice,
    format: Format,
    out: &Path,
    words: u32,
    json: bool,
) -> anyhow::Result<()> {
    let model = super::model_source::model_info(daemon, job, choice).await?;
    let lda = match model.kind.as_str() {
        "lsi" => false,
        "lda" => true,
        other => bail!("job {job} has a model of a kind topicctl does not know: {other}"),
    };
    check_lengths(&model)?;
    if format == Format::Pyldavis && !lda {
        bail!(
            "job {job} is an LSI model: pyLDAvis shows LDA models only (use --format npy or \
             --format json)"
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let written = match (format, lda) {
        (Format::Npy, false) => lsi::write_npy(daemon, job, &model, out).await?,
        (Format::Npy, true) => lda::write_npy(daemon, job, &model, out).await?,
        (Format::Json, _) => {
            let topics = daemon.topics(job, model.num_topics, words).await?;
            let path = out.join("model.json");
            write_file(&path, |file| write_model_json(file, &model, &topics))?;
            vec![path]
        }
        (Format::Pyldavis, _) => pyldavis::write(daemon, job, &model, out).await?,
    };
    super::model_source::still_the_same(daemon, job, &model).await?;
    if json {
        let paths: Vec<String> = written
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        output::print_json(&paths)
    } else {
        let mut text = String::new();
        for path in &written {
            text.push_str(&output::printable_path(path));
            text.push('\n');
        }
        Ok(output::print(&text)?)
    }
}

/// The model's vectors have the lengths its shape and kind call for.
fn check_lengths(model: &ModelInfo) -> anyhow::Result<()> {
    let topics = u64::from(model.num_topics);
    let expected: &[(&str, usize, u64)] = if model.kind == "lsi" {
        &[("singular values", model.singular_values.len(), topics)]
    } else {
        &[
            ("alpha values", model.alpha.len(), topics),
            ("eta values", model.eta.len(), model.num_terms),
            ("topic totals", model.topic_totals.len(), topics),
        ]
    };
    for &(what, got, wanted) in expected {
        if got as u64 != wanted {
            bail!(
                "topicd sent {got} {what} for a model of {} topics and {} terms",
                model.num_topics,
                model.num_terms
            );
        }
    }
    Ok(())
}

/// Write `path` atomically with `fill`.
fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut AtomicFile) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut file = create(path)?;
    fill(&mut file).with_context(|| format!("cannot write {}", path.display()))?;
    commit(file, path)
}

fn create(path: &Path) -> anyhow::Result<AtomicFile> {
    AtomicFile::create(path).with_context(|| format!("cannot create {}", path.display()))
}

fn commit(file: AtomicFile, path: &Path) -> anyhow::Result<()> {
    file.finish()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `out/name`: a 1-D float64 array.
fn write_vector(out: &Path, name: &str, values: &[f64]) -> anyhow::Result<PathBuf> {
    let path = out.join(name);
    write_file(&path, |file| {
        let mut npy = NpyWriter::new(file, &[values.len() as u64])?;
        npy.write(values)?;
        npy.finish()?;
        Ok(())
    })?;
    Ok(path)
}

/// `path`: the model's matrix (`rows × columns`, row-major), fetched page by page with
/// `model_values`, passed through `transform` (given the index of a page's first value)
/// and streamed to the file.
async fn write_matrix(
    daemon: &Daemon,
    job: JobId,
    matrix: &str,
    (rows, columns): (u64, u64),
    path: &Path,
    mut transform: impl FnMut(u64, &mut [f64]),
) -> anyhow::Result<()> {
    let context = || format!("cannot write {}", path.display());
    let total = rows
        .checked_mul(columns)
        .with_context(|| format!("{matrix} is too large: {rows} × {columns}"))?;
    let mut npy = NpyWriter::new(create(path)?, &[rows, columns]).with_context(context)?;
    pages::values(daemon, job, matrix, total, |first, values| {
        transform(first, values);
        npy.write(values).with_context(context)
    })
    .await?;
    let file = npy.finish().with_context(context)?;
    commit(file, path)
}

/// The contents of `model.json`.
#[derive(Serialize)]
struct ModelJson<'a> {
    kind: &'a str,
    num_terms: u64,
    num_topics: u32,
    num_docs: u64,
    /// LSI.
    #[serde(skip_serializing_if = "Option::is_none")]
    singular_values: Option<&'a [f64]>,
    /// LDA.
    #[serde(skip_serializing_if = "Option::is_none")]
    alpha: Option<&'a [f64]>,
    topics: &'a [Topic],
}

/// `model.json`, pretty-printed: the shape, the singular values (LSI) or α (LDA), and the
/// topics.
fn write_model_json(
    file: &mut AtomicFile,
    model: &ModelInfo,
    topics: &[Topic],
) -> anyhow::Result<()> {
    let lsi = model.kind == "lsi";
    let document = ModelJson {
        kind: &model.kind,
        num_terms: model.num_terms,
        num_topics: model.num_topics,
        num_docs: model.num_docs,
        singular_values: lsi.then_some(&model.singular_values[..]),
        alpha: (!lsi).then_some(&model.alpha[..]),
        topics,
    };
    serde_json::to_writer_pretty(&mut *file, &document)?;
    file.write_all(b"\n")?;
    Ok(())
}
