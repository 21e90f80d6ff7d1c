//! Pull request endpoints: list, create, get, update, and changed files.

use serde_json::{Value, json};

use super::Pull;
use super::git::line_diff;
use super::http::{Ctx, Reply};
use super::state::Repo;

pub(super) fn handle(repo: &mut Repo, ctx: &Ctx, number: i64, tail: &[&str]) -> Reply {
    if !repo.pulls.contains_key(&number) {
        return Reply::not_found();
    }
    match (ctx.method, tail) {
        ("GET", []) => Reply::ok(pull_json(repo, &repo.pulls[&number], ctx.base)),
        ("PATCH", []) => update(repo, ctx, number),
        ("GET", ["files"]) => files(repo, ctx, number),
        _ => Reply::not_found(),
    }
}

pub(super) fn pull_json(repo: &Repo, p: &Pull, base: &str) -> Value {
    let head_sha = repo.branches.get(&p.head_ref).cloned().unwrap_or_default();
    let base_sha = repo.branches.get(&p.base_ref).cloned().unwrap_or_default();
    let repo_ref = json!({
        "id": repo.id,
        "name": repo.name,
        "full_name": repo.full_name,
        "owner": {"login": repo.owner}
    });
    json!({
        "url": format!("{base}/repos/{}/pulls/{}", repo.full_name, p.number),
        "id": repo.id * 10_000 + p.number,
        "number": p.number,
        "state": p.state,
        "locked": false,
        "draft": p.draft,
        "title": p.title,
        "body": p.body,
        "user": {"login": repo.owner, "type": "User"},
        "html_url": format!("{}/pull/{}", repo.html_url(), p.number),
        "head": {
            "label": format!("{}:{}", repo.owner, p.head_ref),
            "ref": p.head_ref,
            "sha": head_sha,
            "repo": repo_ref.clone()
        },
        "base": {
            "label": format!("{}:{}", repo.owner, p.base_ref),
            "ref": p.base_ref,
            "sha": base_sha,
            "repo": repo_ref
        },
        "merged": false,
        "mergeable": Value::Null
    })
}

/// GET pulls with GitHub's `state` (open, closed, all), `head` (owner:branch) and `base`
/// filters, newest first.
pub(super) fn list(repo: &Repo, ctx: &Ctx) -> Reply {
    let state = ctx.param("state").unwrap_or("open");
    let head = ctx.param("head");
    let base = ctx.param("base");
    let matching: Vec<Value> = repo
        .pulls
        .values()
        .rev()
        .filter(|p| state == "all" || p.state == state)
        .filter(|p| head.is_none_or(|h| h == format!("{}:{}", repo.owner, p.head_ref)))
        .filter(|p| base.is_none_or(|b| b == p.base_ref))
        .map(|p| pull_json(repo, p, ctx.base))
        .collect();
    let (page, link) = ctx.paginate(&matching);
    let reply = Reply::ok(Value::Array(page));
    match link {
        Some(l) => reply.header("link", l),
        None => reply,
    }
}

fn missing(field: &str) -> Reply {
    Reply::validation(json!([{"resource": "PullRequest", "field": field, "code": "missing_field"}]))
}

fn invalid(field: &str) -> Reply {
    Reply::validation(json!([{"resource": "PullRequest", "field": field, "code": "invalid"}]))
}

/// An open pull request for `head` other than `except`, as GitHub's duplicate check sees it.
fn open_for_head(repo: &Repo, head: &str, except: Option<i64>) -> Option<Reply> {
    repo.pulls
        .values()
        .any(|p| p.state == "open" && p.head_ref == head && Some(p.number) != except)
        .then(|| {
            Reply::custom(
                "PullRequest",
                &format!("A pull request already exists for {}:{head}.", repo.owner),
            )
        })
}

