//! `POST /v1/jobs`, `GET /v1/jobs/{id}`, `GET /v1/jobs`.

use std::path::Path;

use actix_web::{HttpResponse, web};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use shared::db::job::Model as Job;
use shared::db::jobs::{self, JobFilter, NewJob};
use shared::domain::{GithubTarget, JobKind, JobSource, JobStatus, RepoName};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// Largest accepted body of `POST /v1/jobs`.
pub const MAX_BODY: usize = 64 * 1024;
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 200;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/jobs", web::post().to(create))
        .route("/v1/jobs", web::get().to(list))
        .route("/v1/jobs/{id}", web::get().to(get))
        .route("/v1/dead-jobs", web::get().to(list_dead))
        .route("/v1/dead-jobs/{id}/replay", web::post().to(replay_dead))
        .route("/v1/dead-jobs/{id}", web::delete().to(purge_dead));
}

/// The public view of a job row.
pub fn view(job: &Job) -> Value {
    json!({
        "id": job.id,
        "kind": job.kind,
        "queue": job.queue,
        "status": job.status,
        "tenant": job.tenant,
        "repo": job.repo,
        "path": job.path,
        "ref": job.git_ref,
        "sha": job.head_sha,
        "pr": job.pr_number,
        "installation_id": job.installation_id,
        "superseded_by": job.superseded_by,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "result": job.result,
        "error": job.error,
        "worker": job.locked_by,
        "history": job.history.clone().unwrap_or_else(|| json!([])),
    })
}

/// Reads the body up to `limit` bytes.
pub(crate) async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest {
            message: format!("cannot read body: {e}"),
            field: None,
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

const FIELDS: [&str; 4] = ["kind", "repo", "path", "ref"];

/// Takes an optional string field out of the request object, naming the field on error.
fn string_field(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::bad_field(
            name,
            format!("{name} must be a string, not {}", shared::json::type_name(other)),
        )),
    }
}

/// Validates a create request into a kind and a source.
fn parse_create(body: &[u8], state: &AppState) -> Result<(JobKind, JobSource), ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadRequest {
        message: format!("body is not valid JSON: {e}"),
        field: None,
    })?;
    let Value::Object(obj) = value else {
        return Err(ApiError::BadRequest {
            message: "body must be a JSON object".into(),
            field: None,
        });
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_field(
            unknown,
            format!("unknown field {unknown:?}: expected kind, repo, path, ref"),
        ));
    }
    let kind = string_field(&obj, "kind")?
        .ok_or_else(|| ApiError::field("missing_field", "kind", "kind is required: analysis, sync or ci_gen"))?
        .parse::<JobKind>()
        .map_err(|m| ApiError::field("invalid_value", "kind", m))?;
    let git_ref = string_field(&obj, "ref")?;
    let source = match (string_field(&obj, "repo")?, string_field(&obj, "path")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "conflicting_fields",
                "path",
                "give either repo or path, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::field(
                "missing_field",
                "repo",
                "one of repo (owner/name) or path (/abs/dir) is required",
            ));
        }
        (Some(repo), None) => {
            let repo = RepoName::try_from(repo).map_err(|m| ApiError::field("invalid_value", "repo", m))?;
            if git_ref.as_deref().is_some_and(|r| r.is_empty() || r.len() > 255) {
                return Err(ApiError::field(
                    "invalid_value",
                    "ref",
                    "ref must be 1 to 255 characters",
                ));
            }
            if state.cfg.github.is_none() {
                return Err(ApiError::field(
                    "github_not_configured",
                    "repo",
                    format!(
                        "cannot fetch {}: GitHub repository sources need the GitHub App (GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY); use a local path instead",
                        repo.as_str()
                    ),
                ));
            }
            JobSource::Repo { repo, git_ref }
        }
        (None, Some(path)) => {
            if git_ref.is_some() {
                return Err(ApiError::field(
                    "invalid_value",
                    "ref",
                    "ref applies to repo sources; a path is analysed as it is on disk",
                ));
            }
            validate_path(&path, state)?;
            JobSource::Path { path }
        }
    };
    Ok((kind, source))
}

fn validate_path(path: &str, state: &AppState) -> Result<(), ApiError> {
    if !state.cfg.local_paths_allowed() {
        return Err(ApiError::field(
            "local_paths_disabled",
            "path",
            "path sources are disabled in production mode; set ALLOW_LOCAL_PATHS=true if workers share this filesystem",
        ));
    }
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(ApiError::field(
            "invalid_value",
            "path",
            format!("{path:?} is not an absolute path"),
        ));
    }
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(ApiError::field(
            "invalid_value",
            "path",
            format!("{path:?} is not a directory"),
        )),
        Err(_) => Err(ApiError::field(
            "invalid_value",
            "path",
            format!("{path:?} does not exist or cannot be read"),
        )),
    }
}

