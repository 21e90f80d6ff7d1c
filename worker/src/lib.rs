//! The worker pool: one apalis worker per queue (`analysis`, `sync`, `ci_gen`), each running
//! up to WORKER_CONCURRENCY jobs at once, on Redis or on the embedded SQLite queue.

pub mod bench;
mod error;
mod jobs;
mod poll;
pub mod redelivery;
pub mod runner;
mod watchdog;

use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use shared::analysis::AnalyzeOptions;
use shared::config::Config;
use shared::db::Db;
use shared::domain::{JobKind, JobMessage};
use shared::models::ModelService;
use shared::pool_health::PoolHealth;
use shared::queue::Queues;
use tokio_util::sync::CancellationToken;

pub use error::JobError;
pub use runner::WorkerState;

/// How often an idle worker polls its queue.
const POLL_SQLITE: Duration = Duration::from_millis(200);
pub(crate) const POLL_REDIS: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("worker pool stopped with errors: {0}")]
    Monitor(String),
    #[error("database: {0}")]
    Db(#[from] shared::db::DbError),
}

/// A name unique to this process run, so two processes never share an apalis worker name
/// (undefined behaviour in apalis-redis) and leases name their holder.
pub fn new_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
    let run = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &run[run.len() - 8..])
}

/// The GitHub App client. With Redis, content-creating calls are throttled per installation
/// across every worker process (GitHub's secondary limits are per installation).
async fn github_app(
    gh: shared::github::GithubConfig,
    http: reqwest::Client,
    cfg: &Config,
) -> Result<shared::github::GithubApp, PoolError> {
    let app = shared::github::GithubApp::new(gh, http).map_err(|e| PoolError::Monitor(e.to_string()))?;
    let Some(url) = cfg.redis_url() else {
        return Ok(app);
    };
    let client = redis::Client::open(url).map_err(|e| PoolError::Monitor(format!("redis: {e}")))?;
    let conn = redis::aio::ConnectionManager::new(client)
        .await
        .map_err(|e| PoolError::Monitor(format!("redis: {e}")))?;
    let throttle = shared::github::RedisThrottle::new(conn, cfg.queue_prefix.clone(), Default::default());
    Ok(app.with_throttle(std::sync::Arc::new(throttle)))
}

/// One apalis worker per queue. Names carry the process's worker id and the round, so no two
/// consumers ever share a name (undefined in apalis-redis).
fn monitor(state: &Arc<WorkerState>, queues: &Queues, round: u32) -> Monitor {
    let mut monitor = Monitor::new();
    for kind in JobKind::ALL {
        let name = format!("{}:{}:{round}", queues.name(kind), state.worker_id);
        let st = state.clone();
        let concurrency = state.cfg.worker_concurrency;
        macro_rules! register {
            ($storage:expr) => {{
                let storage = $storage;
                monitor.register(move |run| {
                    let st = st.clone();
                    WorkerBuilder::new(format!("{name}-{run}"))
                        .backend(storage.clone())
                        .concurrency(concurrency)
                        .build(move |msg: JobMessage| {
                            let st = st.clone();
                            async move { runner::handle(kind, msg, st).await.map_err(BoxDynError::from) }
                        })
                })
            }};
        }
        // Without an explicit strategy an idle worker only looks for new jobs at its heartbeat
        // (seconds); poll the queue often instead, so a job starts within a fraction of a second
        // (not apalis's `poll_with_interval`, which can lose its wakeup: see `poll`).
        monitor = match (queues.sqlite_storage(kind), queues.redis_consumer(kind, concurrency)) {
            (Some(s), _) => register!(s.poll_with_strategy(poll::WakeEvery::new(POLL_SQLITE))),
            (None, Some(r)) => register!(r.poll_with_strategy(poll::WakeEvery::new(POLL_REDIS))),
            (None, None) => unreachable!("a queue backend is always configured"),
        };
    }
    monitor
}

/// Runs the pool until `stop` is cancelled, then drains: no new jobs are taken, in-flight
/// jobs get SHUTDOWN_GRACE_SECS to finish, and whatever is still running is handed back.
pub async fn run(
    cfg: Config,
    db: Db,
    queues: Queues,
    models: Option<ModelService>,
    health: Arc<PoolHealth>,
    stop: CancellationToken,
) -> Result<(), PoolError> {
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| PoolError::Monitor(e.to_string()))?;
    let github = match &cfg.github {
        Some(gh) => Some(github_app(gh.clone(), http, &cfg).await?),
        None => None,
    };
    // Models: see shared::models::service (built by the caller, which shares its quota guard).
    if let Some(m) = &models {
        tracing::info!(chain = ?m.router("analysis"), policy = %m.policy().source, policy_version = m.policy().version(),
            "model router configured; the offline analyser is the last resort");
    }
    let router = models;
    let state = Arc::new(WorkerState {
        analyze: AnalyzeOptions {
            max_file_bytes: cfg.max_file_bytes,
            ..AnalyzeOptions::default()
        },
        worker_id: new_worker_id(),
        db: db.clone(),
        cfg: cfg.clone(),
        router,
        github,
        health,
    });
    tokio::spawn(redelivery::schedule(state.clone(), queues.clone(), stop.clone()));
    tracing::info!(worker_id = %state.worker_id, backend = queues.backend_name(), concurrency = cfg.worker_concurrency, "worker pool starting");

    let concurrency = cfg.worker_concurrency;
    let mut round = 0u32;
    let result = loop {
        // Each round has its own stop: the watchdog ends a stalled round, SIGTERM ends them all.
        let round_stop = stop.child_token();
        let watchdog = {
            let (health, db, round_stop) = (state.health.clone(), db.clone(), round_stop.clone());
            tokio::spawn(async move {
                let why = watchdog::watch(health, db, cfg.stall_after, concurrency).await;
                round_stop.cancel();
                why
            })
        };
        let grace = cfg.shutdown_grace;
        let signal = {
            let round_stop = round_stop.clone();
            async move {
                round_stop.cancelled().await;
                tracing::info!(grace_secs = grace.as_secs(), "worker pool draining");
                Ok(())
            }
        };
        let result = monitor(&state, &queues, round)
            .should_restart(|ctx, err| {
                tracing::error!(worker = ctx.name(), error = %err, "worker stopped with an error; restarting");
                true
            })
            // The grace period starts at the signal (a `sleep` made now would start now).
            .with_terminator(async move { tokio::time::sleep(grace).await })
            .run_with_signal(signal)
            .await;
        if stop.is_cancelled() || !watchdog.is_finished() {
            watchdog.abort();
            break result;
        }
        let why = watchdog.await.unwrap_or_default();
        tracing::error!(%why, "worker pool stalled: restarting its queue consumers and pushing waiting jobs again");
        metrics::counter!("autodevops_worker_pool_restarts_total").increment(1);
        shared::db::jobs::release_worker(&db.conn, &state.worker_id).await?;
        if let Err(e) = shared::relay::repush_stale(&db, &queues, chrono::Duration::zero()).await {
            tracing::warn!(error = %e, "could not push the waiting jobs again; the relay will");
        }
        state.health.restarted();
        round += 1;
    };
    let handed_back = shared::db::jobs::release_worker(&db.conn, &state.worker_id).await?;
    if handed_back > 0 {
        tracing::warn!(
            handed_back,
            "jobs still running at the end of the grace period were handed back to the queue"
        );
    }
    tracing::info!("worker pool stopped");
    result.map_err(|e| PoolError::Monitor(e.to_string()))
}
