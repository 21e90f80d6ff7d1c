//! `POST /github/webhook`: verify the signature before anything else, record the delivery
//! (once per X-GitHub-Delivery), and answer within milliseconds — never calling GitHub or a
//! model inline.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use shared::db::deliveries::NewDelivery;
use shared::db::jobs::NewJob;
use shared::domain::{GithubTarget, JobKind, JobSource};
use shared::webhook::{Envelope, JobIntent, Payload, ReplyTarget, Route};
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
    let (envelope, routed) = read_and_route(&state, &event, &body)?;
    metrics::counter!("autodevops_webhooks_received_total", "event" => event.clone()).increment(1);

    let (outcome, reason) = (routed.outcome(), routed.reason().map(str::to_owned));
    let new_jobs = match routed {
        Route::Accept { jobs, reply } => {
            let mut new_jobs: Vec<NewJob> = jobs.into_iter().map(|i| new_job(&state, i, &delivery)).collect();
            if let (Some(body), Some(target)) = (reply, shared::webhook::reply_target(&body[..])) {
                new_jobs.push(reply_job(&state, target, body, &delivery));
            }
            new_jobs
        }
        Route::Ignore { .. } => Vec::new(),
    };
    let recorded = state
        .intake
        .record(
            NewDelivery {
                id: delivery.clone(),
                event: event.clone(),
                action: envelope.action,
                installation_id: envelope.installation.map(|i| i.id),
                repo: envelope.repository.map(|r| r.full_name),
                outcome,
                reason: reason.clone(),
                job_id: None,
            },
            new_jobs,
        )
        .await?;
    let Some(inserted) = recorded else {
        tracing::info!("duplicate delivery; nothing to do");
        return Ok(HttpResponse::Ok().json(json!({ "duplicate": true, "delivery": delivery })));
    };
    let ids: Vec<&str> = inserted.iter().map(|i| i.job.id.as_str()).collect();
    for i in &inserted {
        for old in &i.superseded {
            tracing::info!(job_id = %old, superseded_by = %i.job.id, "older analysis superseded");
        }
    }
    tracing::info!(outcome, reason = reason.as_deref().unwrap_or("-"), jobs = ?ids, "webhook recorded");
    let mut body = json!({ "delivery": delivery, "event": event, "outcome": outcome, "jobs": ids });
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    Ok(HttpResponse::Accepted().json(body))
}

/// Reads the fields every delivery is recorded with, then routes the delivery. Reading them
/// checks the whole body is JSON (400 if not); JSON of another shape is recorded without
/// them, and routing ignores it as malformed. Without the GitHub App configuration the
/// workers cannot act on repositories: such events are recorded and ignored with that reason.
fn read_and_route(state: &AppState, event: &str, body: &[u8]) -> Result<(Envelope, Route), ApiError> {
    const NO_APP: &str = "repository jobs need the GitHub App configuration (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY)";
    let invalid = |e: serde_json::Error| ApiError::BadRequest {
        message: format!("body is not valid JSON: {e}"),
        field: None,
    };
    let policy = &state.cfg.routing;
    let (envelope, routed) = match body.read::<Envelope>() {
        Ok(envelope) => {
            let routed = shared::webhook::route_read(event, &envelope, body, policy);
            (envelope, routed)
        }
        // Reading stopped at a field of another type: the rest must still be JSON.
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            body.read::<serde::de::IgnoredAny>().map_err(invalid)?;
            (Envelope::default(), shared::webhook::route(event, body, policy))
        }
        Err(e) => return Err(invalid(e)),
    };
    let routed = match routed {
        Route::Accept { ref jobs, ref reply }
            if state.cfg.github.is_none() && (!jobs.is_empty() || reply.is_some()) =>
        {
            Route::Ignore { reason: NO_APP.into() }
        }
        other => other,
    };
    Ok((envelope, routed))
}

/// The tenant of a GitHub installation's jobs.
pub fn installation_tenant(installation_id: i64) -> String {
    format!("installation:{installation_id}")
}

fn new_job(state: &AppState, intent: JobIntent, delivery: &str) -> NewJob {
    let source = match intent.repo {
        Some(repo) => JobSource::Repo {
            repo,
            git_ref: intent.git_ref,
        },
        None => JobSource::Installation,
    };
    let mut trigger = serde_json::to_value(&intent.trigger).unwrap_or(Value::Null);
    trigger["actor"] = json!(intent.actor);
    trigger["default_branch"] = json!(intent.default_branch);
    NewJob {
        kind: intent.kind,
        queue: state.queues.name(intent.kind),
        source,
        tenant: Some(installation_tenant(intent.installation_id)),
        max_attempts: state.cfg.limits(intent.kind).max_attempts,
        github: Some(GithubTarget {
            installation_id: intent.installation_id,
            head_sha: intent.head_sha,
            pr_number: intent.pr_number,
            trigger,
            delivery_id: Some(delivery.to_owned()),
        }),
    }
}

/// A reply to `/autodevops help`, posted by a `sync` job (the webhook never calls GitHub).
fn reply_job(state: &AppState, target: ReplyTarget, body: String, delivery: &str) -> NewJob {
    NewJob {
        kind: JobKind::Sync,
        queue: state.queues.name(JobKind::Sync),
        source: JobSource::Repo {
            repo: target.repo,
            git_ref: None,
        },
        tenant: Some(installation_tenant(target.installation_id)),
        max_attempts: state.cfg.limits(JobKind::Sync).max_attempts,
        github: Some(GithubTarget {
            installation_id: target.installation_id,
            head_sha: None,
            pr_number: Some(target.issue_number),
            trigger: json!({ "type": "reply", "body": body }),
            delivery_id: Some(delivery.to_owned()),
        }),
    }
}