/// A repository source runs through the GitHub App installation that covers it (known from
/// the installations' `sync`). A tenant's key (`owner:key`) reaches only the repositories of
/// that GitHub account; a bare key (the operator's) and an API without keys reach all. Another
/// account's repository is answered as not installed, so a key learns nothing about it.
async fn github_target(
    state: &AppState,
    caller: &Caller,
    source: &JobSource,
) -> Result<Option<GithubTarget>, ApiError> {
    let JobSource::Repo { repo, .. } = source else {
        return Ok(None);
    };
    let reachable = caller
        .scope()
        .is_none_or(|owner| repo.owner().eq_ignore_ascii_case(owner));
    let mirrored = match reachable {
        true => shared::db::github::repository_by_name(&state.db.conn, repo.as_str()).await?,
        false => None,
    };
    let Some(mirrored) = mirrored else {
        let scope = caller
            .scope()
            .map(|owner| format!(" reachable with this API key (account {owner})"))
            .unwrap_or_default();
        return Err(ApiError::field(
            "not_installed",
            "repo",
            format!(
                "{} is not in any installation of the GitHub App{scope} (install the App on it; installations sync on install)",
                repo.as_str()
            ),
        ));
    };
    Ok(Some(GithubTarget {
        installation_id: mirrored.installation_id,
        head_sha: None,
        pr_number: None,
        trigger: json!({ "type": "api", "actor": caller.tenant }),
        delivery_id: None,
    }))
}

async fn create(state: web::Data<AppState>, caller: Caller, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let body = read_body(payload, MAX_BODY).await?;
    let (kind, source) = parse_create(&body, &state)?;
    if let Some(quota) = &state.quota
        && kind == JobKind::Analysis
    {
        // Only kinds that call models are refused when the tenant's budget is spent.
        let tenant = caller.tenant.as_deref().unwrap_or(shared::models::quota::ANONYMOUS);
        quota.admit(tenant, kind.as_str()).await?;
    }
    let github = github_target(&state, &caller, &source).await?;
    let inserted = jobs::insert(
        &state.db.conn,
        NewJob {
            kind,
            queue: state.queues.name(kind),
            source,
            tenant: caller.tenant,
            max_attempts: state.cfg.limits(kind).max_attempts,
            github,
        },
    )
    .await?;
    let job = inserted.job;
    if inserted.deduplicated {
        // The same work is already queued or running: the caller gets that job.
        tracing::info!(job_id = %job.id, %kind, "duplicate submission; existing job returned");
        let mut body = view(&job);
        body["deduplicated"] = json!(true);
        return Ok(HttpResponse::Ok().json(body));
    }
    // Push now; if the queue is down the row stays in the outbox and the relay pushes it later.
    if let Err(e) = shared::relay::enqueue(&state.db, &state.queues, &job).await {
        tracing::warn!(job_id = %job.id, error = %e, "queue unavailable; job accepted into the outbox");
    }
    tracing::info!(job_id = %job.id, %kind, "job accepted");
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/v1/jobs/{}", job.id)))
        .json(view(&job)))
}

async fn get(state: web::Data<AppState>, caller: Caller, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    // Another tenant's job is reported exactly like a missing one.
    match jobs::get(&state.db.conn, &id, caller.scope()).await? {
        Some(job) => Ok(HttpResponse::Ok().json(view(&job))),
        None => Err(ApiError::NotFound(format!("job {id}"))),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    repo: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

async fn list(state: web::Data<AppState>, caller: Caller, q: web::Query<ListQuery>) -> Result<HttpResponse, ApiError> {
    list_with(&state, caller, q.into_inner(), None).await
}

/// `GET /v1/dead-jobs`: the dead-letter queue, with the same filters and paging.
async fn list_dead(
    state: web::Data<AppState>,
    caller: Caller,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    list_with(&state, caller, q.into_inner(), Some(JobStatus::Dead)).await
}

async fn list_with(
    state: &AppState,
    caller: Caller,
    q: ListQuery,
    force_status: Option<JobStatus>,
) -> Result<HttpResponse, ApiError> {
    let status = q
        .status
        .map(|s| s.parse::<JobStatus>().map_err(|m| ApiError::bad_field("status", m)))
        .transpose()?
        .or(force_status);
    let kind = q
        .kind
        .map(|s| s.parse::<JobKind>().map_err(|m| ApiError::bad_field("kind", m)))
        .transpose()?;
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<u64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_field(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                ));
            }
        },
    };
    if let Some(c) = &q.cursor
        && uuid::Uuid::parse_str(c).is_err()
    {
        return Err(ApiError::bad_field("cursor", "cursor is not one this API returned"));
    }
    let filter = JobFilter {
        tenant: caller.scope().map(str::to_owned),
        status,
        kind,
        repo: q.repo,
        before_id: q.cursor,
        limit,
    };
    let rows = jobs::list(&state.db.conn, &filter).await?;
    let next_cursor = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|j| j.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({
        "jobs": rows.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

/// `POST /v1/dead-jobs/{id}/replay`: back to its queue, attempts reset, history kept.
async fn replay_dead(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    match shared::dlq::replay(&state.db, &state.queues, &id, caller.scope()).await? {
        Some(job) => Ok(HttpResponse::Accepted().json(view(&job))),
        None => Err(not_dead(&state, &id, caller.scope()).await),
    }
}

/// `DELETE /v1/dead-jobs/{id}`.
async fn purge_dead(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if jobs::purge_dead(&state.db.conn, &id, caller.scope()).await? {
        tracing::info!(job_id = %id, "dead job deleted");
        return Ok(HttpResponse::NoContent().finish());
    }
    Err(not_dead(&state, &id, caller.scope()).await)
}

/// 404 when the job does not exist (for this caller), 409 when it exists but is not dead.
async fn not_dead(state: &AppState, id: &str, tenant: Option<&str>) -> ApiError {
    match jobs::get(&state.db.conn, id, tenant).await {
        Ok(Some(job)) => ApiError::Conflict(format!("job {id} is {}, not dead", job.status)),
        Ok(None) => ApiError::NotFound(format!("dead job {id}")),
        Err(e) => e.into(),
    }
}
