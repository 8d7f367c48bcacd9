//! `topicd-assets OUT_DIR`: writes what the Debian package ships besides the binaries and is
//! generated from the clap definitions — man pages (`OUT_DIR/man/`: topicd.8, topicctl.1 and
//! one page per topicctl subcommand) and shell completions for bash, zsh and fish
//! (`OUT_DIR/completions/`). `packaging/build-deb.sh` runs it before cargo-deb.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap_complete::Shell;

/// Sections appended to topicd(8): where things are, and where to read more.
const TOPICD_EXTRA: &str = r#".SH FILES
.TP
\fI/etc/topicd/topicd.toml\fR
The settings; every key is documented in the file. Check it with \fBtopicd \-\-check\-config\fR.
.TP
\fI/var/lib/topicd\fR
The state directory (systemd's StateDirectory): the job store, checkpoints, models and chunk caches.
.TP
\fI/var/lib/topicd/inbox\fR
Where members of group topicd can put corpora that the service reads.
.TP
\fI/run/topicd/control.sock\fR
The control socket topicctl talks to; usable by root and members of group topicd.
.SH ENVIRONMENT
.TP
\fBRUST_LOG\fR
Log filter (env_logger syntax); overrides \fBlog_level\fR.
.SH EXIT STATUS
0 after a clean stop (SIGTERM or SIGINT: a running job writes a checkpoint first) or a
successful \fB\-\-check\-config\fR; 1 on bad settings or when the daemon cannot run.
.SH SEE ALSO
\fBtopicctl\fR(1), \fBsystemctl\fR(1), \fBjournalctl\fR(1),
\fI/usr/share/doc/topicd/operations.md\fR
"#;

/// Sections appended to topicctl(1).
const TOPICCTL_EXTRA: &str = r#".SH ENVIRONMENT
.TP
\fBTOPICD_SOCKET\fR
The control socket, when \fB\-\-socket\fR is not given (default \fI/run/topicd/control.sock\fR).
Only root and members of group topicd may use the packaged daemon's socket.
.SH SEE ALSO
\fBtopicd\fR(8), \fI/usr/share/doc/topicd/operations.md\fR
"#;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: topicd-assets OUT_DIR");
        return ExitCode::FAILURE;
    };
    match write_all(Path::new(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("topicd-assets: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_all(out: &Path) -> std::io::Result<()> {
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;

    // topicd(8): a daemon, so section 8. NAME gets a short line; the paragraph of the clap
    // definition becomes the DESCRIPTION.
    let topicd = topicd::cli::command();
    let long = topicd
        .get_long_about()
        .or(topicd.get_about())
        .cloned()
        .unwrap_or_default();
    let topicd = topicd
        .about("train topic models (LSI) as a system service")
        .long_about(long);
    let page = clap_mangen::Man::new(topicd)
        .section("8")
        .manual("topicd")
        .source(concat!("topicd ", env!("CARGO_PKG_VERSION")));
    write_page(&page, TOPICD_EXTRA, &man.join("topicd.8"))?;

    // topicctl(1), with the extra sections, then one page per subcommand (topicctl-submit.1, ...).
    let mut ctl = topicctl::command().disable_help_subcommand(true);
    ctl.build();
    let page = clap_mangen::Man::new(ctl.clone())
        .manual("topicd")
        .source(concat!("topicd ", env!("CARGO_PKG_VERSION")));
    write_page(&page, TOPICCTL_EXTRA, &man.join("topicctl.1"))?;
    write_subcommand_pages(&ctl, &man)?;

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut topicctl::command(), "topicctl", &completions)?;
        clap_complete::generate_to(shell, &mut topicd::cli::command(), "topicd", &completions)?;
    }
    Ok(())
}

fn write_page(page: &clap_mangen::Man, extra: &str, path: &Path) -> std::io::Result<()> {
    let mut roff = Vec::new();
    page.render(&mut roff)?;
    roff.extend_from_slice(extra.as_bytes());
    let mut file = std::fs::File::create(path)?;
    file.write_all(&roff)
}

fn write_subcommand_pages(cmd: &clap::Command, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let page = clap_mangen::Man::new(sub.clone())
            .manual("topicd")
            .source(concat!("topicd ", env!("CARGO_PKG_VERSION")));
        page.generate_to(dir)?;
        write_subcommand_pages(sub, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use topicd::config::Config;

    const PACKAGED: &str = include_str!("../../topicd.toml");

    /// The packaged settings file, every `#key = value` line uncommented.
    fn uncommented() -> String {
        PACKAGED
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| {
                let l = l.trim_start();
                l.split_once('=').is_some_and(|(k, _)| {
                    !k.trim().is_empty()
                        && k.trim().chars().all(|c| c.is_ascii_lowercase() || c == '_')
                })
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Settings that have no default (unset unless the role needs them): the file shows an
    /// example value.
    const EXAMPLES_ONLY: [&str; 3] = ["listen", "dispatcher", "cluster_secret_file"];

    #[test]
    fn the_packaged_config_documents_every_setting_with_its_default() {
        let text = uncommented();
        let table: toml::Table = text.parse().unwrap();
        let mut defaults = table.clone();
        for key in EXAMPLES_ONLY {
            assert!(defaults.remove(key).is_some(), "{key} is not documented");
        }
        let config: Config = toml::Value::Table(defaults).try_into().unwrap();
        assert_eq!(
            config,
            Config::default(),
            "the commented values must be the defaults"
        );
        // Every field of Config (as its Debug output names them) appears in the file.
        let fields: Vec<String> = format!("{:#?}", Config::default())
            .lines()
            .filter_map(|l| {
                l.strip_prefix("    ")?
                    .split_once(':')
                    .map(|(k, _)| k.to_string())
            })
            .collect();
        assert!(fields.len() >= 6, "{fields:?}");
        for field in fields {
            assert!(
                table.contains_key(&field),
                "{field} is not documented in packaging/topicd.toml"
            );
        }
        // As shipped (all commented out), the file is valid and gives the defaults too.
        let shipped: Config = toml::from_str(PACKAGED).unwrap();
        assert_eq!(shipped, Config::default());
    }

    #[test]
    fn man_pages_and_completions_are_written() {
        let dir = tempfile_dir();
        super::write_all(&dir).unwrap();
        let man = std::fs::read_to_string(dir.join("man/topicd.8")).unwrap();
        assert!(
            man.contains(".TH topicd 8")
                && man.contains("check\\-config")
                && man.contains(".SH FILES")
        );
        for f in [
            "man/topicctl.1",
            "man/topicctl-submit.1",
            "man/topicctl-submit-lsi.1",
        ] {
            assert!(dir.join(f).exists(), "{f}");
        }
        for f in [
            "topicctl.bash",
            "_topicctl",
            "topicctl.fish",
            "topicd.bash",
            "_topicd",
            "topicd.fish",
        ] {
            assert!(dir.join("completions").join(f).exists(), "{f}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("topicd-assets-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
