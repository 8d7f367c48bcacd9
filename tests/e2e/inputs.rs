//! Input safety: what a client can make the daemon read. FIFOs and devices refused at
//! submit, files read only through descriptors the client passed (a client that cannot read
//! a file cannot make a root daemon read it, nor see a line of it), a resumed job that
//! verifies a re-opened path before reading it, and dictionaries that do not fit the corpus.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use topicd_protocol::{ApiError, InputSpec, JobId, JobSpec, LsiParams, ModelSpec};

use crate::common::*;

/// What the secret files hold; it must appear in no output.
const MARKER: &str = "SECRET-7f3a9c";

/// A corpus of whole-number counts (fit for LSI and LDA) and its dictionary:
/// `docs` documents over `terms` terms.
pub(crate) fn counts_corpus(
    dir: &Path,
    name: &str,
    docs: usize,
    terms: usize,
) -> (PathBuf, PathBuf) {
    let mut lines = Vec::new();
    for d in 1..=docs {
        let mut ids: Vec<usize> = (0..4).map(|i| (d * (i + 3) + i * 7) % terms + 1).collect();
        ids.sort_unstable();
        ids.dedup();
        lines.extend(ids.iter().map(|t| format!("{d} {t} {}", 1 + (d + t) % 3)));
    }
    let corpus = dir.join(format!("{name}.mm"));
    let header = format!("{docs} {terms} {}", lines.len());
    let text = format!(
        "%%MatrixMarket matrix coordinate real general\n{header}\n{}\n",
        lines.join("\n")
    );
    std::fs::write(&corpus, text).unwrap();
    let dictionary = dir.join(format!("{name}_wordids.txt"));
    let entries: String = (0..terms).map(|t| format!("{t}\tword{t}\t1\n")).collect();
    std::fs::write(&dictionary, format!("{docs}\n{entries}")).unwrap();
    (corpus, dictionary)
}

/// A file readable by its owner (root) alone, holding [`MARKER`].
fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    path
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A client that speaks the protocol itself (not topicctl): passes `files` under the paths
/// given, then submits `spec`. The outer error is the transport's (deadline, connection).
fn raw_submit(
    socket: &Path,
    files: &[(&Path, &File)],
    spec: JobSpec,
) -> Result<Result<JobId, ApiError>, String> {
    block_on(async {
        let passed: Vec<_> = files.iter().map(|(p, f)| (*p, f.as_fd())).collect();
        let client = topicd_protocol::connect(socket, &passed)
            .await
            .map_err(|e| e.to_string())?;
        client
            .submit(tarpc::context::current(), spec)
            .await
            .map_err(|e| e.to_string())
    })
}

