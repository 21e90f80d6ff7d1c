//! The one error type of the GitHub client.

use std::time::Duration;

/// Longest GitHub error message kept in [`GithubError::Http`].
const MAX_MESSAGE_CHARS: usize = 300;

/// A failed GitHub call. Messages never contain tokens, JWTs or the private key.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// GitHub answered with a non-success status; `message` is GitHub's JSON `message`.
    #[error("GitHub {method} {path} returned {status}: {message}")]
    Http {
        status: u16,
        method: String,
        path: String,
        message: String,
    },
    #[error("GitHub request failed: {0}")]
    Network(String),
    #[error("GitHub request timed out")]
    Timeout,
    /// A rate limit (primary or secondary) that asks for a longer wait than we accept now.
    #[error("GitHub rate limit: retry after {}s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("GitHub App authentication failed: {0}")]
    Auth(String),
    #[error("unexpected GitHub response: {0}")]
    Decode(String),
    #[error("too large: {0}")]
    TooLarge(String),
    /// Writing downloaded files failed.
    #[error("local file error: {0}")]
    Io(String),
    /// An argument the client refuses (bad repository name, pushing to the base branch, …).
    #[error("invalid GitHub request: {0}")]
    InvalidInput(String),
}

impl GithubError {
    /// Whether the same call may succeed later: 5xx, network errors, timeouts, rate limits.
    pub fn is_retryable(&self) -> bool {
        match self {
            GithubError::Http { status, .. } => *status >= 500,
            GithubError::Network(_) | GithubError::Timeout | GithubError::RateLimited { .. } => true,
            _ => false,
        }
    }

    /// Whether GitHub may have carried the request out although it failed here: a 5xx, a
    /// timeout or a network error (unlike a rate limit or another 4xx, which GitHub refused).
    pub fn may_have_acted(&self) -> bool {
        match self {
            GithubError::Http { status, .. } => *status >= 500,
            GithubError::Network(_) | GithubError::Timeout => true,
            _ => false,
        }
    }

    /// The HTTP status GitHub answered with, when the error is an HTTP answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            GithubError::Http { status, .. } => Some(*status),
            GithubError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Builds an [`GithubError::Http`] from a response body (GitHub's JSON `message`, cut short).
    pub(crate) fn http(status: u16, method: &str, path: &str, body: &[u8]) -> GithubError {
        let json = serde_json::from_slice::<serde_json::Value>(body).ok();
        let mut message = json
            .as_ref()
            .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        // A 422 explains itself in `errors[]` ("No commits between main and …").
        let details: Vec<String> = json
            .as_ref()
            .and_then(|v| v.get("errors")?.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| match e {
                serde_json::Value::String(s) => Some(s.clone()),
                e => e
                    .get("message")
                    .or_else(|| e.get("code"))
                    .and_then(|m| m.as_str())
                    .map(str::to_owned),
            })
            .collect();
        if !details.is_empty() {
            message = format!("{message}: {}", details.join("; "));
        }
        GithubError::Http {
            status,
            method: method.to_owned(),
            path: path.to_owned(),
            message: truncate_chars(message.trim(), MAX_MESSAGE_CHARS),
        }
    }
}

/// `s` cut to at most `max` characters (on a character boundary).
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_and_status() {
        let e = GithubError::http(502, "GET", "/x", b"{\"message\":\"Bad gateway\"}");
        assert!(e.is_retryable());
        assert_eq!(e.status(), Some(502));
        assert!(e.to_string().contains("Bad gateway"));
        let e = GithubError::http(404, "GET", "/x", b"{\"message\":\"Not Found\"}");
        assert!(!e.is_retryable());
        assert_eq!(e.status(), Some(404));
        assert!(GithubError::Timeout.is_retryable());
        let e = GithubError::http(
            422,
            "POST",
            "/repos/o/r/pulls",
            br#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"No commits between main and autodevops/ci"}]}"#,
        );
        assert!(
            e.to_string()
                .ends_with("Validation Failed: No commits between main and autodevops/ci")
        );
        assert!(!GithubError::Decode("x".into()).is_retryable());
    }

    #[test]
    fn long_messages_are_cut() {
        let body = format!("{{\"message\":\"{}\"}}", "é".repeat(1000));
        let GithubError::Http { message, .. } = GithubError::http(422, "POST", "/x", body.as_bytes()) else {
            panic!("not http")
        };
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
    }
}
