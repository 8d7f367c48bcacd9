//! NumPy's `.npy` format, version 1.0, for little-endian float64 arrays in C order.
//!
//! A `.npy` file is the magic `\x93NUMPY`, the format version (1, 0), the length of the
//! header as a little-endian `u16`, then the header itself: a Python dict literal giving
//! the dtype, the order and the shape, padded with spaces and ended by a newline so that
//! the data starts on a multiple of 64 bytes. The values follow, row after row.
//!
//! [`NpyWriter`] writes the header, then takes the values in as many pieces as suit the
//! caller, so that a large matrix can be streamed to a file, and checks at the end that
//! exactly the announced number of values was written.

use std::io::{self, Write};

/// The first bytes of every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The data starts on a multiple of this many bytes (NumPy's `ARRAY_ALIGN`).
const ALIGN: usize = 64;

/// The complete header (magic, version, length, dict, padding) of a float64 array of the
/// given shape. Fails only for shapes of so many dimensions that the header would not fit
/// in version 1.0.
pub fn header(shape: &[u64]) -> io::Result<Vec<u8>> {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    // Python's tuple syntax: `()`, `(3,)`, `(3, 2)`.
    let shape = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    // magic + version + header length + dict + newline, rounded up.
    let prefix = MAGIC.len() + 2 + 2;
    let total = (prefix + dict.len() + 1).div_ceil(ALIGN) * ALIGN;
    let header_len = u16::try_from(total - prefix).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "array shape too long for a .npy 1.0 header",
        )
    })?;
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&header_len.to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.resize(total - 1, b' ');
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes one float64 array to `W`: the header first, then the values as they come.
pub struct NpyWriter<W: Write> {
    out: W,
    /// Values the shape calls for.
    expected: u64,
    /// Values written so far.
    written: u64,
}

impl<W: Write> NpyWriter<W> {
    /// Write the header of an array of `shape` to `out`.
    pub fn new(mut out: W, shape: &[u64]) -> io::Result<Self> {
        let expected = shape
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "array too large"))?;
        out.write_all(&header(shape)?)?;
        Ok(NpyWriter {
            out,
            expected,
            written: 0,
        })
    }

    /// Append values, in C order. Fails rather than write more than the shape holds.
    pub fn write(&mut self, values: &[f64]) -> io::Result<()> {
        let count = values.len() as u64;
        if count > self.expected - self.written {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} values for an array of {}",
                    self.written.saturating_add(count),
                    self.expected
                ),
            ));
        }
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.out.write_all(&bytes)?;
        self.written += count;
        Ok(())
    }

    /// Check that the array is complete and give the writer back.
    pub fn finish(self) -> io::Result<W> {
        if self.written != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} values written for an array of {}",
                    self.written, self.expected
                ),
            ));
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_of_a_matrix_is_numpys() {
        let dict = b"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
        let mut expected = Vec::new();
        expected.extend_from_slice(b"\x93NUMPY\x01\x00");
        expected.extend_from_slice(&118u16.to_le_bytes()); // 128 - 10
        expected.extend_from_slice(dict);
        expected.extend(std::iter::repeat_n(b' ', 128 - 10 - dict.len() - 1));
        expected.push(b'\n');
        let header = header(&[3, 2]).unwrap();
        assert_eq!(header.len(), 128);
        assert_eq!(header, expected);
    }

    #[test]
    fn header_of_a_vector_has_a_one_element_tuple() {
        let header = header(&[5]).unwrap();
        assert_eq!(header.len() % 64, 0);
        let text = std::str::from_utf8(&header[10..]).unwrap();
        assert_eq!(
            text.trim_end(),
            "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }"
        );
        assert!(text.ends_with(" \n"));
    }

    #[test]
    fn headers_stay_aligned_for_large_shapes() {
        for shape in [[0, 0], [u64::MAX, u64::MAX], [1_000_000, 300]] {
            let header = header(&shape).unwrap();
            assert_eq!(header.len() % 64, 0);
            let len = u16::from_le_bytes([header[8], header[9]]) as usize;
            assert_eq!(10 + len, header.len());
            assert_eq!(header.last(), Some(&b'\n'));
        }
    }

    #[test]
    fn a_3_by_2_matrix_file_has_header_and_48_bytes_of_data() {
        let mut npy = NpyWriter::new(Vec::new(), &[3, 2]).unwrap();
        npy.write(&[1.0, 2.0]).unwrap();
        npy.write(&[3.0, 4.0, 5.0, -6.5]).unwrap();
        let bytes = npy.finish().unwrap();
        assert_eq!(bytes.len(), 128 + 3 * 2 * 8);
        assert_eq!(&bytes[128..136], &1.0f64.to_le_bytes());
        assert_eq!(&bytes[168..176], &(-6.5f64).to_le_bytes());
    }

    #[test]
    fn the_number_of_values_is_checked() {
        let mut npy = NpyWriter::new(Vec::new(), &[2, 2]).unwrap();
        assert!(npy.write(&[0.0; 5]).is_err());
        npy.write(&[0.0; 3]).unwrap();
        assert!(npy.finish().is_err());
    }
}
