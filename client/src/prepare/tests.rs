use super::*;

fn options(docs: &Path, out: &Path) -> Options {
    Options {
        docs: docs.to_owned(),
        out: out.to_owned(),
        tokenizer: Tokenizer::default(),
        no_below: 1,
        no_above: 1.0,
        keep_n: None,
        heldout: 0.0,
        seed: 0,
        max_document: MAX_DOCUMENT,
    }
}

#[test]
fn the_split_is_a_function_of_seed_and_index() {
    let held: Vec<bool> = (0..10_000).map(|i| is_heldout(7, i, 0.1)).collect();
    let count = held.iter().filter(|&&h| h).count();
    assert!((900..1100).contains(&count), "{count}");
    assert_eq!(
        held,
        (0..10_000)
            .map(|i| is_heldout(7, i, 0.1))
            .collect::<Vec<_>>()
    );
    assert_ne!(
        held,
        (0..10_000)
            .map(|i| is_heldout(8, i, 0.1))
            .collect::<Vec<_>>()
    );
    assert!(!(0..1000).any(|i| is_heldout(7, i, 0.0)));
    // Documented values: a change would silently move documents between the corpora.
    assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
}

#[test]
fn output_names() {
    assert_eq!(
        output_path(Path::new("out/wiki"), "bow.mm"),
        PathBuf::from("out/wiki_bow.mm")
    );
    assert_eq!(
        output_path(Path::new("w"), "tfidf.mm"),
        PathBuf::from("w_tfidf.mm")
    );
}

#[test]
fn a_small_corpus_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs.txt");
    std::fs::write(
        &docs,
        "human computer interface\ncomputer system\n\nsystem human system\n",
    )
    .unwrap();
    let out = dir.path().join("out/c");
    let summary = run(&options(&docs, &out)).unwrap();
    assert_eq!((summary.documents, summary.terms), (4, 4));
    let read = |suffix| std::fs::read_to_string(output_path(&out, suffix)).unwrap();
    assert_eq!(
        read("wordids.txt"),
        "4\n0\tcomputer\t2\n1\thuman\t2\n2\tinterface\t1\n3\tsystem\t2\n"
    );
    let pad = |stats: &str| {
        format!(
            "{}{stats}{}\n",
            mm_writer::HEADER,
            " ".repeat(50 - stats.len())
        )
    };
    assert_eq!(
        read("bow.mm"),
        pad("4 4 7") + "1 1 1\n1 2 1\n1 3 1\n2 1 1\n2 4 1\n4 2 1\n4 4 2\n"
    );
    assert!(read("tfidf.mm").starts_with(&pad("4 4 7")));
    // Nothing else is left in the directory.
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["c_bow.mm", "c_tfidf.mm", "c_wordids.txt"]);
}

#[test]
fn held_out_documents_do_not_count_in_the_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs.txt");
    // Word i: "w" and i in base 26 with letters (digits would split tokens).
    let word = |i: u64| {
        format!(
            "w{}{}",
            (b'a' + (i / 26) as u8) as char,
            (b'a' + (i % 26) as u8) as char
        )
    };
    let text: String = (0..200).map(|i| format!("common {}\n", word(i))).collect();
    std::fs::write(&docs, text).unwrap();
    let out = dir.path().join("h");
    let mut o = options(&docs, &out);
    o.heldout = 0.25;
    o.seed = 3;
    let summary = run(&o).unwrap();
    let held = (0..200).filter(|&i| is_heldout(3, i, 0.25)).count() as u64;
    assert_eq!(
        (summary.heldout_documents, summary.train_documents),
        (held, 200 - held)
    );
    let dictionary = std::fs::read_to_string(output_path(&out, "wordids.txt")).unwrap();
    assert!(dictionary.starts_with(&format!("{}\n", 200 - held)));
    // A held-out document's own word is not in the dictionary; "common" is.
    let first_held = (0..200).find(|&i| is_heldout(3, i, 0.25)).unwrap();
    assert!(!dictionary.contains(&format!("\t{}\t", word(first_held))));
    let first_train = (0..200).find(|&i| !is_heldout(3, i, 0.25)).unwrap();
    assert!(dictionary.contains(&format!("\t{}\t", word(first_train))));
    let heldout = std::fs::read_to_string(output_path(&out, "bow_heldout.mm")).unwrap();
    assert_eq!(
        heldout.lines().nth(1).unwrap().trim_end(),
        format!("{held} 1 {held}")
    );
    assert!(output_path(&out, "bow_train.mm").exists());
    assert!(!output_path(&out, "bow.mm").exists());
}

#[test]
fn a_failure_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs.txt");
    std::fs::write(
        &docs,
        "fine line\nthis line is far too long for the limit\n",
    )
    .unwrap();
    let out = dir.path().join("x");
    let mut o = options(&docs, &out);
    o.max_document = 16;
    let e = run(&o).unwrap_err().to_string();
    assert!(
        e.contains("docs.txt: line 2: document longer than 16 bytes"),
        "{e}"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["docs.txt"]);
}
