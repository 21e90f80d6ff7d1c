//! Which providers are configured, read from env with each vendor SDK's variable names.
//!
//! | provider | configured by | also read (default) |
//! |---|---|---|
//! | `anthropic` | `ANTHROPIC_API_KEY` | `ANTHROPIC_BASE_URL` (`https://api.anthropic.com`), `ANTHROPIC_MODEL` (`claude-haiku-4-5`) |
//! | `openai` | `OPENAI_API_KEY` | `OPENAI_BASE_URL` (`https://api.openai.com/v1`), `OPENAI_MODEL` (`gpt-4o-mini`) |
//! | `openai_compatible` | `OPENAI_BASE_URL` on another host (vLLM, LiteLLM …; key optional) | `OPENAI_API_KEY`, `OPENAI_MODEL` |
//! | `gemini` | `GEMINI_API_KEY` | `GEMINI_BASE_URL` (`https://generativelanguage.googleapis.com`), `GEMINI_MODEL` (`gemini-2.5-flash`) |
//! | `azure_openai` | `AZURE_OPENAI_API_KEY` + `AZURE_OPENAI_ENDPOINT` + `AZURE_OPENAI_DEPLOYMENT` (all three) | `OPENAI_API_VERSION` (`2024-10-21`) |
//! | `deepseek` | `DEEPSEEK_API_KEY` | `DEEPSEEK_BASE_URL` (`https://api.deepseek.com`), `DEEPSEEK_MODEL` (`deepseek-chat`) |
//! | `ollama` | `OLLAMA_URL` + `OLLAMA_MODEL` (both; no default model) | `OLLAMA_API_KEY` (optional, for a proxy) |
//!
//! `MODEL_TIMEOUT_SECS` (default 60) sets the per-request timeout of every provider.
//! Empty values count as unset. The result is in the default fallback order:
//! anthropic, openai (or openai_compatible), gemini, azure_openai, deepseek, ollama.
//! A provider's settings without its key (say `ANTHROPIC_MODEL` alone) are reported as a problem
//! rather than ignored silently.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::types::ProviderKind;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

/// One configured provider. `api_key` is a [`SecretString`]: Debug prints `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// The model name sent to the provider (for Azure: the deployment name).
    pub model: String,
    /// OpenAI-style: the API base including `/v1` (requests go to `{base_url}/chat/completions`).
    /// Anthropic, Gemini: the host root. Azure: the resource endpoint.
    pub base_url: Url,
    pub api_key: Option<SecretString>,
    /// Set for [`ProviderKind::AzureOpenAi`] only.
    pub azure: Option<AzureDeployment>,
    /// How OpenAI-style requests name the output limit. Ignored by Anthropic and Gemini.
    pub max_tokens_field: MaxTokensField,
    /// Per request, covering connect, response and body.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureDeployment {
    pub deployment: String,
    pub api_version: String,
}

/// OpenAI itself wants `max_completion_tokens` (`max_tokens` is deprecated and rejected by its
/// reasoning models); compatible servers (DeepSeek, Ollama, vLLM, Azure's older API versions) take
/// `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    MaxTokens,
    MaxCompletionTokens,
}

impl MaxTokensField {
    pub fn as_str(self) -> &'static str {
        match self {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

/// `(variable, problem)`, every problem found, in the order of the table above.
pub type ConfigProblems = Vec<(String, String)>;

impl ProviderConfig {
    pub fn from_env() -> Result<Vec<ProviderConfig>, ConfigProblems> {
        Self::from_vars(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
    }

    /// The configured providers in default order; no model variables at all gives an empty list.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Vec<ProviderConfig>, ConfigProblems> {
        let mut env = Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k, v.trim().to_string()))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
            problems: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        };
        if let Some(raw) = env.get("MODEL_TIMEOUT_SECS") {
            match raw.parse::<u64>() {
                Ok(secs) if secs > 0 => env.timeout = Duration::from_secs(secs),
                _ => env.problem("MODEL_TIMEOUT_SECS", "must be a whole number of seconds above 0"),
            }
        }
        let configs = [
            env.anthropic(),
            env.openai(),
            env.gemini(),
            env.azure(),
            env.deepseek(),
            env.ollama(),
        ];
        if env.problems.is_empty() {
            Ok(configs.into_iter().flatten().collect())
        } else {
            Err(env.problems)
        }
    }
}

