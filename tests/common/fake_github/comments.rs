//! Issue comment endpoints (pull requests are issues): list with pagination, create, get
//! and update.

use serde_json::{Value, json};

use super::Comment;
use super::http::{Ctx, Reply, now_rfc3339};
use super::state::{Ids, Repo};

/// GitHub's maximum comment body length, in characters.
const MAX_BODY: usize = 65_536;

pub(super) fn comment_json(repo: &Repo, ctx: &Ctx, c: &Comment) -> Value {
    let api = format!("{}/repos/{}", ctx.base, repo.full_name);
    let kind = if c.user.ends_with("[bot]") { "Bot" } else { "User" };
    json!({
        "id": c.id,
        "node_id": format!("IC_fake{}", c.id),
        "url": format!("{api}/issues/comments/{}", c.id),
        "html_url": format!("{}/pull/{}#issuecomment-{}", repo.html_url(), c.issue, c.id),
        "issue_url": format!("{api}/issues/{}", c.issue),
        "body": c.body,
        "user": {"login": c.user, "type": kind},
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "author_association": if kind == "Bot" { "NONE" } else { "MEMBER" }
    })
}

/// The body of a create or update request, checked as GitHub checks it.
fn body_field(ctx: &Ctx) -> Result<String, Reply> {
    let Some(body) = ctx.str_field("body").filter(|b| !b.is_empty()) else {
        return Err(Reply::validation(
            json!([{"resource": "IssueComment", "field": "body", "code": "missing_field"}]),
        ));
    };
    if body.chars().count() > MAX_BODY {
        return Err(Reply::validation(json!([{
            "resource": "IssueComment",
            "field": "body",
            "code": "custom",
            "message": format!("Body is too long (maximum is {MAX_BODY} characters)")
        }])));
    }
    Ok(body.to_string())
}

/// GET (paginated, oldest first) or POST issues/{n}/comments; the issue must be a pull request.
pub(super) fn handle_issue(repo: &mut Repo, ids: &mut Ids, comment_posts: &mut usize, ctx: &Ctx, issue: i64) -> Reply {
    if !repo.pulls.contains_key(&issue) {
        return Reply::not_found();
    }
    match ctx.method {
        "GET" => {
            let all: Vec<Value> = repo
                .comments
                .iter()
                .filter(|c| c.issue == issue)
                .map(|c| comment_json(repo, ctx, c))
                .collect();
            let (page, link) = ctx.paginate(&all);
            let reply = Reply::ok(Value::Array(page));
            match link {
                Some(l) => reply.header("link", l),
                None => reply,
            }
        }
        "POST" => {
            let body = match body_field(ctx) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let now = now_rfc3339();
            let c = Comment {
                id: ids.next(),
                issue,
                body,
                user: format!("{}[bot]", super::app::APP_SLUG),
                created_at: now.clone(),
                updated_at: now,
            };
            *comment_posts += 1;
            let json = comment_json(repo, ctx, &c);
            repo.comments.push(c);
            Reply::json(201, json)
        }
        _ => Reply::not_found(),
    }
}

/// GET or PATCH issues/comments/{id}.
pub(super) fn handle_one(repo: &mut Repo, ctx: &Ctx, id: i64) -> Reply {
    let Some(i) = repo.comments.iter().position(|c| c.id == id) else {
        return Reply::not_found();
    };
    match ctx.method {
        "GET" => Reply::ok(comment_json(repo, ctx, &repo.comments[i])),
        "PATCH" => {
            let body = match body_field(ctx) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let c = &mut repo.comments[i];
            c.body = body;
            c.updated_at = now_rfc3339();
            Reply::ok(comment_json(repo, ctx, &repo.comments[i]))
        }
        _ => Reply::not_found(),
    }
}
