//! `generate`: a synthetic corpus (see [`crate::generate`]); no daemon involved. Prints what
//! was written (a JSON object with `--json`).

use std::io::Write;

use crate::generate::{self, GenerateArgs};

/// Run `generate` with the command line's arguments.
pub fn run(args: &GenerateArgs, json: bool) -> anyhow::Result<()> {
    let s = generate::run(args)?;
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut stdout, &s)?;
        writeln!(stdout)?;
        return Ok(());
    }
    writeln!(
        stdout,
        "{} documents, {} terms ({} in no document), {} topics; {} tokens, {} word counts \
         ({:.1} per document), {} TF-IDF weights; {:.0} MB in {:.1} s ({:.0} MB/s)",
        s.documents,
        s.terms,
        s.unused_terms,
        s.topics,
        s.tokens,
        s.bow_nnz,
        s.bow_nnz as f64 / s.documents as f64,
        s.tfidf_nnz,
        s.bytes as f64 / 1e6,
        s.seconds,
        s.bytes as f64 / 1e6 / s.seconds.max(1e-9),
    )?;
    for file in &s.files {
        writeln!(stdout, "{}", file.display())?;
    }
    Ok(())
}
