//! Pacing of content-creating calls (comments, check runs, commits, pull requests), which
//! GitHub's secondary rate limits watch: at most N per minute and M per hour per installation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

use super::GithubError;

/// Default content-creating calls per minute per installation.
pub const DEFAULT_PER_MINUTE: u32 = 80;
/// Default content-creating calls per hour per installation.
pub const DEFAULT_PER_HOUR: u32 = 500;
/// Default longest wait for a slot; beyond it `acquire` fails with `RateLimited`.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Waits until one more content-creating call for an installation is allowed.
pub trait ContentThrottle: Send + Sync {
    /// Resolves when the call may go; `RateLimited` when the wait would exceed the cap.
    fn acquire(&self, installation_id: i64) -> BoxFuture<'_, Result<(), GithubError>>;
}

/// Limits of a throttle: calls per minute and per hour, and the longest wait accepted.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleLimits {
    pub per_minute: u32,
    pub per_hour: u32,
    pub max_wait: Duration,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            per_minute: DEFAULT_PER_MINUTE,
            per_hour: DEFAULT_PER_HOUR,
            max_wait: DEFAULT_MAX_WAIT,
        }
    }
}

/// One fixed-window counter.
#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    /// Time until this window admits another call under `limit` (zero: now).
    fn wait(&mut self, now: Instant, len: Duration, limit: u32) -> Duration {
        if now.duration_since(self.started) >= len {
            self.started = now;
            self.count = 0;
        }
        if self.count < limit {
            Duration::ZERO
        } else {
            len - now.duration_since(self.started)
        }
    }
}

/// In-process throttle: fixed per-minute and per-hour windows per installation.
pub struct LocalThrottle {
    limits: ThrottleLimits,
    windows: Mutex<HashMap<i64, (Window, Window)>>,
}

impl LocalThrottle {
    pub fn new(limits: ThrottleLimits) -> LocalThrottle {
        LocalThrottle {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a slot now, or says how long to wait for one.
    fn try_take(&self, installation_id: i64) -> Duration {
        let now = Instant::now();
        let mut map = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, h)| now.duration_since(h.started) < HOUR);
        }
        let fresh = Window { started: now, count: 0 };
        let (m, h) = map.entry(installation_id).or_insert((fresh, fresh));
        let wait = m
            .wait(now, MINUTE, self.limits.per_minute)
            .max(h.wait(now, HOUR, self.limits.per_hour));
        if wait.is_zero() {
            m.count += 1;
            h.count += 1;
        }
        wait
    }
}

impl Default for LocalThrottle {
    fn default() -> Self {
        LocalThrottle::new(ThrottleLimits::default())
    }
}

impl ContentThrottle for LocalThrottle {
    fn acquire(&self, installation_id: i64) -> BoxFuture<'_, Result<(), GithubError>> {
        Box::pin(async move {
            loop {
                let wait = self.try_take(installation_id);
                if wait.is_zero() {
                    return Ok(());
                }
                if wait > self.limits.max_wait {
                    return Err(GithubError::RateLimited { retry_after: wait });
                }
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// Takes a slot in both windows or returns the milliseconds to wait (0: taken).
/// KEYS: minute counter, hour counter. ARGV: per minute, per hour, minute ms, hour ms.
const TAKE_SLOT_LUA: &str = r#"
local function wait_for(key, limit, len)
  local n = tonumber(redis.call('GET', key) or '0')
  if n < limit then return 0 end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, len)
    ttl = len
  end
  return ttl
end
local per_min, per_hour = tonumber(ARGV[1]), tonumber(ARGV[2])
local min_ms, hour_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
local wait = math.max(wait_for(KEYS[1], per_min, min_ms), wait_for(KEYS[2], per_hour, hour_ms))
if wait > 0 then return wait end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], min_ms) end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], hour_ms) end
return 0
"#;

/// Throttle shared by every worker process: fixed windows counted in Redis keys
/// `{prefix}gh:throttle:{installation}:m` and `:h`, updated atomically by a Lua script.
pub struct RedisThrottle {
    conn: ConnectionManager,
    prefix: String,
    limits: ThrottleLimits,
    script: redis::Script,
}

impl RedisThrottle {
    /// `prefix` is the deployment's key prefix (QUEUE_PREFIX), possibly empty.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>, limits: ThrottleLimits) -> Self {
        RedisThrottle {
            conn,
            prefix: prefix.into(),
            limits,
            script: redis::Script::new(TAKE_SLOT_LUA),
        }
    }

    /// The minute and hour counter keys of `installation_id`.
    pub fn keys(&self, installation_id: i64) -> (String, String) {
        let base = format!("{}gh:throttle:{installation_id}", self.prefix);
        (format!("{base}:m"), format!("{base}:h"))
    }

    async fn try_take(&self, installation_id: i64) -> Result<Duration, GithubError> {
        let (m, h) = self.keys(installation_id);
        let mut conn = self.conn.clone();
        let wait_ms: u64 = self
            .script
            .key(m)
            .key(h)
            .arg(self.limits.per_minute)
            .arg(self.limits.per_hour)
            .arg(MINUTE.as_millis() as u64)
            .arg(HOUR.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| GithubError::Network(format!("throttle (Redis): {:?}", e.kind())))?;
        Ok(Duration::from_millis(wait_ms))
    }
}

impl ContentThrottle for RedisThrottle {
    fn acquire(&self, installation_id: i64) -> BoxFuture<'_, Result<(), GithubError>> {
        Box::pin(async move {
            loop {
                let wait = self.try_take(installation_id).await?;
                if wait.is_zero() {
                    return Ok(());
                }
                if wait > self.limits.max_wait {
                    return Err(GithubError::RateLimited { retry_after: wait });
                }
                tracing::debug!(
                    installation_id,
                    wait_ms = wait.as_millis() as u64,
                    "content throttle wait"
                );
                // A little jitter so waiting workers do not all retry at the same instant.
                let jitter = Duration::from_millis(fastrand::u64(0..50));
                tokio::time::sleep(wait + jitter).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_throttle_caps_per_minute() {
        let t = LocalThrottle::new(ThrottleLimits {
            per_minute: 3,
            per_hour: 100,
            max_wait: Duration::from_secs(1),
        });
        for _ in 0..3 {
            t.acquire(7).await.unwrap();
        }
        match t.acquire(7).await {
            Err(GithubError::RateLimited { retry_after }) => {
                assert!(retry_after > Duration::from_secs(50) && retry_after <= MINUTE)
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
        // Another installation has its own windows.
        t.acquire(8).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn local_throttle_waits_within_cap() {
        let t = LocalThrottle::new(ThrottleLimits {
            per_minute: 1,
            per_hour: 100,
            max_wait: Duration::from_secs(120),
        });
        t.acquire(1).await.unwrap();
        let start = tokio::time::Instant::now();
        t.acquire(1).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(59));
    }
}
