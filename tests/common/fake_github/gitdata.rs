//! Git data endpoints: refs, commits, trees and blobs.

use serde_json::{Value, json};

use super::git::{Commit, base64_wrapped};
use super::http::{Ctx, Reply};
use super::state::Repo;

fn ref_json(repo: &Repo, ctx: &Ctx, branch: &str, sha: &str) -> Value {
    let api = format!("{}/repos/{}", ctx.base, repo.full_name);
    json!({
        "ref": format!("refs/heads/{branch}"),
        "node_id": format!("REF_fake_{branch}"),
        "url": format!("{api}/git/refs/heads/{branch}"),
        "object": {"sha": sha, "type": "commit", "url": format!("{api}/git/commits/{sha}")}
    })
}

/// GET git/ref/{ref}: only branches (`heads/…`) exist in the fake.
pub(super) fn get_ref(repo: &Repo, ctx: &Ctx, reference: &str) -> Reply {
    let Some(branch) = reference.strip_prefix("heads/") else {
        return Reply::not_found();
    };
    match repo.branches.get(branch) {
        Some(sha) => Reply::ok(ref_json(repo, ctx, branch, sha)),
        None => Reply::not_found(),
    }
}

/// POST git/refs {ref: "refs/heads/x", sha}.
pub(super) fn create_ref(repo: &mut Repo, ctx: &Ctx) -> Reply {
    let (Some(full), Some(sha)) = (ctx.str_field("ref"), ctx.str_field("sha")) else {
        return Reply::message(422, "Invalid request.\n\n\"ref\" and \"sha\" are required.");
    };
    if !full.starts_with("refs/") || full.matches('/').count() < 2 {
        return Reply::message(
            422,
            "Reference name must start with 'refs/' and have at least two slashes.",
        );
    }
    let Some(branch) = full.strip_prefix("refs/heads/") else {
        return Reply::message(422, "Only branch references (refs/heads/…) are supported by the fake");
    };
    if !repo.commits.contains_key(sha) {
        return Reply::message(422, "Object does not exist");
    }
    if repo.branches.contains_key(branch) {
        return Reply::message(422, "Reference already exists");
    }
    repo.branches.insert(branch.to_string(), sha.to_string());
    Reply::json(201, ref_json(repo, ctx, branch, sha))
}

/// PATCH git/refs/heads/{branch} {sha, force}: refuses a non-fast-forward unless forced.
pub(super) fn update_ref(repo: &mut Repo, ctx: &Ctx, reference: &str) -> Reply {
    let Some(current) = reference.strip_prefix("heads/").and_then(|b| repo.branches.get(b)) else {
        return Reply::message(422, "Reference does not exist");
    };
    let Some(sha) = ctx.str_field("sha") else {
        return Reply::message(422, "Invalid request.\n\n\"sha\" wasn't supplied.");
    };
    if !repo.commits.contains_key(sha) {
        return Reply::message(422, "Object does not exist");
    }
    let force = ctx.body.get("force").and_then(Value::as_bool).unwrap_or(false);
    if !force && !repo.is_ancestor(current, sha) {
        return Reply::message(422, "Update is not a fast forward");
    }
    let branch = reference.trim_start_matches("heads/").to_string();
    repo.branches.insert(branch.clone(), sha.to_string());
    Reply::ok(ref_json(repo, ctx, &branch, sha))
}

/// DELETE git/refs/heads/{branch} → 204.
pub(super) fn delete_ref(repo: &mut Repo, reference: &str) -> Reply {
    match reference.strip_prefix("heads/").and_then(|b| repo.branches.remove(b)) {
        Some(_) => Reply {
            status: 204,
            body: None,
            headers: Vec::new(),
        },
        None => Reply::message(422, "Reference does not exist"),
    }
}

/// GET commits/{ref} where ref is a branch or a sha.
pub(super) fn get_commit(repo: &Repo, ctx: &Ctx, reference: &str) -> Reply {
    let Some(c) = repo.resolve(reference) else {
        return Reply::message(422, &format!("No commit found for SHA: {reference}"));
    };
    let api = format!("{}/repos/{}", ctx.base, repo.full_name);
    let parents: Vec<Value> = c
        .parents
        .iter()
        .map(|p| json!({"sha": p, "url": format!("{api}/commits/{p}")}))
        .collect();
    Reply::ok(json!({
        "sha": c.sha,
        "node_id": format!("C_fake_{}", c.sha),
        "url": format!("{api}/commits/{}", c.sha),
        "html_url": format!("{}/commit/{}", repo.html_url(), c.sha),
        "commit": {
            "message": c.message,
            "tree": {"sha": c.tree, "url": format!("{api}/git/trees/{}", c.tree)},
            "author": {"name": "Fake", "email": "fake@example.com"},
            "committer": {"name": "Fake", "email": "fake@example.com"}
        },
        "parents": parents
    }))
}

/// GET git/trees/{sha}[?recursive=1]; `sha` may be a tree, a commit or a branch name.
pub(super) fn get_tree(repo: &Repo, ctx: &Ctx, reference: &str) -> Reply {
    let found: Option<(&Commit, String)> = repo
        .find_tree(reference)
        .or_else(|| repo.resolve(reference).map(|c| (c, String::new())));
    let Some((commit, dir)) = found else {
        return Reply::not_found();
    };
    let recursive = ctx
        .param("recursive")
        .is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
    let sha = &commit.dirs[&dir];
    Reply::ok(json!({
        "sha": sha,
        "url": format!("{}/repos/{}/git/trees/{sha}", ctx.base, repo.full_name),
        "tree": repo.tree_items(commit, &dir, recursive),
        "truncated": false
    }))
}

/// GET git/blobs/{sha}: base64 wrapped at 60 characters.
pub(super) fn get_blob(repo: &Repo, ctx: &Ctx, sha: &str) -> Reply {
    let Some(content) = repo.blobs.get(sha) else {
        return Reply::not_found();
    };
    Reply::ok(json!({
        "sha": sha,
        "node_id": format!("B_fake_{sha}"),
        "size": content.len(),
        "url": format!("{}/repos/{}/git/blobs/{sha}", ctx.base, repo.full_name),
        "content": base64_wrapped(content),
        "encoding": "base64"
    }))
}
