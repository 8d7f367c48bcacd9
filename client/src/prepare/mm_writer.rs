//! gensim's `MmCorpus.serialize(fname, corpus)` output, byte for byte (`matutils.MmWriter`).
//!
//! - line 1: `%%MatrixMarket matrix coordinate real general`;
//! - line 2: `num_docs num_terms num_nnz`, padded with spaces to 50 characters (gensim writes
//!   50 spaces first and overwrites them at the end); `num_terms` is 1 + the largest term id
//!   written (what `serialize` does without `id2word`), 0 for an empty corpus;
//! - then one `doc term value` line per non-zero entry, 1-based, terms in increasing order;
//!   a document without terms has no line but still counts;
//! - values as Python's `"%s" % value`: counts as integers, weights as `repr(float)`
//!   (shortest round-trip digits; `1e-05` and `1e+16` outside [1e-4, 1e16)).
//!
//! gensim also writes `fname.index` (a pickle of line offsets); it is not written here.
//!
//! A compressed file (gzip or bzip2, [`MmWriter::create_compressed`]) cannot have its size
//! line written last: its sizes are given when it is created and checked when it is
//! finished (what `topicctl generate` knows beforehand). It is a series of independent
//! members of a few MB (see [`super::compression`]): [`Block`]s of consecutive documents,
//! formatted and compressed on any thread, then appended in order by
//! [`MmWriter::write_block`]; or documents given one by one, gathered into members here.

use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use topicd::atomic_file::AtomicFile;

use super::compression::{Compression, compress_member};
use super::mm_text::{MmValue, format_document};

/// The first line of every file.
pub const HEADER: &str = "%%MatrixMarket matrix coordinate real general\n";
/// Width of the (space-padded) size line, without its newline.
const STATS_WIDTH: usize = 50;
/// Text gathered into one member by [`MmWriter::write_document`] on a compressed file.
const MEMBER_BYTES: usize = 4 << 20;

/// A Matrix Market file being written; it appears complete on [`MmWriter::finish`].
pub struct MmWriter {
    sink: Sink,
    num_docs: u64,
    num_terms: u64,
    num_nnz: u64,
}

/// Where the lines go.
enum Sink {
    /// A plain file: the size line is written last, over its padding.
    Plain(AtomicFile),
    /// A compressed file whose size line (documents, terms, entries) was written first,
    /// and the text of documents not yet compressed.
    Compressed {
        file: AtomicFile,
        compression: Compression,
        announced: [u64; 3],
        pending: Vec<u8>,
    },
}

/// The lines of consecutive documents, made on any thread and appended to an [`MmWriter`]
/// by [`MmWriter::write_block`]: compressed as one member ([`Block::compress`]) for a
/// compressed file. Its buffers keep their capacity across [`Block::clear`].
#[derive(Debug, Default)]
pub struct Block {
    text: Vec<u8>,
    packed: Vec<u8>,
    compression: Option<Compression>,
    docs: u64,
    entries: u64,
    max_id: Option<u32>,
}

impl Block {
    /// Empty the block, keeping its buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.packed.clear();
        self.compression = None;
        (self.docs, self.entries, self.max_id) = (0, 0, None);
    }

    /// Make room for `text` bytes of text and half as many compressed, at once: a buffer
    /// that grows in steps leaves the smaller ones behind in the allocator. (Room not
    /// written to is not resident.)
    pub fn reserve(&mut self, text: usize) {
        self.text.reserve(text.saturating_sub(self.text.len()));
        self.packed
            .reserve((text / 2).saturating_sub(self.packed.len()));
    }

    /// Append document `docno` (0-based; the block's documents must follow each other and
    /// those already written), its entries sorted by id.
    pub fn push<V: MmValue>(&mut self, docno: u64, entries: &[(u32, V)]) {
        debug_assert!(self.compression.is_none(), "a document after compressing");
        format_document(&mut self.text, docno, entries);
        self.docs += 1;
        self.entries += entries.len() as u64;
        if let Some(&(id, _)) = entries.last() {
            self.max_id = self.max_id.max(Some(id));
        }
    }

    /// Bytes of text (before compression).
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Entries in the block.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Compress the text as one member, for a file compressed by `compression`.
    pub fn compress(&mut self, compression: Compression) {
        self.packed.clear();
        compress_member(compression, &self.text, &mut self.packed);
        self.compression = Some(compression);
    }
}

