//! `topicctl submit lda|lsi --init-from JOB`: a finished LDA model continued with new
//! documents as gensim's `LdaModel.update` continues one (against gensim itself where a
//! Python with gensim is found), identical after kill -9, independent of its source once
//! submitted; documents added to a one-pass LSI model as gensim's `add_documents` adds them
//! (the model of both corpora; gensim's spectrum); and the submits it refuses.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::lda::{generated_corpus, lda_export};

/// Two corpora of the same topics and dictionary (half A of 600 documents and half B of
/// `docs_b`), in `dir`.
fn halves(dir: &Path, docs_b: usize) -> (PathBuf, PathBuf, PathBuf) {
    let (a, b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (corpus_a, dictionary) = generated_corpus(&a, 4, 600, 11);
    let (corpus_b, _) = generated_corpus(&b, 4, docs_b, 12);
    (corpus_a, corpus_b, dictionary)
}

/// `export --format npy` of `job` into a new directory of the daemon's; returns it.
fn export_dir(d: &Daemon, job: u64, name: &str) -> PathBuf {
    let out = d.dir.path().join(name);
    d.ok(&[
        "export",
        &job.to_string(),
        "--format",
        "npy",
        "--out",
        out.to_str().unwrap(),
    ]);
    out
}

/// Largest `|x − y| / max(|y|, 1e-3)` over two arrays of the same shape.
fn largest_relative_difference(x: &Path, y: &Path) -> f64 {
    let ((xs, x), (ys, y)) = (
        read_npy(&std::fs::read(x).unwrap()),
        read_npy(&std::fs::read(y).unwrap()),
    );
    assert_eq!(xs, ys, "{} and {} differ in shape", x.len(), y.len());
    x.iter()
        .zip(&y)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1e-3))
        .fold(0.0, f64::max)
}

