//! `topicctl topics`: a job's topics (a finished model's, or its last checkpoint's), one line each in gensim's format.

use topicd_protocol::JobId;

use crate::daemon::Daemon;
use crate::output;

/// Print the first `num_topics` topics with `words` words each, or them as a JSON array.
pub async fn run(
    daemon: &Daemon,
    job: JobId,
    num_topics: u32,
    words: u32,
    json: bool,
) -> anyhow::Result<()> {
    super::model_source::model_info(daemon, job).await?;
    let topics = daemon.topics(job, num_topics, words).await?;
    if json {
        return output::print_json(&topics);
    }
    let mut text = String::new();
    for topic in &topics {
        text.push_str(&output::printable(&topic.to_string()));
        text.push('\n');
    }
    Ok(output::print(&text)?)
}
