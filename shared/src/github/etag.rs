//! A small in-memory ETag cache for GET responses (a 304 does not count against the rate limit).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Bodies larger than this are not cached.
const MAX_CACHED_BODY: usize = 512 * 1024;

/// Cached GET bodies keyed by the caller's identity and URL, evicted oldest first.
pub(crate) struct EtagCache {
    max_entries: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, (String, Arc<[u8]>)>,
    order: VecDeque<String>,
}

impl EtagCache {
    pub(crate) fn new(max_entries: usize) -> EtagCache {
        EtagCache {
            max_entries,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ETag stored for `key`, to send as If-None-Match.
    pub(crate) fn etag(&self, key: &str) -> Option<String> {
        self.lock().map.get(key).map(|(etag, _)| etag.clone())
    }

    /// The body stored for `key` (after a 304).
    pub(crate) fn body(&self, key: &str) -> Option<Arc<[u8]>> {
        self.lock().map.get(key).map(|(_, body)| body.clone())
    }

    /// Stores a 200 response's ETag and body.
    pub(crate) fn put(&self, key: &str, etag: &str, body: &[u8]) {
        if self.max_entries == 0 || body.len() > MAX_CACHED_BODY {
            return;
        }
        let mut e = self.lock();
        if e.map
            .insert(key.to_owned(), (etag.to_owned(), Arc::from(body)))
            .is_none()
        {
            e.order.push_back(key.to_owned());
        }
        while e.map.len() > self.max_entries {
            match e.order.pop_front() {
                Some(old) => {
                    e.map.remove(&old);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_oldest_first() {
        let c = EtagCache::new(2);
        c.put("a", "\"1\"", b"A");
        c.put("b", "\"2\"", b"B");
        c.put("a", "\"3\"", b"A2");
        c.put("c", "\"4\"", b"C");
        assert!(c.etag("a").is_none());
        assert_eq!(c.etag("b").as_deref(), Some("\"2\""));
        assert_eq!(&*c.body("c").unwrap(), b"C");
    }
}
