//! The quota guard: per-tenant daily token and cost budgets, and per-model RPM/TPM limits, shared
//! by every worker process.
//!
//! - Budgets (env): `TENANT_DAILY_TOKENS`, `TENANT_DAILY_COST_USD` are every tenant's defaults
//!   (unset = unlimited); `TENANT_BUDGETS="acme=tokens:200000;cost:5,12345=cost:0.5"` overrides
//!   them per tenant (`unlimited` lifts a limit). A tenant is an API key's owner or a GitHub
//!   installation id (the job's `tenant`); jobs without one count as `anonymous`.
//! - Before a call the estimated input plus the maximum output tokens, and their cost, are
//!   reserved; after it the reservation is settled to the real usage. With Redis both are one Lua
//!   script each on `{QUEUE_PREFIX}models:quota:{tenant}:{YYYYMMDD}` (UTC; the key expires after its
//!   day), so N workers together never reserve past a budget. Embedded (no Redis): in process.
//! - Per model: a governor limiter in each process, plus (with Redis) per-minute counters
//!   `{QUEUE_PREFIX}models:rate:{provider}/{model}:{minute}` checked and bumped by Lua.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use redis::aio::ConnectionManager;

use super::config::ConfigProblems;
use super::policy::{ModelSpec, Policy};

/// The tenant of jobs submitted without one (an open API).
pub const ANONYMOUS: &str = "anonymous";

/// One tenant's daily limits; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Budget {
    pub tokens: Option<u64>,
    pub cost_usd: Option<f64>,
}

/// Defaults and per-tenant overrides.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Budgets {
    pub default: Budget,
    pub tenants: HashMap<String, Budget>,
    /// BUDGET_EXHAUSTED=defer: a job whose tenant's budget is spent waits for the daily reset
    /// instead of falling back to the offline analyser (`offline`, the default).
    pub defer_when_spent: bool,
}

impl Budgets {
    /// Reads TENANT_DAILY_TOKENS, TENANT_DAILY_COST_USD and TENANT_BUDGETS; every problem is reported.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Budgets, ConfigProblems> {
        let mut problems = ConfigProblems::new();
        let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let mut default = Budget::default();
        if let Some(v) = get("TENANT_DAILY_TOKENS") {
            match parse_tokens(v) {
                Ok(t) => default.tokens = t,
                Err(e) => problems.push(("TENANT_DAILY_TOKENS".into(), e)),
            }
        }
        if let Some(v) = get("TENANT_DAILY_COST_USD") {
            match parse_cost(v) {
                Ok(c) => default.cost_usd = c,
                Err(e) => problems.push(("TENANT_DAILY_COST_USD".into(), e)),
            }
        }
        let mut tenants = HashMap::new();
        for entry in get("TENANT_BUDGETS").into_iter().flat_map(|v| v.split(',')) {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            match parse_tenant(entry, default) {
                Ok((tenant, budget)) => {
                    tenants.insert(tenant, budget);
                }
                Err(e) => problems.push(("TENANT_BUDGETS".into(), e)),
            }
        }
        let defer_when_spent = match get("BUDGET_EXHAUSTED") {
            None | Some("offline") => false,
            Some("defer") => true,
            Some(other) => {
                problems.push(("BUDGET_EXHAUSTED".into(), format!("{other:?} is not offline or defer")));
                false
            }
        };
        if problems.is_empty() {
            Ok(Budgets {
                default,
                tenants,
                defer_when_spent,
            })
        } else {
            Err(problems)
        }
    }

    pub fn for_tenant(&self, tenant: &str) -> Budget {
        self.tenants.get(tenant).copied().unwrap_or(self.default)
    }
}

fn parse_tokens(v: &str) -> Result<Option<u64>, String> {
    match v {
        "unlimited" => Ok(None),
        _ => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{v:?} is not a whole number of tokens (or `unlimited`)")),
    }
}

fn parse_cost(v: &str) -> Result<Option<f64>, String> {
    match v {
        "unlimited" => Ok(None),
        _ => match v.parse::<f64>() {
            Ok(c) if c.is_finite() && c >= 0.0 => Ok(Some(c)),
            _ => Err(format!("{v:?} is not an amount of USD of 0 or more (or `unlimited`)")),
        },
    }
}

