//! Hierarchical async locks: project → bucket → table, each a tokio `RwLock` keyed by name.
//! Table work takes its parents shared, so different tables never wait on each other.
//!
//! An entry exists only while someone holds or waits for it: the last user removes it on
//! release, so names that were only probed (a 404, a dropped request) leave nothing behind and
//! no delete has to scan the map.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use super::table_key::TableKey;
use crate::names::{BucketName, ProjectId};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LockKey {
    Project(ProjectId),
    Bucket(ProjectId, BucketName),
    Table(TableKey),
}

type LockMap = Mutex<HashMap<LockKey, Arc<RwLock<()>>>>;

/// A use of one map entry (held or waited for). Dropping it removes the entry when it was the
/// last use: the map's own reference is then the only one left, and new users can only come
/// through the map, whose mutex the check holds.
struct Entry {
    map: Arc<LockMap>,
    key: Option<LockKey>,
    lock: Option<Arc<RwLock<()>>>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let (Some(key), Some(lock)) = (self.key.take(), self.lock.take()) else {
            return;
        };
        let mut map = self.map.lock();
        drop(lock);
        if map.get(&key).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(&key);
        }
    }
}

impl Entry {
    fn lock(&self) -> Arc<RwLock<()>> {
        self.lock.clone().expect("lock present until drop")
    }
}

/// Held locks; dropping it releases them (children first, since they were pushed last).
pub struct LockGuard {
    held: Vec<Held>,
}

/// One held lock. Field order matters: the guard is released before the entry is given back,
/// so the entry sees no reference of ours when it checks whether it was the last use.
struct Held {
    _guard: HeldGuard,
    _entry: Entry,
}

enum HeldGuard {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Release in reverse acquisition order: table, bucket, project.
        while self.held.pop().is_some() {}
    }
}

#[derive(Default)]
pub struct LockRegistry {
    locks: Arc<LockMap>,
}

impl LockRegistry {
    /// The entry for `key`, created if needed; the returned use keeps it alive.
    fn entry(&self, key: LockKey) -> Entry {
        let lock = self.locks.lock().entry(key.clone()).or_default().clone();
        Entry {
            map: self.locks.clone(),
            key: Some(key),
            lock: Some(lock),
        }
    }

    async fn acquire(&self, path: Vec<(LockKey, bool)>) -> LockGuard {
        // Held locks are released by `LockGuard`'s drop even when this future is dropped
        // half-way (a client that went away): `held` is dropped with the future.
        let mut guard = LockGuard {
            held: Vec::with_capacity(path.len()),
        };
        for (key, exclusive) in path {
            let entry = self.entry(key);
            let lock = entry.lock();
            let held = if exclusive {
                HeldGuard::Exclusive(lock.write_owned().await)
            } else {
                HeldGuard::Shared(lock.read_owned().await)
            };
            guard.held.push(Held {
                _guard: held,
                _entry: entry,
            });
        }
        guard
    }

    /// Readers of one table share; they exclude only writers of that table (and its parents).
    pub async fn table_shared(&self, key: &TableKey) -> LockGuard {
        self.acquire(table_path(key, false)).await
    }

    /// DDL, deletes and imports on one table.
    pub async fn table_exclusive(&self, key: &TableKey) -> LockGuard {
        self.acquire(table_path(key, true)).await
    }

    /// Two tables of one bucket at once, e.g. main's table shared and a dev branch's copy of it
    /// exclusive (ADR 0031). Parents are taken once (a second shared request could queue
    /// behind a waiting bucket writer and deadlock), tables in key order (main's first).
    pub async fn table_pair(
        &self,
        (a, a_exclusive): (&TableKey, bool),
        (b, b_exclusive): (&TableKey, bool),
    ) -> LockGuard {
        debug_assert!(a.project == b.project && a.bucket == b.bucket && a != b);
        let mut tables = [(a, a_exclusive), (b, b_exclusive)];
        tables.sort_by(|x, y| x.0.cmp(y.0));
        let mut path = table_path(tables[0].0, tables[0].1);
        path.push((LockKey::Table(tables[1].0.clone()), tables[1].1));
        self.acquire(path).await
    }

