//! The chunks of one pass over a corpus, read on a thread of their own so that parsing
//! overlaps training, at most [`PassInput::read_ahead`] chunks ahead (memory stays a few
//! chunks: [`READ_AHEAD`], or a segment's for LDA's segments).
//!
//! The first pass parses the corpus text (weighting the documents when the job asks
//! for TF-IDF) and writes every chunk to a binary chunk cache; once the cache is complete, later passes (and resumes) read it instead of
//! parsing again. The cache is an optimisation only: its chunks are the parsed chunks bit
//! for bit, and a missing cache just means parsing again. A cache that does not fit
//! (`chunk_cache_bytes`, the disk: see [`super::chunk_cache`]) is given up, and the pass goes
//! on parsing, as every later one will.
//!
//! A file that cannot be opened for a passing reason (the process or the system out of
//! descriptors or memory) is tried again for a few seconds before the job fails, and then
//! with the real reason; only a cache whose content is bad is called damaged and removed.

use std::io;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use super::chunk_cache::{CacheUse, PassSourceSlot, publish};
use super::inputs::CorpusReading;
use super::{JobError, JobFiles};
use crate::corpus::{ChunkCacheReader, ChunkCacheWriter, CorpusError, EmptyRun, Piece, is_full};
use crate::work::ChunkSet;
use topicd_protocol::PassSource;

/// Chunks parsed ahead of the one being trained on.
pub const READ_AHEAD: usize = 2;

/// Where a pass reads from.
pub struct PassInput {
    /// The job's verified files.
    pub files: JobFiles,
    /// How to read the corpus: validation and weighting.
    pub reading: CorpusReading,
    /// Documents per chunk.
    pub chunksize: usize,
    /// The chunk cache, or `None` to parse every pass.
    pub cache: Option<CacheUse>,
    /// Chunks of the pass to leave out (already in the checkpoint).
    pub skip: ChunkSet,
    /// Where the pass reads from is published here.
    pub source: PassSourceSlot,
    /// Chunks parsed ahead of the one being trained on (at least 1).
    pub read_ahead: usize,
}

/// The chunks of one pass, in order.
pub struct PassReader {
    chunks: Receiver<Result<Piece, JobError>>,
    thread: Option<JoinHandle<()>>,
}

impl PassReader {
    /// Start reading.
    pub fn start(input: PassInput) -> PassReader {
        let (tx, rx) = sync_channel(input.read_ahead.max(1));
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
    type Item = Result<Piece, JobError>;

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

fn read_pass(input: &PassInput, tx: &SyncSender<Result<Piece, JobError>>) -> Result<(), JobError> {
    let send = |piece: Piece| match piece {
        Piece::Chunk(chunk) => {
            input.skip.contains(chunk.index) || tx.send(Ok(Piece::Chunk(chunk))).is_ok()
        }
        // the parts of the run not skipped
        Piece::Empty(run) => unskipped(&input.skip, &run, input.chunksize as u64)
            .into_iter()
            .all(|part| tx.send(Ok(Piece::Empty(part))).is_ok()),
    };
    let cache = input.cache.as_ref().filter(|c| c.given_up().is_none());
    if let Some(cache) = cache.filter(|c| c.path.exists()) {
        publish(&input.source, PassSource::Cache);
        return read_cache(&cache.path, &send);
    }
    let mut reader = input.reading.open(&input.files)?;
    let mut writer = match cache {
        Some(cache) => start_cache(cache)?,
        None => None,
    };
    publish(
        &input.source,
        source(input.cache.as_ref(), writer.is_some()),
    );
    while let Some(piece) = reader.next_piece(input.chunksize)? {
        let piece = input.reading.weigh(piece);
        if let (Some(w), Some(cache)) = (writer.as_mut(), cache)
            && let Err(e) = w.append_piece(&piece)
        {
            writer = None; // removes the temporary file
            give_up(cache, e)?;
            publish(&input.source, source(Some(cache), false));
        }
        if !send(piece) {
            return Ok(()); // the trainer stopped listening
        }
    }
    if let (Some(w), Some(cache)) = (writer, cache)
        && let Err(e) = w.finish()
    {
        give_up(cache, e)?;
        publish(&input.source, source(Some(cache), false));
    }
    Ok(())
}

/// A writer of the cache within the room it has, or `None` when it does not fit.
fn start_cache(cache: &CacheUse) -> Result<Option<ChunkCacheWriter>, JobError> {
    let room = match cache.room() {
        Ok(room) => room,
        Err(why) => {
            cache.give_up(why);
            return Ok(None);
        }
    };
    match ChunkCacheWriter::create(&cache.path) {
        Ok(writer) => Ok(Some(writer.limited(room))),
        Err(e) => give_up(cache, e).map(|()| None),
    }
}

/// A failed write of the cache: given up when the cache does not fit (its limit, a full
/// disk or quota), else the job's error.
fn give_up(cache: &CacheUse, e: CorpusError) -> Result<(), JobError> {
    if !is_full(&e) {
        return Err(cache_error(e));
    }
    cache.give_up(e.message);
    Ok(())
}

/// Where a pass that parses the corpus reads from.
fn source(cache: Option<&CacheUse>, writing: bool) -> PassSource {
    match (cache.and_then(CacheUse::given_up), writing) {
        (_, true) => PassSource::CorpusWritingCache,
        (Some(why), false) => PassSource::CorpusNotCached(why),
        (None, false) => PassSource::Corpus,
    }
}

fn read_cache(cache: &Path, send: &dyn Fn(Piece) -> bool) -> Result<(), JobError> {
    // Not being able to open the file says nothing about its content.
    open_patiently(cache).map_err(|e| {
        JobError::Internal(format!(
            "cannot open the chunk cache {}: {e}",
            cache.display()
        ))
    })?;
    let mut reader = ChunkCacheReader::open(cache).map_err(|e| corrupt_cache(cache, e))?;
    while let Some(piece) = reader.next_piece().map_err(|e| corrupt_cache(cache, e))? {
        if !send(piece) {
            break;
        }
    }
    Ok(())
}

/// The parts of an empty run outside `skip` (a checkpoint may cover part of it), in order.
fn unskipped(skip: &ChunkSet, run: &EmptyRun, chunksize: u64) -> Vec<EmptyRun> {
    let mut parts = vec![];
    let mut start = run.first;
    let part = |a: u64, b: u64, parts: &mut Vec<EmptyRun>| {
        if a < b {
            parts.push(run.part(a, b, chunksize));
        }
    };
    for &(a, b) in skip.ranges() {
        if b <= start || a >= run.end() {
            continue;
        }
        part(start, a.max(start), &mut parts);
        start = b.min(run.end());
    }
    part(start, run.end(), &mut parts);
    parts
}

/// A failed write of the cache may pass (a full disk): retryable; a refused chunk is a defect.
fn cache_error(e: CorpusError) -> JobError {
    let message = format!("cannot write the chunk cache: {e}");
    match e.failed_write {
        Some(_) => JobError::Io(message),
        None => JobError::Internal(message),
    }
}

/// Delays between the attempts to open a file that fails for a passing reason: about 6 s in
/// all.
const OPEN_RETRIES: [Duration; 8] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1500),
    Duration::from_millis(1500),
    Duration::from_millis(1500),
];