/// `tenant=tokens:N;cost:X`, starting from the defaults.
fn parse_tenant(entry: &str, default: Budget) -> Result<(String, Budget), String> {
    let (tenant, limits) = entry
        .split_once('=')
        .ok_or_else(|| format!("{entry:?}: expected tenant=tokens:N;cost:USD"))?;
    let tenant = tenant.trim();
    if tenant.is_empty() {
        return Err(format!("{entry:?}: the tenant is empty"));
    }
    let mut budget = default;
    for limit in limits.split(';').map(str::trim).filter(|l| !l.is_empty()) {
        match limit.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("tokens", v)) => budget.tokens = parse_tokens(v).map_err(|e| format!("{tenant}: {e}"))?,
            Some(("cost", v)) => budget.cost_usd = parse_cost(v).map_err(|e| format!("{tenant}: {e}"))?,
            _ => return Err(format!("{tenant}: {limit:?} is not tokens:N or cost:USD")),
        }
    }
    Ok((tenant.to_owned(), budget))
}

/// A tenant's budget is spent (or too little is left for the call).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct Exhausted {
    pub reason: String,
    /// Until the budget resets (next UTC midnight).
    pub retry_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("budget exhausted: {0}")]
    Exhausted(Exhausted),
    /// Redis did not answer: no call is made (the guard fails closed).
    #[error("quota store unavailable: {0}")]
    Store(String),
}

/// What a call has reserved; hand it back to [`QuotaGuard::settle`].
#[derive(Debug)]
#[must_use = "a reservation is settled after the call"]
pub struct Reservation {
    tenant: String,
    day: String,
    tokens: u64,
    micros: u64,
}

const RESERVE: &str = r#"
local t = tonumber(redis.call('HGET', KEYS[1], 'tokens') or '0')
local c = tonumber(redis.call('HGET', KEYS[1], 'micros') or '0')
local want_t, want_c = tonumber(ARGV[1]), tonumber(ARGV[2])
local limit_t, limit_c = tonumber(ARGV[3]), tonumber(ARGV[4])
if limit_t >= 0 and t + want_t > limit_t then return {1, t, c} end
if limit_c >= 0 and c + want_c > limit_c then return {2, t, c} end
redis.call('HINCRBY', KEYS[1], 'tokens', want_t)
redis.call('HINCRBY', KEYS[1], 'micros', want_c)
redis.call('EXPIREAT', KEYS[1], ARGV[5])
return {0, t + want_t, c + want_c}
"#;

const SETTLE: &str = r#"
redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'micros', ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return 1
"#;

const RATE: &str = r#"
local r = tonumber(redis.call('HGET', KEYS[1], 'requests') or '0')
local t = tonumber(redis.call('HGET', KEYS[1], 'tokens') or '0')
local rpm, tpm, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if rpm >= 0 and r + 1 > rpm then return 1 end
if tpm >= 0 and t + want > tpm then return 2 end
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('HINCRBY', KEYS[1], 'tokens', want)
redis.call('EXPIRE', KEYS[1], 120)
return 0
"#;

enum Store {
    Redis {
        conn: ConnectionManager,
        prefix: String,
    },
    /// `(tenant, day)` → (tokens, micro-USD).
    Local(Mutex<HashMap<(String, String), (u64, u64)>>),
}

/// Budgets and rate counters for every call of this deployment.
pub struct QuotaGuard {
    budgets: Budgets,
    store: Store,
    /// Per job kind, the least a call reserves (see [`Policy::min_need`]).
    min_need: HashMap<String, (u64, f64)>,
}

impl std::fmt::Debug for QuotaGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let store = match &self.store {
            Store::Redis { .. } => "redis",
            Store::Local(_) => "local",
        };
        f.debug_struct("QuotaGuard")
            .field("store", &store)
            .field("budgets", &self.budgets)
            .finish()
    }
}

fn micros(usd: f64) -> u64 {
    (usd * 1e6).ceil().max(0.0) as u64
}

fn day(now: DateTime<Utc>) -> String {
    now.format("%Y%m%d").to_string()
}

/// The next UTC midnight after `now`.
fn next_reset(now: DateTime<Utc>) -> DateTime<Utc> {
    let midnight = now
        .date_naive()
        .succ_opt()
        .unwrap_or(now.date_naive())
        .and_hms_opt(0, 0, 0);
    midnight.map_or(now, |m| m.and_utc())
}

/// Seconds (at least 1) until the budgets reset.
pub fn until_reset(now: DateTime<Utc>) -> Duration {
    Duration::from_secs((next_reset(now) - now).num_seconds().max(1) as u64)
}

