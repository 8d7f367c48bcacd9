//! `topicctl import` against the fake daemon: the files of the directory are passed with the
//! request, model.json's parameters are sent, and mistakes are reported before connecting.

use topicd_protocol::ModelSpec;

use super::fake::FakeServer;
use super::{assert_exit, stderr, stdout};

fn write(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

#[test]
fn import_passes_the_models_files_and_prints_the_job() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("lda");
    std::fs::create_dir(&dir).unwrap();
    write(
        &dir,
        &[
            ("lambda.npy", "l"),
            ("alpha.npy", "a"),
            ("eta.npy", "e"),
            ("dictionary.txt", "0\tw\t1\n"),
            (
                "model.json",
                r#"{"kind": "lda", "num_docs": 300, "params": {"iterations": 1000, "chunksize": 100}}"#,
            ),
        ],
    );
    let output = server.run_in(out.path(), &["import", "lda"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "42\n");
    let output = server.run(&["import", dir.to_str().unwrap(), "--json"]);
    assert_exit(&output, 0);
    let printed: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(printed, serde_json::json!({"id": 42}));
    let imported = server.shared.imported.lock().unwrap().clone();
    assert_eq!(imported.len(), 2);
    let dir = dir.canonicalize().unwrap();
    assert_eq!(imported[0].dir, dir);
    assert_eq!(imported[0].num_docs, 300);
    let ModelSpec::Lda(params) = &imported[0].model else {
        panic!("not LDA: {:?}", imported[0].model)
    };
    assert_eq!((params.iterations, params.chunksize), (1000, 100));
    let passed = server.shared.passed.lock().unwrap().clone();
    let mut last = passed.last().unwrap().clone();
    last.sort();
    let names = ["alpha.npy", "dictionary.txt", "eta.npy", "lambda.npy"];
    assert_eq!(last, names.map(|n| dir.join(n)));
}

#[test]
fn import_of_an_incomplete_directory_fails_before_connecting() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    write(out.path(), &[("u.npy", "u"), ("dictionary.txt", "")]);
    let output = server.run(&["import", out.path().to_str().unwrap()]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        format!(
            "topicctl: {} has no s.npy: an LSI model is u.npy, s.npy and dictionary.txt\n",
            out.path().display()
        )
    );
    assert!(server.shared.imported.lock().unwrap().is_empty());
}
