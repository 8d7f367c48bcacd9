//! The binary chunk cache: parse a text corpus once, replay its chunks on every later pass.
//!
//! This module owns the cache file format (little-endian throughout):
//!
//! ```text
//! header   "TOPICDCC"  u32 version (1)  u32 reserved (0)
//! chunk    "CHNK"  u64 index  u64 first_doc  u64 num_docs  u64 nnz
//!          u64 × (num_docs + 1) indptr   u32 × nnz terms   u64 × nnz value bits
//!          u64 XXH3-64 of the record from "CHNK" to here
//! empty    "EMPT"  u64 first index  u64 first_doc  u64 num_docs  u64 chunks
//!          u64 XXH3-64 of the record (a run of chunks without entries, see `Piece`)
//! ...
//! end      "END."  u64 chunks  u64 documents  u64 nnz  u64 XXH3-64 of the record
//! ```
//!
//! A chunk of `d` documents and `n` entries takes `52 + 8·d + 12·n` bytes (a run of empty
//! chunks 44), the header and the end record 52: about 12 bytes per non-zero and 8 per
//! document ([`estimated_bytes`]).
//!
//! A writer may be given a limit ([`ChunkCacheWriter::limited`]): a record that would take
//! the file past it (the end record counted) is not written, and the append fails with
//! [`io::ErrorKind::FileTooLarge`]; [`is_full`] tells such a failure, and a full disk or
//! quota, from other failures, so that the caller can go on without the cache.
//!
//! [`ChunkCacheWriter`] writes a temporary file beside `path` ([`AtomicFile`]) and renames it
//! over `path` only in [`ChunkCacheWriter::finish`], after an fsync (and fsyncs the directory
//! after the rename), so a cache file that exists is complete. [`ChunkCacheReader`] gives back the chunks bit for bit;
//! it checks every record's lengths against the bytes left in the file before allocating, every
//! checksum, the CSR invariants and the end record, so a corrupt or truncated cache is an error,
//! never a panic or a silently shorter corpus.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use super::source::BUFFER_SIZE;
use super::{CorpusError, EmptyRun, Piece};
use crate::atomic_file::{AtomicFile, FinishStep, directory_of};
use topicd_numerics::SparseChunk;

/// The file magic.
const MAGIC: &[u8; 8] = b"TOPICDCC";
/// The format version this code writes and reads (2: runs of empty chunks).
pub const FORMAT_VERSION: u32 = 2;
const HEADER_LEN: u64 = 16;
const CHUNK_TAG: &[u8; 4] = b"CHNK";
const END_TAG: &[u8; 4] = b"END.";
const EMPTY_TAG: &[u8; 4] = b"EMPT";
/// Tag + four u64 fields.
const FIXED_LEN: usize = 4 + 32;
/// The end record: tag, three fields and the checksum.
const END_LEN: u64 = 4 + 32;

/// The bytes of a cache of `num_docs` documents with `nnz` entries in chunks of
/// `chunksize`, counting every chunk as one with entries (a run of empty chunks takes less):
/// what it takes at most when `nnz` is at least the entries the corpus gives.
pub fn estimated_bytes(num_docs: u64, nnz: u64, chunksize: u64) -> u64 {
    let chunks = num_docs.div_ceil(chunksize.max(1));
    // a chunk record: fixed part, indptr's extra entry and checksum; then 8 per document
    // and 12 per entry
    let per_chunk = FIXED_LEN as u64 + 8 + 8;
    HEADER_LEN
        .saturating_add(END_LEN)
        .saturating_add(chunks.saturating_mul(per_chunk))
        .saturating_add(num_docs.saturating_mul(8))
        .saturating_add(nnz.saturating_mul(12))
}

/// Whether a failed write of the cache means that it does not fit (its limit, the disk, the
/// user's quota, the file system's largest file) rather than a failing disk or a defect.
pub fn is_full(e: &CorpusError) -> bool {
    matches!(
        e.failed_write,
        Some(
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
        )
    )
}

/// Writes a chunk cache; see the [module documentation](self) for the format.
///
/// Dropping a writer before [`ChunkCacheWriter::finish`] succeeded removes the temporary file.
pub struct ChunkCacheWriter {
    out: AtomicFile,
    record: Vec<u8>,
    chunks: u64,
    docs: u64,
    nnz: u64,
    /// Bytes written so far, and the most the file may take.
    bytes: u64,
    limit: u64,
}