fn redis_err(e: redis::RedisError) -> QuotaError {
    QuotaError::Store(e.to_string())
}

impl QuotaGuard {
    /// In-process budgets (embedded mode: one process).
    pub fn local(budgets: Budgets, policy: &Policy) -> QuotaGuard {
        QuotaGuard::with_store(budgets, Store::Local(Mutex::default()), policy)
    }

    /// Budgets kept in Redis at `url`, keys under `prefix` (the deployment's QUEUE_PREFIX).
    pub async fn redis(url: &str, prefix: &str, budgets: Budgets, policy: &Policy) -> Result<QuotaGuard, QuotaError> {
        let client = redis::Client::open(url).map_err(redis_err)?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(3);
        let conn = client
            .get_connection_manager_with_config(cfg)
            .await
            .map_err(redis_err)?;
        let store = Store::Redis {
            conn,
            prefix: prefix.to_owned(),
        };
        Ok(QuotaGuard::with_store(budgets, store, policy))
    }

    fn with_store(budgets: Budgets, store: Store, policy: &Policy) -> QuotaGuard {
        let min_need = super::policy::POLICY_KINDS
            .iter()
            .filter_map(|k| Some((k.to_string(), policy.min_need(k)?)))
            .collect();
        QuotaGuard {
            budgets,
            store,
            min_need,
        }
    }

    fn key(prefix: &str, tenant: &str, day: &str) -> String {
        format!("{prefix}models:quota:{tenant}:{day}")
    }

    fn exhausted(tenant: &str, what: &str, used: String, limit: String, now: DateTime<Utc>) -> QuotaError {
        QuotaError::Exhausted(Exhausted {
            reason: format!("tenant {tenant}: daily {what} budget exhausted ({used} of {limit} used)"),
            retry_after: until_reset(now),
        })
    }

    /// Reserves `tokens` and `cost_usd` of `tenant`'s budget for today, or says why not.
    pub async fn reserve(&self, tenant: &str, tokens: u64, cost_usd: f64) -> Result<Reservation, QuotaError> {
        let now = Utc::now();
        let (budget, day) = (self.budgets.for_tenant(tenant), day(now));
        let want_c = micros(cost_usd);
        let limit_t = budget.tokens.map_or(-1, |t| t as i64);
        let limit_c = budget.cost_usd.map_or(-1, |c| micros(c) as i64);
        let (verdict, used_t, used_c): (i64, u64, u64) = match &self.store {
            Store::Redis { conn, prefix } => redis::Script::new(RESERVE)
                .key(Self::key(prefix, tenant, &day))
                .arg(tokens)
                .arg(want_c)
                .arg(limit_t)
                .arg(limit_c)
                .arg(next_reset(now).timestamp() + 3600)
                .invoke_async(&mut conn.clone())
                .await
                .map_err(redis_err)?,
            Store::Local(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                let used = map.entry((tenant.to_owned(), day.clone())).or_default();
                if limit_t >= 0 && used.0 + tokens > limit_t as u64 {
                    (1, used.0, used.1)
                } else if limit_c >= 0 && used.1 + want_c > limit_c as u64 {
                    (2, used.0, used.1)
                } else {
                    used.0 += tokens;
                    used.1 += want_c;
                    (0, used.0, used.1)
                }
            }
        };
        match verdict {
            0 => {
                tracing::debug!(tenant, tokens, used_tokens = used_t, "budget reserved");
                Ok(Reservation {
                    tenant: tenant.to_owned(),
                    day,
                    tokens,
                    micros: want_c,
                })
            }
            1 => Err(Self::exhausted(
                tenant,
                "token",
                format!("{used_t} + {tokens} needed"),
                limit_t.to_string(),
                now,
            )),
            _ => Err(Self::exhausted(
                tenant,
                "cost",
                format!("${:.4} + ${:.4} needed", used_c as f64 / 1e6, cost_usd),
                format!("${:.4}", limit_c as f64 / 1e6),
                now,
            )),
        }
    }