#[test]
fn a_model_continued_with_init_from_equals_gensims_update() {
    let python = match gensim_python() {
        Ok(p) => p,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let (corpus_a, corpus_b, dictionary) = halves(dir.path(), 500);
    let d = Daemon::start(&[]);
    // α and η learnt (their values carried on and learnt further), a tight E-step so that
    // gensim's random start of γ (numpy's, not topicd's) does not matter
    let e_step = ["--iterations", "1000", "--gamma-threshold", "1e-12"];
    let mut first = vec![
        "--topics",
        "4",
        "--chunksize",
        "100",
        "--alpha",
        "auto",
        "--eta",
        "auto",
        "--eval-every",
        "0",
        "--seed",
        "3",
    ];
    first.extend(e_step);
    let source = d.submit_lda(&corpus_a, &dictionary, &first);
    assert_eq!(d.wait(source), "succeeded", "{}", d.log());
    let source_dir = export_dir(&d, source, "source");
    let source_id = source.to_string();
    let mut next = vec![
        "--init-from",
        &source_id,
        "--chunksize",
        "100",
        "--passes",
        "2",
        "--eval-every",
        "0",
    ];
    next.extend(e_step);
    let job = d.submit_lda(&corpus_b, &dictionary, &next);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let status = d.status(job);
    assert_eq!(status["spec"]["init_from"]["job"], source, "{status}");
    assert_eq!(status["spec"]["init_from"]["docs_before"], 600, "{status}");
    let ours = export_dir(&d, job, "continued");
    let theirs = dir.path().join("gensim");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/gensim_update.py");
    let out = Command::new(&python)
        .arg(&script)
        .args([
            source_dir.to_str().unwrap(),
            "600",
            corpus_b.to_str().unwrap(),
        ])
        .arg(&theirs)
        .args(["100", "2", "1", "auto", "auto"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for array in ["lambda.npy", "alpha.npy", "eta.npy"] {
        let diff = largest_relative_difference(&ours.join(array), &theirs.join(array));
        println!("{array}: largest relative difference from gensim {diff:.2e}");
        assert!(
            diff < 1e-9,
            "{array} differs from gensim's update by {diff:.2e}"
        );
    }
    // and the continuation is not the source model itself
    let moved =
        largest_relative_difference(&ours.join("lambda.npy"), &source_dir.join("lambda.npy"));
    assert!(
        moved > 1e-2,
        "the continued model did not move: {moved:.2e}"
    );
}

#[test]
fn a_continued_model_survives_kill_9_and_the_removal_of_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus_a, corpus_b, dictionary) = halves(dir.path(), 3000);
    let first = [
        "--topics",
        "4",
        "--chunksize",
        "50",
        "--alpha",
        "auto",
        "--seed",
        "5",
    ];
    let next = [
        "--init-from",
        "1",
        "--chunksize",
        "20",
        "--update-every",
        "3",
        "--passes",
        "3",
    ];
    let reference = {
        let d = Daemon::start(&[]);
        let source = d.submit_lda(&corpus_a, &dictionary, &first);
        assert_eq!(d.wait(source), "succeeded", "{}", d.log());
        let job = d.submit_lda(&corpus_b, &dictionary, &next);
        assert_eq!(d.wait(job), "succeeded", "{}", d.log());
        lda_export(&d, job)
    };
    let mut d = Daemon::start(&["--checkpoint-interval", "0"]);
    let source = d.submit_lda(&corpus_a, &dictionary, &first);
    assert_eq!(d.wait(source), "succeeded", "{}", d.log());
    let job = d.submit_lda(&corpus_b, &dictionary, &next);
    // the new job copied what it needs at submit: its source may go
    d.ok(&["rm", &source.to_string()]);
    for threshold in [1_300, 5_100] {
        let before = d.wait_until(job, 120, |s| {
            work_done(s) >= threshold || s["state"] != "running"
        });
        d.kill9();
        assert_eq!(before["state"], "running", "killed mid-run: {before}");
        d.restart();
    }
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert!(
        lda_export(&d, job) == reference,
        "the continued model after kill -9 and rm of its source differs from the uninterrupted one"
    );
}

fn refused(d: &Daemon, corpus: &Path, dictionary: &Path, extra: &[&str]) -> String {
    let out = d.ctl(&Daemon::submit_args("lda", corpus, dictionary, extra));
    assert!(!out.status.success(), "{extra:?} was accepted");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

#[test]
fn init_from_refuses_what_cannot_be_continued_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus_a, corpus_b, dictionary) = halves(dir.path(), 500);
    let d = Daemon::start(&[]);
    let missing = refused(&d, &corpus_b, &dictionary, &["--init-from", "7"]);
    assert!(
        missing.contains("--init-from 7: there is no such job"),
        "{missing}"
    );
    let lsi = d.submit_lsi(&corpus_a, &dictionary, &["--topics", "2"]);
    assert_eq!(d.wait(lsi), "succeeded", "{}", d.log());
    let message = refused(
        &d,
        &corpus_b,
        &dictionary,
        &["--init-from", &lsi.to_string()],
    );
    assert!(
        message.contains("the job is lsi: a lda job continues only a lda model"),
        "{message}"
    );
    // an LSI model takes documents in one pass (topicctl says so before sending)
    let out = d.ctl(&Daemon::submit_args(
        "lsi",
        &corpus_b,
        &dictionary,
        &["--init-from", &lsi.to_string()],
    ));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && message.contains("--onepass"),
        "{message}"
    );
    // and its documents weighted as the source's were
    let out = d.ctl(&Daemon::submit_args(
        "lsi",
        &corpus_b,
        &dictionary,
        &["--init-from", &lsi.to_string(), "--onepass", "--tfidf"],
    ));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains("documents were not weighted (no --tfidf)"),
        "{message}"
    );
    // a job still training (thousands of passes) is refused, then cancelled
    let long = ["--topics", "4", "--chunksize", "10", "--passes", "10000"];
    let running = d.submit_lda(&corpus_a, &dictionary, &long);
    let message = refused(
        &d,
        &corpus_b,
        &dictionary,
        &["--init-from", &running.to_string()],
    );
    assert!(
        message.contains("not succeeded: only a finished model can be continued"),
        "{message}"
    );
    d.ok(&["cancel", &running.to_string()]);
    let lda = d.submit_lda(
        &corpus_a,
        &dictionary,
        &["--topics", "4", "--chunksize", "50"],
    );
    assert_eq!(d.wait(lda), "succeeded", "{}", d.log());
    // the topics are the source's: --topics with --init-from is refused by topicctl
    let both = refused(
        &d,
        &corpus_b,
        &dictionary,
        &["--init-from", &lda.to_string(), "--topics", "5"],
    );
    assert!(both.contains("cannot be used with"), "{both}");
    // another dictionary: the same words under other ids
    let shuffled = dir.path().join("shuffled_wordids.txt");
    let text = std::fs::read_to_string(&dictionary).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let (first, second) = (
        lines[0].replacen("0\t", "1\t", 1),
        lines[1].replacen("1\t", "0\t", 1),
    );
    lines[0] = &second;
    lines[1] = &first;
    std::fs::write(&shuffled, lines.join("\n") + "\n").unwrap();
    let message = refused(&d, &corpus_b, &shuffled, &["--init-from", &lda.to_string()]);
    assert!(
        message.contains("the dictionary is not the one the model was trained with")
            && message.contains("id 0 is \"t0w0\" there and \"t0w1\" here"),
        "{message}"
    );
}

