//! Everything a process needs to call models: the configured providers, the routing policy, one
//! router per job kind (breakers shared per provider) and the quota guard.
//!
//! [`ModelSetup::from_env`] reads and checks the configuration at start (problems are reported
//! with the rest of the configuration, exit 2); [`ModelService::start`] connects the guard.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::config::{ConfigProblems, ProviderConfig};
use super::policy::Policy;
use super::quota::{Budgets, QuotaError, QuotaGuard};
use super::router::{Breaker, BreakerConfig, Router};

/// The checked model configuration of a process.
#[derive(Clone, Debug)]
pub struct ModelSetup {
    pub providers: Vec<ProviderConfig>,
    pub policy: Policy,
    pub budgets: Budgets,
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
        if problems.is_empty() {
            Ok(ModelSetup {
                providers,
                policy,
                budgets,
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
            BreakerConfig::default(),
        )))
    }

    /// Routers for every kind of `policy`; one breaker per provider endpoint, shared by all chains.
    pub fn new(policy: Policy, quota: Arc<QuotaGuard>, http: reqwest::Client, breaker: BreakerConfig) -> ModelService {
        let mut breakers: HashMap<String, Arc<Breaker>> = HashMap::new();
        let mut routers = HashMap::new();
        for kind in super::policy::POLICY_KINDS {
            let links = policy
                .chain(kind)
                .iter()
                .map(|e| {
                    let key = format!("{}@{}", e.provider.kind, e.provider.base_url);
                    let shared = breakers
                        .entry(key)
                        .or_insert_with(|| Arc::new(Breaker::new(breaker)))
                        .clone();
                    (super::build(&e.provider, http.clone()), e.spec.clone(), shared)
                })
                .collect();
            routers.insert(kind.to_owned(), Router::with_specs(links));
        }
        ModelService { policy, routers, quota }
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
    }
}
