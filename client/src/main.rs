//! `topicctl`: see the library's documentation.

fn main() -> std::process::ExitCode {
    topicctl::main()
}
