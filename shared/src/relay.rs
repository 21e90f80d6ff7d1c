//! The outbox relay: pushes job rows that are not on their queue yet (the push right after
//! insert failed, the process died in between, or a retry came due) and hands jobs whose
//! worker died (lease expired) back to the queue. Runs in every role; concurrent relays are
//! safe because each push is claimed with a conditional UPDATE first.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::{Db, jobs};
use crate::domain::JobKind;
use crate::queue::Queues;

/// Rows younger than this are left to the writer that is about to push them.
const SETTLE: chrono::Duration = chrono::Duration::seconds(2);
const BATCH: u64 = 200;

/// Pushes one job and records it; on a failed push the row goes back to the outbox.
pub async fn enqueue(db: &Db, queues: &Queues, kind: JobKind, id: &str) -> Result<bool, String> {
    if !jobs::mark_enqueued(&db.conn, id).await.map_err(|e| e.to_string())? {
        return Ok(false); // someone else pushed it, or it is no longer due
    }
    if let Err(e) = queues.push(kind, id).await {
        let _ = jobs::unmark_enqueued(&db.conn, id).await;
        return Err(e.to_string());
    }
    Ok(true)
}

/// One pass: reap expired leases, then push what is due. Returns how many were pushed.
pub async fn relay_once(db: &Db, queues: &Queues) -> Result<usize, String> {
    let reaped = jobs::reap_expired_leases(&db.conn).await.map_err(|e| e.to_string())?;
    if reaped > 0 {
        tracing::warn!(reaped, "returned jobs with expired leases to the queue");
    }
    let due = jobs::outbox(&db.conn, SETTLE, BATCH).await.map_err(|e| e.to_string())?;
    let mut pushed = 0;
    for job in due {
        let Ok(kind) = job.kind.parse::<JobKind>() else {
            tracing::error!(job_id = %job.id, kind = %job.kind, "job of unknown kind left in the outbox");
            continue;
        };
        match enqueue(db, queues, kind, &job.id).await {
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

/// Runs [`relay_once`] every `interval` until `stop` is cancelled.
pub async fn run(db: Db, queues: Queues, interval: Duration, stop: CancellationToken) {
    loop {
        match relay_once(&db, &queues).await {
            Ok(n) if n > 0 => tracing::info!(pushed = n, "relay enqueued jobs from the outbox"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "relay pass failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
