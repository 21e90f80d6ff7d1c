//! The outbox relay: pushes job rows that are not on their queue yet (the push right after
//! insert failed, the process died in between, or a retry came due) and hands jobs whose
//! worker died (lease expired) back to the queue. Runs in every role; concurrent relays are
//! safe because each push is claimed with a conditional UPDATE first.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::db::job::Model as Job;
use crate::db::{Db, jobs};
use crate::domain::JobKind;
use crate::queue::Queues;

/// Rows younger than this are left to the writer that is about to push them.
const SETTLE: chrono::Duration = chrono::Duration::seconds(2);
const BATCH: u64 = 200;

/// The key of one push of `job`: the same job at the same attempt (and replay) has the same
/// key, so re-pushing it is a no-op while the queue still holds it.
pub fn push_key(job: &Job) -> String {
    let replays = job.history.as_ref().and_then(|h| h.as_array()).map_or(0, Vec::len);
    format!("{}:{}:{}", job.id, job.attempts, replays)
}

/// Pushes one job and records it; on a failed push the row goes back to the outbox.
pub async fn enqueue(db: &Db, queues: &Queues, job: &Job) -> Result<bool, String> {
    let kind = job.kind.parse::<JobKind>()?;
    if !jobs::mark_enqueued(&db.conn, &job.id)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(false); // someone else pushed it, or it is no longer due
    }
    // A queue that is down or slow fails fast (see `Queues::push`): the job stays in the outbox.
    if let Err(e) = queues.push(kind, &job.id, &push_key(job)).await {
        let _ = jobs::unmark_enqueued(&db.conn, &job.id).await;
        return Err(e.to_string());
    }
    Ok(true)
}

/// Pushes a job stored already claimed for its push ([`jobs::insert_in`] with `claim_push`);
/// on a failed push the row goes back to the outbox, as with [`enqueue`].
pub async fn push_claimed(db: &Db, queues: &Queues, job: &Job) -> Result<(), String> {
    let kind = job.kind.parse::<JobKind>()?;
    if let Err(e) = queues.push(kind, &job.id, &push_key(job)).await {
        let _ = jobs::unmark_enqueued(&db.conn, &job.id).await;
        return Err(e.to_string());
    }
    Ok(())
}

/// Re-pushes jobs that were handed to the queue long ago and have not started: their message
/// may be gone (Redis restarted without persistence). Same push key, so a message that is
/// still there is not doubled.
pub async fn repush_stale(db: &Db, queues: &Queues, older_than: chrono::Duration) -> Result<usize, String> {
    let stale = jobs::stale_enqueued(&db.conn, older_than, BATCH)
        .await
        .map_err(|e| e.to_string())?;
    let mut pushed = 0;
    for job in stale {
        let Ok(kind) = job.kind.parse::<JobKind>() else {
            continue;
        };
        queues
            .push(kind, &job.id, &push_key(&job))
            .await
            .map_err(|e| e.to_string())?;
        jobs::touch_enqueued(&db.conn, &job.id)
            .await
            .map_err(|e| e.to_string())?;
        pushed += 1;
    }
    Ok(pushed)
}

/// One pass: reap expired leases, then push what is due. Returns how many were pushed.
pub async fn relay_once(db: &Db, queues: &Queues) -> Result<usize, String> {
    if let Err(e) = queues.promote_due().await {
        tracing::warn!(error = %e, "could not promote due jobs");
    }
    let reaped = jobs::reap_expired_leases(&db.conn).await.map_err(|e| e.to_string())?;
    if reaped > 0 {
        tracing::warn!(reaped, "returned jobs with expired leases to the queue");
    }
    let due = jobs::outbox(&db.conn, SETTLE, BATCH).await.map_err(|e| e.to_string())?;
    let mut pushed = 0;
    for job in due {
        match enqueue(db, queues, &job).await {
            Ok(true) => pushed += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(job_id = %job.id, error = %e, "queue unavailable; job stays in the outbox");
                break;
            }
        }
    }
    Ok(pushed)
}

/// How often the relay does each of its chores.
#[derive(Clone, Copy, Debug)]
pub struct RelaySettings {
    /// Outbox pushes and the lease reaper.
    pub interval: Duration,
    /// Re-push of jobs enqueued this long ago that have not started.
    pub repush_after: Duration,
    /// Cleanup of the queue's records of finished tasks.
    pub cleanup_every: Duration,
}

impl From<&crate::config::Config> for RelaySettings {
    fn from(cfg: &crate::config::Config) -> Self {
        RelaySettings {
            interval: cfg.relay_interval,
            repush_after: cfg.repush_after,
            cleanup_every: cfg.cleanup_interval,
        }
    }
}

/// Runs [`relay_once`] every `interval` until `stop` is cancelled; [`repush_stale`] and the
/// queue cleanup at their own, longer periods.
pub async fn run(db: Db, queues: Queues, settings: RelaySettings, stop: CancellationToken) {
    let (mut last_repush, mut last_cleanup) = (Instant::now(), Instant::now());
    let repush_age = chrono::Duration::from_std(settings.repush_after).unwrap_or(chrono::Duration::MAX);
    loop {
        match relay_once(&db, &queues).await {
            Ok(n) if n > 0 => tracing::info!(pushed = n, "relay enqueued jobs from the outbox"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "relay pass failed"),
        }
        if last_repush.elapsed() >= settings.repush_after {
            last_repush = Instant::now();
            match repush_stale(&db, &queues, repush_age).await {
                Ok(n) if n > 0 => tracing::warn!(repushed = n, "re-pushed jobs whose queue message may have been lost"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "re-push of stale jobs failed"),
            }
        }
        if last_cleanup.elapsed() >= settings.cleanup_every {
            last_cleanup = Instant::now();
            match queues.cleanup_finished().await {
                Ok(n) if n > 0 => tracing::debug!(cleaned = n, "cleaned finished tasks from the queue"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "queue cleanup failed"),
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(settings.interval) => {}
        }
    }
}
