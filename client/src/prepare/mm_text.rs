//! The text of a Matrix Market corpus's entries as gensim writes them (`"%s" % value`):
//! `doc term value` lines, integers by `itoa`, floats as Python's `repr` from `zmij`'s
//! shortest round-trip digits. This runs once per entry of a corpus, so it formats into
//! bytes without `fmt`.

/// A value as Python's `"%s" % value` writes it.
pub trait MmValue: Copy {
    /// Append the value's text.
    fn append(self, out: &mut Vec<u8>);
}

impl MmValue for u32 {
    fn append(self, out: &mut Vec<u8>) {
        out.extend_from_slice(itoa::Buffer::new().format(self).as_bytes());
    }
}

impl MmValue for f64 {
    fn append(self, out: &mut Vec<u8>) {
        append_python_float(out, self);
    }
}

/// The lines of document `docno` (0-based): `docno+1 id+1 value`, one per entry (entries
/// sorted by id).
pub fn format_document<V: MmValue>(out: &mut Vec<u8>, docno: u64, entries: &[(u32, V)]) {
    let mut doc = itoa::Buffer::new();
    let doc = doc.format(docno + 1).as_bytes();
    let mut term = itoa::Buffer::new();
    for &(id, value) in entries {
        out.extend_from_slice(doc);
        out.push(b' ');
        out.extend_from_slice(term.format(u64::from(id) + 1).as_bytes());
        out.push(b' ');
        value.append(out);
        out.push(b'\n');
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional for exponents
/// -5 < e < 16 (`0.0001`, `123.0`), else scientific with at least two exponent digits
/// (`1e-05`, `1.5e+16`).
///
/// `zmij` writes the same digits, positional for -6 < e < 16 and scientific otherwise
/// (`1e-7`, `1.5e+16`): only its exponents of one digit (`e-7` → `e-07`) and the decade
/// [1e-5, 1e-4), positional there (`0.00005` → `5e-05`), need rewriting.
pub fn append_python_float(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(if x.is_nan() {
            b"nan"
        } else if x > 0.0 {
            b"inf"
        } else {
            b"-inf"
        });
        return;
    }
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format_finite(x).as_bytes();
    let (sign, magnitude) = match text.split_first() {
        Some((b'-', rest)) => (&text[..1], rest),
        _ => (&text[..0], text),
    };
    if let Some(e) = magnitude.iter().position(|&b| b == b'e') {
        // d[.ddd]e±N: Python pads N to two digits.
        out.extend_from_slice(text);
        if magnitude.len() - e == 3 {
            let digit = out.pop().unwrap_or(b'0');
            out.extend_from_slice(&[b'0', digit]);
        }
    } else if let Some(digits) = magnitude.strip_prefix(b"0.0000") {
        // 0.0000d[ddd]: exponent -5, scientific for Python.
        out.extend_from_slice(sign);
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.extend_from_slice(b"e-05");
    } else {
        out.extend_from_slice(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(x: f64) -> String {
        let mut s = Vec::new();
        append_python_float(&mut s, x);
        String::from_utf8(s).unwrap()
    }

    /// What this module wrote before `zmij`: Rust's `{:e}` (the same shortest digits but
    /// on an exact tie, see [`same_or_tie`]), laid out by Python's rules, digit by digit.
    /// The reference of the fast path.
    fn reference(x: f64) -> String {
        if !x.is_finite() {
            return if x.is_nan() {
                "nan"
            } else if x > 0.0 {
                "inf"
            } else {
                "-inf"
            }
            .into();
        }
        let sci = format!("{:e}", x.abs());
        let (mantissa, exponent) = sci.split_once('e').unwrap();
        let exponent: i32 = exponent.parse().unwrap();
        let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
        let mut out = String::new();
        if x.is_sign_negative() {
            out.push('-');
        }
        if -5 < exponent && exponent < 16 {
            if exponent >= 0 {
                let point = exponent as usize + 1;
                if digits.len() <= point {
                    out += &digits;
                    out += &"0".repeat(point - digits.len());
                    out += ".0";
                } else {
                    out += &format!("{}.{}", &digits[..point], &digits[point..]);
                }
            } else {
                out += &format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize));
            }
        } else {
            out += &digits[..1];
            if digits.len() > 1 {
                out += &format!(".{}", &digits[1..]);
            }
            let sign = if exponent < 0 { '-' } else { '+' };
            out += &format!("e{sign}{:02}", exponent.abs());
        }
        out
    }

    #[test]
    fn floats_as_python_repr() {
        // repr() of each value in Python 3.11.
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1.0 / 3.0, "0.3333333333333333"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (0.00009999, "9.999e-05"),
            (1e-5, "1e-05"),
            (5e-05, "5e-05"),
            (-5.5e-05, "-5.5e-05"),
            (1.5e-07, "1.5e-07"),
            (1e-9, "1e-09"),
            (1e-10, "1e-10"),
            (1.2345678901234567e-10, "1.2345678901234568e-10"),
            (5e-324, "5e-324"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (123.0, "123.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (-1e17, "-1e+17"),
            (1e22, "1e+22"),
            (1e100, "1e+100"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-0.25, "-0.25"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (0.977335787865385, "0.977335787865385"),
            (2f64.powi(50) + 0.75, "1125899906842624.8"),
            (2251799813685248.5, "2251799813685248.5"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, text) in cases {
            assert_eq!(py(x), text, "{x:e}");
            assert_eq!(reference(x), text, "{x:e}");
        }
        // An exact tie: Python's even digit, not Rust's `{:e}`.
        assert_eq!(py(2f64.powi(50) + 0.25), "1125899906842624.2");
        assert_eq!(reference(2f64.powi(50) + 0.25), "1125899906842624.3");
    }

    /// `ours` and `reference` are the same text, or both shortest round-trip digits of `x`
    /// of one length that differ in their last digit, where `x` lies exactly halfway: Python
    /// (and `zmij`) then take the even digit, Rust's `{:e}` the one above
    /// (2^50 + 0.25 is `...624.2` for Python, `...624.3` for Rust).
    fn same_or_tie(x: f64, ours: &str, reference: &str) -> bool {
        if ours == reference {
            return true;
        }
        let (a, b) = (ours.as_bytes(), reference.as_bytes());
        let last = a.iter().rposition(u8::is_ascii_digit).unwrap();
        a.len() == b.len()
            && a[..last] == b[..last]
            && a[last + 1..] == b[last + 1..]
            && a[last] % 2 == 0
            && b[last] == a[last] + 1
            && ours.parse::<f64>() == Ok(x)
            && reference.parse::<f64>() == Ok(x)
    }

    #[test]
    fn every_decade_as_the_reference() {
        // Random bit patterns (every exponent), and values around each power of ten.
        let mut state = 0x853c_49e6_748f_ea9bu64;
        for _ in 0..2_000_000 {
            state = crate::prepare::splitmix64(state);
            let x = f64::from_bits(state);
            let (ours, reference) = (py(x), reference(x));
            assert!(same_or_tie(x, &ours, &reference), "{ours} {reference}");
        }
        for e in -325..310 {
            let p = format!("1e{e}").parse::<f64>().unwrap();
            for x in [p, p.next_up(), p.next_down(), p * 1.5, p * 9.999_999] {
                let (ours, reference) = (py(x), reference(x));
                assert!(same_or_tie(x, &ours, &reference), "{ours} {reference}");
            }
        }
    }

    #[test]
    fn as_python_itself_when_there_is_one() {
        let Some(python) = ["python3", "python"].into_iter().find(|p| {
            std::process::Command::new(p)
                .arg("-c")
                .arg("pass")
                .output()
                .is_ok_and(|o| o.status.success())
        }) else {
            eprintln!("skipped: no python3 to compare repr() with");
            return;
        };
        let mut state = 7u64;
        let values: Vec<f64> = (0..20_000)
            .map(|i| {
                state = crate::prepare::splitmix64(state);
                // Half of them in the weights' range, half anywhere.
                if i % 2 == 0 {
                    (state >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi(i % 23 - 8)
                } else {
                    f64::from_bits(state)
                }
            })
            .filter(|x| x.is_finite())
            .collect();
        let bits: Vec<String> = values.iter().map(|x| x.to_bits().to_string()).collect();
        let script = "import struct,sys\nfor l in sys.stdin:\n    \
                      print(repr(struct.unpack('<d', struct.pack('<Q', int(l)))[0]))";
        let mut child = std::process::Command::new(python)
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let input = bits.join("\n") + "\n";
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            std::io::Write::write_all(&mut stdin, input.as_bytes()).unwrap()
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), values.len());
        for (x, line) in values.iter().zip(lines) {
            assert_eq!(py(*x), line, "{:#x}", x.to_bits());
        }
    }

    #[test]
    fn lines_of_a_document() {
        let mut out = Vec::new();
        format_document(&mut out, 0, &[(0u32, 2u32), (4, 1)]);
        format_document(&mut out, 99, &[(4_294_967_294u32, 0.5f64)]);
        assert_eq!(out, b"1 1 2\n1 5 1\n100 4294967295 0.5\n");
    }
}
