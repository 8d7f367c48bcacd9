//! `submit lda`, LDA status, `eval`, `infer`, and the LDA exports (npy, json, pyldavis)
//! against the fake daemon.

use std::path::Path;

use topicd_protocol::{Evaluation, LdaParams, MAX_INFER_DOCS, ModelSpec, Prior};

use crate::fake::{CORPUS, FakeServer, LDA_TOPICS, TERMS, fake_theta, lambda_total, lambda_value};
use crate::{assert_exit, read_npy, stderr, stdout, topicctl};

/// A directory with `c.mm` (the fake corpus) and `d.txt`.
fn inputs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.mm"), CORPUS).unwrap();
    std::fs::write(dir.path().join("d.txt"), "0\ta\t1\n").unwrap();
    dir
}

/// The names of the files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn npy_header(shape: &str) -> String {
    format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}")
}

const SUBMIT: [&str; 8] = [
    "submit",
    "lda",
    "--corpus",
    "c.mm",
    "--dictionary",
    "d.txt",
    "--topics",
    "20",
];

#[test]
fn submit_lda_sends_gensims_defaults_and_every_parameter() {
    let server = FakeServer::start();
    let dir = inputs();
    let output = server.run_in(dir.path(), &SUBMIT);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "7\n");
    let spec = server.shared.submitted.lock().unwrap()[0].clone();
    assert_eq!(spec.corpus, dir.path().join("c.mm"));
    assert_eq!(
        spec.model,
        ModelSpec::Lda(LdaParams {
            num_topics: 20,
            ..LdaParams::default()
        })
    );

    let more = [
        "--alpha",
        "0.1, 0.2,0.3",
        "--eta",
        "auto",
        "--update-every",
        "0",
        "--passes",
        "3",
        "--eval-every",
        "0",
        "--seed",
        "5",
    ];
    // Three topics, for the three values of alpha (topicctl checks that before sending).
    let mut args = SUBMIT.to_vec();
    args[7] = "3";
    let output = server.run_in(dir.path(), &[&args[..], &more].concat());
    assert_exit(&output, 0);
    let spec = server.shared.submitted.lock().unwrap()[1].clone();
    assert_eq!(spec.seed, 5);
    assert_eq!(
        spec.model,
        ModelSpec::Lda(LdaParams {
            num_topics: 3,
            alpha: Prior::List(vec![0.1, 0.2, 0.3]),
            eta: Prior::Auto,
            update_every: 0,
            passes: 3,
            eval_every: 0,
            ..LdaParams::default()
        })
    );
}

#[test]
fn submit_lda_init_from_sends_the_job_to_continue_and_refuses_topics_with_it() {
    let server = FakeServer::start();
    let dir = inputs();
    // SUBMIT without its --topics: the topics are the source job's
    let inputs = &SUBMIT[..SUBMIT.len() - 2];
    let output = server.run_in(dir.path(), &[inputs, &["--init-from", "3"]].concat());
    assert_exit(&output, 0);
    let spec = server.shared.submitted.lock().unwrap()[0].clone();
    assert_eq!(spec.init_from.map(|f| f.job), Some(3));
    let output = server.run_in(
        dir.path(),
        &[&SUBMIT[..], &["--init-from", "3", "--alpha", "auto"]].concat(),
    );
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("cannot be used with '--init-from <JOB>'"),
        "{}",
        stderr(&output)
    );
    let output = server.run_in(dir.path(), inputs);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("--topics <K>"),
        "{}",
        stderr(&output)
    );
    assert_eq!(server.shared.submitted.lock().unwrap().len(), 1);
}

#[test]
fn submit_lda_refuses_a_bad_prior_before_contacting_the_daemon() {
    let dir = inputs();
    let nothing = dir.path().join("nothing.sock");
    let cases = [
        (
            ["--alpha", "foo"],
            "--alpha: expected symmetric, asymmetric, auto, a number or a comma-separated list \
             of numbers, got 'foo'",
        ),
        (
            ["--alpha", "0.1,,0.3"],
            "--alpha: expected a comma-separated list of numbers, but item 2 of 3 is empty in \
             '0.1,,0.3'",
        ),
        (
            ["--alpha", "0.5,half"],
            "--alpha: expected a comma-separated list of numbers, but item 2 of 2 'half' is \
             not a number in '0.5,half'",
        ),
        (
            ["--eta", "asymmetric"],
            "--eta: expected symmetric, auto or a number, got 'asymmetric'",
        ),
    ];
    for (option, message) in cases {
        let output = topicctl(dir.path(), &nothing, &[&SUBMIT[..], &option].concat());
        assert_exit(&output, 1);
        assert_eq!(stderr(&output), format!("topicctl: {message}\n"));
    }
}

