//! The HTTP API (actix-web): routes, extractors, authentication and the mapping of errors
//! to HTTP. Business logic lives in `shared`.

pub mod auth;
pub mod error;
pub mod intake;
pub mod routes;
pub mod signature;

use std::net::SocketAddr;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};
use metrics_exporter_prometheus::PrometheusHandle;
use shared::config::Config;
use shared::db::Db;
use shared::queue::Queues;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::ApiError;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub cfg: Config,
    pub db: Db,
    pub queues: Queues,
    pub metrics: PrometheusHandle,
    /// Tenants' model budgets; `None` without model providers (no budget applies).
    pub quota: Option<std::sync::Arc<shared::models::QuotaGuard>>,
    /// The model providers' breakers of the worker pool in this process (shown on /ready);
    /// `None` without providers or without workers here.
    pub breakers: Option<shared::models::Breakers>,
    /// The worker pool in this process (its watchdog's verdict is part of /ready); `None`
    /// without workers here.
    pub pool: Option<std::sync::Arc<shared::pool_health::PoolHealth>>,
    /// Group commit of webhook deliveries (see [`intake`]).
    pub intake: intake::Intake,
}

/// Registers every route, the JSON error handlers and the request-logging middleware.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|err, _| {
        ApiError::BadRequest {
            message: format!("invalid query string: {err}"),
            field: None,
        }
        .into()
    }))
    .app_data(web::PathConfig::default().error_handler(|err, _| {
        ApiError::BadRequest {
            message: format!("invalid path: {err}"),
            field: None,
        }
        .into()
    }))
    .configure(routes::health::configure)
    .configure(routes::jobs::configure)
    .configure(routes::queues::configure)
    .configure(routes::webhook::configure)
    .default_service(web::to(|req: actix_web::HttpRequest| async move {
        Err::<actix_web::HttpResponse, _>(ApiError::NotFound(format!("route {} {}", req.method(), req.path())))
    }));
}

/// Logs each request in a span carrying a request id, and counts it.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = uuid::Uuid::now_v7().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = %req.path());
    let delivery = req
        .headers()
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = req.path().to_owned();
    let res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    if status >= 500
        && status != 503
        && let Some(err) = res.response().error()
    {
        // One place reports internal errors, tagged with what identifies the request.
        let mut tags = vec![
            ("layer", "api"),
            ("request_id", request_id.as_str()),
            ("path", path.as_str()),
        ];
        if let Some(d) = &delivery {
            tags.push(("delivery_id", d.as_str()));
        }
        let detail = match err.as_error::<ApiError>() {
            Some(ApiError::Internal(detail)) => detail.clone(),
            _ => err.to_string(),
        };
        shared::telemetry::report_error(&format!("API internal error: {detail}"), &tags);
    }
    span.in_scope(|| tracing::info!(status, elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "request"));
    metrics::counter!("autodevops_http_requests_total", "status" => status.to_string()).increment(1);
    Ok(res)
}

/// Serves the API on `cfg.bind_addr` until `stop` is cancelled, then finishes in-flight requests.
pub async fn serve(state: AppState, stop: CancellationToken) -> std::io::Result<()> {
    let addr = state.cfg.bind_addr;
    run_server(state, addr, stop, configure, "API").await
}

/// Serves only `/health`, `/ready` and `/metrics` on `addr`: a worker process's probes and
/// scrape target.
pub async fn serve_health(state: AppState, addr: SocketAddr, stop: CancellationToken) -> std::io::Result<()> {
    run_server(state, addr, stop, routes::health::configure, "health endpoint").await
}

async fn run_server(
    state: AppState,
    addr: SocketAddr,
    stop: CancellationToken,
    routes: fn(&mut web::ServiceConfig),
    what: &'static str,
) -> std::io::Result<()> {
    let workers = state.cfg.http_workers;
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(observe))
            .configure(routes)
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(30)
    .bind(addr)?
    .run();
    tracing::info!(%addr, "{what} listening");
    let handle = server.handle();
    tokio::spawn(async move {
        stop.cancelled().await;
        handle.stop(true).await;
    });
    server.await
}
