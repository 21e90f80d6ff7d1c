//! Everything a process needs to call models: the configured providers, the routing policy, one
//! router per job kind (breakers shared per provider) and the quota guard.
//!
//! [`ModelSetup::from_env`] reads and checks the configuration at start (problems are reported
//! with the rest of the configuration, exit 2); [`ModelService::start`] connects the guard.
//! [`ModelService::breakers`] is a handle on every provider's breaker, for /ready.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::config::{ConfigProblems, ProviderConfig};
use super::policy::Policy;
use super::quota::{Budgets, QuotaError, QuotaGuard};
use super::router::{Breaker, BreakerConfig, BreakerState, Router};

/// The checked model configuration of a process.
#[derive(Clone, Debug)]
pub struct ModelSetup {
    pub providers: Vec<ProviderConfig>,
    pub policy: Policy,
    pub budgets: Budgets,
    /// `MODEL_BREAKER_FAILURES` (default 5) and `MODEL_BREAKER_COOLDOWN_SECS` (default 30).
    pub breaker: BreakerConfig,
}

impl ModelSetup {
    pub fn from_env() -> Result<ModelSetup, ConfigProblems> {
        Self::from_vars(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
    }

    /// Providers (see [`super::config`]), `MODELS_CONFIG` and the tenant budgets; every problem at once.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<ModelSetup, ConfigProblems> {
        let vars: HashMap<String, String> = vars.into_iter().collect();
        let mut problems = ConfigProblems::new();
        let providers = ProviderConfig::from_vars(vars.clone()).unwrap_or_else(|p| {
            problems.extend(p);
            Vec::new()
        });
        let budgets = Budgets::from_vars(&vars).unwrap_or_else(|p| {
            problems.extend(p);
            Budgets::default()
        });
        let policy = match vars.get("MODELS_CONFIG").map(|p| p.trim()).filter(|p| !p.is_empty()) {
            None => Policy::built_in(&providers),
            Some(path) => Policy::load(&PathBuf::from(path), &providers).unwrap_or_else(|e| {
                problems.push(("MODELS_CONFIG".into(), e.to_string()));
                Policy::built_in(&[])
            }),
        };
        let breaker = breaker_config(&vars, &mut problems);
        if problems.is_empty() {
            Ok(ModelSetup {
                providers,
                policy,
                budgets,
                breaker,
            })
        } else {
            Err(problems)
        }
    }

    /// No provider configured: everything stays offline.
    pub fn is_offline(&self) -> bool {
        self.providers.is_empty()
    }
}

/// The breaker settings from `MODEL_BREAKER_FAILURES` (≥ 1) and `MODEL_BREAKER_COOLDOWN_SECS`.
fn breaker_config(vars: &HashMap<String, String>, problems: &mut ConfigProblems) -> BreakerConfig {
    let mut cfg = BreakerConfig::default();
    let get = |k: &str| vars.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let Some(v) = get("MODEL_BREAKER_FAILURES") {
        match v.parse::<u32>() {
            Ok(n) if n >= 1 => cfg.failures_to_open = n,
            _ => problems.push((
                "MODEL_BREAKER_FAILURES".into(),
                format!("must be a whole number of at least 1, got {v:?}"),
            )),
        }
    }
    if let Some(v) = get("MODEL_BREAKER_COOLDOWN_SECS") {
        match v.parse::<u64>() {
            Ok(n) => cfg.cooldown = Duration::from_secs(n),
            Err(_) => problems.push((
                "MODEL_BREAKER_COOLDOWN_SECS".into(),
                format!("must be a whole number of seconds, got {v:?}"),
            )),
        }
    }
    cfg
}

/// Why the model service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("quota guard: {0}")]
    Quota(#[from] QuotaError),
    #[error("HTTP client: {0}")]
    Http(String),
}

/// Routers per job kind plus the shared quota guard.
#[derive(Debug)]
pub struct ModelService {
    policy: Policy,
    routers: HashMap<String, Router>,
    quota: Arc<QuotaGuard>,
    breakers: Breakers,
}

/// A cheap, shareable view of every provider endpoint's breaker.
#[derive(Clone, Debug, Default)]
pub struct Breakers {
    /// Provider kind, the models using the endpoint, its breaker; in chain order.
    entries: Vec<(String, Vec<String>, Arc<Breaker>)>,
}

/// One provider endpoint's breaker as shown on /ready.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakerStatus {
    pub provider: String,
    pub models: Vec<String>,
    pub state: BreakerState,
}

impl Breakers {
    pub fn states(&self) -> Vec<BreakerStatus> {
        self.entries
            .iter()
            .map(|(provider, models, b)| BreakerStatus {
                provider: provider.clone(),
                models: models.clone(),
                state: b.state(),
            })
            .collect()
    }
}

