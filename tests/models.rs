//! Analysis with a model configured: the embedded binary talks to a mocked OpenAI-compatible
//! server (wiremock, real chat.completion shapes). Secrets in the repository never leave the
//! machine; a failing provider falls back to the offline analyser, and the result says so. A
//! worker's /ready shows each provider's breaker (closed, open, half-open) and stays 200.

mod common;

use std::time::Duration;

use common::{Api, Proc, fixture_repo, fixture_repos, free_port, write_files};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GITHUB_TOKEN: &str = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";

fn completion(content: &serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1_764_000_000, "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 812, "completion_tokens": 96, "total_tokens": 908}
    }))
}

async fn serve_with_model(work: &std::path::Path, server: &MockServer) -> (Proc, Api) {
    let port = free_port();
    let env = [
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("OPENAI_API_KEY", "sk-test-0123456789abcdefghij".to_owned()),
        ("OPENAI_BASE_URL", server.uri()),
        ("OPENAI_MODEL", "test-model".to_owned()),
        ("MODEL_TIMEOUT_SECS", "5".to_owned()),
    ];
    let mut proc = Proc::spawn(work, &[], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut proc).await;
    (proc, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_reviews_the_repository_and_never_sees_its_secrets() {
    let server = MockServer::start().await;
    let review = json!({
        "summary": "A Rust service and a Node front end; no CI.",
        "findings": [{"severity": "medium", "title": "No CI", "detail": "Add a workflow.", "path": ""}],
        "recommendations": ["Add the generated workflow"]
    });
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .and(header("authorization", "Bearer sk-test-0123456789abcdefghij"))
        .respond_with(completion(&review))
        .expect(1)
        .mount(&server)
        .await;
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    fixture_repo(repo.path());
    write_files(
        repo.path(),
        &[("README.md", &format!("# demo\nDeploy with token {GITHUB_TOKEN}\n"))],
    );
    let (_proc, api) = serve_with_model(work.path(), &server).await;

    let id = api.submit("analysis", repo.path()).await;
    let job = api.wait_done(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = &job["result"];
    assert_eq!(result["model"], "openai_compatible/test-model");
    assert_eq!(result["fallbacks"], json!([]));
    assert_eq!(result["review"], review);
    assert_eq!(result["usage"]["input_tokens"], 812);
    assert!(
        result["report"]["languages"].is_array(),
        "the offline report is kept beside the review"
    );
    let included: Vec<&str> = result["context"]["included"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        included.contains(&"Cargo.toml") && included.contains(&"README.md"),
        "{included:?}"
    );
    assert!(result["context"]["redactions"].as_u64().unwrap() >= 1);

    let requests = server.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&requests[0].body);
    assert!(!body.contains(GITHUB_TOKEN), "a secret left the machine");
    assert!(body.contains("[REDACTED GITHUB TOKEN]"));
    assert!(
        body.contains("untrusted data"),
        "the prompt marks repository content as data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_falls_back_to_the_offline_analyser() {
    let server = MockServer::start().await;
    common::mount_overloaded_provider(&server).await;
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    fixture_repo(repo.path());
    let (_proc, api) = serve_with_model(work.path(), &server).await;
    let id = api.submit("analysis", repo.path()).await;
    let job = api.wait_done(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = &job["result"];
    assert_eq!(result["model"], "offline");
    let fallbacks = result["fallbacks"].as_array().unwrap();
    assert_eq!(fallbacks.len(), 1, "{result}");
    assert_eq!(fallbacks[0]["model"], "test-model");
    assert!(
        fallbacks[0]["reason"].as_str().unwrap().contains("503"),
        "{fallbacks:?}"
    );
    assert!(result["report"]["findings"].is_array());
    let calls = common::model_calls(work.path(), &id).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].outcome, "server_error");
}

#[test]
fn invalid_model_configuration_is_reported_with_the_rest() {
    let work = tempfile::tempdir().unwrap();
    let out = common::command(
        work.path(),
        &[
            ("DATABASE_URL", "mysql://x".into()),
            ("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com".into()),
        ],
    )
    .arg("worker")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DATABASE_URL") && err.contains("AZURE_OPENAI"), "{err}");
}

/// The worker's /ready once it answers.
async fn worker_ready(health: &Api, worker: &mut Proc) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(st)) = worker.child.try_wait() {
            panic!("the worker exited with {st}:\n{}", worker.log_text());
        }
        if let Ok(r) = health.http.get(format!("{}/ready", health.base)).send().await {
            assert_eq!(r.status().as_u16(), 200, "open breakers never make a worker unready");
            return r.json().await.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no /ready:\n{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_ready_shows_breakers_opening_half_opening_and_closing() {
    let database_url = common::fresh_postgres().await;
    let prefix = common::fresh_redis_prefix().await;
    let server = MockServer::start().await;
    common::mount_overloaded_provider(&server).await;
    let work = tempfile::tempdir().unwrap();
    let repos_dir = tempfile::tempdir().unwrap();
    let repos = fixture_repos(repos_dir.path(), 3);
    let port = free_port();
    let env = vec![
        ("DATABASE_URL", database_url),
        ("REDIS_URL", common::redis_url()),
        ("QUEUE_PREFIX", prefix),
        ("ALLOW_LOCAL_PATHS", "true".to_owned()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("OPENAI_API_KEY", "sk-test-0123456789abcdefghij".to_owned()),
        ("OPENAI_BASE_URL", server.uri()),
        ("OPENAI_MODEL", "test-model".to_owned()),
        ("MODEL_TIMEOUT_SECS", "5".to_owned()),
        ("MODEL_BREAKER_FAILURES", "2".to_owned()),
        ("MODEL_BREAKER_COOLDOWN_SECS", "3".to_owned()),
    ];
    let status = common::command(work.path(), &env).arg("migrate").status().unwrap();
    assert!(status.success(), "migrate");
    let mut api_proc = Proc::spawn(work.path(), &["api"], &env);
    let health_port = free_port();
    let mut worker_env = env.clone();
    worker_env.push(("WORKER_HEALTH_ADDR", format!("127.0.0.1:{health_port}")));
    let mut worker = Proc::spawn(work.path(), &["worker"], &worker_env);
    let api = Api::new(port);
    api.wait_healthy(&mut api_proc).await;
    let health = Api::new(health_port);

    let provider = |ready: &serde_json::Value| ready["checks"]["models"]["providers"][0].clone();
    let ready = worker_ready(&health, &mut worker).await;
    assert_eq!(ready["checks"]["models"]["status"], "up", "{ready}");
    assert_eq!(
        provider(&ready),
        json!({"provider": "openai_compatible", "models": ["test-model"], "state": "closed"})
    );
    let (_, api_ready) = api.get("/ready").await;
    assert!(
        api_ready["checks"].get("models").is_none(),
        "the api process calls no model: {api_ready}"
    );

    // Two failing calls open the breaker; jobs still succeed offline, /ready stays 200.
    for repo in &repos[..2] {
        let id = api.submit("analysis", repo).await;
        let job = api.wait_done(&id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert_eq!(job["result"]["model"], "offline");
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    let ready = worker_ready(&health, &mut worker).await;
    assert_eq!(ready["status"], "degraded", "serving, on the fallback: {ready}");
    assert_eq!(ready["checks"]["models"]["status"], "degraded", "{ready}");
    assert_eq!(provider(&ready)["state"], "open", "{ready}");

    // After the cool-down the next call is a probe: half-open, then closed when it succeeds.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let ready = worker_ready(&health, &mut worker).await;
    assert_eq!(provider(&ready)["state"], "half-open", "{ready}");
    assert_eq!(ready["checks"]["models"]["status"], "degraded");
    server.reset().await;
    let review = json!({"summary": "Recovered.", "findings": [], "recommendations": []});
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .respond_with(completion(&review))
        .mount(&server)
        .await;
    let id = api.submit("analysis", &repos[2]).await;
    let job = api.wait_done(&id, Duration::from_secs(60)).await;
    assert_eq!(job["result"]["model"], "openai_compatible/test-model", "{job}");
    let ready = worker_ready(&health, &mut worker).await;
    assert_eq!(provider(&ready)["state"], "closed", "{ready}");
    assert_eq!(ready["checks"]["models"]["status"], "up");
}