/// Open `path` for reading (and close it), trying again while it fails for a passing
/// reason; the last error otherwise.
fn open_patiently(path: &Path) -> io::Result<()> {
    retry_transient(|| std::fs::File::open(path).map(drop))
}

/// `attempt` until it succeeds, fails for good, or has failed for a passing reason
/// [`OPEN_RETRIES`] times.
fn retry_transient<T>(mut attempt: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut delays = OPEN_RETRIES.iter();
    loop {
        match attempt() {
            Err(e) if is_transient(&e) => match delays.next() {
                Some(delay) => std::thread::sleep(*delay),
                None => return Err(e),
            },
            result => return result,
        }
    }
}

/// Whether an error may go away by itself: descriptors or memory exhausted, a call
/// interrupted.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN | libc::EINTR | libc::ENOBUFS
        )
    )
}

/// A damaged cache is removed, so that resuming parses the corpus again.
fn corrupt_cache(cache: &Path, e: impl std::fmt::Display) -> JobError {
    let _ = std::fs::remove_file(cache);
    JobError::Internal(format!(
        "the chunk cache was damaged and has been removed ({e}); resume the job to read the corpus again"
    ))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn os_error(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn out_of_descriptors_is_tried_again_and_other_errors_are_not() {
        let calls = Cell::new(0);
        let result = retry_transient(|| {
            calls.set(calls.get() + 1);
            match calls.get() {
                1 => Err(os_error(libc::EMFILE)),
                2 => Err(os_error(libc::ENFILE)),
                _ => Ok(7),
            }
        });
        assert_eq!((result.unwrap(), calls.get()), (7, 3));

        calls.set(0);
        let result: io::Result<()> = retry_transient(|| {
            calls.set(calls.get() + 1);
            Err(os_error(libc::EACCES))
        });
        assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::EACCES));
        assert_eq!(calls.get(), 1);
    }

    /// A write of the cache that fails for lack of room gives the cache up and lets the
    /// pass go on; any other failure is the job's (retryable when it may pass).
    #[test]
    fn a_full_disk_gives_the_cache_up_and_other_failures_stop_the_pass() {
        let cache = CacheUse::new("/nowhere/job1-0-1.chunks".into(), 1, 1 << 30, 1);
        let failed = |code| {
            CorpusError::write_failed(
                &cache.path,
                format!("cannot write: {}", io::Error::from_raw_os_error(code)),
                &io::Error::from_raw_os_error(code),
            )
        };
        let e = give_up(&cache, failed(libc::EIO)).unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(
            e.to_string().contains("cannot write the chunk cache"),
            "{e}"
        );
        assert_eq!(cache.given_up(), None);
        assert_eq!(source(Some(&cache), false), PassSource::Corpus);

        give_up(&cache, failed(libc::ENOSPC)).unwrap();
        let why = cache.given_up().unwrap();
        assert!(why.contains("No space left on device"), "{why}");
        assert_eq!(
            source(Some(&cache), false),
            PassSource::CorpusNotCached(why)
        );
        // a quota is as full as a disk; the first reason stays
        give_up(&cache, failed(libc::EDQUOT)).unwrap();
        assert!(cache.given_up().unwrap().contains("No space left"));
    }

    #[test]
    fn a_cache_that_cannot_be_opened_is_not_called_damaged_nor_removed() {
        let dir = tempfile::tempdir().unwrap();
        // Bad content: damaged, and removed.
        let cache = dir.path().join("job1-cache");
        std::fs::write(&cache, b"not a chunk cache, but whole").unwrap();
        let damaged = read_cache(&cache, &|_| true).unwrap_err().to_string();
        assert!(damaged.contains("the chunk cache was damaged"), "{damaged}");
        assert!(!cache.exists());

        // Not openable, for a reason that is not its content (here, a path under a file):
        // the reason is told, and nothing is called damaged.
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let e = read_cache(&file.join("job2-cache"), &|_| true)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot open the chunk cache"), "{e}");
        assert!(
            e.contains("Not a directory") && !e.contains("damaged"),
            "{e}"
        );
    }
}
