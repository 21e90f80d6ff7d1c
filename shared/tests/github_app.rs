//! The GitHub App client against a wiremock "GitHub" answering with GitHub's REST shapes, and
//! the Redis throttle against a real Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use autodevops_shared::github::ContentThrottle;
use autodevops_shared::github::{
    Annotation, CheckConclusion, FilePr, GithubApp, GithubConfig, GithubError, LocalThrottle, RedisThrottle,
    RetryPolicy, ThrottleLimits, TreeLimits,
};
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockBuilder, MockServer, Request, ResponseTemplate};

const APP_ID: u64 = 424242;
const INSTALLATION: i64 = 77;

// ---------------------------------------------------------------------------------------
// A throwaway RSA key generated at test time (aws-lc-rs), PKCS#8 PEM.

struct TestKey {
    pem: String,
    decoding: DecodingKey,
}

fn test_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::{KeyPair, KeySize};
        use aws_lc_rs::signature::KeyPair as _;
        let kp = KeyPair::generate(KeySize::Rsa2048).expect("generate RSA key");
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).expect("PKCS#8 DER");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let public = kp.public_key();
        let decoding = DecodingKey::from_rsa_raw_components(
            public.modulus().big_endian_without_leading_zero(),
            public.exponent().big_endian_without_leading_zero(),
        );
        TestKey { pem, decoding }
    })
}

fn config(server: &MockServer) -> GithubConfig {
    GithubConfig {
        app_id: APP_ID,
        private_key: SecretString::from(test_key().pem.clone()),
        api_url: format!("{}/", server.uri()).parse().unwrap(),
        timeout: Duration::from_secs(5),
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 4,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_rate_limit_wait: Duration::from_secs(5),
    }
}

fn app(server: &MockServer) -> GithubApp {
    GithubApp::new(config(server), reqwest::Client::new())
        .expect("app")
        .with_retry_policy(fast_retries())
}

/// Checks an App JWT as GitHub would: RS256 with our key, iss = app id, iat backdated, exp ≤ 10 min.
fn assert_app_jwt(req: &Request) {
    let auth = req
        .headers
        .get("authorization")
        .expect("Authorization")
        .to_str()
        .unwrap();
    let jwt = auth.strip_prefix("Bearer ").expect("Bearer JWT");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[APP_ID.to_string()]);
    v.set_required_spec_claims(&["iss", "iat", "exp"]);
    let data = jsonwebtoken::decode::<Value>(jwt, &test_key().decoding, &v).expect("valid App JWT");
    assert_eq!(data.header.alg, Algorithm::RS256);
    let now = Utc::now().timestamp();
    let iat = data.claims["iat"].as_i64().unwrap();
    let exp = data.claims["exp"].as_i64().unwrap();
    assert_eq!(data.claims["iss"], json!(APP_ID.to_string()));
    assert!(iat <= now - 59, "iat {iat} not backdated (now {now})");
    assert!(exp <= now + 600, "exp {exp} more than 10 minutes ahead");
    assert!(exp > now, "exp in the past");
}

/// GitHub's answer to POST /app/installations/{id}/access_tokens.
fn token_response(token: &str, valid_for: chrono::Duration) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "token": token,
        "expires_at": (Utc::now() + valid_for).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "permissions": { "checks": "write", "contents": "write", "issues": "write", "pull_requests": "write" },
        "repository_selection": "all"
    }))
}

fn token_path() -> String {
    format!("/app/installations/{INSTALLATION}/access_tokens")
}

/// Mounts an exchange that always hands out `token` for an hour.
async fn mount_token(server: &MockServer, token: &str) {
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(token_response(token, chrono::Duration::hours(1)))
        .mount(server)
        .await;
}

/// A wiremock GitHub whose token exchange hands out `ghs_t`.
async fn github() -> MockServer {
    let server = MockServer::start().await;
    mount_token(&server, "ghs_t").await;
    server
}

/// `GET /repos/octo/hello`, the repository most client tests read.
fn get_repo() -> MockBuilder {
    Mock::given(method("GET")).and(path("/repos/octo/hello"))
}

fn repo_json(id: i64, full_name: &str) -> Value {
    let (owner, name) = full_name.split_once('/').unwrap();
    json!({
        "id": id,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": name,
        "full_name": full_name,
        "owner": { "login": owner, "id": 1, "type": "Organization" },
        "private": id % 2 == 0,
        "html_url": format!("https://github.com/{full_name}"),
        "description": "This your first repo!",
        "fork": false,
        "language": if id % 2 == 0 { Value::Null } else { json!("Rust") },
        "default_branch": "main",
        "archived": id == 3,
        "disabled": false,
        "visibility": "public",
        "pushed_at": "2011-01-26T19:06:43Z",
        "created_at": "2011-01-26T19:01:12Z",
        "updated_at": "2011-01-26T19:14:43Z"
    })
}

fn exchanges(received: &[Request]) -> usize {
    received.iter().filter(|r| r.url.path() == token_path()).count()
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording on")
}

// ---------------------------------------------------------------------------------------
// Tokens

