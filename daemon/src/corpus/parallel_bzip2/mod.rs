//! bzip2 decompressed on several threads, block by block, the bytes handed out in order.
//!
//! A bzip2 block is up to 900 kB of text coded on its own: `scan` finds the blocks in the
//! compressed bytes (at any bit offset) and makes each a standalone one-block stream; a few
//! decoding threads decode those with libbz2 (the `bzip2` crate's [`bzip2::Decompress`], the
//! same decoder as the serial path), which checks every block's CRC; [`ParallelBzip2Reader`]
//! hands the blocks' bytes out in order and checks every stream's combined CRC. Single and
//! multi-stream files (pbzip2's, concatenated streams, streams of different levels) are read
//! alike. A corrupt or truncated file is an `InvalidData` error saying what and where, after
//! the bytes of the blocks before the damage: never a panic, never shorter output.
//!
//! **Why by hand, over libbz2.** The parallel decoder of the pure-Rust `bzip2-rs` crate is not
//! in any release (0.1.2, the latest, has no `rayon` feature), and its single-core decoder is
//! its own; this way each block is decoded by the decoder the daemon already uses and trusts,
//! and the part written here is only the splitting (a bit search and a bit copy: on 2 threads
//! the whole decoding takes no more CPU time than libbz2's serial decoder). Measured on a
//! 2-core machine: docs/scaling.md, "Reading compressed input".
//!
//! **False magics.** A block magic inside compressed data (once in about 2^48 bits) cuts a
//! block in two; neither part decodes (the first lacks its end, the second has no real
//! header), so a block that fails is joined with the ones after it and decoded again, up to
//! the largest size a real block can take (`scan::max_block_bits`); if it still fails, the
//! first failure is the error. A false end magic is recognised in `scan`.
//!
//! **Threads.** The decoding runs on threads of its own (`threads` of them, by default as
//! many as the machine has cores, at most [`MAX_THREADS`]) plus one that reads and splits the
//! file, all started when the file is opened and ended when the reader is dropped. They are
//! not rayon's: training runs on rayon's global pool and waits for chunks that the reading
//! makes; decoding tasks queued behind training tasks in the same pool would delay the very
//! chunks training waits for, and a pool thread blocked waiting for a block would hold a
//! thread training needs. Own threads share the cores with training through the OS
//! scheduler, and idle when the reading is ahead: at most [`BLOCKS_PER_THREAD`] blocks per
//! thread are decoded ahead of the one being read (a few MB per thread at level 9), and the
//! pass reader parses at most a few chunks ahead of training.

mod scan;
#[cfg(test)]
pub(crate) mod tests;

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bzip2::{Decompress, Status};

use scan::{Block, Found, Scanner, combine, max_block_bits};

/// The most decoding threads a reader starts.
pub const MAX_THREADS: usize = 16;
/// Blocks decoded ahead, per decoding thread.
pub const BLOCKS_PER_THREAD: usize = 2;

/// A block and what decoding it gave.
struct Decoded {
    block: Block,
    bytes: Result<Vec<u8>, String>,
}

/// What the reading thread hands the reader, in the order of the file.
enum Slot {
    /// A block being decoded; its result comes on this channel.
    Block(Receiver<Decoded>),
    /// The end of a stream, with its stored combined CRC.
    End { crc: u32, offset: u64 },
    /// The file cannot be read further.
    Failed(io::Error),
    /// The end of the file, after whole streams.
    Finished,
}

/// A block waiting for a decoding thread, and where its result goes.
type Job = (Block, SyncSender<Decoded>);

/// The bytes of a bzip2 file (one or more streams), decoded on several threads.
pub struct ParallelBzip2Reader {
    slots: Receiver<Slot>,
    /// A slot taken while joining blocks that was not a block.
    held: Option<Slot>,
    current: Vec<u8>,
    position: usize,
    /// The combined CRC of the stream's blocks decoded so far.
    combined: u32,
    /// Once the file has ended or failed: `Ok` at its end, the error (told again) otherwise.
    ended: Option<Result<(), (io::ErrorKind, String)>>,
    threads: Vec<JoinHandle<()>>,
}

