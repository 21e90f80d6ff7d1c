//! Logging (tracing, JSON or pretty) and the Prometheus metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global tracing subscriber. RUST_LOG filters (default `info`).
pub fn init_tracing(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,apalis=warn,apalis_core=warn"));
    // Lines are written to stderr by a logging thread, not by the thread handling a request or
    // job (a slow log collector must not slow the API). Not lossy: with 128k lines waiting the
    // callers wait rather than drop lines. The guard flushes what is left when dropped.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    guard
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests running several apps in one
            // process): then this handle simply renders nothing new.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Sets the queue-depth gauges: `autodevops_queue_depth{queue,state}` and
/// `autodevops_queue_oldest_pending_age_seconds{queue}`.
pub fn record_depth(depth: &std::collections::BTreeMap<crate::domain::JobKind, crate::db::jobs::QueueDepth>) {
    for (kind, d) in depth {
        let queue = kind.queue();
        for (state, n) in [
            ("pending", d.pending),
            ("running", d.running),
            ("scheduled", d.scheduled),
            ("dead", d.dead),
        ] {
            metrics::gauge!("autodevops_queue_depth", "queue" => queue, "state" => state).set(n as f64);
        }
        metrics::gauge!("autodevops_queue_oldest_pending_age_seconds", "queue" => queue).set(d.oldest_pending_age_s);
    }
}

/// Starts error reporting to Sentry when SENTRY_DSN is set: panics and explicit reports, with
/// the release and environment. Keep the guard alive for the process's lifetime (dropping it
/// flushes). No PII and no request bodies are sent.
pub fn init_sentry(cfg: &crate::config::Config) -> Option<sentry::ClientInitGuard> {
    use secrecy::ExposeSecret;
    let dsn = cfg.sentry_dsn.as_ref()?.expose_secret().parse().ok()?;
    // ClientOptions is non_exhaustive: start from the default and set fields.
    let mut opts = sentry::ClientOptions::default();
    opts.dsn = Some(dsn);
    opts.release = Some(concat!("autodevops@", env!("CARGO_PKG_VERSION")).into());
    opts.environment = Some(cfg.sentry_environment.clone().into());
    opts.send_default_pii = false;
    let guard = sentry::init(opts);
    tracing::info!(environment = %cfg.sentry_environment, "error reporting to Sentry enabled");
    Some(guard)
}

/// Reports an error to Sentry (a no-op without SENTRY_DSN) with the given tags, e.g.
/// `job_id`, `kind`, `delivery_id`.
pub fn report_error(message: &str, tags: &[(&str, &str)]) {
    sentry::with_scope(
        |scope| {
            for (k, v) in tags {
                scope.set_tag(k, v);
            }
        },
        || sentry::capture_message(message, sentry::Level::Error),
    );
}