#[test]
fn submit_lda_refuses_a_bad_parameter_without_a_daemon() {
    // JobSpec::validate runs in topicctl: nothing listens on this socket.
    let dir = inputs();
    let nothing = dir.path().join("nothing.sock");
    let output = topicctl(
        dir.path(),
        &nothing,
        &[&SUBMIT[..], &["--decay", "0.3"]].concat(),
    );
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "topicctl: invalid job: decay must be in [0.5, 1], not 0.3\n"
    );
}

#[test]
fn submit_lda_refused_by_the_daemon_says_why_in_one_line() {
    let server = FakeServer::start();
    let dir = inputs();
    let mut args = SUBMIT.to_vec();
    args[7] = "7777";
    let output = server.run_in(dir.path(), &args);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "topicctl: invalid job: this job needs about 9.9 GiB for its matrices\n"
    );
    assert!(server.shared.submitted.lock().unwrap().is_empty());
}

#[test]
fn status_of_an_lda_job_shows_its_parameters_and_bound() {
    let server = FakeServer::start();
    let output = server.run(&["status", "6"]);
    assert_exit(&output, 0);
    let text = stdout(&output);
    for line in [
        "  kind                 lda",
        "  num_topics           3",
        "  alpha                asymmetric",
        "  eta                  symmetric",
        "  decay                0.5",
        "  minimum_probability  0.2",
        "  latest bound         -8.123 per-word bound, 278.8 perplexity",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
}

#[test]
fn eval_prints_gensims_line() {
    let server = FakeServer::start();
    let dir = inputs();
    let output = server.run_in(dir.path(), &["eval", "6", "--corpus", "c.mm"]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        "-8.123 per-word bound, 278.8 perplexity estimate based on a held-out corpus of 382 \
         documents with 104123 words\n"
    );
    let output = server.run_in(
        dir.path(),
        &[
            "eval",
            "6",
            "--corpus",
            "c.mm",
            "--total-docs",
            "1000",
            "--json",
        ],
    );
    assert_exit(&output, 0);
    let evaluation: Evaluation = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(evaluation.documents, 382);
    // The path was sent absolute, with the file opened.
    assert_eq!(
        *server.shared.evaluated.lock().unwrap(),
        [
            (dir.path().join("c.mm"), None),
            (dir.path().join("c.mm"), Some(1000))
        ]
    );
    assert_eq!(
        server.shared.passed.lock().unwrap()[..2],
        [vec![dir.path().join("c.mm")], vec![dir.path().join("c.mm")]]
    );

    let output = server.run_in(dir.path(), &["eval", "1", "--corpus", "c.mm"]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "topicctl: job 1 trains an LSI model: eval computes the per-word bound of an LDA model\n"
    );
    let output = server.run_in(dir.path(), &["eval", "6", "--corpus", "held.mm"]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        format!(
            "topicctl: corpus {} does not exist\n",
            dir.path().join("held.mm").display()
        )
    );
    assert_eq!(server.shared.evaluated.lock().unwrap().len(), 2);
}

#[test]
fn infer_lda_keeps_topics_above_the_minimum_probability() {
    let server = FakeServer::start();
    let dir = inputs();
    // The job's own minimum_probability (0.2) by default; θ = [1 − n/32, n/32, 1e-9] for a
    // document of n words (5, 25, 0, 1).
    let output = server.run_in(
        dir.path(),
        &["infer", "6", "--corpus", "c.mm", "--out", "topics.txt"],
    );
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "");
    assert_eq!(stderr(&output), "");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("topics.txt")).unwrap(),
        "0\t0:0.84375\n1\t0:0.21875 1:0.78125\n2\t0:1.0\n3\t0:0.96875\n"
    );

    // 0 keeps everything from 1e-8 up.
    let output = server.run_in(
        dir.path(),
        &[
            "infer",
            "6",
            "--corpus",
            "c.mm",
            "--minimum-probability",
            "0",
        ],
    );
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        "0\t0:0.84375 1:0.15625\n1\t0:0.21875 1:0.78125\n2\t0:1.0\n3\t0:0.96875 1:0.03125\n"
    );

    let output = server.run_in(dir.path(), &["--json", "infer", "6", "--corpus", "c.mm"]);
    assert_exit(&output, 0);
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[1],
        serde_json::json!({"doc": 1, "topics": [[0, 0.21875], [1, 0.78125]]})
    );

    let calls = server.shared.infer_calls.lock().unwrap();
    assert!(calls.iter().all(|&n| n <= MAX_INFER_DOCS));
    assert_eq!(calls.iter().sum::<usize>(), 3 * 4);
}

