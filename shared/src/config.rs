//! Configuration from the environment (12-factor), validated once at start.
//!
//! Every problem is collected and reported at once; secrets are wrapped in
//! [`SecretString`] so they never reach a log line or an error message.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::domain::JobKind;

/// The default embedded database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://autodevops.db";
/// The default listen address: loopback only.
pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";

/// Where jobs and their state live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(u) | DatabaseUrl::Postgres(u) => u,
        }
    }
    pub fn is_sqlite(&self) -> bool {
        matches!(self, DatabaseUrl::Sqlite(_))
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// One configured API key: the owner (tenant) it belongs to and the secret.
#[derive(Clone)]
pub struct ApiKey {
    pub owner: String,
    pub key: SecretString,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("owner", &self.owner)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Validated configuration shared by every role.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    /// `None`: the embedded SQLite-backed queue (in the database file).
    pub redis_url: Option<SecretString>,
    pub bind_addr: SocketAddr,
    /// HTTP_WORKERS: threads serving HTTP (actix workers); default one per CPU.
    pub http_workers: usize,
    pub api_keys: Vec<ApiKey>,
    pub allow_local_paths: bool,
    pub log_format: LogFormat,
    /// Prefix of every queue's Redis keys (and SQLite queue names): lets many deployments
    /// (or tests) share one Redis.
    pub queue_prefix: String,
    /// Jobs run at once by each queue's worker in one process.
    pub worker_concurrency: usize,
    /// Default attempts and timeout; each queue may override them.
    pub max_attempts: u32,
    pub job_timeout: Duration,
    /// `ANALYSIS_MAX_ATTEMPTS`, `CI_GEN_TIMEOUT_SECS`, …: per-queue overrides.
    pub per_queue: HashMap<JobKind, QueueLimits>,
    /// A running job's lease; renewed while it runs, so a dead worker's jobs return this soon.
    pub job_lease: Duration,
    /// How long SIGTERM waits for in-flight jobs before handing them back.
    pub shutdown_grace: Duration,
    /// Interval of the outbox relay and lease reaper.
    pub relay_interval: Duration,
    /// A job handed to the queue this long ago that has not started is pushed again (same
    /// push key: a no-op unless the queue lost the message).
    pub repush_after: Duration,
    /// How often the queue's records of finished tasks are deleted.
    pub cleanup_interval: Duration,
    pub max_file_bytes: u64,
    /// GITHUB_WEBHOOK_SECRET: one or more comma-separated secrets; any one verifies a
    /// delivery, so the secret can be rotated without dropping deliveries.
    pub webhook_secrets: Vec<SecretString>,
    /// SENTRY_DSN (validated); errors are reported there when set.
    pub sentry_dsn: Option<SecretString>,
    /// SENTRY_ENVIRONMENT, default `production`.
    pub sentry_environment: String,
    /// The GitHub App (GITHUB_APP_ID + private key); `None` when not configured.
    pub github: Option<crate::github::GithubConfig>,
    /// Which webhook events become jobs (allow/block lists, drafts, the App's own bot).
    pub routing: crate::webhook::RoutingPolicy,
    /// How often workers ask GitHub to redeliver failed webhook deliveries (0 = never).
    pub redelivery_interval: Duration,
    /// A worker with room that takes no job while jobs have waited this long restarts its
    /// queue consumers and re-pushes the waiting jobs (0 = no watchdog).
    pub stall_after: Duration,
}

/// A role that serves the API, and the `--bind` address it was given (over BIND_ADDR).
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpRole {
    pub bind: Option<SocketAddr>,
}

/// Attempts and timeout of one queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimits {
    pub max_attempts: u32,
    pub timeout: Duration,
}

impl Config {
    /// The limits of `kind`'s queue.
    pub fn limits(&self, kind: JobKind) -> QueueLimits {
        self.per_queue.get(&kind).copied().unwrap_or(QueueLimits {
            max_attempts: self.max_attempts,
            timeout: self.job_timeout,
        })
    }

    /// True without REDIS_URL: SQLite queue, local paths allowed.
    pub fn is_embedded(&self) -> bool {
        self.redis_url.is_none()
    }

    /// Whether `path` job sources are accepted.
    pub fn local_paths_allowed(&self) -> bool {
        self.is_embedded() || self.allow_local_paths
    }

    pub fn redis_url(&self) -> Option<&str> {
        self.redis_url.as_ref().map(|s| s.expose_secret())
    }

    /// Reads the process environment for a role; `http` describes the API it serves, if any.
    pub fn from_env(http: Option<HttpRole>) -> Result<Config, ConfigErrors> {
        Self::from_vars_for(std::env::vars(), http)
    }

