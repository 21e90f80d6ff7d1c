//! The GitHub App client: one request path for every call (auth, timeout, retries, rate
//! limits, ETags, throttling of content-creating calls, a per-process concurrency cap).

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use jsonwebtoken::EncodingKey;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH, USER_AGENT};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use url::Url;

use super::auth::{InstallationToken, TokenCache, sign_app_jwt};
use super::etag::EtagCache;
use super::ratelimit::{rate_limit_wait, record_rate_limit};
use super::throttle::{ContentThrottle, LocalThrottle};
use super::{GithubConfig, GithubError, urls};

const USER_AGENT_VALUE: &str = concat!("autodevops/", env!("CARGO_PKG_VERSION"));
const API_VERSION: &str = "2022-11-28";
/// Largest response body read into memory.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Most pages followed by one paginated listing.
const MAX_PAGES: usize = 200;
/// How long past the request timeout a dead process's in-flight slot stays taken.
const IN_FLIGHT_LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Default requests in flight at once per process.
pub const DEFAULT_MAX_CONCURRENT: usize = 50;
/// Entries of the ETag cache.
const ETAG_CACHE_ENTRIES: usize = 1024;

/// How failed calls are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt (5xx, network errors, timeouts, short rate limits).
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Longest rate-limit wait done in place; longer ones return `RateLimited`.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

struct Core {
    app_id: u64,
    key: EncodingKey,
    api_url: Url,
    timeout: Duration,
    http: reqwest::Client,
    tokens: TokenCache,
    etags: EtagCache,
    permits: Semaphore,
}

/// The GitHub App. Cheap to clone: every clone shares tokens, caches and limits.
#[derive(Clone)]
pub struct GithubApp {
    core: Arc<Core>,
    throttle: Arc<dyn ContentThrottle>,
    retry: RetryPolicy,
}

/// A handle on one installation of the App; calls use its installation token.
#[derive(Clone)]
pub struct Installation {
    pub(crate) app: GithubApp,
    pub(crate) id: i64,
}

/// Who a request authenticates as.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Auth {
    App,
    Installation(i64),
}

impl Auth {
    fn label(self) -> String {
        match self {
            Auth::App => "app".to_owned(),
            Auth::Installation(id) => id.to_string(),
        }
    }
}

/// One request, replayable across retries.
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) auth: Auth,
    pub(crate) body: Option<serde_json::Value>,
    /// Content-creating: passes the content throttle first.
    pub(crate) content: bool,
    /// GET answered from the ETag cache on 304.
    pub(crate) cache: bool,
    /// Sent again after a 5xx, a timeout or a network error, after which GitHub may have
    /// acted. `false` for creations that must not happen twice: their caller looks the object
    /// up instead. Rate limits and a refused token are retried either way (GitHub did not act).
    pub(crate) retry_unanswered: bool,
}

/// A successful response.
pub(crate) struct Resp {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, GithubError> {
        decode(&self.body)
    }
}

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, GithubError> {
    serde_json::from_slice(body).map_err(|e| GithubError::Decode(e.to_string()))
}

#[derive(Deserialize)]
struct AccessTokenResponse {
    token: String,
    expires_at: DateTime<Utc>,
}

impl GithubApp {
    /// Builds the App from validated configuration and a shared HTTP client.
    pub fn new(cfg: GithubConfig, http: reqwest::Client) -> Result<GithubApp, GithubError> {
        let key = EncodingKey::from_rsa_pem(cfg.private_key.expose_secret().as_bytes())
            .map_err(|_| GithubError::Auth("the App private key is not a valid RSA PEM".into()))?;
        // Fail at start, not on the first call, when the key cannot sign.
        sign_app_jwt(&key, cfg.app_id)?;
        let mut api_url = cfg.api_url;
        if !api_url.path().ends_with('/') {
            let path = format!("{}/", api_url.path());
            api_url.set_path(&path);
        }
        Ok(GithubApp {
            core: Arc::new(Core {
                app_id: cfg.app_id,
                key,
                api_url,
                timeout: cfg.timeout,
                http,
                tokens: TokenCache::default(),
                etags: EtagCache::new(ETAG_CACHE_ENTRIES),
                permits: Semaphore::new(DEFAULT_MAX_CONCURRENT),
            }),
            throttle: Arc::new(LocalThrottle::default()),
            retry: RetryPolicy::default(),
        })
    }

