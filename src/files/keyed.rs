//! Maps of async locks keyed by string (content hashes, upload sessions, multipart uploads).
//! Entries exist only while someone holds or waits for them, so a map stays as small as the work in flight.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedMutexGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

type Map<L> = Arc<Mutex<HashMap<String, Arc<L>>>>;

/// One lock per key, created on first use.
pub struct Keyed<L> {
    map: Map<L>,
}

impl<L> Default for Keyed<L> {
    fn default() -> Self {
        Self {
            map: Map::default(),
        }
    }
}

impl<L> Clone for Keyed<L> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
        }
    }
}

/// Exclusive per key.
pub type KeyedMutex = Keyed<tokio::sync::Mutex<()>>;
/// Shared or exclusive per key.
pub type KeyedRwLock = Keyed<RwLock<()>>;

/// Holds one key's lock (`G` is the owned guard); removes the entry on drop when nobody else
/// needs it.
pub struct KeyedGuard<L, G> {
    map: Map<L>,
    key: String,
    guard: Option<G>,
}

impl<L: Default> Keyed<L> {
    fn entry(&self, key: &str) -> Arc<L> {
        self.map.lock().entry(key.to_string()).or_default().clone()
    }

    fn guard<G>(&self, key: &str, guard: Option<G>) -> Option<KeyedGuard<L, G>> {
        // Built even when `guard` is None: its drop removes an entry nobody else uses.
        let out = KeyedGuard {
            map: self.map.clone(),
            key: key.to_string(),
            guard,
        };
        out.guard.is_some().then_some(out)
    }
}

impl KeyedMutex {
    pub async fn lock(&self, key: &str) -> KeyedGuard<tokio::sync::Mutex<()>, OwnedMutexGuard<()>> {
        let guard = self.entry(key).lock_owned().await;
        KeyedGuard {
            map: self.map.clone(),
            key: key.to_string(),
            guard: Some(guard),
        }
    }

    /// Like `lock`, but answers `None` at once when the key is held.
    pub fn try_lock(
        &self,
        key: &str,
    ) -> Option<KeyedGuard<tokio::sync::Mutex<()>, OwnedMutexGuard<()>>> {
        let guard = self.entry(key).try_lock_owned().ok();
        self.guard(key, guard)
    }
}

impl KeyedRwLock {
    /// Shares the key; waits while someone holds it exclusively.
    pub async fn read(&self, key: &str) -> KeyedGuard<RwLock<()>, OwnedRwLockReadGuard<()>> {
        let guard = self.entry(key).read_owned().await;
        KeyedGuard {
            map: self.map.clone(),
            key: key.to_string(),
            guard: Some(guard),
        }
    }

    /// The key exclusively, once nobody shares or holds it.
    pub async fn write(&self, key: &str) -> KeyedGuard<RwLock<()>, OwnedRwLockWriteGuard<()>> {
        let guard = self.entry(key).write_owned().await;
        KeyedGuard {
            map: self.map.clone(),
            key: key.to_string(),
            guard: Some(guard),
        }
    }

    /// The key exclusively, or `None` at once while anyone shares or holds it.
    pub fn try_write(
        &self,
        key: &str,
    ) -> Option<KeyedGuard<RwLock<()>, OwnedRwLockWriteGuard<()>>> {
        let guard = self.entry(key).try_write_owned().ok();
        self.guard(key, guard)
    }
}

impl<L, G> Drop for KeyedGuard<L, G> {
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

    #[tokio::test]
    async fn readers_share_and_keep_the_writer_out() {
        let m = KeyedRwLock::default();
        let r1 = m.read("u").await;
        let r2 = m.read("u").await;
        assert!(m.try_write("u").is_none());
        assert!(m.try_write("v").is_some());
        drop((r1, r2));
        let w = m.try_write("u").expect("no reader left");
        drop(w);
        assert!(m.map.lock().is_empty());
    }
}
