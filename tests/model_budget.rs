//! Routing policy, tenant budgets and the result cache through the real binary, with a mocked
//! OpenAI-compatible server (wiremock, real chat.completion shapes).
//!
//! - A policy file's prices give each call's cost; a second identical analysis is answered from
//!   the cache with no provider call.
//! - A spent budget: the job falls back to the offline analyser with the step recorded, and
//!   `POST /v1/jobs` answers 429 with Retry-After.
//! - Two worker processes sharing one Redis under concurrent jobs never pass a tenant's budget.
//! - An invalid policy file stops the process (exit 2) naming the line.

mod common;

use std::time::Duration;

use common::{Api, Proc, fixture_repo, fixture_repos, free_port};
use serde_json::{Value, json};
use shared::models::{ProviderKind, Tokenizer};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const REVIEW: &str =
    r#"{"summary": "Rust and Node; no CI.", "findings": [], "recommendations": ["Add the generated workflow"]}"#;

/// A chat.completion with the given usage.
fn completion(prompt_tokens: u64, completion_tokens: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1_764_000_000, "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": REVIEW}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens}
    }))
}

/// Bills like a real provider: prompt tokens are the o200k count of the messages sent, and the
/// whole output limit is used. The reply comes after `delay`, so calls overlap.
struct Billing {
    delay: Duration,
}

impl Respond for Billing {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let bpe = Tokenizer::for_provider(ProviderKind::OpenAi);
        let prompt: u64 = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| bpe.count(m["content"].as_str().unwrap()))
            .sum();
        let max = body["max_tokens"].as_u64().unwrap();
        completion(prompt, max).set_delay(self.delay)
    }
}

/// A policy with one model on the mock: `max_output_tokens` and $2 / $8 per million tokens.
fn policy_file(dir: &std::path::Path, max_output_tokens: u32) -> String {
    let file = dir.join("models.toml");
    std::fs::write(
        &file,
        format!(
            "[[analysis]]\nprovider = \"openai\"\nmodel = \"test-model\"\ncontext_window = 32000\n\
             max_output_tokens = {max_output_tokens}\ninput_usd_per_mtok = 2.0\noutput_usd_per_mtok = 8.0\n"
        ),
    )
    .unwrap();
    file.display().to_string()
}

