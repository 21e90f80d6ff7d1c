//! Language-model providers: one [`Provider`] per configured endpoint, all over reqwest.
//!
//! - [`ProviderConfig::from_vars`] / [`ProviderConfig::from_env`] read which providers are configured
//!   (each vendor SDK's variable names; see [`config`]) in the default fallback order
//!   anthropic, openai, gemini, azure_openai, deepseek, ollama.
//! - [`build`] turns one into a `Box<dyn Provider>`; [`Provider::chat`] makes one call bounded by the
//!   configured timeout (default 60 s) and returns a [`ChatResponse`] with text and token usage.
//! - Dialects: OpenAI Chat Completions (OpenAI, Azure OpenAI, DeepSeek, Ollama `/v1`, vLLM and other
//!   compatible servers), Anthropic Messages, Gemini generateContent.
//! - Failures are [`ProviderError`]s classified for fallback: [`ProviderError::is_fallback_worthy`]
//!   is true for 429, 5xx (and Anthropic's 529), timeouts, network errors and unusable bodies; false
//!   for our own bad requests (other 4xx) and auth problems (401/403), which fail the job.
//! - [`structured`] extracts and checks the JSON object a model was asked for, and writes the one
//!   repair prompt.
//!
//! API keys live in [`secrecy::SecretString`]s, are marked sensitive in headers, and are redacted from
//! every body excerpt kept in an error (excerpts are cut to 300 characters).
//! On top: [`policy`] (MODELS_CONFIG: the chain of each job kind, windows, prices, rate limits),
//! [`tokens`] (counts before a call), [`router`] (breakers, fallback, repair, window and budget
//! checks), [`quota`] (per-tenant daily budgets and per-model limits shared by all workers),
//! [`prompt`] (packing and redaction) and [`service`] (all of it for one process).

mod anthropic;
mod client;
pub mod config;
mod error;
mod gemini;
mod openai;
pub mod policy;
pub mod prompt;
pub mod quota;
pub mod router;
pub mod service;
pub mod structured;
pub mod tokens;
mod types;

pub use client::{ChatFuture, Provider, build};
pub use config::{AzureDeployment, ConfigProblems, MaxTokensField, ProviderConfig};
pub use error::{ProviderError, snippet};
pub use policy::{ModelSpec, Policy, PolicyError};
pub use quota::{Budget, Budgets, Exhausted, QuotaError, QuotaGuard};
pub use router::{BreakerConfig, BreakerState, CallPlan, CallRecord, FallbackStep, RouteError, Routed, Router};
pub use service::{BreakerStatus, Breakers, ModelService, ModelSetup};
pub use tokens::Tokenizer;
pub use types::{ChatRequest, ChatResponse, ProviderKind};

/// The result cache's key: a hash of the tenant, the source (repository or path), the content
/// hash of what the model is shown (or the commit SHA), the job kind and the policy version.
pub fn cache_key(tenant: &str, source: &str, content: &str, kind: &str, policy_version: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [tenant, source, content, kind, policy_version] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod test_support {
    //! Shared by the providers' tests: every provider must classify failures the same way.

    use std::time::Duration;

    use secrecy::ExposeSecret;
    use serde_json::{Value, json};
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    pub fn config(kind: ProviderKind, base: &str, key: Option<&str>, model: &str) -> ProviderConfig {
        ProviderConfig {
            kind,
            model: model.to_string(),
            base_url: base.parse().unwrap(),
            api_key: key.map(Into::into),
            azure: None,
            max_tokens_field: match kind {
                ProviderKind::OpenAi => MaxTokensField::MaxCompletionTokens,
                _ => MaxTokensField::MaxTokens,
            },
            timeout: Duration::from_secs(10),
        }
    }

    pub fn request(json: bool) -> ChatRequest {
        ChatRequest {
            system: "You are a senior DevOps reviewer.".into(),
            user: "Analyse this repository.".into(),
            max_output_tokens: 512,
            temperature: 0.2,
            json_schema: json.then(|| json!({"type": "object", "required": ["summary"]})),
        }
    }

    /// Runs each failure against `server` (reset in between) and checks its classification.
    /// `success` is a real success body (cut in half for the truncated case); `vendor_error` makes
    /// the vendor's error body for a status and message.
    pub async fn assert_error_classification(
        server: &MockServer,
        cfg: &ProviderConfig,
        success: &Value,
        vendor_error: fn(u16, &str) -> Value,
    ) {
        let mut cfg = cfg.clone();
        cfg.timeout = Duration::from_millis(300);
        let key = cfg
            .api_key
            .as_ref()
            .map(|k| k.expose_secret().to_string())
            .unwrap_or_default();
        let provider = build(&cfg, reqwest::Client::new());
        let call = |response: ResponseTemplate| {
            let provider = &provider;
            async move {
                server.reset().await;
                Mock::given(any()).respond_with(response).expect(1).mount(server).await;
                let error = provider.chat(&request(true)).await.expect_err("the call should fail");
                server.verify().await;
                error
            }
        };
        let error =
            |status: u16, message: &str| ResponseTemplate::new(status).set_body_json(vendor_error(status, message));

        let limited = call(error(429, "Rate limit reached").insert_header("retry-after", "7")).await;
        assert_eq!(
            limited,
            ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(limited.is_fallback_worthy());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));

        for status in [500, 503] {
            let server_error = call(error(status, "internal error")).await;
            assert_eq!(server_error, ProviderError::Server { status });
            assert!(server_error.is_fallback_worthy());
        }

        let bad = call(error(400, &format!("Invalid request; key {key} echoed"))).await;
        let ProviderError::Request { status: 400, message } = &bad else {
            panic!("{bad:?}")
        };
        assert!(message.contains("Invalid request"), "{message}");
        assert!(
            key.is_empty() || !bad.to_string().contains(&key),
            "the key leaked: {bad}"
        );
        assert!(!bad.is_fallback_worthy());

        let auth = call(error(401, &format!("Incorrect API key provided: {key}"))).await;
        assert_eq!(auth, ProviderError::Auth { status: 401 });
        assert!(!auth.is_fallback_worthy());

        let slow = call(
            ResponseTemplate::new(200)
                .set_body_json(success)
                .set_delay(Duration::from_secs(3)),
        )
        .await;
        assert_eq!(slow, ProviderError::Timeout);
        assert!(slow.is_fallback_worthy());

        let html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
        let invalid = call(ResponseTemplate::new(200).set_body_raw(html, "text/html")).await;
        assert!(
            matches!(&invalid, ProviderError::InvalidResponse(m) if m.contains("Bad Gateway")),
            "{invalid:?}"
        );
        assert!(invalid.is_fallback_worthy());

        let full = success.to_string();
        let truncated =
            call(ResponseTemplate::new(200).set_body_raw(&full[..full.len() / 2], "application/json")).await;
        assert!(matches!(truncated, ProviderError::InvalidResponse(_)), "{truncated:?}");

        let wrong_shape = call(ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": []}))).await;
        assert!(
            matches!(wrong_shape, ProviderError::InvalidResponse(_)),
            "{wrong_shape:?}"
        );
    }
}
