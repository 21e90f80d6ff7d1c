//! The [`Provider`] trait, [`build`], and the HTTP send/classify code all providers share.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::config::ProviderConfig;
use super::error::{ProviderError, snippet};
use super::types::{ChatRequest, ChatResponse, ProviderKind};
use super::{anthropic, gemini, openai};

pub type ChatFuture<'a> = Pin<Box<dyn Future<Output = Result<ChatResponse, ProviderError>> + Send + 'a>>;

/// One configured model endpoint. Object safe: the router holds `Box<dyn Provider>`s.
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;
    /// The configured model name (for Azure, the deployment).
    fn model(&self) -> &str;
    /// One call, bounded by the configured timeout. No retries here: the router decides.
    fn chat<'a>(&'a self, req: &'a ChatRequest) -> ChatFuture<'a>;
}

/// The provider for `cfg`, sending through `http` (share one client: it pools connections).
pub fn build(cfg: &ProviderConfig, http: reqwest::Client) -> Box<dyn Provider> {
    let key = cfg.api_key.clone();
    let (dialect, url, auth) = match cfg.kind {
        ProviderKind::Anthropic => (
            Dialect::Anthropic,
            join(&cfg.base_url, &["v1", "messages"]),
            "x-api-key",
        ),
        ProviderKind::Gemini => {
            let method = format!("{}:generateContent", cfg.model);
            (
                Dialect::Gemini,
                join(&cfg.base_url, &["v1beta", "models", &method]),
                "x-goog-api-key",
            )
        }
        ProviderKind::AzureOpenAi => {
            let deployment = cfg.azure.as_ref().map_or(cfg.model.as_str(), |a| a.deployment.as_str());
            let mut url = join(
                &cfg.base_url,
                &["openai", "deployments", deployment, "chat", "completions"],
            );
            if let Some(azure) = &cfg.azure {
                url.query_pairs_mut().append_pair("api-version", &azure.api_version);
            }
            (Dialect::OpenAi(cfg.max_tokens_field), url, "api-key")
        }
        ProviderKind::OpenAi | ProviderKind::DeepSeek | ProviderKind::Ollama | ProviderKind::OpenAiCompatible => (
            Dialect::OpenAi(cfg.max_tokens_field),
            join(&cfg.base_url, &["chat", "completions"]),
            "authorization",
        ),
    };
    let headers = headers(cfg.kind, auth, key.as_ref());
    Box::new(HttpProvider {
        http,
        kind: cfg.kind,
        model: cfg.model.clone(),
        url,
        headers,
        key,
        dialect,
        timeout: cfg.timeout,
    })
}

/// `base` with `segments` appended as path segments (percent-encoded as needed).
fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Static headers, with the key marked sensitive. An unusable key (config validation rejects those)
/// is kept as an error string and reported on each call.
fn headers(kind: ProviderKind, auth: &'static str, key: Option<&SecretString>) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    if kind == ProviderKind::Anthropic {
        headers.insert("anthropic-version", HeaderValue::from_static(anthropic::API_VERSION));
    }
    if let Some(key) = key {
        let value = if auth == "authorization" {
            format!("Bearer {}", key.expose_secret())
        } else {
            key.expose_secret().to_string()
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| "the API key is not a valid HTTP header value")?;
        value.set_sensitive(true);
        headers.insert(HeaderName::from_static(auth), value);
    }
    Ok(headers)
}

/// The API dialect: how a [`ChatRequest`] becomes a body and a body becomes an answer.
#[derive(Debug, Clone, Copy)]
enum Dialect {
    OpenAi(super::config::MaxTokensField),
    Anthropic,
    Gemini,
}

/// A successful body, decoded by a dialect (which rejects a reply without text).
pub(crate) struct Parsed {
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The model as the provider reports it, when it does.
    pub model: Option<String>,
}