impl ChunkCacheWriter {
    /// Starts a cache that will become `path`; it is written to a temporary file beside it
    /// meanwhile ([`AtomicFile`]).
    pub fn create(path: &Path) -> Result<Self, CorpusError> {
        let out = AtomicFile::create(path)
            .map_err(|e| CorpusError::write_failed(path, format!("cannot create: {e}"), &e))?;
        let mut writer = ChunkCacheWriter {
            out,
            record: Vec::new(),
            chunks: 0,
            docs: 0,
            nnz: 0,
            bytes: 0,
            limit: u64::MAX,
        };
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        writer.write(&header)?;
        Ok(writer)
    }

    /// This writer, refusing a record that would take the file past `limit` bytes (the end
    /// record counted, so that the finished file is at most `limit`).
    pub fn limited(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    /// The file written until [`ChunkCacheWriter::finish`].
    pub fn temporary_path(&self) -> &Path {
        self.out.temporary_path()
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Write a record (or the header), unless it would leave no room for the end record
    /// within the limit.
    fn write(&mut self, bytes: &[u8]) -> Result<(), CorpusError> {
        let after = self.bytes.saturating_add(bytes.len() as u64);
        if after.saturating_add(END_LEN) > self.limit {
            let e = io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "the chunk cache would pass its limit of {} bytes after {} bytes",
                    self.limit, self.bytes
                ),
            );
            return Err(CorpusError::write_failed(
                self.out.temporary_path(),
                e.to_string(),
                &e,
            ));
        }
        self.write_unlimited(bytes)
    }