    /// Replaces the content throttle (e.g. a `RedisThrottle` shared by all workers).
    pub fn with_throttle(mut self, throttle: Arc<dyn ContentThrottle>) -> Self {
        self.throttle = throttle;
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The App's id.
    pub fn app_id(&self) -> u64 {
        self.core.app_id
    }

    /// A handle on one installation (no request is made).
    pub fn installation(&self, installation_id: i64) -> Installation {
        Installation {
            app: self.clone(),
            id: installation_id,
        }
    }

    /// A valid installation token (cached; refreshed 60 s before expiry), e.g. for `git clone`.
    pub async fn installation_token(&self, installation_id: i64) -> Result<SecretString, GithubError> {
        (|| self.token(installation_id))
            .retry(self.backoff())
            .when(|e| e.is_retryable() && !self.too_long(e))
            .await
    }

    /// Forgets the cached token of an installation (after GitHub answered 401 to it).
    pub async fn invalidate(&self, installation_id: i64) {
        self.core.tokens.invalidate(installation_id).await;
    }

    /// The API URL of `path` (relative, e.g. `repos/o/r/pulls`).
    pub(crate) fn url(&self, path: &str) -> Result<Url, GithubError> {
        self.core
            .api_url
            .join(path)
            .map_err(|e| GithubError::InvalidInput(format!("bad API path {path:?}: {e}")))
    }

    /// A paginated `next` link, refused when it leaves the API.
    pub(crate) fn follow(&self, link: &str) -> Result<Url, GithubError> {
        let url = Url::parse(link).map_err(|e| GithubError::Decode(format!("bad pagination link: {e}")))?;
        if !urls::same_origin(&url, &self.core.api_url) {
            return Err(GithubError::Decode(
                "pagination link points outside the GitHub API".into(),
            ));
        }
        Ok(url)
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_retries)
    }

    fn too_long(&self, e: &GithubError) -> bool {
        matches!(e, GithubError::RateLimited { retry_after } if *retry_after > self.retry.max_rate_limit_wait)
    }

    /// Sends `req`: throttle (content calls), retries, one token refresh after a 401.
    pub(crate) async fn send(&self, req: &Req) -> Result<Resp, GithubError> {
        if req.content {
            let key = match req.auth {
                Auth::Installation(id) => id,
                Auth::App => 0,
            };
            self.throttle.acquire(key).await?;
        }
        match (self.send_retrying(req).await, req.auth) {
            (Err(e), Auth::Installation(id)) if e.status() == Some(401) => {
                tracing::info!(
                    installation_id = id,
                    "GitHub rejected the installation token; refreshing once"
                );
                self.send_retrying(req).await
            }
            (result, _) => result,
        }
    }

