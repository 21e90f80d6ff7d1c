//! The embedded default, end to end through the real binary: SQLite database and queue,
//! in-process workers, the offline analyser.

mod common;

use std::time::Duration;

use common::{Api, Proc, fixture_repo, free_port};
use serde_json::json;

fn serve(dir: &std::path::Path, port: u16, extra: &[(&str, String)]) -> Proc {
    let mut env = vec![("BIND_ADDR", format!("127.0.0.1:{port}"))];
    env.extend(extra.iter().cloned());
    Proc::spawn(dir, &[], &env) // no subcommand = serve
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysis_and_ci_gen_succeed_with_real_results() {
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    fixture_repo(repo.path());
    let port = free_port();
    let mut proc = serve(work.path(), port, &[]);
    let api = Api::new(port);
    api.wait_healthy(&mut proc).await;

    let analysis = api.submit("analysis", repo.path()).await;
    let ci = api.submit("ci_gen", repo.path()).await;

    let job = api.wait_done(&analysis, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1);
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());
    assert!(job["error"].is_null());
    let result = &job["result"];
    assert_eq!(result["model"], "offline");
    let langs: Vec<&str> = result["report"]["languages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert!(langs.contains(&"Rust") && langs.contains(&"TypeScript"), "{langs:?}");
    let stacks: Vec<(&str, &str)> = result["report"]["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["kind"].as_str().unwrap(), s["dir"].as_str().unwrap()))
        .collect();
    assert!(
        stacks.contains(&("rust", ".")) && stacks.contains(&("node", "web")),
        "{stacks:?}"
    );
    let codes: Vec<&str> = result["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"no-ci"), "{codes:?}");
    assert!(codes.contains(&"dockerfile-runs-as-root"), "{codes:?}");

    let job = api.wait_done(&ci, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let workflow = &job["result"]["workflow"];
    assert_eq!(workflow["path"], ".github/workflows/autodevops-ci.yml");
    let yaml: serde_norway::Value = serde_norway::from_str(workflow["content"].as_str().unwrap()).unwrap();
    let jobs = yaml["jobs"].as_mapping().expect("jobs mapping");
    let all_runs: Vec<String> = jobs
        .values()
        .flat_map(|j| j["steps"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|s| s["run"].as_str().map(str::to_owned))
        .collect();
    assert!(all_runs.iter().any(|r| r.contains("cargo test")), "{all_runs:?}");
    assert!(all_runs.iter().any(|r| r.contains("npm")), "{all_runs:?}");
    assert!(jobs.len() >= 2, "one job per stack: {jobs:?}");

    // The list shows both, newest first, and filters work.
    let (status, list) = api.get("/v1/jobs?limit=10").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ci.as_str(), analysis.as_str()]);
    let (_, only_ci) = api.get("/v1/jobs?kind=ci_gen").await;
    assert_eq!(only_ci["jobs"].as_array().unwrap().len(), 1);
    let (_, page1) = api.get("/v1/jobs?limit=1").await;
    let cursor = page1["next_cursor"].as_str().expect("a next cursor");
    let (_, page2) = api.get(&format!("/v1/jobs?limit=1&cursor={cursor}")).await;
    assert_eq!(page2["jobs"][0]["id"], analysis.as_str());

    // Health, readiness and metrics.
    let (status, ready) = api.get("/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["checks"]["database"]["status"], "up");
    assert_eq!(ready["checks"]["queue"]["backend"], "sqlite");
    let metrics = reqwest::get(format!("{}/metrics", api.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("autodevops_jobs_total"), "{metrics}");

    // The database file is where the README says it is.
    assert!(work.path().join("autodevops.db").exists());
    let status = proc.terminate(Duration::from_secs(20)).expect("exits on SIGTERM");
    assert!(status.success(), "graceful shutdown exits 0: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_create_nothing() {
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let file = repo.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let port = free_port();
    let mut proc = serve(work.path(), port, &[]);
    let api = Api::new(port);
    api.wait_healthy(&mut proc).await;

    let cases = [
        (json!({"kind": "build", "path": repo.path()}), 422, Some("kind")),
        (json!({"path": repo.path()}), 422, Some("kind")),
        (json!({"kind": 5, "path": repo.path()}), 400, Some("kind")),
        (json!({"kind": "analysis"}), 422, Some("repo")),
        (json!({"kind": "analysis", "path": "relative/dir"}), 422, Some("path")),
        (
            json!({"kind": "analysis", "path": "/does/not/exist"}),
            422,
            Some("path"),
        ),
        (json!({"kind": "analysis", "path": file}), 422, Some("path")),
        (
            json!({"kind": "analysis", "path": repo.path(), "ref": "main"}),
            422,
            Some("ref"),
        ),
        (
            json!({"kind": "analysis", "path": repo.path(), "repo": "a/b"}),
            422,
            Some("path"),
        ),
        (json!({"kind": "analysis", "repo": "not a repo"}), 422, Some("repo")),
        (json!({"kind": "analysis", "repo": "octo/hello"}), 422, Some("repo")),
        (
            json!({"kind": "analysis", "path": repo.path(), "color": "red"}),
            400,
            Some("color"),
        ),
        (json!(["kind"]), 400, None),
    ];
    for (body, want, field) in cases {
        let (status, resp) = api.post("/v1/jobs", body.clone()).await;
        assert_eq!(status, want, "{body} -> {resp}");
        assert!(
            resp["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{resp}"
        );
        assert_eq!(resp["error"]["field"].as_str(), field, "{body} -> {resp}");
    }
    let (status, resp) = api.post_raw("/v1/jobs", "{not json").await;
    assert_eq!(status, 400, "{resp}");
    let big = format!("{{\"kind\":\"analysis\",\"path\":\"{}\"}}", "a".repeat(70 * 1024));
    let (status, resp) = api.post_raw("/v1/jobs", big).await;
    assert_eq!(status, 413, "{resp}");

    let (status, resp) = api.get("/v1/jobs/0190b4a0-0000-7000-8000-000000000000").await;
    assert_eq!((status, resp["error"]["code"].as_str()), (404, Some("not_found")));
    for (query, field) in [
        ("status=weird", "status"),
        ("kind=x", "kind"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
    ] {
        let (status, resp) = api.get(&format!("/v1/jobs?{query}")).await;
        assert_eq!(
            (status, resp["error"]["field"].as_str()),
            (400, Some(field)),
            "{query}: {resp}"
        );
    }
    // Nothing was created by any of the bad requests.
    let (_, list) = api.get("/v1/jobs").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 0, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_required_when_configured() {
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let key = "acme:0123456789abcdef0123456789";
    let mut proc = serve(work.path(), port, &[("API_KEYS", key.into())]);
    let mut api = Api::new(port);
    api.wait_healthy(&mut proc).await;
    let (status, resp) = api.get("/v1/jobs").await;
    assert_eq!((status, resp["error"]["code"].as_str()), (401, Some("unauthorized")));
    api.key = Some("wrong-key-wrong-key-wrong".into());
    assert_eq!(api.get("/v1/jobs").await.0, 401);
    api.key = Some("0123456789abcdef0123456789".into());
    assert_eq!(api.get("/v1/jobs").await.0, 200);
    // /health stays open for probes; the log never shows the key.
    assert!(!proc.log_text().contains("0123456789abcdef"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_jobs_survive_a_crash_and_run_after_restart() {
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    fixture_repo(repo.path());
    let port = free_port();
    let env = [("BIND_ADDR", format!("127.0.0.1:{port}"))];

    // 1. Only the API runs (no workers): jobs are accepted and queued in the SQLite file.
    let status = common::command(work.path(), &env).arg("migrate").status().unwrap();
    assert!(status.success());
    let mut api_only = Proc::spawn(work.path(), &["api"], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut api_only).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            api.submit(if i % 2 == 0 { "analysis" } else { "ci_gen" }, repo.path())
                .await,
        );
    }
    // 2. Crash: SIGKILL, no shutdown code runs.
    api_only.kill9();

    // 3. Restart all-in-one: every queued job runs, once.
    let mut proc = serve(work.path(), port, &[("WORKER_CONCURRENCY", "1".into())]);
    api.wait_healthy(&mut proc).await;
    for id in &ids {
        let job = api.wait_done(id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(
            job["attempts"], 1,
            "queued jobs run exactly once after a restart: {job}"
        );
    }
    // 4. Submit more and crash again right away: whatever had not finished runs after the
    //    next restart (a job cut off mid-run comes back when its lease expires).
    let mut more = Vec::new();
    for _ in 0..10 {
        more.push(api.submit("analysis", repo.path()).await);
    }
    proc.kill9();
    let mut proc = serve(work.path(), port, &[]);
    api.wait_healthy(&mut proc).await;
    for id in &more {
        let job = api.wait_done(id, Duration::from_secs(90)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
}

#[test]
fn invalid_config_exits_2_listing_every_problem() {
    let work = tempfile::tempdir().unwrap();
    let out = common::command(
        work.path(),
        &[
            ("DATABASE_URL", "mysql://u:hunter2@db/x".into()),
            ("REDIS_URL", "localhost:6379".into()),
            ("BIND_ADDR", "0.0.0.0:8080".into()),
        ],
    )
    .arg("serve")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for var in ["DATABASE_URL", "REDIS_URL", "API_KEYS"] {
        assert!(err.contains(var), "{var} missing from: {err}");
    }
    assert!(!err.contains("hunter2"), "secret printed: {err}");

    // --bind on a public address without API keys is refused the same way.
    let out = common::command(work.path(), &[])
        .args(["api", "--bind", "0.0.0.0:9999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("API_KEYS"));

    // A malformed Postgres URL alone is enough.
    let out = common::command(
        work.path(),
        &[
            ("DATABASE_URL", "postgres://".into()),
            ("REDIS_URL", "redis://127.0.0.1:1".into()),
        ],
    )
    .arg("worker")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_subcommand_has_help() {
    for sub in [&[][..], &["serve"], &["api"], &["worker"], &["migrate"]] {
        let out = std::process::Command::new(common::BIN)
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{sub:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: autodevops"), "{sub:?}: {text}");
    }
}
