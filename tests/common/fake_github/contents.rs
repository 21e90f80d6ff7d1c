//! The repository contents endpoints: read a file or directory, create or update a file.

use serde_json::{Value, json};

use super::git::{Commit, Entry, base64_decode, base64_wrapped};
use super::http::{Ctx, Reply};
use super::state::{Ids, Repo};

fn entry_json(repo: &Repo, ctx: &Ctx, commit: &Commit, path: &str, e: &Entry) -> Value {
    let name = path.rsplit('/').next().unwrap_or(path);
    let size = repo.blobs.get(&e.sha).map_or(0, Vec::len);
    let kind = match e.mode {
        "120000" => "symlink",
        "160000" => "submodule",
        _ => "file",
    };
    json!({
        "type": kind,
        "name": name,
        "path": path,
        "sha": e.sha,
        "size": if kind == "submodule" { 0 } else { size },
        "url": format!("{}/repos/{}/contents/{path}?ref={}", ctx.base, repo.full_name, commit.sha),
        "html_url": format!("{}/blob/{}/{path}", repo.html_url(), commit.sha),
        "git_url": format!("{}/repos/{}/git/blobs/{}", ctx.base, repo.full_name, e.sha),
        "download_url": Value::Null
    })
}

/// GET contents/{path}?ref=: a file (with base64 content), a symlink (with its target), a
/// submodule, or a directory listing; 404 when absent.
pub(super) fn get(repo: &Repo, ctx: &Ctx, path: &str) -> Reply {
    let reference = ctx.param("ref").unwrap_or(&repo.default_branch);
    let Some(commit) = repo.resolve(reference) else {
        return Reply::message(404, &format!("No commit found for the ref {reference}"));
    };
    if let Some(e) = commit.files.get(path) {
        let mut v = entry_json(repo, ctx, commit, path, e);
        let content = repo.blobs.get(&e.sha);
        match e.mode {
            "120000" => {
                v["target"] = json!(content.map(|c| String::from_utf8_lossy(c).into_owned()));
            }
            "160000" => {
                v["submodule_git_url"] = json!(format!("https://github.com/{path}.git"));
            }
            _ => {
                v["encoding"] = json!("base64");
                v["content"] = json!(base64_wrapped(content.map_or(&[][..], Vec::as_slice)));
            }
        }
        return Reply::ok(v);
    }
    if path.is_empty() || commit.dirs.contains_key(path) {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let mut items: Vec<Value> = Vec::new();
        for (p, e) in &commit.files {
            if p.strip_prefix(&prefix).is_some_and(|rel| !rel.contains('/')) {
                items.push(entry_json(repo, ctx, commit, p, e));
            }
        }
        for (d, sha) in &commit.dirs {
            if d.strip_prefix(&prefix)
                .is_some_and(|rel| !rel.is_empty() && !rel.contains('/'))
            {
                let name = d.rsplit('/').next().unwrap_or(d);
                items.push(json!({"type": "dir", "name": name, "path": d, "sha": sha, "size": 0}));
            }
        }
        items.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
        return Reply::ok(Value::Array(items));
    }
    Reply::not_found()
}

/// PUT contents/{path} {message, content, branch?, sha?}: commits the file on the branch.
/// Updating an existing file needs its current blob `sha` (422 when missing, 409 when stale).
pub(super) fn put(repo: &mut Repo, ids: &mut Ids, ctx: &Ctx, path: &str) -> Reply {
    let Some(message) = ctx.str_field("message") else {
        return Reply::message(422, "Invalid request.\n\n\"message\" wasn't supplied.");
    };
    let Some(encoded) = ctx.str_field("content") else {
        return Reply::message(422, "Invalid request.\n\n\"content\" wasn't supplied.");
    };
    let Some(content) = base64_decode(encoded) else {
        return Reply::message(422, "content is not valid Base64");
    };
    let branch = ctx.str_field("branch").unwrap_or(&repo.default_branch).to_string();
    let Some(head) = repo.branches.get(&branch).and_then(|sha| repo.commits.get(sha)) else {
        return Reply::message(404, &format!("Branch {branch} not found"));
    };
    let existing = head.files.get(path).map(|e| e.sha.clone());
    match (&existing, ctx.str_field("sha")) {
        (Some(_), None) => {
            return Reply::message(422, "Invalid request.\n\n\"sha\" wasn't supplied.");
        }
        (Some(current), Some(given)) if current != given => {
            return Reply::message(409, &format!("{path} does not match {given}"));
        }
        _ => {}
    }
    let mut files = head.files.clone();
    let sha = repo.put_blob(&content);
    files.insert(
        path.to_string(),
        Entry {
            mode: "100644",
            sha: sha.clone(),
        },
    );
    ids.commits += 1;
    let commit_sha = repo.make_commit(&branch, files, message, ids.commits);
    let commit = &repo.commits[&commit_sha];
    let name = path.rsplit('/').next().unwrap_or(path);
    let body = json!({
        "content": {
            "type": "file",
            "name": name,
            "path": path,
            "sha": sha,
            "size": content.len(),
            "url": format!("{}/repos/{}/contents/{path}?ref={branch}", ctx.base, repo.full_name),
            "html_url": format!("{}/blob/{branch}/{path}", repo.html_url())
        },
        "commit": {
            "sha": commit.sha,
            "message": commit.message,
            "tree": {"sha": commit.tree},
            "parents": commit.parents.iter().map(|p| json!({"sha": p})).collect::<Vec<_>>(),
            "html_url": format!("{}/commit/{}", repo.html_url(), commit.sha)
        }
    });
    Reply::json(if existing.is_some() { 200 } else { 201 }, body)
}
