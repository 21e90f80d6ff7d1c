//! App-level endpoints: the app itself, installation tokens, webhook deliveries, and the
//! repositories an installation can reach.

use serde_json::{Value, json};

use super::http::{Ctx, Reply, now_rfc3339};
use super::repos::repo_json;
use super::state::{HookDelivery, State, Token};

/// The slug the fake app has; comments it posts are by `<slug>[bot]`.
pub(super) const APP_SLUG: &str = "autodevops";

/// Routes under /app (already authenticated with a JWT).
pub(super) fn handle(st: &mut State, ctx: &Ctx, rest: &[&str]) -> Reply {
    match (ctx.method, rest) {
        ("GET", []) => Reply::ok(json!({
            "id": ctx.app_id.clone().unwrap_or(Value::Null),
            "slug": APP_SLUG,
            "name": "AutoDevOps",
            "owner": {"login": "autodevops", "type": "Organization"},
            "html_url": format!("https://github.com/apps/{APP_SLUG}"),
        })),
        ("POST", ["installations", id, "access_tokens"]) => access_token(st, id),
        ("GET", ["hook", "deliveries"]) => list_deliveries(st, ctx),
        ("POST", ["hook", "deliveries", id, "attempts"]) => redeliver(st, id),
        _ => Reply::not_found(),
    }
}

fn access_token(st: &mut State, id: &str) -> Reply {
    let Some(id) = id.parse::<i64>().ok().filter(|id| st.installations.contains_key(id)) else {
        return Reply::not_found();
    };
    let token = format!("ghs_{}", (0..36).map(|_| fastrand::alphanumeric()).collect::<String>());
    st.tokens.insert(
        token.clone(),
        Token {
            installation: id,
            expired: false,
        },
    );
    st.token_exchanges += 1;
    let expires_at =
        (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Reply::json(
        201,
        json!({
            "token": token,
            "expires_at": expires_at,
            "permissions": {
                "checks": "write",
                "contents": "write",
                "issues": "write",
                "metadata": "read",
                "pull_requests": "write",
                "workflows": "write"
            },
            "repository_selection": "all"
        }),
    )
}

fn delivery_json(d: &HookDelivery) -> Value {
    let status = match d.status_code {
        200..=299 => "OK".to_string(),
        0 => "Failed to connect to host".to_string(),
        code => format!("Invalid HTTP Response: {code}"),
    };
    json!({
        "id": d.id,
        "guid": d.guid,
        "delivered_at": d.delivered_at,
        "redelivery": d.redelivery,
        "duration": 0.05,
        "status": status,
        "status_code": d.status_code,
        "event": d.event,
        "action": Value::Null,
        "installation_id": Value::Null,
        "repository_id": Value::Null,
        "throttled_at": Value::Null
    })
}

/// Newest first, `per_page` at a time, paged with an opaque `cursor` as GitHub does.
fn list_deliveries(st: &State, ctx: &Ctx) -> Reply {
    let (per_page, _) = ctx.page();
    let cursor = ctx.param("cursor").and_then(|c| c.parse::<i64>().ok());
    let mut all: Vec<&HookDelivery> = st
        .deliveries
        .iter()
        .filter(|d| cursor.is_none_or(|c| d.id < c))
        .collect();
    all.sort_by_key(|d| std::cmp::Reverse(d.id));
    let page: Vec<Value> = all.iter().take(per_page).map(|d| delivery_json(d)).collect();
    let mut reply = Reply::ok(Value::Array(page));
    if all.len() > per_page {
        let last = all[per_page - 1].id;
        reply = reply.header(
            "link",
            format!("<{}>; rel=\"next\"", ctx.url_with("cursor", &last.to_string())),
        );
    }
    reply
}

/// Records the redelivery and, as GitHub does, lists it as a new delivery of the same guid
/// marked `redelivery: true` (answered 200).
fn redeliver(st: &mut State, id: &str) -> Reply {
    let Some(original) = id
        .parse::<i64>()
        .ok()
        .and_then(|id| st.deliveries.iter().find(|d| d.id == id))
    else {
        return Reply::not_found();
    };
    let again = HookDelivery {
        id: st.deliveries.iter().map(|d| d.id).max().unwrap_or(0) + 1,
        guid: original.guid.clone(),
        event: original.event.clone(),
        status_code: 200,
        redelivery: true,
        delivered_at: now_rfc3339(),
    };
    st.redelivered.push(original.id);
    st.deliveries.push(again);
    Reply::json(202, json!({}))
}

/// GET /installation/repositories for the token's installation.
pub(super) fn installation_repos(st: &State, ctx: &Ctx) -> Reply {
    let repos: Vec<Value> = st
        .repos
        .values()
        .filter(|r| Some(r.installation) == ctx.installation)
        .map(|r| repo_json(r, ctx.base))
        .collect();
    let (page, link) = ctx.paginate(&repos);
    let reply = Reply::ok(json!({
        "total_count": repos.len(),
        "repository_selection": "all",
        "repositories": page
    }));
    match link {
        Some(l) => reply.header("link", l),
        None => reply,
    }
}