    /// Replaces a reservation by the real usage of the call, and exports how much of the
    /// tenant's budget is used (`autodevops_tenant_budget_used_ratio{tenant}`, for alerts).
    pub async fn settle(&self, r: Reservation, tokens: u64, cost_usd: f64) -> Result<(), QuotaError> {
        let tenant = r.tenant.clone();
        self.settle_only(r, tokens, cost_usd).await?;
        let budget = self.budgets.for_tenant(&tenant);
        if budget.tokens.is_some() || budget.cost_usd.is_some() {
            let (t, c) = self.used(&tenant).await?;
            let ratio = f64::max(
                budget.tokens.map_or(0.0, |l| t as f64 / l.max(1) as f64),
                budget.cost_usd.map_or(0.0, |l| if l > 0.0 { c / l } else { 1.0 }),
            );
            metrics::gauge!("autodevops_tenant_budget_used_ratio", "tenant" => tenant).set(ratio);
        }
        Ok(())
    }

    async fn settle_only(&self, r: Reservation, tokens: u64, cost_usd: f64) -> Result<(), QuotaError> {
        let dt = tokens as i64 - r.tokens as i64;
        let dc = micros(cost_usd) as i64 - r.micros as i64;
        match &self.store {
            Store::Redis { conn, prefix } => {
                let _: i64 = redis::Script::new(SETTLE)
                    .key(Self::key(prefix, &r.tenant, &r.day))
                    .arg(dt)
                    .arg(dc)
                    .arg(next_reset(Utc::now()).timestamp() + 3600)
                    .invoke_async(&mut conn.clone())
                    .await
                    .map_err(redis_err)?;
            }
            Store::Local(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                let used = map.entry((r.tenant, r.day)).or_default();
                used.0 = used.0.saturating_add_signed(dt);
                used.1 = used.1.saturating_add_signed(dc);
            }
        }
        Ok(())
    }

    /// Whether a job whose tenant's budget is spent waits for the reset (BUDGET_EXHAUSTED=defer).
    pub fn defers_when_spent(&self) -> bool {
        self.budgets.defer_when_spent
    }

    /// Today's usage of `tenant`: (tokens, USD), reservations in flight included.
    pub async fn used(&self, tenant: &str) -> Result<(u64, f64), QuotaError> {
        let day = day(Utc::now());
        let (t, c): (Option<u64>, Option<u64>) = match &self.store {
            Store::Redis { conn, prefix } => redis::cmd("HMGET")
                .arg(Self::key(prefix, tenant, &day))
                .arg("tokens")
                .arg("micros")
                .query_async(&mut conn.clone())
                .await
                .map_err(redis_err)?,
            Store::Local(map) => {
                let map = map.lock().unwrap_or_else(|p| p.into_inner());
                let used = map.get(&(tenant.to_owned(), day)).copied().unwrap_or_default();
                (Some(used.0), Some(used.1))
            }
        };
        Ok((t.unwrap_or(0), c.unwrap_or(0) as f64 / 1e6))
    }

    /// Whether `tenant` may still start a `kind` job that calls models: refused when what is left
    /// of a budget is less than the smallest call of the kind's chain could reserve.
    pub async fn admit(&self, tenant: &str, kind: &str) -> Result<(), QuotaError> {
        let Some(&(min_tokens, min_cost)) = self.min_need.get(kind) else {
            return Ok(());
        };
        let budget = self.budgets.for_tenant(tenant);
        if budget.tokens.is_none() && budget.cost_usd.is_none() {
            return Ok(());
        }
        let (used_t, used_c) = self.used(tenant).await?;
        let now = Utc::now();
        if let Some(limit) = budget.tokens
            && used_t + min_tokens > limit
        {
            return Err(Self::exhausted(
                tenant,
                "token",
                used_t.to_string(),
                limit.to_string(),
                now,
            ));
        }
        if let Some(limit) = budget.cost_usd
            && micros(used_c) + micros(min_cost) > micros(limit)
        {
            return Err(Self::exhausted(
                tenant,
                "cost",
                format!("${used_c:.4}"),
                format!("${limit:.4}"),
                now,
            ));
        }
        Ok(())
    }

