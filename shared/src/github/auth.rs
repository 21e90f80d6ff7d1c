//! GitHub App authentication: the App JWT and cached installation tokens.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::GithubError;

/// The JWT is dated this far back to tolerate clock drift (GitHub's advice).
const JWT_BACKDATE_SECS: i64 = 60;
/// Lifetime of the App JWT (GitHub accepts at most 10 minutes).
const JWT_LIFETIME_SECS: i64 = 9 * 60;
/// A cached installation token is renewed this long before it expires.
pub(crate) const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct AppClaims {
    iss: String,
    iat: i64,
    exp: i64,
}

/// Signs the App JWT: RS256, `iss` = the app id, `iat` = now − 60 s, `exp` = now + 9 min.
pub(crate) fn sign_app_jwt(key: &EncodingKey, app_id: u64) -> Result<SecretString, GithubError> {
    let now = Utc::now().timestamp();
    let claims = AppClaims {
        iss: app_id.to_string(),
        iat: now - JWT_BACKDATE_SECS,
        exp: now + JWT_LIFETIME_SECS,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
        .map(SecretString::from)
        .map_err(|_| GithubError::Auth("cannot sign the App JWT with the configured key".into()))
}

/// An installation token and when it stops working.
#[derive(Clone)]
pub(crate) struct InstallationToken {
    pub(crate) token: SecretString,
    pub(crate) expires_at: DateTime<Utc>,
}

impl InstallationToken {
    fn fresh(&self) -> bool {
        let margin = chrono::Duration::from_std(TOKEN_REFRESH_MARGIN).unwrap_or_default();
        Utc::now() + margin < self.expires_at
    }
}

/// Per-installation slot; its async mutex makes one refresh at a time per installation.
type Slot = Arc<tokio::sync::Mutex<Option<InstallationToken>>>;

/// Installation tokens cached until shortly before they expire, refreshed single-flight.
#[derive(Default)]
pub(crate) struct TokenCache {
    slots: Mutex<HashMap<i64, Slot>>,
}

impl TokenCache {
    fn slot(&self, installation_id: i64) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(installation_id).or_default().clone()
    }

    /// The cached token of `installation_id`, or a new one from `exchange`. Concurrent callers
    /// for one installation wait for a single exchange and share its token.
    pub(crate) async fn get<F, Fut>(&self, installation_id: i64, exchange: F) -> Result<SecretString, GithubError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<InstallationToken, GithubError>>,
    {
        let slot = self.slot(installation_id);
        let mut guard = slot.lock().await;
        if let Some(tok) = guard.as_ref().filter(|t| t.fresh()) {
            return Ok(tok.token.clone());
        }
        let tok = exchange().await?;
        let token = tok.token.clone();
        tracing::debug!(installation_id, expires_at = %tok.expires_at, "installation token refreshed");
        *guard = Some(tok);
        Ok(token)
    }

    /// Forgets the cached token of `installation_id` (after GitHub rejected it).
    pub(crate) async fn invalidate(&self, installation_id: i64) {
        let slot = self.slot(installation_id);
        *slot.lock().await = None;
    }

    /// Forgets the cached token only if it is still `used`: a 401 seen by several callers at
    /// once then leads to one refresh, not one per caller.
    pub(crate) async fn invalidate_if(&self, installation_id: i64, used: &SecretString) {
        let slot = self.slot(installation_id);
        let mut guard = slot.lock().await;
        if guard
            .as_ref()
            .is_some_and(|t| t.token.expose_secret() == used.expose_secret())
        {
            *guard = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn token(s: &str, secs: i64) -> InstallationToken {
        InstallationToken {
            token: SecretString::from(s),
            expires_at: Utc::now() + chrono::Duration::seconds(secs),
        }
    }

    #[tokio::test]
    async fn caches_until_near_expiry() {
        let cache = TokenCache::default();
        let calls = AtomicUsize::new(0);
        for _ in 0..3 {
            let t = cache
                .get(1, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(token("a", 3600))
                })
                .await
                .unwrap();
            assert_eq!(t.expose_secret(), "a");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // A token inside the refresh margin is replaced on the next call.
        cache.invalidate(2).await;
        let _ = cache.get(2, || async { Ok(token("b", 30)) }).await.unwrap();
        let t = cache.get(2, || async { Ok(token("c", 3600)) }).await.unwrap();
        assert_eq!(t.expose_secret(), "c");
        // invalidate_if leaves a newer token alone.
        cache.invalidate_if(2, &SecretString::from("b")).await;
        let t = cache.get(2, || async { Ok(token("d", 3600)) }).await.unwrap();
        assert_eq!(t.expose_secret(), "c");
    }
}