    /// Reads configuration for a role serving the API (tests pass their own variables).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigErrors> {
        Self::from_vars_for(vars, Some(HttpRole::default()))
    }

    /// Reads configuration from the given variables. With `http`, the API's bind address is
    /// checked against the API keys (an open API binds to loopback only).
    pub fn from_vars_for(
        vars: impl IntoIterator<Item = (String, String)>,
        http: Option<HttpRole>,
    ) -> Result<Config, ConfigErrors> {
        let env: HashMap<String, String> = vars.into_iter().filter(|(_, v)| !v.trim().is_empty()).collect();
        let mut errs = ConfigErrors::default();
        let get = |k: &str| env.get(k).map(|v| v.trim().to_owned());

        let database_url = parse_database_url(get("DATABASE_URL").as_deref().unwrap_or(DEFAULT_DATABASE_URL))
            .map_err(|m| errs.push("DATABASE_URL", m))
            .ok();
        let redis_url = get("REDIS_URL").and_then(|u| match validate_redis_url(&u) {
            Ok(()) => Some(SecretString::from(u)),
            Err(m) => {
                errs.push("REDIS_URL", m);
                None
            }
        });
        // Platforms such as Railway and Heroku announce the port in PORT.
        let default_bind = match get("PORT").map(|p| p.parse::<u16>()) {
            Some(Ok(port)) => SocketAddr::from(([0, 0, 0, 0], port)),
            Some(Err(_)) => {
                errs.push("PORT", "must be a port number");
                DEFAULT_BIND_ADDR.parse().expect("valid default")
            }
            None => DEFAULT_BIND_ADDR.parse().expect("valid default"),
        };
        let bind_addr = parse_or(&mut errs, &get, "BIND_ADDR", default_bind, |v| {
            SocketAddr::from_str(v).map_err(|_| "must be host:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080".to_owned())
        });
        let api_keys = get("API_KEYS")
            .map(|v| {
                parse_api_keys(&v)
                    .map_err(|m| errs.push("API_KEYS", m))
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let allow_local_paths = parse_or(&mut errs, &get, "ALLOW_LOCAL_PATHS", false, parse_bool);
        let log_format = parse_or(&mut errs, &get, "LOG_FORMAT", LogFormat::Pretty, |v| match v {
            "json" => Ok(LogFormat::Json),
            "pretty" | "text" => Ok(LogFormat::Pretty),
            _ => Err("must be json or pretty".to_owned()),
        });
        let queue_prefix = get("QUEUE_PREFIX").unwrap_or_default();
        if !queue_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c))
        {
            errs.push("QUEUE_PREFIX", "may contain only letters, digits and - _ : .");
        }
        let worker_concurrency = parse_or(&mut errs, &get, "WORKER_CONCURRENCY", 4usize, |v| {
            parse_ranged(v, 1, 256)
        });
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let http_workers = parse_or(&mut errs, &get, "HTTP_WORKERS", cpus, |v| parse_ranged(v, 1, 256));
        let max_attempts = parse_or(&mut errs, &get, "JOB_MAX_ATTEMPTS", 5u32, |v| parse_ranged(v, 1, 100));
        let job_timeout = parse_or(&mut errs, &get, "JOB_TIMEOUT_SECS", 600u64, |v| {
            parse_ranged(v, 1, 86_400)
        });
        let shutdown_grace = parse_or(&mut errs, &get, "SHUTDOWN_GRACE_SECS", 30u64, |v| {
            parse_ranged(v, 0, 3_600)
        });
        let relay_ms = parse_or(&mut errs, &get, "RELAY_INTERVAL_MS", 1000u64, |v| {
            parse_ranged(v, 50, 600_000)
        });
        let mut per_queue = HashMap::new();
        for kind in JobKind::ALL {
            let upper = kind.as_str().to_ascii_uppercase();
            let attempts = parse_or(&mut errs, &get, &format!("{upper}_MAX_ATTEMPTS"), max_attempts, |v| {
                parse_ranged(v, 1, 100)
            });
            let timeout = parse_or(&mut errs, &get, &format!("{upper}_TIMEOUT_SECS"), job_timeout, |v| {
                parse_ranged(v, 1, 86_400)
            });
            per_queue.insert(
                kind,
                QueueLimits {
                    max_attempts: attempts,
                    timeout: Duration::from_secs(timeout),
                },
            );
        }
        let job_lease = parse_or(&mut errs, &get, "JOB_LEASE_SECS", 30u64, |v| parse_ranged(v, 2, 3_600));
        let repush_after = parse_or(&mut errs, &get, "REPUSH_AFTER_SECS", 60u64, |v| {
            parse_ranged(v, 1, 86_400)
        });
        let cleanup_secs = parse_or(&mut errs, &get, "CLEANUP_INTERVAL_SECS", 300u64, |v| {
            parse_ranged(v, 1, 86_400)
        });
        let webhook_secrets: Vec<SecretString> = get("GITHUB_WEBHOOK_SECRET")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| SecretString::from(s.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let sentry_dsn = get("SENTRY_DSN").and_then(|v| match v.parse::<sentry::types::Dsn>() {
            Ok(_) => Some(SecretString::from(v)),
            Err(_) => {
                errs.push("SENTRY_DSN", "is not a Sentry DSN (https://<key>@<host>/<project>)");
                None
            }
        });
        let max_file_bytes = parse_or(&mut errs, &get, "MAX_FILE_BYTES", 1_048_576u64, |v| {
            parse_ranged(v, 1, 1 << 30)
        });

        let lookup = |k: &str| get(k);
        let github = crate::github::GithubConfig::from_vars(&lookup).unwrap_or_else(|problems| {
            for (var, m) in problems {
                errs.push(var, m);
            }
            None
        });
        let routing = crate::webhook::RoutingPolicy::from_vars(&lookup).unwrap_or_else(|problems| {
            for (var, m) in problems {
                errs.push(var, m);
            }
            crate::webhook::RoutingPolicy::default()
        });
        let stall_secs = parse_or(&mut errs, &get, "WORKER_STALL_SECS", 120u64, |v| {
            match parse_ranged(v, 0, 86_400)? {
                1 => Err("must be 0 (off) or at least 2".to_owned()),
                n => Ok(n),
            }
        });
        let redelivery_secs = parse_or(&mut errs, &get, "GITHUB_REDELIVERY_INTERVAL_SECS", 600u64, |v| {
            parse_ranged(v, 0, 86_400)
        });

        if let Some(db) = &database_url
            && redis_url.is_none()
            && !db.is_sqlite()
        {
            errs.push(
                "REDIS_URL",
                "is required with a Postgres DATABASE_URL (the embedded queue lives in the SQLite file)",
            );
        }
        let bind_addr = http.and_then(|h| h.bind).unwrap_or(bind_addr);
        if http.is_some() && api_keys.is_empty() && !bind_addr.ip().is_loopback() {
            errs.push(
                "API_KEYS",
                format!(
                    "must be set to bind {bind_addr}: without API keys the API is open and only binds to loopback (127.0.0.1)"
                ),
            );
        }

        match (errs.is_empty(), database_url) {
            (true, Some(database_url)) => Ok(Config {
                database_url,
                redis_url,
                bind_addr,
                http_workers,
                api_keys,
                allow_local_paths,
                log_format,
                queue_prefix,
                worker_concurrency,
                max_attempts,
                job_timeout: Duration::from_secs(job_timeout),
                per_queue,
                job_lease: Duration::from_secs(job_lease),
                shutdown_grace: Duration::from_secs(shutdown_grace),
                relay_interval: Duration::from_millis(relay_ms),
                repush_after: Duration::from_secs(repush_after),
                cleanup_interval: Duration::from_secs(cleanup_secs),
                max_file_bytes,
                webhook_secrets,
                sentry_dsn,
                sentry_environment: get("SENTRY_ENVIRONMENT").unwrap_or_else(|| "production".to_owned()),
                github,
                routing,
                redelivery_interval: Duration::from_secs(redelivery_secs),
                stall_after: Duration::from_secs(stall_secs),
            }),
            _ => Err(errs),
        }
    }
}

