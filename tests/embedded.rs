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
    // Missing configuration is named, without failing an embedded install that needs none.
    assert_eq!(ready["checks"]["github"]["status"], "not_configured", "{ready}");
    assert_eq!(ready["checks"]["github"]["missing"][0], "GITHUB_APP_ID", "{ready}");
    assert_eq!(
        ready["checks"]["webhooks"]["missing"][0], "GITHUB_WEBHOOK_SECRET",
        "{ready}"
    );
    let metrics = api.metrics().await;
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
    let repos = common::fixture_repos(repo.path(), 16);
    let port = free_port();
    let env = [("BIND_ADDR", format!("127.0.0.1:{port}"))];

    // 1. Only the API runs (no workers): jobs are accepted and queued in the SQLite file.
    let status = common::command(work.path(), &env).arg("migrate").status().unwrap();
    assert!(status.success());
    let mut api_only = Proc::spawn(work.path(), &["api"], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut api_only).await;
    let mut ids = Vec::new();
    for (i, dir) in repos[..6].iter().enumerate() {
        ids.push(api.submit(if i % 2 == 0 { "analysis" } else { "ci_gen" }, dir).await);
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
    for dir in &repos[6..] {
        more.push(api.submit("analysis", dir).await);
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

    // Roles that serve no API do not need keys, whatever BIND_ADDR says (one image, one env).
    let out = common::command(work.path(), &[("BIND_ADDR", "0.0.0.0:8080".into())])
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

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

/// Starts `migrate` + `api` only (no workers) so that submitted jobs wait in the queue.
async fn api_only(work: &std::path::Path, port: u16) -> (Proc, Api) {
    common::start_api_only(work, &[("BIND_ADDR", format!("127.0.0.1:{port}"))], port).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_submissions_while_queued_return_the_same_job() {
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    fixture_repo(repo.path());
    let (_proc, api) = api_only(work.path(), free_port()).await;
    let first = api.submit("analysis", repo.path()).await;
    let (status, again) = api
        .post("/v1/jobs", json!({"kind": "analysis", "path": repo.path()}))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first.as_str());
    assert_eq!(again["deduplicated"], true);
    // Another kind on the same path is other work.
    let other = api.submit("ci_gen", repo.path()).await;
    assert_ne!(other, first);
    let (_, list) = api.get("/v1/jobs").await;
    assert_eq!(list["jobs"].as_array().unwrap().len(), 2, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failure_goes_dead_at_once_and_replay_runs_it() {
    let work = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let doomed = scratch.path().join("checkout");
    let other = scratch.path().join("other");
    fixture_repo(&doomed);
    fixture_repo(&other);
    let port = free_port();
    // Queue two jobs, then remove their checkouts before any worker runs: a permanent error.
    let (mut api_proc, api) = api_only(work.path(), port).await;
    let dead_id = api.submit("analysis", &doomed).await;
    let purge_id = api.submit("analysis", &other).await;
    std::fs::rename(&doomed, scratch.path().join("moved")).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
    api_proc.kill9();

    let mut proc = serve(work.path(), port, &[("JOB_MAX_ATTEMPTS", "5".into())]);
    api.wait_healthy(&mut proc).await;
    let job = api.wait_done(&dead_id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "dead", "{job}");
    assert_eq!(job["attempts"], 1, "a permanent error is not retried: {job}");
    assert!(job["error"].as_str().unwrap().contains("not found"), "{job}");
    let history = job["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{job}");
    assert_eq!(history[0]["attempt"], 1);
    assert_eq!(history[0]["error"], job["error"]);
    api.wait_done(&purge_id, Duration::from_secs(30)).await;

    let (status, dead) = api.get("/v1/dead-jobs?kind=analysis").await;
    assert_eq!(status, 200);
    let dead_ids: Vec<&str> = dead["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(dead_ids, [purge_id.as_str(), dead_id.as_str()]);

    // Put the checkout back and replay: it runs again with attempts reset and history kept.
    std::fs::rename(scratch.path().join("moved"), &doomed).unwrap();
    let (status, replayed) = api.post(&format!("/v1/dead-jobs/{dead_id}/replay"), json!({})).await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["status"], "queued");
    let job = api.wait_done(&dead_id, Duration::from_secs(30)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["history"].as_array().unwrap().len(), 1, "history kept: {job}");

    // Replaying or deleting a job that is not dead: 409; an unknown id: 404.
    let (status, resp) = api.post(&format!("/v1/dead-jobs/{dead_id}/replay"), json!({})).await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{resp}"
    );
    let http = reqwest::Client::new();
    let del = |id: &str| http.delete(format!("{}/v1/dead-jobs/{id}", api.base)).send();
    assert_eq!(del(&dead_id).await.unwrap().status(), 409);
    assert_eq!(del("0190b4a0-0000-7000-8000-000000000000").await.unwrap().status(), 404);
    assert_eq!(del(&purge_id).await.unwrap().status(), 204);
    assert_eq!(api.get(&format!("/v1/jobs/{purge_id}")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_cli_lists_replays_and_purges() {
    let work = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (0..3).map(|i| scratch.path().join(format!("r{i}"))).collect();
    for d in &dirs {
        fixture_repo(d);
    }
    let port = free_port();
    let (mut api_proc, api) = api_only(work.path(), port).await;
    let mut ids = Vec::new();
    for d in &dirs {
        ids.push(api.submit("ci_gen", d).await);
    }
    for d in &dirs {
        std::fs::remove_dir_all(d).unwrap();
    }
    api_proc.kill9();
    let mut proc = serve(work.path(), port, &[]);
    api.wait_healthy(&mut proc).await;
    for id in &ids {
        assert_eq!(api.wait_done(id, Duration::from_secs(30)).await["status"], "dead");
    }
    let cli = |args: &[&str]| {
        common::command(work.path(), &[])
            .arg("dlq")
            .args(args)
            .output()
            .unwrap()
    };

    let out = cli(&["list", "--queue", "ci_gen"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|j| j["status"] == "dead"));
    assert!(cli(&["list", "--queue", "analysis"]).stdout.is_empty());

    // Purge one by id; an id that is not a dead job fails the command.
    let out = cli(&["purge", &ids[0]]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("purged 1"));
    let out = cli(&["purge", &ids[0]]);
    assert_eq!(out.status.code(), Some(1));

    // Replay the rest with --all once their checkouts are back.
    fixture_repo(&dirs[1]);
    fixture_repo(&dirs[2]);
    let out = cli(&["replay", "--all", "--queue", "ci_gen"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed 2"), "{out:?}");
    for id in &ids[1..] {
        assert_eq!(api.wait_done(id, Duration::from_secs(30)).await["status"], "succeeded");
    }
    // Neither ids nor --all: a usage error.
    assert_eq!(cli(&["replay"]).status.code(), Some(2));
}
