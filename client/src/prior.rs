//! `--alpha` and `--eta` of `submit lda`: the Dirichlet priors as gensim accepts them,
//! parsed into [`Prior`].
//!
//! Only the syntax is checked here; the daemon checks the values (positivity, one α per
//! topic, no asymmetric or list η) and its refusal is reported as it comes.
//!
//! | text | alpha | eta |
//! |---|---|---|
//! | `symmetric` | [`Prior::Symmetric`] | [`Prior::Symmetric`] |
//! | `asymmetric` | [`Prior::Asymmetric`] | refused |
//! | `auto` | [`Prior::Auto`] | [`Prior::Auto`] |
//! | `0.1` | [`Prior::Scalar`] | [`Prior::Scalar`] |
//! | `0.1,0.2,0.3` | [`Prior::List`] | refused |

use anyhow::{anyhow, bail};
use topicd_protocol::Prior;

/// What `--alpha` accepts, for messages.
const ALPHA_FORMS: &str =
    "symmetric, asymmetric, auto, a number or a comma-separated list of numbers";

/// What `--eta` accepts, for messages.
const ETA_FORMS: &str = "symmetric, auto or a number";

/// Parse `--alpha`: `symmetric`, `asymmetric`, `auto`, a number, or a comma-separated list
/// of numbers (one per topic).
pub fn parse_alpha(text: &str) -> anyhow::Result<Prior> {
    let trimmed = text.trim();
    match trimmed {
        "symmetric" => return Ok(Prior::Symmetric),
        "asymmetric" => return Ok(Prior::Asymmetric),
        "auto" => return Ok(Prior::Auto),
        _ => {}
    }
    if let Some(x) = number(trimmed) {
        return Ok(Prior::Scalar(x));
    }
    if !trimmed.contains(',') {
        bail!("--alpha: expected {ALPHA_FORMS}, got '{text}'");
    }
    let items: Vec<&str> = trimmed.split(',').collect();
    let count = items.len();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            number(item).ok_or_else(|| {
                let item = item.trim();
                let what = if item.is_empty() {
                    "is empty".to_owned()
                } else {
                    format!("'{item}' is not a number")
                };
                anyhow!(
                    "--alpha: expected a comma-separated list of numbers, but item {} of {count} \
                     {what} in '{text}'",
                    i + 1
                )
            })
        })
        .collect::<anyhow::Result<Vec<f64>>>()
        .map(Prior::List)
}

/// Parse `--eta`: `symmetric`, `auto` or a number.
pub fn parse_eta(text: &str) -> anyhow::Result<Prior> {
    match text.trim() {
        "symmetric" => Ok(Prior::Symmetric),
        "auto" => Ok(Prior::Auto),
        other => match number(other) {
            Some(x) => Ok(Prior::Scalar(x)),
            None => bail!("--eta: expected {ETA_FORMS}, got '{text}'"),
        },
    }
}

/// A decimal number (`0.1`, `1e-3`, `2`), surrounding spaces allowed. Words that Rust
/// would read as numbers (`inf`, `NaN`) are not numbers here.
fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    let looks_numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    if text.is_empty() || !looks_numeric {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alpha_err(text: &str) -> String {
        parse_alpha(text).unwrap_err().to_string()
    }

    #[test]
    fn alpha_keywords_numbers_and_lists() {
        assert_eq!(parse_alpha("symmetric").unwrap(), Prior::Symmetric);
        assert_eq!(parse_alpha("asymmetric").unwrap(), Prior::Asymmetric);
        assert_eq!(parse_alpha("auto").unwrap(), Prior::Auto);
        assert_eq!(parse_alpha("0.1").unwrap(), Prior::Scalar(0.1));
        assert_eq!(parse_alpha(" 2 ").unwrap(), Prior::Scalar(2.0));
        assert_eq!(parse_alpha("1e-3").unwrap(), Prior::Scalar(0.001));
        assert_eq!(
            parse_alpha("0.1,0.2, 0.3").unwrap(),
            Prior::List(vec![0.1, 0.2, 0.3])
        );
        // Ranges are the daemon's business: a negative value parses.
        assert_eq!(parse_alpha("-1").unwrap(), Prior::Scalar(-1.0));
    }

    #[test]
    fn alpha_round_trips_through_display() {
        for prior in [
            Prior::Symmetric,
            Prior::Asymmetric,
            Prior::Auto,
            Prior::Scalar(0.25),
            Prior::List(vec![0.5, 1.0, 1e-3]),
        ] {
            assert_eq!(parse_alpha(&prior.to_string()).unwrap(), prior);
        }
    }

    #[test]
    fn alpha_errors_say_what_is_expected() {
        assert_eq!(
            alpha_err("foo"),
            "--alpha: expected symmetric, asymmetric, auto, a number or a comma-separated \
             list of numbers, got 'foo'"
        );
        assert_eq!(
            alpha_err(""),
            "--alpha: expected symmetric, asymmetric, auto, a number or a comma-separated \
             list of numbers, got ''"
        );
        assert!(alpha_err("Symmetric").ends_with("got 'Symmetric'"));
        assert!(alpha_err("inf").ends_with("got 'inf'"));
    }

    #[test]
    fn alpha_list_errors_name_the_item() {
        assert_eq!(
            alpha_err("0.1,x,0.3"),
            "--alpha: expected a comma-separated list of numbers, but item 2 of 3 'x' is not \
             a number in '0.1,x,0.3'"
        );
        assert_eq!(
            alpha_err("0.1,,0.3"),
            "--alpha: expected a comma-separated list of numbers, but item 2 of 3 is empty in \
             '0.1,,0.3'"
        );
        assert_eq!(
            alpha_err("0.1,0.2,"),
            "--alpha: expected a comma-separated list of numbers, but item 3 of 3 is empty in \
             '0.1,0.2,'"
        );
        assert!(alpha_err("auto,0.1").contains("item 1 of 2 'auto' is not a number"));
        assert!(alpha_err("0.1,nan").contains("item 2 of 2 'nan' is not a number"));
    }

    #[test]
    fn eta_takes_symmetric_auto_or_a_number() {
        assert_eq!(parse_eta("symmetric").unwrap(), Prior::Symmetric);
        assert_eq!(parse_eta("auto").unwrap(), Prior::Auto);
        assert_eq!(parse_eta("0.01").unwrap(), Prior::Scalar(0.01));
        let expected =
            |got: &str| format!("--eta: expected symmetric, auto or a number, got '{got}'");
        for bad in ["asymmetric", "0.1,0.2", "lots", ""] {
            assert_eq!(parse_eta(bad).unwrap_err().to_string(), expected(bad));
        }
    }
}
