//! Pacing of calls to GitHub, which its secondary rate limits watch: content-creating calls
//! (comments, check runs, commits, pull requests) at most N per minute and M per hour per
//! installation, and at most K requests of an installation in flight at once.

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
/// Default requests of one installation in flight at once, across every worker process
/// (GitHub allows 100 concurrent requests, shared with its GraphQL API).
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 50;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Waits until one more content-creating call for an installation is allowed, and until one
/// more of its requests may be in flight.
pub trait ContentThrottle: Send + Sync {
    /// Resolves when the call may go; `RateLimited` when the wait would exceed the cap.
    fn acquire(&self, installation_id: i64) -> BoxFuture<'_, Result<(), GithubError>>;

    /// Takes one of the installation's in-flight slots for a request (any request, not only
    /// content-creating ones), given back when the [`InFlight`] is dropped or, should the
    /// process die, after `lease`. The default takes none: within one process the client's own
    /// cap on requests in flight keeps below GitHub's.
    fn enter(&self, installation_id: i64, lease: Duration) -> BoxFuture<'_, Result<InFlight, GithubError>> {
        let _ = (installation_id, lease);
        Box::pin(async { Ok(InFlight(None)) })
    }
}

/// A request in flight: its slot is given back when this is dropped.
pub struct InFlight(Option<Box<dyn FnOnce() + Send>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release();
        }
    }
}

/// Limits of a throttle: calls per minute and per hour, the longest wait accepted, and the
/// requests of one installation in flight at once.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleLimits {
    pub per_minute: u32,
    pub per_hour: u32,
    pub max_wait: Duration,
    pub max_in_flight: u32,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            per_minute: DEFAULT_PER_MINUTE,
            per_hour: DEFAULT_PER_HOUR,
            max_wait: DEFAULT_MAX_WAIT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
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

/// Takes an in-flight slot (1) or finds none free (0). Slots are members of a sorted set
/// scored by their expiry (Redis's clock), so a dead process's slots lapse.
/// KEYS: the set. ARGV: max in flight, lease ms, slot id.
const ENTER_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"#;

/// Throttle shared by every worker process: fixed windows counted in Redis keys
/// `{prefix}gh:throttle:{installation}:m` and `:h`, updated atomically by a Lua script, and
/// in-flight slots in `{prefix}gh:inflight:{installation}`.
pub struct RedisThrottle {
    conn: ConnectionManager,
    prefix: String,
    limits: ThrottleLimits,
    script: redis::Script,
    enter_script: redis::Script,
}

impl RedisThrottle {
    /// `prefix` is the deployment's key prefix (QUEUE_PREFIX), possibly empty.
    pub fn new(conn: ConnectionManager, prefix: impl Into<String>, limits: ThrottleLimits) -> Self {
        RedisThrottle {
            conn,
            prefix: prefix.into(),
            limits,
            script: redis::Script::new(TAKE_SLOT_LUA),
            enter_script: redis::Script::new(ENTER_LUA),
        }
    }

    /// The sorted set of `installation_id`'s requests in flight.
    pub fn in_flight_key(&self, installation_id: i64) -> String {
        format!("{}gh:inflight:{installation_id}", self.prefix)
    }

    /// Takes an in-flight slot: `Some(slot id)`, or `None` when all are taken.
    async fn try_enter(&self, key: &str, lease: Duration) -> Result<Option<String>, GithubError> {
        let slot = uuid::Uuid::now_v7().simple().to_string();
        let mut conn = self.conn.clone();
        let taken: u8 = self
            .enter_script
            .key(key)
            .arg(self.limits.max_in_flight)
            .arg(lease.as_millis() as u64)
            .arg(&slot)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| GithubError::Network(format!("throttle (Redis): {:?}", e.kind())))?;
        Ok((taken == 1).then_some(slot))
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

    fn enter(&self, installation_id: i64, lease: Duration) -> BoxFuture<'_, Result<InFlight, GithubError>> {
        Box::pin(async move {
            let key = self.in_flight_key(installation_id);
            let started = Instant::now();
            loop {
                if let Some(slot) = self.try_enter(&key, lease).await? {
                    let mut conn = self.conn.clone();
                    return Ok(InFlight(Some(Box::new(move || {
                        // Given back in the background; if that fails, the lease lapses.
                        if let Ok(rt) = tokio::runtime::Handle::try_current() {
                            rt.spawn(async move {
                                let _: Result<(), _> =
                                    redis::cmd("ZREM").arg(&key).arg(&slot).query_async(&mut conn).await;
                            });
                        }
                    }))));
                }
                if started.elapsed() > self.limits.max_wait {
                    return Err(GithubError::RateLimited {
                        retry_after: Duration::from_secs(1),
                    });
                }
                // Slots free up as requests finish: poll soon, with jitter.
                tokio::time::sleep(Duration::from_millis(10 + fastrand::u64(0..40))).await;
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
            ..ThrottleLimits::default()
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
            ..ThrottleLimits::default()
        });
        t.acquire(1).await.unwrap();
        let start = tokio::time::Instant::now();
        t.acquire(1).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(59));
    }
}
