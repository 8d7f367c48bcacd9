//! `topicctl topics`: a job's topics (its finished model's, or its last checkpoint's), one
//! line each. LSI's lines are gensim's `print_topics` format, the number in parentheses
//! being the factor's singular value; LDA's label theirs as the topic's α
//! (`topic #0 (α=0.100): ...`), since it is not a weight of the same kind. With `--json`,
//! each topic names its number the same way (`singular_value` or `alpha`) besides the
//! protocol's `weight`.

use std::fmt::Write as _;

use serde::Serialize;
use topicd_protocol::{JobId, Topic};

use crate::daemon::Daemon;
use crate::output;

/// What `--num-topics all` sends: the daemon gives at most the topics the model has.
pub const ALL_TOPICS: u32 = u32::MAX;

/// `--num-topics`: a number of topics, 1 or more, or `all`.
pub fn parse_num_topics(text: &str) -> Result<u32, String> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(ALL_TOPICS);
    }
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "expected a number of topics (1 or more) or 'all', got '{text}'"
        )),
    }
}

/// One topic as `--json` prints it.
#[derive(Serialize)]
struct TopicJson<'a> {
    /// The topic's number.
    id: u32,
    /// The protocol's weight: the singular value (LSI) or α (LDA).
    weight: f64,
    /// LSI: the factor's singular value.
    #[serde(skip_serializing_if = "Option::is_none")]
    singular_value: Option<f64>,
    /// LDA: the topic's α.
    #[serde(skip_serializing_if = "Option::is_none")]
    alpha: Option<f64>,
    /// The words, strongest first.
    words: &'a [(String, f64)],
}

impl<'a> TopicJson<'a> {
    fn new(topic: &'a Topic, lda: bool) -> TopicJson<'a> {
        TopicJson {
            id: topic.id,
            weight: topic.weight,
            singular_value: (!lda).then_some(topic.weight),
            alpha: lda.then_some(topic.weight),
            words: &topic.words,
        }
    }
}

/// A topic's line: gensim's for LSI (`topic #0(3.341): 0.644*"system" + ...`), with α
/// labelled for LDA (`topic #0 (α=0.100): 0.051*"system" + ...`); made printable.
pub fn topic_line(topic: &Topic, lda: bool) -> String {
    if !lda {
        return output::printable(&topic.to_string());
    }
    let mut line = format!("topic #{} (α={:.3}): ", topic.id, topic.weight);
    for (i, (word, weight)) in topic.words.iter().enumerate() {
        if i > 0 {
            line.push_str(" + ");
        }
        let _ = write!(line, "{weight:.3}*\"{word}\"");
    }
    output::printable(&line)
}

/// Print the first `num_topics` topics ([`ALL_TOPICS`]: all of them) with `words` words
/// each, or them as a JSON array.
pub async fn run(
    daemon: &Daemon,
    job: JobId,
    choice: super::model_source::ModelChoice,
    num_topics: u32,
    words: u32,
    json: bool,
) -> anyhow::Result<()> {
    let lda = super::model_source::model_info(daemon, job, choice)
        .await?
        .kind
        == "lda";
    let topics = daemon.topics(job, num_topics, words).await?;
    if json {
        let topics: Vec<TopicJson> = topics.iter().map(|t| TopicJson::new(t, lda)).collect();
        return output::print_json(&topics);
    }
    let mut text = String::new();
    for topic in &topics {
        text.push_str(&topic_line(topic, lda));
        text.push('\n');
    }
    Ok(output::print(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(weight: f64) -> Topic {
        Topic {
            id: 2,
            weight,
            words: vec![("system".into(), 0.644), ("user\n".into(), -0.404)],
        }
    }

    #[test]
    fn lsi_lines_are_gensims_and_lda_lines_label_alpha() {
        assert_eq!(
            topic_line(&topic(3.3414), false),
            "topic #2(3.341): 0.644*\"system\" + -0.404*\"user?\""
        );
        assert_eq!(
            topic_line(&topic(0.1), true),
            "topic #2 (α=0.100): 0.644*\"system\" + -0.404*\"user?\""
        );
        let no_words = Topic {
            words: vec![],
            ..topic(0.25)
        };
        assert_eq!(topic_line(&no_words, true), "topic #2 (α=0.250): ");
    }

    #[test]
    fn json_names_the_number() {
        let t = topic(0.1);
        let lda = serde_json::to_value(TopicJson::new(&t, true)).unwrap();
        assert_eq!(
            lda,
            serde_json::json!({"id": 2, "weight": 0.1, "alpha": 0.1,
                               "words": [["system", 0.644], ["user\n", -0.404]]})
        );
        let lsi = serde_json::to_value(TopicJson::new(&t, false)).unwrap();
        assert_eq!(lsi["singular_value"], 0.1);
        assert!(lsi.get("alpha").is_none());
    }

    #[test]
    fn num_topics_is_a_positive_number_or_all() {
        assert_eq!(parse_num_topics("5"), Ok(5));
        assert_eq!(parse_num_topics("all"), Ok(ALL_TOPICS));
        assert_eq!(parse_num_topics("ALL"), Ok(ALL_TOPICS));
        for bad in ["0", "-1", "some", ""] {
            assert_eq!(
                parse_num_topics(bad),
                Err(format!(
                    "expected a number of topics (1 or more) or 'all', got '{bad}'"
                ))
            );
        }
    }
}
