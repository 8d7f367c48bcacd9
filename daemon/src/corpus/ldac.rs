//! Blei's LDA-C format (`.dat`/`.lda-c`, as `lda-c` and gensim's `BleiCorpus` write it).
//!
//! This module owns the LDA-C line: `N id:count id:count ...`, one document a line, `N` the
//! number of pairs that follow (it must match), ids 0-based, values counts (gensim writes them
//! with `%g`, so any finite number is read; `counts` asks for whole non-negative ones). A
//! document without entries is the line `0`. There is no header: the sizes come from a scan
//! (see [`super::doclines`]). The vocabulary (one word a line, the word on line `n` has id
//! `n - 1`; gensim writes it next to the corpus as `<corpus>.vocab`) is loaded with
//! [`Dictionary::load_vocabulary`](super::Dictionary::load_vocabulary).

use super::chunker::{TextReader, garbage, parse_u64};
use super::doclines::{DocLines, LineFormat, fields, parse_pair};
use super::show;

/// The LDA-C line format.
pub struct LdaC;

/// A streaming LDA-C reader: the API of [`MmReader`](super::MmReader) ([`TextReader`]);
/// constructors in [`super::doclines`] (`open`, `open_file`, `open_file_with_header`, `new`,
/// `with_header`).
pub type LdacReader<R> = TextReader<DocLines<R, LdaC>>;

impl LineFormat for LdaC {
    const NAME: &'static str = "LDA-C";
    const TERM_BASE: u64 = 0;

    fn parse_line(line: &[u8], counts: bool, pairs: &mut Vec<(u64, f64)>) -> Result<bool, String> {
        pairs.clear();
        let mut tokens = fields(line);
        let Some(first) = tokens.next() else {
            return match garbage(line, Self::NAME) {
                Some(m) => Err(m),
                None => Ok(false),
            };
        };
        let Some(n) = parse_u64(first) else {
            return Err(garbage(line, Self::NAME).unwrap_or_else(|| {
                format!(
                    "expected 'N id:count ...' with N the number of pairs, found '{}' first",
                    show(first)
                )
            }));
        };
        for token in tokens {
            pairs.push(parse_pair(token, line, Self::NAME, counts)?);
        }
        if n != pairs.len() as u64 {
            return Err(format!(
                "the line declares {n} pairs but holds {} (an LDA-C line is 'N id:count ...')",
                pairs.len()
            ));
        }
        Ok(true)
    }
}
