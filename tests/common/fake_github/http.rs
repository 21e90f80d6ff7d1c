//! The HTTP side of the fake: one wiremock responder that records each request, applies
//! injected failures, authenticates like GitHub, routes, and adds rate-limit and ETag headers.

use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

use super::git::sha1_hex;
use super::state::{RATE_LIMIT, State};
use super::{app, repos};

pub(super) const DOCS: &str = "https://docs.github.com/rest";

pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A response before the common headers are added.
pub(super) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn ok(body: Value) -> Reply {
        Reply::json(200, body)
    }

    /// GitHub's error shape: a message and a documentation link.
    pub fn message(status: u16, message: &str) -> Reply {
        Reply::json(status, json!({"message": message, "documentation_url": DOCS}))
    }

    pub fn not_found() -> Reply {
        Reply::message(404, "Not Found")
    }

    /// 422 "Validation Failed" with GitHub's `errors` array.
    pub fn validation(errors: Value) -> Reply {
        Reply::json(
            422,
            json!({"message": "Validation Failed", "errors": errors, "documentation_url": DOCS}),
        )
    }

    /// 422 with a custom error message, as GitHub words rule violations.
    pub fn custom(resource: &str, message: &str) -> Reply {
        Reply::validation(json!([{"resource": resource, "code": "custom", "message": message}]))
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What a handler knows about the request.
pub(super) struct Ctx<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Vec<(String, String)>,
    pub body: Value,
    pub base: &'a str,
    /// The installation of the token used, for installation-authenticated routes.
    pub installation: Option<i64>,
    /// The `iss` claim of the JWT used, for app-authenticated routes.
    pub app_id: Option<Value>,
}

impl Ctx<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// `per_page` (default 30, at most 100) and `page` (from 1).
    pub fn page(&self) -> (usize, usize) {
        let per_page = self
            .param("per_page")
            .and_then(|v| v.parse().ok())
            .unwrap_or(30usize)
            .clamp(1, 100);
        let page = self.param("page").and_then(|v| v.parse().ok()).unwrap_or(1usize).max(1);
        (per_page, page)
    }

    /// This request's URL with query parameter `name` set to `value`.
    pub fn url_with(&self, name: &str, value: &str) -> String {
        let mut pairs: Vec<(String, String)> = self.query.iter().filter(|(k, _)| k != name).cloned().collect();
        pairs.push((name.to_string(), value.to_string()));
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("{}{}?{}", self.base, self.path, query.join("&"))
    }

    /// One page of `items` and, when there are other pages, a `Link` header like GitHub's.
    pub fn paginate<T: Clone>(&self, items: &[T]) -> (Vec<T>, Option<String>) {
        let (per_page, page) = self.page();
        let pages = items.len().div_ceil(per_page).max(1);
        let slice: Vec<T> = items
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .cloned()
            .collect();
        let mut links = Vec::new();
        let mut link =
            |n: usize, rel: &str| links.push(format!("<{}>; rel=\"{rel}\"", self.url_with("page", &n.to_string())));
        if page > 1 {
            link(page - 1, "prev");
        }
        if page < pages {
            link(page + 1, "next");
            link(pages, "last");
        }
        if page > 1 {
            link(1, "first");
        }
        (slice, (!links.is_empty()).then(|| links.join(", ")))
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}

/// Answers every request to the mock server from the shared state.
pub(super) struct Responder {
    pub state: Arc<Mutex<State>>,
    pub base: String,
}

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = lock(&self.state);
        let path = req.url.path().to_string();
        let method = req.method.as_str().to_string();
        st.requests.push((method.clone(), path.clone()));
        let mut reply = match injected_failure(&mut st, &method, &path) {
            Some((r, false)) => r,
            Some((r, true)) => {
                handle(&mut st, req, &method, &path, &self.base);
                r
            }
            None => handle(&mut st, req, &method, &path, &self.base),
        };
        let mut counted = true;
        if method == "GET" && reply.status == 200 {
            let body = reply.body.as_ref().map(Value::to_string).unwrap_or_default();
            let etag = format!("W/\"{}\"", sha1_hex(body.as_bytes()));
            let matches = req
                .headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
            if matches {
                // GitHub does not charge conditional requests answered 304.
                reply = Reply {
                    status: 304,
                    body: None,
                    headers: Vec::new(),
                };
                counted = false;
            }
            reply = reply.header("etag", etag);
        }
        if counted {
            st.rate_remaining = (st.rate_remaining - 1).max(0);
        }
        render(reply, &st)
    }
}

fn render(reply: Reply, st: &State) -> ResponseTemplate {
    let mut t = ResponseTemplate::new(reply.status)
        .insert_header("x-ratelimit-limit", RATE_LIMIT.to_string())
        .insert_header("x-ratelimit-remaining", st.rate_remaining.to_string())
        .insert_header("x-ratelimit-used", (RATE_LIMIT - st.rate_remaining).to_string())
        .insert_header("x-ratelimit-reset", st.rate_reset.to_string())
        .insert_header("x-ratelimit-resource", "core")
        .insert_header("x-github-request-id", format!("FAKE:{}", st.requests.len()));
    for (k, v) in reply.headers {
        t = t.insert_header(k.as_str(), v.as_str());
    }
    if let Some(body) = reply.body {
        t = t.set_body_raw(body.to_string().into_bytes(), "application/json; charset=utf-8");
    }
    t
}

