//! What a worker pool's watchdog knows: per queue, the jobs running in this process and when a
//! message last arrived; and whether the pool is stalled (jobs wait while it has room and takes
//! none — e.g. a queue consumer ended by a stream error, apalis-redis#76). Read by /ready.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::JobKind;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Default)]
struct QueueActivity {
    running: AtomicUsize,
    last_message_ms: AtomicU64,
}

/// Shared by the pool (which records activity) and the health endpoint (which reports it).
#[derive(Debug)]
pub struct PoolHealth {
    queues: BTreeMap<JobKind, QueueActivity>,
    /// Why the pool is stalled, while it is.
    stalled: Mutex<Option<String>>,
}

impl Default for PoolHealth {
    fn default() -> Self {
        let queues = JobKind::ALL
            .into_iter()
            .map(|k| {
                let a = QueueActivity::default();
                a.last_message_ms.store(now_ms(), Ordering::Relaxed);
                (k, a)
            })
            .collect();
        PoolHealth {
            queues,
            stalled: Mutex::new(None),
        }
    }
}

/// Counts a job as running until dropped.
pub struct Running(Arc<PoolHealth>, JobKind);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.queues[&self.1].running.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PoolHealth {
    /// A message of `kind`'s queue arrived and is being handled.
    pub fn message(self: &Arc<Self>, kind: JobKind) -> Running {
        let a = &self.queues[&kind];
        a.last_message_ms.store(now_ms(), Ordering::Relaxed);
        a.running.fetch_add(1, Ordering::Relaxed);
        Running(self.clone(), kind)
    }

    /// Jobs of `kind` running in this process.
    pub fn running(&self, kind: JobKind) -> usize {
        self.queues[&kind].running.load(Ordering::Relaxed)
    }

    /// Milliseconds since `kind`'s queue last handed this process a message.
    pub fn idle_ms(&self, kind: JobKind) -> u64 {
        now_ms().saturating_sub(self.queues[&kind].last_message_ms.load(Ordering::Relaxed))
    }

    pub fn set_stalled(&self, why: Option<String>) {
        *self.stalled.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    pub fn stalled(&self) -> Option<String> {
        self.stalled.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A fresh start of the pool: every queue counts as just heard from.
    pub fn restarted(&self) {
        for a in self.queues.values() {
            a.last_message_ms.store(now_ms(), Ordering::Relaxed);
        }
        self.set_stalled(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_jobs_are_counted_until_dropped() {
        let h = Arc::new(PoolHealth::default());
        let a = h.message(JobKind::Analysis);
        let b = h.message(JobKind::Analysis);
        assert_eq!(h.running(JobKind::Analysis), 2);
        assert_eq!(h.running(JobKind::Sync), 0);
        drop(a);
        drop(b);
        assert_eq!(h.running(JobKind::Analysis), 0);
        assert!(h.idle_ms(JobKind::Analysis) < 1_000);
        h.set_stalled(Some("x".into()));
        h.restarted();
        assert_eq!(h.stalled(), None);
    }
}