    async fn send_retrying(&self, req: &Req) -> Result<Resp, GithubError> {
        (|| self.attempt(req))
            .retry(self.backoff())
            .when(|e| e.is_retryable() && !self.too_long(e) && (req.retry_unanswered || !e.may_have_acted()))
            .adjust(|e, next| match (e, next) {
                (GithubError::RateLimited { retry_after }, Some(_)) => {
                    Some(*retry_after + Duration::from_millis(fastrand::u64(0..250)))
                }
                (_, next) => next,
            })
            .notify(|e, delay| {
                tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "GitHub call failed; retrying");
            })
            .await
    }

    /// One attempt: resolves the credentials, then performs the request.
    async fn attempt(&self, req: &Req) -> Result<Resp, GithubError> {
        match req.auth {
            Auth::App => {
                let jwt = sign_app_jwt(&self.core.key, self.core.app_id)?;
                self.execute(req, &jwt).await
            }
            Auth::Installation(id) => {
                let token = self.token(id).await?;
                let result = self.execute(req, &token).await;
                if matches!(&result, Err(e) if e.status() == Some(401)) {
                    self.core.tokens.invalidate_if(id, &token).await;
                }
                result
            }
        }
    }

    /// The cached token of an installation, or one exchange (single flight).
    async fn token(&self, installation_id: i64) -> Result<SecretString, GithubError> {
        self.core
            .tokens
            .get(installation_id, || self.exchange(installation_id))
            .await
    }

    /// POST app/installations/{id}/access_tokens with the App JWT.
    async fn exchange(&self, installation_id: i64) -> Result<InstallationToken, GithubError> {
        let req = Req {
            method: Method::POST,
            url: self.url(&format!("app/installations/{installation_id}/access_tokens"))?,
            auth: Auth::App,
            body: None,
            content: false,
            cache: false,
            retry_unanswered: true,
        };
        let jwt = sign_app_jwt(&self.core.key, self.core.app_id)?;
        let resp = self.execute(&req, &jwt).await.map_err(|e| match e {
            GithubError::Http { status, message, .. } if status < 500 => GithubError::Auth(format!(
                "installation {installation_id}: token exchange answered {status}: {message}"
            )),
            other => other,
        })?;
        let tok: AccessTokenResponse = resp.json()?;
        Ok(InstallationToken {
            token: SecretString::from(tok.token),
            expires_at: tok.expires_at,
        })
    }

    /// Performs one HTTP exchange with `credential` as Bearer.
    async fn execute(&self, req: &Req, credential: &SecretString) -> Result<Resp, GithubError> {
        let core = &self.core;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", credential.expose_secret()))
            .map_err(|_| GithubError::Auth("credential is not a valid HTTP header value".into()))?;
        auth.set_sensitive(true);
        let label = req.auth.label();
        let cache_key = (req.cache && req.method == Method::GET).then(|| format!("{label} {}", req.url));

        let mut rb = core
            .http
            .request(req.method.clone(), req.url.clone())
            .timeout(core.timeout)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(AUTHORIZATION, auth);
        if let Some(etag) = cache_key.as_deref().and_then(|k| core.etags.etag(k)) {
            rb = rb.header(IF_NONE_MATCH, etag);
        }
        if let Some(body) = &req.body {
            rb = rb.json(body);
        }

        // The installation's slot among the requests in flight across every worker, then this
        // process's own cap.
        let _in_flight = match req.auth {
            Auth::Installation(id) => Some(self.throttle.enter(id, core.timeout + IN_FLIGHT_LEASE_MARGIN).await?),
            Auth::App => None,
        };
        let _permit = core
            .permits
            .acquire()
            .await
            .map_err(|_| GithubError::Network("client is shut down".into()))?;
        let mut resp = rb.send().await.map_err(network_error)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        record_rate_limit(&headers, &label);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(network_error)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(GithubError::TooLarge(format!(
                    "response of {} {} exceeds {MAX_BODY_BYTES} bytes",
                    req.method,
                    req.url.path()
                )));
            }
            body.extend_from_slice(&chunk);
        }
        drop(_permit);

        if status == 304
            && let Some(cached) = cache_key.as_deref().and_then(|k| core.etags.body(k))
        {
            return Ok(Resp {
                headers,
                body: cached.to_vec(),
            });
        }
        if (200..300).contains(&status) {
            if let (Some(key), Some(etag)) = (cache_key.as_deref(), headers.get(ETAG).and_then(|v| v.to_str().ok())) {
                core.etags.put(key, etag, &body);
            }
            return Ok(Resp { headers, body });
        }
        if let Some(retry_after) = rate_limit_wait(status, &headers, &body) {
            tracing::warn!(
                status,
                path = req.url.path(),
                retry_after_s = retry_after.as_secs(),
                "GitHub rate limit"
            );
            return Err(GithubError::RateLimited { retry_after });
        }
        Err(GithubError::http(status, req.method.as_str(), req.url.path(), &body))
    }
}

