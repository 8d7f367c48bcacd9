//! The small job commands: `list`, `status`, `cancel`, `resume`, and `info` and `workers`
//! about the daemon itself.

use std::collections::HashMap;

use indicatif::HumanBytes;
use jiff::tz::TimeZone;
use topicd_protocol::{JobId, JobInfo, JobState};

use crate::daemon::Daemon;
use crate::output;

/// `list`: the job table with each job's disk use, or every `JobInfo` as a JSON array with
/// the key `disk_bytes` added to each.
pub async fn list(daemon: &Daemon, json: bool) -> anyhow::Result<()> {
    let jobs = daemon.list().await?;
    let disk: HashMap<JobId, u64> = daemon
        .disk_use()
        .await?
        .into_iter()
        .map(|d| (d.job, d.store_bytes.saturating_add(d.cache_bytes)))
        .collect();
    if json {
        let mut values = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let mut value = serde_json::to_value(job)?;
            if let Some(object) = value.as_object_mut() {
                object.insert("disk_bytes".into(), disk.get(&job.id).copied().into());
            }
            values.push(value);
        }
        output::print_json(&values)
    } else {
        Ok(output::print(&output::job_table(
            &jobs,
            &disk,
            &TimeZone::system(),
        ))?)
    }
}

/// `gc`: remove what no job needs; print what was removed (`--json`: the daemon's
/// `Collected`).
pub async fn gc(daemon: &Daemon, json: bool) -> anyhow::Result<()> {
    let collected = daemon.gc().await?;
    if json {
        return output::print_json(&collected);
    }
    let mut text = format!(
        "removed {} blob files ({}) no job names and {} chunk caches ({}): {} freed\n",
        collected.blobs,
        HumanBytes(collected.blob_bytes),
        collected.caches,
        HumanBytes(collected.cache_bytes),
        HumanBytes(collected.blob_bytes.saturating_add(collected.cache_bytes)),
    );
    if collected.quarantine_bytes > 0 {
        text.push_str(&format!(
            "kept {} in the store's quarantine (blobs/quarantine/ in the data directory): remove it by hand once nothing there is needed\n",
            HumanBytes(collected.quarantine_bytes)
        ));
    }
    Ok(output::print(&text)?)
}

/// `status`: the job's summary, or its `JobInfo` in JSON with the keys `workers` (the
/// number of workers on it while it runs on a dispatcher, else `null`) and `reads` (where
/// its passes read the corpus from: `"corpus"`, `"corpus_writing_cache"`, `"cache"` or
/// `{"corpus_not_cached": REASON}`; `null` when no run of it is known to the daemon).
pub async fn status(daemon: &Daemon, job: JobId, json: bool) -> anyhow::Result<()> {
    let info = daemon.status(job).await?;
    let workers = match info.state {
        JobState::Running => daemon.job_workers(job).await?,
        _ => None,
    };
    let live = output::LiveFacts {
        workers,
        reads: daemon.job_reads(job).await?,
    };
    if json {
        let mut value = serde_json::to_value(&info)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("workers".into(), workers.into());
            object.insert("reads".into(), serde_json::to_value(&live.reads)?);
        }
        output::print_json(&value)
    } else {
        Ok(output::print(&output::job_summary(
            &info,
            &live,
            &TimeZone::system(),
        ))?)
    }
}

/// `cancel`: print the job's new state.
pub async fn cancel(daemon: &Daemon, job: JobId, json: bool) -> anyhow::Result<()> {
    new_state(&daemon.cancel(job).await?, json)
}

/// `resume`: print the job's new state.
pub async fn resume(daemon: &Daemon, job: JobId, json: bool) -> anyhow::Result<()> {
    new_state(&daemon.resume(job).await?, json)
}

/// `rm`: delete the jobs one by one, printing each with the space freed (`--json`: a list
/// of `{"job": N, "freed_bytes": B}`).
pub async fn remove(daemon: &Daemon, jobs: &[JobId], json: bool) -> anyhow::Result<()> {
    let mut deleted = Vec::new();
    for &job in jobs {
        let freed = match daemon.delete(job).await {
            Ok(freed) => freed,
            Err(e) => {
                if json && !deleted.is_empty() {
                    output::print_json(&deleted)?;
                }
                return Err(e);
            }
        };
        if !json {
            output::print(&format!(
                "job {job} deleted ({} freed)\n",
                HumanBytes(freed)
            ))?;
        }
        deleted.push(serde_json::json!({ "job": job, "freed_bytes": freed }));
    }
    if json {
        output::print_json(&deleted)?;
    }
    Ok(())
}

/// The state after `cancel` or `resume`: its name, or the whole `JobInfo` in JSON.
fn new_state(info: &JobInfo, json: bool) -> anyhow::Result<()> {
    if json {
        output::print_json(info)
    } else {
        Ok(output::print(&format!("{}\n", info.state))?)
    }
}

/// `info`: who the daemon is.
pub async fn info(daemon: &Daemon, json: bool) -> anyhow::Result<()> {
    let info = daemon.info().await?;
    if json {
        return output::print_json(&info);
    }
    let text = format!(
        "version   {}\nrole      {}\nblas      {}\nthreads   {}\ndata dir  {}\n",
        output::printable(&info.version),
        output::printable(&info.role),
        output::printable(&info.blas),
        info.threads,
        output::printable_path(&info.data_dir),
    );
    Ok(output::print(&text)?)
}

/// `workers`: the dispatcher's workers as a table, or a JSON array of them.
pub async fn workers(daemon: &Daemon, json: bool) -> anyhow::Result<()> {
    let workers = daemon.workers().await?;
    if json {
        return output::print_json(&workers);
    }
    if workers.is_empty() {
        let info = daemon.info().await?;
        let text = match info.role.as_str() {
            "dispatcher" => "no worker has connected yet\n".to_string(),
            role => format!(
                "topicd runs as {}: it has no workers\n",
                output::printable(role)
            ),
        };
        return Ok(output::print(&text)?);
    }
    Ok(output::print(&output::worker_table(&workers))?)
}
