//! Runs one queue message: claim the job row, run it under a timeout, record the outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use shared::analysis::AnalyzeOptions;
use shared::config::Config;
use shared::db::Db;
use shared::db::job::Model as Job;
use shared::db::jobs::{self, Outcome};
use shared::domain::{JobKind, JobMessage};
use shared::models::ModelService;
use tracing::Instrument;

use crate::error::JobError;

/// What every handler invocation needs; shared by the workers of one process.
pub struct WorkerState {
    pub db: Db,
    pub cfg: Config,
    /// Unique per process run: the lease holder written on claimed rows.
    pub worker_id: String,
    pub analyze: AnalyzeOptions,
    /// Model chains per job kind, quota guard and policy; `None` when no provider is configured
    /// (offline analyser only).
    pub router: Option<ModelService>,
    /// The GitHub App client; `None` without GITHUB_APP_ID (repository jobs then fail).
    pub github: Option<shared::github::GithubApp>,
    /// Activity per queue, for the watchdog and /ready.
    pub health: Arc<shared::pool_health::PoolHealth>,
}

impl std::fmt::Debug for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerState")
            .field("worker_id", &self.worker_id)
            .field("router", &self.router.is_some())
            .field("github", &self.github.is_some())
            .finish_non_exhaustive()
    }
}

/// Backoff before attempt `attempt + 1`: exponential with full jitter, 2 s base, 5 min cap.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = 2_000u64.saturating_mul(1u64 << attempt.min(16)).min(300_000);
    Duration::from_millis(fastrand::u64(0..=ceiling))
}

/// Handles one message of `kind`'s queue. Errors returned here are infrastructure errors
/// (the database is unreachable): the queue backend redelivers the message.
pub async fn handle(kind: JobKind, msg: JobMessage, state: Arc<WorkerState>) -> Result<(), String> {
    let _running = state.health.message(kind);
    let Some(job) = jobs::claim(&state.db.conn, &msg.job_id, &state.worker_id, lease_end(&state))
        .await
        .map_err(|e| e.to_string())?
    else {
        // Finished, cancelled, not due, or running elsewhere: this message is a duplicate.
        tracing::info!(job_id = %msg.job_id, %kind, "message for a job that is not claimable; dropped");
        return Ok(());
    };
    let span = tracing::info_span!(
        "job",
        job_id = %job.id,
        kind = %kind,
        repo = job.repo.as_deref().unwrap_or("-"),
        installation = job.tenant.as_deref().unwrap_or("-"),
        attempt = job.attempts,
    );
    async move {
        // If this future is dropped mid-run (the queue consumer was restarted under it), the job
        // goes straight back to the queue instead of waiting for its lease to expire.
        let mut guard = HandBack {
            state: &state,
            id: Some(job.id.clone()),
        };
        let started = Instant::now();
        let res = if job.attempts > job.max_attempts {
            // A worker died during the last allowed attempt.
            Err(JobError::Retryable(
                job.error.clone().unwrap_or_else(|| "worker lost".into()),
            ))
        } else {
            tracing::info!("job started");
            let timeout = state.cfg.limits(kind).timeout;
            let run = tokio::time::timeout(timeout, crate::jobs::run(kind, &job, &state));
            let res = tokio::select! {
                r = run => match r {
                    Ok(r) => r,
                    Err(_) => Err(JobError::Retryable(format!("timed out after {timeout:?}"))),
                },
                lost = keep_lease(&state, &job.id) => Err(JobError::Retryable(lost)),
            };
            res
        };
        let mut outcome = outcome_of(res, job.attempts as u32, job.max_attempts as u32);
        match &mut outcome {
            Outcome::Retry { error, history, .. } | Outcome::Dead { error, history } => {
                *history = history_with(&job, &state.worker_id, Some(error));
            }
            Outcome::Succeeded { history, .. } => *history = history_with(&job, &state.worker_id, None),
            Outcome::Deferred { .. } => {}
        }
        let label = match &outcome {
            Outcome::Succeeded { .. } => "succeeded",
            Outcome::Retry { .. } => "retrying",
            Outcome::Dead { .. } => "dead",
            Outcome::Deferred { .. } => "deferred",
        };
        match &outcome {
            Outcome::Succeeded { .. } => {
                tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "job succeeded")
            }
            Outcome::Retry { error, at, .. } => tracing::warn!(%error, retry_at = %at, "job failed; will retry"),
            Outcome::Deferred { reason, at } => tracing::info!(%reason, run_at = %at, "job deferred"),
            Outcome::Dead { error, .. } => {
                tracing::error!(%error, "job failed permanently");
                shared::telemetry::report_error(
                    &format!("job dead: {error}"),
                    &[("job_id", &job.id), ("kind", kind.as_str()), ("queue", &job.queue)],
                );
            }
        }
        metrics::counter!("autodevops_jobs_total", "queue" => kind.queue(), "outcome" => label).increment(1);
        metrics::histogram!("autodevops_job_duration_seconds", "queue" => kind.queue())
            .record(started.elapsed().as_secs_f64());
        guard.disarm();
        let dead = matches!(outcome, Outcome::Dead { .. });
        let recorded = jobs::finish(&state.db.conn, &job.id, &state.worker_id, outcome)
            .await
            .map_err(|e| e.to_string())?;
        if !recorded {
            tracing::warn!("job was taken over, cancelled or superseded while running; result discarded");
        }
        if dead || !recorded {
            // A dead or superseded GitHub job's check run is completed, never left in progress.
            crate::jobs::github::close_check_run(&state, &job.id).await;
        }
        Ok(())
    }
    .instrument(span)
    .await
}

