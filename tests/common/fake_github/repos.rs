//! Routing of /repos/{owner}/{repo}/… and the repository and collaborator endpoints.

use serde_json::{Value, json};

use super::http::{Ctx, Reply};
use super::state::{Repo, State};
use super::{checks, comments, contents, gitdata, pulls};

pub(super) fn handle(st: &mut State, ctx: &Ctx, owner: &str, name: &str, rest: &[&str]) -> Reply {
    let State {
        repos,
        ids,
        comment_posts,
        ..
    } = st;
    let key = format!("{owner}/{name}").to_lowercase();
    // A token only sees its installation's repositories; GitHub hides the others as 404.
    let Some(repo) = repos.get_mut(&key).filter(|r| Some(r.installation) == ctx.installation) else {
        return Reply::not_found();
    };
    let num = |s: &str| s.parse::<i64>().ok();
    match (ctx.method, rest) {
        ("GET", []) => Reply::ok(repo_json(repo, ctx.base)),
        ("GET", ["collaborators", user, "permission"]) => permission(repo, user),
        ("GET", ["pulls"]) => pulls::list(repo, ctx),
        ("POST", ["pulls"]) => pulls::create(repo, ctx),
        (_, ["pulls", n, tail @ ..]) => match num(n) {
            Some(n) => pulls::handle(repo, ctx, n, tail),
            None => Reply::not_found(),
        },
        ("GET", ["git", "ref", r @ ..]) if !r.is_empty() => gitdata::get_ref(repo, ctx, &r.join("/")),
        ("POST", ["git", "refs"]) => gitdata::create_ref(repo, ctx),
        ("PATCH", ["git", "refs", r @ ..]) if !r.is_empty() => gitdata::update_ref(repo, ctx, &r.join("/")),
        ("DELETE", ["git", "refs", r @ ..]) if !r.is_empty() => gitdata::delete_ref(repo, &r.join("/")),
        ("GET", ["commits", r @ .., "check-runs"]) if !r.is_empty() => checks::list_for_ref(repo, ctx, &r.join("/")),
        ("GET", ["commits", r @ ..]) if !r.is_empty() => gitdata::get_commit(repo, ctx, &r.join("/")),
        ("GET", ["git", "trees", r @ ..]) if !r.is_empty() => gitdata::get_tree(repo, ctx, &r.join("/")),
        ("GET", ["git", "blobs", sha]) => gitdata::get_blob(repo, ctx, sha),
        ("GET", ["contents", p @ ..]) => contents::get(repo, ctx, &p.join("/")),
        ("PUT", ["contents", p @ ..]) if !p.is_empty() => contents::put(repo, ids, ctx, &p.join("/")),
        ("POST", ["check-runs"]) => checks::create(repo, ids, ctx),
        (_, ["check-runs", id]) => match num(id) {
            Some(id) => checks::handle(repo, ctx, id),
            None => Reply::not_found(),
        },
        (_, ["issues", "comments", id]) => match num(id) {
            Some(id) => comments::handle_one(repo, ctx, id),
            None => Reply::not_found(),
        },
        (_, ["issues", n, "comments"]) => match num(n) {
            Some(n) => comments::handle_issue(repo, ids, comment_posts, ctx, n),
            None => Reply::not_found(),
        },
        _ => Reply::not_found(),
    }
}

/// The repository object with the fields clients read.
pub(super) fn repo_json(r: &Repo, base: &str) -> Value {
    json!({
        "id": r.id,
        "node_id": format!("R_fake{}", r.id),
        "name": r.name,
        "full_name": r.full_name,
        "private": r.private,
        "visibility": if r.private { "private" } else { "public" },
        "archived": r.archived,
        "disabled": false,
        "fork": false,
        "default_branch": r.default_branch,
        "language": r.language,
        "owner": {"login": r.owner, "type": "Organization"},
        "html_url": r.html_url(),
        "url": format!("{base}/repos/{}", r.full_name),
        "clone_url": format!("{}.git", r.html_url()),
    })
}

/// A collaborator's permission; anyone not added answers "none".
fn permission(repo: &Repo, user: &str) -> Reply {
    let perm = repo
        .permissions
        .get(&user.to_lowercase())
        .map_or("none", String::as_str);
    let legacy = match perm {
        "maintain" => "write",
        "triage" => "read",
        p => p,
    };
    Reply::ok(json!({
        "permission": legacy,
        "role_name": perm,
        "user": {"login": user, "type": "User"}
    }))
}