fn parse_or<T>(
    errs: &mut ConfigErrors,
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> T {
    match get(key) {
        None => default,
        Some(v) => parse(&v).unwrap_or_else(|m| {
            errs.push(key, m);
            default
        }),
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    }
}

fn parse_ranged<T>(v: &str, min: T, max: T) -> Result<T, String>
where
    T: FromStr + PartialOrd + fmt::Display + Copy,
{
    match v.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("must be a whole number from {min} to {max}")),
    }
}

/// Accepts `sqlite://file`, `sqlite::memory:`, `postgres://…` / `postgresql://…`.
pub fn parse_database_url(url: &str) -> Result<DatabaseUrl, String> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        "sqlite" => {
            let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
            if rest.is_empty() {
                return Err("sqlite URL names no file: use sqlite://autodevops.db".to_owned());
            }
            Ok(DatabaseUrl::Sqlite(url.to_owned()))
        }
        "postgres" | "postgresql" => {
            let parsed = url::Url::parse(url).map_err(|e| format!("is not a valid postgres URL ({e})"))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err("postgres URL has no host: use postgres://user@host:5432/dbname".to_owned());
            }
            Ok(DatabaseUrl::Postgres(url.to_owned()))
        }
        _ => Err("must start with sqlite:// or postgres:// (e.g. postgres://user@host:5432/autodevops)".to_owned()),
    }
}

