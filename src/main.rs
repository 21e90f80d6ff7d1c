//! `autodevops`: one binary for every role (like `sidekiq` or `celery worker`).

mod autoscale;

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};
use shared::config::{Config, HttpRole};
use shared::db::Db;
use shared::models::{Breakers, ModelService, ModelSetup, QuotaGuard};
use shared::pool_health::PoolHealth;
use shared::queue::Queues;
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's malloc: the API and workers allocate many small, short-lived
/// objects per request and job (JSON values, SQL statements); see docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// AutoDevOps keeps repositories analysed and their CI healthy.
///
/// With no REDIS_URL and no DATABASE_URL it runs embedded: a SQLite file, a SQLite-backed
/// queue, in-process workers and the offline analyser. Configuration comes from the
/// environment (see README.md).
#[derive(Debug, Parser)]
#[command(name = "autodevops", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// All in one process: migrations, API, worker pool and relay (the default).
    Serve(BindArgs),
    /// The HTTP API and the outbox relay only; run workers separately.
    Api(BindArgs),
    /// A worker process: takes jobs from the analysis, sync and ci_gen queues.
    Worker {
        /// Serve /health, /ready and /metrics here (env WORKER_HEALTH_ADDR), for probes and
        /// Prometheus; off when unset.
        #[arg(long, env = "WORKER_HEALTH_ADDR", value_name = "ADDR")]
        health_bind: Option<SocketAddr>,
    },
    /// Applies pending database migrations and creates the queue tables, then exits.
    Migrate,
    /// Benchmarks (see docs/benchmarks.md).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Sizes the worker pool on queue depth through a scale command (kubectl, railway, …).
    Autoscale(autoscale::AutoscaleArgs),
    /// The dead-letter queue: list, replay or purge dead jobs (for runbooks).
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// No-op jobs through the Redis queue layer: enqueue N in bulk, drain them, print one JSON
    /// line (needs REDIS_URL).
    Queue {
        #[command(flatten)]
        shape: BenchShape,
        /// Processes draining the queue: 1 drains in this process, more start that many
        /// child processes of this binary on the same queue.
        #[arg(long, default_value_t = 1)]
        processes: usize,
    },
    /// One child of `bench queue --processes P`: drains the given queue with its siblings.
    #[command(hide = true)]
    QueueDrain {
        #[arg(long)]
        queue: String,
        #[command(flatten)]
        shape: BenchShape,
    },
}

