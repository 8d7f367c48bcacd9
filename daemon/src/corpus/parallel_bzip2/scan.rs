//! Finding the blocks of bzip2 streams in the compressed bytes, and making each a stream of
//! its own.
//!
//! A bzip2 file is one or more streams, each starting on a byte boundary with `BZh` and a
//! level digit (`1`..`9`: blocks of at most 100k × level bytes). A stream's blocks follow at
//! any bit offset, each starting with the 48-bit magic `0x314159265359` and the block's CRC;
//! the stream ends with the 48-bit magic `0x177245385090`, the stream's combined CRC, and
//! padding to a byte. The [`Scanner`] reads the file once, front to back, finds the magics at
//! any bit offset, and cuts the bits between two of them into a [`Block`]: a standalone
//! one-block stream (`BZh` + level, the block's bits, the end magic, and the block's own CRC
//! as the combined CRC) that libbz2 decodes, checking the block's CRC, independently of every
//! other.
//!
//! A magic is 48 bits, so compressed data contains one by chance once in about 2^48 bits
//! (35 TB): rare, but not impossible, and handled. A false block magic cuts a block in two;
//! neither part decodes, and the reader joins them ([`Block::join`]). A false end magic is
//! taken for an end only if what follows it is an end: the end of the file or another
//! stream's header, or a stored combined CRC equal to the one of the stream's blocks.

use std::io::{self, Read};

/// The magic every block starts with (π).
const BLOCK_MAGIC: u64 = 0x3141_5926_5359;
/// The magic of the end of a stream (√π).
const END_MAGIC: u64 = 0x1772_4538_5090;
/// 48 bits.
const MAGIC_MASK: u64 = (1 << 48) - 1;
/// Bits of a magic and the CRC after it.
const MAGIC_AND_CRC: u64 = 48 + 32;
/// Bytes read from the file at a time.
const READ_SIZE: usize = 1 << 20;

/// A block of a stream (or, if a false magic cut a block, a piece of one), as a standalone
/// one-block stream.
#[derive(Debug)]
pub(super) struct Block {
    /// `BZh` + level, the block's bits, the end magic, the block's CRC, padding.
    pub stream: Vec<u8>,
    /// How many bits of the file the block is (they start at bit 32 of `stream`).
    pub bits: u64,
    /// The stream's level: blocks of at most 100k × level bytes.
    pub level: u8,
    /// The block's CRC as stored.
    pub crc: u32,
    /// The offset in the file of the byte the block starts in.
    pub offset: u64,
}

impl Block {
    /// A standalone stream of `bits` bits of `source` from bit `start` on (bits numbered from
    /// the most significant of byte 0), with `crc` as its combined CRC.
    pub fn new(source: &[u8], start: u64, bits: u64, level: u8, crc: u32, offset: u64) -> Block {
        let mut w = BitWriter::with_capacity(bits.div_ceil(8) as usize + 16);
        w.push_bytes(&[b'B', b'Z', b'h', b'0' + level]);
        w.push_bits_of(source, start, bits);
        w.push(END_MAGIC >> 24, 24);
        w.push(END_MAGIC & 0xff_ffff, 24);
        w.push(u64::from(crc), 32);
        Block {
            stream: w.finish(),
            bits,
            level,
            crc,
            offset,
        }
    }

    /// This block followed by `next`: what a block cut in two by a false magic was. The CRC
    /// stays this block's (the false magic's "CRC" is just data).
    pub fn join(&self, next: &Block) -> Block {
        let mut w = BitWriter::with_capacity((self.bits + next.bits).div_ceil(8) as usize + 16);
        w.push_bytes(&self.stream[..4]);
        w.push_bits_of(&self.stream, 32, self.bits);
        w.push_bits_of(&next.stream, 32, next.bits);
        w.push(END_MAGIC >> 24, 24);
        w.push(END_MAGIC & 0xff_ffff, 24);
        w.push(u64::from(self.crc), 32);
        Block {
            stream: w.finish(),
            bits: self.bits + next.bits,
            level: self.level,
            crc: self.crc,
            offset: self.offset,
        }
    }
}