fn model_env(server: &MockServer, policy: String) -> Vec<(&'static str, String)> {
    vec![
        ("OPENAI_API_KEY", "sk-test-0123456789abcdefghij".to_owned()),
        ("OPENAI_BASE_URL", server.uri()),
        ("MODEL_TIMEOUT_SECS", "10".to_owned()),
        ("MODELS_CONFIG", policy),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_priced_and_a_second_identical_analysis_makes_no_provider_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .respond_with(completion(1_200, 150))
        .expect(1)
        .mount(&server)
        .await;
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    fixture_repo(repo.path());
    let port = free_port();
    let mut env = model_env(&server, policy_file(work.path(), 800));
    env.push(("BIND_ADDR", format!("127.0.0.1:{port}")));
    let mut proc = Proc::spawn(work.path(), &[], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut proc).await;

    let first = api.submit("analysis", repo.path()).await;
    let first = api.wait_done(&first, Duration::from_secs(60)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let r1 = &first["result"];
    assert_eq!(r1["model"], "openai_compatible/test-model");
    assert_eq!(r1["cache"]["hit"], false);
    // 1 200 input at $2 and 150 output at $8 per million tokens.
    let cost = (1_200.0 * 2.0 + 150.0 * 8.0) / 1e6;
    assert!((r1["cost_usd"].as_f64().unwrap() - cost).abs() < 1e-12, "{r1}");
    let calls = common::model_calls(work.path(), first["id"].as_str().unwrap()).await;
    assert_eq!(calls.len(), 1);
    assert!((calls[0].cost_usd.unwrap() - cost).abs() < 1e-12);

    let second = api.submit("analysis", repo.path()).await;
    let second = api.wait_done(&second, Duration::from_secs(60)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    let r2 = &second["result"];
    assert_eq!(r2["cache"]["hit"], true, "{r2}");
    assert_eq!(r2["cache"]["key"], r1["cache"]["key"]);
    assert_eq!(r2["review"], r1["review"]);
    assert_eq!(r2["model"], r1["model"]);
    assert!(r2["report"]["languages"].is_array());
    assert!(
        common::model_calls(work.path(), second["id"].as_str().unwrap())
            .await
            .is_empty()
    );
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "zero provider calls the second time"
    );
    let metrics = api.metrics().await;
    assert!(
        metrics.contains("autodevops_model_cost_usd_total{provider=\"openai_compatible\",model=\"test-model\"}"),
        "{metrics}"
    );

    // A change in the repository is a new question.
    common::write_files(repo.path(), &[("README.md", "# demo\nNow with docs.\n")]);
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(completion(1_000, 100))
        .mount(&server)
        .await;
    let third = api.submit("analysis", repo.path()).await;
    let third = api.wait_done(&third, Duration::from_secs(60)).await;
    assert_eq!(third["result"]["cache"]["hit"], false, "{third}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// An embedded stack whose model (a mock) bills 4 700 + 100 tokens a call under a policy of 500
/// output tokens, with a fixture repository to analyse.
struct BudgetStack {
    server: MockServer,
    work: tempfile::TempDir,
    repo: tempfile::TempDir,
    api: Api,
    _proc: Proc,
}

impl BudgetStack {
    async fn start(extra: &[(&'static str, String)]) -> BudgetStack {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/chat/completions"))
            .respond_with(completion(4_700, 100))
            .mount(&server)
            .await;
        let work = tempfile::tempdir().unwrap();
        let repo = tempfile::tempdir().unwrap();
        fixture_repo(repo.path());
        let port = free_port();
        let mut env = model_env(&server, policy_file(work.path(), 500));
        env.push(("BIND_ADDR", format!("127.0.0.1:{port}")));
        env.extend(extra.iter().cloned());
        let mut proc = Proc::spawn(work.path(), &[], &env);
        let api = Api::new(port);
        api.wait_healthy(&mut proc).await;
        BudgetStack {
            server,
            work,
            repo,
            api,
            _proc: proc,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_falls_back_offline_and_rest_answers_429() {
    let (acme_key, tight_key) = ("acme-key-0123456789abcdef", "tight-key-0123456789abcdef");
    // acme's one call uses 4 800 of its 5 000 tokens: less than one call's 500 output tokens is left.
    // tight: enough left for the output of a call (so REST accepts) but not for a whole call.
    let b = BudgetStack::start(&[
        ("API_KEYS", format!("acme:{acme_key},tight:{tight_key}")),
        ("TENANT_BUDGETS", "acme=tokens:5000,tight=tokens:600".to_owned()),
        ("TENANT_DAILY_COST_USD", "1".to_owned()),
    ])
    .await;
    let (server, work, repo) = (&b.server, &b.work, &b.repo);
    let acme = b.api.with_key(acme_key);
    let tight = b.api.with_key(tight_key);

    let id = tight.submit("analysis", repo.path()).await;
    let job = tight.wait_done(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = &job["result"];
    assert_eq!(result["model"], "offline");
    assert!(result["report"]["findings"].is_array());
    let reason = result["fallbacks"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("budget exhausted") && reason.contains("tight"),
        "{result}"
    );
    assert!(server.received_requests().await.unwrap().is_empty(), "no model call");
    assert!(common::model_calls(work.path(), &id).await.is_empty());

    let id = acme.submit("analysis", repo.path()).await;
    let job = acme.wait_done(&id, Duration::from_secs(60)).await;
    assert_eq!(job["result"]["model"], "openai_compatible/test-model", "{job}");
    // How much of acme's budget is used is exported for the "nearly spent" alert.
    let metrics = acme.metrics().await;
    let ratio: f64 = metrics
        .lines()
        .find(|l| l.starts_with("autodevops_tenant_budget_used_ratio{tenant=\"acme\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no budget ratio for acme in:\n{metrics}"));
    assert!(ratio > 0.0 && ratio <= 1.0, "{ratio}");

    let resp = reqwest::Client::new()
        .post(format!("{}/v1/jobs", acme.base))
        .bearer_auth(acme_key)
        .json(&json!({"kind": "analysis", "path": repo.path()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry_after: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exhausted", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily token budget"),
        "{body}"
    );
    // Jobs that call no model are still accepted.
    let (status, _) = acme
        .post("/v1/jobs", json!({"kind": "ci_gen", "path": repo.path()}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

/// BUDGET_EXHAUSTED=defer: a job whose tenant cannot pay for any call waits for the daily
/// reset (retrying, run after midnight UTC, the attempt not counted) instead of going offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_defer_a_spent_budget_makes_the_job_wait_for_the_reset() {
    let key = "tight-key-0123456789abcdef";
    let b = BudgetStack::start(&[
        ("API_KEYS", format!("tight:{key}")),
        ("TENANT_BUDGETS", "tight=tokens:600".to_owned()),
        ("BUDGET_EXHAUSTED", "defer".to_owned()),
    ])
    .await;
    let (server, work, repo) = (&b.server, &b.work, &b.repo);
    let api = b.api.with_key(key);
    let id = api.submit("analysis", repo.path()).await;
    let job = common::wait_for_job(&api, "retrying", Duration::from_secs(30), |j| j["id"] == id.as_str()).await;
    assert_eq!(job["attempts"], 0, "a deferral is not a failed attempt: {job}");
    assert!(job["error"].as_str().unwrap().contains("budget exhausted"), "{job}");
    assert_eq!(job["history"], json!([]), "{job}");
    let (_, queues) = api.get("/v1/queues").await;
    assert_eq!(
        queues["queues"]["analysis"]["scheduled"], 1,
        "waiting for the reset: {queues}"
    );
    assert!(server.received_requests().await.unwrap().is_empty(), "no model call");

    // An unknown setting is a configuration error like any other.
    let out = common::command(work.path(), &[("BUDGET_EXHAUSTED", "later".into())])
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BUDGET_EXHAUSTED"));
}

#[test]
fn an_invalid_policy_file_stops_the_process_naming_the_line() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("models.toml");
    std::fs::write(
        &file,
        "# chains\n[[analysis]]\nprovider = \"gemini\"\nmodel = \"gemini-2.5-pro\"\ncontext_window = 1000000\n\
         max_output_tokens = 4000\ninput_usd_per_mtok = 1.25\noutput_usd_per_mtok = 10\n",
    )
    .unwrap();
    let out = common::command(
        work.path(),
        &[
            ("OPENAI_API_KEY", "sk-test-0123456789abcdefghij".into()),
            ("MODELS_CONFIG", file.display().to_string()),
            ("TENANT_DAILY_TOKENS", "lots".into()),
        ],
    )
    .arg("worker")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MODELS_CONFIG") && err.contains("line 3"), "{err}");
    assert!(
        err.contains("GEMINI_API_KEY") && err.contains("TENANT_DAILY_TOKENS"),
        "{err}"
    );
    assert!(!err.contains("sk-test-0123456789abcdefghij"), "{err}");
}

/// Sum of input + output tokens of every audited call in a Postgres database.
async fn postgres_tokens(url: &str) -> (u64, usize) {
    use sea_orm::EntityTrait;
    let db = shared::db::Db::connect(&shared::config::DatabaseUrl::Postgres(url.to_owned()))
        .await
        .unwrap();
    let calls = shared::db::model_call::Entity::find().all(&db.conn).await.unwrap();
    let tokens = calls.iter().map(|c| (c.input_tokens + c.output_tokens) as u64).sum();
    (tokens, calls.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_sharing_redis_never_exceed_a_tenants_budget() {
    const BUDGET: u64 = 20_000;
    let database_url = common::fresh_postgres().await;
    let prefix = common::fresh_redis_prefix().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .respond_with(Billing {
            delay: Duration::from_millis(300),
        })
        .mount(&server)
        .await;
    let work = tempfile::tempdir().unwrap();
    let repo = tempfile::tempdir().unwrap();
    let port = free_port();
    let key = "acme-key-0123456789abcdef";
    let mut env = model_env(&server, policy_file(work.path(), 500));
    env.extend([
        ("DATABASE_URL", database_url.clone()),
        ("REDIS_URL", common::redis_url()),
        ("QUEUE_PREFIX", prefix.clone()),
        ("ALLOW_LOCAL_PATHS", "true".to_owned()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("API_KEYS", format!("acme:{key}")),
        ("WORKER_CONCURRENCY", "4".to_owned()),
        ("TENANT_DAILY_TOKENS", BUDGET.to_string()),
    ]);
    let (_api_proc, api) = common::start_api_only(work.path(), &env, port).await;
    let api = api.with_key(key);
    let _workers = [
        Proc::spawn(work.path(), &["worker"], &env),
        Proc::spawn(work.path(), &["worker"], &env),
    ];
    let mut ids = Vec::new();
    for dir in fixture_repos(repo.path(), 30) {
        let (status, body) = api.post("/v1/jobs", json!({"kind": "analysis", "path": dir})).await;
        match status {
            202 => ids.push(body["id"].as_str().unwrap().to_owned()),
            // The budget may already be spent by the time the last ones are submitted.
            429 => assert_eq!(body["error"]["code"], "budget_exhausted"),
            _ => panic!("{status}: {body}"),
        }
    }
    let (mut by_model, mut exhausted, mut workers) = (0, 0, std::collections::HashSet::new());
    for id in &ids {
        let job = api.wait_done(id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        workers.insert(job["worker"].as_str().unwrap().to_owned());
        let result = &job["result"];
        if result["model"] == "offline" {
            let reason = result["fallbacks"][0]["reason"].as_str().unwrap_or_default();
            assert!(reason.contains("budget exhausted"), "{result}");
            exhausted += 1;
        } else {
            by_model += 1;
        }
    }
    assert!(by_model >= 3, "{by_model} model answers");
    assert!(exhausted >= 1, "the budget ran out: {by_model} model answers");
    assert_eq!(workers.len(), 2, "both worker processes took jobs");

    let (tokens, calls) = postgres_tokens(&database_url).await;
    eprintln!("{by_model} model answers, {exhausted} offline (budget), {calls} calls, {tokens} of {BUDGET} tokens");
    assert_eq!(calls, server.received_requests().await.unwrap().len());
    assert!(tokens <= BUDGET, "{tokens} tokens used of {BUDGET} by {calls} calls");
    assert!(tokens > BUDGET / 2, "the budget was used: {tokens}");
    let client = redis::Client::open(common::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}models:quota:acme:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let used: u64 = redis::cmd("HGET")
        .arg(&keys[0])
        .arg("tokens")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(used, tokens, "settled to the real usage");
}
