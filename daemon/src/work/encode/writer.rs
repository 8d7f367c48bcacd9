//! The encoding half of the layouts: a writer whose output is a list of pieces, so that a
//! large array that can be kept alive (a shared `Qt`, a partial sum given up to be sent)
//! becomes a piece that is its own memory instead of a copy of it.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use nalgebra::DMatrix;
use topicd_numerics::SparseChunk;
use topicd_numerics::lsi::products::TermSums;
use topicd_numerics::lsi::{ChunkSpan, Grids, PassSum};

use super::{Le, le_bytes};

/// Writes values in order; see the [module documentation](self).
#[derive(Default)]
pub(super) struct Writer {
    /// The pieces written so far, before `buf`.
    done: Vec<Bytes>,
    /// The bytes being written.
    buf: Vec<u8>,
}

impl Writer {
    /// The encoding as pieces, in order.
    pub(super) fn into_pieces(mut self) -> Vec<Bytes> {
        if !self.buf.is_empty() || self.done.is_empty() {
            self.done.push(Bytes::from(self.buf));
        }
        self.done
    }

    /// The encoding as one buffer.
    pub(super) fn into_bytes(self) -> Vec<u8> {
        if self.done.is_empty() {
            return self.buf;
        }
        self.into_pieces().concat()
    }

    /// Room for `n` more bytes.
    pub(super) fn reserve(&mut self, n: usize) {
        self.buf.reserve(n);
    }

    pub(super) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(super) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Values as little-endian bytes, copied.
    fn le<T: Le>(&mut self, values: &[T]) {
        self.buf.extend_from_slice(&le_bytes(values));
    }