struct HttpProvider {
    http: reqwest::Client,
    kind: ProviderKind,
    model: String,
    url: Url,
    headers: Result<HeaderMap, String>,
    /// Only for redacting echoes of it from error messages.
    key: Option<SecretString>,
    dialect: Dialect,
    timeout: Duration,
}

impl Provider for HttpProvider {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn chat<'a>(&'a self, req: &'a ChatRequest) -> ChatFuture<'a> {
        Box::pin(async move {
            let result = self.call(req).await;
            match &result {
                Ok(r) => tracing::debug!(provider = %self.kind, model = %r.model, input_tokens = r.input_tokens,
                    output_tokens = r.output_tokens, latency_ms = r.latency.as_millis() as u64, "model call succeeded"),
                Err(e) => tracing::debug!(provider = %self.kind, model = %self.model, error = %e, "model call failed"),
            }
            result
        })
    }
}

impl HttpProvider {
    async fn call(&self, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let headers = self
            .headers
            .clone()
            .map_err(|message| ProviderError::Request { status: 0, message })?;
        let body = match self.dialect {
            Dialect::OpenAi(field) => openai::body(req, &self.model, field),
            Dialect::Anthropic => anthropic::body(req, &self.model),
            Dialect::Gemini => gemini::body(req),
        };
        let secrets: Vec<&str> = self.key.iter().map(|k| k.expose_secret()).collect();
        let started = Instant::now();
        let request = self.http.post(self.url.clone()).headers(headers).json(&body);
        let value = tokio::time::timeout(self.timeout, send(request, &secrets))
            .await
            .map_err(|_| ProviderError::Timeout)
            .flatten()?;
        let parsed = match self.dialect {
            Dialect::OpenAi(_) => openai::parse(value),
            Dialect::Anthropic => anthropic::parse(value),
            Dialect::Gemini => gemini::parse(value),
        }
        .map_err(|e| match e {
            ProviderError::InvalidResponse(m) => ProviderError::InvalidResponse(snippet(&m, &secrets)),
            other => other,
        })?;
        Ok(ChatResponse {
            text: parsed.text,
            input_tokens: parsed.input_tokens,
            output_tokens: parsed.output_tokens,
            model: parsed.model.unwrap_or_else(|| self.model.clone()),
            provider: self.kind,
            latency: started.elapsed(),
        })
    }
}

/// Sends, reads the whole body and classifies the outcome; a 2xx yields the body as JSON.
async fn send(request: reqwest::RequestBuilder, secrets: &[&str]) -> Result<Value, ProviderError> {
    let response = request.send().await.map_err(|e| from_reqwest(&e, secrets))?;
    let status = response.status();
    let retry_after = parse_retry_after(response.headers(), SystemTime::now());
    let body = response.bytes().await.map_err(|e| from_reqwest(&e, secrets))?;
    classify(status, retry_after, &body, secrets)
}

fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    secrets: &[&str],
) -> Result<Value, ProviderError> {
    let text = || String::from_utf8_lossy(body);
    let code = status.as_u16();
    match code {
        200..=299 => serde_json::from_slice(body).map_err(|e| {
            ProviderError::InvalidResponse(format!("body is not JSON ({e}): {}", snippet(&text(), secrets)))
        }),
        429 => Err(ProviderError::RateLimited { retry_after }),
        408 => Err(ProviderError::Timeout),
        401 | 403 => {
            tracing::warn!(status = code, body = %snippet(&text(), secrets), "model provider rejected the credentials");
            Err(ProviderError::Auth { status: code })
        }
        400..=499 => Err(ProviderError::Request {
            status: code,
            message: error_message(&text(), secrets),
        }),
        500..=599 => {
            tracing::warn!(status = code, body = %snippet(&text(), secrets), "model provider server error");
            Err(ProviderError::Server { status: code })
        }
        _ => Err(ProviderError::InvalidResponse(format!(
            "unexpected HTTP {code}: {}",
            snippet(&text(), secrets)
        ))),
    }
}