    /// The deployment-wide per-minute counters of a model (Redis only; in process the governor
    /// limiter of [`ModelLimiter`] is the limit). `Err` says which limit is reached.
    pub async fn rate(&self, spec: &ModelSpec, tokens: u64) -> Result<(), QuotaError> {
        if spec.rpm.is_none() && spec.tpm.is_none() {
            return Ok(());
        }
        let Store::Redis { conn, prefix } = &self.store else {
            return Ok(());
        };
        let minute = Utc::now().timestamp() / 60;
        let key = format!("{prefix}models:rate:{}:{minute}", spec.label());
        let verdict: i64 = redis::Script::new(RATE)
            .key(key)
            .arg(spec.rpm.map_or(-1, i64::from))
            .arg(spec.tpm.map_or(-1, i64::from))
            .arg(tokens)
            .invoke_async(&mut conn.clone())
            .await
            .map_err(redis_err)?;
        match verdict {
            0 => Ok(()),
            v => Err(QuotaError::Exhausted(Exhausted {
                reason: format!(
                    "{} is at its {} limit across all workers",
                    spec.label(),
                    if v == 1 { "rpm" } else { "tpm" }
                ),
                retry_after: Duration::from_secs(60 - (Utc::now().timestamp() % 60) as u64),
            })),
        }
    }
}

/// A model's RPM/TPM limits in this process (governor).
pub struct ModelLimiter {
    rpm: Option<DefaultDirectRateLimiter>,
    tpm: Option<(DefaultDirectRateLimiter, u32)>,
}

impl ModelLimiter {
    pub fn new(spec: &ModelSpec) -> ModelLimiter {
        let per_minute = |n: u32| NonZeroU32::new(n).map(|n| RateLimiter::direct(Quota::per_minute(n)));
        ModelLimiter {
            rpm: spec.rpm.and_then(per_minute),
            tpm: spec.tpm.and_then(|t| Some((per_minute(t)?, t))),
        }
    }

