//! The decoding half of the layouts: a reader over an item's bytes as they arrived, one
//! buffer or the pages of an upload, so that a large array is copied once, from the pages
//! into its own memory, and never gathered into one buffer first. Every length is checked
//! against the bytes left before anything is allocated.

use std::borrow::Cow;

use bytes::Bytes;
use nalgebra::DMatrix;
use rayon::prelude::*;
use topicd_numerics::lsi::products::TermSums;
use topicd_numerics::lsi::{ChunkSpan, Grids, PassSum};
use topicd_numerics::{SparseChunk, grid};

use super::{Le, MAX_VALUES};

/// Most bytes copied as one run.
const RUN: usize = 1 << 20;

/// Copies of at least this many bytes are made on several threads: into fresh memory, most
/// of a large copy's time is the kernel providing zeroed pages, which threads do side by side
/// (the sketch's partial sum of gcide, 126 MB, took 0.47 s to decode on one).
const PARALLEL_COPY: usize = 8 << 20;

/// The memory a copy writes to, shared by the threads that write its disjoint runs.
struct Destination(*mut u8);

// SAFETY: each thread writes only its own runs of the destination.
unsafe impl Sync for Destination {}

impl Destination {
    fn at(&self, offset: usize) -> *mut u8 {
        // SAFETY: callers pass offsets within the destination.
        unsafe { self.0.add(offset) }
    }
}

/// Reads values in order from the concatenation of pieces.
pub(super) struct Reader<'a> {
    /// What is left of the current piece.
    current: &'a [u8],
    /// The pieces after it.
    rest: &'a [Bytes],
    /// Bytes left in all.
    left: usize,
}

