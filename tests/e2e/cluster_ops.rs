//! The operator's side of the cluster, through the real binaries: `topicd --check-config` on
//! cluster settings (and a daemon that refuses to start on them), and `topicctl status` of a
//! job that workers train.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

/// A file of `text` with permissions `mode`.
fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A secret as the operations guide makes one: 32 random bytes in base64 (44 characters and
/// a newline), mode 0640.
fn good_secret(dir: &Path) -> PathBuf {
    write(
        dir,
        "cluster.secret",
        "q2T9d1oVb6mXo8xJc3HkR0sN4uYw7ZpL5eGf1aBtCvI=\n",
        0o640,
    )
}

/// `topicd --check-config --config FILE` and any further flags.
fn check_config(config: &Path, extra: &[&str]) -> Output {
    Command::new(topicd_bin())
        .arg("--check-config")
        .arg("--config")
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_good_cluster_settings_for_each_role() {
    let dir = tempfile::tempdir().unwrap();
    let secret = good_secret(dir.path());
    let dispatcher = write(
        dir.path(),
        "dispatcher.toml",
        &format!(
            "role = \"dispatcher\"\nlisten = \"0.0.0.0:7787\"\ncluster_secret_file = {:?}\n",
            secret.display().to_string()
        ),
        0o644,
    );
    let out = check_config(&dispatcher, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .trim_end()
            .ends_with("role dispatcher listening on 0.0.0.0:7787 (encrypted, local_worker true)"),
        "{}",
        text(&out.stdout)
    );
    let worker = write(
        dir.path(),
        "worker.toml",
        &format!(
            "role = \"worker\"\ndispatcher = \"192.0.2.10:7787\"\ncluster_secret_file = {:?}\n",
            secret.display().to_string()
        ),
        0o644,
    );
    let out = check_config(&worker, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .trim_end()
            .ends_with("role worker of 192.0.2.10:7787 (encrypted)"),
        "{}",
        text(&out.stdout)
    );
    // the flags make the same roles from a file without cluster keys
    let empty = write(dir.path(), "empty.toml", "", 0o644);
    let secret = secret.to_str().unwrap();
    let out = check_config(
        &empty,
        &["--role", "worker", "--dispatcher", "[2001:db8::1]:7787"],
    );
    assert!(!out.status.success(), "a remote dispatcher needs a secret");
    let out = check_config(
        &empty,
        &[
            "--role",
            "worker",
            "--dispatcher",
            "[2001:db8::1]:7787",
            "--cluster-secret-file",
            secret,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn check_config_names_every_cluster_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let open = write(
        dir.path(),
        "open.secret",
        "q2T9d1oVb6mXo8xJc3HkR0sN4uYw7ZpL5eGf1aBtCvI=\n",
        0o644,
    );
    let config = write(
        dir.path(),
        "topicd.toml",
        &format!(
            "# a dispatcher\nrole = \"dispatcher\"\nlisten = \"dispatcher.example:7787\"\n\
             cluster_secret_file = {:?}\nlease_secs = 0\n",
            open.display().to_string()
        ),
        0o644,
    );
    let out = check_config(&config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let file = config.display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "{file}:3: listen \"dispatcher.example:7787\" is not an IP address and port"
        )),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:4: cluster_secret_file: cluster secret "))
            && lines[1].contains("may be read or written by any user (mode 0644)"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(&format!("{file}:5: lease_secs must be between")),
        "{stderr}"
    );
    assert_eq!(
        lines[3],
        "topicd: 3 problems in the settings; topicd would not start"
    );

    // a short secret, and a missing one
    let short = write(dir.path(), "short.secret", "0123456789abcdef\n", 0o600);
    let config = write(
        dir.path(),
        "worker.toml",
        "role = \"worker\"\ndispatcher = \"192.0.2.10\"\n",
        0o644,
    );
    for (secret, why) in [
        (short, "has 16 bytes, fewer than the 32 required"),
        (dir.path().join("none.secret"), "No such file or directory"),
    ] {
        let out = check_config(
            &config,
            &["--cluster-secret-file", secret.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{}:2: dispatcher address \"192.0.2.10\": it has no port",
                config.display()
            )) && stderr.contains(&format!(
                "command line: cluster_secret_file: cluster secret {}",
                secret.display()
            )) && stderr.contains(why),
            "{stderr}"
        );
    }
}

#[test]
fn a_dispatcher_open_to_the_network_without_a_secret_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "topicd.toml",
        "role = \"dispatcher\"\nlisten = \"0.0.0.0:7787\"\n",
        0o644,
    );
    let out = check_config(&config, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(":1: role = \"dispatcher\" needs cluster_secret_file"),
        "{}",
        text(&out.stderr)
    );
    // the daemon itself refuses, before it touches the data directory
    let data = dir.path().join("data");
    let out = Command::new(topicd_bin())
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .arg("--control-socket")
        .arg(dir.path().join("control.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("needs cluster_secret_file"),
        "{}",
        text(&out.stderr)
    );
    assert!(!data.exists());
    // on loopback it may go without one
    let out = check_config(&config, &["--listen", "127.0.0.1:7787"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
