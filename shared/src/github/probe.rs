//! Reachability of the GitHub API for readiness probes: one unauthenticated GET of the API
//! root, remembered for a while so probes every few seconds do not become GitHub traffic.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::GithubConfig;

/// How long one probe's answer is reused.
const REUSE: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(3);

/// The last answer: when it was taken, and the latency or the error.
type Last = Option<(Instant, Result<Duration, String>)>;

fn last() -> &'static Mutex<Last> {
    static LAST: OnceLock<Mutex<Last>> = OnceLock::new();
    LAST.get_or_init(|| Mutex::new(None))
}

/// Whether the API at `cfg.api_url` answers (any HTTP status below 500 counts: the root of
/// GitHub Enterprise Server's API may ask for authentication).
pub async fn reachable(cfg: &GithubConfig) -> Result<Duration, String> {
    static HTTP: OnceLock<reqwest::Client> = OnceLock::new();
    let http = HTTP.get_or_init(reqwest::Client::new);
    if let Some((at, res)) = last().lock().expect("probe lock").clone()
        && at.elapsed() < REUSE
    {
        return res;
    }
    let started = Instant::now();
    let res = match http
        .get(cfg.api_url.clone())
        .header("user-agent", "autodevops-readiness")
        .timeout(TIMEOUT)
        .send()
        .await
    {
        Ok(r) if r.status().as_u16() < 500 => Ok(started.elapsed()),
        Ok(r) => Err(format!("GitHub API answered {}", r.status())),
        Err(e) => Err(format!(
            "cannot reach the GitHub API: {}",
            super::client::network_error(e)
        )),
    };
    *last().lock().expect("probe lock") = Some((Instant::now(), res.clone()));
    res
}