    fn write_unlimited(&mut self, bytes: &[u8]) -> Result<(), CorpusError> {
        self.out
            .write_all(bytes)
            .map_err(|e| write_error(self.out.temporary_path(), &e))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Appends one chunk (which must satisfy [`SparseChunk::check`]).
    pub fn append(&mut self, chunk: &SparseChunk) -> Result<(), CorpusError> {
        if let Err(problem) = chunk.check() {
            return Err(CorpusError::in_file(
                self.temporary_path(),
                format!("refusing to cache invalid chunk {}: {problem}", chunk.index),
            ));
        }
        let mut record = std::mem::take(&mut self.record);
        record.clear();
        record.extend_from_slice(CHUNK_TAG);
        for v in [
            chunk.index,
            chunk.first_doc,
            chunk.num_docs() as u64,
            chunk.nnz() as u64,
        ] {
            record.extend_from_slice(&v.to_le_bytes());
        }
        for &p in &chunk.indptr {
            record.extend_from_slice(&(p as u64).to_le_bytes());
        }
        for &t in &chunk.terms {
            record.extend_from_slice(&t.to_le_bytes());
        }
        for &v in &chunk.values {
            record.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        let sum = xxh3_64(&record);
        record.extend_from_slice(&sum.to_le_bytes());
        let result = self.write(&record);
        self.record = record;
        result?;
        self.chunks += 1;
        self.docs += chunk.num_docs() as u64;
        self.nnz += chunk.nnz() as u64;
        Ok(())
    }

    /// Appends a run of chunks without entries.
    pub fn append_empty(&mut self, run: &EmptyRun) -> Result<(), CorpusError> {
        let mut record = Vec::with_capacity(FIXED_LEN + 8);
        record.extend_from_slice(EMPTY_TAG);
        for v in [run.first, run.first_doc, run.docs, run.chunks] {
            record.extend_from_slice(&v.to_le_bytes());
        }
        let sum = xxh3_64(&record);
        record.extend_from_slice(&sum.to_le_bytes());
        self.write(&record)?;
        self.chunks += run.chunks;
        self.docs += run.docs;
        Ok(())
    }

    /// Appends a piece: a chunk or a run of empty chunks.
    pub fn append_piece(&mut self, piece: &Piece) -> Result<(), CorpusError> {
        match piece {
            Piece::Chunk(chunk) => self.append(chunk),
            Piece::Empty(run) => self.append_empty(run),
        }
    }

    /// Writes the end record, flushes, fsyncs, renames the file to its final name and fsyncs the
    /// directory.
    pub fn finish(mut self) -> Result<(), CorpusError> {
        let mut end = Vec::with_capacity(4 + 32);
        end.extend_from_slice(END_TAG);
        for v in [self.chunks, self.docs, self.nnz] {
            end.extend_from_slice(&v.to_le_bytes());
        }
        let sum = xxh3_64(&end);
        end.extend_from_slice(&sum.to_le_bytes());
        // room for it was kept by every write before
        self.write_unlimited(&end)?;
        let temporary = self.temporary_path().to_path_buf();
        let path = self.out.target().to_path_buf();
        self.out.finish().map_err(|e| match e.step {
            FinishStep::Write => write_error(&temporary, &e.error),
            FinishStep::Rename => CorpusError::write_failed(
                &path,
                format!("cannot rename {} to this name: {e}", temporary.display()),
                &e.error,
            ),
            FinishStep::SyncDirectory => {
                let dir = directory_of(&path);
                CorpusError::write_failed(
                    dir,
                    format!("cannot sync the chunk cache's directory: {e}"),
                    &e.error,
                )
            }
        })
    }
}

fn write_error(temporary: &Path, e: &io::Error) -> CorpusError {
    CorpusError::write_failed(temporary, format!("cannot write: {e}"), e)
}

/// Reads a chunk cache back; see the [module documentation](self) for the format.
pub struct ChunkCacheReader {
    path: PathBuf,
    input: BufReader<File>,
    /// Bytes in the file, and bytes consumed so far.
    size: u64,
    pos: u64,
    chunks: u64,
    docs: u64,
    nnz: u64,
    done: bool,
    record: Vec<u8>,
}

impl ChunkCacheReader {
    /// Opens a cache and checks its header.
    pub fn open(path: &Path) -> Result<Self, CorpusError> {
        let cannot =
            |e: io::Error| CorpusError::in_file(path, format!("cannot open the chunk cache: {e}"));
        let file = File::open(path).map_err(cannot)?;
        let size = file.metadata().map_err(cannot)?.len();
        let mut reader = ChunkCacheReader {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(BUFFER_SIZE, file),
            size,
            pos: 0,
            chunks: 0,
            docs: 0,
            nnz: 0,
            done: false,
            record: Vec::new(),
        };
        let mut header = [0u8; HEADER_LEN as usize];
        reader.read_exact(&mut header, "the file header")?;
        if &header[..8] != MAGIC {
            return Err(CorpusError::in_file(
                path,
                "not a topicd chunk cache (wrong magic bytes)",
            ));
        }
        let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if version != FORMAT_VERSION {
            return Err(CorpusError::in_file(
                path,
                format!(
                    "chunk cache format version {version}, but this topicd reads version \
                     {FORMAT_VERSION}: delete the cache to rebuild it"
                ),
            ));
        }
        if header[12..16] != [0u8; 4] {
            return Err(CorpusError::in_file(
                path,
                "chunk cache header has unknown flags set: written by a newer topicd, or corrupt",
            ));
        }
        Ok(reader)
    }

    fn corrupt(&self, message: impl std::fmt::Display) -> CorpusError {
        CorpusError::in_file(
            &self.path,
            format!("corrupt chunk cache at byte {}: {message}", self.pos),
        )
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), CorpusError> {
        match self.input.read_exact(buf) {
            Ok(()) => {
                self.pos += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(CorpusError::in_file(
                &self.path,
                format!(
                    "truncated chunk cache: the file ends inside {what} (after {} chunks)",
                    self.chunks
                ),
            )),
            Err(e) => Err(CorpusError::in_file(
                &self.path,
                format!("cannot read the chunk cache: {e}"),
            )),
        }
    }

    /// The next piece, exactly as it was appended; None after the last one.
    pub fn next_piece(&mut self) -> Result<Option<Piece>, CorpusError> {
        if self.done {
            return Ok(None);
        }
        let mut record = std::mem::take(&mut self.record);
        let result = self.read_record(&mut record);
        self.record = record;
        result
    }

    fn read_record(&mut self, record: &mut Vec<u8>) -> Result<Option<Piece>, CorpusError> {
        let start = self.pos;
        record.clear();
        record.resize(FIXED_LEN, 0);
        if self.pos == self.size {
            return Err(CorpusError::in_file(
                &self.path,
                format!(
                    "truncated chunk cache: the file ends after {} chunks without its end record",
                    self.chunks
                ),
            ));
        }
        self.read_exact(&mut record[..FIXED_LEN], "a record header")?;
        let field = |i: usize| le_u64(&record[4 + 8 * i..12 + 8 * i]);
        let (a, b, c, d) = (field(0), field(1), field(2), field(3));
        if &record[..4] == END_TAG {
            // The end record is three fields and its checksum: exactly FIXED_LEN bytes.
            if xxh3_64(&record[..FIXED_LEN - 8]) != d {
                self.pos = start;
                return Err(self.corrupt("the end record's checksum does not match"));
            }
            if (a, b, c) != (self.chunks, self.docs, self.nnz) {
                self.pos = start;
                return Err(self.corrupt(format!(
                    "the end record declares {a} chunks, {b} documents and {c} entries, but \
                     {} chunks, {} documents and {} entries were read",
                    self.chunks, self.docs, self.nnz
                )));
            }
            if self.pos != self.size {
                return Err(self.corrupt(format!(
                    "{} unexpected bytes after the end record",
                    self.size - self.pos
                )));
            }
            self.done = true;
            return Ok(None);
        }
        if &record[..4] == EMPTY_TAG {
            let mut sum = [0u8; 8];
            self.read_exact(&mut sum, "an empty-run record")?;
            if xxh3_64(&record[..FIXED_LEN]) != u64::from_le_bytes(sum) {
                self.pos = start;
                return Err(self.corrupt("an empty-run record's checksum does not match"));
            }
            let run = EmptyRun {
                first: a,
                first_doc: b,
                docs: c,
                chunks: d,
            };
            if a != self.chunks || b != self.docs || d == 0 || c == 0 {
                self.pos = start;
                return Err(self.corrupt(format!(
                    "an empty run of chunks {a}.. and documents {b}.. after {} chunks and {} documents",
                    self.chunks, self.docs
                )));
            }
            self.chunks += d;
            self.docs += c;
            return Ok(Some(Piece::Empty(run)));
        }
        if &record[..4] != CHUNK_TAG {
            self.pos = start;
            return Err(self.corrupt("expected a chunk or end record"));
        }
        let (index, first_doc, num_docs, nnz) = (a, b, c, d);
        let remaining = self.size - self.pos;
        // indptr (num_docs + 1) × 8, terms nnz × 4, values nnz × 8, checksum 8.
        let body = (num_docs as u128 + 1) * 8 + nnz as u128 * 12 + 8;
        if body > remaining as u128 {
            self.pos = start;
            return Err(self.corrupt(format!(
                "chunk record {} declares {num_docs} documents and {nnz} entries, more than the \
                 {remaining} bytes left in the file: corrupt or truncated cache",
                self.chunks
            )));
        }
        // body <= remaining: these fit in usize on any platform that could hold the file.
        let (Ok(body), Ok(ndocs), Ok(nnz_us)) = (
            usize::try_from(body),
            usize::try_from(num_docs),
            usize::try_from(nnz),
        ) else {
            return Err(self.corrupt("record too large for this platform"));
        };
        record.resize(FIXED_LEN + body, 0);
        self.read_exact(&mut record[FIXED_LEN..], "a chunk record")?;
        let (content, sum) = record.split_at(record.len() - 8);
        if xxh3_64(content) != le_u64(sum) {
            self.pos = start;
            return Err(self.corrupt(format!("checksum mismatch in chunk record {}", self.chunks)));
        }
        let mut rest = &content[FIXED_LEN..];
        let mut indptr = Vec::with_capacity(ndocs + 1);
        for b in rest[..(ndocs + 1) * 8].chunks_exact(8) {
            match usize::try_from(le_u64(b)) {
                Ok(p) => indptr.push(p),
                Err(_) => return Err(self.corrupt("row pointer too large for this platform")),
            }
        }
        rest = &rest[(ndocs + 1) * 8..];
        let terms: Vec<u32> = rest[..nnz_us * 4]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        rest = &rest[nnz_us * 4..];
        let values: Vec<f64> = rest
            .chunks_exact(8)
            .map(|b| f64::from_bits(le_u64(b)))
            .collect();
        let chunk = SparseChunk {
            index,
            first_doc,
            indptr,
            terms,
            values,
        };
        if let Err(problem) = chunk.check() {
            self.pos = start;
            return Err(self.corrupt(format!("chunk record {}: {problem}", self.chunks)));
        }
        self.chunks += 1;
        self.docs += num_docs;
        self.nnz += nnz;
        Ok(Some(Piece::Chunk(chunk)))
    }
}

/// A little-endian u64 from (exactly) 8 bytes; shorter input is zero-padded.
fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic_file::tests::entries;
    use crate::corpus::mm::tests::{DEERWESTER, shared};
    use crate::corpus::{MmOptions, MmReader};
    use std::io::Cursor;

    fn deerwester(chunksize: usize) -> Vec<SparseChunk> {
        let mut r = MmReader::new(
            Cursor::new(DEERWESTER.as_bytes().to_vec()),
            Path::new("d.mm"),
            MmOptions::default(),
        )
        .unwrap();
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk(chunksize).unwrap() {
            out.push(c);
        }
        out
    }

    /// Chunks with awkward values: signed zero, a NaN with a payload, subnormals, extremes,
    /// and a chunk without documents.
    fn awkward() -> Vec<SparseChunk> {
        vec![
            SparseChunk {
                index: 7,
                first_doc: 1 << 40,
                indptr: vec![0, 3, 3, 5],
                terms: vec![0, 1, u32::MAX, 2, 3],
                values: vec![
                    -0.0,
                    f64::from_bits(0x7ff8_dead_beef_0001),
                    f64::MIN_POSITIVE / 3.0,
                    f64::MAX,
                    -1e-300,
                ],
            },
            SparseChunk::empty(8, 0, 0),
            SparseChunk::empty(9, 5, 3),
        ]
    }

    fn write(path: &Path, chunks: &[SparseChunk]) {
        let mut w = ChunkCacheWriter::create(path).unwrap();
        for c in chunks {
            w.append(c).unwrap();
        }
        w.finish().unwrap();
    }

    fn read_all(path: &Path) -> Result<Vec<SparseChunk>, CorpusError> {
        let mut r = ChunkCacheReader::open(path)?;
        let mut out = Vec::new();
        while let Some(Piece::Chunk(c)) = r.next_piece()? {
            out.push(c);
        }
        // And it stays at the end.
        assert!(r.next_piece()?.is_none());
        Ok(out)
    }

    #[test]
    fn round_trip_is_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        for chunks in [deerwester(2), deerwester(100), awkward(), Vec::new()] {
            let path = dir.path().join("c.cache");
            write(&path, &chunks);
            assert_eq!(
                entries(dir.path()),
                ["c.cache"],
                "no temporary file is left"
            );
            let back = read_all(&path).unwrap();
            assert_eq!(back.len(), chunks.len());
            for (a, b) in chunks.iter().zip(&back) {
                assert!(a.bit_eq(b), "{a:?} != {b:?}");
            }
        }
    }

    #[test]
    fn writes_to_tmp_until_finished_and_cleans_up_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        let mut w = ChunkCacheWriter::create(&path).unwrap();
        w.append(&deerwester(3)[0]).unwrap();
        let temporary = w.temporary_path().to_path_buf();
        assert_eq!(temporary.parent(), Some(dir.path()));
        assert!(temporary.exists());
        assert!(!path.exists());
        drop(w);
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

        // An existing cache is replaced only by finish.
        write(&path, &deerwester(3));
        let mut w = ChunkCacheWriter::create(&path).unwrap();
        w.append(&awkward()[0]).unwrap();
        assert_eq!(read_all(&path).unwrap(), deerwester(3));
        w.finish().unwrap();
        assert!(read_all(&path).unwrap()[0].bit_eq(&awkward()[0]));
    }

