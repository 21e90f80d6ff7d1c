//! `POST /github/webhook`: verify the signature before anything else, record the delivery
//! (once per X-GitHub-Delivery), and answer within milliseconds — never calling GitHub or a
//! model inline.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use shared::db::deliveries::{self, NewDelivery};
use tracing::Instrument;

use crate::AppState;
use crate::error::ApiError;
use crate::routes::jobs::read_body;

/// GitHub's cap on a webhook payload.
pub const MAX_BODY: usize = 25 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/github/webhook", web::post().to(receive));
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let delivery = header(&req, "x-github-delivery").unwrap_or("-").to_owned();
    let event = header(&req, "x-github-event").unwrap_or("-").to_owned();
    let span = tracing::info_span!("webhook", delivery_id = %delivery, event = %event);
    handle(state, req, payload, delivery, event).instrument(span).await
}

async fn handle(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    delivery: String,
    event: String,
) -> Result<HttpResponse, ApiError> {
    if state.cfg.webhook_secrets.is_empty() {
        return Err(ApiError::Unavailable(
            "webhooks are not configured: set GITHUB_WEBHOOK_SECRET".into(),
        ));
    }
    let body = read_body(payload, MAX_BODY).await?;
    let signature = header(&req, "x-hub-signature-256").ok_or(ApiError::BadSignature)?;
    if !crate::signature::verify(&state.cfg.webhook_secrets, &body, signature) {
        tracing::warn!("webhook signature does not match");
        return Err(ApiError::BadSignature);
    }
    if event == "-" {
        return Err(ApiError::bad_field(
            "X-GitHub-Event",
            "the X-GitHub-Event header is required",
        ));
    }
    if delivery == "-" || delivery.len() > 64 {
        return Err(ApiError::bad_field(
            "X-GitHub-Delivery",
            "the X-GitHub-Delivery header is required (a GUID)",
        ));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
        message: format!("body is not valid JSON: {e}"),
        field: None,
    })?;
    metrics::counter!("autodevops_webhooks_received_total", "event" => event.clone()).increment(1);

    let (outcome, reason) = route(&event, &value);
    let recorded = deliveries::record(
        &state.db.conn,
        NewDelivery {
            id: delivery.clone(),
            event: event.clone(),
            action: value["action"].as_str().map(str::to_owned),
            installation_id: value["installation"]["id"].as_i64(),
            repo: value["repository"]["full_name"].as_str().map(str::to_owned),
            outcome,
            reason: reason.clone(),
            job_id: None,
        },
    )
    .await?;
    if !recorded {
        tracing::info!("duplicate delivery; nothing to do");
        return Ok(HttpResponse::Ok().json(json!({ "duplicate": true, "delivery": delivery })));
    }
    tracing::info!(outcome, reason = reason.as_deref().unwrap_or("-"), "webhook recorded");
    let mut body = json!({ "delivery": delivery, "event": event, "outcome": outcome });
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    Ok(HttpResponse::Accepted().json(body))
}

/// What a delivery leads to. Jobs on GitHub repositories need the GitHub App client, which this
/// build does not have yet: such events are recorded and ignored with that reason.
fn route(event: &str, payload: &Value) -> (&'static str, Option<String>) {
    const NO_APP: &str = "repository jobs need the GitHub App configuration (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY)";
    match event {
        "ping" => ("accepted", None),
        "push" | "pull_request" | "installation" | "installation_repositories" | "issue_comment" | "check_run" => {
            if payload["sender"]["type"] == "Bot" {
                ("ignored", Some("event sent by a bot".into()))
            } else {
                ("ignored", Some(NO_APP.into()))
            }
        }
        other => ("ignored", Some(format!("event {other:?} is not handled"))),
    }
}
