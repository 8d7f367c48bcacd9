//! `topicctl import DIR`: make a model in topicd's export layout a job of the daemon's.
//!
//! DIR holds `u.npy` and `s.npy` (LSI) or `lambda.npy`, `alpha.npy` and `eta.npy` (LDA),
//! and `dictionary.txt`: what `topicctl export --format npy` writes, or
//! `topicd_gensim.save` for a gensim model. An optional `model.json` gives the kind, the
//! number of documents and the parameters by their gensim names (as `topicd_gensim.save`
//! writes them); without it the kind is told by the files and the parameters are topicd's
//! defaults. The files are opened here and passed to the daemon, which reads and checks
//! them (see `topicd::import`); this module reads only `model.json`.

use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Map, Value};
use topicd::corpus::InputFile;
use topicd_protocol::{ImportSpec, LdaParams, LsiParams, ModelSpec};

use super::submit::{local_input, open_input};
use crate::daemon::{Daemon, Patience};
use crate::output;

/// Import the model in `dir` into the daemon at `socket`; print the new job's id (`{"id":
/// N}` with `--json`).
pub async fn run(socket: &Path, patience: Patience, dir: &Path, json: bool) -> anyhow::Result<()> {
    let (spec, files) = prepare(dir)?;
    let files: Vec<&InputFile> = files.iter().collect();
    let daemon = Daemon::connect(socket, patience, &files).await?;
    let id = daemon.import(spec).await?;
    if json {
        output::print_json(&serde_json::json!({ "id": id }))
    } else {
        Ok(output::print(&format!("{id}\n"))?)
    }
}

/// The request for `dir` and its files, open; every mistake that can be seen here is
/// reported before the daemon is contacted.
fn prepare(dir: &Path) -> anyhow::Result<(ImportSpec, Vec<InputFile>)> {
    let dir = local_input("model directory", dir)?;
    if !dir.is_dir() {
        bail!(
            "{} is not a directory: import takes the directory that topicctl export --format \
             npy or topicd_gensim.save wrote",
            dir.display()
        );
    }
    let meta = read_meta(&dir.join("model.json"))?;
    let kind = match meta.get("kind").and_then(Value::as_str) {
        Some(kind) => kind.to_owned(),
        None => kind_of(&dir)?,
    };
    let params = match meta.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(params)) => params.clone(),
        Some(_) => bail!(
            "{}: params must be an object",
            dir.join("model.json").display()
        ),
    };
    let (model, names) = match kind.as_str() {
        "lsi" => (
            ModelSpec::Lsi(lsi_params(&params)?),
            &["u.npy", "s.npy"][..],
        ),
        "lda" => (
            ModelSpec::Lda(lda_params(&params)?),
            &["lambda.npy", "alpha.npy", "eta.npy"][..],
        ),
        other => bail!(
            "{}: kind {other:?} is not a model topicd knows (lsi or lda)",
            dir.join("model.json").display()
        ),
    };
    let mut files = Vec::new();
    for name in names.iter().chain(&["dictionary.txt"]) {
        let path = dir.join(name);
        if !path.exists() {
            bail!(
                "{} has no {name}: an {} model is {} and dictionary.txt",
                dir.display(),
                kind.to_uppercase(),
                names.join(", ")
            );
        }
        files.push(open_input(name, &path)?);
    }
    let num_docs = match meta.get("num_docs") {
        None | Some(Value::Null) => 0,
        Some(n) => n.as_u64().ok_or_else(|| {
            anyhow!(
                "{}: num_docs must be a whole number, not {n}",
                dir.join("model.json").display()
            )
        })?,
    };
    Ok((
        ImportSpec {
            dir,
            model,
            num_docs,
        },
        files,
    ))
}

/// `model.json` as an object; an empty one when there is none.
fn read_meta(path: &Path) -> anyhow::Result<Map<String, Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(meta)) => Ok(meta),
        Ok(_) => bail!("{}: expected a JSON object", path.display()),
        Err(e) => bail!("{}: not valid JSON: {e}", path.display()),
    }
}

/// The kind of model the files of `dir` make, when no `model.json` says.
fn kind_of(dir: &Path) -> anyhow::Result<String> {
    match (dir.join("u.npy").exists(), dir.join("lambda.npy").exists()) {
        (true, false) => Ok("lsi".into()),
        (false, true) => Ok("lda".into()),
        (true, true) => bail!(
            "{} holds both u.npy (LSI) and lambda.npy (LDA): say which in a model.json \
             ({{\"kind\": \"lsi\"}} or {{\"kind\": \"lda\"}})",
            dir.display()
        ),
        (false, false) => bail!(
            "{} holds neither u.npy (LSI) nor lambda.npy (LDA): write it with topicctl export \
             --format npy or topicd_gensim.save",
            dir.display()
        ),
    }
}

