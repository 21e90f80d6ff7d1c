//! `autodevops bench queue`: the queue layer's throughput on Redis — N no-op jobs pushed in
//! bulk, then drained by worker(s) configured like the real pool (apalis-redis, the same poll
//! interval, heartbeat and acknowledgement settings). Prints one JSON line.
//!
//! With `--processes P` above 1 the drain runs in P child processes of the same binary
//! (`autodevops bench queue-drain`, see [`drain_process`]). Each child connects, says `ready`
//! on stdout and waits for a line on stdin; once every child is ready the parent notes the
//! time and releases them all. Every drain, in process or not, counts the jobs it ran into one
//! Redis counter under the queue's keys and stops when the count reaches N; each child then
//! prints its latency samples and the time of its last job as one JSON line, and the parent
//! merges them. The drain rate is N over release → last job done, in both modes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apalis::prelude::*;
use apalis_redis::{ConnectionManager, RedisStorage};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_util::sync::CancellationToken;

/// A drain that takes longer fails.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
/// A child process that is not ready within this time fails the run.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a draining process adds its count to the shared counter and reads the total.
const TALLY_EVERY: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("queue: {0}")]
    Queue(String),
    #[error("drain process {index}: {reason}")]
    Process { index: usize, reason: String },
    #[error("{0}")]
    Drain(String),
}

/// A no-op job: its number and when it was created.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchMessage {
    pub seq: u64,
    pub sent_us: u64,
}

