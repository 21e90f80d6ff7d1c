//! `autodevops bench queue`: the queue layer's throughput on Redis — N no-op jobs pushed in
//! bulk, then drained by worker(s) configured like the real pool (apalis-redis, the same poll
//! interval, heartbeat and acknowledgement settings). Prints one JSON line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apalis::prelude::*;
use apalis_redis::RedisStorage;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// A no-op job: its number and when it was created.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchMessage {
    pub seq: u64,
    pub sent_us: u64,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub jobs: u64,
    pub concurrency: usize,
    pub workers: usize,
    pub enqueue_per_sec: f64,
    pub jobs_per_sec: f64,
    /// Time from creation to completion (includes the wait behind the backlog).
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

/// Runs the benchmark on a fresh queue (deleted afterwards).
pub async fn queue(redis_url: &str, jobs: u64, concurrency: usize, workers: usize) -> Result<BenchReport, String> {
    let client = redis::Client::open(redis_url).map_err(|e| e.to_string())?;
    let conn = client.get_connection_manager().await.map_err(|e| e.to_string())?;
    let queue = format!("bench:{}", uuid::Uuid::now_v7().simple());
    let config = shared::queue::redis_config(&queue).batch_size(concurrency.max(10));
    let mut storage = RedisStorage::<BenchMessage>::new(conn.clone()).with_config(config);

    let started = Instant::now();
    let mut seq = 0;
    while seq < jobs {
        let chunk: Vec<_> = (seq..jobs.min(seq + 1000))
            .map(|s| BenchMessage {
                seq: s,
                sent_us: now_us(),
            })
            .collect();
        seq += chunk.len() as u64;
        storage.push_bulk(chunk).await.map_err(|e| e.to_string())?;
        // What the relay does in production: keep apalis-redis's scheduled set small.
        shared::queue::promote_due(conn.clone(), storage.get_config())
            .await
            .map_err(|e| e.to_string())?;
    }
    let enqueue_secs = started.elapsed().as_secs_f64();

    let latencies = Arc::new(Mutex::new(Vec::with_capacity(jobs as usize)));
    let done = Arc::new(AtomicU64::new(0));
    let finished = CancellationToken::new();
    let drain_started = Instant::now();
    let mut monitor = Monitor::new();
    for w in 0..workers {
        let (lat, done, finished) = (latencies.clone(), done.clone(), finished.clone());
        let storage = storage
            .clone()
            .poll_with_strategy(crate::poll::WakeEvery::new(crate::POLL_REDIS));
        monitor = monitor.register(move |run| {
            let (lat, done, finished) = (lat.clone(), done.clone(), finished.clone());
            WorkerBuilder::new(format!("bench-{w}-{run}"))
                .backend(storage.clone())
                .concurrency(concurrency)
                .build(move |msg: BenchMessage| {
                    let (lat, done, finished) = (lat.clone(), done.clone(), finished.clone());
                    async move {
                        lat.lock()
                            .expect("latency lock")
                            .push(now_us().saturating_sub(msg.sent_us));
                        if done.fetch_add(1, Ordering::Relaxed) + 1 >= jobs {
                            finished.cancel();
                        }
                        Ok::<(), BoxDynError>(())
                    }
                })
        });
    }
    let signal = {
        let finished = finished.clone();
        async move {
            finished.cancelled().await;
            Ok(())
        }
    };
    let run = monitor
        .with_terminator(tokio::time::sleep(Duration::from_secs(5)))
        .run_with_signal(signal);
    let outcome = tokio::time::timeout(Duration::from_secs(600), run).await;
    let drain_secs = drain_started.elapsed().as_secs_f64();
    cleanup(conn, &queue).await;
    let drained = done.load(Ordering::Relaxed);
    match outcome {
        Err(_) => return Err(format!("drained {drained} of {jobs} jobs in 600 s")),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(())) if drained < jobs => return Err(format!("workers stopped after {drained} of {jobs} jobs")),
        Ok(Ok(())) => {}
    }
    let mut lat =
        Arc::try_unwrap(latencies).map_or_else(|a| a.lock().expect("lock").clone(), |m| m.into_inner().expect("lock"));
    lat.sort_unstable();
    Ok(BenchReport {
        jobs,
        concurrency,
        workers,
        enqueue_per_sec: jobs as f64 / enqueue_secs,
        jobs_per_sec: jobs as f64 / drain_secs,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
    })
}

/// Deletes every key of the benchmark's queue.
async fn cleanup(mut conn: apalis_redis::ConnectionManager, queue: &str) {
    let keys: Vec<String> = match redis::cmd("KEYS")
        .arg(format!("{queue}:*"))
        .query_async(&mut conn)
        .await
    {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "benchmark keys left in Redis");
            return;
        }
    };
    for chunk in keys.chunks(500) {
        let _: Result<u64, _> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