/// A lease is short and renewed while the job runs, so a dead worker's jobs come back
/// within JOB_LEASE_SECS (the relay's reaper returns them to the queue).
fn lease_end(state: &WorkerState) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(state.cfg.job_lease).expect("bounded")
}

/// Renews the lease until it is lost; returns why (only when lost).
async fn keep_lease(state: &WorkerState, id: &str) -> String {
    loop {
        tokio::time::sleep(state.cfg.job_lease / 3).await;
        match jobs::renew_lease(&state.db.conn, id, &state.worker_id, lease_end(state)).await {
            Ok(true) => {}
            Ok(false) => return "lease lost: the job was taken over or cancelled".to_owned(),
            Err(e) => tracing::warn!(error = %e, "cannot renew lease; retrying"),
        }
    }
}

/// Hands a claimed job back when dropped while still armed.
struct HandBack<'a> {
    state: &'a WorkerState,
    id: Option<String>,
}

impl HandBack<'_> {
    fn disarm(&mut self) {
        self.id = None;
    }
}

impl Drop for HandBack<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let (db, worker) = (self.state.db.clone(), self.state.worker_id.clone());
            tracing::warn!(job_id = %id, "run abandoned; handing the job back to the queue");
            tokio::spawn(async move {
                if let Err(e) = jobs::release_job(&db.conn, &id, &worker).await {
                    tracing::warn!(job_id = %id, error = %e, "could not hand the job back; its lease will expire");
                }
            });
        }
    }
}

/// The outcome of a run by the error's class and the attempts left (history filled in later).
fn outcome_of(res: Result<Value, JobError>, attempt: u32, max_attempts: u32) -> Outcome {
    match res {
        Err(JobError::Deferred { until, reason }) => Outcome::Deferred { reason, at: until },
        Ok(v) => Outcome::Succeeded {
            result: v,
            history: Value::Null,
        },
        Err(e) if e.is_retryable() && attempt < max_attempts => Outcome::Retry {
            error: e.to_string(),
            at: Utc::now() + chrono::Duration::from_std(backoff(attempt)).expect("bounded"),
            history: Value::Null,
        },
        Err(e) if e.is_retryable() => Outcome::Dead {
            error: format!("gave up after {} attempts: {e}", attempt.min(max_attempts)),
            history: Value::Null,
        },
        Err(e) => Outcome::Dead {
            error: e.to_string(),
            history: Value::Null,
        },
    }
}

/// The job's failed attempts plus this one. An attempt lost with its worker (the reaper wrote
/// its error but no entry) is recorded too.
fn history_with(job: &Job, worker: &str, error: Option<&str>) -> Value {
    let mut entries = job
        .history
        .as_ref()
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let last_error = entries.last().and_then(|e| e["error"].as_str().map(str::to_owned));
    if let Some(lost) = &job.error
        && last_error.as_deref() != Some(lost.as_str())
    {
        entries.push(json!({ "attempt": job.attempts - 1, "worker": null, "at": null, "error": lost }));
    }
    if let Some(error) = error {
        entries.push(json!({ "attempt": job.attempts, "worker": worker, "at": Utc::now(), "error": error }));
    }
    Value::Array(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_full_jitter_and_a_cap() {
        for attempt in 0..30 {
            let ceiling = (2_000u64 << attempt.min(16)).min(300_000);
            for _ in 0..50 {
                assert!(backoff(attempt).as_millis() as u64 <= ceiling);
            }
        }
        let late: Vec<_> = (0..200).map(|_| backoff(20).as_millis()).collect();
        assert!(
            late.iter().any(|&d| d > 150_000),
            "jitter spans the range up to the cap"
        );
    }

    #[test]
    fn outcomes_follow_the_classification() {
        let retry = outcome_of(Err(JobError::Retryable("io".into())), 1, 3);
        assert!(matches!(retry, Outcome::Retry { .. }));
        let exhausted = outcome_of(Err(JobError::Retryable("io".into())), 3, 3);
        assert!(matches!(exhausted, Outcome::Dead { ref error, .. } if error.contains("after 3 attempts")));
        let permanent = outcome_of(Err(JobError::Permanent("bad".into())), 1, 3);
        assert!(matches!(permanent, Outcome::Dead { ref error, .. } if error == "bad"));
    }
}