    /// The values that `owner` holds, as a piece of their own memory on a little-endian
    /// host (copied on another).
    pub(super) fn shared<T: Le, O: AsRef<[T]> + Send + 'static>(&mut self, owner: O) {
        if cfg!(target_endian = "little") {
            if !self.buf.is_empty() {
                self.done.push(Bytes::from(std::mem::take(&mut self.buf)));
            }
            self.done.push(Bytes::from_owner(LittleEndian(
                owner,
                std::marker::PhantomData,
            )));
        } else {
            self.le(owner.as_ref());
        }
    }

    /// A count of values and the values.
    fn counted<T: Le>(&mut self, values: &[T]) {
        self.u64(values.len() as u64);
        self.le(values);
    }

    /// A count of values and the values that `owner` holds, as [`shared`](Self::shared).
    pub(super) fn counted_shared<T: Le, O: AsRef<[T]> + Send + 'static>(&mut self, owner: O) {
        self.u64(owner.as_ref().len() as u64);
        self.shared(owner);
    }

    pub(super) fn u32s(&mut self, values: &[u32]) {
        self.counted(values);
    }

    pub(super) fn u64s(&mut self, values: &[u64]) {
        self.counted(values);
    }

    pub(super) fn f64s(&mut self, values: &[f64]) {
        self.counted(values);
    }

    fn matrix_head(&mut self, m: &DMatrix<f64>) {
        self.u64(m.nrows() as u64);
        self.u64(m.ncols() as u64);
    }

    pub(super) fn matrix(&mut self, m: &DMatrix<f64>) {
        self.matrix_head(m);
        self.le(m.as_slice());
    }

    /// A matrix that others hold too: its values are a piece of its own memory.
    pub(super) fn shared_matrix(&mut self, m: &Arc<DMatrix<f64>>) {
        self.matrix_head(m);
        self.shared(Within(m.clone(), DMatrix::as_slice));
    }

    /// A pass's sum given up to be written: its large arrays become pieces of their own
    /// memory (a sketch's `Yt` is 16 bytes a value, 126 MB on gcide).
    pub(super) fn owned_pass_sum(&mut self, sum: PassSum) {
        match sum {
            PassSum::Sketch {
                samples,
                y,
                bounds,
                frobenius,
            } => {
                self.sketch_head(samples, bounds.len());
                self.shared(y);
                self.sketch_tail(&bounds, frobenius);
            }
            PassSum::Power { y } => {
                self.u8(1);
                self.matrix_head(&y);
                self.shared(OwnedMatrix(y));
            }
            PassSum::Gram { x } => {
                self.u8(2);
                self.matrix(&x);
            }
        }
    }

    /// A pass's sum as three pieces: what precedes its large array, the array's bytes
    /// (its own memory on a little-endian host), and what follows it.
    pub(super) fn pass_sum_pieces(sum: &PassSum) -> [Cow<'_, [u8]>; 3] {
        let (mut head, mut tail) = (Writer::default(), Writer::default());
        let values = match sum {
            PassSum::Sketch {
                samples,
                y,
                bounds,
                frobenius,
            } => {
                head.sketch_head(*samples, bounds.len());
                tail.sketch_tail(bounds, *frobenius);
                le_bytes(y)
            }
            PassSum::Power { y } => {
                head.u8(1);
                head.matrix_head(y);
                le_bytes(y.as_slice())
            }
            PassSum::Gram { x } => {
                head.u8(2);
                head.matrix_head(x);
                le_bytes(x.as_slice())
            }
        };
        [head.into_bytes().into(), values, tail.into_bytes().into()]
    }

    /// What precedes a sketch sum's `Yt`: its kind and shape.
    fn sketch_head(&mut self, samples: usize, terms: usize) {
        self.u8(0);
        self.u64(samples as u64);
        self.u64(terms as u64);
    }

    /// What follows a sketch sum's `Yt`: the bounds and F.
    fn sketch_tail(&mut self, bounds: &[i128], frobenius: i128) {
        self.le(bounds);
        self.le(&[frobenius]);
    }

    pub(super) fn grids(&mut self, grids: &Grids) {
        self.f64s(&grids.terms);
        self.f64(grids.gram);
    }

    /// Where each chunk of a block lies: (index, first document, documents) for each.
    pub(super) fn spans(&mut self, spans: &[ChunkSpan]) {
        let flat: Vec<u64> = spans
            .iter()
            .flat_map(|s| [s.index, s.first_doc, s.docs])
            .collect();
        self.u64s(&flat);
    }

    pub(super) fn term_sums(&mut self, sums: &TermSums) {
        self.u32s(&sums.terms);
        self.matrix(&sums.sums);
    }

    pub(super) fn chunk(&mut self, chunk: &SparseChunk) {
        self.reserve(32 + 8 * chunk.indptr.len() + 12 * chunk.nnz());
        self.chunk_head(chunk);
        self.le(&chunk.terms);
        self.le(&chunk.values);
    }

    /// A chunk's shape and offsets: what comes before its terms and values.
    pub(super) fn chunk_head(&mut self, chunk: &SparseChunk) {
        self.u64(chunk.index);
        self.u64(chunk.first_doc);
        self.u64(chunk.num_docs() as u64);
        self.u64(chunk.nnz() as u64);
        self.reserve(8 * chunk.indptr.len());
        chunk.indptr.iter().for_each(|&p| self.u64(p as u64));
    }

    pub(super) fn option<T: ?Sized>(&mut self, value: Option<&T>, put: impl FnOnce(&mut Self, &T)) {
        match value {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                put(self, v);
            }
        }
    }
}

/// Values whose memory is their little-endian bytes (on a little-endian host only).
struct LittleEndian<T, O>(O, std::marker::PhantomData<fn() -> T>);

impl<T: Le, O: AsRef<[T]>> AsRef<[u8]> for LittleEndian<T, O> {
    fn as_ref(&self) -> &[u8] {
        bytemuck::cast_slice(self.0.as_ref())
    }
}

/// Values inside something that others hold too (a matrix, a task's input), picked out by
/// the function: sent from their own memory.
pub(super) struct Within<T>(pub(super) Arc<T>, pub(super) fn(&T) -> &[f64]);

impl<T> AsRef<[f64]> for Within<T> {
    fn as_ref(&self) -> &[f64] {
        (self.1)(&self.0)
    }
}

/// The values of a matrix given up to be sent.
struct OwnedMatrix(DMatrix<f64>);

impl AsRef<[f64]> for OwnedMatrix {
    fn as_ref(&self) -> &[f64] {
        self.0.as_slice()
    }
}