#[test]
fn infer_lsi_keeps_non_zero_weights() {
    let server = FakeServer::start();
    let dir = inputs();
    let output = server.run_in(dir.path(), &["infer", "1", "--corpus", "c.mm"]);
    assert_exit(&output, 0);
    // The second weight is -0.5 for documents of 5 words or more, 1e-10 (dropped) for
    // shorter ones; the empty document has no weight at all.
    assert_eq!(
        stdout(&output),
        "0\t0:42.5 1:-0.5\n1\t0:262.5 1:-0.5\n2\t\n3\t0:40.5\n"
    );
    let output = server.run_in(
        dir.path(),
        &[
            "infer",
            "1",
            "--corpus",
            "c.mm",
            "--minimum-probability",
            "0.1",
        ],
    );
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "topicctl: --minimum-probability applies to LDA models, and job 1 is an LSI model\n"
    );
}

#[test]
fn infer_npy_writes_every_weight_of_every_document() {
    let server = FakeServer::start();
    let dir = inputs();
    // LSI: the weights the lines leave out (1e-10, 0) are there.
    let output = server.run_in(
        dir.path(),
        &["infer", "1", "--corpus", "c.mm", "--npy", "--out", "w.npy"],
    );
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "");
    let (header, values) = read_npy(&dir.path().join("w.npy"));
    assert!(header.contains("'shape': (4, 2)"), "{header}");
    assert_eq!(values, [42.5, -0.5, 262.5, -0.5, 0.0, 0.0, 40.5, 1e-10]);

    // LDA: θ whole, whatever the minimum probability (documents of 5, 25, 0 and 1 words).
    let output = server.run_in(
        dir.path(),
        &[
            "infer",
            "6",
            "--corpus",
            "c.mm",
            "--npy",
            "--out",
            "theta.npy",
        ],
    );
    assert_exit(&output, 0);
    let (header, values) = read_npy(&dir.path().join("theta.npy"));
    assert!(header.contains("'shape': (4, 3)"), "{header}");
    let expected: Vec<f64> = [5.0, 25.0, 0.0, 1.0]
        .into_iter()
        .flat_map(fake_theta)
        .collect();
    assert_eq!(values, expected);

    // A .npy goes to a file, in one format.
    let output = server.run_in(dir.path(), &["infer", "1", "--corpus", "c.mm", "--npy"]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("--out <FILE>"),
        "{}",
        stderr(&output)
    );
    let output = server.run_in(
        dir.path(),
        &[
            "--json", "infer", "1", "--corpus", "c.mm", "--npy", "--out", "x.npy",
        ],
    );
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "topicctl: --json and --npy are two formats of the output: choose one\n"
    );
    assert!(!dir.path().join("x.npy").exists());
}