/// `a` then `b`, two Matrix Market corpora over the same terms, as one corpus in `out`.
fn concatenated(a: &Path, b: &Path, out: &Path) -> PathBuf {
    let read = |p: &Path| -> (usize, usize, Vec<(usize, String)>) {
        let text = std::fs::read_to_string(p).unwrap();
        let mut lines = text.lines().filter(|l| !l.starts_with('%'));
        let header: Vec<usize> = lines
            .next()
            .unwrap()
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let entries = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (doc, rest) = l.split_once(' ').unwrap();
                (doc.parse().unwrap(), rest.to_string())
            })
            .collect();
        (header[0], header[1], entries)
    };
    let ((docs_a, terms, first), (docs_b, _, second)) = (read(a), read(b));
    let mut text = format!(
        "%%MatrixMarket matrix coordinate real general\n{} {terms} {}\n",
        docs_a + docs_b,
        first.len() + second.len()
    );
    for (doc, rest) in first {
        text.push_str(&format!("{doc} {rest}\n"));
    }
    for (doc, rest) in second {
        text.push_str(&format!("{} {rest}\n", doc + docs_a));
    }
    let path = out.join("both.mm");
    std::fs::write(&path, text).unwrap();
    path
}

/// The singular values of an LSI job, from `export --format npy`.
fn spectrum(d: &Daemon, job: u64) -> Vec<f64> {
    read_npy(&d.export_npy(job).1).1
}

