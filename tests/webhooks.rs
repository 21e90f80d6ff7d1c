//! `POST /github/webhook` through the real binary: signatures (with a rotation), the delivery
//! log's de-duplication, event routing, and every malformed-request answer.

mod common;

use common::{Api, Proc, free_port, sign};
use serde_json::{Value, json};

/// GitHub's `ping` payload shape (sent when a webhook is created).
fn ping() -> Value {
    json!({
        "zen": "Keep it logically awesome.",
        "hook_id": 123456789,
        "hook": {
            "type": "App", "id": 123456789, "name": "web", "active": true, "events": ["push", "pull_request"],
            "config": {"content_type": "json", "insecure_ssl": "0", "url": "https://autodevops.example.com/github/webhook"},
            "updated_at": "2026-11-24T12:00:00Z", "created_at": "2026-11-24T12:00:00Z", "app_id": 4242,
            "deliveries_url": "https://api.github.com/app/hook/deliveries"
        }
    })
}

/// A `push` payload (trimmed to the fields routing reads, in GitHub's shape).
fn push() -> Value {
    json!({
        "ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000",
        "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "created": false, "deleted": false, "forced": false,
        "repository": {"id": 35129377, "name": "public-repo", "full_name": "octo-org/public-repo",
                       "private": false, "default_branch": "main", "owner": {"login": "octo-org", "type": "Organization"}},
        "pusher": {"name": "octocat", "email": "octocat@github.com"},
        "installation": {"id": 2311213, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMjMxMTIxMw=="},
        "sender": {"login": "octocat", "id": 21031067, "type": "User"},
        "head_commit": {"id": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "message": "Update README.md"}
    })
}

async fn post(
    api: &Api,
    event: Option<&str>,
    delivery: Option<&str>,
    signature: Option<String>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = api
        .http
        .post(format!("{}/github/webhook", api.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(e) = event {
        req = req.header("x-github-event", e);
    }
    if let Some(d) = delivery {
        req = req.header("x-github-delivery", d);
    }
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A delivery with every header, signed with `secret`.
async fn signed(api: &Api, event: &str, delivery: &str, secret: &str, body: Vec<u8>) -> (u16, Value) {
    let signature = sign(secret, &body);
    post(api, Some(event), Some(delivery), Some(signature), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_verified_recorded_once_and_routed() {
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        // Rotation in progress: the old and the new secret both verify.
        ("GITHUB_WEBHOOK_SECRET", "old-secret-1234, new-secret-5678".to_owned()),
    ];
    let mut proc = Proc::spawn(work.path(), &[], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut proc).await;

    let body = ping().to_string().into_bytes();
    let (status, resp) = signed(&api, "ping", "d-1", "new-secret-5678", body.clone()).await;
    assert_eq!((status, resp["outcome"].as_str()), (202, Some("accepted")), "{resp}");
    // The same delivery again (a redelivery): 200, nothing new.
    let (status, resp) = signed(&api, "ping", "d-1", "new-secret-5678", body.clone()).await;
    assert_eq!((status, resp["duplicate"].as_bool()), (200, Some(true)), "{resp}");
    // The old secret still verifies during the rotation.
    let (status, _) = signed(&api, "ping", "d-2", "old-secret-1234", body.clone()).await;
    assert_eq!(status, 202);

    // Events that would start repository jobs are recorded and ignored, with the reason.
    let body = push().to_string().into_bytes();
    let (status, resp) = signed(&api, "push", "d-3", "new-secret-5678", body).await;
    assert_eq!((status, resp["outcome"].as_str()), (202, Some("ignored")), "{resp}");
    assert!(resp["reason"].as_str().unwrap().contains("GITHUB_APP_ID"), "{resp}");
    let body = br#"{"action":"created","starred_at":"2026-11-24T12:00:00Z"}"#.to_vec();
    let (status, resp) = signed(&api, "star", "d-4", "new-secret-5678", body).await;
    assert_eq!(status, 202);
    assert!(resp["reason"].as_str().unwrap().contains("not handled"), "{resp}");

    // Bad input: each gets its own clear answer, and nothing is recorded for it.
    let body = ping().to_string().into_bytes();
    let (status, resp) = signed(&api, "ping", "d-5", "wrong-secret", body.clone()).await;
    assert_eq!((status, resp["error"]["code"].as_str()), (401, Some("bad_signature")));
    let (status, _) = post(&api, Some("ping"), Some("d-5"), None, body.clone()).await;
    assert_eq!(status, 401);
    let (status, resp) = post(
        &api,
        None,
        Some("d-5"),
        Some(sign("new-secret-5678", &body)),
        body.clone(),
    )
    .await;
    assert_eq!(
        (status, resp["error"]["field"].as_str()),
        (400, Some("X-GitHub-Event")),
        "{resp}"
    );
    let (status, resp) = post(
        &api,
        Some("ping"),
        None,
        Some(sign("new-secret-5678", &body)),
        body.clone(),
    )
    .await;
    assert_eq!(
        (status, resp["error"]["field"].as_str()),
        (400, Some("X-GitHub-Delivery")),
        "{resp}"
    );
    let broken = b"{\"zen\": ".to_vec();
    let (status, _) = signed(&api, "ping", "d-5", "new-secret-5678", broken).await;
    assert_eq!(status, 400);
    // A field of the wrong type stops the typed read early: the rest is still checked.
    let broken = br#"{"action": 5, "zen": "#.to_vec();
    let (status, resp) = signed(&api, "push", "d-5", "new-secret-5678", broken).await;
    assert_eq!(status, 400, "{resp}");
    // JSON of another shape is recorded and ignored as malformed.
    let odd = br#"{"action": 5, "repository": "not an object"}"#.to_vec();
    let (status, resp) = signed(&api, "push", "d-7", "new-secret-5678", odd).await;
    assert_eq!((status, resp["outcome"].as_str()), (202, Some("ignored")), "{resp}");
    assert!(
        resp["reason"].as_str().unwrap().contains("malformed push payload"),
        "{resp}"
    );
    let huge = vec![b' '; 26 * 1024 * 1024];
    let (status, resp) = signed(&api, "ping", "d-6", "new-secret-5678", huge).await;
    assert_eq!(
        (status, resp["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    // d-5 was never recorded: once valid, it is accepted.
    let (status, _) = signed(&api, "ping", "d-5", "new-secret-5678", body).await;
    assert_eq!(status, 202);

    let metrics = api.metrics().await;
    assert!(
        metrics.contains(r#"autodevops_webhooks_received_total{event="ping"} 4"#),
        "{metrics}"
    );
    assert!(
        !proc.log_text().contains("new-secret-5678"),
        "the secret reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webhook_secret_deliveries_are_refused_clearly() {
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut proc = Proc::spawn(work.path(), &[], &[("BIND_ADDR", format!("127.0.0.1:{port}"))]);
    let api = Api::new(port);
    api.wait_healthy(&mut proc).await;
    let body = ping().to_string().into_bytes();
    let (status, resp) = signed(&api, "ping", "d-1", "x", body).await;
    assert_eq!(status, 503, "{resp}");
    assert!(
        resp["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GITHUB_WEBHOOK_SECRET")
    );
}