fn lsi_spec(corpus: &Path, dictionary: &Path) -> JobSpec {
    JobSpec {
        corpus: corpus.to_path_buf(),
        dictionary: dictionary.to_path_buf(),
        seed: 0,
        model: ModelSpec::Lsi(LsiParams {
            num_topics: 2,
            ..LsiParams::default()
        }),
        input: InputSpec::default(),
        init_from: None,
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_fifo_or_a_device_is_refused_at_submit_at_once() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (_, dictionary) = counts_corpus(dir.path(), "c", 10, 8);
    let fifo = dir.path().join("fifo.mm");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );

    // topicctl refuses them itself.
    for (corpus, kind) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
    ] {
        let started = Instant::now();
        let out = d.ctl(&Daemon::submit_args(
            "lsi",
            corpus,
            &dictionary,
            &["--topics", "2"],
        ));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!out.status.success());
        assert!(
            text(&out).contains(&format!("not a regular file: it is {kind}")),
            "{}",
            text(&out)
        );
    }

    // So does the daemon, for a client that passes them anyway, before reading a byte.
    let fifo_fd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let zero = File::open("/dev/zero").unwrap();
    let dict_fd = File::open(&dictionary).unwrap();
    for (corpus, fd, kind) in [
        (fifo.as_path(), &fifo_fd, "a FIFO"),
        (Path::new("/dev/zero"), &zero, "a character device"),
    ] {
        let started = Instant::now();
        let reply = raw_submit(
            &d.socket,
            &[(corpus, fd), (&dictionary, &dict_fd)],
            lsi_spec(corpus, &dictionary),
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{reply:?}");
        let refusal = reply.unwrap().unwrap_err().to_string();
        assert!(
            refusal.contains(&format!("not a regular file: it is {kind}")),
            "{refusal}"
        );
    }
    assert_eq!(d.ok(&["list"]).lines().count(), 1, "no job was created");
    // Nothing is left hashing: the daemon stops at once.
    let mut d = d;
    let started = Instant::now();
    assert!(d.terminate().success());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_path_without_a_passed_descriptor_is_refused_even_if_the_daemon_can_read_it() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = counts_corpus(dir.path(), "c", 10, 8);
    let secret = secret_file(dir.path(), "secret.txt", &format!("0\t{MARKER}\t1\n"));
    let corpus_fd = File::open(&corpus).unwrap();
    // Only the corpus is passed; the dictionary is named by path alone.
    let refusal = raw_submit(
        &d.socket,
        &[(&corpus, &corpus_fd)],
        lsi_spec(&corpus, &secret),
    )
    .unwrap()
    .unwrap_err()
    .to_string();
    assert!(
        refusal.contains(&format!(
            "the dictionary {} was not passed with the request",
            secret.display()
        )),
        "{refusal}"
    );
    assert!(!refusal.contains(MARKER));
    // Nothing at all passed.
    let refusal = raw_submit(&d.socket, &[], lsi_spec(&corpus, &dictionary))
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(refusal.contains("the corpus"), "{refusal}");
    assert!(refusal.contains("was not passed"), "{refusal}");
    assert!(!d.log().contains(MARKER));
}

/// The user `nobody` as (uid, gid), when this test runs as root and the user exists;
/// otherwise the reason it cannot.
fn nobody() -> Result<(u32, u32), String> {
    if unsafe { libc::geteuid() } != 0 {
        return Err("the test does not run as root".into());
    }
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "nobody"])
            .output()
            .map_err(|e| format!("cannot run id: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| "there is no user nobody".to_string())
    };
    Ok((id("-u")?, id("-g")?))
}

/// Run topicctl against `d` as `user` (uid, gid).
fn ctl_as(user: (u32, u32), d: &Daemon, args: &[&str]) -> Output {
    Command::new(topicctl_bin())
        .arg("--socket")
        .arg(&d.socket)
        .args(args)
        .current_dir("/")
        .uid(user.0)
        .gid(user.1)
        .output()
        .unwrap()
}

/// A small LDA job of root's, trained, for `eval`.
fn trained_lda(d: &Daemon, dir: &Path) -> String {
    let (corpus, dictionary) = counts_corpus(dir, "lda", 40, 12);
    let job = d.submit_lda(
        &corpus,
        &dictionary,
        &["--topics", "2", "--chunksize", "20"],
    );
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    job.to_string()
}