#[test]
fn an_lsi_model_with_documents_added_by_init_from_is_the_model_of_both_corpora() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus_a, corpus_b, dictionary) = halves(dir.path(), 500);
    let both = concatenated(&corpus_a, &corpus_b, dir.path());
    let d = Daemon::start(&[]);
    let args = [
        "--topics",
        "4",
        "--onepass",
        "--chunksize",
        "100",
        "--extra-samples",
        "20",
    ];
    let source = d.submit_lsi(&corpus_a, &dictionary, &args);
    assert_eq!(d.wait(source), "succeeded", "{}", d.log());
    let continued = d.submit_lsi(
        &corpus_b,
        &dictionary,
        &[
            "--init-from",
            &source.to_string(),
            "--onepass",
            "--chunksize",
            "100",
        ],
    );
    assert_eq!(d.wait(continued), "succeeded", "{}", d.log());
    let whole = d.submit_lsi(
        &both,
        &dictionary,
        &["--topics", "4", "--extra-samples", "20"],
    );
    assert_eq!(d.wait(whole), "succeeded", "{}", d.log());
    let (ours, exact, before) = (
        spectrum(&d, continued),
        spectrum(&d, whole),
        spectrum(&d, source),
    );
    println!("continued {ours:?}\nwhole corpus {exact:?}\nsource {before:?}");
    assert_eq!(ours.len(), 4);
    for (x, y) in ours.iter().zip(&exact) {
        assert!((x - y).abs() < 1e-3 * y, "{ours:?} against {exact:?}");
    }
    assert!(
        ours[0] > before[0] * 1.2,
        "{ours:?} against the source's {before:?}"
    );
    // with decay: as gensim's add_documents, where a Python with gensim is found
    let python = match gensim_python() {
        Ok(p) => p,
        Err(why) => {
            println!("skipped the comparison with gensim: {why}");
            return;
        }
    };
    let decayed = [
        "--topics",
        "4",
        "--onepass",
        "--chunksize",
        "100",
        "--decay",
        "0.9",
    ];
    let source = d.submit_lsi(&corpus_a, &dictionary, &decayed);
    assert_eq!(d.wait(source), "succeeded", "{}", d.log());
    let continued = d.submit_lsi(
        &corpus_b,
        &dictionary,
        &[
            "--init-from",
            &source.to_string(),
            "--onepass",
            "--chunksize",
            "100",
            "--decay",
            "0.9",
        ],
    );
    assert_eq!(d.wait(continued), "succeeded", "{}", d.log());
    let ours = spectrum(&d, continued);
    // gensim's one-pass LSI of A, then add_documents(B)
    let script = "import sys\nfrom gensim.corpora import MmCorpus\nfrom gensim.models import LsiModel\n\
         m = LsiModel(MmCorpus(sys.argv[1]), num_topics=4, chunksize=100, decay=0.9, \
         onepass=True, extra_samples=100, power_iters=3, random_seed=0)\n\
         m.add_documents(MmCorpus(sys.argv[2]), chunksize=100, decay=0.9)\n\
         print(' '.join(repr(float(x)) for x in m.projection.s))";
    let out = Command::new(&python)
        .args(["-c", script])
        .args([&corpus_a, &corpus_b])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<f64> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    println!("decay 0.9: topicd {ours:?}, gensim {theirs:?}");
    for (x, y) in ours.iter().zip(&theirs) {
        assert!(
            (x - y).abs() < 1e-3 * y,
            "{ours:?} against gensim's {theirs:?}"
        );
    }
}

#[test]
fn lsi_documents_added_by_init_from_survive_kill_9_and_the_removal_of_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus_a, corpus_b, dictionary) = halves(dir.path(), 3000);
    let first = [
        "--topics",
        "4",
        "--onepass",
        "--chunksize",
        "100",
        "--decay",
        "0.95",
    ];
    let next = [
        "--init-from",
        "1",
        "--onepass",
        "--chunksize",
        "20",
        "--decay",
        "0.95",
    ];
    let reference = {
        let d = Daemon::start(&[]);
        let source = d.submit_lsi(&corpus_a, &dictionary, &first);
        assert_eq!(d.wait(source), "succeeded", "{}", d.log());
        let job = d.submit_lsi(&corpus_b, &dictionary, &next);
        assert_eq!(d.wait(job), "succeeded", "{}", d.log());
        d.export_npy(job)
    };
    let mut d = Daemon::start(&["--checkpoint-interval", "0"]);
    let source = d.submit_lsi(&corpus_a, &dictionary, &first);
    assert_eq!(d.wait(source), "succeeded", "{}", d.log());
    let job = d.submit_lsi(&corpus_b, &dictionary, &next);
    d.ok(&["rm", &source.to_string()]);
    for threshold in [600, 1_800] {
        let before = d.wait_until(job, 120, |s| {
            work_done(s) >= threshold || s["state"] != "running"
        });
        d.kill9();
        assert_eq!(before["state"], "running", "killed mid-run: {before}");
        d.restart();
    }
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert!(
        d.export_npy(job) == reference,
        "the LSI model after kill -9 and rm of its source differs from the uninterrupted one"
    );
}