struct Env {
    vars: HashMap<String, String>,
    problems: ConfigProblems,
    timeout: Duration,
}

/// A vendor whose presence is decided by an API key.
struct Keyed {
    kind: ProviderKind,
    key: &'static str,
    base: &'static str,
    default_base: &'static str,
    model: &'static str,
    default_model: &'static str,
}

impl Env {
    fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn problem(&mut self, var: &str, problem: impl Into<String>) {
        self.problems.push((var.to_string(), problem.into()));
    }

    /// Reports each of `vars` that is set although `missing` is not.
    fn orphans(&mut self, vars: &[&str], missing: &str) {
        let set: Vec<&str> = vars.iter().copied().filter(|v| self.vars.contains_key(*v)).collect();
        for var in set {
            self.problem(
                var,
                format!("is set, but {missing} is not: the provider would be ignored"),
            );
        }
    }

    fn url(&mut self, var: &str, default: &str) -> Option<Url> {
        let raw = self.get(var).unwrap_or_else(|| default.to_string());
        match Url::parse(&raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Some(url),
            Ok(url) => {
                self.problem(
                    var,
                    format!("must be an http:// or https:// URL, not a {}: URL", url.scheme()),
                );
                None
            }
            Err(e) => {
                self.problem(var, format!("is not a URL ({e})"));
                None
            }
        }
    }

