//! GitHub does not redeliver failed webhook deliveries by itself. Every
//! GITHUB_REDELIVERY_INTERVAL_SECS one `sync` job (across all workers) lists the App's recent
//! deliveries and asks GitHub again for those that failed or never reached us.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use shared::db::jobs::{self, NewJob};
use shared::domain::{GithubTarget, JobKind, JobSource};
use shared::queue::Queues;
use tokio_util::sync::CancellationToken;

use crate::WorkerState;

/// The tenant of the App's own periodic jobs.
pub const APP_TENANT: &str = "app:github";

/// Creates the redelivery job once per interval until `stop`.
pub async fn schedule(state: Arc<WorkerState>, queues: Queues, stop: CancellationToken) {
    let interval = state.cfg.redelivery_interval;
    if interval.is_zero() || state.github.is_none() {
        return;
    }
    loop {
        // Spread the workers' timers so they do not all look at the same moment.
        let jitter = std::time::Duration::from_millis(fastrand::u64(0..=interval.as_millis() as u64 / 10));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval + jitter) => {}
        }
        if let Err(e) = create(&state, &queues).await {
            tracing::warn!(error = %e, "could not schedule the webhook redelivery check");
        }
    }
}

async fn create(state: &WorkerState, queues: &Queues) -> Result<(), String> {
    let since = Utc::now() - chrono::Duration::from_std(state.cfg.redelivery_interval).map_err(|e| e.to_string())?;
    let db = &state.db;
    if jobs::created_since(&db.conn, APP_TENANT, JobKind::Sync, since)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(()); // another worker did it this period
    }
    let inserted = jobs::insert(
        &db.conn,
        NewJob {
            kind: JobKind::Sync,
            queue: queues.name(JobKind::Sync),
            source: JobSource::Installation,
            tenant: Some(APP_TENANT.to_owned()),
            max_attempts: state.cfg.limits(JobKind::Sync).max_attempts,
            github: Some(GithubTarget {
                installation_id: 0,
                head_sha: None,
                pr_number: None,
                trigger: json!({ "type": "redeliver" }),
                delivery_id: None,
            }),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    if !inserted.deduplicated {
        shared::relay::enqueue(db, queues, &inserted.job).await?;
    }
    Ok(())
}