#[test]
fn an_unprivileged_client_cannot_make_a_root_daemon_read_a_file_it_cannot_read() {
    let user = match nobody() {
        Ok(user) => user,
        Err(reason) => {
            println!("SKIPPED: needs root and the user nobody: {reason}");
            return;
        }
    };
    let d = Daemon::start(&[]);
    // The socket open to everyone, for this test; access is the socket's business, what is
    // read is this test's.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (corpus, dictionary) = counts_corpus(dir.path(), "open", 10, 8);
    let entries: String = (0..8).map(|t| format!("{t}\t{MARKER}{t}\t1\n")).collect();
    let secret_dictionary = secret_file(dir.path(), "shadow_wordids.txt", &entries);
    let secret_corpus = secret_file(
        dir.path(),
        "shadow.mm",
        &format!("root:{MARKER}:19000:0:99999:7:::\n"),
    );

    let mut outputs = Vec::new();
    for (c, dict) in [(&corpus, &secret_dictionary), (&secret_corpus, &dictionary)] {
        let out = ctl_as(
            user,
            &d,
            &Daemon::submit_args("lsi", c, dict, &["--topics", "2"]),
        );
        assert!(!out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("Permission denied"), "{}", text(&out));
        outputs.push(out);
    }
    let job = trained_lda(&d, dir.path());
    let out = ctl_as(
        user,
        &d,
        &["eval", &job, "--corpus", secret_corpus.to_str().unwrap()],
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Permission denied"), "{}", text(&out));
    outputs.push(out);
    outputs.push(ctl_as(user, &d, &["--json", "list"]));
    for out in &outputs {
        assert!(!text(out).contains(MARKER), "{}", text(out));
    }
    assert_eq!(
        d.ok(&["list"]).lines().count(),
        2,
        "only root's LDA job was created"
    );
    assert!(!d.log().contains(MARKER), "{}", d.log());
    assert!(d.log().contains("submitted by uid 0: lda"), "{}", d.log());
}

#[test]
fn eval_reads_only_the_corpus_the_client_passed_and_quotes_a_short_excerpt() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let job: JobId = trained_lda(&d, dir.path()).parse().unwrap();
    let tail = "x".repeat(200);
    let secret = secret_file(dir.path(), "shadow.mm", &format!("root:{MARKER}:{tail}\n"));
    let refusal = block_on(async {
        let client = topicd_protocol::connect(&d.socket, &[]).await.unwrap();
        client
            .evaluate(tarpc::context::current(), job, secret.clone(), None)
            .await
            .unwrap()
            .unwrap_err()
            .to_string()
    });
    assert!(
        refusal.contains(&format!("the corpus {} was not passed", secret.display())),
        "{refusal}"
    );
    assert!(!refusal.contains(MARKER));
    // Passed by a client that may read it (root), the file is quoted, but only its start.
    let out = d.ctl(&[
        "eval",
        &job.to_string(),
        "--corpus",
        secret.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let message = text(&out);
    assert!(
        message.contains("missing Matrix Market banner") && message.contains(MARKER),
        "{message}"
    );
    assert!(!message.contains(&tail[..100]), "{message}");
}

#[test]
fn a_resumed_job_whose_corpus_became_a_symlink_fails_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = write_corpus(dir.path(), "big", 40_000, 2_000, 25, 11);
    let mut d = Daemon::start(&["--checkpoint-interval", "0"]);
    let job = d.submit_lsi(
        &corpus,
        &dictionary,
        &["--topics", "20", "--chunksize", "500"],
    );
    let status = d.wait_until(job, 120, |s| work_done(s) > 0 || s["state"] != "running");
    assert_eq!(status["state"], "running", "{status}");
    assert!(d.terminate().success());
    // The path now leads to a file of root's whose first line would make a fine quote.
    let secret = secret_file(
        dir.path(),
        "shadow",
        &format!("root:{MARKER}:19000:0:99999:7:::\n"),
    );
    let secret_size = std::fs::metadata(&secret).unwrap().len();
    std::fs::remove_file(&corpus).unwrap();
    std::os::unix::fs::symlink(&secret, &corpus).unwrap();
    d.restart();
    assert_eq!(d.wait(job), "failed", "{}", d.log());
    let reason = d.status(job)["reason"].as_str().unwrap().to_string();
    println!("{reason}");
    assert!(
        reason.starts_with(&format!(
            "{}: the corpus changed since the job was submitted",
            corpus.display()
        )),
        "{reason}"
    );
    // Neither a line of the other file nor its size or checksum.
    assert!(!reason.contains(MARKER), "{reason}");
    assert!(
        !reason.contains(&format!("{secret_size} bytes")),
        "{reason}"
    );
    assert!(!d.log().contains(MARKER));
}

#[test]
fn a_job_reads_the_files_its_client_passed_whatever_the_paths_lead_to_later() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = counts_corpus(dir.path(), "c", 30, 8);
    let job = d.submit_lsi(&corpus, &dictionary, &["--topics", "2"]);
    // Right after the submit (the job may not have started yet), both paths lead elsewhere.
    let secret = secret_file(dir.path(), "shadow", &format!("root:{MARKER}\n"));
    for path in [&corpus, &dictionary] {
        std::fs::remove_file(path).unwrap();
        std::os::unix::fs::symlink(&secret, path).unwrap();
    }
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let topics = d.ok(&["topics", &job.to_string()]);
    assert!(
        topics.contains("word") && !topics.contains(MARKER),
        "{topics}"
    );
}

