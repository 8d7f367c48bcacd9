//! The chunks of one pass over a corpus, read on a thread of their own so that parsing
//! overlaps training, at most [`READ_AHEAD`] chunks ahead (memory stays a few chunks).
//!
//! The first pass parses the Matrix Market text and writes every chunk to a binary chunk
//! cache; once the cache is complete, later passes (and resumes) read it instead of
//! parsing again. The cache is an optimisation only: its chunks are the parsed chunks bit
//! for bit, and a missing cache just means parsing again.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::JobError;
use crate::corpus::{
    ChunkCacheReader, ChunkCacheWriter, CorpusError, InputFile, MmOptions, MmReader, SparseChunk,
};
use crate::work::ChunkSet;

/// Chunks parsed ahead of the one being trained on.
pub const READ_AHEAD: usize = 2;

/// Where a pass reads from.
pub struct PassInput {
    /// The Matrix Market corpus, open (the job's verified file).
    pub corpus: InputFile,
    /// Validation of the corpus (dictionary size, counts).
    pub options: MmOptions,
    /// Documents per chunk.
    pub chunksize: usize,
    /// The chunk cache, or `None` to parse every pass.
    pub cache: Option<PathBuf>,
    /// Chunks of the pass to leave out (already in the checkpoint).
    pub skip: ChunkSet,
}

/// The chunks of one pass, in order.
pub struct PassReader {
    chunks: Receiver<Result<SparseChunk, JobError>>,
    thread: Option<JoinHandle<()>>,
}

impl PassReader {
    /// Start reading.
    pub fn start(input: PassInput) -> PassReader {
        let (tx, rx) = sync_channel(READ_AHEAD);
        let thread = std::thread::Builder::new()
            .name("topicd-reader".into())
            .spawn(move || {
                if let Err(e) = read_pass(&input, &tx) {
                    let _ = tx.send(Err(e));
                }
            })
            .expect("spawn the reader thread");
        PassReader {
            chunks: rx,
            thread: Some(thread),
        }
    }
}

impl Iterator for PassReader {
    type Item = Result<SparseChunk, JobError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.chunks.recv().ok()
    }
}

impl Drop for PassReader {
    fn drop(&mut self) {
        // Dropping the receiver makes the reader's next send fail, which ends it.
        let (_, dead) = sync_channel(0);
        drop(std::mem::replace(&mut self.chunks, dead));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_pass(
    input: &PassInput,
    tx: &SyncSender<Result<SparseChunk, JobError>>,
) -> Result<(), JobError> {
    let send = |chunk: SparseChunk| input.skip.contains(chunk.index) || tx.send(Ok(chunk)).is_ok();
    if let Some(cache) = input.cache.as_deref().filter(|c| c.exists()) {
        return read_cache(cache, &send);
    }
    let mut reader = MmReader::open_file(&input.corpus, input.options.clone())?;
    let mut writer = match &input.cache {
        Some(path) => Some(ChunkCacheWriter::create(path).map_err(cache_error)?),
        None => None,
    };
    while let Some(chunk) = reader.next_chunk(input.chunksize)? {
        if let Some(w) = writer.as_mut() {
            w.append(&chunk).map_err(cache_error)?;
        }
        if !send(chunk) {
            return Ok(()); // the trainer stopped listening
        }
    }
    if let Some(w) = writer {
        w.finish().map_err(cache_error)?;
    }
    Ok(())
}

fn read_cache(cache: &Path, send: &dyn Fn(SparseChunk) -> bool) -> Result<(), JobError> {
    let mut reader = ChunkCacheReader::open(cache).map_err(|e| corrupt_cache(cache, e))?;
    while let Some(chunk) = reader.next_chunk().map_err(|e| corrupt_cache(cache, e))? {
        if !send(chunk) {
            break;
        }
    }
    Ok(())
}

/// A failed write of the cache may pass (a full disk): retryable; a refused chunk is a defect.
fn cache_error(e: CorpusError) -> JobError {
    let message = format!("cannot write the chunk cache: {e}");
    match e.failed_write {
        Some(_) => JobError::Io(message),
        None => JobError::Internal(message),
    }
}

/// A damaged cache is removed, so that resuming parses the corpus again.
fn corrupt_cache(cache: &Path, e: impl std::fmt::Display) -> JobError {
    let _ = std::fs::remove_file(cache);
    JobError::Internal(format!(
        "the chunk cache was damaged and has been removed ({e}); resume the job to read the corpus again"
    ))
}