#[tokio::test]
async fn token_exchange_signs_jwt_caches_token_and_follows_pages() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(token_response(
            "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            chrono::Duration::hours(1),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let page2 = format!("{}/installation/repositories?per_page=100&page=2", server.uri());
    Mock::given(method("GET"))
        .and(path("/installation/repositories"))
        .and(query_param("page", "2"))
        .and(header(
            "authorization",
            "Bearer ghs_16C7e42F292c6912E7710c838347Ae178B4a",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total_count": 3, "repository_selection": "all", "repositories": [repo_json(3, "octo/old")]
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/installation/repositories"))
        .and(header(
            "authorization",
            "Bearer ghs_16C7e42F292c6912E7710c838347Ae178B4a",
        ))
        .and(header("accept", "application/vnd.github+json"))
        .and(header("x-github-api-version", "2022-11-28"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    format!("<{page2}>; rel=\"next\", <{page2}>; rel=\"last\"").as_str(),
                )
                .set_body_json(json!({
                    "total_count": 3, "repository_selection": "all",
                    "repositories": [repo_json(1, "octo/hello"), repo_json(2, "octo/secret")]
                })),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    get_repo()
        .respond_with(ResponseTemplate::new(200).set_body_json(repo_json(1, "octo/hello")))
        .mount(&server)
        .await;

    let gh = app(&server);
    let inst = gh.installation(INSTALLATION);
    let repos = inst.list_repositories().await.unwrap();
    let names: Vec<_> = repos.iter().map(|r| r.full_name.as_str()).collect();
    assert_eq!(names, ["octo/hello", "octo/secret", "octo/old"]);
    assert_eq!(repos[0].language.as_deref(), Some("Rust"));
    assert!(repos[1].private && repos[1].language.is_none());
    assert!(repos[2].archived);
    // Second call: the cached token, no exchange.
    let r = inst.get_repository("octo/hello").await.unwrap();
    assert_eq!((r.id, r.default_branch.as_str()), (1, "main"));
    let token = gh.installation_token(INSTALLATION).await.unwrap();
    assert_eq!(token.expose_secret(), "ghs_16C7e42F292c6912E7710c838347Ae178B4a");

    let reqs = received(&server).await;
    assert_eq!(exchanges(&reqs), 1);
    let exchange = reqs.iter().find(|r| r.url.path() == token_path()).unwrap();
    assert_app_jwt(exchange);
    assert!(reqs.iter().all(|r| r.headers.get("user-agent").is_some()));
}

#[tokio::test]
async fn near_expiry_token_is_refreshed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(token_response("ghs_short", chrono::Duration::seconds(30)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_token(&server, "ghs_long").await;
    let gh = app(&server);
    assert_eq!(
        gh.installation_token(INSTALLATION).await.unwrap().expose_secret(),
        "ghs_short"
    );
    // 30 s left is inside the 60 s margin: refreshed.
    assert_eq!(
        gh.installation_token(INSTALLATION).await.unwrap().expose_secret(),
        "ghs_long"
    );
    assert_eq!(
        gh.installation_token(INSTALLATION).await.unwrap().expose_secret(),
        "ghs_long"
    );
    assert_eq!(exchanges(&received(&server).await), 2);
}

#[tokio::test]
async fn twenty_concurrent_callers_share_one_exchange() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(
            token_response(
                "ghs_shared_token_of_any_length_0123456789abcdef",
                chrono::Duration::hours(1),
            )
            .set_delay(Duration::from_millis(300)),
        )
        .expect(1)
        .mount(&server)
        .await;
    get_repo()
        .and(header(
            "authorization",
            "Bearer ghs_shared_token_of_any_length_0123456789abcdef",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(repo_json(1, "octo/hello")))
        .expect(20)
        .mount(&server)
        .await;
    let gh = app(&server);
    let calls = (0..20).map(|_| {
        let inst = gh.installation(INSTALLATION);
        tokio::spawn(async move { inst.get_repository("octo/hello").await })
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap().unwrap().id, 1);
    }
    assert_eq!(exchanges(&received(&server).await), 1);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(token_response("ghs_revoked", chrono::Duration::hours(1)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_token(&server, "ghs_fresh").await;
    get_repo()
        .and(header("authorization", "Bearer ghs_revoked"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"
        })))
        .expect(1)
        .mount(&server)
        .await;
    get_repo()
        .and(header("authorization", "Bearer ghs_fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(repo_json(1, "octo/hello")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = app(&server);
    let r = gh
        .installation(INSTALLATION)
        .get_repository("octo/hello")
        .await
        .unwrap();
    assert_eq!(r.full_name, "octo/hello");
    assert_eq!(exchanges(&received(&server).await), 2);
}

#[tokio::test]
async fn a_rejected_exchange_is_an_auth_error_without_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(token_path()))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "message": "A JSON web token could not be decoded",
            "documentation_url": "https://docs.github.com/rest"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = app(&server)
        .installation(INSTALLATION)
        .get_repository("octo/hello")
        .await
        .unwrap_err();
    assert!(matches!(err, GithubError::Auth(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("could not be decoded"));
    assert!(!text.contains("eyJ"), "JWT leaked: {text}");
}

// ---------------------------------------------------------------------------------------
// Retries and rate limits

#[tokio::test]
async fn secondary_rate_limit_waits_retry_after_then_succeeds() {
    let server = github().await;
    get_repo()
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("retry-after", "1")
                .insert_header("x-ratelimit-remaining", "4000")
                .set_body_json(json!({
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                })),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    get_repo()
        .respond_with(ResponseTemplate::new(200).set_body_json(repo_json(1, "octo/hello")))
        .mount(&server)
        .await;
    let inst = app(&server).installation(INSTALLATION);
    let start = Instant::now();
    inst.get_repository("octo/hello").await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "waited only {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_rate_limit_beyond_the_cap_is_returned_at_once() {
    let server = github().await;
    let reset = Utc::now().timestamp() + 1800;
    get_repo()
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-limit", "5000")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({
                    "message": "API rate limit exceeded for installation ID 77.",
                    "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let start = Instant::now();
    let err = app(&server)
        .installation(INSTALLATION)
        .get_repository("octo/hello")
        .await
        .unwrap_err();
    match err {
        GithubError::RateLimited { retry_after } => {
            assert!(retry_after > Duration::from_secs(1700) && retry_after <= Duration::from_secs(1800))
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_5xx_is_retried_until_success() {
    let server = github().await;
    get_repo()
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    get_repo()
        .respond_with(ResponseTemplate::new(200).set_body_json(repo_json(1, "octo/hello")))
        .expect(1)
        .mount(&server)
        .await;
    let r = app(&server)
        .installation(INSTALLATION)
        .get_repository("octo/hello")
        .await
        .unwrap();
    assert_eq!(r.id, 1);
    let gets = received(&server)
        .await
        .iter()
        .filter(|r| r.url.path() == "/repos/octo/hello")
        .count();
    assert_eq!(gets, 3);
}

#[tokio::test]
async fn a_404_is_not_retried() {
    let server = github().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/missing"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "message": "Not Found", "documentation_url": "https://docs.github.com/rest/repos/repos#get-a-repository"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = app(&server)
        .installation(INSTALLATION)
        .get_repository("octo/missing")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("Not Found"), "{err}");
}

#[tokio::test]
async fn etag_revalidation_returns_the_cached_body() {
    let server = github().await;
    get_repo()
        .and(header("if-none-match", "W/\"5b1c\""))
        .respond_with(ResponseTemplate::new(304).insert_header("etag", "W/\"5b1c\""))
        .expect(1)
        .with_priority(1)
        .mount(&server)
        .await;
    get_repo()
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("etag", "W/\"5b1c\"")
                .set_body_json(repo_json(1, "octo/hello")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let inst = app(&server).installation(INSTALLATION);
    let first = inst.get_repository("octo/hello").await.unwrap();
    let second = inst.get_repository("octo/hello").await.unwrap();
    assert_eq!(first, second);
}

#[tokio::test]
async fn content_calls_pass_the_throttle() {
    let server = github().await;
    Mock::given(method("POST"))
        .and(path("/repos/octo/hello/check-runs"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": 1, "status": "in_progress" })))
        .expect(1)
        .mount(&server)
        .await;
    let throttle = LocalThrottle::new(ThrottleLimits {
        per_minute: 1,
        per_hour: 10,
        max_wait: Duration::from_millis(100),
        ..ThrottleLimits::default()
    });
    let inst = app(&server)
        .with_throttle(Arc::new(throttle))
        .installation(INSTALLATION);
    inst.create_check_run("octo/hello", "ce587453ced02b1526dfb4cb910479d431683101", "ci", "x")
        .await
        .unwrap();
    let err = inst
        .create_check_run("octo/hello", "ce587453ced02b1526dfb4cb910479d431683101", "ci", "y")
        .await
        .unwrap_err();
    assert!(matches!(err, GithubError::RateLimited { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Check runs

#[tokio::test]
async fn check_run_lifecycle_batches_annotations() {
    let server = github().await;
    let sha = "ce587453ced02b1526dfb4cb910479d431683101";
    Mock::given(method("POST"))
        .and(path("/repos/octo/hello/check-runs"))
        .and(body_partial_json(
            json!({ "name": "autodevops", "head_sha": sha, "status": "in_progress", "external_id": "job-1" }),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "id": 4, "head_sha": sha, "node_id": "MDg6Q2hlY2tSdW40", "external_id": "job-1",
            "url": "https://api.github.com/repos/octo/hello/check-runs/4",
            "html_url": "https://github.com/octo/hello/runs/4",
            "details_url": "https://example.com", "status": "in_progress", "conclusion": null,
            "started_at": "2018-05-04T01:14:52Z", "completed_at": null,
            "output": { "title": null, "summary": null, "text": null, "annotations_count": 0,
                        "annotations_url": "https://api.github.com/repos/octo/hello/check-runs/4/annotations" },
            "name": "autodevops", "check_suite": { "id": 5 }, "pull_requests": []
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/octo/hello/check-runs/4"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 4, "head_sha": sha, "status": "completed", "conclusion": "failure", "name": "autodevops"
        })))
        .expect(3)
        .mount(&server)
        .await;
    let inst = app(&server).installation(INSTALLATION);
    let id = inst
        .create_check_run("octo/hello", sha, "autodevops", "job-1")
        .await
        .unwrap();
    assert_eq!(id, 4);
    let annotations: Vec<Annotation> = (0..120)
        .map(|i| Annotation {
            path: format!("src/f{i}.rs"),
            start_line: i + 1,
            end_line: i + 1,
            annotation_level: "warning".into(),
            message: format!("finding {i}"),
            title: (i % 2 == 0).then(|| "lint".to_owned()),
        })
        .collect();
    let result = CheckConclusion {
        conclusion: "failure".into(),
        title: "120 findings".into(),
        summary: "x".repeat(70_000),
        text: Some("details".into()),
    };
    inst.complete_check_run("octo/hello", 4, &result, &annotations)
        .await
        .unwrap();

    let reqs = received(&server).await;
    let create: Value = reqs
        .iter()
        .find(|r| r.method.as_str() == "POST" && r.url.path().ends_with("check-runs"))
        .unwrap()
        .body_json()
        .unwrap();
    assert!(create["started_at"].as_str().is_some_and(|s| s.ends_with('Z')));
    let patches: Vec<Value> = reqs
        .iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .map(|r| r.body_json().unwrap())
        .collect();
    assert_eq!(patches.len(), 3);
    let counts: Vec<usize> = patches
        .iter()
        .map(|p| p["output"]["annotations"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, [50, 50, 20]);
    assert_eq!(patches[0]["status"], "completed");
    assert_eq!(patches[0]["conclusion"], "failure");
    assert!(patches[0]["completed_at"].is_string());
    assert_eq!(
        patches[0]["output"]["summary"].as_str().unwrap().chars().count(),
        65_535
    );
    assert_eq!(patches[0]["output"]["text"], "details");
    assert_eq!(patches[0]["output"]["annotations"][0]["title"], "lint");
    assert!(patches[0]["output"]["annotations"][1].get("title").is_none());
    for p in &patches[1..] {
        assert!(p.get("conclusion").is_none());
        assert_eq!(p["output"]["title"], "120 findings");
        assert!(p["output"]["summary"].is_string());
    }
    assert_eq!(patches[2]["output"]["annotations"][19]["path"], "src/f119.rs");
    assert_eq!(patches[2]["output"]["annotations"][19]["annotation_level"], "warning");
}

/// GitHub's `GET commits/{sha}/check-runs` page holding one run.
fn check_runs_page(id: i64, sha: &str, external_id: &str) -> Value {
    json!({ "total_count": 1, "check_runs": [{
        "id": id, "head_sha": sha, "node_id": "MDg6Q2hlY2tSdW40", "external_id": external_id,
        "status": "in_progress", "conclusion": null, "name": "autodevops",
        "started_at": "2018-05-04T01:14:52Z", "completed_at": null,
        "check_suite": { "id": 5 }, "app": { "slug": "autodevops" }, "pull_requests": []
    }]})
}

#[tokio::test]
async fn a_check_run_whose_answer_was_lost_is_found_not_created_twice() {
    let server = github().await;
    let sha = "ce587453ced02b1526dfb4cb910479d431683101";
    let runs_path = format!("/repos/octo/hello/commits/{sha}/check-runs");
    // GitHub created job-1's run, but its gateway answered 502.
    Mock::given(method("POST"))
        .and(path("/repos/octo/hello/check-runs"))
        .respond_with(ResponseTemplate::new(502).set_body_json(json!({ "message": "Server Error" })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(runs_path.as_str()))
        .and(query_param("check_name", "autodevops"))
        .respond_with(ResponseTemplate::new(200).set_body_json(check_runs_page(9, sha, "job-1")))
        .mount(&server)
        .await;
    let inst = app(&server).installation(INSTALLATION);
    let id = inst.create_check_run("octo/hello", sha, "autodevops", "job-1").await;
    assert_eq!(id.unwrap(), 9, "the run GitHub made is found by its external id");
    // Another job's lost POST finds nothing of its own: a retryable error, and still one POST.
    let err = inst
        .create_check_run("octo/hello", sha, "autodevops", "job-2")
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let posts = |reqs: &[Request]| {
        reqs.iter()
            .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("check-runs"))
            .count()
    };
    assert_eq!(
        posts(&received(&server).await),
        2,
        "a POST that may have acted is never sent again"
    );
    assert_eq!(
        inst.find_check_run("octo/hello", sha, "autodevops", "job-1")
            .await
            .unwrap(),
        Some(9)
    );
    assert_eq!(
        inst.find_check_run("octo/hello", sha, "autodevops", "job-3")
            .await
            .unwrap(),
        None
    );
}

// ---------------------------------------------------------------------------------------
// Sticky comment: an in-memory issue with comments

fn comment_json(id: i64, body: &str, user_type: &str) -> Value {
    json!({
        "id": id,
        "node_id": "MDEyOklzc3VlQ29tbWVudDE=",
        "url": format!("https://api.github.com/repos/octo/hello/issues/comments/{id}"),
        "html_url": format!("https://github.com/octo/hello/pull/7#issuecomment-{id}"),
        "body": body,
        "user": { "login": if user_type == "Bot" { "autodevops[bot]" } else { "octocat" }, "id": 1, "type": user_type },
        "created_at": "2011-04-14T16:00:49Z",
        "updated_at": "2011-04-14T16:00:49Z",
        "issue_url": "https://api.github.com/repos/octo/hello/issues/7",
        "author_association": "NONE"
    })
}

#[tokio::test]
async fn sticky_comment_is_created_once_then_updated() {
    let server = github().await;
    let marker = "<!-- autodevops:pr-report -->";
    let comments = Arc::new(Mutex::new(vec![
        comment_json(1, "Looks good to me", "User"),
        comment_json(2, &format!("quoting the bot: {marker}"), "User"),
    ]));
    let next_id = Arc::new(AtomicI64::new(100));

    let c = comments.clone();
    Mock::given(method("GET"))
        .and(path("/repos/octo/hello/issues/7/comments"))
        .respond_with(move |_: &Request| ResponseTemplate::new(200).set_body_json(c.lock().unwrap().clone()))
        .mount(&server)
        .await;
    let (c, ids) = (comments.clone(), next_id.clone());
    Mock::given(method("POST"))
        .and(path("/repos/octo/hello/issues/7/comments"))
        .respond_with(move |req: &Request| {
            let body: Value = req.body_json().unwrap();
            let id = ids.fetch_add(1, Ordering::SeqCst);
            let created = comment_json(id, body["body"].as_str().unwrap(), "Bot");
            c.lock().unwrap().push(created.clone());
            ResponseTemplate::new(201).set_body_json(created)
        })
        .expect(1)
        .mount(&server)
        .await;
    let c = comments.clone();
    Mock::given(method("PATCH"))
        .and(path("/repos/octo/hello/issues/comments/100"))
        .respond_with(move |req: &Request| {
            let body: Value = req.body_json().unwrap();
            let mut all = c.lock().unwrap();
            let slot = all.iter_mut().find(|x| x["id"] == 100).unwrap();
            slot["body"] = body["body"].clone();
            ResponseTemplate::new(200).set_body_json(slot.clone())
        })
        .expect(1)
        .mount(&server)
        .await;

    let inst = app(&server).installation(INSTALLATION);
    let first = inst
        .upsert_sticky_comment("octo/hello", 7, marker, "## Report\n3 findings")
        .await
        .unwrap();
    assert_eq!((first.id, first.created), (100, true));
    let second = inst
        .upsert_sticky_comment("octo/hello", 7, marker, "## Report\n1 finding")
        .await
        .unwrap();
    assert_eq!((second.id, second.created), (100, false));
    // Same body again: nothing to change, no request.
    let third = inst
        .upsert_sticky_comment("octo/hello", 7, marker, "## Report\n1 finding")
        .await
        .unwrap();
    assert_eq!((third.id, third.created), (100, false));

    let all = comments.lock().unwrap();
    let ours: Vec<_> = all.iter().filter(|c| c["user"]["type"] == "Bot").collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["body"], format!("{marker}\n## Report\n1 finding"));
    assert_eq!(all[1]["body"], format!("quoting the bot: {marker}"));
}

// ---------------------------------------------------------------------------------------
// CI pull request: an in-memory repository with refs, files and pulls

#[derive(Default)]
struct FakeRepo {
    refs: HashMap<String, String>,
    /// (branch, path) → (blob sha, content)
    files: HashMap<(String, String), (String, Vec<u8>)>,
    pulls: Vec<Value>,
    commits: usize,
}

impl FakeRepo {
    /// Gives `branch` every file of `main` (a branch created from, or reset to, main).
    fn copy_main_to(&mut self, branch: &str) {
        let base_files: Vec<_> = self
            .files
            .iter()
            .filter(|((b, _), _)| b == "main")
            .map(|((_, p), v)| (p.clone(), v.clone()))
            .collect();
        for (p, v) in base_files {
            self.files.insert((branch.to_owned(), p), v);
        }
    }
}

/// The rest of the request's path after `prefix` (a branch name, a file path).
fn path_after(req: &Request, prefix: &str) -> String {
    req.url.path().trim_start_matches(prefix).to_owned()
}

fn ref_json(branch: &str, sha: &str) -> Value {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "node_id": "MDM6UmVmcmVmcy9oZWFkcy9mZWF0dXJlQQ==",
        "url": format!("https://api.github.com/repos/octo/hello/git/refs/heads/{branch}"),
        "object": { "type": "commit", "sha": sha,
                    "url": format!("https://api.github.com/repos/octo/hello/git/commits/{sha}") }
    })
}

fn pull_json(number: i64, title: &str, body: &str, head: &str, base: &str) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/octo/hello/pulls/{number}"),
        "id": 1000 + number,
        "html_url": format!("https://github.com/octo/hello/pull/{number}"),
        "number": number,
        "state": "open",
        "title": title,
        "body": body,
        "head": { "label": format!("octo:{head}"), "ref": head, "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e" },
        "base": { "label": format!("octo:{base}"), "ref": base, "sha": "aa218f56b14c9653891f9e74264a383fa43fefbd" },
        "draft": false,
        "merged": false
    })
}

/// Mounts the fake repository; `ref_posts` / `pr_posts`: the branch creations and PR
/// openings the test expects.
async fn mount_fake_repo(server: &MockServer, state: Arc<Mutex<FakeRepo>>, ref_posts: u64, pr_posts: u64) {
    let s = state.clone();
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex(r"^/repos/octo/hello/git/ref/heads/.+$"))
        .respond_with(move |req: &Request| {
            let branch = req.url.path().trim_start_matches("/repos/octo/hello/git/ref/heads/");
            match s.lock().unwrap().refs.get(branch) {
                Some(sha) => ResponseTemplate::new(200).set_body_json(ref_json(branch, sha)),
                None => ResponseTemplate::new(404).set_body_json(json!({
                    "message": "Not Found", "documentation_url": "https://docs.github.com/rest/git/refs#get-a-reference"
                })),
            }
        })
        .mount(server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path("/repos/octo/hello/git/refs"))
        .respond_with(move |req: &Request| {
            let body: Value = req.body_json().unwrap();
            let branch = body["ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("refs/heads/")
                .to_owned();
            let sha = body["sha"].as_str().unwrap().to_owned();
            let mut st = s.lock().unwrap();
            if st.refs.contains_key(&branch) {
                return ResponseTemplate::new(422).set_body_json(json!({ "message": "Reference already exists" }));
            }
            // The new branch starts with the base branch's files.
            st.copy_main_to(&branch);
            st.refs.insert(branch.clone(), sha.clone());
            ResponseTemplate::new(201).set_body_json(ref_json(&branch, &sha))
        })
        .expect(ref_posts)
        .mount(server)
        .await;
    let s = state.clone();
    Mock::given(method("PATCH"))
        .and(wiremock::matchers::path_regex(r"^/repos/octo/hello/git/refs/heads/.+$"))
        .respond_with(move |req: &Request| {
            let branch = path_after(req, "/repos/octo/hello/git/refs/heads/");
            let body: Value = req.body_json().unwrap();
            assert_ne!(branch, "main", "never move the default branch");
            assert_eq!(body["force"], true);
            let sha = body["sha"].as_str().unwrap().to_owned();
            let mut st = s.lock().unwrap();
            // The branch now has exactly the base branch's files.
            st.files.retain(|(b, _), _| *b != branch);
            st.copy_main_to(&branch);
            st.refs.insert(branch.clone(), sha.clone());
            ResponseTemplate::new(200).set_body_json(ref_json(&branch, &sha))
        })
        .mount(server)
        .await;
    let s = state.clone();
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex(r"^/repos/octo/hello/contents/.+$"))
        .respond_with(move |req: &Request| {
            let p = path_after(req, "/repos/octo/hello/contents/");
            let branch = req
                .url
                .query_pairs()
                .find(|(k, _)| k == "ref")
                .map(|(_, v)| v.into_owned())
                .unwrap_or("main".into());
            match s.lock().unwrap().files.get(&(branch, p.clone())) {
                Some((sha, bytes)) => {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                    // GitHub wraps the base64 at 60 columns.
                    let wrapped: Vec<String> = b64
                        .as_bytes()
                        .chunks(60)
                        .map(|c| String::from_utf8(c.to_vec()).unwrap())
                        .collect();
                    ResponseTemplate::new(200).set_body_json(json!({
                        "type": "file", "encoding": "base64", "size": bytes.len(),
                        "name": p.rsplit('/').next().unwrap(), "path": p,
                        "content": wrapped.join("\n") + "\n", "sha": sha,
                        "url": "https://api.github.com/repos/octo/hello/contents/x",
                        "git_url": "https://api.github.com/repos/octo/hello/git/blobs/x",
                        "html_url": "https://github.com/octo/hello/blob/main/x",
                        "download_url": "https://raw.githubusercontent.com/octo/hello/main/x",
                        "_links": {}
                    }))
                }
                None => ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" })),
            }
        })
        .mount(server)
        .await;
    let s = state.clone();
    Mock::given(method("PUT"))
        .and(wiremock::matchers::path_regex(r"^/repos/octo/hello/contents/.+$"))
        .respond_with(move |req: &Request| {
            let p = path_after(req, "/repos/octo/hello/contents/");
            let body: Value = req.body_json().unwrap();
            let branch = body["branch"].as_str().unwrap().to_owned();
            assert_ne!(branch, "main", "never commit to the default branch");
            let mut st = s.lock().unwrap();
            let key = (branch, p.clone());
            let existing = st.files.get(&key).map(|(sha, _)| sha.clone());
            if existing.as_deref() != body["sha"].as_str() {
                return ResponseTemplate::new(409)
                    .set_body_json(json!({ "message": format!("{p} does not match {:?}", body["sha"]) }));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body["content"].as_str().unwrap())
                .unwrap();
            st.commits += 1;
            let sha = format!("{:040x}", st.commits);
            st.files.insert(key, (sha.clone(), bytes));
            ResponseTemplate::new(if existing.is_some() { 200 } else { 201 }).set_body_json(json!({
                "content": { "name": p.rsplit('/').next().unwrap(), "path": p, "sha": sha, "type": "file" },
                "commit": { "sha": format!("{:040x}", 9000 + st.commits), "message": body["message"] }
            }))
        })
        .mount(server)
        .await;
    let s = state.clone();
    Mock::given(method("GET"))
        .and(path("/repos/octo/hello/pulls"))
        .respond_with(move |req: &Request| {
            let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
            let head = q.get("head").cloned().unwrap_or_default();
            let open: Vec<Value> = s
                .lock()
                .unwrap()
                .pulls
                .iter()
                .filter(|p| p["state"] == "open" && (head.is_empty() || p["head"]["label"] == head.as_str()))
                .cloned()
                .collect();
            ResponseTemplate::new(200).set_body_json(open)
        })
        .mount(server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path("/repos/octo/hello/pulls"))
        .respond_with(move |req: &Request| {
            let b: Value = req.body_json().unwrap();
            let mut st = s.lock().unwrap();
            let number = 42 + st.pulls.len() as i64;
            let pr = pull_json(
                number,
                b["title"].as_str().unwrap(),
                b["body"].as_str().unwrap(),
                b["head"].as_str().unwrap(),
                b["base"].as_str().unwrap(),
            );
            st.pulls.push(pr.clone());
            ResponseTemplate::new(201).set_body_json(pr)
        })
        .expect(pr_posts)
        .mount(server)
        .await;
    let s = state;
    Mock::given(method("PATCH"))
        .and(path("/repos/octo/hello/pulls/42"))
        .respond_with(move |req: &Request| {
            let b: Value = req.body_json().unwrap();
            let mut st = s.lock().unwrap();
            let pr = st.pulls.iter_mut().find(|p| p["number"] == 42).unwrap();
            pr["title"] = b["title"].clone();
            pr["body"] = b["body"].clone();
            ResponseTemplate::new(200).set_body_json(pr.clone())
        })
        .mount(server)
        .await;
}

#[tokio::test]
async fn ci_pull_request_is_created_once_then_updated() {
    let server = github().await;
    let state = Arc::new(Mutex::new(FakeRepo::default()));
    state
        .lock()
        .unwrap()
        .refs
        .insert("main".into(), "aa218f56b14c9653891f9e74264a383fa43fefbd".into());
    mount_fake_repo(&server, state.clone(), 1, 1).await;
    let inst = app(&server).installation(INSTALLATION);
    let mut req = FilePr {
        repo: "octo/hello".into(),
        base_branch: "main".into(),
        branch: "autodevops/ci".into(),
        path: ".github/workflows/ci.yml".into(),
        content: "name: CI\non: [push]\n".into(),
        commit_message: "ci: add workflow".into(),
        title: "Add CI".into(),
        body: "Generated by AutoDevOps".into(),
    };

    let first = inst.upsert_file_pull_request(&req).await.unwrap();
    assert_eq!(first.number, 42);
    assert_eq!(first.html_url, "https://github.com/octo/hello/pull/42");
    assert!(first.created && first.committed);

    req.content.push_str("jobs: {}\n");
    req.title = "Add CI (v2)".into();
    let second = inst.upsert_file_pull_request(&req).await.unwrap();
    assert_eq!(second.number, 42);
    assert!(!second.created && second.committed);

    let third = inst.upsert_file_pull_request(&req).await.unwrap();
    assert!(!third.created && !third.committed);

    {
        let st = state.lock().unwrap();
        assert_eq!(st.commits, 2);
        assert_eq!(st.pulls.len(), 1);
        assert_eq!(st.pulls[0]["title"], "Add CI (v2)");
        let (_, bytes) = &st.files[&("autodevops/ci".to_owned(), ".github/workflows/ci.yml".to_owned())];
        assert_eq!(bytes, req.content.as_bytes());
        assert!(
            !st.files
                .contains_key(&("main".to_owned(), ".github/workflows/ci.yml".to_owned()))
        );
    }

    req.branch = "main".into();
    let err = inst.upsert_file_pull_request(&req).await.unwrap_err();
    assert!(matches!(err, GithubError::InvalidInput(_)), "{err:?}");
}

#[tokio::test]
async fn a_branch_left_by_a_closed_pull_request_is_reset_and_proposed_again() {
    let server = github().await;
    let state = Arc::new(Mutex::new(FakeRepo::default()));
    {
        let mut st = state.lock().unwrap();
        st.refs
            .insert("main".into(), "aa218f56b14c9653891f9e74264a383fa43fefbd".into());
        st.refs.insert(
            "autodevops/ci".into(),
            "0000000000000000000000000000000000000001".into(),
        );
        st.files.insert(
            ("autodevops/ci".into(), ".github/workflows/ci.yml".into()),
            ("f1".into(), b"old: true\n".to_vec()),
        );
        let mut closed = pull_json(41, "Old CI", "", "autodevops/ci", "main");
        closed["state"] = json!("closed");
        st.pulls.push(closed);
    }
    mount_fake_repo(&server, state.clone(), 0, 1).await;
    let inst = app(&server).installation(INSTALLATION);
    let req = FilePr {
        repo: "octo/hello".into(),
        base_branch: "main".into(),
        branch: "autodevops/ci".into(),
        path: ".github/workflows/ci.yml".into(),
        content: "name: CI\n".into(),
        commit_message: "ci: add workflow".into(),
        title: "Add CI".into(),
        body: "Generated by AutoDevOps".into(),
    };
    let out = inst.upsert_file_pull_request(&req).await.unwrap();
    assert!(out.created && out.committed);
    assert_eq!(out.number, 43);
    let st = state.lock().unwrap();
    assert_eq!(st.commits, 1);
    // Reset to the base head before the commit.
    assert_eq!(st.refs["autodevops/ci"], "aa218f56b14c9653891f9e74264a383fa43fefbd");
    let open: Vec<_> = st.pulls.iter().filter(|p| p["state"] == "open").collect();
    assert_eq!(open.len(), 1);
}

// ---------------------------------------------------------------------------------------
// Tree download

fn blob_json(sha: &str, bytes: &[u8]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(60)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    json!({
        "content": wrapped.join("\n"), "encoding": "base64",
        "url": format!("https://api.github.com/repos/octo/hello/git/blobs/{sha}"),
        "sha": sha, "size": bytes.len(), "node_id": "Q29udGVudHM6Y29udGVudHM="
    })
}

#[tokio::test]
async fn download_tree_writes_text_and_skips_the_rest() {
    let server = github().await;
    let files: Vec<(&str, &str, &str, &[u8])> = vec![
        // path, mode, sha, content
        ("src/main.rs", "100644", "b1", b"fn main() {}\n"),
        ("README.md", "100644", "b2", b"# hello\n"),
        ("assets/logo.png", "100644", "b3", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        ("big.txt", "100644", "b4", &[b'a'; 300]),
        ("link", "120000", "b5", b"src/main.rs"),
        ("../evil", "100644", "b6", b"owned"),
        ("a/../../evil2", "100644", "b7", b"owned"),
        ("/abs", "100644", "b8", b"owned"),
        ("scripts/run.sh", "100755", "b9", b"#!/bin/sh\necho hi\n"),
    ];
    let mut tree: Vec<Value> = files
        .iter()
        .map(|(p, mode, sha, bytes)| {
            json!({
                "path": p, "mode": mode, "type": "blob", "sha": sha, "size": bytes.len(),
                "url": format!("https://api.github.com/repos/octo/hello/git/blobs/{sha}")
            })
        })
        .collect();
    tree.push(json!({ "path": "src", "mode": "040000", "type": "tree", "sha": "t1",
                      "url": "https://api.github.com/repos/octo/hello/git/trees/t1" }));
    tree.push(json!({ "path": "vendor/lib", "mode": "160000", "type": "commit", "sha": "c1" }));
    Mock::given(method("GET"))
        .and(path(
            "/repos/octo/hello/git/trees/9fb037999f264ba9a7fc6274d15fa3ae2ab98312",
        ))
        .and(query_param("recursive", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sha": "9fb037999f264ba9a7fc6274d15fa3ae2ab98312",
            "url": "https://api.github.com/repos/octo/hello/trees/9fb037999f264ba9a7fc6274d15fa3ae2ab98312",
            "tree": tree, "truncated": false
        })))
        .expect(1)
        .mount(&server)
        .await;
    let fetched = Arc::new(AtomicUsize::new(0));
    for (_, _, sha, bytes) in &files {
        let f = fetched.clone();
        let body = blob_json(sha, bytes);
        let expected = if ["b1", "b2", "b3", "b9"].contains(sha) { 1 } else { 0 };
        Mock::given(method("GET"))
            .and(path(format!("/repos/octo/hello/git/blobs/{sha}")))
            .respond_with(move |_: &Request| {
                f.fetch_add(1, Ordering::SeqCst);
                ResponseTemplate::new(200).set_body_json(body.clone())
            })
            .expect(expected)
            .mount(&server)
            .await;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("checkout");
    let limits = TreeLimits {
        max_file_bytes: 200,
        max_files: 100,
        max_total_bytes: 10_000,
    };
    let stats = app(&server)
        .installation(INSTALLATION)
        .download_tree("octo/hello", "9fb037999f264ba9a7fc6274d15fa3ae2ab98312", &dest, &limits)
        .await
        .unwrap();
    assert_eq!(stats.files, 3, "{stats:?}");
    assert_eq!(stats.bytes, (13 + 8 + 18) as u64);
    assert_eq!(stats.skipped_binary, 1);
    assert_eq!(stats.skipped_large, 1);
    assert_eq!(stats.skipped_links, 2);
    assert_eq!(stats.rejected_paths, 3);
    assert!(!stats.truncated);
    assert_eq!(
        std::fs::read_to_string(dest.join("src/main.rs")).unwrap(),
        "fn main() {}\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("scripts/run.sh")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    assert!(dest.join("README.md").is_file());
    assert!(!dest.join("assets/logo.png").exists());
    assert!(!dest.join("big.txt").exists());
    assert!(!dest.join("link").exists());
    assert!(!tmp.path().join("evil").exists() && !tmp.path().join("evil2").exists());
    assert_eq!(fetched.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn download_tree_respects_file_and_byte_limits() {
    let server = github().await;
    let tree: Vec<Value> = (0..5)
        .map(|i| json!({ "path": format!("f{i}.txt"), "mode": "100644", "type": "blob", "sha": format!("s{i}"), "size": 10 }))
        .collect();
    Mock::given(method("GET"))
        .and(path("/repos/octo/hello/git/trees/abc"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "sha": "abc", "tree": tree, "truncated": false })),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(wiremock::matchers::path_regex(r"^/repos/octo/hello/git/blobs/s\d$"))
        .respond_with(|req: &Request| {
            let sha = req.url.path().rsplit('/').next().unwrap().to_owned();
            ResponseTemplate::new(200).set_body_json(blob_json(&sha, b"0123456789"))
        })
        .mount(&server)
        .await;
    let inst = app(&server).installation(INSTALLATION);
    let tmp = tempfile::tempdir().unwrap();
    let by_count = TreeLimits {
        max_file_bytes: 100,
        max_files: 2,
        max_total_bytes: 1000,
    };
    let stats = inst
        .download_tree("octo/hello", "abc", &tmp.path().join("a"), &by_count)
        .await
        .unwrap();
    assert_eq!((stats.files, stats.truncated), (2, true));
    let by_bytes = TreeLimits {
        max_file_bytes: 100,
        max_files: 100,
        max_total_bytes: 35,
    };
    let stats = inst
        .download_tree("octo/hello", "abc", &tmp.path().join("b"), &by_bytes)
        .await
        .unwrap();
    assert_eq!((stats.files, stats.bytes, stats.truncated), (3, 30, true));
}

// ---------------------------------------------------------------------------------------
// Other repository calls

#[tokio::test]
async fn files_permissions_and_pr_files() {
    let server = github().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/hello/contents/Cargo.toml"))
        .and(query_param("ref", "main"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "file", "encoding": "base64", "size": 19, "name": "Cargo.toml", "path": "Cargo.toml",
            "content": "W3BhY2thZ2VdCm5hbWUg\nPSAieCIK\n", "sha": "3d21ec53a331a6f037a91c368710b99387d012c1"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/hello/contents/missing.txt"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/hello/collaborators/octocat/permission"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "permission": "write", "role_name": "write",
            "user": { "login": "octocat", "id": 1, "type": "User" }
        })))
        .mount(&server)
        .await;
    let page2 = format!("{}/repos/octo/hello/pulls/7/files?per_page=100&page=2", server.uri());
    Mock::given(method("GET"))
        .and(path("/repos/octo/hello/pulls/7/files"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "sha": "bbcd538c8e72b8c175046e27cc8f907076331401", "filename": "logo.png", "status": "added",
            "additions": 0, "deletions": 0, "changes": 0,
            "blob_url": "https://github.com/octo/hello/blob/x/logo.png",
            "raw_url": "https://github.com/octo/hello/raw/x/logo.png",
            "contents_url": "https://api.github.com/repos/octo/hello/contents/logo.png?ref=x"
        }])))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/repos/octo/hello/pulls/7/files"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", format!("<{page2}>; rel=\"next\"").as_str())
                .set_body_json(json!([{
                    "sha": "bbcd538c8e72b8c175046e27cc8f907076331401", "filename": "file1.txt", "status": "modified",
                    "additions": 103, "deletions": 21, "changes": 124,
                    "blob_url": "https://github.com/octo/hello/blob/x/file1.txt",
                    "raw_url": "https://github.com/octo/hello/raw/x/file1.txt",
                    "contents_url": "https://api.github.com/repos/octo/hello/contents/file1.txt?ref=x",
                    "patch": "@@ -132,7 +132,7 @@ module Test @@ -1000,7 +1000,7 @@ module Test"
                }])),
        )
        .with_priority(2)
        .mount(&server)
        .await;

    let inst = app(&server).installation(INSTALLATION);
    let text = inst.get_file("octo/hello", "Cargo.toml", "main").await.unwrap();
    assert_eq!(text.as_deref(), Some("[package]\nname = \"x\"\n"));
    assert_eq!(inst.get_file("octo/hello", "missing.txt", "main").await.unwrap(), None);
    assert_eq!(
        inst.collaborator_permission("octo/hello", "octocat").await.unwrap(),
        "write"
    );
    let files = inst.pull_request_files("octo/hello", 7).await.unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(
        (files[0].filename.as_str(), files[0].additions, files[0].deletions),
        ("file1.txt", 103, 21)
    );
    assert!(files[0].patch.is_some() && files[1].patch.is_none());
    assert_eq!(files[1].status, "added");
    // Bad repository names never reach GitHub.
    assert!(matches!(
        inst.get_repository("../etc").await,
        Err(GithubError::InvalidInput(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Webhook deliveries (App JWT)

#[tokio::test]
async fn hook_deliveries_are_listed_and_redelivered() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/app/hook/deliveries"))
        .and(query_param("per_page", "50"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {
                "id": 12345678, "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
                "delivered_at": "2019-06-03T00:57:16Z", "redelivery": false, "duration": 0.27,
                "status": "OK", "status_code": 200, "event": "issues", "action": "opened",
                "installation_id": 123, "repository_id": 456, "throttled_at": null
            },
            {
                "id": 123456789, "guid": "0b989ba4-242f-11e5-81e1-c7b6966d2516",
                "delivered_at": "2019-06-04T00:57:16Z", "redelivery": true, "duration": 0.28,
                "status": "Invalid HTTP Response: 502", "status_code": 502, "event": "ping", "action": null,
                "installation_id": null, "repository_id": null
            }
        ])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/app/hook/deliveries/12345678/attempts"))
        .respond_with(ResponseTemplate::new(202).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let gh = app(&server);
    let list = gh.list_hook_deliveries(50).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, 12345678);
    assert_eq!(list[0].event, "issues");
    assert_eq!(list[0].action.as_deref(), Some("opened"));
    assert_eq!((list[0].installation_id, list[0].repository_id), (Some(123), Some(456)));
    assert_eq!(list[0].delivered_at.to_rfc3339(), "2019-06-03T00:57:16+00:00");
    assert!(list[1].redelivery && list[1].status_code == 502 && list[1].action.is_none());
    gh.redeliver(12345678).await.unwrap();
    for r in received(&server).await {
        assert_app_jwt(&r);
    }
}

// ---------------------------------------------------------------------------------------
// Redis throttle (real Redis)

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn redis_conn() -> redis::aio::ConnectionManager {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).expect("redis url");
    redis::aio::ConnectionManager::new(client).await.unwrap_or_else(|e| {
        panic!(
            "Redis at {url} is not reachable ({e}): start the test services with `ops/test.sh` \
             (it starts or installs Redis), or set TEST_REDIS_URL"
        )
    })
}

#[tokio::test]
async fn redis_throttle_limits_per_minute_across_handles() {
    let conn = redis_conn().await;
    let prefix = format!("t{}:", uuid::Uuid::now_v7().simple());
    let limits = ThrottleLimits {
        per_minute: 5,
        per_hour: 500,
        max_wait: Duration::from_secs(2),
        ..ThrottleLimits::default()
    };
    // Two throttles on one prefix behave like two worker processes.
    let a = RedisThrottle::new(conn.clone(), prefix.clone(), limits);
    let b = RedisThrottle::new(conn.clone(), prefix.clone(), limits);
    for i in 0..5 {
        let t = if i % 2 == 0 { &a } else { &b };
        t.acquire(INSTALLATION).await.unwrap();
    }
    let start = Instant::now();
    match b.acquire(INSTALLATION).await {
        Err(GithubError::RateLimited { retry_after }) => {
            assert!(
                retry_after > Duration::from_secs(50) && retry_after <= Duration::from_secs(60),
                "{retry_after:?}"
            )
        }
        other => panic!("6th acquire: expected RateLimited, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(1));
    // Another installation is not affected.
    a.acquire(INSTALLATION + 1).await.unwrap();

    let (m, h) = a.keys(INSTALLATION);
    assert_eq!(m, format!("{prefix}gh:throttle:{INSTALLATION}:m"));
    let mut c = conn.clone();
    let counted: (u32, u32) = redis::pipe().get(&m).get(&h).query_async(&mut c).await.unwrap();
    assert_eq!(counted, (5, 5));

    // A window about to reopen: the acquire waits for it instead of failing.
    let (m2, _) = a.keys(INSTALLATION + 2);
    let _: () = redis::cmd("SET")
        .arg(&m2)
        .arg(5)
        .arg("PX")
        .arg(1200)
        .query_async(&mut c)
        .await
        .unwrap();
    let start = Instant::now();
    a.acquire(INSTALLATION + 2).await.unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(1000), "waited only {waited:?}");
    let now: u32 = redis::cmd("GET").arg(&m2).query_async(&mut c).await.unwrap();
    assert_eq!(now, 1);
    drop_keys(&conn, &prefix).await;
}

async fn zcard(conn: &redis::aio::ConnectionManager, key: &str) -> u32 {
    let mut c = conn.clone();
    redis::cmd("ZCARD").arg(key).query_async(&mut c).await.unwrap()
}

async fn drop_keys(conn: &redis::aio::ConnectionManager, prefix: &str) {
    let mut c = conn.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut c)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(keys).query_async(&mut c).await.unwrap();
    }
}

#[tokio::test]
async fn redis_in_flight_slots_are_shared_by_every_worker() {
    let conn = redis_conn().await;
    let prefix = format!("t{}:", uuid::Uuid::now_v7().simple());
    let limits = ThrottleLimits {
        max_in_flight: 3,
        max_wait: Duration::from_millis(500),
        ..ThrottleLimits::default()
    };
    // Two throttles on one prefix behave like two worker processes.
    let a = RedisThrottle::new(conn.clone(), prefix.clone(), limits);
    let b = RedisThrottle::new(conn.clone(), prefix.clone(), limits);
    let lease = Duration::from_secs(30);
    let first = a.enter(INSTALLATION, lease).await.unwrap();
    let _second = b.enter(INSTALLATION, lease).await.unwrap();
    let _third = a.enter(INSTALLATION, lease).await.unwrap();
    let key = a.in_flight_key(INSTALLATION);
    assert_eq!(key, format!("{prefix}gh:inflight:{INSTALLATION}"));
    assert_eq!(zcard(&conn, &key).await, 3);

    // All three taken: a fourth waits, and gives up after max_wait as a rate limit.
    match b.enter(INSTALLATION, lease).await {
        Err(GithubError::RateLimited { .. }) => {}
        other => panic!("4th slot: expected RateLimited, got {:?}", other.map(|_| ())),
    }
    // Another installation has its own slots.
    let _other = b.enter(INSTALLATION + 1, lease).await.unwrap();

    // A slot given back is taken by the next waiter.
    let waiter = tokio::spawn(async move { b.enter(INSTALLATION, lease).await.map(|_| ()) });
    drop(first);
    waiter.await.unwrap().expect("the freed slot is taken");

    // A process that dies holding slots: they lapse after their lease.
    let short = Duration::from_millis(300);
    let c = RedisThrottle::new(conn.clone(), prefix.clone(), limits);
    let lost: Vec<_> = [
        c.enter(INSTALLATION + 2, short).await.unwrap(),
        c.enter(INSTALLATION + 2, short).await.unwrap(),
        c.enter(INSTALLATION + 2, short).await.unwrap(),
    ]
    .into();
    std::mem::forget(lost);
    c.enter(INSTALLATION + 2, short)
        .await
        .expect("the dead process's slots lapsed");
    drop_keys(&conn, &prefix).await;
}

#[tokio::test]
async fn requests_of_one_installation_stay_within_its_in_flight_cap_across_processes() {
    let server = github().await;
    get_repo()
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(repo_json(1, "octo/hello"))
                .set_delay(Duration::from_millis(150)),
        )
        .mount(&server)
        .await;
    let conn = redis_conn().await;
    let prefix = format!("t{}:", uuid::Uuid::now_v7().simple());
    let limits = ThrottleLimits {
        max_in_flight: 2,
        ..ThrottleLimits::default()
    };
    let throttle = |p: &str| Arc::new(RedisThrottle::new(conn.clone(), p.to_owned(), limits));
    // Two "worker processes": separate clients, one Redis.
    let apps = [
        app(&server).with_throttle(throttle(&prefix)),
        app(&server).with_throttle(throttle(&prefix)),
    ];
    let key = RedisThrottle::new(conn.clone(), prefix.clone(), limits).in_flight_key(INSTALLATION);
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let inst = apps[i % 2].installation(INSTALLATION);
            tokio::spawn(async move { inst.get_repository("octo/hello").await.map(|r| r.full_name) })
        })
        .collect();
    let mut most = 0;
    while calls.iter().any(|c| !c.is_finished()) {
        most = most.max(zcard(&conn, &key).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), "octo/hello");
    }
    assert!(most <= 2, "{most} requests of the installation were in flight at once");
    assert!(most >= 1, "the slots were never seen taken");
    // Every slot is given back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while zcard(&conn, &key).await > 0 {
        assert!(Instant::now() < deadline, "slots were not given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop_keys(&conn, &prefix).await;
}

// ---------------------------------------------------------------------------------------
// Configuration

fn vars(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    move |k| map.get(k).cloned()
}

#[test]
fn config_errors_are_listed_together_without_the_key() {
    let secret_body = "c2VjcmV0LWtleS1tYXRlcmlhbC10aGF0LW11c3Qtbm90LWxlYWs=";
    let bad_pem = format!("-----BEGIN RSA PRIVATE KEY-----\n{secret_body}\n-----END RSA PRIVATE KEY-----\n");
    let get = vars(&[
        ("GITHUB_APP_ID", "12x".into()),
        ("GITHUB_APP_PRIVATE_KEY", bad_pem),
        ("GITHUB_API_URL", "not a url".into()),
        ("GITHUB_TIMEOUT_SECS", "0".into()),
    ]);
    let errors = GithubConfig::from_vars(&get).unwrap_err();
    let names: Vec<&str> = errors.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "GITHUB_APP_ID",
            "GITHUB_APP_PRIVATE_KEY",
            "GITHUB_API_URL",
            "GITHUB_TIMEOUT_SECS"
        ]
    );
    for (_, msg) in &errors {
        assert!(
            !msg.contains(secret_body) && !msg.contains("c2VjcmV0"),
            "key leaked: {msg}"
        );
    }

    // The id without any key.
    let errors = GithubConfig::from_vars(&vars(&[("GITHUB_APP_ID", "1".into())])).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "GITHUB_APP_PRIVATE_KEY");

    // An unreadable key file, and a key without the id.
    let errors =
        GithubConfig::from_vars(&vars(&[("GITHUB_APP_PRIVATE_KEY_PATH", "/nonexistent/key.pem".into())])).unwrap_err();
    let names: Vec<&str> = errors.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, ["GITHUB_APP_ID", "GITHUB_APP_PRIVATE_KEY_PATH"]);

    // A real PEM that is not a key GitHub could use (garbage inside valid PEM armour).
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{secret_body}\n-----END PRIVATE KEY-----\n");
    let errors =
        GithubConfig::from_vars(&vars(&[("GITHUB_APP_ID", "1".into()), ("GITHUB_APP_PRIVATE_KEY", pem)])).unwrap_err();
    assert_eq!(errors[0].0, "GITHUB_APP_PRIVATE_KEY");
    assert!(!errors[0].1.contains(secret_body));
}