/// A reqwest failure as our error (URL-free, with its causes).
pub(crate) fn network_error(e: reqwest::Error) -> GithubError {
    if e.is_timeout() {
        return GithubError::Timeout;
    }
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    GithubError::Network(msg)
}

impl Installation {
    /// The installation id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// A valid installation token (see [`GithubApp::installation_token`]).
    pub async fn token(&self) -> Result<SecretString, GithubError> {
        self.app.installation_token(self.id).await
    }

    fn req(&self, method: Method, url: Url, body: Option<serde_json::Value>) -> Req {
        let content = matches!(method, Method::POST | Method::PATCH | Method::PUT);
        let cache = method == Method::GET;
        Req {
            method,
            url,
            auth: Auth::Installation(self.id),
            body,
            content,
            cache,
            retry_unanswered: true,
        }
    }

    /// GET a JSON document.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, GithubError> {
        self.app.send(&self.req(Method::GET, url, None)).await?.json()
    }

    /// GET without the ETag cache (large, immutable documents such as blobs).
    pub(crate) async fn get_json_uncached<T: DeserializeOwned>(&self, url: Url) -> Result<T, GithubError> {
        let mut req = self.req(Method::GET, url, None);
        req.cache = false;
        self.app.send(&req).await?.json()
    }

    /// GET a JSON document; `None` on 404.
    pub(crate) async fn get_optional<T: DeserializeOwned>(&self, url: Url) -> Result<Option<T>, GithubError> {
        match self.app.send(&self.req(Method::GET, url, None)).await {
            Ok(resp) => resp.json().map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A content-creating call (POST/PATCH/PUT) with a JSON body; passes the throttle.
    pub(crate) async fn write<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: serde_json::Value,
    ) -> Result<T, GithubError> {
        self.app.send(&self.req(method, url, Some(body))).await?.json()
    }

    /// A POST creating something that must exist once (a check run, a comment): not sent
    /// again when GitHub may have acted without the answer reaching us (5xx, timeout, network
    /// error). The caller looks the object up then; see [`Req::retry_unanswered`].
    pub(crate) async fn create<T: DeserializeOwned>(
        &self,
        url: Url,
        body: serde_json::Value,
    ) -> Result<T, GithubError> {
        let mut req = self.req(Method::POST, url, Some(body));
        req.retry_unanswered = false;
        self.app.send(&req).await?.json()
    }

    /// All pages of a listing. `field`: the array's key when pages are objects
    /// (`{"total_count":…, "repositories":[…]}`), `None` when pages are arrays.
    pub(crate) async fn paginate<T: DeserializeOwned>(
        &self,
        first: Url,
        field: Option<&str>,
    ) -> Result<Vec<T>, GithubError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(GithubError::TooLarge(format!(
                    "listing has more than {MAX_PAGES} pages"
                )));
            }
            let resp = self.app.send(&self.req(Method::GET, url, None)).await?;
            let items: Vec<T> = match field {
                None => resp.json()?,
                Some(f) => {
                    let mut page: serde_json::Value = resp.json()?;
                    let arr = page
                        .get_mut(f)
                        .map(serde_json::Value::take)
                        .ok_or_else(|| GithubError::Decode(format!("page has no {f:?} field")))?;
                    serde_json::from_value(arr).map_err(|e| GithubError::Decode(e.to_string()))?
                }
            };
            out.extend(items);
            if let Some(link) = urls::next_link(&resp.headers) {
                next = Some(self.app.follow(&link)?);
            }
        }
        Ok(out)
    }
}

impl GithubApp {
    /// An App-authenticated (JWT) request.
    pub(crate) async fn app_call(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<Resp, GithubError> {
        let req = Req {
            method,
            url,
            auth: Auth::App,
            body,
            content: false,
            cache: false,
            retry_unanswered: true,
        };
        self.send(&req).await
    }
}