/// LDA's parameters: topicd's defaults, replaced by those `params` names.
fn lda_params(params: &Map<String, Value>) -> anyhow::Result<LdaParams> {
    let mut p = LdaParams::default();
    for (key, value) in params {
        match key.as_str() {
            "chunksize" => p.chunksize = whole(key, value)?,
            "passes" => p.passes = whole(key, value)?,
            "update_every" => p.update_every = whole(key, value)?,
            "iterations" => p.iterations = whole(key, value)?,
            // gensim's None: never
            "eval_every" if value.is_null() => p.eval_every = 0,
            "eval_every" => p.eval_every = whole(key, value)?,
            "decay" => p.decay = number(key, value)?,
            "offset" => p.offset = number(key, value)?,
            "gamma_threshold" => p.gamma_threshold = number(key, value)?,
            "minimum_probability" => p.minimum_probability = number(key, value)?,
            _ => {} // gensim's other parameters have no topicd equivalent
        }
    }
    Ok(p)
}

/// LSI's parameters: topicd's defaults, replaced by those `params` names.
fn lsi_params(params: &Map<String, Value>) -> anyhow::Result<LsiParams> {
    let mut p = LsiParams::default();
    for (key, value) in params {
        match key.as_str() {
            "chunksize" => p.chunksize = whole(key, value)?,
            "power_iters" => p.power_iters = whole(key, value)?,
            "extra_samples" => p.extra_samples = whole(key, value)?,
            "decay" => p.decay = number(key, value)?,
            "onepass" => {
                p.onepass = value.as_bool().ok_or_else(|| {
                    anyhow!("model.json: onepass must be true or false, not {value}")
                })?
            }
            _ => {}
        }
    }
    Ok(p)
}

fn whole(key: &str, value: &Value) -> anyhow::Result<u32> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| anyhow!("model.json: {key} must be a whole number, not {value}"))
}

fn number(key: &str, value: &Value) -> anyhow::Result<f64> {
    value
        .as_f64()
        .ok_or_else(|| anyhow!("model.json: {key} must be a number, not {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, names: &[&str]) {
        for name in names {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
    }

    #[test]
    fn the_kind_comes_from_model_json_or_the_files() {
        let dir = tempfile::tempdir().unwrap();
        files(
            dir.path(),
            &["lambda.npy", "alpha.npy", "eta.npy", "dictionary.txt"],
        );
        let (spec, opened) = prepare(dir.path()).unwrap();
        assert_eq!(spec.model, ModelSpec::Lda(LdaParams::default()));
        assert_eq!((spec.num_docs, opened.len()), (0, 4));
        assert!(spec.dir.is_absolute());

        files(dir.path(), &["u.npy"]);
        let e = prepare(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("holds both u.npy (LSI) and lambda.npy (LDA)"),
            "{e}"
        );

        std::fs::write(
            dir.path().join("model.json"),
            r#"{"kind": "lsi", "num_docs": 12, "params": {"chunksize": 500, "onepass": true, "decay": 0.5, "id2word": null}}"#,
        )
        .unwrap();
        let e = prepare(dir.path()).unwrap_err().to_string();
        assert!(
            e.ends_with("has no s.npy: an LSI model is u.npy, s.npy and dictionary.txt"),
            "{e}"
        );
        files(dir.path(), &["s.npy"]);
        let (spec, _) = prepare(dir.path()).unwrap();
        let ModelSpec::Lsi(p) = spec.model else {
            panic!("not LSI")
        };
        assert_eq!(
            (p.chunksize, p.onepass, p.decay, spec.num_docs),
            (500, true, 0.5, 12)
        );
    }

    #[test]
    fn gensim_parameters_become_ldas() {
        let params: Map<String, Value> = serde_json::from_str(
            r#"{"chunksize": 100, "passes": 3, "update_every": 0, "decay": 0.7, "offset": 4.0,
                "iterations": 1000, "gamma_threshold": 1e-10, "eval_every": null,
                "minimum_probability": 0.02, "random_state": 5}"#,
        )
        .unwrap();
        let p = lda_params(&params).unwrap();
        assert_eq!(
            (
                p.chunksize,
                p.passes,
                p.update_every,
                p.iterations,
                p.eval_every
            ),
            (100, 3, 0, 1000, 0)
        );
        assert_eq!(
            (p.decay, p.offset, p.gamma_threshold, p.minimum_probability),
            (0.7, 4.0, 1e-10, 0.02)
        );
        let bad: Map<String, Value> = serde_json::from_str(r#"{"passes": "two"}"#).unwrap();
        assert_eq!(
            lda_params(&bad).unwrap_err().to_string(),
            "model.json: passes must be a whole number, not \"two\""
        );
    }

    #[test]
    fn a_missing_or_wrong_directory_is_refused_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let e = prepare(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(
            e.starts_with("model directory ") && e.ends_with("/nope does not exist"),
            "{e}"
        );
        let e = prepare(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("holds neither u.npy (LSI) nor lambda.npy (LDA)"),
            "{e}"
        );
        std::fs::write(dir.path().join("u.npy"), b"x").unwrap();
        let e = prepare(&dir.path().join("u.npy")).unwrap_err().to_string();
        let not_a_directory = "/u.npy is not a directory: import takes the directory that \
                               topicctl export --format npy or topicd_gensim.save wrote";
        assert!(e.ends_with(not_a_directory), "{e}");
        std::fs::remove_file(dir.path().join("u.npy")).unwrap();
        std::fs::write(dir.path().join("model.json"), "[1]").unwrap();
        let e = prepare(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with("model.json: expected a JSON object"), "{e}");
    }
}
