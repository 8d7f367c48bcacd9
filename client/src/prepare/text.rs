//! Reading the documents: one per line of a file, or one per `.txt` file of a directory;
//! plain, gzip or bzip2 (told by the first bytes, see [`topicd::corpus::source`]); `-` for
//! standard input, which is first copied to a temporary file beside the outputs because
//! `prepare` reads its input twice.
//!
//! Lines end at `\n` only (a `\r` before it is part of the line, and is not a token
//! character anyway); the last line may lack its `\n`; an empty line is an empty document.
//! A document longer than the limit (256 MiB by default) is an error naming the file and
//! the line, so memory never grows with what a file claims. Bytes are passed on as they are:
//! invalid UTF-8 is the tokenizer's business (dropped, as gensim's `errors='ignore'`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use topicd::corpus::{CorpusError, source};

/// The default limit on one document, in bytes.
pub const MAX_DOCUMENT: usize = 256 << 20;
/// A batch is sent on once it holds this many bytes...
const BATCH_BYTES: usize = 8 << 20;
/// ... or this many documents.
const BATCH_DOCS: usize = 8192;

/// Consecutive documents, stored end to end.
#[derive(Debug, Default)]
pub struct Batch {
    /// The 0-based number of the first document in the input.
    pub first: u64,
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    /// Number of documents.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch holds no document.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th document's bytes.
    pub fn doc(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    fn full(&self) -> bool {
        self.data.len() >= BATCH_BYTES || self.ends.len() >= BATCH_DOCS
    }
}

/// Where the documents come from.
#[derive(Debug)]
pub struct Source {
    kind: Kind,
    /// Longest document accepted, in bytes.
    pub max_document: usize,
    /// The copy of standard input, removed on drop.
    _spool: Option<Spool>,
}

#[derive(Debug)]
enum Kind {
    /// One document per line of this file.
    Lines { path: PathBuf, name: PathBuf },
    /// One document per file.
    Files(Vec<PathBuf>),
}

impl Source {
    /// The documents of `docs`: a file, a directory, or `-` (standard input, copied into
    /// `spool_dir` first).
    pub fn open(docs: &Path, spool_dir: &Path) -> anyhow::Result<Source> {
        let (kind, spool) = if docs == Path::new("-") {
            let spool = Spool::stdin(spool_dir)?;
            let kind = Kind::Lines {
                path: spool.path.clone(),
                name: PathBuf::from("standard input"),
            };
            (kind, Some(spool))
        } else if fs::metadata(docs).is_ok_and(|m| m.is_dir()) {
            let mut files = Vec::new();
            text_files(docs, &mut files)
                .map_err(|e| CorpusError::in_file(docs, format!("cannot list: {e}")))?;
            if files.is_empty() {
                anyhow::bail!(
                    "{}: no .txt, .txt.gz or .txt.bz2 file in this directory",
                    docs.display()
                );
            }
            files.sort();
            (Kind::Files(files), None)
        } else {
            let kind = Kind::Lines {
                path: docs.to_owned(),
                name: docs.to_owned(),
            };
            (kind, None)
        };
        Ok(Source {
            kind,
            max_document: MAX_DOCUMENT,
            _spool: spool,
        })
    }

    /// Read every document, in order, handing them to `f` in batches. Stops at the first
    /// error, of the input or of `f`.
    pub fn read(&self, mut f: impl FnMut(Batch) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let mut batch = Batch::default();
        let mut next = 0u64;
        let mut send = |batch: &mut Batch, next: u64| -> anyhow::Result<()> {
            let full = std::mem::take(batch);
            batch.first = next;
            f(full)
        };
        match &self.kind {
            Kind::Lines { path, name } => {
                let mut reader = open(path, name)?;
                let mut line = 0u64;
                loop {
                    let start = batch.data.len();
                    let more = read_line(&mut reader, &mut batch.data, self.max_document)
                        .map_err(|e| CorpusError::at_line(name, line + 1, e.to_string()))?;
                    if !more {
                        break;
                    }
                    line += 1;
                    debug_assert!(batch.data.len() >= start);
                    batch.ends.push(batch.data.len());
                    next += 1;
                    if batch.full() {
                        send(&mut batch, next)?;
                    }
                }
            }
            Kind::Files(files) => {
                for path in files {
                    let reader = open(path, path)?;
                    let limit = self.max_document as u64;
                    let got = reader
                        .take(limit + 1)
                        .read_to_end(&mut batch.data)
                        .map_err(|e| CorpusError::in_file(path, format!("cannot read: {e}")))?;
                    if got as u64 > limit {
                        return Err(CorpusError::in_file(path, too_long(self.max_document)).into());
                    }
                    batch.ends.push(batch.data.len());
                    next += 1;
                    if batch.full() {
                        send(&mut batch, next)?;
                    }
                }
            }
        }
        if !batch.is_empty() {
            send(&mut batch, next)?;
        }
        Ok(())
    }
}

fn too_long(max: usize) -> String {
    format!("document longer than {max} bytes: not text of one document per line (binary data?)")
}

/// Open `path` (plain, gzip or bzip2), naming it `name` in errors.
fn open(path: &Path, name: &Path) -> anyhow::Result<Box<dyn BufRead + Send>> {
    source::open(path).map_err(|e| {
        CorpusError {
            file: name.to_owned(),
            ..e
        }
        .into()
    })
}

/// Append the next line (without its `\n`) to `out`; `false` at the end of the input.
/// Fails, leaving `out` longer, when the line exceeds `max` bytes.
pub fn read_line(reader: &mut dyn BufRead, out: &mut Vec<u8>, max: usize) -> io::Result<bool> {
    let mut len = 0usize;
    let mut seen_any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot read: {e}"))),
        };
        if available.is_empty() {
            return Ok(seen_any);
        }
        seen_any = true;
        let (take, consume, done) = match memchr(b'\n', available) {
            Some(i) => (i, i + 1, true),
            None => (available.len(), available.len(), false),
        };
        if len + take > max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, too_long(max)));
        }
        out.extend_from_slice(&available[..take]);
        len += take;
        reader.consume(consume);
        if done {
            return Ok(true);
        }
    }
}

fn memchr(byte: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == byte)
}

/// The `.txt`, `.txt.gz` and `.txt.bz2` files under `dir`, recursively (hidden names
/// skipped, symbolic links followed for files only).
fn text_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            text_files(&path, out)?;
        } else if [".txt", ".txt.gz", ".txt.bz2"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
            && fs::metadata(&path).is_ok_and(|m| m.is_file())
        {
            out.push(path);
        }
    }
    Ok(())
}

/// A copy of standard input in a hidden temporary file, removed on drop.
#[derive(Debug)]
struct Spool {
    path: PathBuf,
}

impl Spool {
    fn stdin(dir: &Path) -> anyhow::Result<Spool> {
        let path = dir.join(format!(
            ".topicctl-prepare-stdin.{}.tmp",
            std::process::id()
        ));
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| CorpusError::in_file(&path, format!("cannot create: {e}")))?;
        let spool = Spool { path };
        io::copy(&mut io::stdin().lock(), &mut file).map_err(|e| {
            anyhow::anyhow!("copying standard input to {}: {e}", spool.path.display())
        })?;
        Ok(spool)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests;