#[test]
fn config_accepts_escaped_and_file_keys() {
    let escaped = test_key().pem.replace('\n', "\\n");
    let cfg = GithubConfig::from_vars(&vars(&[
        ("GITHUB_APP_ID", "424242".into()),
        ("GITHUB_APP_PRIVATE_KEY", escaped),
        ("GITHUB_API_URL", "https://ghe.example.com/api/v3".into()),
        ("GITHUB_TIMEOUT_SECS", "20".into()),
    ]))
    .unwrap()
    .expect("configured");
    assert_eq!(cfg.app_id, 424242);
    assert_eq!(cfg.api_url.as_str(), "https://ghe.example.com/api/v3/");
    assert_eq!(cfg.timeout, Duration::from_secs(20));
    assert!(!format!("{cfg:?}").contains("PRIVATE KEY"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.pem");
    std::fs::write(&file, &test_key().pem).unwrap();
    let cfg = GithubConfig::from_vars(&vars(&[
        ("GITHUB_APP_ID", "7".into()),
        ("GITHUB_APP_PRIVATE_KEY_PATH", file.display().to_string()),
    ]))
    .unwrap()
    .expect("configured");
    assert_eq!(cfg.api_url.as_str(), "https://api.github.com/");
    assert_eq!(cfg.timeout, Duration::from_secs(10));
    assert!(GithubApp::new(cfg, reqwest::Client::new()).is_ok());
}

// ---------------------------------------------------------------------------------------
// Metrics

#[test]
fn rate_limit_remaining_is_recorded_per_installation() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let server = github().await;
            get_repo()
                .respond_with(
                    ResponseTemplate::new(200)
                        .insert_header("x-ratelimit-limit", "5000")
                        .insert_header("x-ratelimit-remaining", "4987")
                        .insert_header("x-ratelimit-used", "13")
                        .set_body_json(repo_json(1, "octo/hello")),
                )
                .mount(&server)
                .await;
            app(&server)
                .installation(INSTALLATION)
                .get_repository("octo/hello")
                .await
                .unwrap();
        })
    });
    let text = handle.render();
    assert!(
        text.contains(&format!(
            "autodevops_github_rate_limit_remaining{{installation=\"{INSTALLATION}\"}} 4987"
        )),
        "{text}"
    );
}