/// The most bits a real block of a stream of `level` can take: every symbol of the
/// at most 100k × level + 2 coded in at most 20 bits, 6 coding tables of 258 lengths in at most
/// 41 bits each, 18002 selectors in at most 7 bits, and the headers. A piece that is still
/// not decodable when joined up to this size is corrupt, not cut by a false magic.
pub(super) fn max_block_bits(level: u8) -> u64 {
    20 * (u64::from(level) * 100_000 + 2) + 6 * 258 * 41 + 18_002 * 7 + 1_000
}

/// What the scanner found next.
#[derive(Debug)]
pub(super) enum Found {
    /// A block.
    Block(Block),
    /// The end of a stream, with its combined CRC as stored.
    End {
        /// The stored combined CRC of the stream's blocks.
        crc: u32,
        /// The offset in the file of the byte the end magic starts in.
        offset: u64,
    },
}

/// The combined CRC of a stream after a block of CRC `block`.
pub(super) fn combine(combined: u32, block: u32) -> u32 {
    combined.rotate_left(1) ^ block
}

enum State {
    /// Expecting a stream header at this byte, or the end of the file if `streams > 0`.
    Header(u64),
    /// Inside a stream of `level`.
    Stream {
        level: u8,
        /// Where the current block starts, once its magic has been found.
        block: Option<u64>,
        /// The bit the first magic must be at (just after the header).
        first: u64,
        /// Magics are looked for from this bit on.
        search: u64,
        /// The combined CRC of the blocks' stored CRCs so far.
        combined: u32,
    },
    /// A block has been handed out; the end follows.
    Ending { crc: u32, at: u64, next: u64 },
    /// The end of the file after a whole stream; or an error was reported.
    Done,
}

/// Reads a bzip2 file front to back and hands out its blocks and stream ends.
pub(super) struct Scanner<R> {
    input: R,
    /// The bytes from file offset `base` on.
    buf: Vec<u8>,
    base: u64,
    eof: bool,
    streams: u64,
    state: State,
}

impl<R: Read> Scanner<R> {
    /// A scanner of `input` from its first byte.
    pub fn new(input: R) -> Self {
        Scanner {
            input,
            buf: Vec::new(),
            base: 0,
            eof: false,
            streams: 0,
            state: State::Header(0),
        }
    }

    /// The next block or stream end; `None` after the last stream. Errors say what is wrong
    /// with the file and where (kind `InvalidData`, or the reading's own).
    pub fn next_found(&mut self) -> io::Result<Option<Found>> {
        let result = self.advance();
        if result.is_err() {
            self.state = State::Done;
        }
        result
    }