/// POST pulls: validates like GitHub (fields, branches, duplicates, something to merge).
pub(super) fn create(repo: &mut Repo, ctx: &Ctx) -> Reply {
    let Some(title) = ctx.str_field("title").filter(|t| !t.trim().is_empty()) else {
        return missing("title");
    };
    let Some(head) = ctx.str_field("head") else {
        return missing("head");
    };
    let Some(base) = ctx.str_field("base") else {
        return missing("base");
    };
    let head = match head.split_once(':') {
        Some((owner, branch)) if owner.eq_ignore_ascii_case(&repo.owner) => branch,
        Some(_) => return invalid("head"),
        None => head,
    };
    let Some(head_sha) = repo.branches.get(head) else {
        return invalid("head");
    };
    let Some(base_sha) = repo.branches.get(base) else {
        return invalid("base");
    };
    if let Some(dup) = open_for_head(repo, head, None) {
        return dup;
    }
    if repo.is_ancestor(head_sha, base_sha) {
        return Reply::custom("PullRequest", &format!("No commits between {base} and {head}"));
    }
    let number = repo.next_number;
    repo.next_number += 1;
    let pull = Pull {
        number,
        head_ref: head.to_string(),
        base_ref: base.to_string(),
        title: title.to_string(),
        body: ctx.str_field("body").map(str::to_string),
        state: "open".to_string(),
        draft: ctx.body.get("draft").and_then(Value::as_bool).unwrap_or(false),
    };
    let body = pull_json(repo, &pull, ctx.base);
    repo.pulls.insert(number, pull);
    Reply::json(201, body)
}

/// PATCH pulls/{n}: title, body, state and base.
fn update(repo: &mut Repo, ctx: &Ctx, number: i64) -> Reply {
    if let Some(state) = ctx.str_field("state") {
        if state != "open" && state != "closed" {
            return invalid("state");
        }
        let head = repo.pulls[&number].head_ref.clone();
        if state == "open"
            && let Some(dup) = open_for_head(repo, &head, Some(number))
        {
            return dup;
        }
    }
    if let Some(base) = ctx.str_field("base")
        && !repo.branches.contains_key(base)
    {
        return invalid("base");
    }
    let p = repo.pulls.get_mut(&number).expect("checked above");
    if let Some(t) = ctx.str_field("title") {
        p.title = t.to_string();
    }
    if ctx.body.get("body").is_some() {
        p.body = ctx.str_field("body").map(str::to_string);
    }
    if let Some(s) = ctx.str_field("state") {
        p.state = s.to_string();
    }
    if let Some(b) = ctx.str_field("base") {
        p.base_ref = b.to_string();
    }
    Reply::ok(pull_json(repo, &repo.pulls[&number], ctx.base))
}

/// GET pulls/{n}/files: the head tree against the base tree, by filename.
fn files(repo: &Repo, ctx: &Ctx, number: i64) -> Reply {
    let p = &repo.pulls[&number];
    let (Some(head), Some(base)) = (repo.resolve(&p.head_ref), repo.resolve(&p.base_ref)) else {
        return Reply::ok(json!([]));
    };
    let mut paths: Vec<&String> = head.files.keys().chain(base.files.keys()).collect();
    paths.sort();
    paths.dedup();
    let text = |c, path: &str| {
        repo.blob_at(c, path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for path in paths {
        let (old, new) = (base.files.get(path), head.files.get(path));
        let status = match (old, new) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            (Some(o), Some(n)) if o.sha != n.sha || o.mode != n.mode => "modified",
            _ => continue,
        };
        let (additions, deletions, patch) = line_diff(&text(base, path), &text(head, path));
        let sha = new.or(old).map(|e| e.sha.clone());
        out.push(json!({
            "sha": sha,
            "filename": path,
            "status": status,
            "additions": additions,
            "deletions": deletions,
            "changes": additions + deletions,
            "blob_url": format!("{}/blob/{}/{path}", repo.html_url(), head.sha),
            "raw_url": format!("{}/raw/{}/{path}", repo.html_url(), head.sha),
            "contents_url": format!("{}/repos/{}/contents/{path}?ref={}", ctx.base, repo.full_name, head.sha),
            "patch": patch
        }));
    }
    let (page, link) = ctx.paginate(&out);
    let reply = Reply::ok(Value::Array(page));
    match link {
        Some(l) => reply.header("link", l),
        None => reply,
    }
}
