//! Checking a job before it is queued: parameters in range, paths absolute. The daemon
//! runs these checks on every submit; `topicctl` runs them before it sends, so a mistake is
//! reported without a daemon.

use crate::{ApiError, JobSpec, LdaParams, ModelSpec, Prior};

/// Largest `num_topics` a job may ask for.
pub const MAX_TOPICS: u32 = 100_000;

/// Check a job before it is queued: parameters in range, paths absolute.
pub(crate) fn validate(spec: &JobSpec) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::InvalidSpec(m));
    for (what, path) in [("corpus", &spec.corpus), ("dictionary", &spec.dictionary)] {
        if !path.is_absolute() {
            return invalid(format!(
                "the {what} path {} must be absolute",
                path.display()
            ));
        }
    }
    match &spec.model {
        ModelSpec::Lsi(p) => {
            if let (Some(from), false) = (&spec.init_from, p.onepass) {
                return invalid(format!(
                    "init_from (job {}) with LSI needs onepass: the new documents are merged \
                     into the model as gensim's add_documents does, chunk after chunk; the \
                     multi-pass algorithm decomposes a whole corpus (to use it, train a new \
                     model on the old and new documents together)",
                    from.job
                ));
            }
            if p.num_topics == 0 || p.num_topics > MAX_TOPICS {
                return invalid(format!(
                    "num_topics must be between 1 and {MAX_TOPICS}, not {}",
                    p.num_topics
                ));
            }
            if p.chunksize == 0 || p.chunksize > 10_000_000 {
                return invalid(format!(
                    "chunksize must be between 1 and 10000000, not {}",
                    p.chunksize
                ));
            }
            if !(p.decay > 0.0 && p.decay <= 1.0) {
                return invalid(format!("decay must be in (0, 1], not {}", p.decay));
            }
            if p.power_iters > 50 {
                return invalid(format!(
                    "power_iters must be at most 50, not {}",
                    p.power_iters
                ));
            }
            if p.extra_samples > MAX_TOPICS {
                return invalid(format!(
                    "extra_samples must be at most {MAX_TOPICS}, not {}",
                    p.extra_samples
                ));
            }
        }
        ModelSpec::Lda(p) => {
            if spec.input.tfidf {
                return invalid(
                    "tfidf is for LSI: LDA models word counts, so it takes the corpus of counts \
                     as it is"
                        .into(),
                );
            }
            validate_lda(p)?
        }
    }
    Ok(())
}