    fn advance(&mut self) -> io::Result<Option<Found>> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Header(at) => {
                    if !self.header(at)? {
                        self.state = State::Done;
                        return Ok(None);
                    }
                }
                State::Ending { crc, at, next } => {
                    self.state = State::Header(next);
                    return Ok(Some(Found::End {
                        crc,
                        offset: at / 8,
                    }));
                }
                State::Stream { .. } => {
                    if let Some(found) = self.in_stream()? {
                        return Ok(Some(found));
                    }
                }
            }
        }
    }

    /// Reads the header of a stream at byte `at`; `false` at the end of the file after a
    /// stream.
    fn header(&mut self, at: u64) -> io::Result<bool> {
        self.discard_before(at * 8);
        self.fill_to(at + 4)?;
        let head = self.bytes(at, at + 4);
        if head.is_empty() && self.streams > 0 {
            return Ok(false);
        }
        let level = match head {
            [b'B', b'Z', b'h', d @ b'1'..=b'9'] => d - b'0',
            _ if head.len() < 4 && b"BZh".starts_with(head) => {
                return Err(invalid(format!(
                    "the file ends inside a stream header at byte {at}: truncated"
                )));
            }
            _ if self.streams > 0 => {
                return Err(invalid(format!(
                    "the bytes after the end of the last stream (byte {at} on) are not bzip2 data"
                )));
            }
            _ => return Err(invalid(format!("no bzip2 stream header at byte {at}"))),
        };
        self.streams += 1;
        let first = (at + 4) * 8;
        self.state = State::Stream {
            level,
            block: None,
            first,
            search: first,
            combined: 0,
        };
        Ok(true)
    }

    /// Looks for the next magic of the stream: a block when one is complete, or nothing
    /// when the search went on (more of the file read, or a false end magic passed).
    fn in_stream(&mut self) -> io::Result<Option<Found>> {
        let State::Stream {
            level,
            block,
            first,
            search,
            combined,
        } = self.state
        else {
            unreachable!("in_stream is called inside a stream")
        };
        let (found, resume) = self.find_magic(search);
        let Some((at, is_end)) = found else {
            if !self.fill()? {
                let from = block.unwrap_or(first) / 8;
                return Err(invalid(format!(
                    "the file ends inside a stream (no end of stream after byte {from}): truncated"
                )));
            }
            self.set_search(resume);
            return Ok(None);
        };
        let Some(start) = block else {
            if at != first {
                return Err(invalid(format!(
                    "no block after the stream header at byte {}",
                    first / 8 - 4
                )));
            }
            if !is_end {
                self.state = State::Stream {
                    level,
                    block: Some(at),
                    first,
                    search: at + MAGIC_AND_CRC,
                    combined,
                };
                return Ok(None);
            }
            // an empty stream
            let (crc, next) = self.end_at(at)?;
            if crc != 0 {
                return Err(invalid(format!(
                    "the stream ending at byte {} has no block but a CRC of {crc:#010x}",
                    at / 8
                )));
            }
            self.state = State::Ending { crc, at, next };
            return Ok(None);
        };
        let crc = self.bits(start + 48, 32) as u32;
        if is_end {
            let (end_crc, next) = self.end_at(at)?;
            let follows = self.bytes(next, next + 4);
            let is_real = (follows.is_empty() && self.eof)
                || matches!(follows, [b'B', b'Z', b'h', b'1'..=b'9'])
                || (follows.len() < 4 && self.eof && b"BZh".starts_with(follows))
                || end_crc == combine(combined, crc);
            if !is_real {
                self.set_search(at + 1);
                return Ok(None);
            }
            let block = self.cut(start, at, level, crc);
            self.state = State::Ending {
                crc: end_crc,
                at,
                next,
            };
            return Ok(Some(Found::Block(block)));
        }
        let block = self.cut(start, at, level, crc);
        self.state = State::Stream {
            level,
            block: Some(at),
            first,
            search: at + MAGIC_AND_CRC,
            combined: combine(combined, crc),
        };
        self.discard_before(at);
        Ok(Some(Found::Block(block)))
    }

    /// The CRC stored after an end magic at bit `at`, and the byte the next stream would
    /// start at; reads on to see 4 bytes past it.
    fn end_at(&mut self, at: u64) -> io::Result<(u32, u64)> {
        let next = (at + MAGIC_AND_CRC).div_ceil(8);
        self.fill_to(next + 4)?;
        if self.end_bit() < at + MAGIC_AND_CRC {
            return Err(invalid(format!(
                "the file ends inside the end of a stream at byte {}: truncated",
                at / 8
            )));
        }
        Ok((self.bits(at + 48, 32) as u32, next))
    }

    fn set_search(&mut self, search: u64) {
        if let State::Stream { search: s, .. } = &mut self.state {
            *s = search;
        }
    }

    /// The block of bits `start..end`.
    fn cut(&self, start: u64, end: u64, level: u8, crc: u32) -> Block {
        let from = start / 8 - self.base;
        let bits = end - start;
        Block::new(
            &self.buf[from as usize..],
            start % 8,
            bits,
            level,
            crc,
            start / 8,
        )
    }

    /// The first magic at a bit from `from` on within the bytes read, whether it is an end
    /// magic, and the bit to search on from when there is none.
    fn find_magic(&self, from: u64) -> (Option<(u64, bool)>, u64) {
        let end = self.end_bit();
        if from + 48 > end {
            return (None, from);
        }
        let first = (from / 8 - self.base) as usize;
        let buf = &self.buf;
        for j in first..buf.len() {
            let w = match buf.get(j..j + 8) {
                Some(b) => u64::from_be_bytes(b.try_into().expect("8 bytes")),
                None => {
                    let mut b = [0u8; 8];
                    b[..buf.len() - j].copy_from_slice(&buf[j..]);
                    u64::from_be_bytes(b)
                }
            };
            for k in 0..8u64 {
                let at = (self.base + j as u64) * 8 + k;
                if at < from {
                    continue;
                }
                if at + 48 > end {
                    return (None, at);
                }
                let m = (w >> (16 - k)) & MAGIC_MASK;
                if m == BLOCK_MAGIC {
                    return (Some((at, false)), at);
                }
                if m == END_MAGIC {
                    return (Some((at, true)), at);
                }
            }
        }
        (None, end)
    }

    /// The bit after the last one read.
    fn end_bit(&self) -> u64 {
        (self.base + self.buf.len() as u64) * 8
    }

    /// `n` ≤ 32 bits from bit `at` on (which must have been read).
    fn bits(&self, at: u64, n: u32) -> u64 {
        let j = (at / 8 - self.base) as usize;
        let mut b = [0u8; 8];
        let have = (self.buf.len() - j).min(8);
        b[..have].copy_from_slice(&self.buf[j..j + have]);
        (u64::from_be_bytes(b) << (at % 8)) >> (64 - n)
    }

    /// The bytes `from..to` of the file, or as many of them as it has.
    fn bytes(&self, from: u64, to: u64) -> &[u8] {
        let len = self.buf.len() as u64;
        let a = (from - self.base).min(len) as usize;
        let b = (to - self.base).min(len) as usize;
        &self.buf[a..b]
    }

    /// Forgets the bytes before the one bit `bit` is in.
    fn discard_before(&mut self, bit: u64) {
        let byte = bit / 8;
        if byte > self.base {
            let n = ((byte - self.base) as usize).min(self.buf.len());
            self.buf.drain(..n);
            self.base += n as u64;
        }
    }

    /// Reads until the bytes before file offset `to` are in, or the file ends.
    fn fill_to(&mut self, to: u64) -> io::Result<()> {
        while self.base + (self.buf.len() as u64) < to && self.fill()? {}
        Ok(())
    }

    /// Reads more of the file; `false` at its end.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_SIZE, 0);
        let read = loop {
            match self.input.read(&mut self.buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(len);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(len + read);
        self.eof = read == 0;
        Ok(read > 0)
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Writes bits, most significant first, into bytes.
struct BitWriter {
    out: Vec<u8>,
    /// Bits not yet written, in the low `pending` bits.
    acc: u64,
    pending: u32,
}

impl BitWriter {
    fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            out: Vec::with_capacity(bytes),
            acc: 0,
            pending: 0,
        }
    }

    /// The low `n` ≤ 32 bits of `value`.
    fn push(&mut self, value: u64, n: u32) {
        self.acc = (self.acc << n) | (value & ((1 << n) - 1));
        self.pending += n;
        while self.pending >= 8 {
            self.pending -= 8;
            self.out.push((self.acc >> self.pending) as u8);
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        if self.pending == 0 {
            self.out.extend_from_slice(bytes);
        } else {
            bytes.iter().for_each(|&b| self.push(u64::from(b), 8));
        }
    }

    /// `n` bits of `source` from bit `start` on.
    fn push_bits_of(&mut self, source: &[u8], start: u64, n: u64) {
        let (first, shift) = ((start / 8) as usize, (start % 8) as u32);
        let whole = (n / 8) as usize;
        if shift == 0 {
            self.push_bytes(&source[first..first + whole]);
        } else {
            self.out.reserve(whole);
            for i in first..first + whole {
                let b = (u32::from(source[i]) << shift) | (u32::from(source[i + 1]) >> (8 - shift));
                self.push(u64::from(b & 0xff), 8);
            }
        }
        let rest = (n % 8) as u32;
        if rest > 0 {
            let at = start + whole as u64 * 8;
            let i = (at / 8) as usize;
            let hi = u32::from(source[i]) << 8 | u32::from(source.get(i + 1).copied().unwrap_or(0));
            let bits = (hi << (at % 8)) >> (16 - rest);
            self.push(u64::from(bits & ((1 << rest) - 1)), rest);
        }
    }

    /// The bytes, the last padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        if self.pending > 0 {
            let pad = 8 - self.pending;
            self.push(0, pad);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A stream of level 9 with one block of CRC `crc` whose data holds a false end magic
    /// (followed by its "CRC" `false_crc` and bytes that are no stream header), then the
    /// real end with `end_crc`.
    fn stream_with_false_end(false_crc: u32, end_crc: u32) -> (Vec<u8>, u64) {
        let mut w = BitWriter::with_capacity(64);
        w.push_bytes(b"BZh9");
        w.push(BLOCK_MAGIC >> 24, 24);
        w.push(BLOCK_MAGIC & 0xff_ffff, 24);
        w.push(0x1234_5678, 32);
        w.push(0b1_0110, 5); // data, so that the false end is not on a byte boundary
        w.push(END_MAGIC >> 24, 24);
        w.push(END_MAGIC & 0xff_ffff, 24);
        w.push(u64::from(false_crc), 32);
        w.push(0, 3);
        w.push_bytes(b"not a header, more block data");
        let block_bits = 80 + 5 + 48 + 32 + 3 + 29 * 8;
        w.push(END_MAGIC >> 24, 24);
        w.push(END_MAGIC & 0xff_ffff, 24);
        w.push(u64::from(end_crc), 32);
        (w.finish(), block_bits)
    }

    fn scan(bytes: Vec<u8>) -> io::Result<Vec<Found>> {
        let mut s = Scanner::new(Cursor::new(bytes));
        std::iter::from_fn(|| s.next_found().transpose()).collect()
    }

    #[test]
    fn a_false_end_magic_inside_a_block_is_data() {
        let (bytes, bits) = stream_with_false_end(0xdead_beef, 0x1234_5678);
        let found = scan(bytes).unwrap();
        let [Found::Block(block), Found::End { crc, .. }] = &found[..] else {
            panic!("{found:?}")
        };
        assert_eq!(
            (block.bits, block.crc, *crc),
            (bits, 0x1234_5678, 0x1234_5678)
        );
        // the block as a stream of its own holds the same bits
        let mut copy = BitWriter::with_capacity(64);
        copy.push_bits_of(&block.stream, 32, bits);
        let mut original = BitWriter::with_capacity(64);
        let (bytes, _) = stream_with_false_end(0xdead_beef, 0x1234_5678);
        original.push_bits_of(&bytes, 32, bits);
        assert_eq!(copy.finish(), original.finish());
    }

    #[test]
    fn an_end_magic_with_the_stream_crc_is_the_end_whatever_follows() {
        // the "false" end carries the right CRC: it is taken as the end, and what follows
        // it is not a stream
        let (bytes, _) = stream_with_false_end(0x1234_5678, 0x1234_5678);
        let e = scan(bytes).unwrap_err();
        assert!(e.to_string().contains("are not bzip2 data"), "{e}");
    }

    #[test]
    fn bit_copies_at_every_offset() {
        let source: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let bit = |i: u64| (source[(i / 8) as usize] >> (7 - i % 8)) & 1;
        for start in 0..16 {
            for n in [0, 1, 7, 8, 9, 63, 200] {
                let mut w = BitWriter::with_capacity(64);
                w.push(0b101, 3);
                w.push_bits_of(&source, start, n);
                let out = w.finish();
                let got = |i: u64| (out[(i / 8) as usize] >> (7 - i % 8)) & 1;
                for i in 0..n {
                    assert_eq!(got(3 + i), bit(start + i), "start {start}, n {n}, bit {i}");
                }
            }
        }
    }

    #[test]
    fn the_largest_block_bound_exceeds_what_bzip2_writes() {
        // incompressible bytes: the largest blocks bzip2 writes, at levels 1 and 9
        let mut x = 88172645463325252u64;
        let data: Vec<u8> = (0..1_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for level in [1, 9] {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(level));
            std::io::Write::write_all(&mut e, &data).unwrap();
            let found = scan(e.finish().unwrap()).unwrap();
            for f in &found {
                if let Found::Block(b) = f {
                    assert!(b.bits < max_block_bits(level as u8), "{} bits", b.bits);
                }
            }
        }
    }
}