    fn key(&mut self, var: &str) -> Option<SecretString> {
        let key = self.get(var)?;
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            self.problem(var, "contains spaces or characters not allowed in an HTTP header");
            return None;
        }
        Some(key.into())
    }

    fn config(
        &self,
        kind: ProviderKind,
        model: String,
        base_url: Url,
        api_key: Option<SecretString>,
    ) -> ProviderConfig {
        ProviderConfig {
            kind,
            model,
            base_url,
            api_key,
            azure: None,
            max_tokens_field: MaxTokensField::MaxTokens,
            timeout: self.timeout,
        }
    }

    fn keyed(&mut self, spec: Keyed) -> Option<ProviderConfig> {
        if !self.vars.contains_key(spec.key) {
            self.orphans(&[spec.base, spec.model], spec.key);
            return None;
        }
        let (key, base) = (self.key(spec.key), self.url(spec.base, spec.default_base));
        let model = self.get(spec.model).unwrap_or_else(|| spec.default_model.to_string());
        Some(self.config(spec.kind, model, base?, Some(key?)))
    }

    fn anthropic(&mut self) -> Option<ProviderConfig> {
        self.keyed(Keyed {
            kind: ProviderKind::Anthropic,
            key: "ANTHROPIC_API_KEY",
            base: "ANTHROPIC_BASE_URL",
            default_base: "https://api.anthropic.com",
            model: "ANTHROPIC_MODEL",
            default_model: "claude-haiku-4-5",
        })
    }

    fn gemini(&mut self) -> Option<ProviderConfig> {
        self.keyed(Keyed {
            kind: ProviderKind::Gemini,
            key: "GEMINI_API_KEY",
            base: "GEMINI_BASE_URL",
            default_base: "https://generativelanguage.googleapis.com",
            model: "GEMINI_MODEL",
            default_model: "gemini-2.5-flash",
        })
    }

    fn deepseek(&mut self) -> Option<ProviderConfig> {
        self.keyed(Keyed {
            kind: ProviderKind::DeepSeek,
            key: "DEEPSEEK_API_KEY",
            base: "DEEPSEEK_BASE_URL",
            default_base: "https://api.deepseek.com",
            model: "DEEPSEEK_MODEL",
            default_model: "deepseek-chat",
        })
    }

    /// OpenAI proper with a key; a compatible server when OPENAI_BASE_URL names another host.
    fn openai(&mut self) -> Option<ProviderConfig> {
        let (has_key, has_base) = (
            self.vars.contains_key("OPENAI_API_KEY"),
            self.vars.contains_key("OPENAI_BASE_URL"),
        );
        if !has_key && !has_base {
            self.orphans(&["OPENAI_MODEL"], "OPENAI_API_KEY");
            return None;
        }
        let (key, base) = (
            self.key("OPENAI_API_KEY"),
            self.url("OPENAI_BASE_URL", "https://api.openai.com/v1")?,
        );
        let official = base.host_str() == Some("api.openai.com");
        if official && key.is_none() {
            if !has_key {
                self.problem(
                    "OPENAI_API_KEY",
                    "is required for api.openai.com (OPENAI_BASE_URL points there)",
                );
            }
            return None;
        }
        if has_key && key.is_none() {
            return None;
        }
        let model = self.get("OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".to_string());
        let kind = if official {
            ProviderKind::OpenAi
        } else {
            ProviderKind::OpenAiCompatible
        };
        let mut cfg = self.config(kind, model, base, key);
        if official {
            cfg.max_tokens_field = MaxTokensField::MaxCompletionTokens;
        }
        Some(cfg)
    }

    fn azure(&mut self) -> Option<ProviderConfig> {
        const REQUIRED: [&str; 3] = [
            "AZURE_OPENAI_API_KEY",
            "AZURE_OPENAI_ENDPOINT",
            "AZURE_OPENAI_DEPLOYMENT",
        ];
        let present: Vec<bool> = REQUIRED.iter().map(|v| self.vars.contains_key(*v)).collect();
        if !present.contains(&true) {
            return None;
        }
        for (var, _) in REQUIRED.iter().zip(&present).filter(|(_, p)| !**p) {
            self.problem(var, "is required for Azure OpenAI (AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT go together)");
        }
        let key = self.key(REQUIRED[0]);
        let endpoint = if present[1] { self.url(REQUIRED[1], "") } else { None };
        let deployment = self.get(REQUIRED[2])?;
        let api_version = self
            .get("OPENAI_API_VERSION")
            .unwrap_or_else(|| DEFAULT_AZURE_API_VERSION.to_string());
        let mut cfg = self.config(ProviderKind::AzureOpenAi, deployment.clone(), endpoint?, Some(key?));
        cfg.azure = Some(AzureDeployment {
            deployment,
            api_version,
        });
        Some(cfg)
    }

    fn ollama(&mut self) -> Option<ProviderConfig> {
        if !self.vars.contains_key("OLLAMA_URL") {
            self.orphans(&["OLLAMA_MODEL"], "OLLAMA_URL");
            return None;
        }
        let url = self.url("OLLAMA_URL", "");
        let model = self.get("OLLAMA_MODEL");
        if model.is_none() {
            self.problem(
                "OLLAMA_MODEL",
                "is required with OLLAMA_URL (a model pulled on that server, e.g. llama3.2)",
            );
        }
        let key = if self.vars.contains_key("OLLAMA_API_KEY") {
            Some(self.key("OLLAMA_API_KEY")?)
        } else {
            None
        };
        let mut base = url?;
        // Ollama serves the OpenAI-compatible API under /v1; accept OLLAMA_URL with or without it.
        if !base.path().trim_end_matches('/').ends_with("/v1") {
            base.path_segments_mut().ok()?.pop_if_empty().push("v1");
        }
        Some(self.config(ProviderKind::Ollama, model?, base, key))
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Vec<ProviderConfig>, ConfigProblems> {
        ProviderConfig::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn key(cfg: &ProviderConfig) -> Option<&str> {
        cfg.api_key.as_ref().map(|k| k.expose_secret())
    }

    #[test]
    fn nothing_configured_is_empty() {
        assert!(parse(&[]).unwrap().is_empty());
        assert!(
            parse(&[
                ("PATH", "/bin"),
                ("OPENAI_API_KEY", "  "),
                ("OPENAI_API_VERSION", "2024-10-21")
            ])
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn every_vendor_with_defaults_in_default_order() {
        let all = parse(&[
            ("OLLAMA_URL", "http://localhost:11434"),
            ("OLLAMA_MODEL", "llama3.2"),
            ("DEEPSEEK_API_KEY", "ds-key"),
            ("AZURE_OPENAI_API_KEY", "az-key"),
            ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com"),
            ("AZURE_OPENAI_DEPLOYMENT", "gpt4o-prod"),
            ("GEMINI_API_KEY", "gm-key"),
            ("OPENAI_API_KEY", "sk-key"),
            ("ANTHROPIC_API_KEY", "sk-ant-key"),
        ])
        .unwrap();
        let summary: Vec<_> = all
            .iter()
            .map(|c| {
                (
                    c.kind,
                    c.base_url.as_str(),
                    c.model.as_str(),
                    key(c),
                    c.max_tokens_field,
                )
            })
            .collect();
        use MaxTokensField::*;
        use ProviderKind::*;
        assert_eq!(
            summary,
            [
                (
                    Anthropic,
                    "https://api.anthropic.com/",
                    "claude-haiku-4-5",
                    Some("sk-ant-key"),
                    MaxTokens
                ),
                (
                    OpenAi,
                    "https://api.openai.com/v1",
                    "gpt-4o-mini",
                    Some("sk-key"),
                    MaxCompletionTokens
                ),
                (
                    Gemini,
                    "https://generativelanguage.googleapis.com/",
                    "gemini-2.5-flash",
                    Some("gm-key"),
                    MaxTokens
                ),
                (
                    AzureOpenAi,
                    "https://res.openai.azure.com/",
                    "gpt4o-prod",
                    Some("az-key"),
                    MaxTokens
                ),
                (
                    DeepSeek,
                    "https://api.deepseek.com/",
                    "deepseek-chat",
                    Some("ds-key"),
                    MaxTokens
                ),
                (Ollama, "http://localhost:11434/v1", "llama3.2", None, MaxTokens),
            ]
        );
        assert_eq!(
            all[3].azure,
            Some(AzureDeployment {
                deployment: "gpt4o-prod".into(),
                api_version: DEFAULT_AZURE_API_VERSION.into()
            })
        );
        assert!(all.iter().all(|c| c.timeout == DEFAULT_TIMEOUT));
    }

    #[test]
    fn overrides_are_read() {
        let all = parse(&[
            ("ANTHROPIC_API_KEY", "a"),
            ("ANTHROPIC_BASE_URL", "https://proxy.example/anthropic"),
            ("ANTHROPIC_MODEL", "claude-sonnet-4-5"),
            ("GEMINI_API_KEY", "g"),
            ("GEMINI_BASE_URL", "http://gemini.local:8080"),
            ("GEMINI_MODEL", "gemini-2.5-pro"),
            ("DEEPSEEK_API_KEY", "d"),
            ("DEEPSEEK_BASE_URL", "https://api.deepseek.com/v1"),
            ("DEEPSEEK_MODEL", "deepseek-reasoner"),
            ("AZURE_OPENAI_API_KEY", "z"),
            ("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com/"),
            ("AZURE_OPENAI_DEPLOYMENT", "dep"),
            ("OPENAI_API_VERSION", "2025-04-01-preview"),
            ("OLLAMA_URL", "http://gpu-box:11434/v1/"),
            ("OLLAMA_MODEL", "qwen2.5-coder:7b"),
            ("OLLAMA_API_KEY", "o"),
            ("MODEL_TIMEOUT_SECS", "15"),
        ])
        .unwrap();
        let summary: Vec<_> = all
            .iter()
            .map(|c| (c.base_url.as_str(), c.model.as_str(), key(c)))
            .collect();
        assert_eq!(
            summary,
            [
                ("https://proxy.example/anthropic", "claude-sonnet-4-5", Some("a")),
                ("http://gemini.local:8080/", "gemini-2.5-pro", Some("g")),
                ("https://r.openai.azure.com/", "dep", Some("z")),
                ("https://api.deepseek.com/v1", "deepseek-reasoner", Some("d")),
                ("http://gpu-box:11434/v1/", "qwen2.5-coder:7b", Some("o")),
            ]
        );
        assert_eq!(all[2].azure.as_ref().unwrap().api_version, "2025-04-01-preview");
        assert!(all.iter().all(|c| c.timeout == Duration::from_secs(15)));
    }

    #[test]
    fn openai_base_url_elsewhere_is_a_compatible_server_and_needs_no_key() {
        let vllm = parse(&[
            ("OPENAI_BASE_URL", "http://vllm:8000/v1"),
            ("OPENAI_MODEL", "Qwen/Qwen2.5-7B"),
        ])
        .unwrap();
        assert_eq!(vllm.len(), 1);
        let cfg = &vllm[0];
        assert_eq!(
            (cfg.kind, cfg.model.as_str(), key(cfg)),
            (ProviderKind::OpenAiCompatible, "Qwen/Qwen2.5-7B", None)
        );
        assert_eq!(cfg.max_tokens_field, MaxTokensField::MaxTokens);
        let keyed = parse(&[
            ("OPENAI_BASE_URL", "https://openrouter.ai/api/v1"),
            ("OPENAI_API_KEY", "k"),
        ])
        .unwrap();
        assert_eq!(
            (keyed[0].kind, key(&keyed[0])),
            (ProviderKind::OpenAiCompatible, Some("k"))
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = parse(&[
            ("ANTHROPIC_MODEL", "claude-sonnet-4-5"),
            ("OPENAI_API_KEY", "sk-x"),
            ("OPENAI_BASE_URL", "ftp://api.openai.com/v1"),
            ("GEMINI_API_KEY", "has space"),
            ("AZURE_OPENAI_API_KEY", "az"),
            ("AZURE_OPENAI_ENDPOINT", "not a url"),
            ("DEEPSEEK_BASE_URL", "https://api.deepseek.com"),
            ("OLLAMA_URL", "http://localhost:11434"),
            ("MODEL_TIMEOUT_SECS", "soon"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = problems.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(
            vars,
            [
                "MODEL_TIMEOUT_SECS",
                "ANTHROPIC_MODEL",
                "OPENAI_BASE_URL",
                "GEMINI_API_KEY",
                "AZURE_OPENAI_DEPLOYMENT",
                "AZURE_OPENAI_ENDPOINT",
                "DEEPSEEK_BASE_URL",
                "OLLAMA_MODEL",
            ],
            "{problems:#?}"
        );
        assert!(problems[2].1.contains("http://"), "{problems:?}");
        assert!(problems[4].1.contains("go together"));
        let all = format!("{problems:?}");
        assert!(
            !all.contains("has space") && !all.contains("sk-x"),
            "keys are never echoed: {all}"
        );
        let openai_no_key = parse(&[("OPENAI_BASE_URL", "https://api.openai.com/v1")]).unwrap_err();
        assert_eq!(openai_no_key[0].0, "OPENAI_API_KEY");
        let ollama_model_only = parse(&[("OLLAMA_MODEL", "llama3.2")]).unwrap_err();
        assert_eq!(ollama_model_only[0].0, "OLLAMA_MODEL");
    }

    #[test]
    fn debug_never_shows_keys() {
        let all = parse(&[
            ("ANTHROPIC_API_KEY", "sk-ant-SECRET1"),
            ("OPENAI_API_KEY", "sk-SECRET2"),
            ("GEMINI_API_KEY", "AIzaSECRET3"),
            ("AZURE_OPENAI_API_KEY", "azSECRET4"),
            ("AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com"),
            ("AZURE_OPENAI_DEPLOYMENT", "d"),
            ("DEEPSEEK_API_KEY", "sk-SECRET5"),
        ])
        .unwrap();
        let debug = format!("{all:?} {all:#?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("REDACTED"));
    }
}