    /// Takes one request and `tokens` from the limits, or says which is reached.
    pub fn check(&self, tokens: u64) -> Result<(), String> {
        if let Some(rpm) = &self.rpm
            && rpm.check().is_err()
        {
            return Err("requests per minute limit reached in this process".into());
        }
        if let Some((tpm, cap)) = &self.tpm {
            let n = NonZeroU32::new(tokens.clamp(1, u64::from(u32::MAX)) as u32).expect("at least 1");
            match tpm.check_n(n) {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err("tokens per minute limit reached in this process".into()),
                Err(_) => {
                    return Err(format!(
                        "the request ({tokens} tokens) is above the model's tpm ({cap})"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn budgets_from_env() {
        let b = Budgets::from_vars(&vars(&[
            ("TENANT_DAILY_TOKENS", "100000"),
            ("TENANT_DAILY_COST_USD", "2.5"),
            (
                "TENANT_BUDGETS",
                "acme=tokens:200000;cost:5, 4242=cost:unlimited ,free=tokens:0",
            ),
        ]))
        .unwrap();
        assert_eq!(
            b.for_tenant("acme"),
            Budget {
                tokens: Some(200_000),
                cost_usd: Some(5.0)
            }
        );
        assert_eq!(
            b.for_tenant("4242"),
            Budget {
                tokens: Some(100_000),
                cost_usd: None
            }
        );
        assert_eq!(b.for_tenant("free").tokens, Some(0));
        assert_eq!(b.for_tenant("other"), b.default);
        assert_eq!(Budgets::from_vars(&vars(&[])).unwrap(), Budgets::default());
        let problems = Budgets::from_vars(&vars(&[
            ("TENANT_DAILY_TOKENS", "lots"),
            ("TENANT_DAILY_COST_USD", "-1"),
            ("TENANT_BUDGETS", "acme=tokens:x,=cost:1,beta=speed:3,noequals"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = problems.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(
            names,
            [
                "TENANT_DAILY_TOKENS",
                "TENANT_DAILY_COST_USD",
                "TENANT_BUDGETS",
                "TENANT_BUDGETS",
                "TENANT_BUDGETS",
                "TENANT_BUDGETS"
            ]
        );
    }

    #[test]
    fn reset_is_the_next_utc_midnight() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T23:59:30Z").unwrap().to_utc();
        assert_eq!(until_reset(now), Duration::from_secs(30));
        assert_eq!(day(now), "20261201");
        let morning = DateTime::parse_from_rfc3339("2026-12-31T06:00:00Z").unwrap().to_utc();
        assert_eq!(until_reset(morning), Duration::from_secs(18 * 3600));
    }

    fn policy() -> Policy {
        let providers =
            super::super::ProviderConfig::from_vars([("OPENAI_API_KEY".to_owned(), "sk-x".to_owned())]).unwrap();
        Policy::built_in(&providers)
    }

    #[tokio::test]
    async fn local_reservations_never_pass_the_budget_and_settle_to_real_usage() {
        let budgets = Budgets {
            default: Budget {
                tokens: Some(10_000),
                cost_usd: Some(0.01),
            },
            tenants: HashMap::new(),
            defer_when_spent: false,
        };
        let g = QuotaGuard::local(budgets, &policy());
        let a = g.reserve("acme", 6_000, 0.001).await.unwrap();
        let e = g.reserve("acme", 6_000, 0.001).await.unwrap_err();
        assert!(
            matches!(&e, QuotaError::Exhausted(x) if x.reason.contains("token")),
            "{e}"
        );
        g.settle(a, 1_000, 0.0005).await.unwrap();
        assert_eq!(g.used("acme").await.unwrap().0, 1_000);
        let b = g.reserve("acme", 6_000, 0.009).await.unwrap();
        let e = g.reserve("acme", 10, 0.001).await.unwrap_err();
        assert!(
            matches!(&e, QuotaError::Exhausted(x) if x.reason.contains("cost")),
            "{e}"
        );
        g.settle(b, 2_000, 0.002).await.unwrap();
        assert_eq!(g.used("other").await.unwrap(), (0, 0.0), "tenants are apart");
        // 3 000 tokens used; a call needs at least 2 000 output tokens: still admitted, then not.
        g.admit("acme", "analysis").await.unwrap();
        let r = g.reserve("acme", 6_000, 0.0).await.unwrap();
        let e = g.admit("acme", "analysis").await.unwrap_err();
        let QuotaError::Exhausted(x) = e else { panic!() };
        assert!(x.retry_after > Duration::ZERO && x.retry_after <= Duration::from_secs(86_400));
        g.settle(r, 0, 0.0).await.unwrap();
        g.admit("acme", "analysis").await.unwrap();
    }

    #[test]
    fn the_governor_limits_requests_and_tokens() {
        let mut spec = super::super::policy::default_spec(super::super::ProviderKind::OpenAi, "gpt-4o-mini");
        spec.rpm = Some(2);
        spec.tpm = Some(1_000);
        let l = ModelLimiter::new(&spec);
        l.check(400).unwrap();
        l.check(400).unwrap();
        assert!(l.check(10).unwrap_err().contains("requests per minute"));
        spec.rpm = None;
        let l = ModelLimiter::new(&spec);
        l.check(900).unwrap();
        assert!(l.check(200).unwrap_err().contains("tokens per minute"));
        assert!(l.check(5_000).unwrap_err().contains("above the model's tpm"));
    }

    /// Two guards (two processes) on one Redis, racing: together they never reserve past the budget.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_reservations_of_two_guards_never_pass_the_budget() {
        let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("t{}:", uuid::Uuid::now_v7().simple());
        let budgets = Budgets {
            default: Budget {
                tokens: Some(20_000),
                cost_usd: Some(1.0),
            },
            ..Budgets::default()
        };
        let connect = || async {
            QuotaGuard::redis(&url, &prefix, budgets.clone(), &policy())
                .await
                .unwrap_or_else(|e| {
                    panic!("Redis at {url} is not reachable ({e}): start it with ops/test.sh or set TEST_REDIS_URL")
                })
        };
        let (a, b) = (
            std::sync::Arc::new(connect().await),
            std::sync::Arc::new(connect().await),
        );
        a.used("acme")
            .await
            .unwrap_or_else(|e| panic!("Redis at {url}: {e}: start it with ops/test.sh"));
        let mut tasks = Vec::new();
        for i in 0..60 {
            let g = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move { g.reserve("acme", 1_000, 0.01).await.ok() }));
        }
        let mut granted = Vec::new();
        for t in tasks {
            if let Some(r) = t.await.unwrap() {
                granted.push(r);
            }
        }
        assert_eq!(granted.len(), 20, "exactly the budget is reserved");
        assert_eq!(a.used("acme").await.unwrap().0, 20_000);
        for r in granted {
            b.settle(r, 400, 0.004).await.unwrap();
        }
        let (tokens, cost) = a.used("acme").await.unwrap();
        assert_eq!(tokens, 8_000);
        assert!((cost - 0.08).abs() < 1e-9, "{cost}");
        let ttl: i64 = {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            redis::cmd("TTL")
                .arg(format!("{prefix}models:quota:acme:{}", day(Utc::now())))
                .query_async(&mut conn)
                .await
                .unwrap()
        };
        assert!(ttl > 0 && ttl <= 86_400 + 3_600, "the key expires after its day: {ttl}");
    }
}
