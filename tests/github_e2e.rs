//! The GitHub App end to end, through the real binary against a stateful fake GitHub: signed
//! deliveries (GitHub's published example payloads, pointed at the fake's repository) become
//! jobs; workers fetch the commit's tree through the REST API and report back with a check run,
//! one sticky pull-request comment and a CI pull request — idempotently, across token expiry,
//! secondary rate limits, dead jobs, superseded pushes and failed deliveries. With a model
//! provider configured (wiremock, real chat.completion shapes) a pull request is reviewed from
//! its redacted diff and the CI pull request carries the model's notes on the workflow.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::fake_github::FakeGithub;
use common::{Api, Proc, deliver, free_port};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "webhook-secret-for-tests";
const REPO: &str = "acme/widgets";
const INSTALLATION: i64 = 4242;

const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        "[package]\nname = \"widgets\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    ),
    ("Cargo.lock", "version = 3\n"),
    ("src/lib.rs", "pub fn add(a: i32, b: i32) -> i32 { a + b }\n"),
    ("README.md", "# widgets\n"),
];

/// A throwaway RSA key for the App (generated per run; never a committed secret).
fn app_key(dir: &Path) -> String {
    let path = dir.join("app.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .output()
        .expect("openssl is needed to make a test key (ops/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(path).unwrap()
}

fn fixture(rel: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(rel);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Points a published example payload at the fake's installation and repository.
fn at_our_repo(mut p: Value) -> Value {
    p["installation"] = json!({ "id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uNDI0Mg==" });
    p["repository"]["full_name"] = json!(REPO);
    p["repository"]["name"] = json!("widgets");
    p["repository"]["owner"]["login"] = json!("acme");
    p["repository"]["default_branch"] = json!("main");
    p["sender"]["type"] = json!("User");
    p
}

fn pull_request(action: &str, number: i64, sha: &str) -> Value {
    let mut p = at_our_repo(fixture("pull_request/01-opened.json"));
    p["action"] = json!(action);
    p["number"] = json!(number);
    p["pull_request"]["number"] = json!(number);
    p["pull_request"]["draft"] = json!(false);
    p["pull_request"]["head"]["sha"] = json!(sha);
    p["pull_request"]["head"]["ref"] = json!("feature");
    p["pull_request"]["base"]["ref"] = json!("main");
    p
}

fn comment(number: i64, body: &str, association: &str) -> Value {
    let mut p = at_our_repo(fixture("issue_comment/01-created.json"));
    p["issue"]["number"] = json!(number);
    p["issue"]["pull_request"] = json!({ "url": format!("https://api.github.com/repos/{REPO}/pulls/{number}") });
    p["comment"]["body"] = json!(body);
    p["comment"]["author_association"] = json!(association);
    p
}

struct Stack {
    _work: tempfile::TempDir,
    proc: Proc,
    api: Api,
    fake: FakeGithub,
}

async fn start(extra: &[(&str, &str)]) -> Stack {
    let work = tempfile::tempdir().unwrap();
    let fake = FakeGithub::start().await;
    fake.add_installation(INSTALLATION, "acme");
    fake.add_repo(INSTALLATION, REPO, "main");
    let port = free_port();
    let mut env = vec![
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("GITHUB_WEBHOOK_SECRET", SECRET.to_owned()),
        ("GITHUB_APP_ID", "4242".to_owned()),
        ("GITHUB_APP_PRIVATE_KEY", app_key(work.path())),
        ("GITHUB_API_URL", fake.url()),
        ("RELAY_INTERVAL_MS", "100".to_owned()),
        ("JOB_LEASE_SECS", "3".to_owned()),
        ("JOB_MAX_ATTEMPTS", "3".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let mut proc = Proc::spawn(work.path(), &[], &env);
    let api = Api::new(port);
    api.wait_healthy(&mut proc).await;
    Stack {
        _work: work,
        proc,
        api,
        fake,
    }
}

impl Stack {
    /// Delivers an event and returns the ids of the jobs it created (asserting 202).
    async fn deliver(&self, event: &str, delivery: &str, payload: &Value) -> Vec<String> {
        let (status, body) = deliver(&self.api, SECRET, event, delivery, payload).await;
        assert_eq!(status, 202, "{event} {delivery}: {body}");
        body["jobs"]
            .as_array()
            .map(|a| a.iter().map(|j| j.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    async fn done(&mut self, id: &str) -> Value {
        let job = self.api.wait_done(id, Duration::from_secs(60)).await;
        if job["status"] != "succeeded" {
            eprintln!("{}", self.proc.log_text());
        }
        job
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_requests_get_a_check_run_and_one_updated_comment() {
    let mut s = start(&[]).await;
    s.fake.commit(REPO, "main", FILES);
    let mut files = FILES.to_vec();
    files.push(("Dockerfile", "FROM debian:12\nRUN apt-get update\nCMD [\"/app\"]\n"));
    let head1 = s.fake.commit(REPO, "feature", &files);
    s.fake.open_pull(REPO, 1, "feature", "main");
    // GitHub creates the check run and posts the comment, but both answers are lost (a 502
    // from its gateway): the worker finds them instead of creating a second of each.
    s.fake.set_lost_answers("POST", r"^/repos/[^/]+/[^/]+/check-runs$", 1);
    s.fake.set_lost_answers("POST", r"/issues/1/comments$", 1);

    let ids = s
        .deliver("pull_request", "pr-1", &pull_request("opened", 1, &head1))
        .await;
    assert_eq!(ids.len(), 1);
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1, "the lost answers were settled in place: {job}");
    assert_eq!(job["sha"], head1.as_str());
    assert_eq!(job["result"]["source"]["repo"], REPO);
    assert!(
        job["result"]["report"]["stacks"].as_array().unwrap().len() >= 2,
        "{job}"
    );
    assert!(job["result"]["github"]["tree"]["files"].as_u64().unwrap() >= 5, "{job}");

    let runs = s.fake.check_runs(REPO);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (runs[0].name.as_str(), runs[0].head_sha.as_str()),
        ("AutoDevOps", head1.as_str())
    );
    assert_eq!(runs[0].status, "completed");
    assert!(runs[0].conclusion.is_some());
    assert_eq!(runs[0].external_id.as_deref(), Some(ids[0].as_str()));
    let comments = s.fake.comments(REPO, 1);
    assert_eq!(comments.len(), 1);
    assert!(comments[0].body.contains("<!-- autodevops:pr-report -->"));
    assert!(comments[0].body.contains(&head1[..7]), "{}", comments[0].body);

    // The same delivery again (GitHub redelivers): no second job.
    let (status, body) = deliver(
        &s.api,
        SECRET,
        "pull_request",
        "pr-1",
        &pull_request("opened", 1, &head1),
    )
    .await;
    assert_eq!((status, body["duplicate"].as_bool()), (200, Some(true)));

    // A new push while the installation token has expired and GitHub throttles check runs.
    files.push(("src/main.rs", "fn main() {}\n"));
    files.push((".autodevops.yml", "featurez:\n  analysis: false\n"));
    let head2 = s.fake.commit(REPO, "feature", &files);
    s.fake.expire_tokens();
    s.fake
        .set_failures(r"^/repos/[^/]+/[^/]+/check-runs$", vec![(403, Some(1))]);
    let exchanges = s.fake.token_exchanges();
    let ids2 = s
        .deliver("pull_request", "pr-2", &pull_request("synchronize", 1, &head2))
        .await;
    let job2 = s.done(&ids2[0]).await;
    assert_eq!(job2["status"], "succeeded", "{job2}");
    assert_eq!(
        job2["attempts"], 1,
        "the 401 and the 403 were absorbed by the client: {job2}"
    );
    assert!(
        s.fake.token_exchanges() > exchanges,
        "a new token was fetched after the 401"
    );

    let runs = s.fake.check_runs(REPO);
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.status == "completed"), "{runs:?}");
    let comments = s.fake.comments(REPO, 1);
    assert_eq!(comments.len(), 1, "the one comment is updated, not added to");
    assert!(comments[0].body.contains(&head2[..7]));
    // The invalid .autodevops.yml is reported (with its line) and the defaults applied.
    assert!(comments[0].body.contains("featurez"), "{}", comments[0].body);
    assert!(
        job2["result"]["github"]["config_problems"][0]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{job2}"
    );
    assert_eq!(s.fake.comment_posts(), 1);

    // The worker cannot fetch the tree (GitHub says 404): dead at once, check run failed.
    let head3 = s.fake.commit(REPO, "feature", FILES);
    s.fake.set_failures("/git/trees/", vec![(404, None)]);
    let ids3 = s
        .deliver("pull_request", "pr-3", &pull_request("synchronize", 1, &head3))
        .await;
    let job3 = s.done(&ids3[0]).await;
    assert_eq!(job3["status"], "dead", "{job3}");
    assert_eq!(job3["attempts"], 1, "a 404 is permanent");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let runs = s.fake.check_runs(REPO);
        let run = runs
            .iter()
            .find(|r| r.head_sha == head3)
            .expect("check run of the dead job");
        if run.status == "completed" {
            assert_eq!(run.conclusion.as_deref(), Some("failure"));
            let summary = run.summary.clone().unwrap_or_default();
            assert!(summary.contains("404"), "{summary}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead job's check run was left {}",
            run.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comment_commands_open_one_ci_pull_request_and_answer_help() {
    let mut s = start(&[]).await;
    s.fake.commit(REPO, "main", FILES);
    s.fake.commit(REPO, "feature", FILES);
    s.fake.open_pull(REPO, 1, "feature", "main");

    // Someone without write access: recorded and ignored.
    let (status, body) = deliver(
        &s.api,
        SECRET,
        "issue_comment",
        "c-0",
        &comment(1, "/autodevops ci", "NONE"),
    )
    .await;
    assert_eq!((status, body["outcome"].as_str()), (202, Some("ignored")), "{body}");
    assert!(body["reason"].as_str().unwrap().contains("write access"), "{body}");

    // GitHub opens the CI pull request but the answer is lost: it is found, not opened twice.
    s.fake.set_lost_answers("POST", r"^/repos/[^/]+/[^/]+/pulls$", 1);
    let ids = s
        .deliver("issue_comment", "c-1", &comment(1, "/autodevops ci", "OWNER"))
        .await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(job["kind"], "ci_gen");
    let pulls = s.fake.pulls(REPO);
    let ci: Vec<_> = pulls.iter().filter(|p| p.head_ref == "autodevops/ci").collect();
    assert_eq!(ci.len(), 1, "{pulls:?}");
    assert_eq!(ci[0].base_ref, "main");
    let path = job["result"]["workflow"]["path"].as_str().unwrap();
    let content = s
        .fake
        .file_on_branch(REPO, "autodevops/ci", path)
        .expect("workflow committed");
    assert!(content.contains("cargo"), "{content}");
    assert_eq!(
        s.fake.file_on_branch(REPO, "main", path),
        None,
        "never a push to the default branch"
    );

    // The repository gains a Node project and a config asking for its own runners: the second
    // run updates the same pull request.
    let mut files = FILES.to_vec();
    files.push((".autodevops.yml", "ci:\n  runs_on: self-hosted\n"));
    files.push(("web/package.json", r#"{"name":"web","scripts":{"test":"node --test"}}"#));
    files.push(("web/package-lock.json", "{}"));
    s.fake.commit(REPO, "main", &files);
    let ids = s
        .deliver("issue_comment", "c-2", &comment(1, "/autodevops ci", "MEMBER"))
        .await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["github"]["created"], false, "{job}");
    let ci: Vec<_> = s
        .fake
        .pulls(REPO)
        .into_iter()
        .filter(|p| p.head_ref == "autodevops/ci")
        .collect();
    assert_eq!(ci.len(), 1, "never a second pull request");
    let content = s.fake.file_on_branch(REPO, "autodevops/ci", path).unwrap();
    assert!(content.contains("npm") || content.contains("node"), "{content}");
    assert!(content.contains("runs-on: \"self-hosted\""), "{content}");

    // Help is answered on the pull request.
    let ids = s
        .deliver("issue_comment", "c-3", &comment(1, "/autodevops help", "COLLABORATOR"))
        .await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let comments = s.fake.comments(REPO, 1);
    assert!(
        comments.iter().any(|c| c.body.contains("/autodevops analyze")),
        "{comments:?}"
    );

    // `/autodevops analyze` on the pull request analyses its current head.
    let ids = s
        .deliver("issue_comment", "c-4", &comment(1, "/autodevops analyze", "OWNER"))
        .await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["sha"], s.fake.branch_head(REPO, "feature").unwrap().as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installations_sync_and_rest_calls_use_them() {
    let mut s = start(&[]).await;
    let head = s.fake.commit(REPO, "main", FILES);
    s.fake.add_repo(INSTALLATION, "acme/gadgets", "trunk");

    // Before the installation is known, REST cannot place the repository.
    let (status, body) = s
        .api
        .post("/v1/jobs", json!({ "kind": "analysis", "repo": REPO }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("not_installed")),
        "{body}"
    );

    let mut install = fixture("installation/02-created.json");
    install["installation"]["id"] = json!(INSTALLATION);
    let ids = s.deliver("installation", "i-1", &install).await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["kind"], "sync");
    assert_eq!(job["result"]["repositories"], 2, "{job}");

    let (status, body) = s
        .api
        .post("/v1/jobs", json!({ "kind": "analysis", "repo": REPO }))
        .await;
    assert_eq!(status, 202, "{body}");
    let job = s.done(body["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["sha"], head.as_str(), "the default branch's head");
    assert_eq!(s.fake.check_runs(REPO).len(), 1);

    // Uninstalling marks the mirror removed: REST no longer places the repository.
    let mut uninstall = fixture("installation/01-deleted.json");
    uninstall["installation"]["id"] = json!(INSTALLATION);
    let ids = s.deliver("installation", "i-2", &uninstall).await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let (status, _) = s
        .api
        .post("/v1/jobs", json!({ "kind": "analysis", "repo": REPO }))
        .await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_pull_requests_are_analysed_where_the_repository_says_so() {
    let mut s = start(&[]).await;
    s.fake.commit(REPO, "main", FILES);
    let head1 = s.fake.commit(REPO, "feature", FILES);
    s.fake.open_pull(REPO, 3, "feature", "main");
    let draft = |action: &str, sha: &str| {
        let mut p = pull_request(action, 3, sha);
        p["pull_request"]["draft"] = json!(true);
        p
    };

    // By default (ANALYZE_DRAFT_PRS unset, no draft_prs in the repository) a draft is skipped.
    let ids = s.deliver("pull_request", "d-1", &draft("opened", &head1)).await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        job["result"]["skipped"].as_str().unwrap().contains("draft_prs"),
        "{job}"
    );
    assert!(s.fake.check_runs(REPO).is_empty());
    assert!(s.fake.comments(REPO, 3).is_empty());

    // The repository opts in: the next push of the draft is analysed.
    let mut files = FILES.to_vec();
    files.push((".autodevops.yml", "draft_prs: true\n"));
    let head2 = s.fake.commit(REPO, "feature", &files);
    let ids = s.deliver("pull_request", "d-2", &draft("synchronize", &head2)).await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(job["result"]["skipped"].is_null(), "{job}");
    let runs = s.fake.check_runs(REPO);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].head_sha, head2);
    assert_eq!(s.fake.comments(REPO, 3).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_key_reaches_only_its_own_accounts_repositories() {
    const ACME_KEY: &str = "acme-key-0123456789abcdef";
    const GLOBEX_KEY: &str = "globex-key-0123456789abcdef";
    const OPERATOR_KEY: &str = "operator-key-0123456789abcdef";
    let keys = format!("acme:{ACME_KEY},globex:{GLOBEX_KEY},{OPERATOR_KEY}");
    let s = start(&[("API_KEYS", keys.as_str())]).await;
    let head = s.fake.commit(REPO, "main", FILES);
    let mut install = fixture("installation/02-created.json");
    install["installation"]["id"] = json!(INSTALLATION);
    s.deliver("installation", "i-1", &install).await;

    let (acme, globex) = (s.api.with_key(ACME_KEY), s.api.with_key(GLOBEX_KEY));
    let analyse = json!({ "kind": "analysis", "repo": REPO });
    // The sync mirrors the installation's repositories; until then nobody can place acme's.
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        let (status, body) = acme.post("/v1/jobs", analyse.clone()).await;
        match status {
            202 => break body["id"].as_str().unwrap().to_owned(),
            422 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => panic!("{status} {body}\n{}", s.proc.log_text()),
        }
    };
    // Another tenant's key does not reach it, and is told nothing more than for a missing one.
    let (status, body) = globex.post("/v1/jobs", analyse.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("not_installed")),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("account globex"),
        "{body}"
    );
    let (status, missing) = globex
        .post("/v1/jobs", json!({ "kind": "analysis", "repo": "globex/nothing-here" }))
        .await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (422, Some("not_installed"))
    );

    let job = acme.wait_done(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["sha"], head.as_str());
    let (status, _) = globex.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(status, 404, "acme's job is not globex's to read");
    // The operator's (bare) key reads every tenant's jobs, the installation's sync included.
    let operator = s.api.with_key(OPERATOR_KEY);
    let (status, all) = operator.get("/v1/jobs").await;
    assert_eq!(status, 200, "{all}");
    let tenants: Vec<&str> = all["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| j["tenant"].as_str())
        .collect();
    assert!(tenants.contains(&"acme"), "{all}");
    assert!(tenants.contains(&"installation:4242"), "{all}");
    let (status, listed) = acme.get("/v1/jobs").await;
    assert_eq!(status, 200);
    assert!(
        listed["jobs"].as_array().unwrap().iter().all(|j| j["tenant"] == "acme"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_rapid_pushes_leave_one_analysis_and_failed_deliveries_are_redelivered() {
    let mut s = start(&[("GITHUB_REDELIVERY_INTERVAL_SECS", "1")]).await;
    s.fake.commit(REPO, "main", FILES);
    s.fake.commit(REPO, "feature", FILES);
    s.fake.open_pull(REPO, 5, "feature", "main");
    s.fake.add_hook_delivery(9001, "lost-while-api-was-down", "push", 502);
    s.fake.add_hook_delivery(9002, "delivered-fine", "push", 202);

    let mut shas = Vec::new();
    for i in 0..10 {
        let mut files = FILES.to_vec();
        let body = format!("pub const N: u32 = {i};\n");
        files.push(("src/n.rs", body.as_str()));
        shas.push(s.fake.commit(REPO, "feature", &files));
    }
    let mut ids = Vec::new();
    for (i, sha) in shas.iter().enumerate() {
        ids.extend(
            s.deliver(
                "pull_request",
                &format!("sync-{i}"),
                &pull_request("synchronize", 5, sha),
            )
            .await,
        );
    }
    assert_eq!(ids.len(), 10);
    let mut succeeded = Vec::new();
    for id in &ids {
        let job = s.done(id).await;
        match job["status"].as_str().unwrap() {
            "succeeded" => succeeded.push(job["sha"].as_str().unwrap().to_owned()),
            "cancelled" => assert!(job["superseded_by"].is_string(), "{job}"),
            other => panic!("job {id} ended {other}: {job}"),
        }
    }
    assert_eq!(succeeded, vec![shas[9].clone()], "one analysis, of the last commit");
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.fake.check_runs(REPO).iter().any(|r| r.status != "completed") {
        assert!(Instant::now() < deadline, "a superseded check run was left in progress");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.fake.comments(REPO, 5).len(), 1);

    // The redelivery task asks GitHub again for the failed delivery, and only for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.fake.redelivered().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no redelivery requested:\n{}",
            s.proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(s.fake.redelivered(), vec![9001]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_reports_github_reachability_without_failing_on_it() {
    let s = start(&[]).await;
    let (status, ready) = s.api.get("/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["checks"]["github"]["status"], "up", "{ready}");
    assert!(ready["checks"]["github"]["latency_ms"].is_number(), "{ready}");
    assert_eq!(ready["checks"]["webhooks"]["status"], "up", "{ready}");

    // GitHub unreachable: the API stays in service (deliveries still arrive) but says so.
    let closed = format!("http://127.0.0.1:{}/", free_port());
    let s = start(&[("GITHUB_API_URL", closed.as_str())]).await;
    let (status, ready) = s.api.get("/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["github"]["status"], "down", "{ready}");
    assert!(
        ready["checks"]["github"]["error"].as_str().unwrap().contains("GitHub"),
        "{ready}"
    );
}

/// Every published example payload, signed and posted as it is: 2xx, and exactly the outcome
/// and jobs the routing table gives it (`shared::webhook::route`, tested per fixture in
/// shared/tests/webhook_fixtures.rs); the same deliveries again are duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_github_example_payload_is_accepted_or_ignored_with_a_reason() {
    let s = start(&[]).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks");
    let policy = shared::webhook::RoutingPolicy::default();
    let mut posted = 0;
    for event_dir in std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()) {
        if !event_dir.is_dir() {
            continue;
        }
        let event = event_dir.file_name().unwrap().to_str().unwrap().to_owned();
        for file in std::fs::read_dir(&event_dir).unwrap().map(|e| e.unwrap().path()) {
            let payload: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let delivery = format!("{event}-{name}");
            let expected = shared::webhook::route(&event, &payload, &policy);
            let (status, body) = deliver(&s.api, SECRET, &event, &delivery, &payload).await;
            assert_eq!(status, 202, "{event}/{name}: {body}");
            assert_eq!(body["outcome"], expected.outcome(), "{event}/{name}: {body}");
            match &expected {
                shared::webhook::Route::Accept { jobs, reply } => {
                    let n = jobs.len() + usize::from(reply.is_some());
                    assert_eq!(body["jobs"].as_array().unwrap().len(), n, "{event}/{name}: {body}");
                }
                shared::webhook::Route::Ignore { reason } => {
                    assert_eq!(body["reason"].as_str(), Some(reason.as_str()), "{event}/{name}");
                    assert!(body["jobs"].as_array().unwrap().is_empty());
                }
            }
            let (status, again) = deliver(&s.api, SECRET, &event, &delivery, &payload).await;
            assert_eq!(
                (status, again["duplicate"].as_bool()),
                (200, Some(true)),
                "{event}/{name}"
            );
            posted += 1;
        }
    }
    assert!(posted >= 60, "only {posted} fixtures found under {}", root.display());
}

/// A GitHub token planted in a pull request's changed file; it must never reach a model.
const PLANTED_TOKEN: &str = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";

/// An OpenAI-compatible chat.completion whose message is `content` as JSON text.
fn completion(content: &Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-abc", "object": "chat.completion", "created": 1_764_000_000, "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 80, "total_tokens": 980}
    }))
}

/// A model server answering every chat completion with `answer`.
async fn model_answering(answer: &Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/chat/completions"))
        .respond_with(completion(answer))
        .mount(&server)
        .await;
    server
}

async fn start_with_model(server: &MockServer) -> Stack {
    let uri = server.uri();
    start(&[
        ("OPENAI_API_KEY", "sk-test-0123456789abcdefghij"),
        ("OPENAI_BASE_URL", uri.as_str()),
        ("OPENAI_MODEL", "test-model"),
        ("MODEL_TIMEOUT_SECS", "5"),
    ])
    .await
}

/// The bodies of the chat requests the model server received.
async fn chat_bodies(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_is_reviewed_from_its_redacted_diff() {
    let review = json!({
        "summary": "Adds `mul` and a deploy script that embeds a credential.",
        "findings": [{"severity": "high", "title": "Credential in deploy.sh", "detail": "Use a secret.", "path": "deploy.sh"}],
        "recommendations": ["Move the token to an Actions secret"]
    });
    let server = model_answering(&review).await;
    let mut s = start_with_model(&server).await;
    s.fake.commit(REPO, "main", FILES);
    let lib = "pub fn add(a: i32, b: i32) -> i32 { a + b }\npub fn mul(a: i32, b: i32) -> i32 { a * b }\n";
    let deploy = format!("#!/bin/sh\ncurl -H \"Authorization: token {PLANTED_TOKEN}\" https://api.github.com/user\n");
    let mut files = FILES.to_vec();
    files.retain(|(p, _)| *p != "src/lib.rs");
    files.push(("src/lib.rs", lib));
    files.push(("deploy.sh", &deploy));
    let head = s.fake.commit(REPO, "feature", &files);
    s.fake.open_pull(REPO, 3, "feature", "main");

    let ids = s
        .deliver("pull_request", "pr-review-1", &pull_request("opened", 3, &head))
        .await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = &job["result"];
    assert_eq!(result["chain"], "pr_review", "{result}");
    assert_eq!(result["model"], "openai_compatible/test-model", "{result}");
    assert_eq!(result["review"], review);
    let included: Vec<&str> = result["context"]["included"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        &included[..2],
        ["diff:deploy.sh", "diff:src/lib.rs"],
        "the diffs lead: {included:?}"
    );
    assert!(included.contains(&"Cargo.toml"), "{included:?}");
    assert!(result["context"]["redactions"].as_u64().unwrap() >= 2, "{result}");

    let bodies = chat_bodies(&server).await;
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert!(
        body.contains("+pub fn mul(a: i32, b: i32) -> i32 { a * b }"),
        "the diff hunk is sent: {body}"
    );
    assert!(!body.contains(PLANTED_TOKEN), "a secret in the diff left the machine");
    assert!(body.contains("[REDACTED GITHUB TOKEN]"));
    assert!(body.contains("untrusted data"), "the prompt marks the diff as data");

    let comments = s.fake.comments(REPO, 3);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("Adds `mul` and a deploy script"),
        "{}",
        comments[0].body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ci_pull_request_carries_the_models_notes_on_the_workflow() {
    let notes = json!({
        "summary": "The workflow builds and tests the crate.",
        "notes": [{"severity": "medium", "note": "Cache ~/.cargo/registry between runs"}]
    });
    let server = model_answering(&notes).await;
    let mut s = start_with_model(&server).await;
    s.fake.commit(REPO, "main", FILES);
    s.fake.commit(REPO, "feature", FILES);
    s.fake.open_pull(REPO, 1, "feature", "main");

    let ids = s
        .deliver("issue_comment", "ci-1", &comment(1, "/autodevops ci", "OWNER"))
        .await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = &job["result"];
    assert_eq!(result["chain"], "ci_gen", "{result}");
    assert_eq!(result["review"], notes);
    assert_eq!(result["cache"]["hit"], false);
    let workflow = result["workflow"]["content"].as_str().unwrap().to_owned();
    let ci = |s: &Stack| {
        s.fake
            .pulls(REPO)
            .into_iter()
            .find(|p| p.head_ref == "autodevops/ci")
            .expect("the CI pull request")
    };
    let body = ci(&s).body.unwrap_or_default();
    assert!(body.contains("Cache ~/.cargo/registry between runs"), "{body}");
    assert!(body.contains("openai_compatible/test-model"), "{body}");
    let sent = chat_bodies(&server).await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains("<workflow>"), "the workflow is shown to the model");

    // The same question again: answered from the cache, no provider call, same notes.
    let ids = s
        .deliver("issue_comment", "ci-2", &comment(1, "/autodevops ci", "OWNER"))
        .await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["cache"]["hit"], true, "{job}");
    assert_eq!(chat_bodies(&server).await.len(), 1);

    // A new commit while the provider fails: the same deterministic workflow, no model notes,
    // the fallback recorded.
    server.reset().await;
    common::mount_overloaded_provider(&server).await;
    let mut files = FILES.to_vec();
    files.push(("docs/notes.md", "more docs\n"));
    s.fake.commit(REPO, "main", &files);
    let ids = s
        .deliver("issue_comment", "ci-3", &comment(1, "/autodevops ci", "OWNER"))
        .await;
    let job = s.done(&ids[0]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let result = &job["result"];
    assert_eq!(result["model"], "offline", "{result}");
    assert!(result.get("review").is_none(), "{result}");
    assert_eq!(result["fallbacks"].as_array().unwrap().len(), 1, "{result}");
    assert_eq!(result["workflow"]["content"].as_str().unwrap(), workflow);
    let body = ci(&s).body.unwrap_or_default();
    assert!(
        !body.contains("Model review") && !body.contains("Cache ~/.cargo"),
        "{body}"
    );
}