impl ModelService {
    /// `None` when no provider is configured. The guard keeps budgets in Redis when `redis_url`
    /// is set (keys under `prefix`), else in this process.
    pub async fn start(
        setup: &ModelSetup,
        redis_url: Option<&str>,
        prefix: &str,
    ) -> Result<Option<ModelService>, StartError> {
        if setup.is_offline() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| StartError::Http(e.to_string()))?;
        let quota = match redis_url {
            Some(url) => QuotaGuard::redis(url, prefix, setup.budgets.clone(), &setup.policy).await?,
            None => QuotaGuard::local(setup.budgets.clone(), &setup.policy),
        };
        Ok(Some(ModelService::new(
            setup.policy.clone(),
            Arc::new(quota),
            http,
            setup.breaker,
        )))
    }

    /// Routers for every kind of `policy`; one breaker per provider endpoint, shared by all chains.
    pub fn new(policy: Policy, quota: Arc<QuotaGuard>, http: reqwest::Client, breaker: BreakerConfig) -> ModelService {
        let mut breakers: HashMap<String, Arc<Breaker>> = HashMap::new();
        let mut board = Breakers::default();
        let mut routers = HashMap::new();
        for kind in super::policy::POLICY_KINDS {
            let links = policy
                .chain(kind)
                .iter()
                .map(|e| {
                    let key = format!("{}@{}", e.provider.kind, e.provider.base_url);
                    let shared = breakers
                        .entry(key)
                        .or_insert_with(|| {
                            let b = Arc::new(Breaker::new(breaker));
                            board.entries.push((e.provider.kind.to_string(), Vec::new(), b.clone()));
                            b
                        })
                        .clone();
                    if let Some((_, models, _)) = board.entries.iter_mut().find(|(_, _, b)| Arc::ptr_eq(b, &shared))
                        && !models.contains(&e.spec.model)
                    {
                        models.push(e.spec.model.clone());
                    }
                    (super::build(&e.provider, http.clone()), e.spec.clone(), shared)
                })
                .collect();
            routers.insert(kind.to_owned(), Router::with_specs(links));
        }
        ModelService {
            policy,
            routers,
            quota,
            breakers: board,
        }
    }

    /// Every provider endpoint's breaker (shared with the routers).
    pub fn breakers(&self) -> Breakers {
        self.breakers.clone()
    }

    /// The chain of a kind; `None` (or empty) means offline only.
    pub fn router(&self, kind: &str) -> Option<&Router> {
        self.routers.get(kind).filter(|r| !r.is_empty())
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn quota(&self) -> &Arc<QuotaGuard> {
        &self.quota
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(pairs: &[(&str, &str)]) -> Result<ModelSetup, ConfigProblems> {
        ModelSetup::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn problems_of_every_part_are_reported_together() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("models.toml");
        std::fs::write(
            &file,
            "[[analysis]]\nprovider = \"gemini\"\nmodel = \"g\"\ncontext_window = 1000\nmax_output_tokens = 10\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1\n",
        )
        .unwrap();
        let problems = setup(&[
            ("ANTHROPIC_MODEL", "claude"),
            ("TENANT_DAILY_TOKENS", "many"),
            ("MODELS_CONFIG", file.to_str().unwrap()),
        ])
        .unwrap_err();
        let vars: Vec<&str> = problems.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(vars, ["ANTHROPIC_MODEL", "TENANT_DAILY_TOKENS", "MODELS_CONFIG"]);
        assert!(problems[2].1.contains("line 2"), "{problems:?}");
    }

    #[tokio::test]
    async fn one_router_per_kind_sharing_breakers() {
        let s = setup(&[("OPENAI_API_KEY", "sk-x"), ("DEEPSEEK_API_KEY", "ds-x")]).unwrap();
        assert!(!s.is_offline());
        let svc = ModelService::start(&s, None, "").await.unwrap().unwrap();
        let chain: Vec<String> = svc
            .router("analysis")
            .unwrap()
            .specs()
            .iter()
            .map(|s| s.label())
            .collect();
        assert_eq!(chain, ["openai/gpt-4o-mini", "deepseek/deepseek-chat"]);
        assert!(svc.router("sync").is_none());
        let offline = setup(&[]).unwrap();
        assert!(ModelService::start(&offline, None, "").await.unwrap().is_none());
        let states = svc.breakers().states();
        let shown: Vec<(&str, BreakerState)> = states.iter().map(|s| (s.provider.as_str(), s.state)).collect();
        assert_eq!(
            shown,
            [("openai", BreakerState::Closed), ("deepseek", BreakerState::Closed)]
        );
        assert_eq!(states[0].models, ["gpt-4o-mini"]);
    }

    #[test]
    fn breaker_settings_come_from_the_environment() {
        let s = setup(&[("MODEL_BREAKER_FAILURES", "2"), ("MODEL_BREAKER_COOLDOWN_SECS", "7")]).unwrap();
        assert_eq!(s.breaker.failures_to_open, 2);
        assert_eq!(s.breaker.cooldown, Duration::from_secs(7));
        let problems = setup(&[("MODEL_BREAKER_FAILURES", "0"), ("MODEL_BREAKER_COOLDOWN_SECS", "soon")]).unwrap_err();
        let vars: Vec<&str> = problems.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(vars, ["MODEL_BREAKER_FAILURES", "MODEL_BREAKER_COOLDOWN_SECS"]);
    }
}
