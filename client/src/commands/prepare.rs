//! `prepare`: raw text to a dictionary and corpora (see [`crate::prepare`]); no daemon
//! involved. Prints what was written (a JSON object with `--json`).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rustc_hash::FxHashSet;

use crate::args::PrepareArgs;
use crate::prepare::{self, MAX_DOCUMENT, Options, Summary, Tokenizer};

/// Run `prepare` with the command line's arguments.
pub fn run(args: &PrepareArgs, json: bool) -> anyhow::Result<()> {
    let stopwords = match &args.stopwords {
        Some(path) => read_stopwords(path)?,
        None => FxHashSet::default(),
    };
    let options = Options {
        docs: args.text.clone(),
        out: args.out.clone(),
        tokenizer: Tokenizer {
            deacc: args.deacc,
            min_len: args.min_len,
            max_len: args.max_len,
            stopwords,
        },
        no_below: args.no_below,
        no_above: args.no_above,
        keep_n: args.keep_n.0,
        heldout: args.heldout,
        seed: args.seed,
        max_document: MAX_DOCUMENT,
    };
    let summary = prepare::run(&options)?;
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut stdout, &summary)?;
        writeln!(stdout)?;
    } else {
        write_summary(&mut stdout, &summary)?;
    }
    Ok(())
}

fn write_summary(out: &mut impl Write, s: &Summary) -> std::io::Result<()> {
    write!(out, "{} documents", s.documents)?;
    if s.heldout_documents > 0 {
        write!(
            out,
            " ({} for training, {} held out)",
            s.train_documents, s.heldout_documents
        )?;
    }
    writeln!(
        out,
        "; {} terms kept of {}; {} word counts, {} TF-IDF weights; {:.1} s",
        s.terms, s.tokens_before_filter, s.bow_nnz, s.tfidf_nnz, s.seconds
    )?;
    for file in &s.files {
        writeln!(out, "{}", file.display())?;
    }
    Ok(())
}

/// One stop word per line, surrounding white space removed, blank lines ignored.
pub fn read_stopwords(path: &Path) -> anyhow::Result<FxHashSet<Box<str>>> {
    let data = std::fs::read(path)
        .with_context(|| format!("{}: cannot read the stop words", path.display()))?;
    let mut words = FxHashSet::default();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let line = std::str::from_utf8(line)
            .map_err(|e| anyhow::anyhow!("{}: line {}: not UTF-8 ({e})", path.display(), i + 1))?;
        let word = line.trim();
        if !word.is_empty() {
            words.insert(word.into());
        }
    }
    Ok(words)
}
