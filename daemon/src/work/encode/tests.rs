//! The layouts round-trip, and damaged or hostile bytes are errors.

use nalgebra::DMatrix;
use topicd_numerics::lsi::ChunkSpan;
use topicd_numerics::lsi::products::TermSums;

use super::*;

/// `bytes` cut into pages of `size` bytes, as an upload or a fetch receives them.
fn pages(bytes: &[u8], size: usize) -> Vec<Bytes> {
    bytes.chunks(size).map(Bytes::copy_from_slice).collect()
}

/// A phase's input as one buffer.
fn phase_to_bytes(phase: &PhaseInput) -> Vec<u8> {
    phase_pieces(phase).concat()
}

/// A phase's input decoded from one buffer.
fn phase_from_bytes(bytes: &[u8]) -> Result<PhaseInput, String> {
    phase_from_pieces(&[Bytes::copy_from_slice(bytes)], Vec::new())
}

/// A result as one buffer.
fn output_to_bytes(output: &Output) -> Vec<u8> {
    output_pieces(output.clone()).concat()
}

/// A result decoded from one buffer.
fn output_from_bytes(bytes: &[u8]) -> Result<Output, String> {
    output_from_pieces(&[Bytes::copy_from_slice(bytes)])
}

fn chunk() -> SparseChunk {
    SparseChunk {
        index: 3,
        first_doc: 30,
        indptr: vec![0, 2, 2, 3],
        terms: vec![0, 4, 2],
        values: vec![1.0, -2.5, 3.0],
    }
}

