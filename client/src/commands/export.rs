//! `topicctl export`: write a finished job's model to files, each atomically (see
//! [`AtomicFile`]).
//!
//! - `npy`: `u.npy` (U, num_terms × num_topics float64 in C order, streamed to the file
//!   page by page with `model_rows`), `s.npy` (the singular values) and `dictionary.txt`
//!   (gensim's `Dictionary.save_as_text` format, paged with `vocabulary`);
//! - `json`: `model.json` with the shape, the singular values and every topic.
//!
//! Pages are checked as they come: a page of U must hold whole rows, at least one and no
//! more than asked for; dictionary ids must increase within the range asked for.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use serde::Serialize;
use topicd::protocol::{JobId, MAX_PAGE_BYTES, ModelInfo, Topic};

use crate::atomic::AtomicFile;
use crate::daemon::Daemon;
use crate::npy::NpyWriter;
use crate::output;

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// u.npy, s.npy and dictionary.txt, for numpy and gensim.
    Npy,
    /// model.json: shape, singular values and topics.
    Json,
}

/// Dictionary ids asked for per `vocabulary` request; the daemon sends fewer if they do
/// not fit in a page.
const VOCABULARY_PAGE: u64 = 1 << 20;

/// Export the model of `job` into `out` and print the paths written (a JSON array of them
/// with `--json`). `words` is the number of words per topic in `model.json`.
pub async fn run(
    daemon: &Daemon,
    job: JobId,
    format: Format,
    out: &Path,
    words: u32,
    json: bool,
) -> anyhow::Result<()> {
    let model = daemon.model_info(job).await?;
    if model.singular_values.len() as u64 != u64::from(model.num_topics) {
        bail!(
            "topicd sent {} singular values for a model of {} topics",
            model.singular_values.len(),
            model.num_topics
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let written = match format {
        Format::Npy => {
            let u = out.join("u.npy");
            write_u(daemon, job, &model, &u).await?;
            let s = out.join("s.npy");
            write_file(&s, |file| write_s(file, &model.singular_values))?;
            let dictionary = out.join("dictionary.txt");
            write_dictionary(daemon, job, &model, &dictionary).await?;
            vec![u, s, dictionary]
        }
        Format::Json => {
            let topics = daemon.topics(job, model.num_topics, words).await?;
            let path = out.join("model.json");
            write_file(&path, |file| write_model_json(file, &model, &topics))?;
            vec![path]
        }
    };
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
    file.commit()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `u.npy`: U fetched page by page and streamed to the file.
async fn write_u(
    daemon: &Daemon,
    job: JobId,
    model: &ModelInfo,
    path: &Path,
) -> anyhow::Result<()> {
    let context = || format!("cannot write {}", path.display());
    let columns = u64::from(model.num_topics);
    let rows = model.num_terms;
    let mut npy = NpyWriter::new(create(path)?, &[rows, columns]).with_context(context)?;
    if columns > 0 {
        let page_rows = (MAX_PAGE_BYTES as u64 / (8 * columns)).max(1);
        let mut row = 0;
        while row < rows {
            let asked = page_rows.min(rows - row);
            let values = daemon.model_rows(job, row, asked, columns).await?;
            let received = values.len() as u64;
            if !received.is_multiple_of(columns) {
                bail!(
                    "topicd sent {received} values of U from row {row}: not a whole number of \
                     rows of {columns}"
                );
            }
            let got = received / columns;
            if got == 0 || got > asked {
                bail!("topicd sent {got} rows of U from row {row} when {asked} were asked for");
            }
            npy.write(&values).with_context(context)?;
            row += got;
        }
    }
    let file = npy.finish().with_context(context)?;
    commit(file, path)
}

/// `s.npy`: the singular values.
fn write_s(file: &mut AtomicFile, singular_values: &[f64]) -> anyhow::Result<()> {
    let mut npy = NpyWriter::new(file, &[singular_values.len() as u64])?;
    npy.write(singular_values)?;
    npy.finish()?;
    Ok(())
}

/// `dictionary.txt` in gensim's text format: the number of documents on the first line
/// when the dictionary has one, then `id<TAB>token<TAB>document frequency` lines.
async fn write_dictionary(
    daemon: &Daemon,
    job: JobId,
    model: &ModelInfo,
    path: &Path,
) -> anyhow::Result<()> {
    let context = || format!("cannot write {}", path.display());
    let mut file = create(path)?;
    if let Some(num_docs) = model.dictionary_num_docs {
        writeln!(file, "{num_docs}").with_context(context)?;
    }
    // Ids run from 0 to num_terms - 1; ids without a token are skipped by the daemon.
    let mut next = 0;
    while next < model.num_terms {
        let asked = VOCABULARY_PAGE.min(model.num_terms - next);
        let end = next + asked;
        let entries = daemon.vocabulary(job, next, asked).await?;
        let mut after = next;
        for entry in &entries {
            let id = u64::from(entry.id);
            if id < after || id >= end {
                bail!(
                    "topicd sent dictionary id {id} out of order (ids from {after} below {end} \
                     were expected)"
                );
            }
            if entry.token.contains(['\t', '\n', '\r']) {
                bail!(
                    "the token of id {id} contains a tab or line break, which gensim's text \
                     format cannot hold"
                );
            }
            writeln!(file, "{}\t{}\t{}", entry.id, entry.token, entry.doc_freq)
                .with_context(context)?;
            after = id + 1;
        }
        // A page that stops short may have been cut to fit: go on after its last entry.
        // An empty page means no id of the range has a token.
        next = if entries.is_empty() { end } else { after };
    }
    commit(file, path)
}

/// The contents of `model.json`.
#[derive(Serialize)]
struct ModelJson<'a> {
    kind: &'a str,
    num_terms: u64,
    num_topics: u32,
    num_docs: u64,
    singular_values: &'a [f64],
    topics: &'a [Topic],
}

/// `model.json`, pretty-printed.
fn write_model_json(
    file: &mut AtomicFile,
    model: &ModelInfo,
    topics: &[Topic],
) -> anyhow::Result<()> {
    let document = ModelJson {
        kind: &model.kind,
        num_terms: model.num_terms,
        num_topics: model.num_topics,
        num_docs: model.num_docs,
        singular_values: &model.singular_values,
        topics,
    };
    serde_json::to_writer_pretty(&mut *file, &document)?;
    file.write_all(b"\n")?;
    Ok(())
}