/// The vendor's error message: OpenAI, Anthropic and Gemini all put it at `error.message`, with a
/// kind at `error.type` (OpenAI, Anthropic) or `error.status` (Gemini). Otherwise the raw body.
fn error_message(body: &str, secrets: &[&str]) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = match error.and_then(|e| e.get("message")).and_then(Value::as_str) {
        None => body.to_string(),
        Some(message) => match error
            .and_then(|e| e.get("type").or(e.get("status")))
            .and_then(Value::as_str)
        {
            Some(kind) => format!("{kind}: {message}"),
            None => message.to_string(),
        },
    };
    snippet(&message, secrets)
}

fn from_reqwest(e: &reqwest::Error, secrets: &[&str]) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout;
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    if e.is_builder() {
        ProviderError::Request {
            status: 0,
            message: snippet(&message, secrets),
        }
    } else {
        ProviderError::Network(snippet(&message, secrets))
    }
}

/// `retry-after-ms` (OpenAI) or `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
/// A date in the past is zero; anything unparseable is `None`.
pub(crate) fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let seconds = |v: &str| v.parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s).ok());
    if let Some(ms) = header("retry-after-ms").and_then(seconds) {
        return Some(ms / 1000);
    }
    let value = header("retry-after")?;
    seconds(value).or_else(|| {
        let at = SystemTime::from(chrono::DateTime::parse_from_rfc2822(value).ok()?);
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::from(chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:30Z").unwrap());
        let parse = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (k, v) in pairs {
                headers.insert(*k, HeaderValue::from_static(v));
            }
            parse_retry_after(&headers, now)
        };
        assert_eq!(parse(&[("retry-after", "120")]), Some(Duration::from_secs(120)));
        assert_eq!(
            parse(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse(&[("retry-after", "Wed, 21 Oct 2015 07:00:00 GMT")]),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse(&[("retry-after-ms", "1500"), ("retry-after", "2")]),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse(&[("retry-after", "soon")]), None);
        assert_eq!(parse(&[("retry-after", "-3")]), None);
        assert_eq!(parse(&[]), None);
    }

    #[test]
    fn urls() {
        let base = Url::parse("https://api.openai.com/v1").unwrap();
        assert_eq!(
            join(&base, &["chat", "completions"]).as_str(),
            "https://api.openai.com/v1/chat/completions"
        );
        let base = Url::parse("http://localhost:11434/v1/").unwrap();
        assert_eq!(
            join(&base, &["chat", "completions"]).as_str(),
            "http://localhost:11434/v1/chat/completions"
        );
        let base = Url::parse("https://generativelanguage.googleapis.com").unwrap();
        assert_eq!(
            join(&base, &["v1beta", "models", "gemini-2.5-flash:generateContent"]).as_str(),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
    }

    #[tokio::test]
    async fn connection_refused_is_a_network_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        drop(listener);
        let cfg = super::super::test_support::config(ProviderKind::OpenAi, &base, Some("sk-secret-key"), "m");
        let error = build(&cfg, reqwest::Client::new())
            .chat(&super::super::test_support::request(false))
            .await;
        let error = error.unwrap_err();
        assert!(
            matches!(&error, ProviderError::Network(m) if !m.contains("sk-secret-key")),
            "{error:?}"
        );
        assert!(error.is_fallback_worthy());
    }

    #[test]
    fn vendor_error_messages() {
        let openai = r#"{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error","param":"temperature","code":null}}"#;
        assert_eq!(
            error_message(openai, &[]),
            "invalid_request_error: Invalid value for 'temperature'"
        );
        let gemini = r#"{"error":{"code":400,"message":"API key sk-zzzz not valid","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            error_message(gemini, &["sk-zzzz"]),
            "INVALID_ARGUMENT: API key [REDACTED] not valid"
        );
        assert_eq!(
            error_message("<html>Bad Request</html>", &[]),
            "<html>Bad Request</html>"
        );
    }
}