fn validate_redis_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("is not a valid URL ({e}); use redis://host:6379"))?;
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err("must start with redis:// or rediss://".to_owned());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("has no host: use redis://host:6379".to_owned());
    }
    Ok(())
}

/// The owner of a bare API key: the operator's key, not limited to one GitHub account.
pub const OPERATOR_KEY_OWNER: &str = "default";

/// `API_KEYS`: comma-separated `owner:key` pairs or bare keys (owner [`OPERATOR_KEY_OWNER`]).
fn parse_api_keys(v: &str) -> Result<Vec<ApiKey>, String> {
    let mut keys = Vec::new();
    for (i, entry) in v.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
        let (owner, key) = match entry.split_once(':') {
            Some((o, k)) => (o.trim().to_owned(), k.trim()),
            None => (OPERATOR_KEY_OWNER.to_owned(), entry),
        };
        if key.len() < 16 {
            // Never echo the key itself: name its position.
            return Err(format!("key #{} is shorter than 16 characters", i + 1));
        }
        if owner.is_empty() {
            return Err(format!("key #{} has an empty owner before ':'", i + 1));
        }
        keys.push(ApiKey {
            owner,
            key: SecretString::from(key.to_owned()),
        });
    }
    Ok(keys)
}

/// Every configuration problem found, printed one per line.
#[derive(Debug, Default)]
pub struct ConfigErrors(pub Vec<(String, String)>);

impl ConfigErrors {
    fn push(&mut self, var: &str, msg: impl Into<String>) {
        self.0.push((var.to_owned(), msg.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem{}):",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )?;
        for (var, msg) in &self.0 {
            writeln!(f, "  - {var}: {msg}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
        Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_are_embedded_on_loopback() {
        let c = cfg(&[]).unwrap();
        assert!(c.is_embedded());
        assert_eq!(c.database_url, DatabaseUrl::Sqlite(DEFAULT_DATABASE_URL.into()));
        assert_eq!(c.bind_addr.to_string(), DEFAULT_BIND_ADDR);
        assert!(c.local_paths_allowed());
    }

    #[test]
    fn every_problem_is_reported_at_once_without_secrets() {
        let err = cfg(&[
            ("DATABASE_URL", "mysql://nope"),
            ("REDIS_URL", "http://secret-host-pw@x"),
            ("BIND_ADDR", "0.0.0.0:8080"),
            ("WORKER_CONCURRENCY", "0"),
        ])
        .unwrap_err();
        let vars: Vec<_> = err.0.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(vars, ["DATABASE_URL", "REDIS_URL", "WORKER_CONCURRENCY", "API_KEYS"]);
        assert!(!err.to_string().contains("secret-host-pw"));
    }

    #[test]
    fn api_keys_parse_owner_and_never_debug_print() {
        let c = cfg(&[
            ("API_KEYS", "acme:0123456789abcdef0123, fedcba9876543210fedc"),
            ("BIND_ADDR", "0.0.0.0:9000"),
        ])
        .unwrap();
        assert_eq!(c.api_keys.len(), 2);
        assert_eq!(c.api_keys[0].owner, "acme");
        assert_eq!(c.api_keys[1].owner, "default");
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
        let short = cfg(&[("API_KEYS", "tiny-secret")]).unwrap_err();
        assert!(!short.to_string().contains("tiny-secret"));
    }

    #[test]
    fn only_roles_serving_the_api_need_keys_to_bind_publicly() {
        let vars = || [("BIND_ADDR".to_owned(), "0.0.0.0:8080".to_owned())];
        assert!(
            Config::from_vars_for(vars(), None).is_ok(),
            "a worker or migrate binds nothing"
        );
        let err = Config::from_vars_for(vars(), Some(HttpRole::default())).unwrap_err();
        assert_eq!(err.0[0].0, "API_KEYS");
        let public = "0.0.0.0:9000".parse().ok();
        let err = Config::from_vars_for([], Some(HttpRole { bind: public })).unwrap_err();
        assert!(err.to_string().contains("0.0.0.0:9000"), "{err}");
    }

    #[test]
    fn postgres_needs_redis() {
        let err = cfg(&[("DATABASE_URL", "postgres://postgres@127.0.0.1/x")]).unwrap_err();
        assert_eq!(err.0[0].0, "REDIS_URL");
        let ok = cfg(&[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1/x"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
        ])
        .unwrap();
        assert!(!ok.is_embedded());
        assert!(!ok.local_paths_allowed());
    }
}
