//! Reading NumPy's `.npy` files from untrusted clients: little-endian float64 arrays of one
//! or two dimensions, in C or Fortran order, versions 1 to 3 of the format. Nothing else is
//! accepted — in particular no pickle, which `numpy.load(allow_pickle=True)` would run.
//!
//! The header is parsed as the small Python literal it is (`{'descr': '<f8',
//! 'fortran_order': False, 'shape': (3, 5), }`), bounded in length; the values are read in
//! blocks as they arrive, so memory follows the file's real size, never the size the
//! header claims, and a claim beyond [`MAX_VALUES`] is refused before anything is read.

use std::io::Read;

/// The most values one array may hold (2^33 float64 = 64 GiB): a larger claim is refused
/// before reading.
pub const MAX_VALUES: u64 = 1 << 33;

/// The longest header accepted (numpy writes under 200 bytes for these arrays).
const MAX_HEADER: usize = 64 * 1024;

/// Values read per block.
const BLOCK_VALUES: usize = 1 << 17;

/// An array read from a `.npy` file: its shape and its values in row-major (C) order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// One or two dimensions.
    pub shape: Vec<u64>,
    /// `shape.iter().product()` values, row-major.
    pub values: Vec<f64>,
}

/// Read a `.npy` file of float64 values from `reader`. `dims` is the number of dimensions
/// wanted (1 or 2); `max_values` bounds the values accepted (besides [`MAX_VALUES`]). The
/// error says what the file holds instead and how to write what is wanted.
pub fn read(mut reader: impl Read, dims: usize, max_values: u64) -> Result<NpyArray, String> {
    let mut magic = [0u8; 8];
    let got = read_up_to(&mut reader, &mut magic)?;
    if got == 0 {
        return Err("is empty: expected a .npy file written by numpy.save".into());
    }
    if magic[0] == 0x80 {
        return Err(
            "is a Python pickle, not a .npy file: topicd never reads pickles; write the array \
             with numpy.save(path, array, allow_pickle=False)"
                .into(),
        );
    }
    if got < 8 || &magic[..6] != b"\x93NUMPY" {
        return Err("is not a .npy file (it does not start with numpy's magic \\x93NUMPY)".into());
    }
    let header_len = match magic[6] {
        1 => {
            let mut len = [0u8; 2];
            read_exact(&mut reader, &mut len, "its header length")?;
            usize::from(u16::from_le_bytes(len))
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            read_exact(&mut reader, &mut len, "its header length")?;
            u32::from_le_bytes(len) as usize
        }
        v => {
            return Err(format!(
                "is a .npy file of version {v}, which topicd does not know"
            ));
        }
    };
    if header_len > MAX_HEADER {
        return Err(format!(
            "has a header of {header_len} bytes, more than the {MAX_HEADER} topicd accepts"
        ));
    }
    let mut header = vec![0u8; header_len];
    read_exact(&mut reader, &mut header, "its header")?;
    let header =
        std::str::from_utf8(&header).map_err(|_| "has a header that is not text".to_string())?;
    let header = Header::parse(header)?;
    if header.descr != "<f8" {
        return Err(format!(
            "holds values of type '{}', not little-endian float64 ('<f8'): write it with \
             numpy.save(path, array.astype('<f8'))",
            header.descr
        ));
    }
    if header.shape.len() != dims {
        return Err(format!(
            "holds an array of {} dimensions {:?}, where {dims} {} wanted",
            header.shape.len(),
            header.shape,
            if dims == 1 { "is" } else { "are" }
        ));
    }
    let count = header
        .shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_VALUES && n <= max_values)
        .ok_or_else(|| {
            format!(
                "claims an array of shape {:?}, more than the {} values topicd accepts here",
                header.shape,
                max_values.min(MAX_VALUES)
            )
        })?;
    let values = read_values(&mut reader, count)?;
    let values = match (header.fortran_order, &header.shape[..]) {
        (true, &[rows, columns]) => transpose(&values, rows as usize, columns as usize),
        _ => values,
    };
    Ok(NpyArray {
        shape: header.shape,
        values,
    })
}

/// `count` little-endian float64 values, read in blocks (memory grows with what the file
/// holds); exactly that many must be there.
fn read_values(reader: &mut impl Read, count: u64) -> Result<Vec<f64>, String> {
    let mut values = Vec::new();
    let mut block = vec![0u8; BLOCK_VALUES * 8];
    while (values.len() as u64) < count {
        let want = (count - values.len() as u64).min(BLOCK_VALUES as u64) as usize * 8;
        let got = read_up_to(reader, &mut block[..want])?;
        if got < want {
            let total = values.len() as u64 * 8 + got as u64;
            return Err(format!(
                "is truncated: its header announces {count} values ({} bytes) but {total} bytes \
                 follow it",
                count * 8
            ));
        }
        values.extend(
            block[..want]
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        );
    }
    let mut extra = [0u8; 1];
    if read_up_to(reader, &mut extra)? > 0 {
        return Err(format!(
            "has bytes after the {count} values its header announces"
        ));
    }
    Ok(values)
}

