//! The expected tokens were printed by gensim 4.4's `simple_preprocess` (Python 3.11).

use super::*;

fn pre(doc: &str, deacc: bool, min_len: usize, max_len: usize) -> Vec<String> {
    pre_bytes(doc.as_bytes(), deacc, min_len, max_len)
}

fn pre_bytes(doc: &[u8], deacc: bool, min_len: usize, max_len: usize) -> Vec<String> {
    let tokenizer = Tokenizer {
        deacc,
        min_len,
        max_len,
        ..Tokenizer::default()
    };
    tokenizer.preprocess(doc)
}

#[test]
fn ascii_underscores_and_short_tokens() {
    assert_eq!(
        pre("Hello, World! foo_bar _under x", false, 2, 15),
        ["hello", "world", "foo_bar"]
    );
    assert_eq!(pre("a bb ccc dddd", false, 3, 3), ["ccc"]);
}

#[test]
fn accents_kept_or_removed() {
    let doc = "Café naïve Ærøskøbing déjà vu";
    assert_eq!(
        pre(doc, false, 2, 15),
        ["café", "naïve", "ærøskøbing", "déjà", "vu"]
    );
    // ø and æ have no decomposition: deaccent keeps them.
    assert_eq!(
        pre(doc, true, 2, 15),
        ["cafe", "naive", "ærøskøbing", "deja", "vu"]
    );
}

#[test]
fn combining_marks_split_tokens_unless_removed() {
    assert_eq!(
        pre("e\u{301}cole cafe\u{301} n\u{303}o", false, 2, 15),
        ["cole", "cafe"]
    );
    assert_eq!(
        pre("e\u{301}cole cafe\u{301}", true, 2, 15),
        ["ecole", "cafe"]
    );
}

#[test]
fn digits_split_tokens_but_other_numbers_do_not() {
    assert_eq!(
        pre("abc123def 42 x2y ²squared Ⅻroman ½half", false, 2, 15),
        ["abc", "def", "²squared", "ⅻroman", "½half"]
    );
    // Arabic-Indic digits are Nd too.
    assert_eq!(pre("١٢٣abc ٣x", false, 2, 15), ["abc"]);
}

#[test]
fn greek_final_sigma_and_special_lowercasing() {
    assert_eq!(
        pre("ΟΔΟΣ ΟΔΟΣ. ΣΑΣ Σ ΑΣ\u{301}Α", false, 2, 15),
        ["οδος", "οδος", "σας", "ασ"]
    );
    // İ lowercases to i + U+0307 (a combining mark, not a word character).
    assert_eq!(
        pre("İstanbul straße ǅemal", false, 2, 15),
        ["stanbul", "straße", "ǆemal"]
    );
    assert_eq!(pre("İstanbul", true, 2, 15), ["istanbul"]);
}

#[test]
fn cjk_and_hangul() {
    assert_eq!(
        pre("東京都 日本語テキスト 한국어", false, 2, 30),
        ["東京都", "日本語テキスト", "한국어"]
    );
}

#[test]
fn invalid_utf8_is_dropped() {
    assert_eq!(
        pre_bytes(b"ab\xffcd \xe2\x82 ok \xed\xa0\x80zz", false, 2, 15),
        ["abcd", "ok", "zz"]
    );
    assert_eq!(decode_ignoring_errors(b"\xe2\x82A"), "A");
}

#[test]
fn lengths_are_counted_in_characters() {
    // 15 characters, 30 bytes: kept; 16 characters: dropped.
    let fifteen = "é".repeat(15);
    assert_eq!(pre(&fifteen, false, 2, 15), [fifteen]);
    assert!(pre(&"é".repeat(16), false, 2, 15).is_empty());
}

#[test]
fn stop_words_are_removed_after_preprocessing() {
    let tokenizer = Tokenizer {
        stopwords: ["the".into()].into_iter().collect(),
        ..Tokenizer::default()
    };
    assert_eq!(tokenizer.preprocess(b"The cat THE hat"), ["cat", "hat"]);
}
