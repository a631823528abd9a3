//! A small in-memory cache with a time to live, for values DESIGN allows to be briefly stale
//! (tenants, tenant policies): every node still reads the database at least once a TTL.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct TtlCache<K, V> {
    entries: Arc<RwLock<HashMap<K, (V, Instant)>>>,
    ttl: Duration,
}

/// Past this many entries the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 10_000;

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            entries: Arc::new(RwLock::new(HashMap::new())),
            ttl,
        }
    }

    /// The cached value, or `load`'s (which is then cached; errors are not).
    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Ok(entries) = self.entries.read()
            && let Some((value, at)) = entries.get(key)
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = load().await?;
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key.clone(), (value.clone(), Instant::now()));
        }
        Ok(value)
    }

    /// Forgets a key after it changed on this node.
    pub fn forget(&self, key: &K) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(key);
        }
    }
}
