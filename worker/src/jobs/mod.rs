//! One module per job kind. Each takes the job row and returns the result JSON stored on it.

mod analysis;
mod ask;
mod ci_gen;
pub(crate) mod github;
mod sync;

use std::path::PathBuf;

use serde_json::Value;
use shared::analysis::{AnalysisReport, AnalyzeOptions};
use shared::db::job::Model as Job;
use shared::domain::JobKind;

use crate::WorkerState;
use crate::error::JobError;

/// Runs `job` to completion.
pub async fn run(kind: JobKind, job: &Job, state: &WorkerState) -> Result<Value, JobError> {
    if job.installation_id.is_some() || job.trigger.is_some() {
        return github::run(kind, job, state).await;
    }
    let opts = &state.analyze;
    match kind {
        JobKind::Analysis => analysis::run(job, opts, state.router.as_ref(), &state.db, None).await,
        JobKind::CiGen => ci_gen::run(job, opts, state.router.as_ref(), &state.db).await,
        JobKind::Sync => sync::run(job, opts).await,
    }
}

/// The local checkout a job works on. Repository sources need the GitHub integration.
fn checkout(job: &Job) -> Result<PathBuf, JobError> {
    match (&job.path, &job.repo) {
        (Some(p), _) => Ok(PathBuf::from(p)),
        (None, Some(repo)) => Err(JobError::Permanent(format!(
            "repository {repo}: GitHub sources need the GitHub App configuration (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY)"
        ))),
        (None, None) => Err(JobError::Permanent("job has neither a path nor a repo".into())),
    }
}

/// Analyses the job's checkout off the async runtime (the walk is blocking file I/O).
async fn analyse_checkout(job: &Job, opts: &AnalyzeOptions) -> Result<AnalysisReport, JobError> {
    let root = checkout(job)?;
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || shared::analysis::analyze(&root, &opts))
        .await
        .map_err(|e| JobError::Retryable(format!("analyser task failed: {e}")))?
        .map_err(JobError::from)
}

/// The part of every result that says where it came from.
fn provenance(job: &Job) -> Value {
    serde_json::json!({
        "source": { "path": job.path, "repo": job.repo, "ref": job.git_ref },
        "model": "offline",
        "fallbacks": [],
    })
}

/// Merges `extra` into the provenance object.
fn result_with(job: &Job, extra: Value) -> Value {
    let mut v = provenance(job);
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}