/// Every prefix of an encoding is refused, and so is a trailing byte.
fn refuses_damage<T>(bytes: &[u8], decode: impl Fn(&[u8]) -> Result<T, String>) {
    for n in 0..bytes.len() {
        assert!(decode(&bytes[..n]).is_err(), "a prefix of {n} bytes");
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(decode(&longer).is_err(), "a trailing byte");
}

#[test]
fn sums_and_grids_round_trip_and_damage_is_an_error() {
    let sketch = PassSum::Sketch {
        samples: 2,
        y: vec![1, -2, i128::MAX, 4, 5, 6],
        bounds: vec![7, 8, 9],
        frobenius: -10,
    };
    let power = PassSum::Power {
        y: DMatrix::from_fn(2, 3, |r, c| r as f64 - c as f64 * 0.5),
    };
    let gram = PassSum::Gram {
        x: DMatrix::from_element(2, 2, 1.5),
    };
    for sum in [sketch, power, gram] {
        let bytes = pass_sum_pieces(&sum).concat();
        assert_eq!(pass_sum_from_bytes(&bytes).unwrap(), sum);
        refuses_damage(&bytes, pass_sum_from_bytes);
        let mut huge = bytes.clone();
        huge[1..9].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(pass_sum_from_bytes(&huge).is_err());
    }
    assert!(pass_sum_from_bytes(&[7]).is_err());

    let grids = Grids {
        terms: vec![1.0, 0.25, 2f64.powi(-40)],
        gram: 8.0,
    };
    let bytes = grids_to_bytes(&grids);
    assert_eq!(grids_from_bytes(&bytes).unwrap(), grids);
    let mut bad = bytes.clone();
    bad[8..16].copy_from_slice(&3.0f64.to_le_bytes());
    assert!(grids_from_bytes(&bad).is_err(), "3 is not a power of two");
    refuses_damage(&bytes, grids_from_bytes);
}

/// A task through its three parts and back.
fn round_trip(task: &Task) -> Result<Task, String> {
    let phase = phase_from_bytes(&phase_to_bytes(&PhaseInput::of(task)))?;
    let chunk = chunk_from_bytes(&chunk_to_bytes(task_chunk(task)))?;
    task_from_parts(&phase, chunk, extra_to_bytes(task).as_deref())
}

fn task_chunk(task: &Task) -> &SparseChunk {
    task.chunk()
}

#[test]
fn tasks_round_trip_and_do_not_trust_their_sizes() {
    let chunk = chunk();
    let bytes = chunk_to_bytes(&chunk);
    assert!(chunk_from_bytes(&bytes).unwrap().bit_eq(&chunk));
    refuses_damage(&bytes, chunk_from_bytes);
    let mut broken = bytes.clone();
    broken[40..48].copy_from_slice(&5u64.to_le_bytes()); // indptr[1] beyond nnz
    assert!(chunk_from_bytes(&broken).is_err());

    let pass = Task::LsiPass {
        input: Arc::new(PassInput {
            num_terms: 5,
            num_topics: 1,
            power_iters: 2,
            pass: 1,
            samples: 2,
            seed: 9,
            product: Product::Power,
            qt: Some(Arc::new(DMatrix::from_element(2, 5, 0.5))),
            grids: Some(Arc::new(Grids {
                terms: vec![1.0; 5],
                gram: 2.0,
            })),
        }),
        chunk: chunk.clone(),
        may_end: false,
    };
    let one_pass = OnePassInput {
        num_terms: 5,
        rank: 3,
        extra_samples: 2,
        power_iters: 1,
        seed: 4,
        decay: 0.5,
    };
    let subtree = |node, docs| Task::LsiSubtree {
        input: one_pass,
        node,
        block: chunk.clone(),
        spans: vec![ChunkSpan {
            index: 6,
            first_doc: chunk.first_doc,
            docs,
        }],
    };
    let svd = subtree((4, 8), chunk.num_docs() as u64);
    let estep = |words: Vec<u32>| Task::LdaEStep {
        input: Arc::new(EStepInput {
            topics: ChunkTopics {
                grids: vec![0.25; words.len()],
                words,
                slots: vec![0, 2, 1],
                exp_elog_beta: vec![0.5; 6],
                elog_beta: None,
            },
            alpha: vec![0.1, 0.2],
            params: EStepParams {
                iterations: 50,
                gamma_threshold: 0.001,
            },
            seeds: GammaSeed::Training { seed: 1, pass: 2 },
            gamma: true,
        }),
        chunk: chunk.clone(),
    };
    let span = |index, first_doc, docs| ChunkSpan {
        index,
        first_doc,
        docs,
    };
    let run = |second| Task::LsiPassRun {
        input: pass.pass_input().unwrap().clone(),
        block: chunk.clone(),
        spans: vec![span(3, 30, 1), span(second, 31, 2)],
        may_end: false,
    };
    // a run's chunks follow each other
    let gap = run(5);
    let gap_extra = extra_to_bytes(&gap).unwrap();
    assert!(task_from_parts(&PhaseInput::of(&gap), chunk.clone(), Some(&gap_extra)).is_err());
    let extra = extra_to_bytes(&svd);
    // a pass whose product is not its number's
    let Task::LsiPass { input, .. } = &pass else {
        unreachable!()
    };
    let sketch_numbered = PhaseInput::LsiPass(Arc::new(PassInput {
        pass: 0,
        ..(**input).clone()
    }));
    assert!(phase_from_bytes(&phase_to_bytes(&sketch_numbered)).is_err());
    for task in [run(4), pass, svd, estep(vec![0, 2, 4])] {
        let back = round_trip(&task).unwrap();
        let phase = phase_to_bytes(&PhaseInput::of(&task));
        assert_eq!(phase_to_bytes(&PhaseInput::of(&back)), phase);
        assert_eq!(phase_pieces(&PhaseInput::of(&task)).concat(), phase);
        let paged = phase_from_pieces(&pages(&phase, 7), vec![1.0; 3]).unwrap();
        assert_eq!(phase_to_bytes(&paged), phase);
        assert_eq!(extra_to_bytes(&back), extra_to_bytes(&task));
        assert!(task_chunk(&back).bit_eq(&chunk));
        refuses_damage(&phase, |b| phase_from_bytes(b).map(|_| ()));
        if let Some(extra) = extra_to_bytes(&task) {
            let phase = PhaseInput::of(&task);
            refuses_damage(&extra, |b| {
                task_from_parts(&phase, chunk.clone(), Some(b)).map(|_| ())
            });
        }
    }
    // topics that lack a word of the chunk; a chunk beyond the model's terms
    assert!(round_trip(&estep(vec![0, 2, 5])).is_err());
    let narrow = PhaseInput::LsiSubtree(OnePassInput {
        num_terms: 4,
        ..one_pass
    });
    assert!(task_from_parts(&narrow, chunk.clone(), extra.as_deref()).is_err());
    // spans that do not cover the block, a chunk outside the node
    assert!(round_trip(&subtree((4, 8), 1)).is_err());
    assert!(round_trip(&subtree((7, 9), chunk.num_docs() as u64)).is_err());
    assert!(phase_from_bytes(&[9]).is_err());
}

#[test]
fn outputs_round_trip() {
    let sums = TermSums {
        terms: vec![1, 3],
        sums: DMatrix::from_element(2, 2, 0.25),
    };
    let outputs = [
        Output::LsiPass(PassTerm::Sketch(SketchTerm {
            sums: sums.clone(),
            bounds: vec![1.0, 2.0],
            frobenius: 3.0,
        })),
        Output::LsiPass(PassTerm::Power(sums)),
        Output::LsiPass(PassTerm::Gram(DMatrix::identity(2, 2))),
        Output::LsiPartial(PassSum::Gram {
            x: DMatrix::identity(2, 2),
        }),
        Output::LsiNode(Projection {
            ut: DMatrix::from_element(2, 4, 0.5),
            s: vec![2.0, 1.0],
        }),
        Output::LdaEStep(Inference {
            exp_theta: vec![0.5; 6],
            ratios: vec![0.25; 4],
            gamma: vec![1.0; 6],
            converged: 3,
        }),
        Output::LsiPassEnd(PassEnd::Next {
            q: Arc::new(DMatrix::from_element(2, 3, 0.5)),
            grids: Some(Arc::new(Grids {
                terms: vec![0.25; 3],
                gram: 2.0,
            })),
        }),
        Output::LsiPassEnd(PassEnd::Next {
            q: Arc::new(DMatrix::from_element(2, 3, 0.5)),
            grids: None,
        }),
        Output::LsiPassEnd(PassEnd::Model(Projection {
            ut: DMatrix::from_element(2, 4, 0.5),
            s: vec![2.0, 1.0],
        })),
        Output::LsiPassKept {
            samples: 2,
            grids: Some(Arc::new(Grids {
                terms: vec![0.25; 3],
                gram: 2.0,
            })),
        },
    ];
    for output in outputs {
        let bytes = output_to_bytes(&output);
        assert_eq!(output_to_bytes(&output_from_bytes(&bytes).unwrap()), bytes);
        let paged = output_from_pieces(&pages(&bytes, 5)).unwrap();
        assert_eq!(output_to_bytes(&paged), bytes);
        refuses_damage(&bytes, |b| output_from_bytes(b).map(|_| ()));
    }
}

/// The pieces of a result are its encoding, cut: a partial sum of the sketch in three
/// (the middle one the sum's own memory), of a power pass in two (its `Yt` last), E-step
/// inference in seven (`exp(E[log θ])`, the ratios and `γ` their own), anything else whole.
#[test]
fn pieces_are_the_encoding_cut() {
    let sketch = Output::LsiPartial(PassSum::Sketch {
        samples: 2,
        y: vec![1, -2, 3 << 70, -(5 << 90), 7, 8],
        bounds: vec![10, 20, 30],
        frobenius: 99,
    });
    let power = Output::LsiPartial(PassSum::Power {
        y: DMatrix::from_fn(2, 3, |r, c| r as f64 - c as f64),
    });
    let gram = Output::LsiPartial(PassSum::Gram {
        x: DMatrix::identity(2, 2),
    });
    let estep = Output::LdaEStep(Inference {
        exp_theta: vec![0.5, 1.5, 2.5, 3.5, 4.5, 5.5],
        ratios: vec![0.25, 0.75],
        gamma: vec![1.0; 6],
        converged: 3,
    });
    for (output, count) in [(sketch, 3), (power, 2), (gram, 1), (estep, 7)] {
        let bytes = output_to_bytes(&output);
        let pieces = output_pieces(output);
        assert_eq!(pieces.len(), count);
        assert_eq!(pieces.concat(), bytes);
    }
}

/// A segment's training: K = 2 topics over V = 5 terms, a batch open on words 4 and 0
/// (`docs` > 0) or none.
fn training(docs: u64) -> crate::jobs::lda::training::Training {
    use topicd_numerics::lda::LdaState;
    use topicd_numerics::lda::state::Batch;
    let mut state = LdaState::new(2, 5, vec![0.5, 0.25], vec![0.1; 5], 7);
    state.scale = 0.75;
    state.num_updates = 12;
    state.eta_in_lambda = true;
    let mut batch = Batch::new(2, 5);
    if docs > 0 {
        batch.add(&[4, 0], &[1.0, 2.0, 3.0, 4.0], docs);
    }
    crate::jobs::lda::training::Training {
        state,
        batch,
        pass: 1,
        next_chunk: 3,
        per_word_bound: Some(-7.5),
    }
}

fn segment(docs: u64, spans: Vec<ChunkSpan>) -> Task {
    use crate::jobs::lda::segment::SegmentInput;
    use crate::jobs::lda::training::Steps;
    let steps = Steps {
        job: 4,
        seed: 9,
        e_step: EStepParams {
            iterations: 50,
            gamma_threshold: 0.001,
        },
        eval_every: 2,
        chunks: 6,
        chunksize: 10,
        update_every: 3,
        offset: 1.0,
        decay: 0.5,
        learn_alpha: true,
        learn_eta: false,
        num_docs: 55,
        docs_before: 0,
    };
    Task::LdaSegment {
        input: Arc::new(SegmentInput {
            steps,
            start: training(docs),
        }),
        block: chunk(),
        spans,
        keep: true,
        from_kept: false,
    }
}

/// A segment and its end round-trip, its model's arrays are pieces of their own, and a
/// segment whose chunks do not follow its start, or lie beyond its terms, is refused.
#[test]
fn segments_round_trip_and_must_follow_their_start() {
    let span = |index, docs| ChunkSpan {
        index,
        first_doc: 30,
        docs,
    };
    let docs = chunk().num_docs() as u64;
    for open in [0, 4] {
        let task = segment(open, vec![span(3, docs)]);
        let back = round_trip(&task).unwrap();
        let (Task::LdaSegment { input: a, .. }, Task::LdaSegment { input: b, .. }) = (&task, &back)
        else {
            panic!("not a segment");
        };
        assert_eq!(a.start, b.start);
        let phase = phase_to_bytes(&PhaseInput::of(&task));
        assert_eq!(phase_to_bytes(&PhaseInput::of(&back)), phase);
        let paged = phase_from_pieces(&pages(&phase, 7), Vec::new()).unwrap();
        assert_eq!(phase_to_bytes(&paged), phase);
        refuses_damage(&phase, |b| phase_from_bytes(b).map(|_| ()));
        // its sstats (and the batch's counts, when open) are pieces of their own
        let pieces = phase_pieces(&PhaseInput::of(&task));
        assert_eq!(pieces.len(), if open > 0 { 4 } else { 3 });

        let end = Output::LdaSegment(Box::new(crate::jobs::lda::segment::SegmentEnd {
            training: training(open),
            bounds: vec![(3, -7.25), (5, -7.0)],
            compute_secs: 0.5,
        }));
        let bytes = output_to_bytes(&end);
        let Output::LdaSegment(decoded) = output_from_pieces(&pages(&bytes, 5)).unwrap() else {
            panic!("not a segment's end");
        };
        let Output::LdaSegment(expected) = &end else {
            unreachable!()
        };
        assert_eq!(decoded, *expected);
        refuses_damage(&bytes, |b| output_from_bytes(b).map(|_| ()));
        // the end must be where the segment's chunks end: chunk 4
        assert!(!crate::work::fits(&task, &end));
        let mut at_end = training(open);
        at_end.next_chunk = 4;
        let end = crate::jobs::lda::segment::SegmentEnd {
            training: at_end,
            bounds: vec![],
            compute_secs: 0.5,
        };
        // where a kept training stands: the same place, and only if the worker was to keep it
        let kept = end.kept();
        let kept_bytes = output_to_bytes(&Output::LdaSegmentKept(kept.clone()));
        let Output::LdaSegmentKept(decoded) = output_from_bytes(&kept_bytes).unwrap() else {
            panic!("not a kept segment's end");
        };
        assert_eq!(decoded, kept);
        refuses_damage(&kept_bytes, |b| output_from_bytes(b).map(|_| ()));
        assert!(crate::work::fits(
            &task,
            &Output::LdaSegmentKept(kept.clone())
        ));
        assert!(crate::work::fits(
            &task,
            &Output::LdaSegment(Box::new(end.clone()))
        ));
        // a segment from a training its worker kept has only a stand-in start: its whole end
        // is checked against the stand-in's shape
        let Task::LdaSegment { input, .. } = &task else {
            unreachable!()
        };
        let from_kept = Task::LdaSegment {
            input: Arc::new(SegmentInput {
                steps: input.steps,
                start: input.start.emptied(),
            }),
            block: chunk(),
            spans: vec![span(3, docs)],
            keep: false,
            from_kept: true,
        };
        assert!(from_kept.kept_input());
        assert!(crate::work::fits(
            &from_kept,
            &Output::LdaSegment(Box::new(end))
        ));
        let mut not_kept = task;
        if let Task::LdaSegment { keep, .. } = &mut not_kept {
            *keep = false;
        }
        assert!(!crate::work::fits(
            &not_kept,
            &Output::LdaSegmentKept(kept.clone())
        ));
        let ahead = crate::jobs::lda::segment::SegmentKept {
            next_chunk: 5,
            ..kept
        };
        assert!(!crate::work::fits(
            &segment(open, vec![span(3, docs)]),
            &Output::LdaSegmentKept(ahead)
        ));
    }
    // a kept segment that reaches its pass's end (chunk 5 of 6) stands at the next pass's
    // start: its worker ends the pass
    let mut last = training(0);
    last.next_chunk = 5;
    let Task::LdaSegment { input, .. } = segment(0, vec![]) else {
        unreachable!()
    };
    let to_the_end = Task::LdaSegment {
        input: Arc::new(SegmentInput {
            steps: input.steps,
            start: last,
        }),
        block: chunk(),
        spans: vec![span(5, docs)],
        keep: true,
        from_kept: false,
    };
    let stands = |pass, next_chunk| {
        Output::LdaSegmentKept(crate::jobs::lda::segment::SegmentKept {
            pass,
            next_chunk,
            per_word_bound: None,
            bounds: vec![],
            compute_secs: 0.5,
        })
    };
    assert!(crate::work::fits(&to_the_end, &stands(2, 0)));
    assert!(!crate::work::fits(&to_the_end, &stands(1, 6)));
    assert!(!crate::work::fits(&to_the_end, &stands(2, 6)));
    // not the start's next chunk; words beyond V; a chunk larger than chunksize
    assert!(round_trip(&segment(0, vec![span(4, docs)])).is_err());
    let mut wide = segment(0, vec![span(3, docs)]);
    if let Task::LdaSegment { block, .. } = &mut wide {
        block.terms[1] = 5;
    }
    assert!(round_trip(&wide).is_err());
    let task = segment(0, vec![span(3, docs)]);
    let Task::LdaSegment { input, .. } = &task else {
        unreachable!()
    };
    let mut small = (**input).clone();
    (small.steps.chunksize, small.steps.chunks) = (2, 28);
    let small = PhaseInput::LdaSegment(Arc::new(small));
    let extra = extra_to_bytes(&task).unwrap();
    assert!(task_from_parts(&small, chunk(), Some(&extra)).is_err());
}

/// A job's first segment carries no model: the worker draws it from the job's seed, the
/// same bits as one drawn here. A training already begun without its model is refused.
#[test]
fn a_first_segment_carries_no_model_and_the_worker_draws_the_same() {
    use crate::jobs::lda::segment::{SegmentInput, train};
    use crate::jobs::lda::training::Training;
    let Task::LdaSegment { input, .. } = segment(0, vec![]) else {
        unreachable!()
    };
    let steps = input.steps;
    let initial = Training::initial(2, vec![0.5, 0.25], vec![0.1; 5]);
    assert!(!initial.is_drawn());
    let input = Arc::new(SegmentInput {
        steps,
        start: initial.clone(),
    });
    let phase = phase_to_bytes(&PhaseInput::LdaSegment(input.clone()));
    let PhaseInput::LdaSegment(back) = phase_from_bytes(&phase).unwrap() else {
        panic!("not a segment");
    };
    assert_eq!(back.start, initial);
    let mut drawn = initial.clone();
    drawn.draw(&steps);
    let with_model = phase_to_bytes(&PhaseInput::LdaSegment(Arc::new(SegmentInput {
        steps,
        start: drawn,
    })));
    assert_eq!(with_model.len() - phase.len(), 8 * 2 * 5, "no K·V model");
    // the first chunk draws the model where it is trained
    let chunk = SparseChunk {
        index: 0,
        first_doc: 0,
        indptr: vec![0, 2, 2, 3],
        terms: vec![0, 4, 2],
        values: vec![1.0, 2.0, 3.0],
    };
    let there = train((*back).clone(), [chunk.clone()]).unwrap();
    let mut drawn = initial.clone();
    drawn.draw(&steps);
    assert!(drawn.is_drawn());
    let start = SegmentInput {
        steps,
        start: drawn,
    };
    let here = train(start, [chunk]).unwrap();
    assert_eq!(there.training, here.training);
    // a training past its start must carry its model
    let mut begun = initial;
    begun.next_chunk = 1;
    let phase = phase_to_bytes(&PhaseInput::LdaSegment(Arc::new(SegmentInput {
        steps,
        start: begun,
    })));
    assert!(phase_from_bytes(&phase).is_err());
}

#[test]
fn a_task_chunk_is_sent_from_its_own_memory_and_read_from_any_pages() {
    let block = chunk();
    let task = Arc::new(Task::LsiSubtree {
        input: OnePassInput {
            num_terms: 5,
            rank: 1,
            extra_samples: 0,
            power_iters: 0,
            seed: 1,
            decay: 1.0,
        },
        node: (3, 4),
        spans: vec![ChunkSpan {
            index: 3,
            first_doc: 30,
            docs: 3,
        }],
        block,
    });
    let pieces = chunk_pieces(&task);
    let bytes = chunk_to_bytes(task.chunk());
    assert_eq!(pieces.concat(), bytes);
    if cfg!(target_endian = "little") {
        // the terms and the values are the task's, not copies
        let at = |p: &Bytes| p.as_ptr() as usize;
        assert_eq!(at(&pieces[1]), task.chunk().terms.as_ptr() as usize);
        assert_eq!(at(&pieces[2]), task.chunk().values.as_ptr() as usize);
    }
    for size in [1, 5, 8, 13, bytes.len()] {
        let back = chunk_from_pieces(&pages(&bytes, size)).unwrap();
        assert!(back.bit_eq(task.chunk()), "pages of {size} bytes");
    }
    assert!(chunk_from_pieces(&pages(&bytes[..bytes.len() - 1], 7)).is_err());
}