#[test]
fn infer_reports_a_bad_corpus_by_file_and_line() {
    let server = FakeServer::start();
    let dir = inputs();
    let bad = "%%MatrixMarket matrix coordinate real general\n2 5 2\n1 1 3\n2 x 1\n";
    std::fs::write(dir.path().join("bad.mm"), bad).unwrap();
    let output = server.run_in(
        dir.path(),
        &["infer", "6", "--corpus", "bad.mm", "--out", "t.txt"],
    );
    assert_exit(&output, 1);
    let message = stderr(&output);
    assert!(
        message.starts_with("topicctl: bad.mm: line 4: "),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
    assert_eq!(names(dir.path()), ["bad.mm", "c.mm", "d.txt"]);
    // the same with --npy: the corpus is what is wrong, not the array it cut short
    let output = server.run_in(
        dir.path(),
        &[
            "infer", "6", "--corpus", "bad.mm", "--npy", "--out", "t.npy",
        ],
    );
    assert_exit(&output, 1);
    assert_eq!(stderr(&output), message);
    assert_eq!(names(dir.path()), ["bad.mm", "c.mm", "d.txt"]);

    // An LDA model wants counts.
    let fractional = "%%MatrixMarket matrix coordinate real general\n1 5 1\n1 1 1.5\n";
    std::fs::write(dir.path().join("tfidf.mm"), fractional).unwrap();
    let output = server.run_in(dir.path(), &["infer", "6", "--corpus", "tfidf.mm"]);
    assert_exit(&output, 1);
    assert!(stderr(&output).starts_with("topicctl: tfidf.mm: line 3: "));
    // ... an LSI model takes any weight.
    let output = server.run_in(dir.path(), &["infer", "1", "--corpus", "tfidf.mm"]);
    assert_exit(&output, 0);
    assert_eq!(stdout(&output), "0\t0:0.75\n");

    // Term ids beyond the model's terms are refused by the reader.
    let wide = "%%MatrixMarket matrix coordinate real general\n1 9 1\n1 9 1\n";
    std::fs::write(dir.path().join("wide.mm"), wide).unwrap();
    let output = server.run_in(dir.path(), &["infer", "6", "--corpus", "wide.mm"]);
    assert_exit(&output, 1);
    assert!(stderr(&output).starts_with("topicctl: wide.mm: line 2: "));
}

#[test]
fn export_npy_of_an_lda_job_writes_lambda_alpha_eta_and_the_dictionary() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("lda");
    let output = server.run(&[
        "export",
        "6",
        "--format",
        "npy",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!(
            "{0}/lambda.npy\n{0}/alpha.npy\n{0}/eta.npy\n{0}/dictionary.txt\n",
            dir.display()
        )
    );
    let (header, lambda) = read_npy(&dir.join("lambda.npy"));
    assert_eq!(header, npy_header("(3, 5)"));
    let expected: Vec<f64> = (0..u64::from(LDA_TOPICS))
        .flat_map(|k| (0..TERMS).map(move |w| lambda_value(k, w)))
        .collect();
    assert_eq!(lambda, expected);
    let (header, alpha) = read_npy(&dir.join("alpha.npy"));
    assert_eq!(header, npy_header("(3,)"));
    assert_eq!(alpha, [0.5, 0.3, 0.2]);
    let (header, eta) = read_npy(&dir.join("eta.npy"));
    assert_eq!(header, npy_header("(5,)"));
    assert_eq!(eta, [0.25; 5]);
    assert_eq!(
        std::fs::read_to_string(dir.join("dictionary.txt")).unwrap(),
        "0\tw0\t1\n1\tw1\t2\n2\tw2\t3\n4\tw4\t5\n"
    );
    assert_eq!(
        names(&dir),
        ["alpha.npy", "dictionary.txt", "eta.npy", "lambda.npy"]
    );
}

#[test]
fn export_json_of_an_lda_job_has_alpha_and_topics() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let output = server.run(&[
        "export", "6", "--format", "json", "--out", dir, "--words", "1",
    ]);
    assert_exit(&output, 0);
    let text = std::fs::read_to_string(out.path().join("model.json")).unwrap();
    let mut model: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The words' weights as written (to 16 digits), then the rest.
    for (k, topic) in model["topics"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let word = &mut topic["words"][0];
        let weight = word[1].as_f64().unwrap();
        let expected = lambda_value(k as u64, 4) / lambda_total(k as u64);
        assert!(
            (weight - expected).abs() < 1e-15,
            "{k}: {weight} {expected}"
        );
        word[1] = serde_json::json!(0.0);
    }
    assert_eq!(
        model,
        serde_json::json!({
            "kind": "lda", "num_terms": 5, "num_topics": 3, "num_docs": 4,
            "alpha": [0.5, 0.3, 0.2],
            "topics": [
                {"id": 0, "weight": 0.5, "words": [["w4", 0.0]]},
                {"id": 1, "weight": 0.3, "words": [["w4", 0.0]]},
                {"id": 2, "weight": 0.2, "words": [["w4", 0.0]]},
            ]
        })
    );
}

