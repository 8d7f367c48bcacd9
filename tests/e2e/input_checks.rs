//! What `submit` and `resume` check before a job is queued, so that a job that would fail or
//! train a wrong model is refused with the reason: the pairing of corpus and dictionary, a
//! corpus of counts where the job needs counts, the inputs again at resume. And TF-IDF
//! weighting done by the daemon (`--tfidf`), to gensim's bits.

use std::path::Path;

use crate::common::*;
use crate::inputs::counts_corpus;

/// Runs a submit that must be refused; returns topicctl's message.
fn refused(d: &Daemon, kind: &str, corpus: &Path, dictionary: &Path, extra: &[&str]) -> String {
    let out = d.ctl(&Daemon::submit_args(kind, corpus, dictionary, extra));
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert!(!out.status.success(), "accepted: {stderr}");
    stderr
}

/// A dictionary with more terms than the corpus declares is, most often, the dictionary of
/// another corpus (gensim trains on such a pair and prints topics of unrelated words); it is
/// refused with both sizes, and accepted with `--unused-terms` for gensim's corpora serialised
/// without `id2word`.
#[test]
fn a_dictionary_larger_than_its_corpus_is_refused_unless_unused_ids_are_accepted() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (corpus, _) = counts_corpus(dir.path(), "c", 30, 8);
    let (_, larger) = counts_corpus(dir.path(), "other", 30, 10);
    let message = refused(&d, "lda", &corpus, &larger, &["--topics", "2"]);
    assert_eq!(
        message,
        format!(
            "topicctl: invalid job: {}: the dictionary has 10 terms (ids up to 9), but the \
             corpus {} declares 8: is it the dictionary of another corpus? If it is this \
             corpus's own and the corpus was serialised without id2word (gensim then counts \
             only the terms up to the largest id used), accept the unused ids with \
             --unused-terms",
            larger.display(),
            corpus.display()
        )
    );
    let job = d.submit_lda(&corpus, &larger, &["--topics", "2", "--unused-terms"]);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let status = d.ok(&["status", &job.to_string()]);
    assert!(status.contains("unused_terms"), "{status}");

    // The case found by a user: the news corpus with the gcide dictionary.
    if let (Some(news), Some(gcide)) = (
        shared_data("news_bow.mm.gz"),
        shared_data("gcide_wordids.txt.gz"),
    ) {
        let message = refused(&d, "lda", &news, &gcide, &["--topics", "10"]);
        assert!(
            message.contains("the dictionary has 39305 terms (ids up to 39304), but the corpus")
                && message.contains("declares 20307"),
            "{message}"
        );
    }
}

/// LDA and TF-IDF weighting need counts: a TF-IDF corpus is refused at submit (the first
/// documents are read), not when the job starts.
#[test]
fn a_tfidf_corpus_is_refused_at_submit_where_counts_are_needed() {
    let d = Daemon::start(&[]);
    let (tfidf, dictionary) = (
        examples().join("planted_tfidf.mm.gz"),
        examples().join("planted_wordids.txt"),
    );
    for (kind, extra) in [("lda", &[][..]), ("lsi", &["--tfidf"][..])] {
        let args = [&["--topics", "5"][..], extra].concat();
        let message = refused(&d, kind, &tfidf, &dictionary, &args);
        assert!(
            message.starts_with(&format!(
                "topicctl: invalid job: {}: line 3:",
                tfidf.display()
            )) && message.contains("is not a whole number")
                && message.contains("is this a TF-IDF corpus?"),
            "{kind}: {message}"
        );
    }
    assert!(!d.ok(&["list"]).contains("planted"));
    // LSI takes it as it is
    let job = d.submit_lsi(&tfidf, &dictionary, &["--topics", "5"]);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
}

/// `resume` checks the inputs again: a corpus that changed since the submit is refused (the
/// job stays as it was), the submitted one is accepted.
#[test]
fn resume_checks_the_inputs_again() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // A bad value after the documents read at submit: the job is accepted and fails.
    let (corpus, dictionary) = counts_corpus(dir.path(), "c", 2500, 40);
    let good = std::fs::read_to_string(&corpus).unwrap();
    let (head, last_line) = good.trim_end().rsplit_once('\n').unwrap();
    let broken = format!("{head}\n{} x\n", last_line.rsplit_once(' ').unwrap().0);
    std::fs::write(&corpus, &broken).unwrap();
    let job = d.submit_lsi(
        &corpus,
        &dictionary,
        &["--topics", "2", "--chunksize", "500"],
    );
    assert_eq!(d.wait(job), "failed", "{}", d.log());
    let reason = d.status(job)["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("value 'x' is not a number"), "{reason}");

    // Repaired in place: not the corpus the job was submitted with.
    std::fs::write(&corpus, &good).unwrap();
    let out = d.ctl(&["resume", &job.to_string()]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        message.contains(&format!("job {job} (failed): cannot be resumed: {}: the corpus changed since the job was submitted", corpus.display())),
        "{message}"
    );
    assert_eq!(d.status(job)["state"], "failed");

    // The submitted bytes again: resumed (and failing again on the same line).
    std::fs::write(&corpus, &broken).unwrap();
    d.ok(&["resume", &job.to_string()]);
    assert_eq!(d.wait(job), "failed", "{}", d.log());
}

