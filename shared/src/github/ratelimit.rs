//! Recognising GitHub rate limits (primary and secondary) and recording what is left.

use std::time::Duration;

use chrono::Utc;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// A secondary rate limit without any hint: GitHub asks to wait at least a minute.
const SECONDARY_LIMIT_DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// Records `x-ratelimit-remaining` as a gauge per installation.
pub(crate) fn record_rate_limit(headers: &HeaderMap, installation: &str) {
    if let Some(remaining) = header_u64(headers, "x-ratelimit-remaining") {
        metrics::gauge!("autodevops_github_rate_limit_remaining", "installation" => installation.to_owned())
            .set(remaining as f64);
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// How long GitHub asks us to wait, when a 429/403 is a (primary or secondary) rate limit.
pub(crate) fn rate_limit_wait(status: u16, headers: &HeaderMap, body: &[u8]) -> Option<Duration> {
    if status != 403 && status != 429 {
        return None;
    }
    let retry_after = header_u64(headers, RETRY_AFTER.as_str());
    let exhausted = header_u64(headers, "x-ratelimit-remaining") == Some(0);
    let says_rate_limit = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_lowercase))
        .is_some_and(|m| m.contains("rate limit"));
    if status == 403 && retry_after.is_none() && !exhausted && !says_rate_limit {
        return None;
    }
    if let Some(secs) = retry_after {
        return Some(Duration::from_secs(secs));
    }
    if exhausted && let Some(reset) = header_u64(headers, "x-ratelimit-reset") {
        let now = Utc::now().timestamp().max(0) as u64;
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    Some(SECONDARY_LIMIT_DEFAULT_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn recognises_rate_limits() {
        let mut h = HeaderMap::new();
        let body = br#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes."}"#;
        assert_eq!(rate_limit_wait(403, &h, body), Some(SECONDARY_LIMIT_DEFAULT_WAIT));
        assert_eq!(
            rate_limit_wait(403, &h, br#"{"message":"Resource not accessible by integration"}"#),
            None
        );
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(rate_limit_wait(429, &h, b""), Some(Duration::from_secs(3)));
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let reset = (Utc::now().timestamp() + 30).to_string();
        h.insert("x-ratelimit-reset", HeaderValue::from_str(&reset).unwrap());
        let wait = rate_limit_wait(403, &h, b"{}").unwrap();
        assert!(wait >= Duration::from_secs(28) && wait <= Duration::from_secs(30));
        assert_eq!(rate_limit_wait(500, &h, b"{}"), None);
    }
}
