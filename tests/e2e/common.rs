//! Test scaffolding: real `topicd` processes on temporary data directories, the real
//! `topicctl` binary, and corpora generated on the fly.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `topicd` binary under test.
pub fn topicd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_topicd"))
}

/// The `topicctl` binary, built beside `topicd` by `cargo test --workspace` (a run that
/// names one test target, `--test e2e`, builds only `topicd`'s binaries).
pub fn topicctl_bin() -> PathBuf {
    let path = topicd_bin().with_file_name("topicctl");
    assert!(
        path.exists(),
        "{} is missing: run the whole suite (`./test.sh`, or `cargo test --workspace`), or \
         `cargo build --workspace` before `cargo test --workspace --test e2e ...`",
        path.display()
    );
    path
}

/// A file of the shared data (gensim's corpora): `../shared/data` beside the repository, or
/// the directory `TOPICD_SHARED_DATA` names. Missing, it fails the test, unless
/// `TOPICD_SKIP_SHARED_DATA` is set: then `None`, with the reason printed.
pub fn shared_data(name: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("TOPICD_SHARED_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    };
    let path = dir.join(name);
    if path.is_file() {
        return Some(path);
    }
    let missing = format!("{} is missing (set TOPICD_SHARED_DATA)", path.display());
    if std::env::var_os("TOPICD_SKIP_SHARED_DATA").is_some() {
        println!("SKIPPED: {missing}");
        return None;
    }
    panic!("{missing}; set TOPICD_SKIP_SHARED_DATA=1 to skip the tests that read it");
}

/// The corpus bundled in the repository.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// A daemon on its own data directory and socket.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
    /// The open-file limit (soft and hard) to start the daemon with, if not the test's own.
    open_files: Option<u64>,
}

impl Daemon {
    /// Start a daemon; `extra` are additional `topicd` flags.
    pub fn start(extra: &[&str]) -> Daemon {
        Daemon::launch(extra, None)
    }

    /// Start a daemon whose open-file limit is `open_files` (soft and hard), as under a
    /// systemd unit without `LimitNOFILE` (1024).
    pub fn start_with_open_files(extra: &[&str], open_files: u64) -> Daemon {
        Daemon::launch(extra, Some(open_files))
    }

    fn launch(extra: &[&str], open_files: Option<u64>) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let mut d = Daemon {
            dir,
            socket,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            open_files,
        };
        d.restart();
        d
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The files in the daemon's chunk cache directory, sorted.
    pub fn cache_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.data_dir().join("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    /// The chunk cache directory's files once they are `expected`, or as they are after 10 s:
    /// a job's cache is removed just after its run ends, a moment after its state changed.
    pub fn cache_files_settled(&self, expected: &[PathBuf]) -> Vec<PathBuf> {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let files = self.cache_files();
            if files == expected || Instant::now() > end {
                return files;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start (again) on the same data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("topicd.log"))
            .unwrap();
        let mut command = Command::new(topicd_bin());
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--control-socket")
            .arg(&self.socket)
            .args(&self.extra)
            .env("RUST_LOG", "debug,sled=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(limit) = self.open_files {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe; it only reads `limit`.
            unsafe {
                command.pre_exec(move || match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                });
            }
        }
        let child = command.spawn().unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("topicd exited at start ({status}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("topicd did not listen within 30 s:\n{}", self.log());
    }

    /// SIGKILL, no chance to checkpoint.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe { libc_kill(child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "topicd did not stop within 60 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("topicd.log")).unwrap_or_default()
    }

    /// Run topicctl against this daemon.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(topicctl_bin())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    /// Run topicctl and expect success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "topicctl {args:?} failed ({}): {}\n--- daemon log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Submit an LSI job; returns its id.
    pub fn submit_lsi(&self, corpus: &Path, dictionary: &Path, extra: &[&str]) -> u64 {
        self.submit("lsi", corpus, dictionary, extra)
    }

    /// Submit an LDA job; returns its id.
    pub fn submit_lda(&self, corpus: &Path, dictionary: &Path, extra: &[&str]) -> u64 {
        self.submit("lda", corpus, dictionary, extra)
    }

    /// The arguments of a submit of `kind` (to run through `ctl` when it should fail).
    pub fn submit_args<'a>(
        kind: &'a str,
        corpus: &'a Path,
        dictionary: &'a Path,
        extra: &[&'a str],
    ) -> Vec<&'a str> {
        let mut args = vec![
            "submit",
            kind,
            "--corpus",
            corpus.to_str().unwrap(),
            "--dictionary",
            dictionary.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args
    }

    fn submit(&self, kind: &str, corpus: &Path, dictionary: &Path, extra: &[&str]) -> u64 {
        self.ok(&Daemon::submit_args(kind, corpus, dictionary, extra))
            .trim()
            .parse()
            .expect("submit prints the job id")
    }