/// A dictionary without an id the corpus uses, or cut shorter than the terms the corpus
/// declares, is refused at submit, naming the dictionary as the culprit (the first
/// documents are read at submit; a later miss fails the job with the same message).
#[test]
fn a_dictionary_that_lacks_a_corpus_id_or_was_cut_short_is_named_as_the_culprit() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = counts_corpus(dir.path(), "c", 30, 8);
    let full = std::fs::read_to_string(&dictionary).unwrap();

    // Id 5 missing (the largest id, 7, is there): the term would have printed as '#5'.
    let gap = dir.path().join("gap_wordids.txt");
    let without_5: String = full
        .lines()
        .filter(|l| !l.starts_with("5\t"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&gap, without_5).unwrap();
    // The last lines lost: ids 0..=3 only.
    let cut = dir.path().join("cut_wordids.txt");
    let first_lines: String = full.lines().take(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(&cut, first_lines).unwrap();

    let first_use_of_6 = std::fs::read_to_string(&corpus)
        .unwrap()
        .lines()
        .position(|l| l.split(' ').nth(1) == Some("6") && !l.starts_with('%'))
        .unwrap()
        + 1;
    let refusal = |dictionary: &Path| {
        let refused = d.ctl(&Daemon::submit_args(
            "lsi",
            &corpus,
            dictionary,
            &["--topics", "2"],
        ));
        assert!(!refused.status.success());
        String::from_utf8_lossy(&refused.stderr).trim().to_string()
    };
    assert_eq!(
        refusal(&gap),
        format!(
            "topicctl: invalid job: {}: the dictionary has no entry for id 5, which the corpus \
             {} uses on line {} (as term 6: Matrix Market ids are 1-based); is the dictionary \
             truncated, or the dictionary of another corpus?",
            gap.display(),
            corpus.display(),
            first_use_of_6
        )
    );
    assert_eq!(
        refusal(&cut),
        format!(
            "topicctl: invalid job: {}: the dictionary has 4 entries with ids up to 3, but the \
             corpus {} declares 8 terms (line 2); is the dictionary truncated, or the dictionary \
             of another corpus?",
            cut.display(),
            corpus.display()
        )
    );
}

/// A model has at most min(terms, documents) topics: asking for more is refused at submit
/// with the limit, for either algorithm (gensim would quietly give fewer), and no job is
/// made; the limit itself is accepted.
#[test]
fn more_topics_than_terms_or_documents_are_refused_at_submit_with_the_limit() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // 12 documents over 30 terms: at most 12 topics
    let (corpus, dictionary) = counts_corpus(dir.path(), "c", 12, 30);
    for kind in ["lsi", "lda"] {
        let out = d.ctl(&Daemon::submit_args(
            kind,
            &corpus,
            &dictionary,
            &["--topics", "13"],
        ));
        assert!(!out.status.success(), "{kind}: {}", text(&out));
        assert!(
            text(&out).contains("13 topics asked for, but 30 terms")
                && text(&out).contains("12 documents")
                && text(&out).contains("ask for at most 12 topics"),
            "{kind}: {}",
            text(&out)
        );
    }
    assert_eq!(
        d.ok(&["list"])
            .lines()
            .filter(|l| l.contains("lsi") || l.contains("lda"))
            .count(),
        0
    );
    let job = d.submit_lda(&corpus, &dictionary, &["--topics", "12"]);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
}