/// Row-major values of a `rows × columns` array stored column-major.
fn transpose(values: &[f64], rows: usize, columns: usize) -> Vec<f64> {
    let mut out = vec![0.0; values.len()];
    for c in 0..columns {
        for r in 0..rows {
            out[r * columns + c] = values[c * rows + r];
        }
    }
    out
}

/// Fill `buf` as far as the reader goes; the bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
    }
    Ok(filled)
}

fn read_exact(reader: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), String> {
    if read_up_to(reader, buf)? < buf.len() {
        return Err(format!("is truncated in {what}"));
    }
    Ok(())
}

/// The refusal of a structured (record) array.
const STRUCTURED: &str = "holds a structured array, not plain float64 values: write it with \
                          numpy.save(path, array.astype('<f8'))";

/// The three keys of a `.npy` header.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<u64>,
}

/// A value of the header's dictionary.
#[derive(Debug, PartialEq)]
enum Literal {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

impl Header {
    /// Parse the header's Python dictionary literal; any other key or value is refused.
    fn parse(text: &str) -> Result<Header, String> {
        let bad = |why: &str| format!("has a header topicd cannot read ({why}): {text:?}");
        let mut p = Parser {
            rest: text.trim_end_matches(['\n', ' ', '\0']),
        };
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        p.expect('{').map_err(|e| bad(&e))?;
        loop {
            p.skip_spaces();
            if p.eat('}') {
                break;
            }
            let key = match p.literal().map_err(|e| bad(&e))? {
                Literal::Str(key) => key,
                _ => return Err(bad("a key that is not a string")),
            };
            p.expect(':').map_err(|e| bad(&e))?;
            p.skip_spaces();
            if key == "descr" && p.rest.starts_with(['[', '{']) {
                return Err(STRUCTURED.into());
            }
            let value = p.literal().map_err(|e| bad(&e))?;
            let again = match (key.as_str(), value) {
                ("descr", Literal::Str(s)) => descr.replace(s).is_some(),
                ("fortran_order", Literal::Bool(b)) => fortran.replace(b).is_some(),
                ("shape", Literal::Tuple(t)) => shape.replace(t).is_some(),
                ("descr", _) => return Err(STRUCTURED.into()),
                (key, _) => return Err(bad(&format!("the key or value of '{key}'"))),
            };
            if again {
                return Err(bad(&format!("'{key}' given twice")));
            }
            p.skip_spaces();
            if !p.eat(',') {
                p.expect('}').map_err(|e| bad(&e))?;
                break;
            }
        }
        if !p.rest.trim().is_empty() {
            return Err(bad("text after the dictionary"));
        }
        match (descr, fortran, shape) {
            (Some(descr), Some(fortran_order), Some(shape)) => Ok(Header {
                descr,
                fortran_order,
                shape,
            }),
            _ => Err(bad("descr, fortran_order or shape is missing")),
        }
    }
}

/// A cursor over the header's text.
struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches(' ');
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{c}'"))
        }
    }

    /// A string in single quotes (no escapes), True, False, or a tuple of integers.
    fn literal(&mut self) -> Result<Literal, String> {
        self.skip_spaces();
        if let Some(rest) = self.rest.strip_prefix('\'') {
            let end = rest
                .find('\'')
                .ok_or("a string without its closing quote")?;
            let s = &rest[..end];
            if s.contains('\\') {
                return Err("a string with an escape".into());
            }
            self.rest = &rest[end + 1..];
            return Ok(Literal::Str(s.to_owned()));
        }
        for (word, b) in [("True", true), ("False", false)] {
            if let Some(rest) = self.rest.strip_prefix(word) {
                self.rest = rest;
                return Ok(Literal::Bool(b));
            }
        }
        if self.eat('(') {
            let mut items = Vec::new();
            loop {
                self.skip_spaces();
                if self.eat(')') {
                    return Ok(Literal::Tuple(items));
                }
                let digits = self.rest.len()
                    - self
                        .rest
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .len();
                if digits == 0 || digits > 20 {
                    return Err("a dimension that is not a number".into());
                }
                let n: u64 = self.rest[..digits]
                    .parse()
                    .map_err(|_| "a dimension too large")?;
                items.push(n);
                self.rest = &self.rest[digits..];
                if !self.eat(',') {
                    self.expect(')')?;
                    return Ok(Literal::Tuple(items));
                }
            }
        }
        Err("a value that is not a string, a boolean or a tuple".into())
    }
}

#[cfg(test)]
mod tests;