fn size_line(num_docs: u64, num_terms: u64, num_nnz: u64) -> io::Result<String> {
    let stats = format!("{num_docs} {num_terms} {num_nnz}");
    if stats.len() > STATS_WIDTH {
        return Err(io::Error::other(
            "matrix too large for the Matrix Market size line",
        ));
    }
    Ok(stats)
}

impl MmWriter {
    /// Start writing `path` (atomically).
    pub fn create(path: &Path) -> io::Result<MmWriter> {
        let mut file = AtomicFile::create(path)?;
        file.write_all(HEADER.as_bytes())?;
        file.write_all(format!("{:STATS_WIDTH$}\n", "").as_bytes())?;
        Ok(MmWriter {
            sink: Sink::Plain(file),
            num_docs: 0,
            num_terms: 0,
            num_nnz: 0,
        })
    }

    /// Start writing `path` compressed, with its sizes known beforehand: `num_docs`
    /// documents, `num_terms` (1 + the largest term id) and `num_nnz` entries;
    /// [`MmWriter::finish`] fails if what was written differs. The header and size line
    /// are the file's first member.
    pub fn create_compressed(
        path: &Path,
        compression: Compression,
        [num_docs, num_terms, num_nnz]: [u64; 3],
    ) -> io::Result<MmWriter> {
        let mut file = AtomicFile::create(path)?;
        let stats = size_line(num_docs, num_terms, num_nnz)?;
        let mut member = Vec::new();
        compress_member(
            compression,
            format!("{HEADER}{stats:STATS_WIDTH$}\n").as_bytes(),
            &mut member,
        );
        file.write_all(&member)?;
        Ok(MmWriter {
            sink: Sink::Compressed {
                file,
                compression,
                announced: [num_docs, num_terms, num_nnz],
                pending: Vec::new(),
            },
            num_docs: 0,
            num_terms: 0,
            num_nnz: 0,
        })
    }

    /// Append the next document, already formatted by [`format_document`], with its number
    /// of entries and largest term id (`None` when it has none).
    pub fn write_document(
        &mut self,
        lines: &[u8],
        entries: u64,
        max_id: Option<u32>,
    ) -> io::Result<()> {
        match &mut self.sink {
            Sink::Plain(file) => file.write_all(lines)?,
            Sink::Compressed { pending, .. } => {
                pending.extend_from_slice(lines);
                if pending.len() >= MEMBER_BYTES {
                    self.flush_pending()?;
                }
            }
        }
        self.count(1, entries, max_id);
        Ok(())
    }

    /// Append `block`, whose documents are the next ones. A compressed file takes only
    /// blocks compressed ([`Block::compress`]) by its format, a plain file only blocks
    /// not compressed.
    pub fn write_block(&mut self, block: &Block) -> io::Result<()> {
        let compression = match &self.sink {
            Sink::Plain(_) => None,
            Sink::Compressed { compression, .. } => Some(*compression),
        };
        if block.compression != compression {
            return Err(io::Error::other(format!(
                "a block compressed as {:?} for a file compressed as {compression:?}",
                block.compression
            )));
        }
        self.flush_pending()?;
        match &mut self.sink {
            Sink::Plain(file) => file.write_all(&block.text)?,
            Sink::Compressed { file, .. } => file.write_all(&block.packed)?,
        }
        self.count(block.docs, block.entries, block.max_id);
        Ok(())
    }

    fn count(&mut self, docs: u64, entries: u64, max_id: Option<u32>) {
        self.num_docs += docs;
        self.num_nnz += entries;
        if let Some(max_id) = max_id {
            self.num_terms = self.num_terms.max(u64::from(max_id) + 1);
        }
    }

    /// Compress the documents given one by one and not yet written, as one member.
    fn flush_pending(&mut self) -> io::Result<()> {
        if let Sink::Compressed {
            file,
            compression,
            pending,
            ..
        } = &mut self.sink
            && !pending.is_empty()
        {
            let mut member = Vec::new();
            compress_member(*compression, pending, &mut member);
            file.write_all(&member)?;
            pending.clear();
        }
        Ok(())
    }

    /// Documents written so far: the 0-based number of the next one.
    pub fn num_docs(&self) -> u64 {
        self.num_docs
    }