    /// The size formula of the module documentation, exact for chunks with entries.
    #[test]
    fn the_estimate_is_the_size_of_a_cache_of_chunks_with_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        for chunksize in [1, 2, 4, 100] {
            let chunks = deerwester(chunksize);
            write(&path, &chunks);
            let nnz: usize = chunks.iter().map(|c| c.nnz()).sum();
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                estimated_bytes(9, nnz as u64, chunksize as u64),
                "chunksize {chunksize}"
            );
        }
    }

    #[test]
    fn a_limited_writer_stops_before_the_limit_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        let chunks = deerwester(2);
        write(&path, &chunks);
        let whole = std::fs::metadata(&path).unwrap().len();
        std::fs::remove_file(&path).unwrap();

        // exactly the size: it fits, and the file is whole
        let mut w = ChunkCacheWriter::create(&path).unwrap().limited(whole);
        chunks.iter().for_each(|c| w.append(c).unwrap());
        w.finish().unwrap();
        assert_eq!(read_all(&path).unwrap(), chunks);
        std::fs::remove_file(&path).unwrap();

        // one byte less: the last chunk is refused, and nothing past the limit was written
        let mut w = ChunkCacheWriter::create(&path).unwrap().limited(whole - 1);
        let last = chunks.len() - 1;
        chunks[..last].iter().for_each(|c| w.append(c).unwrap());
        let e = w.append(&chunks[last]).unwrap_err();
        assert!(is_full(&e), "{e:?}");
        assert_eq!(e.failed_write, Some(io::ErrorKind::FileTooLarge));
        assert!(
            e.message
                .contains(&format!("would pass its limit of {} bytes", whole - 1)),
            "{e}"
        );
        let temporary = w.temporary_path().to_path_buf();
        assert!(w.bytes() + END_LEN < whole);
        drop(w);
        assert!(!temporary.exists() && !path.exists());
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

        // a limit below the first chunk refuses it
        let mut w = ChunkCacheWriter::create(&path).unwrap().limited(100);
        assert!(is_full(&w.append(&chunks[0]).unwrap_err()));
    }

    /// A full disk or quota is "does not fit"; a failing disk, a missing directory, a bad
    /// chunk are not.
    #[test]
    fn full_is_a_full_disk_quota_or_limit() {
        let at = Path::new("/c");
        let failed = |code| {
            CorpusError::write_failed(at, "cannot write", &io::Error::from_raw_os_error(code))
        };
        assert!(is_full(&failed(libc::ENOSPC)));
        assert!(is_full(&failed(libc::EDQUOT)));
        assert!(is_full(&failed(libc::EFBIG)));
        assert!(!is_full(&failed(libc::EIO)));
        assert!(!is_full(&failed(libc::ENOENT)));
        assert!(!is_full(&CorpusError::in_file(at, "refusing to cache")));
    }

    #[test]
    fn refuses_invalid_chunks_and_unwritable_places() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        let mut w = ChunkCacheWriter::create(&path).unwrap();
        let mut bad = deerwester(4)[0].clone();
        bad.terms.swap(0, 1);
        let e = w.append(&bad).unwrap_err();
        assert!(
            e.message.contains("refusing to cache invalid chunk 0"),
            "{e}"
        );
        assert_eq!(e.failed_write, None, "a defect, not a failed write");
        let e = ChunkCacheWriter::create(&dir.path().join("no/such/dir/c.cache"))
            .err()
            .unwrap();
        assert!(e.message.starts_with("cannot create"), "{e}");
        assert_eq!(e.failed_write, Some(io::ErrorKind::NotFound));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        let mut chunks = deerwester(4);
        chunks.extend(awkward());
        write(&path, &chunks);
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.cache");
        for len in 0..bytes.len() {
            std::fs::write(&cut, &bytes[..len]).unwrap();
            let e = read_all(&cut).expect_err(&format!("truncated to {len} bytes"));
            assert_eq!(e.file, cut);
            assert!(
                e.message.contains("truncated") || e.message.contains("corrupt"),
                "{len}: {e}"
            );
        }
        // Cut exactly between records: the missing end record gives it away.
        std::fs::write(&cut, &bytes[..bytes.len() - 36]).unwrap();
        let e = read_all(&cut).unwrap_err();
        assert!(
            e.message
                .contains("ends after 6 chunks without its end record"),
            "{e}"
        );
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        let mut chunks = deerwester(4);
        chunks.extend(awkward());
        write(&path, &chunks);
        let bytes = std::fs::read(&path).unwrap();
        let bad = dir.path().join("bad.cache");
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= mask;
                std::fs::write(&bad, &b).unwrap();
                assert!(
                    read_all(&bad).is_err(),
                    "byte {i} flipped with {mask:#x} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn runs_of_empty_chunks_round_trip_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        let chunk = |index: u64, first_doc: u64| SparseChunk {
            index,
            first_doc,
            indptr: vec![0, 1, 1],
            terms: vec![2],
            values: vec![0.5],
        };
        let pieces = vec![
            Piece::Chunk(chunk(0, 0)),
            Piece::Empty(EmptyRun {
                first: 1,
                chunks: 1_000_000_000,
                first_doc: 2,
                docs: 2_000_000_000,
            }),
            Piece::Chunk(chunk(1_000_000_001, 2_000_000_002)),
        ];
        let mut w = ChunkCacheWriter::create(&path).unwrap();
        pieces.iter().for_each(|p| w.append_piece(p).unwrap());
        w.finish().unwrap();
        let mut r = ChunkCacheReader::open(&path).unwrap();
        let mut back = vec![];
        while let Some(p) = r.next_piece().unwrap() {
            back.push(p);
        }
        assert_eq!(back, pieces);
        // a run that does not follow the chunks before it is corruption
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(4).position(|w| w == EMPTY_TAG).unwrap();
        bytes[at + 4] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let mut r = ChunkCacheReader::open(&path).unwrap();
        r.next_piece().unwrap();
        assert!(
            r.next_piece()
                .unwrap_err()
                .message
                .contains("corrupt chunk cache")
        );
    }

    #[test]
    fn header_problems() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        write(&path, &deerwester(4));
        let bytes = std::fs::read(&path).unwrap();

        let mut b = bytes.clone();
        b[..8].copy_from_slice(b"NOTMAGIC");
        std::fs::write(&path, &b).unwrap();
        let e = read_all(&path).unwrap_err();
        assert!(e.message.contains("not a topicd chunk cache"), "{e}");

        let mut b = bytes.clone();
        b[8..12].copy_from_slice(&3u32.to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        let e = read_all(&path).unwrap_err();
        assert!(
            e.message
                .contains("format version 3, but this topicd reads version 2"),
            "{e}"
        );

        let e = read_all(&dir.path().join("missing")).unwrap_err();
        assert!(e.message.starts_with("cannot open the chunk cache"), "{e}");
    }

    #[test]
    fn huge_declared_lengths_are_rejected_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        write(&path, &deerwester(4));
        let bytes = std::fs::read(&path).unwrap();
        // num_docs and nnz of the first record.
        for (offset, value) in [
            (16 + 4 + 16, u64::MAX),
            (16 + 4 + 24, u64::MAX),
            (16 + 4 + 24, 1 << 40),
        ] {
            let mut b = bytes.clone();
            b[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
            std::fs::write(&path, &b).unwrap();
            let e = read_all(&path).unwrap_err();
            assert!(e.message.contains("bytes left in the file"), "{e}");
            assert!(
                e.message.starts_with("corrupt chunk cache at byte 16: "),
                "{e}"
            );
        }
    }

    #[test]
    fn data_after_the_end_record_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.cache");
        write(&path, &deerwester(4));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"junk");
        std::fs::write(&path, &bytes).unwrap();
        let e = read_all(&path).unwrap_err();
        assert!(
            e.message
                .contains("4 unexpected bytes after the end record"),
            "{e}"
        );
    }

    #[test]
    fn lee_corpus_round_trip() {
        let Some(corpus) = shared("lee_tfidf.mm.gz") else {
            return;
        };
        let mut r = MmReader::open(&corpus, MmOptions::default()).unwrap();
        let mut chunks = Vec::new();
        while let Some(c) = r.next_chunk(32).unwrap() {
            chunks.push(c);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lee.cache");
        write(&path, &chunks);
        let back = read_all(&path).unwrap();
        assert_eq!(back.len(), 10);
        assert!(chunks.iter().zip(&back).all(|(a, b)| a.bit_eq(b)));
        assert_eq!(back.iter().map(|c| c.nnz()).sum::<usize>(), 19672);
    }
}
