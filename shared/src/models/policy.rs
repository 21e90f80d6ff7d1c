//! The routing policy: for each job kind (`analysis`, `pr_review`, `ci_gen`) an ordered chain of
//! models, each with its context window, output limit, prices and optional rate limits.
//!
//! `MODELS_CONFIG` names a TOML file; without it every configured provider is used in the default
//! order with the built-in figures of [`default_spec`]. Keys never come from the file: a provider
//! named there must be configured in the environment. A file replaces the defaults entirely; a
//! kind it does not list uses no model (the offline analyser only).
//!
//! ```toml
//! [[analysis]]
//! provider = "anthropic"           # anthropic | openai | gemini | azure_openai | deepseek | ollama | openai_compatible
//! model = "claude-haiku-4-5"
//! context_window = 200000
//! max_output_tokens = 2000
//! input_usd_per_mtok = 1.0
//! output_usd_per_mtok = 5.0
//! rpm = 50                          # optional, requests per minute (all workers together)
//! tpm = 100000                      # optional, tokens per minute
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::config::ProviderConfig;
use super::types::ProviderKind;

/// The job kinds a policy may route.
pub const POLICY_KINDS: [&str; 3] = ["analysis", "pr_review", "ci_gen"];
/// Output limit of the built-in chains.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 2_000;

/// One model of a chain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSpec {
    pub provider: ProviderKind,
    pub model: String,
    pub context_window: u64,
    pub max_output_tokens: u32,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
}

impl ModelSpec {
    /// Cost in USD of a call with this usage.
    pub fn cost_usd(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_usd_per_mtok + output_tokens as f64 * self.output_usd_per_mtok) / 1e6
    }

    /// `provider/model`, as in logs and fallback steps.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// Built-in window and prices (USD per million tokens) for `model` of `provider`; figures of the
/// vendors' price lists, falling back to conservative values for unknown models.
pub fn default_spec(provider: ProviderKind, model: &str) -> ModelSpec {
    let m = model.to_ascii_lowercase();
    let (window, input, output) = match provider {
        ProviderKind::Anthropic if m.contains("opus") => (200_000, 15.0, 75.0),
        ProviderKind::Anthropic if m.contains("sonnet") => (200_000, 3.0, 15.0),
        ProviderKind::Anthropic => (200_000, 1.0, 5.0),
        ProviderKind::OpenAi | ProviderKind::AzureOpenAi if m.contains("4o-mini") => (128_000, 0.15, 0.60),
        ProviderKind::OpenAi | ProviderKind::AzureOpenAi if m.contains("4.1-mini") => (1_047_576, 0.40, 1.60),
        ProviderKind::OpenAi | ProviderKind::AzureOpenAi if m.contains("4o") => (128_000, 2.50, 10.0),
        ProviderKind::OpenAi | ProviderKind::AzureOpenAi => (128_000, 2.50, 10.0),
        ProviderKind::Gemini if m.contains("pro") => (1_048_576, 1.25, 10.0),
        ProviderKind::Gemini => (1_048_576, 0.30, 2.50),
        ProviderKind::DeepSeek => (128_000, 0.28, 0.42),
        // Self-hosted: no price; a small window unless the policy says otherwise.
        ProviderKind::Ollama => (8_192, 0.0, 0.0),
        ProviderKind::OpenAiCompatible => (32_768, 0.0, 0.0),
    };
    ModelSpec {
        provider,
        model: model.to_owned(),
        context_window: window,
        max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS.min((window / 4) as u32),
        input_usd_per_mtok: input,
        output_usd_per_mtok: output,
        rpm: None,
        tpm: None,
    }
}

/// A chain entry: the spec and the configured provider it runs on (model name from the spec).
#[derive(Clone, Debug)]
pub struct ChainEntry {
    pub spec: ModelSpec,
    pub provider: ProviderConfig,
}

/// The effective policy.
#[derive(Clone, Debug)]
pub struct Policy {
    chains: BTreeMap<String, Vec<ChainEntry>>,
    version: String,
    /// Where it came from: `built-in` or the file's path.
    pub source: String,
}