    /// Whole-bucket changes (create, delete): waits for every table operation in the bucket.
    pub async fn bucket_exclusive(&self, project: &ProjectId, bucket: &BucketName) -> LockGuard {
        self.acquire(vec![
            (LockKey::Project(project.clone()), false),
            (LockKey::Bucket(project.clone(), bucket.clone()), true),
        ])
        .await
    }

    /// Whole-project changes (delete): waits for every operation in the project.
    pub async fn project_exclusive(&self, project: &ProjectId) -> LockGuard {
        self.acquire(vec![(LockKey::Project(project.clone()), true)])
            .await
    }

    /// Non-blocking exclusive lock on a table, used to detach idle tables from the handle cache.
    pub fn try_table_exclusive(&self, key: &TableKey) -> Option<LockGuard> {
        let entry = self.entry(LockKey::Table(key.clone()));
        let guard = entry.lock().try_write_owned().ok()?;
        Some(LockGuard {
            held: vec![Held {
                _guard: HeldGuard::Exclusive(guard),
                _entry: entry,
            }],
        })
    }

    /// How many lock entries exist (held or waited for); idle names have none.
    pub fn entries(&self) -> usize {
        self.locks.lock().len()
    }
}

fn table_path(key: &TableKey, exclusive: bool) -> Vec<(LockKey, bool)> {
    vec![
        (LockKey::Project(key.project.clone()), false),
        (
            LockKey::Bucket(key.project.clone(), key.bucket.clone()),
            false,
        ),
        (LockKey::Table(key.clone()), exclusive),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::TableName;
    use std::time::Duration;

    fn key(t: &str) -> TableKey {
        TableKey::new(
            &ProjectId::parse("1").unwrap(),
            &BucketName::parse("b").unwrap(),
            &TableName::parse(t).unwrap(),
        )
    }

    #[tokio::test]
    async fn different_tables_do_not_wait_for_each_other() {
        let reg = LockRegistry::default();
        let _a = reg.table_exclusive(&key("a")).await;
        let b =
            tokio::time::timeout(Duration::from_millis(200), reg.table_exclusive(&key("b"))).await;
        assert!(b.is_ok());
    }

    #[tokio::test]
    async fn bucket_exclusive_waits_for_table_users() {
        let reg = LockRegistry::default();
        let reader = reg.table_shared(&key("a")).await;
        let p = ProjectId::parse("1").unwrap();
        let bkt = BucketName::parse("b").unwrap();
        let blocked =
            tokio::time::timeout(Duration::from_millis(100), reg.bucket_exclusive(&p, &bkt)).await;
        assert!(blocked.is_err());
        drop(reader);
        let free =
            tokio::time::timeout(Duration::from_millis(200), reg.bucket_exclusive(&p, &bkt)).await;
        assert!(free.is_ok());
    }

    #[tokio::test]
    async fn entries_live_only_while_held_or_awaited() {
        let reg = LockRegistry::default();
        let held = reg.table_shared(&key("a")).await;
        drop(reg.table_shared(&key("b")).await);
        assert_eq!(
            reg.entries(),
            3,
            "project, bucket and a; b went with its last user"
        );
        // A writer waiting for `a` keeps the entry; giving up the wait (a client that went
        // away) releases it again.
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), reg.table_exclusive(&key("a"))).await;
        assert!(waiting.is_err());
        assert_eq!(reg.entries(), 3);
        drop(held);
        assert_eq!(reg.entries(), 0);
    }

    #[tokio::test]
    async fn a_hundred_thousand_probed_names_leave_no_entry() {
        let reg = LockRegistry::default();
        let before = reg.entries();
        for i in 0..100_000 {
            let k = key(&format!("made_up_{i}"));
            drop(reg.table_shared(&k).await);
            drop(reg.try_table_exclusive(&k));
        }
        assert_eq!(reg.entries(), before);
    }

    #[tokio::test]
    async fn try_exclusive_fails_while_a_reader_holds_the_table() {
        let reg = LockRegistry::default();
        let reader = reg.table_shared(&key("a")).await;
        assert!(reg.try_table_exclusive(&key("a")).is_none());
        drop(reader);
        assert!(reg.try_table_exclusive(&key("a")).is_some());
        assert_eq!(reg.entries(), 0);
    }
}
