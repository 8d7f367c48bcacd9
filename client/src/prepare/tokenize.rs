//! gensim's `simple_preprocess(doc, deacc, min_len, max_len)`, character for character.
//!
//! gensim 4.4 (`gensim/utils.py`) does, on a document given as bytes:
//!
//! 1. `to_unicode(doc, 'utf8', errors='ignore')`: invalid UTF-8 is dropped (each maximal
//!    invalid subsequence, as Python's decoder does);
//! 2. `text.lower()` on the whole document (full Unicode lowercasing, with the Final_Sigma
//!    rule: `ΟΔΟΣ` → `οδος`, and `İ` → `i̇`, two characters);
//! 3. with `deacc`, `deaccent`: NFD, remove every character of category Mn, NFC;
//! 4. the tokens are the matches of `(((?![\d])\w)+)`: Python's `\w` is a letter (Lu, Ll, Lt,
//!    Lm, Lo), a number (Nd, Nl, No) or `_`, and `\d` is Nd, so a token character is
//!    `_` or one of Lu, Ll, Lt, Lm, Lo, Nl, No (checked against Python over every code point);
//!    combining marks (Mn, Mc) are not word characters and split tokens;
//! 5. tokens of `min_len..=max_len` characters (code points) that do not start with `_` are
//!    kept.
//!
//! Unicode tables: Rust's own (lowercasing), `unicode-normalization` and
//! `unicode-general-category` (Unicode 16); Python 3.11 uses Unicode 14, so only characters
//! assigned since then can be treated differently.
//!
//! Stop words (`--stopwords`) are removed after all that, as a gensim user's list
//! comprehension would: `[t for t in simple_preprocess(doc) if t not in stopwords]`.

use std::borrow::Cow;

use rustc_hash::FxHashSet;
use unicode_general_category::{GeneralCategory, get_general_category};
use unicode_normalization::UnicodeNormalization;

/// The settings of `simple_preprocess`, and the stop words.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    /// deacc: remove accent marks (NFD, drop Mn, NFC).
    pub deacc: bool,
    /// min_len: shortest token kept, in characters.
    pub min_len: usize,
    /// max_len: longest token kept, in characters.
    pub max_len: usize,
    /// Tokens removed after preprocessing.
    pub stopwords: FxHashSet<Box<str>>,
}

impl Default for Tokenizer {
    /// gensim's defaults: no deaccenting, 2 to 15 characters, no stop words.
    fn default() -> Self {
        Tokenizer {
            deacc: false,
            min_len: 2,
            max_len: 15,
            stopwords: FxHashSet::default(),
        }
    }
}

impl Tokenizer {
    /// The document as gensim tokenizes it: decoded (invalid UTF-8 dropped), lowercased,
    /// deaccented with `deacc`.
    pub fn normalize<'a>(&self, doc: &'a [u8]) -> Cow<'a, str> {
        let text = decode_ignoring_errors(doc);
        if text.is_ascii() {
            // Deaccenting changes nothing in ASCII text.
            if text.bytes().any(|b| b.is_ascii_uppercase()) {
                return Cow::Owned(text.to_ascii_lowercase());
            }
            return text;
        }
        let lower = text.to_lowercase();
        if self.deacc {
            Cow::Owned(deaccent(&lower))
        } else {
            Cow::Owned(lower)
        }
    }

    /// The tokens of a normalized text (see [`Tokenizer::normalize`]), in order, repeats
    /// included.
    pub fn tokens<'t>(&'t self, text: &'t str) -> impl Iterator<Item = &'t str> + 't {
        Words { text, at: 0 }.filter(move |word| self.keeps(word))
    }

    /// Whether gensim keeps a matched word: its length, no leading `_`, not a stop word.
    fn keeps(&self, word: &str) -> bool {
        // Bytes bound characters: ≥ chars, ≤ 4 × chars.
        if word.len() < self.min_len || word.len() > self.max_len.saturating_mul(4) {
            return false;
        }
        let chars = if word.is_ascii() {
            word.len()
        } else {
            word.chars().count()
        };
        self.min_len <= chars
            && chars <= self.max_len
            && !word.starts_with('_')
            && (self.stopwords.is_empty() || !self.stopwords.contains(word))
    }

    /// `simple_preprocess` of one document, as owned tokens.
    #[cfg(test)]
    pub fn preprocess(&self, doc: &[u8]) -> Vec<String> {
        let text = self.normalize(doc);
        self.tokens(&text).map(str::to_owned).collect()
    }
}

/// Python's `bytes.decode('utf-8', errors='ignore')`: the valid parts, concatenated.
pub fn decode_ignoring_errors(bytes: &[u8]) -> Cow<'_, str> {
    let mut chunks = bytes.utf8_chunks();
    let first = match chunks.next() {
        None => return Cow::Borrowed(""),
        Some(chunk) if chunk.invalid().is_empty() => return Cow::Borrowed(chunk.valid()),
        Some(chunk) => chunk.valid(),
    };
    let mut text = String::with_capacity(bytes.len());
    text.push_str(first);
    for chunk in chunks {
        text.push_str(chunk.valid());
    }
    Cow::Owned(text)
}

/// gensim's `deaccent`: NFD, without the nonspacing marks (Mn), then NFC.
pub fn deaccent(text: &str) -> String {
    text.nfd()
        .filter(|&c| get_general_category(c) != GeneralCategory::NonspacingMark)
        .nfc()
        .collect()
}

/// A character of `((?![\d])\w)` in Python's Unicode mode.
pub fn is_token_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic() || c == '_';
    }
    use GeneralCategory::*;
    matches!(
        get_general_category(c),
        UppercaseLetter
            | LowercaseLetter
            | TitlecaseLetter
            | ModifierLetter
            | OtherLetter
            | LetterNumber
            | OtherNumber
    )
}

/// The maximal runs of token characters of a text.
struct Words<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Words<'t> {
    /// The first position from `at` whose character is (`token`) or is not a token character.
    fn boundary(&self, mut at: usize, token: bool) -> usize {
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(at) {
            if b < 0x80 {
                if (b.is_ascii_alphabetic() || b == b'_') == token {
                    return at;
                }
                at += 1;
            } else {
                let Some(c) = self.text[at..].chars().next() else {
                    break;
                };
                if is_token_char(c) == token {
                    return at;
                }
                at += c.len_utf8();
            }
        }
        bytes.len()
    }
}

impl<'t> Iterator for Words<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        let start = self.boundary(self.at, true);
        if start >= self.text.len() {
            self.at = start;
            return None;
        }
        let end = self.boundary(start, false);
        self.at = end;
        Some(&self.text[start..end])
    }
}

#[cfg(test)]
mod tests;