/// An invalid policy file; `line` is 1-based when known.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{path}{}: {message}", line.map(|l| format!(": line {l}")).unwrap_or_default())]
pub struct PolicyError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    provider: Spanned<String>,
    model: Spanned<String>,
    context_window: Spanned<u64>,
    max_output_tokens: Spanned<u32>,
    input_usd_per_mtok: Spanned<f64>,
    output_usd_per_mtok: Spanned<f64>,
    rpm: Option<Spanned<u32>>,
    tpm: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    analysis: Vec<FileEntry>,
    #[serde(default)]
    pr_review: Vec<FileEntry>,
    #[serde(default)]
    ci_gen: Vec<FileEntry>,
}

/// The configured provider a policy's `provider` name refers to (`openai` also matches a
/// compatible server configured through OPENAI_BASE_URL).
fn find_provider<'a>(providers: &'a [ProviderConfig], name: &str) -> Option<&'a ProviderConfig> {
    providers
        .iter()
        .find(|p| p.kind.as_str() == name || (name == "openai" && p.kind == ProviderKind::OpenAiCompatible))
}

/// The env variable that configures a provider, for error messages.
fn configured_by(name: &str) -> &'static str {
    match name {
        "anthropic" => "ANTHROPIC_API_KEY",
        "openai" => "OPENAI_API_KEY",
        "openai_compatible" => "OPENAI_BASE_URL",
        "gemini" => "GEMINI_API_KEY",
        "azure_openai" => "AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT",
        "deepseek" => "DEEPSEEK_API_KEY",
        _ => "OLLAMA_URL and OLLAMA_MODEL",
    }
}

/// `provider` with its model (for Azure: deployment) replaced by `model`.
fn with_model(provider: &ProviderConfig, model: &str) -> ProviderConfig {
    let mut p = provider.clone();
    p.model = model.to_owned();
    if let Some(azure) = &mut p.azure {
        azure.deployment = model.to_owned();
    }
    p
}

impl Policy {
    /// Every configured provider in the default order, with built-in figures, for every kind.
    pub fn built_in(providers: &[ProviderConfig]) -> Policy {
        let chain: Vec<ChainEntry> = providers
            .iter()
            .map(|p| ChainEntry {
                spec: default_spec(p.kind, &p.model),
                provider: p.clone(),
            })
            .collect();
        let chains = POLICY_KINDS.iter().map(|k| (k.to_string(), chain.clone())).collect();
        Policy::new(chains, "built-in".into())
    }

