//! The queues `analysis`, `sync` and `ci_gen` on apalis: Redis (apalis-redis) in production,
//! the SQLite database file (apalis-sqlite) in embedded mode.
//!
//! Messages carry only a job id ([`JobMessage`]); the jobs table decides status, attempts and
//! backoff, so a message delivered twice is harmless (see `db::jobs::claim`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::SqliteStorage;
use redis::aio::ConnectionManagerConfig;

use crate::config::Config;
use crate::db::{Db, SqlitePool};
use crate::domain::{JobKind, JobMessage};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(String),
    #[error("sqlite queue: {0}")]
    Sqlite(String),
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("the embedded queue needs a SQLite database (set REDIS_URL to use Postgres)")]
    NoSqlite,
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Redis(ConnectionManager),
}

/// Handle on the three queues.
#[derive(Clone)]
pub struct Queues {
    backend: Backend,
    prefix: String,
    /// When a push last failed (ms since the epoch): for a moment after, pushes fail fast
    /// instead of each waiting on reconnect attempts.
    last_failure_ms: Arc<AtomicU64>,
}

/// A push that takes longer counts as failed: the job stays in the outbox.
const PUSH_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failed push, pushes fail at once for this long.
const FAIL_FAST_FOR: Duration = Duration::from_secs(1);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("backend", &self.backend_name())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// How often a worker proves it is alive, and how many missed beats make its jobs orphans.
const SQLITE_HEARTBEAT: Duration = Duration::from_secs(5);
const REDIS_HEARTBEAT: Duration = Duration::from_secs(10);
const MISSED_HEARTBEATS: usize = 3;
const PUSH_KEY_TTL: Duration = Duration::from_secs(24 * 3600);

impl Queues {
    /// Connects to Redis when configured, else uses the database's SQLite pool.
    pub async fn connect(cfg: &Config, db: &Db) -> Result<Queues, QueueError> {
        let backend = match cfg.redis_url() {
            Some(url) => {
                let client = redis::Client::open(url).map_err(|e| QueueError::Redis(e.to_string()))?;
                // redis-rs's default 500 ms response timeout turns a slow Redis into a fatal
                // stream error in apalis-redis (apalis-redis#76): allow seconds, not milliseconds.
                let mgr_cfg = ConnectionManagerConfig::new()
                    .set_response_timeout(Some(Duration::from_secs(10)))
                    .set_connection_timeout(Some(Duration::from_secs(5)))
                    .set_number_of_retries(3);
                let conn = client
                    .get_connection_manager_with_config(mgr_cfg)
                    .await
                    .map_err(|e| QueueError::Redis(e.to_string()))?;
                Backend::Redis(conn)
            }
            None => Backend::Sqlite(db.sqlite.clone().ok_or(QueueError::NoSqlite)?),
        };
        Ok(Queues {
            last_failure_ms: Arc::new(AtomicU64::new(0)),
            backend,
            prefix: cfg.queue_prefix.clone(),
        })
    }

