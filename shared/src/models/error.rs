//! Provider errors, classified for the fallback decision.

use std::time::Duration;

/// What went wrong with one model call. The router falls back to the next model when
/// [`ProviderError::is_fallback_worthy`] is true, and fails the job permanently otherwise.
///
/// Messages never contain API keys: bodies are redacted and truncated by [`snippet`] before they
/// are stored here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// HTTP 429. `retry_after` from `retry-after-ms` / `Retry-After` (seconds or HTTP date).
    #[error("rate limited (HTTP 429){}", retry_after.map(|d| format!(", retry after {:.1}s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// HTTP 5xx, including Anthropic's 529 "overloaded".
    #[error("provider server error (HTTP {status})")]
    Server { status: u16 },
    /// No complete answer within the per-request timeout (or HTTP 408).
    #[error("provider call timed out")]
    Timeout,
    /// Connection refused, DNS, TLS, reset …
    #[error("network error: {0}")]
    Network(String),
    /// A 2xx whose body is not the documented shape, or carries no usable text.
    #[error("invalid provider response: {0}")]
    InvalidResponse(String),
    /// A 4xx other than 401/403/408/429: our request is wrong. Permanent; no fallback.
    /// `status` 0: the request could not even be built (e.g. a key unusable in a header).
    #[error("request rejected (HTTP {status}): {message}")]
    Request { status: u16, message: String },
    /// HTTP 401/403: a key or permission problem in configuration. Permanent; no fallback.
    #[error("authentication failed (HTTP {status}): check the provider's API key")]
    Auth { status: u16 },
}

impl ProviderError {
    /// True when the next model in the chain should be tried: 429, 5xx, timeouts, network errors
    /// and unusable responses. False for our own bad requests and for auth problems.
    pub fn is_fallback_worthy(&self) -> bool {
        !matches!(self, ProviderError::Request { .. } | ProviderError::Auth { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// A short label for metrics (`outcome`) and logs.
    pub fn label(&self) -> &'static str {
        match self {
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Server { .. } => "server_error",
            ProviderError::Timeout => "timeout",
            ProviderError::Network(_) => "network_error",
            ProviderError::InvalidResponse(_) => "invalid_response",
            ProviderError::Request { .. } => "request_error",
            ProviderError::Auth { .. } => "auth_error",
        }
    }
}

/// Longest body excerpt kept in an error message.
pub const SNIPPET_CHARS: usize = 300;

/// `text` with every occurrence of each (non-trivial) secret replaced by `[REDACTED]`, cut to
/// [`SNIPPET_CHARS`] characters.
pub fn snippet(text: &str, secrets: &[&str]) -> String {
    let mut out = text.trim().to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[REDACTED]");
    }
    truncate_chars(&out, SNIPPET_CHARS)
}

/// At most `max` characters of `text`, with "…" when cut.
pub(crate) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let worthy = [
            ProviderError::RateLimited { retry_after: None },
            ProviderError::Server { status: 503 },
            ProviderError::Timeout,
            ProviderError::Network("reset".into()),
            ProviderError::InvalidResponse("html".into()),
        ];
        assert!(worthy.iter().all(ProviderError::is_fallback_worthy));
        assert!(
            !ProviderError::Request {
                status: 400,
                message: "bad".into()
            }
            .is_fallback_worthy()
        );
        assert!(!ProviderError::Auth { status: 401 }.is_fallback_worthy());
        let limited = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(limited.to_string(), "rate limited (HTTP 429), retry after 7.0s");
        assert_eq!(ProviderError::Timeout.retry_after(), None);
    }

    #[test]
    fn snippet_redacts_and_truncates() {
        let body = format!("Incorrect API key provided: sk-abc123. {}", "x".repeat(1000));
        let s = snippet(&body, &["sk-abc123"]);
        assert!(!s.contains("sk-abc123") && s.contains("[REDACTED]"));
        assert_eq!(s.chars().count(), SNIPPET_CHARS + 1);
        assert_eq!(truncate_chars("héllo", 2), "hé…");
        assert_eq!(truncate_chars("hé", 2), "hé");
    }
}
