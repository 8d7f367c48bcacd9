//! The views, lines and fitting of `watch`, on jobs built here.

use std::path::PathBuf;

use topicd_protocol::{Fingerprint, JobSpec, LdaParams, LsiParams, ModelSpec, Progress};

use super::*;

/// When the job started (2026-11-26 14:04:00 UTC).
const STARTED: u64 = 1_795_701_840;

/// An LSI job in pass 2 of 5 over 100,000 documents, 41,000 of them done, at 1,234 docs/s,
/// submitted 6 s before it started.
fn running() -> JobInfo {
    JobInfo {
        id: 12,
        spec: JobSpec {
            corpus: PathBuf::from("/data/corpus.mm"),
            dictionary: PathBuf::from("/data/dict.txt"),
            seed: 0,
            model: ModelSpec::Lsi(LsiParams::default()),
            input: Default::default(),
            init_from: None,
        },
        state: JobState::Running,
        reason: None,
        progress: Progress {
            pass: 1,
            passes: 5,
            docs_done: 41_000,
            docs_per_pass: Some(100_000),
            docs_per_sec: Some(1234.4),
            per_word_bound: None,
        },
        submitted_at: STARTED - 6,
        started_at: Some(STARTED),
        finished_at: None,
        corpus_fingerprint: Fingerprint {
            size: 1,
            checksum: 2,
        },
        dictionary_fingerprint: Fingerprint {
            size: 3,
            checksum: 4,
        },
    }
}

/// The same job as LDA, with a bound.
fn running_lda() -> JobInfo {
    let mut job = running();
    job.spec.model = ModelSpec::Lda(LdaParams::default());
    job.progress.per_word_bound = Some(-8.123);
    job
}

/// The job's view 134 s after it started.
fn view(job: &JobInfo) -> View {
    View::of(job, STARTED + 134)
}

#[test]
fn durations_and_counts_are_short() {
    let durations: Vec<String> = [0, 45, 60, 125, 3599, 3600, 3780, 86_399, 273_600]
        .into_iter()
        .map(duration_text)
        .collect();
    assert_eq!(
        durations,
        [
            "0s", "45s", "1m 00s", "2m 05s", "59m 59s", "1h 00m", "1h 03m", "23h 59m", "3d 04h"
        ]
    );
    let counts: Vec<String> = [
        0,
        999,
        1000,
        41_000,
        99_949,
        99_950,
        100_000,
        999_499,
        999_500,
        3_900_000,
        u64::MAX,
    ]
    .into_iter()
    .map(compact_count)
    .collect();
    assert_eq!(
        counts,
        [
            "0", "999", "1.00k", "41.0k", "99.9k", "100k", "100k", "999k", "1.00M", "3.90M",
            "18.4E"
        ]
    );
}

#[test]
fn a_running_job_is_seen_per_pass_with_the_time_since_it_started() {
    let v = view(&running());
    assert_eq!(v.pass, Some((2, 5)));
    assert_eq!((v.docs, v.docs_per_pass), (41_000, Some(100_000)));
    assert_eq!(v.elapsed, Some(134));
    // 359,000 documents left of 500,000 at 1,234.4 docs/s.
    assert_eq!(v.left, Some(291));
    assert_eq!(v.since_submit, None);
    // A clock behind the daemon's does not make times negative.
    assert_eq!(View::of(&running(), STARTED - 10).elapsed, Some(0));
}

#[test]
fn text_lines_show_the_pass_its_documents_and_the_times() {
    assert_eq!(
        text_line(&view(&running())),
        "job 12: running, pass 2/5, 41,000 of 100,000 docs, 1,234 docs/s, 2m 14s elapsed, \
         about 4m 51s left"
    );
    assert_eq!(
        text_line(&view(&running_lda())),
        "job 12: running, pass 2/5, 41,000 of 100,000 docs, 1,234 docs/s, -8.123 per-word \
         bound, 278.8 perplexity, 2m 14s elapsed, about 4m 51s left"
    );
    let mut size_unknown = running();
    size_unknown.progress.docs_per_pass = None;
    size_unknown.progress.docs_per_sec = None;
    assert_eq!(
        text_line(&view(&size_unknown)),
        "job 12: running, pass 2/5, 41,000 docs (corpus size not known yet), 2m 14s elapsed"
    );
    let mut queued = running();
    queued.state = JobState::Queued;
    queued.started_at = None;
    queued.progress = Progress::default();
    assert_eq!(
        text_line(&View::of(&queued, STARTED + 1)),
        "job 12: queued for 7s"
    );
}

#[test]
fn the_final_line_gives_the_total_time_and_the_work() {
    let mut done = running();
    done.state = JobState::Succeeded;
    done.progress.pass = 5;
    done.progress.docs_done = 0;
    done.progress.docs_per_sec = None;
    done.finished_at = Some(STARTED + 134);
    let v = View::of(&done, STARTED + 500);
    assert_eq!(
        (v.elapsed, v.since_submit, v.left),
        (Some(134), Some(140), None)
    );
    assert_eq!(
        final_line(&v),
        "job 12 succeeded in 2m 14s (2m 20s after submit), 5 passes over 100,000 docs"
    );
    assert_eq!(text_line(&v), final_line(&v));
    // Started as soon as submitted, one pass.
    done.submitted_at = STARTED;
    done.progress.passes = 1;
    done.progress.pass = 1;
    assert_eq!(
        final_line(&view(&done)),
        "job 12 succeeded in 2m 14s, 1 pass over 100,000 docs"
    );

    let mut failed = running();
    failed.state = JobState::Failed;
    failed.reason = Some("corpus changed\nsince submit".into());
    failed.finished_at = Some(STARTED + 62);
    assert_eq!(
        final_line(&view(&failed)),
        "job 12 failed after 1m 02s (1m 08s after submit), in pass 2/5 at 41,000 of \
         100,000 docs: corpus changed?since submit"
    );
    let mut cancelled = running();
    cancelled.state = JobState::Cancelled;
    cancelled.reason = Some("cancelled by request".into());
    cancelled.started_at = None;
    cancelled.progress = Progress::default();
    cancelled.finished_at = Some(STARTED);
    assert_eq!(
        final_line(&view(&cancelled)),
        "job 12 was cancelled (6s after submit): cancelled by request"
    );
}