    /// Write the size line and make the file appear.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush_pending()?;
        let written = [self.num_docs, self.num_terms, self.num_nnz];
        match self.sink {
            Sink::Plain(mut file) => {
                let stats = size_line(self.num_docs, self.num_terms, self.num_nnz)?;
                file.flush()?;
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(file.temporary_path())?
                    .write_all_at(stats.as_bytes(), HEADER.len() as u64)?;
                Ok(file.finish()?)
            }
            Sink::Compressed {
                file, announced, ..
            } => {
                if written != announced {
                    return Err(io::Error::other(format!(
                        "wrote {written:?} (documents, terms, entries) after announcing {announced:?}"
                    )));
                }
                Ok(file.finish()?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn documents_and_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.mm");
        let mut mm = MmWriter::create(&path).unwrap();
        let mut text = Vec::new();
        format_document(&mut text, 0, &[(0u32, 2u32), (4, 1)]);
        mm.write_document(&text, 2, Some(4)).unwrap();
        mm.write_document(b"", 0, None).unwrap();
        text.clear();
        format_document(&mut text, 2, &[(1u32, 0.5f64)]);
        mm.write_document(&text, 1, Some(1)).unwrap();
        assert!(!path.exists());
        mm.finish().unwrap();
        let expected = format!(
            "{HEADER}3 5 3{}\n1 1 2\n1 5 1\n3 2 0.5\n",
            " ".repeat(50 - 5)
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    }

    #[test]
    fn an_empty_corpus() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.mm");
        MmWriter::create(&path).unwrap().finish().unwrap();
        let expected = format!("{HEADER}0 0 0{}\n", " ".repeat(45));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    }

    /// Documents 0..300 of 5 entries each, in blocks of 64 (and document by document).
    fn write(mm: &mut MmWriter, compression: Option<Compression>, by_block: bool) {
        let doc = |d: u32| -> Vec<(u32, f64)> {
            (0..5)
                .map(|j| (d % 97 + j * 11, 1.0 / f64::from(d + j + 1)))
                .collect()
        };
        let mut block = Block::default();
        for d in 0..300u32 {
            if by_block {
                block.push(u64::from(d), &doc(d));
                if block.docs == 64 || d == 299 {
                    if let Some(c) = compression {
                        block.compress(c);
                    }
                    mm.write_block(&block).unwrap();
                    block.clear();
                }
            } else {
                let mut text = Vec::new();
                format_document(&mut text, u64::from(d), &doc(d));
                mm.write_document(&text, 5, Some(doc(d)[4].0)).unwrap();
            }
        }
    }

    #[test]
    fn blocks_and_compressed_files_hold_the_plain_text() {
        let dir = tempfile::tempdir().unwrap();
        let plain_path = dir.path().join("p.mm");
        let mut plain = MmWriter::create(&plain_path).unwrap();
        write(&mut plain, None, false);
        plain.finish().unwrap();
        let plain = std::fs::read(&plain_path).unwrap();
        let by_blocks = dir.path().join("b.mm");
        let mut mm = MmWriter::create(&by_blocks).unwrap();
        write(&mut mm, None, true);
        mm.finish().unwrap();
        assert!(std::fs::read(&by_blocks).unwrap() == plain);

        for compression in [Compression::Gz, Compression::Bz2] {
            for by_block in [false, true] {
                let path = dir
                    .path()
                    .join(format!("{by_block}.{}", compression.extension()));
                let sizes = [300, 97 + 44, 1500];
                let mut mm = MmWriter::create_compressed(&path, compression, sizes).unwrap();
                write(&mut mm, Some(compression), by_block);
                mm.finish().unwrap();
                let file = std::fs::File::open(&path).unwrap();
                let mut read = Vec::new();
                match compression {
                    Compression::Gz => {
                        flate2::read::MultiGzDecoder::new(file).read_to_end(&mut read)
                    }
                    Compression::Bz2 => {
                        bzip2::read::MultiBzDecoder::new(file).read_to_end(&mut read)
                    }
                }
                .unwrap();
                assert!(read == plain, "{compression:?} by block {by_block}");
            }
        }
    }

    #[test]
    fn a_block_of_another_format_or_wrong_sizes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.mm.gz");
        let mut mm = MmWriter::create_compressed(&path, Compression::Gz, [1, 1, 1]).unwrap();
        let mut block = Block::default();
        block.push(0, &[(0u32, 1u32)]);
        let error = mm.write_block(&block).unwrap_err().to_string();
        assert!(error.contains("compressed as None"), "{error}");
        block.compress(Compression::Bz2);
        assert!(mm.write_block(&block).is_err());
        let mut plain = MmWriter::create(&dir.path().join("p.mm")).unwrap();
        assert!(plain.write_block(&block).is_err());
        block.compress(Compression::Gz);
        mm.write_block(&block).unwrap();
        mm.write_block(&block).unwrap();
        let error = mm.finish().unwrap_err().to_string();
        assert!(error.contains("wrote [2, 1, 2]"), "{error}");
        assert!(!path.exists());
    }
}
