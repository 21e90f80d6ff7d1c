//! Test harness: runs the real `autodevops` binary, makes fixture repositories, and gives
//! each test its own Postgres database and Redis key prefix.
#![allow(dead_code)]

pub mod fake_github;
pub mod records;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_autodevops");

/// Variables that must not leak from the developer's shell into a test's process.
const SCRUBBED: &[&str] = &[
    "PORT",
    "DATABASE_URL",
    "REDIS_URL",
    "API_KEYS",
    "BIND_ADDR",
    "QUEUE_PREFIX",
    "ALLOW_LOCAL_PATHS",
    "LOG_FORMAT",
    "WORKER_CONCURRENCY",
    "WORKER_HEALTH_ADDR",
    "GITHUB_WEBHOOK_SECRET",
    "SENTRY_DSN",
    "SENTRY_ENVIRONMENT",
    "GITHUB_APP_ID",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_APP_PRIVATE_KEY_PATH",
    // Model providers: a developer's real keys must never reach a test's process.
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_MODEL",
    "OPENAI_API_VERSION",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "GEMINI_API_KEY",
    "GEMINI_BASE_URL",
    "GEMINI_MODEL",
    "DEEPSEEK_API_KEY",
    "DEEPSEEK_BASE_URL",
    "DEEPSEEK_MODEL",
    "OLLAMA_URL",
    "OLLAMA_MODEL",
    "OLLAMA_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_DEPLOYMENT",
    "MODEL_TIMEOUT_SECS",
    "MODEL_BREAKER_FAILURES",
    "MODEL_BREAKER_COOLDOWN_SECS",
    "MODELS_CONFIG",
    "TENANT_DAILY_TOKENS",
    "TENANT_DAILY_COST_USD",
    "TENANT_BUDGETS",
    "BUDGET_EXHAUSTED",
];

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A command for the binary with a scrubbed environment, run in `dir`.
pub fn command(dir: &Path, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for k in SCRUBBED.iter().copied() {
        cmd.env_remove(k);
    }
    cmd.env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A running `autodevops` process, killed when dropped. Its stderr goes to a log file that
/// is printed if the test fails while the process is alive.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Proc {
        let log = dir.join(format!(
            "{}-{}.log",
            args.join("-").replace([':', '.', '/'], "_"),
            fastrand::u32(..)
        ));
        let file = std::fs::File::create(&log).unwrap();
        let child = command(dir, env)
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn autodevops");
        Proc { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no cleanup, like a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status (within `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- log of {} ----\n{}",
                self.log.display(),
                tail(&self.log_text(), 8000)
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
    &s[start..]
}

/// A client for one API base URL.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub key: Option<String>,
}

impl Api {
    pub fn new(port: u16) -> Api {
        Api {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            key: None,
        }
    }

    /// The same API, calling with `key` (a tenant's API key).
    pub fn with_key(&self, key: &str) -> Api {
        Api {
            key: Some(key.to_owned()),
            ..self.clone()
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(Duration::from_secs(20));
        match &self.key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.req(reqwest::Method::GET, path).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let resp = self
            .req(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    /// Waits until /health answers (the process has bound its port).
    pub async fn wait_healthy(&self, proc: &mut Proc) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = proc.child.try_wait() {
                panic!("autodevops exited early with {st}:\n{}", proc.log_text());
            }
            if let Ok(r) = self.http.get(format!("{}/health", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("autodevops did not become healthy in 60 s:\n{}", proc.log_text());
    }

    /// Submits a job and returns its id (asserting 202).
    pub async fn submit(&self, kind: &str, path: &Path) -> String {
        let (status, body) = self.post("/v1/jobs", json!({ "kind": kind, "path": path })).await;
        assert_eq!(status, 202, "submit {kind}: {body}");
        assert_eq!(body["status"], "queued");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Polls a job until it is terminal; returns its final view.
    pub async fn wait_done(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, job) = self.get(&format!("/v1/jobs/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if ["succeeded", "dead", "cancelled"].contains(&job["status"].as_str().unwrap_or_default()) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} not finished in {timeout:?}: {job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Writes `files` (path, content) under `root`.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
}

/// A small polyglot repository: a Rust crate at the root and a Node app in `web/`.
pub fn fixture_repo(root: &Path) {
    write_files(
        root,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            ("Cargo.lock", "version = 3\n"),
            ("src/main.rs", "fn main() {\n    println!(\"hello\");\n}\n"),
            ("src/lib.rs", "pub fn add(a: i32, b: i32) -> i32 { a + b }\n"),
            (
                "tests/add.rs",
                "#[test]\nfn adds() { assert_eq!(demo::add(1, 2), 3); }\n",
            ),
            (
                "web/package.json",
                r#"{"name":"web","version":"1.0.0","scripts":{"build":"tsc","test":"jest"},"devDependencies":{"jest":"^29.0.0"}}"#,
            ),
            ("web/src/index.ts", "export const x: number = 1;\n"),
            (
                "Dockerfile",
                "FROM rust:1.80\nCOPY . .\nRUN cargo build --release\nCMD [\"./target/release/demo\"]\n",
            ),
            ("README.md", "# demo\n"),
        ],
    );
}

/// `n` separate fixture repositories under `root` (distinct paths are distinct work: the
/// same kind on the same path while it waits is folded into one job).
pub fn fixture_repos(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let dir = root.join(format!("repo-{i}"));
            fixture_repo(&dir);
            dir
        })
        .collect()
}

/// Connection details of the test services, from TEST_DATABASE_URL / TEST_REDIS_URL or the
/// local defaults. A missing service fails the test with how to fix it — never a skip.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

const SERVICES_HINT: &str = "start the test services with `ops/test.sh` (it starts or installs PostgreSQL and Redis), \
or set TEST_DATABASE_URL / TEST_REDIS_URL";

/// Creates a fresh Postgres database for one test and returns its URL.
pub async fn fresh_postgres() -> String {
    use sea_orm::{ConnectionTrait, Database};
    let admin = pg_admin_url();
    let conn = Database::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is not reachable ({e}): {SERVICES_HINT}"));
    let name = format!("autodevops_test_{}", uuid::Uuid::now_v7().simple());
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let mut url = url_without_db(&admin);
    url.push_str(&name);
    url
}

fn url_without_db(url: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("database URL has a path");
    format!("{base}/")
}

/// Checks Redis answers and returns a unique key prefix for one test.
pub async fn fresh_redis_prefix() -> String {
    let url = redis_url();
    let client = redis::Client::open(url.as_str()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} is not reachable ({e}): {SERVICES_HINT}"));
    let _: String = redis::cmd("PING").query_async(&mut conn).await.expect("PING");
    format!("t{}:", uuid::Uuid::now_v7().simple())
}

/// A redis-server owned by one test (on its own port), so the test can stop and restart it.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let mut r = OwnRedis {
            port: free_port(),
            child: None,
            dir: tempfile::tempdir().unwrap(),
        };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (empty: no persistence) and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "local",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-server ({e}): {SERVICES_HINT}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start on {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server: everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `n` repositories that each take a while to analyse: one large text file of `mb` MiB,
/// hard-linked into every repository (no extra disk), plus a manifest. Set MAX_FILE_BYTES
/// above the size so the analyser reads it.
pub fn slow_repos(root: &Path, n: usize, mb: usize) -> Vec<PathBuf> {
    let big = root.join("big.txt");
    let line = format!("{}\n", "lorem ipsum dolor sit amet ".repeat(3));
    let mut content = String::with_capacity(mb << 20);
    while content.len() < mb << 20 {
        content.push_str(&line);
    }
    std::fs::write(&big, content).unwrap();
    (0..n)
        .map(|i| {
            let dir = root.join(format!("slow-{i}"));
            write_files(
                &dir,
                &[("Cargo.toml", "[package]\nname = \"slow\"\nversion = \"0.1.0\"\n")],
            );
            std::fs::hard_link(&big, dir.join("notes.txt")).unwrap();
            dir
        })
        .collect()
}

/// Polls `GET /v1/jobs?status=…` until `pred` holds for some listed job; returns that job.
pub async fn wait_for_job(api: &Api, status: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, list) = api.get(&format!("/v1/jobs?status={status}&limit=200")).await;
        if let Some(job) = list["jobs"].as_array().and_then(|jobs| jobs.iter().find(|j| pred(j))) {
            return job.clone();
        }
        assert!(Instant::now() < deadline, "no {status} job matched within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Api {
    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Runs `migrate`, then starts `api` (no workers: submitted jobs stay queued) on `port`.
pub async fn start_api_only(work: &Path, env: &[(&str, String)], port: u16) -> (Proc, Api) {
    assert!(
        command(work, env).arg("migrate").status().unwrap().success(),
        "migrate failed"
    );
    let mut proc = Proc::spawn(work, &["api"], env);
    let api = Api::new(port);
    api.wait_healthy(&mut proc).await;
    (proc, api)
}

/// `X-Hub-Signature-256` of `body` under `secret`, as GitHub computes it.
pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts a signed webhook delivery with every header GitHub sends.
pub async fn deliver(api: &Api, secret: &str, event: &str, delivery: &str, payload: &Value) -> (u16, Value) {
    let body = payload.to_string().into_bytes();
    let resp = api
        .http
        .post(format!("{}/github/webhook", api.base))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(secret, &body))
        .body(body)
        .send()
        .await
        .expect("POST /github/webhook");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The audited calls of a job, read from the embedded database in `work`.
pub async fn model_calls(work: &std::path::Path, job_id: &str) -> Vec<shared::db::model_call::Model> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use shared::db::model_call::{Column, Entity};
    let url = format!("sqlite://{}", work.join("autodevops.db").display());
    let db = shared::db::Db::connect(&shared::config::DatabaseUrl::Sqlite(url))
        .await
        .unwrap();
    Entity::find()
        .filter(Column::JobId.eq(job_id))
        .all(&db.conn)
        .await
        .unwrap()
}

/// A fresh Postgres database and a fresh SQLite file (kept alive by the returned directory),
/// both migrated: for tests of the storage layer on both backends.
pub async fn migrated_databases() -> Vec<(Option<tempfile::TempDir>, shared::db::Db)> {
    use migration::{Migrator, MigratorTrait};
    use shared::config::DatabaseUrl;
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("t.db").display());
    let urls = [
        (None, DatabaseUrl::Postgres(fresh_postgres().await)),
        (Some(dir), DatabaseUrl::Sqlite(sqlite)),
    ];
    let mut out = Vec::new();
    for (dir, url) in urls {
        let db = shared::db::Db::connect(&url).await.expect("connect");
        Migrator::up(&db.conn, None).await.expect("migrate");
        out.push((dir, db));
    }
    out
}

/// Every model provider request to `server` fails with 503 "overloaded" (a provider outage).
pub async fn mount_overloaded_provider(server: &wiremock::MockServer) {
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(503).set_body_json(json!({"error": {"message": "overloaded"}})))
        .mount(server)
        .await;
}