/// How a run drains: N jobs in total, `workers` apalis workers per process, each running
/// `concurrency` jobs at once.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub jobs: u64,
    pub concurrency: usize,
    pub workers: usize,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub jobs: u64,
    pub concurrency: usize,
    pub workers: usize,
    pub processes: usize,
    pub enqueue_per_sec: f64,
    pub jobs_per_sec: f64,
    /// Time from creation to completion (includes the wait behind the backlog).
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What one process's drain produced (a child's last line on stdout).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Drained {
    /// Creation-to-completion time of every job this process ran, in µs.
    pub latencies_us: Vec<u64>,
    /// When this process finished its last job, µs since the epoch (0: none).
    pub last_done_us: u64,
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

/// The Redis counter of jobs drained, shared by every draining process.
fn done_key(queue: &str) -> String {
    format!("{queue}:bench-done")
}

fn storage(conn: ConnectionManager, queue: &str, concurrency: usize) -> RedisStorage<BenchMessage> {
    let config = shared::queue::redis_config(queue).batch_size(concurrency.max(10));
    RedisStorage::<BenchMessage>::new(conn).with_config(config)
}

async fn connect(redis_url: &str) -> Result<ConnectionManager, BenchError> {
    Ok(redis::Client::open(redis_url)?.get_connection_manager().await?)
}

/// Runs the benchmark on a fresh queue named `{prefix}bench:{uuid}` (deleted afterwards).
pub async fn queue(redis_url: &str, prefix: &str, shape: Shape, processes: usize) -> Result<BenchReport, BenchError> {
    for (name, value) in [
        ("--jobs", shape.jobs as usize),
        ("--concurrency", shape.concurrency),
        ("--workers", shape.workers),
        ("--processes", processes),
    ] {
        if value == 0 {
            return Err(BenchError::Zero(name));
        }
    }
    let conn = connect(redis_url).await?;
    let queue = format!("{prefix}bench:{}", uuid::Uuid::now_v7().simple());
    let outcome = enqueue_and_drain(conn.clone(), &queue, shape, processes).await;
    cleanup(conn, &queue).await;
    let (enqueue_secs, release_us, drained) = outcome?;

    let mut lat: Vec<u64> = drained.iter().flat_map(|d| d.latencies_us.iter().copied()).collect();
    if (lat.len() as u64) < shape.jobs {
        return Err(BenchError::Drain(format!(
            "workers stopped after {} of {} jobs",
            lat.len(),
            shape.jobs
        )));
    }
    lat.sort_unstable();
    let last_done_us = drained.iter().map(|d| d.last_done_us).max().unwrap_or(0);
    let drain_secs = last_done_us.saturating_sub(release_us).max(1) as f64 / 1e6;
    Ok(BenchReport {
        jobs: shape.jobs,
        concurrency: shape.concurrency,
        workers: shape.workers,
        processes,
        enqueue_per_sec: shape.jobs as f64 / enqueue_secs,
        jobs_per_sec: shape.jobs as f64 / drain_secs,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
    })
}

/// Enqueues the jobs, then drains them in this process or in `processes` children. Returns
/// the enqueue time, when the drain was released (µs since the epoch) and what each drained.
async fn enqueue_and_drain(
    conn: ConnectionManager,
    queue: &str,
    shape: Shape,
    processes: usize,
) -> Result<(f64, u64, Vec<Drained>), BenchError> {
    let mut storage = storage(conn.clone(), queue, shape.concurrency);
    let started = Instant::now();
    let mut seq = 0;
    while seq < shape.jobs {
        let chunk: Vec<_> = (seq..shape.jobs.min(seq + 1000))
            .map(|s| BenchMessage {
                seq: s,
                sent_us: now_us(),
            })
            .collect();
        seq += chunk.len() as u64;
        storage
            .push_bulk(chunk)
            .await
            .map_err(|e| BenchError::Queue(e.to_string()))?;
        // What the relay does in production: keep apalis-redis's scheduled set small.
        shared::queue::promote_due(conn.clone(), storage.get_config()).await?;
    }
    let enqueue_secs = started.elapsed().as_secs_f64();
    if processes == 1 {
        let release_us = now_us();
        let drained = drain(storage, conn, queue, shape).await?;
        return Ok((enqueue_secs, release_us, vec![drained]));
    }
    let (release_us, drained) = drain_in_children(queue, shape, processes).await?;
    Ok((enqueue_secs, release_us, drained))
}

/// Drains the queue with `shape.workers` apalis workers in this process until the shared
/// counter says every job is done.
async fn drain(
    storage: RedisStorage<BenchMessage>,
    conn: ConnectionManager,
    queue: &str,
    shape: Shape,
) -> Result<Drained, BenchError> {
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(shape.jobs as usize)));
    let done = Arc::new(AtomicU64::new(0));
    let last_done = Arc::new(AtomicU64::new(0));
    let finished = CancellationToken::new();
    let mut monitor = Monitor::new();
    for w in 0..shape.workers {
        let (lat, done, last_done) = (latencies.clone(), done.clone(), last_done.clone());
        let storage = storage
            .clone()
            .poll_with_strategy(crate::poll::WakeEvery::new(crate::POLL_REDIS));
        // Worker names are unique across processes: apalis keeps per-worker keys by name.
        let id = uuid::Uuid::now_v7().simple();
        monitor = monitor.register(move |run| {
            let (lat, done, last_done) = (lat.clone(), done.clone(), last_done.clone());
            WorkerBuilder::new(format!("bench-{w}-{id}-{run}"))
                .backend(storage.clone())
                .concurrency(shape.concurrency)
                .build(move |msg: BenchMessage| {
                    let (lat, done, last_done) = (lat.clone(), done.clone(), last_done.clone());
                    async move {
                        let now = now_us();
                        lat.lock().expect("latency lock").push(now.saturating_sub(msg.sent_us));
                        last_done.fetch_max(now, Ordering::Relaxed);
                        done.fetch_add(1, Ordering::Relaxed);
                        Ok::<(), BoxDynError>(())
                    }
                })
        });
    }
    let tally = tokio::spawn(tally(conn, done_key(queue), done.clone(), shape.jobs, finished.clone()));
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
    let outcome = tokio::time::timeout(DRAIN_TIMEOUT, run).await;
    tally.abort();
    if let Ok(Err(e)) = tally.await {
        return Err(e);
    }
    let drained = done.load(Ordering::Relaxed);
    match outcome {
        Err(_) => {
            return Err(BenchError::Drain(format!(
                "drained {drained} of {} jobs in {} s",
                shape.jobs,
                DRAIN_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(BenchError::Drain(e.to_string())),
        Ok(Ok(())) if !finished.is_cancelled() => {
            return Err(BenchError::Drain(format!("workers stopped after {drained} jobs")));
        }
        Ok(Ok(())) => {}
    }
    let latencies_us = std::mem::take(&mut *latencies.lock().expect("latency lock"));
    Ok(Drained {
        latencies_us,
        last_done_us: last_done.load(Ordering::Relaxed),
    })
}

/// Adds this process's new completions to the shared counter every [`TALLY_EVERY`] and
/// cancels `finished` once the total reaches `jobs`.
async fn tally(
    mut conn: ConnectionManager,
    key: String,
    done: Arc<AtomicU64>,
    jobs: u64,
    finished: CancellationToken,
) -> Result<(), BenchError> {
    let mut flushed = 0;
    let mut tick = tokio::time::interval(TALLY_EVERY);
    loop {
        tick.tick().await;
        let now = done.load(Ordering::Relaxed);
        let total: u64 = match redis::cmd("INCRBY")
            .arg(&key)
            .arg(now - flushed)
            .query_async(&mut conn)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                finished.cancel();
                return Err(e.into());
            }
        };
        flushed = now;
        if total >= jobs {
            finished.cancel();
            return Ok(());
        }
    }
}

/// `autodevops bench queue-drain`: one child of a multi-process run. Says `ready` on stdout,
/// waits for a line on stdin, drains, then prints its [`Drained`] as one JSON line.
pub async fn drain_process(redis_url: &str, queue: &str, shape: Shape) -> Result<(), BenchError> {
    let conn = connect(redis_url).await?;
    let storage = storage(conn.clone(), queue, shape.concurrency);
    println!("ready");
    let go = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|n| n > 0)
    })
    .await;
    if !matches!(go, Ok(Ok(true))) {
        return Err(BenchError::Drain("the parent went away before the start".into()));
    }
    let drained = drain(storage, conn, queue, shape).await?;
    println!(
        "{}",
        serde_json::to_string(&drained).map_err(|e| BenchError::Drain(e.to_string()))?
    );
    Ok(())
}