impl ParallelBzip2Reader {
    /// Starts reading `input` (a bzip2 file from its first byte) with `threads` decoding
    /// threads (at least 1, at most [`MAX_THREADS`]).
    pub fn new<R: Read + Send + 'static>(input: R, threads: usize) -> io::Result<Self> {
        let mut scanner = Scanner::new(input);
        Self::start(move || scanner.next_found(), threads)
    }

    /// Starts reading the blocks and stream ends that `next` hands out, in order.
    fn start(
        next: impl FnMut() -> io::Result<Option<Found>> + Send + 'static,
        threads: usize,
    ) -> io::Result<Self> {
        let threads = threads.clamp(1, MAX_THREADS);
        let (slot_tx, slots) = sync_channel(threads * BLOCKS_PER_THREAD);
        let (job_tx, jobs) = channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let mut handles = Vec::with_capacity(threads + 1);
        for i in 0..threads {
            let jobs = Arc::clone(&jobs);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("topicd-bunzip-{i}"))
                    .spawn(move || decode_jobs(&jobs))?,
            );
        }
        handles.push(
            std::thread::Builder::new()
                .name("topicd-bzscan".into())
                .spawn(move || scan_file(next, &job_tx, &slot_tx))?,
        );
        Ok(ParallelBzip2Reader {
            slots,
            held: None,
            current: Vec::new(),
            position: 0,
            combined: 0,
            ended: None,
            threads: handles,
        })
    }

    /// The next slot in the order of the file.
    fn next_slot(&mut self) -> Slot {
        if let Some(slot) = self.held.take() {
            return slot;
        }
        self.slots.recv().unwrap_or_else(|_| {
            Slot::Failed(io::Error::other(
                "the thread reading the file stopped unexpectedly",
            ))
        })
    }

    /// Moves to the next block with bytes; `false` at the end of the file.
    fn advance(&mut self) -> io::Result<bool> {
        loop {
            match self.next_slot() {
                Slot::Block(result) => {
                    let decoded = receive(&result)?;
                    let (block, bytes) = match decoded.bytes {
                        Ok(bytes) => (decoded.block, bytes),
                        Err(e) => self.join(decoded.block, e)?,
                    };
                    self.combined = combine(self.combined, block.crc);
                    if !bytes.is_empty() {
                        self.current = bytes;
                        self.position = 0;
                        return Ok(true);
                    }
                }
                Slot::End { crc, offset } => {
                    let combined = std::mem::take(&mut self.combined);
                    if crc != combined {
                        return Err(invalid(format!(
                            "the stream ending at byte {offset} has a CRC of {crc:#010x}, but its \
                             blocks make {combined:#010x}"
                        )));
                    }
                }
                Slot::Failed(e) => return Err(e),
                Slot::Finished => return Ok(false),
            }
        }
    }

    /// A block that did not decode, joined with the blocks after it until it decodes (it was
    /// cut by a false magic), or the error it gave.
    fn join(&mut self, mut block: Block, error: String) -> io::Result<(Block, Vec<u8>)> {
        let failed = invalid(format!(
            "the block at byte {} does not decode ({error})",
            block.offset
        ));
        let max_bits = max_block_bits(block.level);
        loop {
            let next = match self.next_slot() {
                Slot::Block(result) => receive(&result)?.block,
                other => {
                    self.held = Some(other);
                    return Err(failed);
                }
            };
            if block.bits + next.bits > max_bits {
                return Err(failed);
            }
            block = block.join(&next);
            if let Ok(bytes) = decode(&block) {
                return Ok((block, bytes));
            }
        }
    }

    fn end(&mut self, result: io::Result<bool>) -> io::Result<bool> {
        match result {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.ended = Some(Ok(()));
                Ok(false)
            }
            Err(e) => {
                self.ended = Some(Err((e.kind(), e.to_string())));
                Err(e)
            }
        }
    }
}

/// The result of a block's decoding.
fn receive(result: &Receiver<Decoded>) -> io::Result<Decoded> {
    result
        .recv()
        .map_err(|_| io::Error::other("a decoding thread stopped unexpectedly"))
}

impl Read for ParallelBzip2Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ParallelBzip2Reader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.position == self.current.len() {
            match &self.ended {
                Some(Ok(())) => return Ok(&[]),
                Some(Err((kind, message))) => return Err(io::Error::new(*kind, message.clone())),
                None => {
                    let result = self.advance();
                    if !self.end(result)? {
                        return Ok(&[]);
                    }
                }
            }
        }
        Ok(&self.current[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.current.len());
    }
}

impl Drop for ParallelBzip2Reader {
    fn drop(&mut self) {
        // Without the receiver, the reading thread's next send fails, which ends it; its end
        // closes the job queue, which ends the decoding threads.
        let (_, closed) = sync_channel(0);
        drop(std::mem::replace(&mut self.slots, closed));
        self.held = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The reading thread: splits the file into blocks, queues them for decoding and hands out
/// the slots in order, until the file ends, fails, or the reader is dropped.
fn scan_file(
    mut next: impl FnMut() -> io::Result<Option<Found>>,
    jobs: &Sender<Job>,
    slots: &SyncSender<Slot>,
) {
    loop {
        let slot = match next() {
            Ok(Some(Found::Block(block))) => {
                let (tx, rx) = sync_channel(1);
                if jobs.send((block, tx)).is_err() {
                    let _ = slots.send(Slot::Failed(io::Error::other(
                        "the decoding threads stopped unexpectedly",
                    )));
                    return;
                }
                Slot::Block(rx)
            }
            Ok(Some(Found::End { crc, offset })) => Slot::End { crc, offset },
            Ok(None) => {
                let _ = slots.send(Slot::Finished);
                return;
            }
            Err(e) => {
                let _ = slots.send(Slot::Failed(e));
                return;
            }
        };
        if slots.send(slot).is_err() {
            return; // the reader was dropped
        }
    }
}

/// A decoding thread: decodes queued blocks until the queue closes.
fn decode_jobs(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = match jobs.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok((block, result)) = job else { return };
        let bytes = decode(&block);
        // the reader may be gone: nothing to do then
        let _ = result.send(Decoded { block, bytes });
    }
}

/// Decodes a block's standalone stream; libbz2 checks its CRC.
fn decode(block: &Block) -> Result<Vec<u8>, String> {
    let input = &block.stream;
    let mut decoder = Decompress::new(false);
    let mut out = Vec::with_capacity(usize::from(block.level) * 100_000);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(1 << 16));
        }
        let (before_in, before_out) = (decoder.total_in(), decoder.total_out());
        let rest = &input[(before_in as usize).min(input.len())..];
        match decoder.decompress_vec(rest, &mut out) {
            Ok(Status::StreamEnd) => return Ok(out),
            Ok(_) if decoder.total_in() == before_in && decoder.total_out() == before_out => {
                return Err("the block ends early".into());
            }
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