/// `--tfidf` weights a corpus of counts as gensim's `TfidfModel` does, to the bit: LSI on
/// gensim's bag of words with `--tfidf` is the model of gensim's own TF-IDF corpus; and
/// `infer` on such a model takes counts.
#[test]
fn lsi_with_tfidf_on_counts_trains_the_model_of_gensims_tfidf_corpus() {
    let (Some(bow), Some(tfidf), Some(dictionary)) = (
        shared_data("lee_bow.mm.gz"),
        shared_data("lee_tfidf.mm.gz"),
        shared_data("lee_wordids.txt.gz"),
    ) else {
        return;
    };
    let d = Daemon::start(&[]);
    let weighted = d.submit_lsi(&bow, &dictionary, &["--topics", "10", "--tfidf"]);
    let given = d.submit_lsi(&tfidf, &dictionary, &["--topics", "10"]);
    for job in [weighted, given] {
        assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    }
    assert_eq!(d.export_npy(weighted), d.export_npy(given));
    assert!(
        d.ok(&["status", &weighted.to_string()])
            .contains("tfidf          true")
    );

    // infer: counts into the weighted model give what the TF-IDF vectors give the other
    let dir = tempfile::tempdir().unwrap();
    let infer = |job: u64, corpus: &Path, name: &str| {
        let out = dir.path().join(name);
        d.ok(&[
            "infer",
            &job.to_string(),
            "--corpus",
            corpus.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        std::fs::read_to_string(out).unwrap()
    };
    let from_counts = infer(weighted, &bow, "counts.tsv");
    assert_eq!(from_counts, infer(given, &tfidf, "tfidf.tsv"));
    assert_eq!(from_counts.lines().count(), 300);
}

/// One corpus in UCI bag-of-words, LDA-C and SVMlight, with a vocabulary (one word a line):
/// each format, recognised by its content, trains the model of its Matrix Market twin, bit
/// for bit, and `status` says what was found; a format given that the file does not fit is
/// refused, saying what it looks like.
#[test]
fn uci_ldac_and_svmlight_corpora_train_the_model_of_their_matrix_market_twin() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (mm, dictionary) = counts_corpus(dir.path(), "c", 60, 12);
    let docs = mm_documents(&mm);
    let vocab = dir.path().join("vocab.c.txt");
    let words: String = (0..12).map(|t| format!("word{t}\n")).collect();
    std::fs::write(&vocab, words).unwrap();
    let nnz: usize = docs.iter().map(Vec::len).sum();
    let mut uci = format!("{}\n12\n{nnz}\n", docs.len());
    let (mut ldac, mut svm) = (String::new(), String::new());
    for (i, doc) in docs.iter().enumerate() {
        ldac.push_str(&doc.len().to_string());
        svm.push_str("+1");
        for &(t, c) in doc {
            uci.push_str(&format!("{} {} {c}\n", i + 1, t + 1));
            ldac.push_str(&format!(" {t}:{c}"));
            svm.push_str(&format!(" {}:{c}", t + 1));
        }
        ldac.push('\n');
        svm.push('\n');
    }
    let corpora = [
        ("uci", "docword.c.txt", uci),
        ("ldac", "c.dat", ldac),
        ("svmlight", "c.svm", svm),
    ];
    let args = ["--topics", "3", "--chunksize", "16", "--alpha", "auto"];
    let twin = d.submit_lda(&mm, &dictionary, &args);
    assert_eq!(d.wait(twin), "succeeded", "{}", d.log());
    let lambda = |job: u64| {
        let mut arrays = d.export_arrays(job);
        arrays.retain(|name, _| name != "dfs.npy");
        arrays
    };
    let expected = lambda(twin);
    for (name, file, text) in corpora {
        let corpus = dir.path().join(file);
        std::fs::write(&corpus, text).unwrap();
        let job = d.submit_lda(&corpus, &vocab, &args);
        assert_eq!(d.wait(job), "succeeded", "{name}: {}", d.log());
        assert_eq!(lambda(job), expected, "{name}");
        let status = d.ok(&["status", &job.to_string()]);
        let format = status
            .lines()
            .find(|l| l.trim_start().starts_with("format "));
        assert_eq!(
            format.map(|l| l.split_whitespace().last()),
            Some(Some(name))
        );
    }
    let message = refused(
        &d,
        "lda",
        &mm,
        &dictionary,
        &["--topics", "3", "--format", "uci"],
    );
    assert!(
        message.contains("looks like Matrix Market, not UCI"),
        "{message}"
    );
}

/// A dictionary saved with gensim's `Dictionary.save` (a pickle) is refused at submit with
/// what to do instead.
#[test]
fn a_pickled_dictionary_is_refused_at_submit_saying_how_to_write_a_text_one() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (corpus, _) = counts_corpus(dir.path(), "c", 30, 8);
    let pickle = dir.path().join("c.dict");
    std::fs::write(
        &pickle,
        b"\x80\x04\x95\x10\x01\x00\x00\x00\x00\x00\x00\x8c\x18gensim.corpora.dictionary",
    )
    .unwrap();
    let message = refused(&d, "lda", &corpus, &pickle, &["--topics", "2"]);
    assert!(
        message.contains("this is a pickled gensim Dictionary")
            && message.contains("dictionary.save_as_text(path)"),
        "{message}"
    );
}