/// One child process and its pipes.
struct Drainer {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Drainer {
    fn spawn(exe: &std::path::Path, queue: &str, shape: Shape) -> std::io::Result<Self> {
        let mut child = Command::new(exe)
            .args(["bench", "queue-drain", "--queue", queue])
            .args(["--jobs", &shape.jobs.to_string()])
            .args(["--concurrency", &shape.concurrency.to_string()])
            .args(["--workers", &shape.workers.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Ok(Self { child, stdin, stdout })
    }

    /// The child's next line on stdout, or why there is none (with its exit status).
    async fn line(&mut self) -> Result<String, String> {
        match self.stdout.next_line().await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(match self.child.wait().await {
                Ok(status) => format!("exited ({status})"),
                Err(e) => e.to_string(),
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn finish(&mut self) -> Result<Drained, String> {
        let line = self.line().await?;
        let status = self.child.wait().await.map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("exited ({status})"));
        }
        serde_json::from_str(&line).map_err(|e| format!("bad report {line:?}: {e}"))
    }
}

/// Starts `processes` children, releases them together once all are ready and collects what
/// they drained. On any failure the other children are killed (and reaped, so none writes to
/// Redis after the cleanup). Returns the release time.
async fn drain_in_children(queue: &str, shape: Shape, processes: usize) -> Result<(u64, Vec<Drained>), BenchError> {
    let exe = std::env::current_exe().map_err(|e| BenchError::Drain(format!("own executable: {e}")))?;
    let mut children = Vec::with_capacity(processes);
    let mut outcome = Ok((0, Vec::new()));
    for index in 0..processes {
        match Drainer::spawn(&exe, queue, shape) {
            Ok(child) => children.push(child),
            Err(e) => {
                outcome = Err(BenchError::Process {
                    index,
                    reason: e.to_string(),
                });
                break;
            }
        }
    }
    if outcome.is_ok() {
        outcome = release_and_collect(&mut children).await;
    }
    if outcome.is_err() {
        for child in &mut children {
            let _ = child.child.kill().await;
        }
    }
    outcome
}

async fn release_and_collect(children: &mut [Drainer]) -> Result<(u64, Vec<Drained>), BenchError> {
    for (index, child) in children.iter_mut().enumerate() {
        let reason = match tokio::time::timeout(READY_TIMEOUT, child.line()).await {
            Ok(Ok(line)) if line == "ready" => continue,
            Ok(Ok(line)) => format!("said {line:?} instead of ready"),
            Ok(Err(e)) => e,
            Err(_) => format!("not ready in {} s", READY_TIMEOUT.as_secs()),
        };
        return Err(BenchError::Process { index, reason });
    }
    let release_us = now_us();
    for (index, child) in children.iter_mut().enumerate() {
        child.stdin.write_all(b"go\n").await.map_err(|e| BenchError::Process {
            index,
            reason: e.to_string(),
        })?;
    }
    let all = futures::future::try_join_all(children.iter_mut().enumerate().map(|(index, child)| async move {
        child
            .finish()
            .await
            .map_err(|reason| BenchError::Process { index, reason })
    }));
    let drained = tokio::time::timeout(DRAIN_TIMEOUT + READY_TIMEOUT, all)
        .await
        .map_err(|_| {
            BenchError::Drain(format!(
                "drain processes still running after {} s",
                DRAIN_TIMEOUT.as_secs()
            ))
        })??;
    Ok((release_us, drained))
}

/// Deletes every key of the benchmark's queue.
async fn cleanup(mut conn: ConnectionManager, queue: &str) {
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
