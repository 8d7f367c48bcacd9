//! End-to-end tests of the `topicctl` binary: against a socket where nothing listens, and
//! against a fake daemon ([`fake`]), an in-process tarpc server implementing `Control` on a
//! temporary Unix socket with canned jobs and a small model of each kind.
//!
//! | module | tests |
//! |---|---|
//! | [`lsi`] | the job commands, `submit lsi`, `topics`, LSI exports |
//! | [`lda`] | `submit lda`, LDA status, `eval`, `infer`, LDA exports and pyldavis |
//! | [`import`] | `import`: the files passed, model.json's parameters, incomplete directories |
//! | [`prepare`] | `prepare` against gensim (skipped without a Python that imports gensim) |

mod fake;
mod import;
mod lda;
mod lsi;
mod prepare;

use std::path::Path;
use std::process::{Command, Output};

/// Run `topicctl --socket SOCKET ARGS...` in the directory `cwd`.
pub fn topicctl(cwd: &Path, socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_topicctl"))
        .current_dir(cwd)
        .env_remove("TOPICD_SOCKET")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

/// What the run wrote on stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// What the run wrote on stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The run exited with `code`; shows both outputs if not.
#[track_caller]
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
}

/// Split a .npy file into its header text (the dict) and its float64 values.
pub fn read_npy(path: &Path) -> (String, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let data_start = 10 + header_len;
    assert_eq!(data_start % 64, 0, "data must be 64-byte aligned");
    assert_eq!(bytes[data_start - 1], b'\n');
    let header = std::str::from_utf8(&bytes[10..data_start])
        .unwrap()
        .trim_end()
        .to_owned();
    let data = &bytes[data_start..];
    assert_eq!(data.len() % 8, 0);
    let values = data
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (header, values)
}