    /// `topicctl --json status JOB` as JSON.
    pub fn status(&self, job: u64) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["--json", "status", &job.to_string()])).unwrap()
    }

    /// Wait until the job is in a final state; returns that state.
    pub fn wait(&self, job: u64) -> String {
        let out = self.ctl(&["wait", &job.to_string()]);
        if out.status.signal().is_some() {
            panic!("topicctl wait was killed");
        }
        self.status(job)["state"].as_str().unwrap().to_string()
    }

    /// Poll until `pred` holds for the job's status (or panic after `secs`).
    pub fn wait_until(
        &self,
        job: u64,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status(job);
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "condition not reached in {secs} s: {s}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Export a job's model as .npy into a fresh directory; returns (u.npy bytes, s.npy bytes).
    pub fn export_npy(&self, job: u64) -> (Vec<u8>, Vec<u8>) {
        let out = self
            .dir
            .path()
            .join(format!("export-{job}-{}", rand_suffix()));
        self.ok(&[
            "export",
            &job.to_string(),
            "--format",
            "npy",
            "--out",
            out.to_str().unwrap(),
        ]);
        (
            std::fs::read(out.join("u.npy")).unwrap(),
            std::fs::read(out.join("s.npy")).unwrap(),
        )
    }
}

impl Daemon {
    /// Every array of a job's `export --format npy`, by file name.
    pub fn export_arrays(&self, job: u64) -> std::collections::BTreeMap<String, Vec<u8>> {
        let out = self
            .dir
            .path()
            .join(format!("arrays-{job}-{}", rand_suffix()));
        self.ok(&[
            "export",
            &job.to_string(),
            "--format",
            "npy",
            "--out",
            out.to_str().unwrap(),
        ]);
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "npy"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect()
    }
}

/// Send `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) {
    unsafe { libc_kill(pid as i32, signal) };
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Documents a job has processed over all its passes, from `topicctl --json status`.
pub fn work_done(status: &serde_json::Value) -> u64 {
    let p = &status["progress"];
    p["docs_per_pass"].as_u64().unwrap_or(0) * p["pass"].as_u64().unwrap()
        + p["docs_done"].as_u64().unwrap()
}

/// Parse a float64 C-order .npy file: (shape, values).
pub fn read_npy(bytes: &[u8]) -> (Vec<usize>, Vec<f64>) {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<f8'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let data = &bytes[10 + header_len..];
    let values: Vec<f64> = data
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values.len(), shape.iter().product::<usize>());
    (shape, values)
}

/// A random sparse corpus in gensim's Matrix Market layout, with its dictionary:
/// `docs` documents over `terms` terms, about `per_doc` entries each, values in (0, 1].
pub fn write_corpus(
    dir: &Path,
    name: &str,
    docs: usize,
    terms: usize,
    per_doc: usize,
    seed: u64,
) -> (PathBuf, PathBuf) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut body = Vec::new();
    let mut nnz = 0;
    for d in 1..=docs {
        let mut ids: Vec<usize> = (0..per_doc)
            .map(|i| {
                // a skewed draw, so that the spectrum decays like a real corpus's
                let r = next() as usize;
                let t = if i % 3 == 0 {
                    r % terms
                } else {
                    (r % terms) * (r % terms) / terms
                };
                (t + d * 7 % 5) % terms + 1
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for t in ids {
            let v = (next() % 1000 + 1) as f64 / 1000.0;
            writeln!(body, "{d} {t} {v}").unwrap();
            nnz += 1;
        }
    }
    let corpus = dir.join(format!("{name}.mm"));
    let mut f = std::fs::File::create(&corpus).unwrap();
    writeln!(f, "%%MatrixMarket matrix coordinate real general").unwrap();
    writeln!(f, "{:<50}", format!("{docs} {terms} {nnz}")).unwrap();
    f.write_all(&body).unwrap();
    let dictionary = dir.join(format!("{name}_wordids.txt"));
    let mut f = std::fs::File::create(&dictionary).unwrap();
    writeln!(f, "{docs}").unwrap();
    for t in 0..terms {
        writeln!(f, "{t}\tword{t}\t1").unwrap();
    }
    (corpus, dictionary)
}

/// Mount a tmpfs of `size` (`4m`) on the directory `dir`, unmounted when the guard is
/// dropped; `None`, with the reason printed, when this process may not mount (not root).
pub fn mount_tmpfs(dir: &Path, size: &str) -> Option<Unmount> {
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0750"),
            "tmpfs",
        ])
        .arg(dir)
        .status();
    if !matches!(mounted, Ok(s) if s.success()) {
        println!("SKIPPED: cannot mount a tmpfs (needs root): {mounted:?}");
        return None;
    }
    Some(Unmount(dir.to_path_buf()))
}

/// Unmounts a file system when dropped.
pub struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill a file system with one file.
pub fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    for block in [64 << 10, 512, 1] {
        let block = vec![0x5au8; block];
        while f.write_all(&block).is_ok() {}
    }
}

/// The Python to run gensim with, or why there is none.
pub fn gensim_python() -> Result<String, String> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("TOPICD_GENSIM_PYTHON") {
        candidates.push(p.to_string_lossy().into_owned());
    }
    candidates.push("/tmp/topicd-bench/venv/bin/python".into());
    candidates.push("python3".into());
    for python in &candidates {
        let ok = std::process::Command::new(python)
            .args(["-c", "import gensim"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok(python.clone());
        }
    }
    Err(format!("none of {candidates:?} imports gensim"))
}

/// The documents of a Matrix Market file: (0-based term, value) in the file's order.
pub fn mm_documents(path: &Path) -> Vec<Vec<(usize, f64)>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('%'));
    let docs: usize = lines
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut out = vec![vec![]; docs];
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (doc, term): (usize, usize) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        out[doc - 1].push((term - 1, f[2].parse().unwrap()));
    }
    out
}