#[test]
fn the_bar_line_drops_fields_in_order_to_fit() {
    let lda = view(&running_lda());
    let lines: Vec<String> = [160, 120, 100, 80, 60, 40, 30, 10]
        .into_iter()
        .map(|width| bar_line(&lda, width))
        .collect();
    assert_eq!(
        lines,
        [
            // Everything; the bar takes what is left (29 of at most 30 columns).
            "job 12: running, pass 2/5 [===========>                ] 41,000/100,000 docs, \
             1,234 docs/s, -8.123 per-word bound, 278.8 perplexity, 2m 14s elapsed, 4m 51s left",
            // The perplexity went.
            "job 12: running, pass 2/5 [======>        ] 41,000/100,000 docs, 1,234 docs/s, \
             bound -8.123, 2m 14s elapsed, 4m 51s left",
            // The throughput and the bound.
            "job 12: running, pass 2/5 [=========>             ] 41,000/100,000 docs, \
             2m 14s elapsed, 4m 51s left",
            // The bar.
            "job 12: running, pass 2/5, 41,000/100,000 docs, 2m 14s elapsed, 4m 51s left",
            // The documents' digits and the time left.
            "job 12: running, pass 2/5, 41.0k/100k docs, 2m 14s elapsed",
            // The elapsed time and the pass.
            "job 12: running, 41.0k/100k docs",
            // The documents.
            "job 12: running",
            // Cut.
            "job 12: ru",
        ]
    );
    for (line, width) in lines.iter().zip([160, 120, 100, 80, 60, 40, 30, 10]) {
        assert!(columns(line) <= width, "{width}: {line}");
    }
}

#[test]
fn the_bar_line_never_overflows() {
    let mut size_unknown = running_lda();
    size_unknown.progress.docs_per_pass = None;
    let mut huge = running_lda();
    huge.progress.docs_done = u64::MAX - 1;
    huge.progress.docs_per_pass = Some(u64::MAX);
    huge.progress.passes = u32::MAX;
    huge.id = u64::MAX;
    let mut queued = running();
    queued.state = JobState::Queued;
    let jobs = [running(), running_lda(), size_unknown, huge, queued];
    for job in &jobs {
        let v = view(job);
        for width in 0..=220 {
            let line = bar_line(&v, width);
            assert!(columns(&line) <= width, "{width}: {line}");
        }
        // Wide enough, nothing is cut.
        assert!(
            !bar_line(&v, 400).contains("bound -"),
            "{}",
            bar_line(&v, 400)
        );
    }
}

#[test]
fn an_empty_corpus_has_no_bar() {
    let mut empty = running();
    empty.progress.docs_done = 0;
    empty.progress.docs_per_pass = Some(0);
    assert_eq!(
        bar_line(&view(&empty), 200),
        "job 12: running, pass 2/5, 0/0 docs, 1,234 docs/s, 2m 14s elapsed, 0s left"
    );
}

#[test]
fn the_bar_shows_the_pass_done() {
    let mut v = view(&running());
    assert_eq!(bar_fill(&v, 10), "====>     ");
    v.docs = 0;
    assert_eq!(bar_fill(&v, 10), ">         ");
    v.docs = 100_000;
    assert_eq!(bar_fill(&v, 10), "==========");
}

#[test]
fn json_lines_add_the_times_to_the_job() {
    let job = running();
    let line = serde_json::to_value(JsonLine::new(&job, &view(&job))).unwrap();
    assert_eq!(line["id"], 12);
    assert_eq!(line["progress"]["pass"], 1);
    assert_eq!(line["elapsed_secs"], 134);
    assert_eq!(line["eta_secs"], 291);
    assert_eq!(line["eta_at_most"], false);
    // Still a JobInfo for whoever reads one.
    let back: JobInfo = serde_json::from_value(line).unwrap();
    assert_eq!(back, job);
}

/// While the first pass writes the chunk cache, its throughput overstates the time left:
/// the lines say "at most"; once the pass reads the cache (or the corpus, with no cache to
/// write), they say the time as before.
#[test]
fn the_time_left_is_at_most_while_the_first_pass_writes_the_cache() {
    let job = running();
    let writing = view(&job).reading(Some(&PassSource::CorpusWritingCache));
    assert_eq!(
        text_line(&writing),
        "job 12: running, pass 2/5, 41,000 of 100,000 docs, 1,234 docs/s, 2m 14s elapsed, \
         at most 4m 51s left"
    );
    assert!(bar_line(&writing, 160).ends_with(", 2m 14s elapsed, at most 4m 51s left"));
    let line = serde_json::to_value(JsonLine::new(&job, &writing)).unwrap();
    assert_eq!(
        (&line["eta_secs"], &line["eta_at_most"]),
        (&291.into(), &true.into())
    );
    for reads in [Some(PassSource::Cache), Some(PassSource::Corpus), None] {
        let v = view(&job).reading(reads.as_ref());
        assert!(text_line(&v).ends_with(", about 4m 51s left"), "{reads:?}");
        assert!(bar_line(&v, 160).ends_with(", 4m 51s left"), "{reads:?}");
    }
}
