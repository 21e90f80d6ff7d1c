//! Self-test of the fake GitHub REST API in tests/common/fake_github, through plain HTTP.

mod common;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::fake_github::{BOT_LOGIN, FakeGithub, TreeEntry};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

const INSTALLATION: i64 = 7;
const REPO: &str = "octo/app";

/// An unsigned but well-formed app JWT (the fake checks shape and claims, not the signature).
fn jwt(exp_in: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        part(json!({"alg": "RS256", "typ": "JWT"})),
        part(json!({"iat": now - 60, "exp": now + exp_in, "iss": "12345"})),
        URL_SAFE_NO_PAD.encode(b"signature")
    )
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(gh: &FakeGithub) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: gh.url(),
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("accept", "application/vnd.github+json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Resp { status, headers, body }
    }
}

/// A fake with one installation and one repository, a client, and an installation token
/// (as an `Authorization` header value).
async fn setup() -> (FakeGithub, Client, String) {
    let gh = FakeGithub::start().await;
    gh.add_installation(INSTALLATION, "octo");
    gh.add_repo(INSTALLATION, REPO, "main");
    let c = Client::new(&gh);
    let r = c
        .send(
            "POST",
            &format!("/app/installations/{INSTALLATION}/access_tokens"),
            Some(&format!("Bearer {}", jwt(540))),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = format!("token {}", r.body["token"].as_str().unwrap());
    (gh, c, token)
}

#[tokio::test]
async fn token_exchange_and_authentication() {
    let (gh, c, token) = setup().await;
    assert_eq!(gh.token_exchanges(), 1);

    let r = c
        .send(
            "POST",
            "/app/installations/7/access_tokens",
            Some(&format!("Bearer {}", jwt(540))),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 201);
    let t = r.body["token"].as_str().unwrap();
    assert!(t.starts_with("ghs_") && t.len() >= 40, "{t}");
    let expires = chrono::DateTime::parse_from_rfc3339(r.body["expires_at"].as_str().unwrap()).unwrap();
    let ahead = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!((3500..=3600).contains(&ahead), "{ahead}");
    assert_eq!(r.body["repository_selection"], "all");
    assert_eq!(r.body["permissions"]["checks"], "write");
    assert_eq!(gh.token_exchanges(), 2);

    // App routes want a well-formed, short-lived JWT; unknown installations are 404.
    let bad = c
        .send(
            "POST",
            "/app/installations/7/access_tokens",
            Some("Bearer nope"),
            None,
            &[],
        )
        .await;
    assert_eq!(bad.status, 401);
    let far = c
        .send(
            "POST",
            "/app/installations/7/access_tokens",
            Some(&format!("Bearer {}", jwt(3600))),
            None,
            &[],
        )
        .await;
    assert_eq!(far.status, 401);
    assert!(far.body["message"].as_str().unwrap().contains("too far in the future"));
    let unknown = c
        .send(
            "POST",
            "/app/installations/99/access_tokens",
            Some(&format!("Bearer {}", jwt(540))),
            None,
            &[],
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(gh.token_exchanges(), 2);

    // Repository routes want an installation token, as `token` or `Bearer`.
    let repo = format!("/repos/{REPO}");
    assert_eq!(c.send("GET", &repo, None, None, &[]).await.status, 401);
    assert_eq!(
        c.send("GET", &repo, Some(&format!("Bearer {}", jwt(540))), None, &[])
            .await
            .status,
        401
    );
    let ok = c.send("GET", &repo, Some(&format!("Bearer {t}")), None, &[]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["full_name"], REPO);
    assert_eq!(ok.body["default_branch"], "main");
    assert_eq!(ok.body["owner"]["login"], "octo");

    // Another installation's token does not see the repository.
    gh.add_installation(8, "other");
    let r = c
        .send(
            "POST",
            "/app/installations/8/access_tokens",
            Some(&format!("Bearer {}", jwt(540))),
            None,
            &[],
        )
        .await;
    let other = format!("token {}", r.body["token"].as_str().unwrap());
    assert_eq!(c.send("GET", &repo, Some(&other), None, &[]).await.status, 404);

    gh.expire_tokens();
    let expired = c.send("GET", &repo, Some(&token), None, &[]).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.body["message"], "Bad credentials");
    let r = c
        .send(
            "POST",
            "/app/installations/7/access_tokens",
            Some(&format!("Bearer {}", jwt(540))),
            None,
            &[],
        )
        .await;
    let fresh = format!("token {}", r.body["token"].as_str().unwrap());
    assert_eq!(c.send("GET", &repo, Some(&fresh), None, &[]).await.status, 200);
}

#[tokio::test]
async fn commit_then_tree_blob_and_contents() {
    let (gh, c, token) = setup().await;
    let long = "x".repeat(100);
    let sha = gh.commit_raw(
        REPO,
        "main",
        &[
            TreeEntry::File {
                path: "README.md".into(),
                content: "hello\n".into(),
            },
            TreeEntry::File {
                path: "src/main.rs".into(),
                content: long.clone(),
            },
            TreeEntry::Symlink {
                path: "link".into(),
                target: "README.md".into(),
            },
            TreeEntry::Submodule {
                path: "vendor/lib".into(),
                sha: "a".repeat(40),
            },
        ],
    );
    assert_eq!(gh.branch_head(REPO, "main").as_deref(), Some(sha.as_str()));

    let commit = c
        .send("GET", &format!("/repos/{REPO}/commits/main"), Some(&token), None, &[])
        .await;
    assert_eq!(commit.status, 200);
    assert_eq!(commit.body["sha"], sha.as_str());
    let tree_sha = commit.body["commit"]["tree"]["sha"].as_str().unwrap().to_string();
    let by_sha = c
        .send("GET", &format!("/repos/{REPO}/commits/{sha}"), Some(&token), None, &[])
        .await;
    assert_eq!(by_sha.body["commit"]["tree"]["sha"], tree_sha.as_str());

    let tree = c
        .send(
            "GET",
            &format!("/repos/{REPO}/git/trees/{tree_sha}?recursive=1"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(tree.status, 200);
    assert_eq!(tree.body["truncated"], false);
    let items = tree.body["tree"].as_array().unwrap();
    let find = |p: &str| {
        items
            .iter()
            .find(|i| i["path"] == p)
            .unwrap_or_else(|| panic!("{p} in {items:?}"))
    };
    // Git's own id of the blob "hello\n".
    assert_eq!(find("README.md")["sha"], "ce013625030ba8dba906f756967f9e9ca394464a");
    assert_eq!(find("README.md")["mode"], "100644");
    assert_eq!(find("README.md")["size"], 6);
    assert_eq!(find("src")["type"], "tree");
    assert_eq!(find("link")["mode"], "120000");
    assert_eq!(find("vendor/lib")["type"], "commit");
    let top = c
        .send("GET", &format!("/repos/{REPO}/git/trees/main"), Some(&token), None, &[])
        .await;
    assert_eq!(top.body["sha"], tree_sha.as_str());
    assert!(
        top.body["tree"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| !i["path"].as_str().unwrap().contains('/'))
    );

    let blob_sha = find("src/main.rs")["sha"].as_str().unwrap().to_string();
    let blob = c
        .send(
            "GET",
            &format!("/repos/{REPO}/git/blobs/{blob_sha}"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(blob.body["encoding"], "base64");
    assert_eq!(blob.body["size"], 100);
    let content = blob.body["content"].as_str().unwrap();
    assert!(
        content.lines().all(|l| l.len() <= 60) && content.lines().count() > 1,
        "{content}"
    );
    assert_eq!(STANDARD.decode(content.replace('\n', "")).unwrap(), long.as_bytes());

    let file = c
        .send(
            "GET",
            &format!("/repos/{REPO}/contents/src/main.rs?ref=main"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body["type"], "file");
    assert_eq!(file.body["name"], "main.rs");
    assert_eq!(file.body["sha"], blob_sha.as_str());
    assert_eq!(
        STANDARD
            .decode(file.body["content"].as_str().unwrap().replace('\n', ""))
            .unwrap(),
        long.as_bytes()
    );
    let missing = c
        .send(
            "GET",
            &format!("/repos/{REPO}/contents/nope.txt"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["message"], "Not Found");
    let dir = c
        .send("GET", &format!("/repos/{REPO}/contents/src"), Some(&token), None, &[])
        .await;
    assert_eq!(dir.body[0]["path"], "src/main.rs");
}

#[tokio::test]
async fn check_run_lifecycle_and_annotation_limit() {
    let (gh, c, token) = setup().await;
    let sha = gh.commit(REPO, "main", &[("a.txt", "a")]);
    let runs = format!("/repos/{REPO}/check-runs");
    let created = c
        .send(
            "POST",
            &runs,
            Some(&token),
            Some(json!({"name": "AutoDevOps", "head_sha": sha, "status": "in_progress", "external_id": "job-1", "started_at": "2026-01-01T00:00:00Z"})),
            &[],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"], "in_progress");
    assert_eq!(created.body["conclusion"], Value::Null);
    assert_eq!(created.body["external_id"], "job-1");
    let id = created.body["id"].as_i64().unwrap();
    let run = format!("{runs}/{id}");

    let unknown_sha = c
        .send(
            "POST",
            &runs,
            Some(&token),
            Some(json!({"name": "x", "head_sha": "0".repeat(40)})),
            &[],
        )
        .await;
    assert_eq!(unknown_sha.status, 422);

    let annotation = |i: usize| json!({"path": "a.txt", "start_line": i, "end_line": i, "annotation_level": "warning", "message": format!("m{i}")});
    let output = |n: usize| json!({"output": {"title": "t", "summary": "s", "annotations": (1..=n).map(annotation).collect::<Vec<_>>()}});
    let too_many = c.send("PATCH", &run, Some(&token), Some(output(51)), &[]).await;
    assert_eq!(too_many.status, 422);
    let fifty = c.send("PATCH", &run, Some(&token), Some(output(50)), &[]).await;
    assert_eq!(fifty.status, 200, "{}", fifty.body);
    assert_eq!(fifty.body["output"]["annotations_count"], 50);

    let no_conclusion = c
        .send("PATCH", &run, Some(&token), Some(json!({"status": "completed"})), &[])
        .await;
    assert_eq!(no_conclusion.status, 422);
    let mut last = output(3);
    last["conclusion"] = json!("failure");
    last["output"]["title"] = json!("3 findings");
    let done = c.send("PATCH", &run, Some(&token), Some(last), &[]).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.body["status"], "completed");
    assert_eq!(done.body["conclusion"], "failure");
    assert_eq!(done.body["output"]["annotations_count"], 53);

    let stored = gh.check_runs(REPO);
    assert_eq!(stored.len(), 1);
    let r = &stored[0];
    assert_eq!(
        (r.id, r.head_sha.as_str(), r.name.as_str()),
        (id, sha.as_str(), "AutoDevOps")
    );
    assert_eq!(r.conclusion.as_deref(), Some("failure"));
    assert_eq!(r.title.as_deref(), Some("3 findings"));
    assert_eq!(r.annotations_count, 53);
    assert_eq!(r.external_id.as_deref(), Some("job-1"));
    assert!(r.completed_at.is_some());

    let listed = c
        .send(
            "GET",
            &format!("/repos/{REPO}/commits/{sha}/check-runs?check_name=AutoDevOps"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(listed.body["total_count"], 1);
}

#[tokio::test]
async fn comments_paginate_and_update() {
    let (gh, c, token) = setup().await;
    gh.commit(REPO, "main", &[("a", "1")]);
    gh.commit(REPO, "feature", &[("a", "2")]);
    gh.open_pull(REPO, 5, "feature", "main");
    gh.add_comment(REPO, 5, "alice", "looks good");
    let path = format!("/repos/{REPO}/issues/5/comments");
    let mut ids = Vec::new();
    for i in 0..2 {
        let r = c
            .send(
                "POST",
                &path,
                Some(&token),
                Some(json!({"body": format!("report {i}")})),
                &[],
            )
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.body["user"]["login"], BOT_LOGIN);
        assert_eq!(r.body["user"]["type"], "Bot");
        ids.push(r.body["id"].as_i64().unwrap());
    }
    assert_eq!(gh.comment_posts(), 2);
    let empty = c
        .send("POST", &path, Some(&token), Some(json!({"body": ""})), &[])
        .await;
    assert_eq!(empty.status, 422);
    let too_long = c
        .send(
            "POST",
            &path,
            Some(&token),
            Some(json!({"body": "x".repeat(65_537)})),
            &[],
        )
        .await;
    assert_eq!(too_long.status, 422);

    let first = c
        .send("GET", &format!("{path}?per_page=2"), Some(&token), None, &[])
        .await;
    assert_eq!(first.body.as_array().unwrap().len(), 2);
    assert_eq!(first.body[0]["user"]["login"], "alice");
    let link = first.header("link").expect("Link header");
    assert!(link.contains("page=2>; rel=\"next\""), "{link}");
    assert!(link.contains("rel=\"last\""), "{link}");
    let next = link.split(',').find(|l| l.contains("rel=\"next\"")).unwrap();
    let next_url = next.trim().trim_start_matches('<').split('>').next().unwrap();
    let second = c
        .send("GET", next_url.trim_start_matches(&c.base), Some(&token), None, &[])
        .await;
    assert_eq!(second.body.as_array().unwrap().len(), 1);
    assert_eq!(second.body[0]["body"], "report 1");
    assert!(!second.header("link").unwrap_or_default().contains("rel=\"next\""));

    let edit = c
        .send(
            "PATCH",
            &format!("/repos/{REPO}/issues/comments/{}", ids[0]),
            Some(&token),
            Some(json!({"body": "report v2"})),
            &[],
        )
        .await;
    assert_eq!(edit.status, 200);
    assert_eq!(edit.body["body"], "report v2");
    let stored = gh.comments(REPO, 5);
    assert_eq!(
        stored.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(),
        ["looks good", "report v2", "report 1"]
    );
    assert_eq!(gh.comment_posts(), 2);
    assert_eq!(
        c.send(
            "GET",
            &format!("/repos/{REPO}/issues/99/comments"),
            Some(&token),
            None,
            &[]
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn pull_requests_create_duplicate_patch_and_files() {
    let (gh, c, token) = setup().await;
    gh.commit(
        REPO,
        "main",
        &[("keep", "k\n"), ("change", "a\nb\nc\n"), ("gone", "x\n")],
    );
    gh.commit(
        REPO,
        "ci",
        &[("keep", "k\n"), ("change", "a\nB\nc\n"), ("new.yml", "on: push\n")],
    );
    let pulls = format!("/repos/{REPO}/pulls");
    let body = json!({"title": "Add CI", "head": "octo:ci", "base": "main", "body": "generated"});
    let created = c.send("POST", &pulls, Some(&token), Some(body.clone()), &[]).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let n = created.body["number"].as_i64().unwrap();
    assert_eq!(created.body["head"]["ref"], "ci");
    assert_eq!(
        created.body["head"]["sha"],
        gh.branch_head(REPO, "ci").unwrap().as_str()
    );
    assert_eq!(created.body["base"]["ref"], "main");
    assert_eq!(created.body["state"], "open");

    let dup = c.send("POST", &pulls, Some(&token), Some(body.clone()), &[]).await;
    assert_eq!(dup.status, 422);
    assert_eq!(dup.body["message"], "Validation Failed");
    assert_eq!(
        dup.body["errors"][0]["message"],
        "A pull request already exists for octo:ci."
    );
    let nothing = c
        .send(
            "POST",
            &pulls,
            Some(&token),
            Some(json!({"title": "t", "head": "main", "base": "main"})),
            &[],
        )
        .await;
    assert_eq!(nothing.status, 422);

    let open = c
        .send(
            "GET",
            &format!("{pulls}?head=octo:ci&state=open"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(open.body.as_array().unwrap().len(), 1);
    let one = c.send("GET", &format!("{pulls}/{n}"), Some(&token), None, &[]).await;
    assert_eq!(one.body["title"], "Add CI");

    let files = c
        .send("GET", &format!("{pulls}/{n}/files"), Some(&token), None, &[])
        .await;
    let files = files.body.as_array().unwrap();
    let status: Vec<(&str, &str)> = files
        .iter()
        .map(|f| (f["filename"].as_str().unwrap(), f["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [("change", "modified"), ("gone", "removed"), ("new.yml", "added")]
    );
    assert_eq!(files[0]["patch"], "@@ -2,1 +2,1 @@\n-b\n+B");
    assert_eq!(
        (files[0]["additions"].as_u64(), files[0]["deletions"].as_u64()),
        (Some(1), Some(1))
    );

    let patched = c
        .send(
            "PATCH",
            &format!("{pulls}/{n}"),
            Some(&token),
            Some(json!({"title": "CI v2", "body": "new", "state": "closed"})),
            &[],
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["state"], "closed");
    let pr = gh.pulls(REPO).into_iter().find(|p| p.number == n).unwrap();
    assert_eq!(
        (pr.title.as_str(), pr.body.as_deref(), pr.state.as_str()),
        ("CI v2", Some("new"), "closed")
    );
    let again = c.send("POST", &pulls, Some(&token), Some(body), &[]).await;
    assert_eq!(again.status, 201);
    assert_ne!(again.body["number"].as_i64().unwrap(), n);
}

#[tokio::test]
async fn refs_and_contents_updates() {
    let (gh, c, token) = setup().await;
    let base = gh.commit(REPO, "main", &[("ci.yml", "old\n")]);
    let r = c
        .send(
            "GET",
            &format!("/repos/{REPO}/git/ref/heads/main"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(r.body["ref"], "refs/heads/main");
    assert_eq!(r.body["object"]["sha"], base.as_str());
    assert_eq!(r.body["object"]["type"], "commit");
    let missing = c
        .send(
            "GET",
            &format!("/repos/{REPO}/git/ref/heads/autodevops/ci"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(missing.status, 404);

    let refs = format!("/repos/{REPO}/git/refs");
    let new_ref = json!({"ref": "refs/heads/autodevops/ci", "sha": base});
    assert_eq!(
        c.send("POST", &refs, Some(&token), Some(new_ref.clone()), &[])
            .await
            .status,
        201
    );
    let exists = c.send("POST", &refs, Some(&token), Some(new_ref), &[]).await;
    assert_eq!(exists.status, 422);
    assert_eq!(exists.body["message"], "Reference already exists");

    let put = |body: Value| {
        let c = &c;
        let token = &token;
        async move {
            c.send(
                "PUT",
                &format!("/repos/{REPO}/contents/ci.yml"),
                Some(token),
                Some(body),
                &[],
            )
            .await
        }
    };
    let content = STANDARD.encode("new\n");
    let no_sha = put(json!({"message": "m", "content": content, "branch": "autodevops/ci"})).await;
    assert_eq!(no_sha.status, 422);
    let stale =
        put(json!({"message": "m", "content": content, "branch": "autodevops/ci", "sha": "0".repeat(40)})).await;
    assert_eq!(stale.status, 409);
    let current = gh.file_on_branch(REPO, "autodevops/ci", "ci.yml").unwrap();
    assert_eq!(current, "old\n");
    let blob = c
        .send(
            "GET",
            &format!("/repos/{REPO}/contents/ci.yml?ref=autodevops/ci"),
            Some(&token),
            None,
            &[],
        )
        .await;
    let updated =
        put(json!({"message": "Update CI", "content": content, "branch": "autodevops/ci", "sha": blob.body["sha"]}))
            .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    let new_head = updated.body["commit"]["sha"].as_str().unwrap().to_string();
    assert_eq!(
        gh.branch_head(REPO, "autodevops/ci").as_deref(),
        Some(new_head.as_str())
    );
    assert_eq!(
        gh.file_on_branch(REPO, "autodevops/ci", "ci.yml").as_deref(),
        Some("new\n")
    );
    assert_eq!(gh.file_on_branch(REPO, "main", "ci.yml").as_deref(), Some("old\n"));
    let created = c
        .send(
            "PUT",
            &format!("/repos/{REPO}/contents/.github/workflows/x.yml"),
            Some(&token),
            Some(json!({"message": "m", "content": content})),
            &[],
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(
        gh.file_on_branch(REPO, "main", ".github/workflows/x.yml").as_deref(),
        Some("new\n")
    );

    // Moving main to the side branch's commit is not a fast-forward (main moved on).
    let update = format!("{refs}/heads/main");
    let ff = c
        .send("PATCH", &update, Some(&token), Some(json!({"sha": new_head})), &[])
        .await;
    assert_eq!(ff.status, 422);
    assert_eq!(ff.body["message"], "Update is not a fast forward");
    let forced = c
        .send(
            "PATCH",
            &update,
            Some(&token),
            Some(json!({"sha": new_head, "force": true})),
            &[],
        )
        .await;
    assert_eq!(forced.status, 200);
    assert_eq!(gh.branch_head(REPO, "main").as_deref(), Some(new_head.as_str()));
}

#[tokio::test]
async fn failures_rate_limits_etags_and_unknown_routes() {
    let (gh, c, token) = setup().await;
    let repo = format!("/repos/{REPO}");
    gh.set_failures(r"^/repos/octo/app$", vec![(500, None), (403, Some(7))]);
    let first = c.send("GET", &repo, Some(&token), None, &[]).await;
    assert_eq!(first.status, 500);
    let second = c.send("GET", &repo, Some(&token), None, &[]).await;
    assert_eq!(second.status, 403);
    assert_eq!(second.header("retry-after").as_deref(), Some("7"));
    assert!(
        second.body["message"]
            .as_str()
            .unwrap()
            .contains("secondary rate limit")
    );
    let ok = c.send("GET", &repo, Some(&token), None, &[]).await;
    assert_eq!(ok.status, 200);

    let remaining = |r: &Resp| r.header("x-ratelimit-remaining").unwrap().parse::<i64>().unwrap();
    assert_eq!(ok.header("x-ratelimit-limit").as_deref(), Some("5000"));
    assert!(remaining(&ok) < remaining(&first));
    assert!(ok.header("x-ratelimit-reset").is_some());

    let etag = ok.header("etag").expect("ETag");
    let cached = c
        .send("GET", &repo, Some(&token), None, &[("if-none-match", &etag)])
        .await;
    assert_eq!(cached.status, 304);
    assert_eq!(cached.body, Value::Null);
    assert_eq!(remaining(&cached), remaining(&ok), "304s are not charged");

    let unknown = c.send("GET", "/nothing/here", Some(&token), None, &[]).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["documentation_url"], "https://docs.github.com/rest");

    let reqs = gh.requests();
    assert_eq!(
        reqs[0],
        ("POST".to_string(), "/app/installations/7/access_tokens".to_string())
    );
    assert_eq!(reqs[1..4].iter().filter(|(m, p)| m == "GET" && *p == repo).count(), 3);
    assert_eq!(reqs.last().unwrap().1, "/nothing/here");
}

#[tokio::test]
async fn installation_repositories_deliveries_and_permissions() {
    let (gh, c, token) = setup().await;
    gh.add_repo(INSTALLATION, "octo/b", "main");
    gh.add_repo(INSTALLATION, "octo/c", "trunk");
    gh.set_repo_details("octo/c", false, true, Some("Rust"));
    let page1 = c
        .send("GET", "/installation/repositories?per_page=2", Some(&token), None, &[])
        .await;
    assert_eq!(page1.body["total_count"], 3);
    assert_eq!(page1.body["repositories"].as_array().unwrap().len(), 2);
    assert!(page1.header("link").unwrap().contains("page=2>; rel=\"next\""));
    let page2 = c
        .send(
            "GET",
            "/installation/repositories?per_page=2&page=2",
            Some(&token),
            None,
            &[],
        )
        .await;
    let last = &page2.body["repositories"][0];
    assert_eq!(
        (last["full_name"].as_str(), last["archived"].as_bool()),
        (Some("octo/c"), Some(true))
    );
    assert_eq!(last["language"], "Rust");

    gh.add_hook_delivery(1, "guid-1", "pull_request", 200);
    gh.add_hook_delivery(2, "guid-2", "push", 502);
    let app = format!("Bearer {}", jwt(540));
    let list = c
        .send("GET", "/app/hook/deliveries?per_page=1", Some(&app), None, &[])
        .await;
    assert_eq!(list.body[0]["id"], 2);
    assert_eq!(list.body[0]["status_code"], 502);
    assert!(list.header("link").unwrap().contains("cursor=2"));
    let redo = c
        .send("POST", "/app/hook/deliveries/2/attempts", Some(&app), None, &[])
        .await;
    assert_eq!(redo.status, 202);
    assert_eq!(gh.redelivered(), [2]);
    let list = c.send("GET", "/app/hook/deliveries", Some(&app), None, &[]).await;
    assert_eq!(list.body[0]["guid"], "guid-2");
    assert_eq!(list.body[0]["redelivery"], true);
    assert_eq!(
        c.send("POST", "/app/hook/deliveries/42/attempts", Some(&app), None, &[])
            .await
            .status,
        404
    );
    assert_eq!(
        c.send("GET", "/app/hook/deliveries", Some(&token), None, &[])
            .await
            .status,
        401
    );

    gh.set_permission(REPO, "alice", "maintain");
    let p = c
        .send(
            "GET",
            &format!("/repos/{REPO}/collaborators/alice/permission"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (p.body["permission"].as_str(), p.body["role_name"].as_str()),
        (Some("write"), Some("maintain"))
    );
    let p = c
        .send(
            "GET",
            &format!("/repos/{REPO}/collaborators/mallory/permission"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(p.body["permission"], "none");
}
