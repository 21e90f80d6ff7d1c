//! `GET /health` (the process is alive), `GET /ready` (dependencies, with latency, and the model
//! providers' breakers where workers run), `GET /metrics` (Prometheus text).

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use crate::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// A check's JSON: up with latency, or down with the reason.
fn check<E: std::fmt::Display>(res: Result<Duration, E>, extra: Value) -> (bool, Value) {
    let mut v = match &res {
        Ok(d) => json!({ "status": "up", "latency_ms": d.as_secs_f64() * 1000.0 }),
        Err(e) => json!({ "status": "down", "error": e.to_string() }),
    };
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    (res.is_ok(), v)
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Checks every dependency; sets `autodevops_ready`.
async fn readiness(state: &AppState) -> (bool, Value) {
    let timed_out = || "no answer within 3 s".to_owned();
    let (db, queue) = futures::join!(
        tokio::time::timeout(CHECK_TIMEOUT, state.db.ping()),
        tokio::time::timeout(CHECK_TIMEOUT, state.queues.ping()),
    );
    let db_backend = if state.db.sqlite.is_some() {
        "sqlite"
    } else {
        "postgres"
    };
    let (db_ok, db) = check(
        db.map_err(|_| timed_out()).and_then(|r| r.map_err(|e| e.to_string())),
        json!({ "backend": db_backend }),
    );
    let (queue_ok, queue) = check(
        queue
            .map_err(|_| timed_out())
            .and_then(|r| r.map_err(|e| e.to_string())),
        json!({ "backend": state.queues.backend_name() }),
    );
    let (pool_ok, pool) = match state.pool.as_ref().map(|p| p.stalled()) {
        None => (true, None),
        Some(None) => (true, Some(json!({ "status": "up" }))),
        Some(Some(why)) => (false, Some(json!({ "status": "stalled", "error": why }))),
    };
    let ok = db_ok && queue_ok && pool_ok;
    metrics::gauge!("autodevops_ready").set(if ok { 1.0 } else { 0.0 });
    let (github_ok, github) = github_check(state).await;
    let status = match (ok, github_ok) {
        (false, _) => "unavailable",
        (true, false) => "degraded",
        (true, true) => "ready",
    };
    let mut checks = json!({ "database": db, "queue": queue, "github": github, "webhooks": webhooks_check(state) });
    if let Some(pool) = pool {
        checks["workers"] = pool;
    }
    let mut status = status;
    if let Some(breakers) = &state.breakers {
        checks["models"] = models_check(breakers);
        if status == "ready" && checks["models"]["status"] == "degraded" {
            status = "degraded";
        }
    }
    let body = json!({
        "status": status,
        "checks": checks,
    });
    (ok, body)
}

/// GitHub: reachable (with latency), down, or not configured (naming what is missing). It
/// does not fail readiness — a GitHub outage must not take the API out of service, since
/// deliveries still arrive once it is back — but says `degraded`.
async fn github_check(state: &AppState) -> (bool, Value) {
    let Some(gh) = &state.cfg.github else {
        return (
            true,
            json!({ "status": "not_configured", "missing": ["GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY"] }),
        );
    };
    check(
        shared::github::probe::reachable(gh).await,
        json!({ "api_url": gh.api_url.as_str() }),
    )
}

fn webhooks_check(state: &AppState) -> Value {
    if state.cfg.webhook_secrets.is_empty() {
        json!({ "status": "not_configured", "missing": ["GITHUB_WEBHOOK_SECRET"] })
    } else {
        json!({ "status": "up", "secrets": state.cfg.webhook_secrets.len() })
    }
}

/// Each provider's breaker. Never makes the process unready: with breakers open jobs fall back
/// to the offline analyser, so the check is `degraded`, not down.
fn models_check(breakers: &shared::models::Breakers) -> Value {
    let providers = breakers.states();
    let all_closed = providers
        .iter()
        .all(|p| p.state == shared::models::BreakerState::Closed);
    json!({
        "status": if all_closed { "up" } else { "degraded" },
        "providers": providers,
        "fallback": "offline",
    })
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match readiness(&state).await {
        (true, body) => HttpResponse::Ok().json(body),
        (false, body) => HttpResponse::ServiceUnavailable().json(body),
    }
}

/// Refreshes the gauges that are read on demand (readiness, queue depth), then renders.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (_, depth) = futures::join!(readiness(&state), shared::db::jobs::depth(&state.db.conn));
    match depth {
        Ok(depth) => shared::telemetry::record_depth(&depth),
        Err(e) => tracing::warn!(error = %e, "queue depth unavailable for /metrics"),
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
