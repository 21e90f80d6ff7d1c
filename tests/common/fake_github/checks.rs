//! Check run endpoints, with GitHub's validation: known statuses and conclusions, a
//! conclusion once completed, output title and summary, at most 50 annotations a request.

use serde_json::{Value, json};

use super::CheckRun;
use super::http::{Ctx, Reply};
use super::state::{Ids, Repo};

const STATUSES: &[&str] = &["queued", "in_progress", "completed", "waiting", "requested", "pending"];
const CONCLUSIONS: &[&str] = &[
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
];
const LEVELS: &[&str] = &["notice", "warning", "failure"];
/// GitHub's limit of annotations in one create or update request.
pub(super) const MAX_ANNOTATIONS: usize = 50;

fn invalid(detail: &str) -> Reply {
    Reply::message(422, &format!("Invalid request.\n\n{detail}"))
}

pub(super) fn check_run_json(repo: &Repo, ctx: &Ctx, c: &CheckRun) -> Value {
    let api = format!("{}/repos/{}", ctx.base, repo.full_name);
    json!({
        "id": c.id,
        "node_id": format!("CR_fake{}", c.id),
        "head_sha": c.head_sha,
        "external_id": c.external_id,
        "url": format!("{api}/check-runs/{}", c.id),
        "html_url": format!("{}/runs/{}", repo.html_url(), c.id),
        "details_url": c.details_url,
        "status": c.status,
        "conclusion": c.conclusion,
        "started_at": c.started_at,
        "completed_at": c.completed_at,
        "output": {
            "title": c.title,
            "summary": c.summary,
            "text": c.text,
            "annotations_count": c.annotations_count,
            "annotations_url": format!("{api}/check-runs/{}/annotations", c.id)
        },
        "name": c.name,
        "check_suite": {"id": c.id},
        "app": {"slug": super::app::APP_SLUG},
        "pull_requests": []
    })
}

/// Checks the status, conclusion and output fields of a create or update body.
fn validate(body: &Value, current_conclusion: Option<&str>) -> Result<(), Reply> {
    let status = body.get("status").and_then(Value::as_str);
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(invalid(&format!("{s:?} is not a member of {STATUSES:?}.")));
    }
    let conclusion = body.get("conclusion").and_then(Value::as_str);
    if let Some(c) = conclusion
        && !CONCLUSIONS.contains(&c)
    {
        return Err(invalid(&format!("{c:?} is not a member of {CONCLUSIONS:?}.")));
    }
    if (status == Some("completed") || body.get("completed_at").is_some_and(|v| !v.is_null()))
        && conclusion.or(current_conclusion).is_none()
    {
        return Err(invalid("\"conclusion\" wasn't supplied."));
    }
    let Some(output) = body.get("output").filter(|o| !o.is_null()) else {
        return Ok(());
    };
    for field in ["title", "summary"] {
        if output.get(field).and_then(Value::as_str).is_none() {
            return Err(invalid(&format!("\"{field}\" wasn't supplied.")));
        }
    }
    let annotations = output
        .get("annotations")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    if annotations.len() > MAX_ANNOTATIONS {
        return Err(invalid(&format!(
            "Only {MAX_ANNOTATIONS} annotations are allowed per request; {} were given.",
            annotations.len()
        )));
    }
    for a in annotations {
        for field in ["path", "start_line", "end_line", "annotation_level", "message"] {
            if a.get(field).is_none_or(Value::is_null) {
                return Err(invalid(&format!("\"{field}\" wasn't supplied.")));
            }
        }
        let level = a["annotation_level"].as_str().unwrap_or_default();
        if !LEVELS.contains(&level) {
            return Err(invalid(&format!("{level:?} is not a member of {LEVELS:?}.")));
        }
    }
    Ok(())
}

