//! The pool's watchdog. A queue consumer can end without the process noticing (apalis-redis#76:
//! a Redis response timeout becomes a fatal stream error), and queue messages can be lost with
//! Redis. Either way jobs wait while workers idle. Every few seconds the watchdog compares the
//! jobs table (the truth) with this process's activity: when a queue has jobs pending longer
//! than WORKER_STALL_SECS while this process has room for them and has received none for as
//! long, the pool is stalled — /ready says so, and the pool is restarted (new consumers) with the
//! waiting jobs pushed again (same push keys: a message still queued is not doubled).

use std::sync::Arc;
use std::time::Duration;

use shared::db::Db;
use shared::domain::JobKind;
use shared::pool_health::PoolHealth;

/// How often the watchdog looks.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Why `kind`'s queue counts as stalled in this process, if it does.
fn stalled_queue(
    health: &PoolHealth,
    kind: JobKind,
    depth: &shared::db::jobs::QueueDepth,
    stall_after: Duration,
    concurrency: usize,
) -> Option<String> {
    let waited = Duration::from_secs_f64(depth.oldest_pending_age_s.max(0.0));
    let idle = Duration::from_millis(health.idle_ms(kind));
    (depth.pending > 0 && waited >= stall_after && idle >= stall_after && health.running(kind) < concurrency).then(
        || {
            format!(
                "queue {kind}: {} job(s) pending for {}s while this worker had room and received none for {}s",
                depth.pending,
                waited.as_secs(),
                idle.as_secs()
            )
        },
    )
}

/// Watches until the pool is stalled; returns why. Never returns when `stall_after` is zero.
pub async fn watch(health: Arc<PoolHealth>, db: Db, stall_after: Duration, concurrency: usize) -> String {
    if stall_after.is_zero() {
        return std::future::pending().await;
    }
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let depth = match shared::db::jobs::depth(&db.conn).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "watchdog cannot read queue depth");
                continue;
            }
        };
        let why: Vec<String> = depth
            .iter()
            .filter_map(|(kind, d)| stalled_queue(&health, *kind, d, stall_after, concurrency))
            .collect();
        if !why.is_empty() {
            let why = why.join("; ");
            health.set_stalled(Some(why.clone()));
            return why;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::db::jobs::QueueDepth;

    fn depth(pending: u64, age: f64) -> QueueDepth {
        QueueDepth {
            pending,
            oldest_pending_age_s: age,
            ..Default::default()
        }
    }

    #[test]
    fn stalled_only_when_jobs_wait_while_the_worker_has_room_and_hears_nothing() {
        let h = Arc::new(PoolHealth::default());
        let after = Duration::from_millis(0);
        let k = JobKind::Analysis;
        assert!(
            stalled_queue(&h, k, &depth(0, 0.0), after, 2).is_none(),
            "nothing waits"
        );
        assert!(stalled_queue(&h, k, &depth(3, 5.0), after, 2).is_some());
        let _a = h.message(k);
        let _b = h.message(k);
        assert!(
            stalled_queue(&h, k, &depth(3, 5.0), after, 2).is_none(),
            "busy, not stalled"
        );
        let long = Duration::from_secs(60);
        assert!(
            stalled_queue(&h, JobKind::Sync, &depth(3, 5.0), long, 2).is_none(),
            "not waiting long enough"
        );
    }
}