/// LDA's parameters, checked as gensim checks them, and more strictly where gensim would
/// fail late or silently.
fn validate_lda(p: &LdaParams) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::InvalidSpec(m));
    if p.num_topics == 0 || p.num_topics > MAX_TOPICS {
        return invalid(format!(
            "num_topics must be between 1 and {MAX_TOPICS}, not {}",
            p.num_topics
        ));
    }
    if p.chunksize == 0 || p.chunksize > 10_000_000 {
        return invalid(format!(
            "chunksize must be between 1 and 10000000, not {}",
            p.chunksize
        ));
    }
    // Hoffman et al. need κ ∈ (0.5, 1] for convergence; gensim documents that interval but
    // defaults to 0.5 itself, so 0.5 is accepted too.
    if !(p.decay >= 0.5 && p.decay <= 1.0) {
        return invalid(format!("decay must be in [0.5, 1], not {}", p.decay));
    }
    if !(p.offset.is_finite() && p.offset >= 0.0) {
        return invalid(format!("offset must be a number >= 0, not {}", p.offset));
    }
    if p.passes == 0 || p.passes > 10_000 {
        return invalid(format!(
            "passes must be between 1 and 10000, not {}",
            p.passes
        ));
    }
    if p.iterations == 0 || p.iterations > 100_000 {
        return invalid(format!(
            "iterations must be between 1 and 100000, not {}",
            p.iterations
        ));
    }
    if !(p.gamma_threshold.is_finite() && p.gamma_threshold >= 0.0) {
        return invalid(format!(
            "gamma_threshold must be a number >= 0, not {}",
            p.gamma_threshold
        ));
    }
    if !(0.0..=1.0).contains(&p.minimum_probability) {
        return invalid(format!(
            "minimum_probability must be in [0, 1], not {}",
            p.minimum_probability
        ));
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    match &p.alpha {
        Prior::Scalar(x) if !positive(*x) => {
            return invalid(format!("alpha must be positive, not {x}"));
        }
        Prior::List(v) if v.len() != p.num_topics as usize => {
            return invalid(format!(
                "alpha has {} values but there are {} topics",
                v.len(),
                p.num_topics
            ));
        }
        Prior::List(v) if !v.iter().all(|&x| positive(x)) => {
            return invalid("every alpha value must be positive".into());
        }
        _ => {}
    }
    match &p.eta {
        Prior::Scalar(x) if !positive(*x) => invalid(format!("eta must be positive, not {x}")),
        Prior::Asymmetric | Prior::List(_) => {
            invalid("eta must be symmetric, auto or a number".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn spec() -> JobSpec {
        JobSpec {
            corpus: "/c.mm".into(),
            dictionary: "/d.txt".into(),
            seed: 1,
            model: ModelSpec::Lsi(LsiParams::default()),
            input: InputSpec::default(),
            init_from: None,
        }
    }

    #[test]
    fn validation_names_the_bad_parameter() {
        assert!(spec().validate().is_ok());
        let with = |f: fn(&mut LsiParams)| {
            let mut s = spec();
            let ModelSpec::Lsi(p) = &mut s.model else {
                unreachable!()
            };
            f(p);
            s.validate().unwrap_err().to_string()
        };
        assert!(with(|p| p.num_topics = 0).contains("num_topics"));
        assert!(with(|p| p.chunksize = 0).contains("chunksize"));
        assert!(with(|p| p.decay = 1.5).contains("decay"));
        assert!(with(|p| p.decay = f64::NAN).contains("decay"));
        assert!(with(|p| p.power_iters = 1000).contains("power_iters"));
        let mut continued = spec();
        continued.init_from = Some(InitFrom {
            job: 3,
            docs_before: 0,
        });
        assert!(
            continued
                .validate()
                .unwrap_err()
                .to_string()
                .contains("init_from (job 3) with LSI needs onepass")
        );
        let mut relative = spec();
        relative.corpus = "c.mm".into();
        assert!(
            relative
                .validate()
                .unwrap_err()
                .to_string()
                .contains("absolute")
        );
    }

    #[test]
    fn lda_validation_refuses_what_gensim_would_and_more() {
        let lda = |f: fn(&mut LdaParams)| {
            let mut p = LdaParams {
                num_topics: 4,
                ..LdaParams::default()
            };
            f(&mut p);
            let s = JobSpec {
                model: ModelSpec::Lda(p),
                ..spec()
            };
            s.validate().err().map(|e| e.to_string())
        };
        assert_eq!(lda(|_| {}), None);
        assert_eq!(lda(|p| p.alpha = Prior::List(vec![0.1; 4])), None);
        assert!(lda(|p| p.num_topics = 0).unwrap().contains("num_topics"));
        let mut tfidf = JobSpec {
            model: ModelSpec::Lda(LdaParams::default()),
            ..spec()
        };
        tfidf.input.tfidf = true;
        assert!(
            tfidf
                .validate()
                .unwrap_err()
                .to_string()
                .contains("tfidf is for LSI")
        );
        assert_eq!(lda(|p| p.decay = 0.5), None, "gensim's own default");
        assert!(lda(|p| p.decay = 0.49).unwrap().contains("decay"));
        assert!(lda(|p| p.decay = 1.01).unwrap().contains("decay"));
        assert!(
            lda(|p| p.alpha = Prior::List(vec![0.1; 3]))
                .unwrap()
                .contains("3 values but there are 4 topics")
        );
        assert!(
            lda(|p| p.alpha = Prior::Scalar(0.0))
                .unwrap()
                .contains("alpha must be positive")
        );
        assert!(
            lda(|p| p.alpha = Prior::List(vec![0.1, 0.1, -1.0, 0.1]))
                .unwrap()
                .contains("positive")
        );
        assert!(
            lda(|p| p.eta = Prior::Scalar(-0.1))
                .unwrap()
                .contains("eta must be positive")
        );
        assert!(
            lda(|p| p.eta = Prior::Asymmetric)
                .unwrap()
                .contains("eta must be")
        );
        assert!(lda(|p| p.passes = 0).unwrap().contains("passes"));
    }
}