impl<'a> Reader<'a> {
    /// A reader of one buffer.
    pub(super) fn of(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            current: bytes,
            rest: &[],
            left: bytes.len(),
        }
    }

    /// A reader of the concatenation of `pieces`.
    pub(super) fn of_pieces(pieces: &'a [Bytes]) -> Reader<'a> {
        Reader {
            current: &[],
            rest: pieces,
            left: pieces.iter().map(Bytes::len).sum(),
        }
    }

    /// The next piece with bytes in it, once the current one is read.
    fn refill(&mut self) {
        while self.current.is_empty()
            && let Some((next, rest)) = self.rest.split_first()
        {
            self.current = next;
            self.rest = rest;
        }
    }

    /// The next `n` bytes: borrowed where they lie in one piece.
    fn take(&mut self, n: usize) -> Result<Cow<'a, [u8]>, String> {
        if self.left < n {
            return Err("truncated".into());
        }
        self.refill();
        if self.current.len() >= n {
            let (head, rest) = self.current.split_at(n);
            self.current = rest;
            self.left -= n;
            return Ok(Cow::Borrowed(head));
        }
        let mut out = vec![0; n];
        self.copy_to(out.as_mut_ptr(), n);
        Ok(Cow::Owned(out))
    }

    /// Copy the next `n` bytes (`n ≤ self.left`) to `dst`, in runs of at most [`RUN`]
    /// bytes within a piece; a large copy's runs are made on several threads.
    fn copy_to(&mut self, dst: *mut u8, n: usize) {
        assert!(n <= self.left, "a copy beyond the bytes left");
        let mut runs: Vec<(&[u8], usize)> = Vec::with_capacity(n.div_ceil(RUN) + self.rest.len());
        let mut cut = 0;
        while cut < n {
            self.refill();
            let k = self.current.len().min(n - cut).min(RUN);
            let (run, rest) = self.current.split_at(k);
            runs.push((run, cut));
            self.current = rest;
            cut += k;
        }
        self.left -= n;
        let dst = Destination(dst);
        let copy = |&(run, at): &(&[u8], usize)| {
            // SAFETY: the callers give `dst` room for `n` bytes; the runs are disjoint
            // ranges of it, read from pieces that do not overlap memory the caller owns.
            unsafe { std::ptr::copy_nonoverlapping(run.as_ptr(), dst.at(at), run.len()) }
        };
        if n >= PARALLEL_COPY {
            runs.par_iter().for_each(copy);
        } else {
            runs.iter().for_each(copy);
        }
    }

    /// `n` values from their little-endian bytes, copied straight into their own memory.
    pub(super) fn le_values<T: Le>(&mut self, n: usize) -> Result<Vec<T>, String> {
        let mut values = Vec::new();
        self.le_values_into(n, &mut values)?;
        Ok(values)
    }

    /// [`Reader::le_values`] into `values`, whose memory serves again where it is large
    /// enough (memory in use stays resident; fresh memory costs a fault per page).
    fn le_values_into<T: Le>(&mut self, n: usize, values: &mut Vec<T>) -> Result<(), String> {
        let bytes = n
            .checked_mul(size_of::<T>())
            .filter(|&b| b <= self.left)
            .ok_or("truncated")?;
        values.clear();
        values.reserve_exact(n);
        self.copy_to(values.as_mut_ptr().cast::<u8>(), bytes);
        // SAFETY: the copy filled the `n` values, and any bits are a value of a `Pod` type.
        unsafe { values.set_len(n) };
        if cfg!(not(target_endian = "little")) {
            values.iter_mut().for_each(|v| *v = v.swap_le());
        }
        Ok(())
    }

    pub(super) fn end(&self) -> Result<(), String> {
        match self.left {
            0 => Ok(()),
            n => Err(format!("{n} bytes after the end")),
        }
    }

    pub(super) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.as_ref().try_into().expect("4 bytes"),
        ))
    }

    pub(super) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.as_ref().try_into().expect("8 bytes"),
        ))
    }

    pub(super) fn usize(&mut self) -> Result<usize, String> {
        usize::try_from(self.u64()?).map_err(|e| e.to_string())
    }

    pub(super) fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(
            self.take(8)?.as_ref().try_into().expect("8 bytes"),
        ))
    }

    /// A count of `width`-byte values, checked against the bytes left before allocating.
    fn count(&mut self, width: usize) -> Result<usize, String> {
        let n = self.u64()?;
        if n > MAX_VALUES || n as usize * width > self.left {
            return Err(format!("a count of {n} values beyond the bytes at hand"));
        }
        Ok(n as usize)
    }

    /// A count of values and the values.
    fn values<T: Le>(&mut self) -> Result<Vec<T>, String> {
        let mut values = Vec::new();
        self.values_into(&mut values)?;
        Ok(values)
    }

    /// [`Reader::values`] into `values`' memory.
    fn values_into<T: Le>(&mut self, values: &mut Vec<T>) -> Result<(), String> {
        let n = self.count(size_of::<T>())?;
        self.le_values_into(n, values)
    }

    pub(super) fn u32s(&mut self) -> Result<Vec<u32>, String> {
        self.values()
    }

    pub(super) fn u64s(&mut self) -> Result<Vec<u64>, String> {
        self.values()
    }

    pub(super) fn f64s(&mut self) -> Result<Vec<f64>, String> {
        self.values()
    }

    /// [`Reader::f64s`] into `values`' memory.
    pub(super) fn f64s_into(&mut self, values: &mut Vec<f64>) -> Result<(), String> {
        self.values_into(values)
    }

    pub(super) fn matrix(&mut self) -> Result<DMatrix<f64>, String> {
        let (rows, cols) = (self.u64()?, self.u64()?);
        let n = rows
            .checked_mul(cols)
            .filter(|&n| n <= MAX_VALUES && n * 8 <= self.left as u64)
            .ok_or("a matrix whose shape does not fit the bytes at hand")?;
        let values = self.le_values(n as usize)?;
        Ok(DMatrix::from_vec(rows as usize, cols as usize, values))
    }

    /// A pass's sum, which must be the rest of the bytes.
    pub(super) fn pass_sum(&mut self) -> Result<PassSum, String> {
        Ok(match self.u8()? {
            0 => {
                let (samples, terms) = (self.u64()?, self.u64()?);
                let count = samples
                    .checked_mul(terms)
                    .and_then(|n| n.checked_add(terms + 1))
                    .filter(|&n| n <= MAX_VALUES && n * 16 == self.left as u64)
                    .ok_or("a sketch sum whose size does not match its shape")?;
                let mut values: Vec<i128> = self.le_values(count as usize)?;
                let frobenius = values.pop().ok_or("a sketch sum without F")?;
                let bounds = values.split_off((samples * terms) as usize);
                PassSum::Sketch {
                    samples: samples as usize,
                    y: values,
                    bounds,
                    frobenius,
                }
            }
            1 => PassSum::Power { y: self.matrix()? },
            2 => PassSum::Gram { x: self.matrix()? },
            other => return Err(format!("a sum of unknown kind {other}")),
        })
    }

    pub(super) fn grids(&mut self) -> Result<Grids, String> {
        let terms = self.f64s()?;
        let gram = self.f64()?;
        if !terms.iter().chain([&gram]).all(|&q| grid::is_grid(q)) {
            return Err("a grid that is not a power of two".into());
        }
        Ok(Grids { terms, gram })
    }

    /// Spans written by `Writer::spans` (whether they fit a block is the caller's to check).
    pub(super) fn spans(&mut self) -> Result<Vec<ChunkSpan>, String> {
        let flat = self.u64s()?;
        if flat.len() % 3 != 0 {
            return Err("spans that are not triples".into());
        }
        Ok(flat
            .chunks(3)
            .map(|s| ChunkSpan {
                index: s[0],
                first_doc: s[1],
                docs: s[2],
            })
            .collect())
    }

    pub(super) fn term_sums(&mut self) -> Result<TermSums, String> {
        let terms = self.u32s()?;
        let sums = self.matrix()?;
        if sums.ncols() != terms.len() {
            return Err("term sums whose columns do not match their terms".into());
        }
        Ok(TermSums { terms, sums })
    }

    pub(super) fn chunk(&mut self) -> Result<SparseChunk, String> {
        let (index, first_doc) = (self.u64()?, self.u64()?);
        let (docs, nnz) = (self.u64()?, self.u64()?);
        docs.checked_add(1)
            .and_then(|n| n.checked_mul(8))
            .and_then(|n| n.checked_add(nnz.checked_mul(12)?))
            .filter(|&n| n <= self.left as u64)
            .ok_or("a chunk whose sizes do not fit the bytes at hand")?;
        let indptr: Vec<u64> = self.le_values(docs as usize + 1)?;
        let chunk = SparseChunk {
            index,
            first_doc,
            indptr: indptr.into_iter().map(|p| p as usize).collect(),
            terms: self.le_values(nnz as usize)?,
            values: self.le_values(nnz as usize)?,
        };
        chunk.check()?;
        Ok(chunk)
    }

    pub(super) fn option<T>(
        &mut self,
        get: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => get(self).map(Some),
            other => Err(format!("an option tagged {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values cut across pieces anywhere read as from one buffer.
    #[test]
    fn pieces_read_as_their_concatenation() {
        let values: Vec<f64> = (0..37).map(|i| i as f64 * 0.37 - 3.0).collect();
        let mut whole = vec![7u8];
        whole.extend_from_slice(&(values.len() as u64).to_le_bytes());
        whole.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        whole.extend_from_slice(&0xdead_beef_u32.to_le_bytes());
        for cut in [1, 3, 8, 9, 13, 64, whole.len()] {
            let mut pieces: Vec<Bytes> = whole.chunks(cut).map(Bytes::copy_from_slice).collect();
            pieces.insert(1, Bytes::new()); // an empty piece is skipped
            let mut r = Reader::of_pieces(&pieces);
            assert_eq!(r.u8().unwrap(), 7);
            assert_eq!(r.f64s().unwrap(), values, "cut every {cut} bytes");
            assert_eq!(r.u32().unwrap(), 0xdead_beef);
            r.end().unwrap();
            assert!(r.u8().is_err(), "nothing is left");
        }
        // a copy large enough to be made on several threads, from pieces of odd sizes
        let many: Vec<u64> = (0..(PARALLEL_COPY / 8 + 12_345) as u64)
            .map(|i| i * 2_654_435_761)
            .collect();
        let bytes: Vec<u8> = many.iter().flat_map(|v| v.to_le_bytes()).collect();
        let pieces: Vec<Bytes> = bytes
            .chunks(RUN + 4_999)
            .map(Bytes::copy_from_slice)
            .collect();
        let mut r = Reader::of_pieces(&pieces);
        assert_eq!(r.le_values::<u64>(many.len()).unwrap(), many);
        r.end().unwrap();
        let mut short = Reader::of(&whole[..20]);
        short.u8().unwrap();
        assert!(short.f64s().is_err(), "a count beyond the bytes");
    }
}