    /// Reads and checks the file at `path` against the configured providers.
    pub fn load(path: &Path, providers: &[ProviderConfig]) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            path: path.display().to_string(),
            line: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Policy::parse(&text, &path.display().to_string(), providers)
    }

    /// Parses a policy; errors name the line.
    pub fn parse(text: &str, path: &str, providers: &[ProviderConfig]) -> Result<Policy, PolicyError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let error = |offset: Option<usize>, message: String| PolicyError {
            path: path.to_owned(),
            line: offset.map(line_of),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| error(e.span().map(|s| s.start), e.message().to_owned()))?;
        let mut chains = BTreeMap::new();
        for (kind, entries) in [
            ("analysis", file.analysis),
            ("pr_review", file.pr_review),
            ("ci_gen", file.ci_gen),
        ] {
            let mut chain = Vec::new();
            for e in entries {
                let name = e.provider.get_ref().as_str();
                let at = |s: std::ops::Range<usize>| Some(s.start);
                if !ProviderKind::ALL.iter().any(|k| k.as_str() == name) {
                    return Err(error(
                        at(e.provider.span()),
                        format!(
                            "unknown provider {name:?}: expected anthropic, openai, gemini, azure_openai, deepseek, ollama or openai_compatible"
                        ),
                    ));
                }
                let Some(provider) = find_provider(providers, name) else {
                    return Err(error(
                        at(e.provider.span()),
                        format!(
                            "provider {name:?} is not configured: set {} (keys come from the environment only)",
                            configured_by(name)
                        ),
                    ));
                };
                let model = e.model.get_ref().trim();
                if model.is_empty() {
                    return Err(error(at(e.model.span()), "model must not be empty".into()));
                }
                let (window, max_out) = (*e.context_window.get_ref(), *e.max_output_tokens.get_ref());
                if max_out == 0 || u64::from(max_out) >= window {
                    return Err(error(
                        at(e.max_output_tokens.span()),
                        format!("max_output_tokens must be above 0 and below context_window ({window})"),
                    ));
                }
                for price in [&e.input_usd_per_mtok, &e.output_usd_per_mtok] {
                    if !price.get_ref().is_finite() || *price.get_ref() < 0.0 {
                        return Err(error(
                            at(price.span()),
                            "prices must be 0 or more (USD per million tokens)".into(),
                        ));
                    }
                }
                for limit in [&e.rpm, &e.tpm].into_iter().flatten() {
                    if *limit.get_ref() == 0 {
                        return Err(error(
                            at(limit.span()),
                            "rpm and tpm must be above 0 (leave them out for no limit)".into(),
                        ));
                    }
                }
                chain.push(ChainEntry {
                    spec: ModelSpec {
                        provider: provider.kind,
                        model: model.to_owned(),
                        context_window: window,
                        max_output_tokens: max_out,
                        input_usd_per_mtok: *e.input_usd_per_mtok.get_ref(),
                        output_usd_per_mtok: *e.output_usd_per_mtok.get_ref(),
                        rpm: e.rpm.map(|s| s.into_inner()),
                        tpm: e.tpm.map(|s| s.into_inner()),
                    },
                    provider: with_model(provider, model),
                });
            }
            chains.insert(kind.to_owned(), chain);
        }
        Ok(Policy::new(chains, path.to_owned()))
    }

    fn new(chains: BTreeMap<String, Vec<ChainEntry>>, source: String) -> Policy {
        let effective: BTreeMap<&String, Vec<(&ModelSpec, &str)>> = chains
            .iter()
            .map(|(k, c)| (k, c.iter().map(|e| (&e.spec, e.provider.base_url.as_str())).collect()))
            .collect();
        let digest = Sha256::digest(serde_json::to_vec(&effective).unwrap_or_default());
        Policy {
            chains,
            version: hex::encode(&digest[..8]),
            source,
        }
    }

    /// The chain of a kind (empty: offline only).
    pub fn chain(&self, kind: &str) -> &[ChainEntry] {
        self.chains.get(kind).map_or(&[], Vec::as_slice)
    }

    /// A short hash of the effective policy (models, figures and endpoints): part of every cache key.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The least any call of `kind`'s chain reserves: (output tokens, cost of them) — less than
    /// that left in a budget means no call can be made.
    pub fn min_need(&self, kind: &str) -> Option<(u64, f64)> {
        let chain = self.chain(kind);
        let tokens = chain.iter().map(|e| u64::from(e.spec.max_output_tokens)).min()?;
        let cost = chain
            .iter()
            .map(|e| e.spec.cost_usd(0, u64::from(e.spec.max_output_tokens)))
            .fold(f64::INFINITY, f64::min);
        Some((tokens, cost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers() -> Vec<ProviderConfig> {
        ProviderConfig::from_vars(
            [
                ("ANTHROPIC_API_KEY", "sk-ant-x"),
                ("OPENAI_API_KEY", "sk-x"),
                ("DEEPSEEK_API_KEY", "ds-x"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap()
    }

    const GOOD: &str = r#"
# analysis: cheap first
[[analysis]]
provider = "deepseek"
model = "deepseek-chat"
context_window = 64000
max_output_tokens = 1500
input_usd_per_mtok = 0.27
output_usd_per_mtok = 1.10
rpm = 60

[[analysis]]
provider = "anthropic"
model = "claude-sonnet-4-5"
context_window = 200000
max_output_tokens = 4000
input_usd_per_mtok = 3.0
output_usd_per_mtok = 15.0
tpm = 80000

[[ci_gen]]
provider = "openai"
model = "gpt-4o"
context_window = 128000
max_output_tokens = 3000
input_usd_per_mtok = 2.5
output_usd_per_mtok = 10.0
"#;

    #[test]
    fn a_file_sets_each_kinds_chain() {
        let p = Policy::parse(GOOD, "models.toml", &providers()).unwrap();
        let analysis: Vec<String> = p.chain("analysis").iter().map(|e| e.spec.label()).collect();
        assert_eq!(analysis, ["deepseek/deepseek-chat", "anthropic/claude-sonnet-4-5"]);
        assert_eq!(p.chain("analysis")[1].provider.model, "claude-sonnet-4-5");
        assert_eq!(p.chain("analysis")[0].spec.rpm, Some(60));
        assert_eq!(p.chain("analysis")[1].spec.tpm, Some(80_000));
        assert!(p.chain("pr_review").is_empty(), "unlisted kinds use no model");
        assert_eq!(p.chain("ci_gen")[0].spec.label(), "openai/gpt-4o");
        assert_eq!(p.min_need("analysis").unwrap().0, 1500);
        assert_eq!(p.version().len(), 16);
        let again = Policy::parse(GOOD, "other.toml", &providers()).unwrap();
        assert_eq!(p.version(), again.version(), "the version depends on content only");
        let changed = Policy::parse(&GOOD.replace("0.27", "0.28"), "models.toml", &providers()).unwrap();
        assert_ne!(p.version(), changed.version());
    }

    #[test]
    fn costs_per_provider() {
        let p = Policy::parse(GOOD, "models.toml", &providers()).unwrap();
        let deepseek = &p.chain("analysis")[0].spec;
        let sonnet = &p.chain("analysis")[1].spec;
        // 1M input at 0.27 + 0.5M output at 1.10
        assert!((deepseek.cost_usd(1_000_000, 500_000) - 0.82).abs() < 1e-9);
        assert!((sonnet.cost_usd(10_000, 1_000) - 0.045).abs() < 1e-9);
        let haiku = default_spec(ProviderKind::Anthropic, "claude-haiku-4-5");
        assert!((haiku.cost_usd(2_000, 400) - 0.004).abs() < 1e-9);
        assert_eq!(
            default_spec(ProviderKind::Ollama, "llama3.2").cost_usd(5_000, 5_000),
            0.0
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            // (file, line, part of the message)
            (
                "[[analysis]]\nprovider = \"openai\"\nmodel = \"m\"\ncontext_window = \"big\"\n",
                4,
                "invalid type",
            ),
            (
                "[[analysis]]\nprovider = \"mistral\"\nmodel = \"m\"\ncontext_window = 1000\nmax_output_tokens = 10\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1\n",
                2,
                "unknown provider",
            ),
            ("[[analysis]]\nprovider = \"openai\"\n", 1, "missing field"),
            (
                "\n[[analysis]]\nprovider = \"gemini\"\nmodel = \"g\"\ncontext_window = 1000\nmax_output_tokens = 10\ninput_usd_per_mtok = 1\noutput_usd_per_mtok = 1\n",
                3,
                "GEMINI_API_KEY",
            ),
            (
                "[[analysis]]\nprovider = \"openai\"\nmodel = \"m\"\ncontext_window = 1000\nmax_output_tokens = 1000\ninput_usd_per_mtok = 1.0\noutput_usd_per_mtok = 1.0\n",
                5,
                "below context_window",
            ),
            (
                "[[analysis]]\nprovider = \"openai\"\nmodel = \"m\"\ncontext_window = 1000\nmax_output_tokens = 100\ninput_usd_per_mtok = -1.0\noutput_usd_per_mtok = 1.0\n",
                6,
                "prices",
            ),
            (
                "[[analysis]]\nprovider = \"openai\"\nmodle = \"m\"\n",
                3,
                "unknown field",
            ),
            ("[[review]]\nprovider = \"openai\"\n", 1, "unknown field"),
            ("[[analysis]\nprovider = \"openai\"\n", 1, ""),
        ];
        for (text, line, part) in cases {
            let e = Policy::parse(text, "models.toml", &providers()).unwrap_err();
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.message.contains(part), "{part}: {e}");
            assert!(e.to_string().starts_with(&format!("models.toml: line {line}: ")), "{e}");
        }
    }

    #[test]
    fn the_built_in_policy_uses_every_provider_in_order() {
        let p = Policy::built_in(&providers());
        for kind in POLICY_KINDS {
            let chain: Vec<String> = p.chain(kind).iter().map(|e| e.spec.label()).collect();
            assert_eq!(
                chain,
                [
                    "anthropic/claude-haiku-4-5",
                    "openai/gpt-4o-mini",
                    "deepseek/deepseek-chat"
                ]
            );
        }
        assert!(
            p.chain("analysis")
                .iter()
                .all(|e| e.spec.max_output_tokens == DEFAULT_MAX_OUTPUT_TOKENS)
        );
        assert_ne!(p.version(), Policy::built_in(&providers()[..1]).version());
    }
}
