//! `chunk_cache_bytes`: a multi-pass job whose chunk cache does not fit parses its corpus on
//! every pass instead, and trains the very model it would have trained from the cache; no
//! cache file is left behind, the journal says why once, and `status` tells where the passes
//! read from. The caches of other jobs count against the limit.

use std::path::{Path, PathBuf};

use crate::common::*;
use crate::lda::{generated_corpus, lda_export};

/// An LSI job of 4 passes (power_iters 2) and an LDA job of 3 passes.
const LSI_JOB: &[&str] = &[
    "--topics",
    "5",
    "--chunksize",
    "500",
    "--power-iters",
    "2",
    "--seed",
    "3",
];
const LDA_JOB: &[&str] = &[
    "--topics",
    "4",
    "--chunksize",
    "400",
    "--passes",
    "3",
    "--seed",
    "3",
];

/// Run an LSI and an LDA job on `d`; returns their exported models and `status` JSONs.
fn train(
    d: &Daemon,
    lsi: (&Path, &Path),
    lda: (&Path, &Path),
) -> (Vec<Vec<u8>>, Vec<serde_json::Value>) {
    let lsi_job = d.submit_lsi(lsi.0, lsi.1, LSI_JOB);
    let lda_job = d.submit_lda(lda.0, lda.1, LDA_JOB);
    let mut models = vec![];
    let mut statuses = vec![];
    for job in [lsi_job, lda_job] {
        assert_eq!(d.wait(job), "succeeded", "{}", d.log());
        statuses.push(d.status(job));
    }
    models.extend(d.export_arrays(lsi_job).into_values());
    models.extend(lda_export(d, lda_job));
    (models, statuses)
}

#[test]
fn jobs_whose_cache_does_not_fit_parse_again_and_train_the_same_models() {
    let dir = tempfile::tempdir().unwrap();
    // about 36k entries: a cache of about 460 kB; LDA's about 6000 × 40 entries
    let (corpus, dictionary) = write_corpus(dir.path(), "lsi", 3_000, 400, 12, 7);
    let (counts, vocabulary) = generated_corpus(dir.path(), 4, 2_000, 5);

    let cached = Daemon::start(&[]);
    let (reference, statuses) = train(&cached, (&corpus, &dictionary), (&counts, &vocabulary));
    for status in &statuses {
        assert_eq!(status["reads"], "cache", "{status}");
    }
    assert!(!cached.log().contains("is not cached"), "{}", cached.log());

    for limit in ["100000", "0"] {
        let d = Daemon::start(&["--chunk-cache-bytes", limit]);
        let (models, statuses) = train(&d, (&corpus, &dictionary), (&counts, &vocabulary));
        assert!(
            models == reference,
            "chunk_cache_bytes {limit}: the models differ from those trained from the cache"
        );
        for status in &statuses {
            let why = status["reads"]["corpus_not_cached"]
                .as_str()
                .unwrap_or_else(|| panic!("{status}"));
            match limit {
                "0" => assert_eq!(why, "chunk_cache_bytes is 0"),
                _ => assert!(
                    why.contains("more than the 100000 bytes chunk_cache_bytes = 100000 leaves"),
                    "{why}"
                ),
            }
        }
        // said once per job, and nothing left in the cache directory
        assert_eq!(
            d.log().matches("its corpus is not cached").count(),
            2,
            "{}",
            d.log()
        );
        assert_eq!(d.cache_files_settled(&[]), Vec::<PathBuf>::new());
        let text = d.ok(&["status", &statuses[0]["id"].to_string()]);
        assert!(
            text.contains("reads          the corpus file, every pass (not cached: "),
            "{text}"
        );
    }
}

/// Another job's cache (here a file named as job 999's, which stays until `gc`) takes part
/// of the limit: a cache that fits the limit alone but not beside it is not written.
#[test]
fn other_jobs_caches_count_against_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, dictionary) = write_corpus(dir.path(), "c", 3_000, 400, 12, 7);
    let d = Daemon::start(&["--chunk-cache-bytes", "1000000"]);
    let other = d.data_dir().join("cache").join("job999-00-500.chunks");
    std::fs::write(&other, vec![0u8; 600_000]).unwrap();
    let job = d.submit_lsi(&corpus, &dictionary, LSI_JOB);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    let why = d.status(job)["reads"]["corpus_not_cached"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("{}", d.status(job)));
    assert!(
        why.contains("more than the 400000 bytes chunk_cache_bytes = 1000000 leaves beside the 600000 bytes of other jobs' caches"),
        "{why}"
    );
    assert_eq!(
        d.cache_files_settled(std::slice::from_ref(&other)),
        vec![other.clone()]
    );

    // without it, the same job's cache fits
    std::fs::remove_file(&other).unwrap();
    let job = d.submit_lsi(&corpus, &dictionary, LSI_JOB);
    assert_eq!(d.wait(job), "succeeded", "{}", d.log());
    assert_eq!(d.status(job)["reads"], "cache");
    assert_eq!(d.cache_files_settled(&[]), Vec::<PathBuf>::new());
}
