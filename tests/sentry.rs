//! Sentry: with SENTRY_DSN set, a dead job is reported (mocked Sentry ingest, wiremock) with the
//! job id as a tag, the release and the environment — and no secrets; an internal error of a
//! webhook delivery with its delivery id.

mod common;

use std::time::{Duration, Instant};

use common::{Proc, fixture_repo, free_port};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_is_reported_with_its_id_and_no_secrets() {
    let sentry = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/42/envelope/"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"id":"ok"}"#))
        .mount(&sentry)
        .await;
    let dsn = format!("http://abc123publickey@{}/42", sentry.address());
    let secret = "webhook-secret-not-for-sentry";
    let work = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let checkout = scratch.path().join("gone");
    fixture_repo(&checkout);
    let port = free_port();
    let key = "0123456789abcdef-not-for-sentry";
    let env = [
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("API_KEYS", format!("acme:{key}")),
        ("SENTRY_DSN", dsn),
        ("SENTRY_ENVIRONMENT", "staging".to_owned()),
        ("GITHUB_WEBHOOK_SECRET", secret.to_owned()),
    ];
    // Queue a job whose checkout then disappears: it goes dead on its first run.
    let (mut api_proc, mut api) = common::start_api_only(work.path(), &env, port).await;
    api.key = Some(key.to_owned());
    let id = api.submit("analysis", &checkout).await;
    std::fs::remove_dir_all(&checkout).unwrap();
    api_proc.kill9();
    let mut proc = Proc::spawn(work.path(), &[], &env);
    api.wait_healthy(&mut proc).await;
    assert_eq!(api.wait_done(&id, Duration::from_secs(30)).await["status"], "dead");

    let body = event_containing(&sentry, &id).await;
    assert!(
        body.contains(r#""job_id":""#) && body.contains("\"kind\":\"analysis\""),
        "{body}"
    );
    assert!(
        body.contains("staging") && body.contains("autodevops@"),
        "environment and release: {body}"
    );
    assert!(!body.contains(key), "the API key reached Sentry");

    // The delivery log's table is gone: the webhook answers 500, and Sentry hears of it with
    // the delivery id.
    {
        use sea_orm::ConnectionTrait;
        let url = format!("sqlite://{}", work.path().join("autodevops.db").display());
        let db = shared::db::Db::connect(&shared::config::DatabaseUrl::Sqlite(url))
            .await
            .unwrap();
        db.conn
            .execute_unprepared("DROP TABLE github_deliveries")
            .await
            .unwrap();
    }
    let (status, _) = common::deliver(&api, secret, "ping", "delivery-7f3a", &serde_json::json!({"zen": "x"})).await;
    assert_eq!(status, 500);
    let body = event_containing(&sentry, "delivery-7f3a").await;
    assert!(body.contains(r#""delivery_id":"delivery-7f3a""#), "{body}");
    assert!(body.contains("API internal error"), "{body}");
    assert!(!body.contains(secret), "the webhook secret reached Sentry");

    // A malformed DSN is a configuration error like any other.
    let out = common::command(work.path(), &[("SENTRY_DSN", "not a dsn".into())])
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SENTRY_DSN"));
}

/// Waits for a Sentry envelope whose body contains `needle`.
async fn event_containing(sentry: &MockServer, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let bodies: Vec<String> = sentry
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        if let Some(b) = bodies.into_iter().find(|b| b.contains(needle)) {
            return b;
        }
        assert!(Instant::now() < deadline, "no Sentry event containing {needle}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
