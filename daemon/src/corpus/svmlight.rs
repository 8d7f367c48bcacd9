//! The SVMlight / libsvm format (gensim's `SvmLightCorpus`, scikit-learn's
//! `dump_svmlight_file`).
//!
//! This module owns the SVMlight line: `label id:value id:value ... [# comment]`, one document a
//! line. The label (any number: `+1`, `-1`, `0.5`) is checked and ignored, `qid:...` tokens are
//! skipped, everything after `#` is a comment; lines that are blank or only a comment are not
//! documents, and a label alone is a document without entries. Ids are 1-based, as SVMlight
//! defines them and gensim writes them (term id + 1): id `n` is term `n - 1`. Id 0 is refused
//! rather than guessed (scikit-learn's `zero_based="auto"` would shift every id of a 0-based
//! file that happens not to use 0, silently, when the ids are meant to match a dictionary).
//! There is no header and no vocabulary file: the sizes come from a scan (see
//! [`super::doclines`]), `num_terms` being the largest id; a dictionary may still be given.

use super::chunker::{TextReader, garbage};
use super::doclines::{DocLines, LineFormat, fields, parse_pair};
use super::show;

/// The SVMlight line format.
pub struct SvmLight;

/// A streaming SVMlight reader: the API of [`MmReader`](super::MmReader) ([`TextReader`]);
/// constructors in [`super::doclines`] (`open`, `open_file`, `open_file_with_header`, `new`,
/// `with_header`).
pub type SvmLightReader<R> = TextReader<DocLines<R, SvmLight>>;

/// Whether `token` is an SVMlight label: a finite number.
pub(crate) fn is_label(token: &[u8]) -> bool {
    std::str::from_utf8(token)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

impl LineFormat for SvmLight {
    const NAME: &'static str = "SVMlight";
    const TERM_BASE: u64 = 1;

    fn parse_line(line: &[u8], counts: bool, pairs: &mut Vec<(u64, f64)>) -> Result<bool, String> {
        pairs.clear();
        let data = match line.iter().position(|&b| b == b'#') {
            Some(i) => &line[..i],
            None => line,
        };
        let mut tokens = fields(data);
        let Some(label) = tokens.next() else {
            return match garbage(data, Self::NAME) {
                Some(m) => Err(m),
                None => Ok(false),
            };
        };
        if !is_label(label) {
            return Err(garbage(data, Self::NAME).unwrap_or_else(|| {
                if label.contains(&b':') {
                    format!(
                        "the line starts with '{}', not a label: an SVMlight line is \
                         'label id:value ...' (the label may be any number, e.g. 0)",
                        show(label)
                    )
                } else {
                    format!("label '{}' is not a number", show(label))
                }
            }));
        }
        for token in tokens {
            if token.starts_with(b"qid:") {
                continue;
            }
            let (id, value) = parse_pair(token, data, Self::NAME, counts)?;
            if id == 0 {
                return Err(format!(
                    "term id 0 in '{}': SVMlight ids are 1-based (gensim writes term id + 1); \
                     for a 0-based file, add 1 to every id",
                    show(token)
                ));
            }
            pairs.push((id, value));
        }
        Ok(true)
    }
}