#[test]
fn lda_topics_label_alpha() {
    let server = FakeServer::start();
    let output = server.run(&["topics", "6", "--words", "2"]);
    assert_exit(&output, 0);
    // λ[k][w] = 10k + w + 1 over terms 0..5.
    assert_eq!(
        stdout(&output),
        "topic #0 (α=0.500): 0.333*\"w4\" + 0.267*\"w3\"\n\
         topic #1 (α=0.300): 0.231*\"w4\" + 0.215*\"w3\"\n\
         topic #2 (α=0.200): 0.217*\"w4\" + 0.209*\"w3\"\n"
    );
    let output = server.run(&[
        "topics",
        "6",
        "--num-topics",
        "all",
        "--words",
        "1",
        "--json",
    ]);
    assert_exit(&output, 0);
    let topics: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let alphas: Vec<f64> = topics
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["weight"], t["alpha"]);
            assert!(t.get("singular_value").is_none(), "{t}");
            t["alpha"].as_f64().unwrap()
        })
        .collect();
    assert_eq!(alphas, [0.5, 0.3, 0.2]);
}

#[test]
fn export_pyldavis_writes_the_five_arguments_of_prepare() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("vis");
    let output = server.run(&[
        "export",
        "6",
        "--format",
        "pyldavis",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 0);
    assert_eq!(
        stdout(&output),
        format!(
            "{0}/topic_term_dists.npy\n{0}/doc_topic_dists.npy\n{0}/doc_lengths.npy\n\
             {0}/vocab.json\n{0}/term_frequency.npy\n",
            dir.display()
        )
    );
    assert_eq!(
        names(&dir),
        [
            "doc_lengths.npy",
            "doc_topic_dists.npy",
            "term_frequency.npy",
            "topic_term_dists.npy",
            "vocab.json"
        ]
    );

    let (header, topic_term) = read_npy(&dir.join("topic_term_dists.npy"));
    assert_eq!(header, npy_header("(3, 5)"));
    let expected: Vec<f64> = (0..u64::from(LDA_TOPICS))
        .flat_map(|k| (0..TERMS).map(move |w| lambda_value(k, w) / lambda_total(k)))
        .collect();
    assert_eq!(topic_term, expected);

    // Every row comes from infer, in the corpus's order (documents of 5, 25, 0, 1 words).
    let (header, doc_topic) = read_npy(&dir.join("doc_topic_dists.npy"));
    assert_eq!(header, npy_header("(4, 3)"));
    let expected: Vec<f64> = [5.0, 25.0, 0.0, 1.0]
        .into_iter()
        .flat_map(fake_theta)
        .collect();
    assert_eq!(doc_topic, expected);
    assert_eq!(
        server
            .shared
            .infer_calls
            .lock()
            .unwrap()
            .iter()
            .sum::<usize>(),
        4
    );

    let (header, lengths) = read_npy(&dir.join("doc_lengths.npy"));
    assert_eq!(header, npy_header("(4,)"));
    assert_eq!(lengths, [5.0, 25.0, 0.0, 1.0]);
    let (header, frequency) = read_npy(&dir.join("term_frequency.npy"));
    assert_eq!(header, npy_header("(5,)"));
    assert_eq!(frequency, [3.0, 25.0, 2.0, 0.0, 1.0]);
    let vocab: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("vocab.json")).unwrap()).unwrap();
    assert_eq!(vocab, ["w0", "w1", "w2", "#3", "w4"]);
}

#[test]
fn export_pyldavis_refuses_an_lsi_job() {
    let server = FakeServer::start();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("vis");
    let output = server.run(&[
        "export",
        "1",
        "--format",
        "pyldavis",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    assert_eq!(
        stderr(&output),
        "topicctl: job 1 is an LSI model: pyLDAvis shows LDA models only (use --format npy or \
         --format json)\n"
    );
    assert!(!dir.exists());
}

#[test]
fn export_pyldavis_refuses_a_corpus_changed_since_submit() {
    let server = FakeServer::start();
    let corpus = &server.shared.training.0;
    std::fs::write(corpus, CORPUS.replace("2 2 25", "2 2 26")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = server.run(&[
        "export",
        "6",
        "--format",
        "pyldavis",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!(
            "topicctl: the job's corpus {} has changed since job 6 was submitted",
            corpus.display()
        )),
        "{message}"
    );
    assert!(!out.path().join("doc_topic_dists.npy").exists());
}
