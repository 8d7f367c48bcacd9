//! The dictionary, paged from the daemon: `dictionary.txt` in gensim's text format, and
//! `vocab.json` (every id's token, for pyLDAvis).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use topicd_protocol::{JobId, ModelInfo};

use super::{commit, create, pages};
use crate::daemon::Daemon;

/// `out/dictionary.txt` in gensim's text format (`Dictionary.save_as_text`, read by
/// `Dictionary.load_from_text`): the number of documents on the first line when the
/// dictionary has one, then `id<TAB>token<TAB>document frequency` lines.
pub async fn write_text(
    daemon: &Daemon,
    job: JobId,
    model: &ModelInfo,
    out: &Path,
) -> anyhow::Result<PathBuf> {
    let path = out.join("dictionary.txt");
    let context = || format!("cannot write {}", path.display());
    let mut file = create(&path)?;
    if let Some(num_docs) = model.dictionary_num_docs {
        writeln!(file, "{num_docs}").with_context(context)?;
    }
    pages::vocabulary(daemon, job, model.num_terms, |entry| {
        if entry.token.contains(['\t', '\n', '\r']) {
            bail!(
                "the token of id {} contains a tab or line break, which gensim's text format \
                 cannot hold",
                entry.id
            );
        }
        writeln!(file, "{}\t{}\t{}", entry.id, entry.token, entry.doc_freq).with_context(context)
    })
    .await?;
    commit(file, &path)?;
    Ok(path)
}

/// `out/vocab.json`: a JSON list of `num_terms` tokens, the token of id i at index i; an id
/// without a token becomes `"#i"`.
pub async fn write_vocab_json(
    daemon: &Daemon,
    job: JobId,
    model: &ModelInfo,
    out: &Path,
) -> anyhow::Result<PathBuf> {
    let path = out.join("vocab.json");
    let context = || format!("cannot write {}", path.display());
    let mut file = create(&path)?;
    let mut vocab = VocabWriter::new(&mut file);
    pages::vocabulary(daemon, job, model.num_terms, |entry| {
        vocab.token(u64::from(entry.id), &entry.token)
    })
    .await
    .and_then(|()| vocab.finish(model.num_terms))
    .with_context(context)?;
    commit(file, &path)?;
    Ok(path)
}

/// Writes a JSON list of tokens by increasing id, filling the ids without a token.
struct VocabWriter<W: Write> {
    out: W,
    /// Ids written so far.
    next: u64,
}

impl<W: Write> VocabWriter<W> {
    fn new(out: W) -> Self {
        VocabWriter { out, next: 0 }
    }

    /// The token of `id` (ids increase from call to call).
    fn token(&mut self, id: u64, token: &str) -> anyhow::Result<()> {
        self.fill(id)?;
        self.item(token)?;
        Ok(())
    }

    /// Fill the ids up to `num_terms` and close the list.
    fn finish(&mut self, num_terms: u64) -> anyhow::Result<()> {
        self.fill(num_terms)?;
        if self.next == 0 {
            self.out.write_all(b"[")?;
        }
        self.out.write_all(b"]\n")?;
        Ok(())
    }

    /// `"#id"` for every id from `next` below `id`.
    fn fill(&mut self, id: u64) -> anyhow::Result<()> {
        while self.next < id {
            self.item(&format!("#{}", self.next))?;
        }
        Ok(())
    }

    fn item(&mut self, token: &str) -> anyhow::Result<()> {
        self.out
            .write_all(if self.next == 0 { b"[" } else { b", " })?;
        serde_json::to_writer(&mut self.out, token)?;
        self.next += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(entries: &[(u64, &str)], num_terms: u64) -> String {
        let mut out = Vec::new();
        let mut vocab = VocabWriter::new(&mut out);
        for &(id, token) in entries {
            vocab.token(id, token).unwrap();
        }
        vocab.finish(num_terms).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn missing_ids_become_hash_ids() {
        assert_eq!(
            vocab(&[(1, "b"), (3, "d\"q")], 5),
            "[\"#0\", \"b\", \"#2\", \"d\\\"q\", \"#4\"]\n"
        );
        assert_eq!(vocab(&[], 0), "[]\n");
        assert_eq!(vocab(&[], 2), "[\"#0\", \"#1\"]\n");
    }
}
