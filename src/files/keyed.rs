//! A map of async mutexes keyed by string (content hashes, upload sessions). Entries exist
//! only while someone holds or waits for them, so the map stays as small as the work in flight.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::OwnedMutexGuard;

type Map = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

#[derive(Default, Clone)]
pub struct KeyedMutex {
    map: Map,
}

/// Holds one key's mutex; removes the entry on drop when nobody else needs it.
pub struct KeyedGuard {
    map: Map,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedMutex {
    pub async fn lock(&self, key: &str) -> KeyedGuard {
        let lock = self.map.lock().entry(key.to_string()).or_default().clone();
        let guard = lock.lock_owned().await;
        KeyedGuard {
            map: self.map.clone(),
            key: key.to_string(),
            guard: Some(guard),
        }
    }

    /// Like `lock`, but answers `None` at once when the key is held.
    pub fn try_lock(&self, key: &str) -> Option<KeyedGuard> {
        let lock = self.map.lock().entry(key.to_string()).or_default().clone();
        let guard = lock.try_lock_owned().ok();
        let out = KeyedGuard {
            map: self.map.clone(),
            key: key.to_string(),
            guard,
        };
        out.guard.is_some().then_some(out)
    }
}

impl Drop for KeyedGuard {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.map.lock();
        if map
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exclusive_per_key_and_cleaned_up() {
        let m = KeyedMutex::default();
        let a = m.lock("a").await;
        assert!(m.try_lock("a").is_none());
        assert!(m.try_lock("b").is_some());
        drop(a);
        assert!(m.try_lock("a").is_some());
        assert!(m.map.lock().is_empty());
    }
}