/// The next injected status for `path`, rendered as GitHub words it, and whether the request
/// is carried out before it.
fn injected_failure(st: &mut State, method: &str, path: &str) -> Option<(Reply, bool)> {
    let rule = st
        .failures
        .iter_mut()
        .find(|r| !r.queue.is_empty() && r.regex.is_match(path) && r.method.as_deref().is_none_or(|m| m == method))?;
    let after_handling = rule.after_handling;
    let (status, retry_after) = rule.queue.pop_front()?;
    st.failures.retain(|r| !r.queue.is_empty());
    let mut reply = match (status, retry_after) {
        (403 | 429, Some(_)) => Reply::message(
            status,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID FAKE.",
        ),
        (403 | 429, None) => Reply::message(status, "API rate limit exceeded for installation.")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-used", RATE_LIMIT.to_string()),
        (401, _) => Reply::message(401, "Bad credentials"),
        (404, _) => Reply::not_found(),
        (409, _) => Reply::message(409, "Conflict"),
        (422, _) => Reply::message(422, "Validation Failed"),
        (s, _) if s >= 500 => Reply::message(s, "Server Error"),
        (s, _) => Reply::message(s, "Injected failure"),
    };
    if let Some(secs) = retry_after {
        reply = reply.header("retry-after", secs.to_string());
    }
    Some((reply, after_handling))
}

fn handle(st: &mut State, req: &Request, method: &str, path: &str, base: &str) -> Reply {
    let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let app_route = segs.first().is_some_and(|s| s == "app");
    let mut ctx = Ctx {
        method,
        path,
        query: req
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        body: Value::Null,
        base,
        installation: None,
        app_id: None,
    };
    match authenticate(st, req, app_route) {
        Ok(Auth::App(iss)) => ctx.app_id = Some(iss),
        Ok(Auth::Installation(id)) => ctx.installation = Some(id),
        Err(reply) => return reply,
    }
    if !req.body.is_empty() {
        match serde_json::from_slice(&req.body) {
            Ok(v) => ctx.body = v,
            Err(_) => return Reply::message(400, "Problems parsing JSON"),
        }
    }
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["app", rest @ ..] => app::handle(st, &ctx, rest),
        ["installation", "repositories"] if method == "GET" => app::installation_repos(st, &ctx),
        ["repos", owner, name, rest @ ..] => repos::handle(st, &ctx, owner, name, rest),
        _ => Reply::not_found(),
    }
}

enum Auth {
    App(Value),
    Installation(i64),
}

/// App routes take a JWT (`Bearer`); all others an issued, unexpired installation token
/// (`token` or `Bearer`).
fn authenticate(st: &State, req: &Request, app_route: bool) -> Result<Auth, Reply> {
    let header = req.headers.get("authorization").and_then(|v| v.to_str().ok());
    let Some(header) = header else {
        return Err(Reply::message(401, "Requires authentication"));
    };
    let (scheme, credential) = header.split_once(' ').unwrap_or((header, ""));
    let scheme = scheme.to_ascii_lowercase();
    let credential = credential.trim();
    if app_route {
        if scheme != "bearer" {
            return Err(Reply::message(401, "A JSON web token could not be decoded"));
        }
        return check_jwt(credential).map(Auth::App).map_err(|m| Reply::message(401, m));
    }
    if scheme != "token" && scheme != "bearer" {
        return Err(Reply::message(401, "Bad credentials"));
    }
    match st.tokens.get(credential) {
        Some(t) if !t.expired => Ok(Auth::Installation(t.installation)),
        _ => Err(Reply::message(401, "Bad credentials")),
    }
}

/// Checks that `jwt` is three base64url parts, the first two JSON, with an `iss` and an `exp`
/// in the future but at most ten minutes ahead (GitHub's rule; a minute of clock drift
/// allowed). Returns the `iss` claim.
fn check_jwt(jwt: &str) -> Result<Value, &'static str> {
    const UNDECODABLE: &str = "A JSON web token could not be decoded";
    let engine = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(UNDECODABLE);
    }
    let json_part = |p: &str| -> Option<Value> {
        serde_json::from_slice::<Value>(&engine.decode(p).ok()?)
            .ok()
            .filter(Value::is_object)
    };
    let (Some(_header), Some(claims)) = (json_part(parts[0]), json_part(parts[1])) else {
        return Err(UNDECODABLE);
    };
    if engine.decode(parts[2]).is_err() {
        return Err(UNDECODABLE);
    }
    let now = chrono::Utc::now().timestamp();
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        );
    };
    if exp <= now {
        return Err(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        );
    }
    if exp > now + 600 + 60 {
        return Err("'Expiration time' claim ('exp') is too far in the future");
    }
    if claims
        .get("iat")
        .and_then(Value::as_i64)
        .is_some_and(|iat| iat > now + 60)
    {
        return Err("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued");
    }
    claims
        .get("iss")
        .cloned()
        .ok_or("'Issuer' claim ('iss') must be an Integer")
}

/// Percent-encodes a query component, keeping unreserved characters and `:`.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Decodes `%XX` escapes in a path segment.
fn percent_decode(seg: &str) -> String {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = seg.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Now as GitHub formats timestamps (RFC 3339, seconds, `Z`).
pub(super) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