    /// Creates the embedded queue's tables (a no-op for Redis).
    pub async fn setup(&self) -> Result<(), QueueError> {
        if let Backend::Sqlite(pool) = &self.backend {
            SqliteStorage::migrations()
                .run(pool)
                .await
                .map_err(|e| QueueError::Sqlite(e.to_string()))?;
        }
        Ok(())
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Redis(_) => "redis",
        }
    }

    /// The full queue name of a kind: the deployment's prefix plus `analysis`/`sync`/`ci_gen`.
    pub fn name(&self, kind: JobKind) -> String {
        format!("{}{}", self.prefix, kind.queue())
    }

    /// A SQLite storage for `kind`'s queue, if this is the embedded backend.
    pub fn sqlite_storage(&self, kind: JobKind) -> Option<SqliteStorage<JobMessage>> {
        match &self.backend {
            Backend::Sqlite(pool) => {
                let config = apalis_sqlite::Config::default()
                    .queue(self.name(kind))
                    .heartbeat_interval(SQLITE_HEARTBEAT)
                    .missed_heartbeats(MISSED_HEARTBEATS)
                    // apalis 1.0 only acknowledges a task when results are persisted: without
                    // this, finished tasks stay locked and come back as orphans.
                    .persist_results(true);
                Some(SqliteStorage::new(pool).with_config(config))
            }
            Backend::Redis(_) => None,
        }
    }

    /// A Redis storage for `kind`'s queue, if this is the Redis backend.
    pub fn redis_storage(&self, kind: JobKind) -> Option<RedisStorage<JobMessage>> {
        self.redis_consumer(kind, 10)
    }

    /// A Redis storage whose fetches take at most `batch` messages: a consumer given its own
    /// concurrency never holds messages it cannot start yet, so the worker processes share a
    /// burst instead of the first one to poll taking it (and a killed worker strands no more
    /// than it was running).
    pub fn redis_consumer(&self, kind: JobKind, batch: usize) -> Option<RedisStorage<JobMessage>> {
        match &self.backend {
            Backend::Redis(conn) => Some(
                RedisStorage::new(conn.clone()).with_config(redis_config(&self.name(kind)).batch_size(batch.max(1))),
            ),
            Backend::Sqlite(_) => None,
        }
    }

    /// Pushes one job id onto its kind's queue.
    ///
    /// `push_key` names this push (the job and its generation): pushing the same key again
    /// while the queue still remembers it is a no-op, so the relay can re-push a job whose
    /// message may have been lost (Redis restarted empty) without doubling it when it was not.
    pub async fn push(&self, kind: JobKind, job_id: &str, push_key: &str) -> Result<(), QueueError> {
        let since_failure = now_ms().saturating_sub(self.last_failure_ms.load(Ordering::Relaxed));
        if since_failure < FAIL_FAST_FOR.as_millis() as u64 {
            return Err(QueueError::Unavailable("failed moments ago".into()));
        }
        let res = match tokio::time::timeout(PUSH_TIMEOUT, self.push_now(kind, job_id, push_key)).await {
            Ok(res) => res,
            Err(_) => Err(QueueError::Unavailable(format!("no answer within {PUSH_TIMEOUT:?}"))),
        };
        if res.is_err() {
            self.last_failure_ms.store(now_ms(), Ordering::Relaxed);
        }
        res
    }

    async fn push_now(&self, kind: JobKind, job_id: &str, push_key: &str) -> Result<(), QueueError> {
        let task = TaskBuilder::new(JobMessage {
            job_id: job_id.to_owned(),
        })
        .idempotency_key(push_key)
        .build();
        if let Some(mut s) = self.sqlite_storage(kind) {
            return s.push_task(task).await.map_err(|e| QueueError::Sqlite(e.to_string()));
        }
        if let Some(mut s) = self.redis_storage(kind) {
            return s.push_task(task).await.map_err(|e| QueueError::Redis(e.to_string()));
        }
        unreachable!("a queue backend is always configured")
    }

    /// Promotes due jobs from Redis's scheduled set to the active list in bounded chunks
    /// (see `queue_lua/promote_due.lua`); a no-op on SQLite. Returns how many moved.
    pub async fn promote_due(&self) -> Result<u64, QueueError> {
        let Backend::Redis(conn) = &self.backend else {
            return Ok(0);
        };
        let mut moved = 0;
        for kind in JobKind::ALL {
            let config = redis_config(&self.name(kind));
            moved += promote_due(conn.clone(), &config)
                .await
                .map_err(|e| QueueError::Redis(e.to_string()))?;
        }
        Ok(moved)
    }

    /// Deletes the queue's own records of finished tasks (our jobs table keeps the real
    /// record): apalis keeps every payload, result and metadata hash forever otherwise.
    /// Returns how many tasks were cleaned.
    pub async fn cleanup_finished(&self) -> Result<u64, QueueError> {
        const BATCH: u64 = 1000;
        let mut cleaned = 0;
        for kind in JobKind::ALL {
            let queue = self.name(kind);
            match &self.backend {
                Backend::Redis(conn) => {
                    let mut conn = conn.clone();
                    let config = redis_config(&queue);
                    let script = redis::Script::new(include_str!("queue_lua/cleanup_done.lua"));
                    loop {
                        let n: u64 = script
                            .key(config.done_jobs_set())
                            .key(config.job_data_hash())
                            .arg(config.job_meta_hash())
                            .arg(BATCH)
                            .invoke_async(&mut conn)
                            .await
                            .map_err(|e| QueueError::Redis(e.to_string()))?;
                        cleaned += n;
                        if n < BATCH {
                            break;
                        }
                    }
                }
                Backend::Sqlite(pool) => {
                    // Finished a minute ago or more: a task just acknowledged may still be
                    // in the middle of its bookkeeping.
                    let res = sea_orm::sqlx::query(
                        "DELETE FROM Jobs WHERE job_type = ?1 AND status IN ('Done', 'Killed') \
                         AND done_at < strftime('%s', 'now') - 60",
                    )
                    .bind(&queue)
                    .execute(pool)
                    .await
                    .map_err(|e| QueueError::Sqlite(e.to_string()))?;
                    cleaned += res.rows_affected();
                }
            }
        }
        Ok(cleaned)
    }

    /// Round trip to the queue backend; returns its latency.
    pub async fn ping(&self) -> Result<Duration, QueueError> {
        let start = Instant::now();
        match &self.backend {
            Backend::Redis(conn) => {
                let mut conn = conn.clone();
                let _: String = redis::cmd("PING")
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| QueueError::Redis(e.to_string()))?;
            }
            Backend::Sqlite(pool) => {
                sea_orm::sqlx::query("SELECT 1")
                    .execute(pool)
                    .await
                    .map_err(|e| QueueError::Sqlite(e.to_string()))?;
            }
        }
        Ok(start.elapsed())
    }
}

/// Promotes every due job of one apalis-redis queue, at most 1,000 per script call.
pub async fn promote_due(mut conn: ConnectionManager, config: &apalis_redis::Config) -> Result<u64, redis::RedisError> {
    const CHUNK: u64 = 1000;
    let script = redis::Script::new(include_str!("queue_lua/promote_due.lua"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut moved = 0;
    loop {
        let n: u64 = script
            .key(config.scheduled_jobs_set())
            .key(config.active_jobs_list())
            .key(config.signal_list())
            .arg(now)
            .arg(CHUNK)
            .invoke_async(&mut conn)
            .await?;
        moved += n;
        if n < CHUNK {
            return Ok(moved);
        }
    }
}

/// How every apalis-redis queue of ours is configured (the pool and the benchmark alike).
pub fn redis_config(queue: &str) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(queue)
        .heartbeat_interval(REDIS_HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
        // apalis 1.0 only acknowledges a task when results are persisted: without this,
        // finished tasks stay in the worker's in-flight set forever. Our handler's result is
        // `()`; real results live in the jobs table.
        .persist_results(true)
        // Redis-side task leases cost a round trip per task (a tenth of the throughput,
        // measured: docs/benchmarks.md); the jobs table's claim already makes sure a job runs
        // once, whatever apalis delivers twice.
        .lock_tasks(false)
        // Nobody subscribes to apalis's per-task pub/sub events.
        .emit_events(false)
        // Push keys are remembered this long (apalis-redis ignores them without a TTL).
        .idempotency_ttl(Some(PUSH_KEY_TTL))
}