/// Applies the fields of a validated create or update body to `c`.
fn apply(c: &mut CheckRun, body: &Value) {
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    if let Some(v) = s("name") {
        c.name = v;
    }
    if let Some(v) = s("status") {
        c.status = v;
    }
    if let Some(v) = s("conclusion") {
        c.conclusion = Some(v);
        c.status = "completed".to_string();
    }
    for (field, target) in [
        ("external_id", &mut c.external_id),
        ("details_url", &mut c.details_url),
        ("started_at", &mut c.started_at),
        ("completed_at", &mut c.completed_at),
    ] {
        if let Some(v) = s(field) {
            *target = Some(v);
        }
    }
    if c.status == "completed" && c.completed_at.is_none() {
        c.completed_at = Some(super::http::now_rfc3339());
    }
    if let Some(output) = body.get("output").filter(|o| !o.is_null()) {
        let o = |k: &str| output.get(k).and_then(Value::as_str).map(str::to_string);
        c.title = o("title");
        c.summary = o("summary");
        if let Some(t) = o("text") {
            c.text = Some(t);
        }
        if let Some(list) = output.get("annotations").and_then(Value::as_array) {
            c.annotations.extend(list.iter().cloned());
            c.annotations_count = c.annotations.len();
        }
    }
}

/// POST check-runs {name, head_sha, …} → 201.
pub(super) fn create(repo: &mut Repo, ids: &mut Ids, ctx: &Ctx) -> Reply {
    let Some(name) = ctx.str_field("name") else {
        return invalid("\"name\" wasn't supplied.");
    };
    let Some(head_sha) = ctx.str_field("head_sha") else {
        return invalid("\"head_sha\" wasn't supplied.");
    };
    if !repo.commits.contains_key(head_sha) {
        return Reply::message(422, &format!("No commit found for SHA: {head_sha}"));
    }
    if let Err(r) = validate(&ctx.body, None) {
        return r;
    }
    let mut run = CheckRun {
        id: ids.next(),
        head_sha: head_sha.to_string(),
        name: name.to_string(),
        status: "queued".to_string(),
        conclusion: None,
        title: None,
        summary: None,
        text: None,
        annotations_count: 0,
        annotations: Vec::new(),
        external_id: None,
        details_url: None,
        started_at: None,
        completed_at: None,
    };
    apply(&mut run, &ctx.body);
    let body = check_run_json(repo, ctx, &run);
    repo.check_runs.push(run);
    Reply::json(201, body)
}

/// GET or PATCH check-runs/{id}.
pub(super) fn handle(repo: &mut Repo, ctx: &Ctx, id: i64) -> Reply {
    let Some(i) = repo.check_runs.iter().position(|c| c.id == id) else {
        return Reply::not_found();
    };
    match ctx.method {
        "GET" => Reply::ok(check_run_json(repo, ctx, &repo.check_runs[i])),
        "PATCH" => {
            if let Err(r) = validate(&ctx.body, repo.check_runs[i].conclusion.as_deref()) {
                return r;
            }
            apply(&mut repo.check_runs[i], &ctx.body);
            Reply::ok(check_run_json(repo, ctx, &repo.check_runs[i]))
        }
        _ => Reply::not_found(),
    }
}

/// GET commits/{ref}/check-runs[?check_name=]: {total_count, check_runs}.
pub(super) fn list_for_ref(repo: &Repo, ctx: &Ctx, reference: &str) -> Reply {
    let Some(commit) = repo.resolve(reference) else {
        return Reply::message(422, &format!("No commit found for SHA: {reference}"));
    };
    let name = ctx.param("check_name");
    let runs: Vec<Value> = repo
        .check_runs
        .iter()
        .rev()
        .filter(|c| c.head_sha == commit.sha && name.is_none_or(|n| n == c.name))
        .map(|c| check_run_json(repo, ctx, c))
        .collect();
    let (page, link) = ctx.paginate(&runs);
    let reply = Reply::ok(json!({"total_count": runs.len(), "check_runs": page}));
    match link {
        Some(l) => reply.header("link", l),
        None => reply,
    }
}