#[derive(Debug, clap::Args)]
struct BenchShape {
    #[arg(long, default_value_t = 20_000)]
    jobs: u64,
    /// Jobs in flight per worker.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// apalis workers draining the queue in each process.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

impl From<BenchShape> for worker::bench::Shape {
    fn from(s: BenchShape) -> Self {
        Self {
            jobs: s.jobs,
            concurrency: s.concurrency,
            workers: s.workers,
        }
    }
}

#[derive(Debug, Subcommand)]
enum DlqAction {
    /// Prints dead jobs as JSON lines, newest first.
    List {
        #[command(flatten)]
        queue: QueueArg,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Puts dead jobs back on their queue (attempts reset, history kept).
    Replay(Selection),
    /// Deletes dead jobs for good.
    Purge(Selection),
}

#[derive(Debug, clap::Args)]
struct QueueArg {
    /// Only this queue: analysis, sync or ci_gen.
    #[arg(long, value_name = "Q")]
    queue: Option<shared::domain::JobKind>,
}

#[derive(Debug, clap::Args)]
#[group(id = "which", required = true, multiple = false, args = ["ids", "all"])]
struct Selection {
    /// Job ids.
    ids: Vec<String>,
    /// Every dead job (of --queue, if given).
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    queue: QueueArg,
}

#[derive(Debug, clap::Args)]
struct BindArgs {
    /// Address to listen on (overrides BIND_ADDR; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    bind: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(BindArgs { bind: None }));
    let http = match &command {
        Command::Serve(b) | Command::Api(b) => Some(HttpRole { bind: b.bind }),
        _ => None,
    };
    // Model providers are configured from env too; their problems are reported with the rest.
    let (cfg, models) = match (Config::from_env(http), ModelSetup::from_env()) {
        (Ok(c), Ok(p)) => (c, p),
        (c, p) => {
            let mut errs = c.err().unwrap_or_default();
            errs.0.extend(p.err().unwrap_or_default());
            eprintln!("autodevops: {errs}");
            return ExitCode::from(2);
        }
    };
    // Held until main returns: dropping it flushes the log lines still queued.
    let _log_writer = shared::telemetry::init_tracing(cfg.log_format);
    let _sentry = shared::telemetry::init_sentry(&cfg);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("autodevops: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(command, cfg, models)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "autodevops stopped");
            eprintln!("autodevops: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, cfg: Config, setup: ModelSetup) -> anyhow::Result<()> {
    if let Command::Bench { what } = command {
        let url = cfg.redis_url().context("bench queue needs REDIS_URL")?;
        match what {
            BenchWhat::Queue { shape, processes } => {
                let report = worker::bench::queue(url, &cfg.queue_prefix, shape.into(), processes).await?;
                println!("{}", serde_json::to_string(&report)?);
            }
            BenchWhat::QueueDrain { queue, shape } => worker::bench::drain_process(url, &queue, shape.into()).await?,
        }
        return Ok(());
    }
    let db = Db::connect(&cfg.database_url).await.context("database")?;
    let queues = Queues::connect(&cfg, &db).await.context("queue")?;
    // One model service per process: in `serve` the API and the workers share its quota guard.
    let models = match command {
        Command::Serve(_) | Command::Api(_) | Command::Worker { .. } => {
            ModelService::start(&setup, cfg.redis_url(), &cfg.queue_prefix)
                .await
                .context("model quota guard")?
        }
        _ => None,
    };
    let quota = models.as_ref().map(|m| m.quota().clone());
    let breakers = models.as_ref().map(ModelService::breakers);
    match command {
        Command::Migrate => migrate(&db, &queues).await,
        Command::Autoscale(args) => {
            require_migrated(&db).await?;
            autoscale::run(args, &db, shutdown_token()).await
        }
        Command::Bench { .. } => unreachable!("handled before connecting"),
        Command::Dlq { action } => {
            require_migrated(&db).await?;
            dlq(action, &db, &queues).await
        }
        Command::Serve(_) => {
            migrate(&db, &queues).await?;
            let stop = shutdown_token();
            let health = std::sync::Arc::new(PoolHealth::default());
            let state = app_state(&cfg, &db, &queues, &quota, breakers, Some(health.clone()));
            let relay = spawn_relay(&cfg, &db, &queues, &stop);
            let pool = tokio::spawn(worker::run(
                cfg.clone(),
                db.clone(),
                queues.clone(),
                models,
                health,
                stop.clone(),
            ));
            let api = api::serve(state, stop.clone()).await;
            stop.cancel();
            pool.await.context("worker pool task")??;
            relay.await.context("relay task")?;
            api.context("API server")
        }
        Command::Api(_) => {
            require_migrated(&db).await?;
            let stop = shutdown_token();
            let relay = spawn_relay(&cfg, &db, &queues, &stop);
            let api = api::serve(app_state(&cfg, &db, &queues, &quota, None, None), stop.clone()).await;
            stop.cancel();
            relay.await.context("relay task")?;
            api.context("API server")
        }
        Command::Worker { health_bind } => {
            require_migrated(&db).await?;
            let stop = shutdown_token();
            let relay = spawn_relay(&cfg, &db, &queues, &stop);
            let pool_health = std::sync::Arc::new(PoolHealth::default());
            let endpoint = health_bind.map(|addr| {
                tokio::spawn(api::serve_health(
                    app_state(&cfg, &db, &queues, &quota, breakers, Some(pool_health.clone())),
                    addr,
                    stop.clone(),
                ))
            });
            let pool = worker::run(
                cfg.clone(),
                db.clone(),
                queues.clone(),
                models,
                pool_health,
                stop.clone(),
            )
            .await;
            stop.cancel();
            relay.await.context("relay task")?;
            if let Some(h) = endpoint {
                h.await.context("health endpoint task")?.context("health endpoint")?;
            }
            Ok(pool?)
        }
    }
}

/// The outbox relay runs in every role (see `shared::relay`).
fn spawn_relay(cfg: &Config, db: &Db, queues: &Queues, stop: &CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(shared::relay::run(db.clone(), queues.clone(), cfg.into(), stop.clone()))
}

/// `breakers`: the providers' breakers of the worker pool in this process (none for `api`).
fn app_state(
    cfg: &Config,
    db: &Db,
    queues: &Queues,
    quota: &Option<std::sync::Arc<QuotaGuard>>,
    breakers: Option<Breakers>,
    pool: Option<std::sync::Arc<PoolHealth>>,
) -> api::AppState {
    api::AppState {
        cfg: cfg.clone(),
        db: db.clone(),
        queues: queues.clone(),
        metrics: shared::telemetry::metrics_handle(),
        quota: quota.clone(),
        breakers,
        pool,
        intake: api::intake::Intake::spawn(db.clone(), queues.clone(), api::intake::WRITERS, api::intake::MAX_BATCH),
    }
}

async fn migrate(db: &Db, queues: &Queues) -> anyhow::Result<()> {
    let pending = Migrator::get_pending_migrations(&db.conn)
        .await
        .context("reading migrations")?
        .len();
    Migrator::up(&db.conn, None).await.context("applying migrations")?;
    queues.setup().await.context("creating queue tables")?;
    tracing::info!(applied = pending, "database migrated");
    Ok(())
}

async fn dlq(action: DlqAction, db: &Db, queues: &Queues) -> anyhow::Result<()> {
    let selected = |sel: &Selection| {
        let (ids, all, kind) = (sel.ids.clone(), sel.all, sel.queue.queue);
        async move {
            if all {
                shared::dlq::all_ids(db, kind).await
            } else {
                Ok(ids)
            }
        }
    };
    match action {
        DlqAction::List { queue, limit } => {
            for job in shared::dlq::list(db, queue.queue, limit).await? {
                println!("{}", serde_json::to_string(&job)?);
            }
        }
        DlqAction::Replay(sel) => {
            let (mut done, mut missing) = (0, Vec::new());
            for id in selected(&sel).await? {
                match shared::dlq::replay(db, queues, &id, None).await? {
                    Some(_) => done += 1,
                    None => missing.push(id),
                }
            }
            report("replayed", done, &missing)?;
        }
        DlqAction::Purge(sel) => {
            let (mut done, mut missing) = (0, Vec::new());
            for id in selected(&sel).await? {
                if shared::db::jobs::purge_dead(&db.conn, &id, None).await? {
                    done += 1;
                } else {
                    missing.push(id);
                }
            }
            report("purged", done, &missing)?;
        }
    }
    Ok(())
}

/// Prints what a DLQ action did; ids that were not dead jobs make it fail.
fn report(verb: &str, done: usize, missing: &[String]) -> anyhow::Result<()> {
    println!("{verb} {done} dead job(s)");
    if !missing.is_empty() {
        anyhow::bail!("not dead jobs (unknown, or not dead): {}", missing.join(", "));
    }
    Ok(())
}

/// `api` and `worker` never change the schema: they refuse to start on an old one.
async fn require_migrated(db: &Db) -> anyhow::Result<()> {
    let pending = Migrator::get_pending_migrations(&db.conn)
        .await
        .context("reading migrations")?;
    if !pending.is_empty() {
        anyhow::bail!(
            "{} database migration(s) pending: run `autodevops migrate` first",
            pending.len()
        );
    }
    Ok(())
}

/// Cancelled on SIGINT or SIGTERM.
fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received; draining");
        t.cancel();
    });
    token
}
