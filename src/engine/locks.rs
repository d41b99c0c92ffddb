//! Hierarchical async locks: project → bucket → table, each a tokio `RwLock` keyed by name.
//! Table work takes its parents shared, so different tables never wait on each other.

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

/// Held locks; dropping it releases them (children first, since they were pushed last).
pub struct LockGuard {
    held: Vec<Held>,
}

enum Held {
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
    locks: Mutex<HashMap<LockKey, Arc<RwLock<()>>>>,
}

impl LockRegistry {
    fn lock_for(&self, key: LockKey) -> Arc<RwLock<()>> {
        self.locks.lock().entry(key).or_default().clone()
    }

    async fn acquire(&self, path: Vec<(LockKey, bool)>) -> LockGuard {
        let mut held = Vec::with_capacity(path.len());
        for (key, exclusive) in path {
            let lock = self.lock_for(key);
            held.push(if exclusive {
                Held::Exclusive(lock.write_owned().await)
            } else {
                Held::Shared(lock.read_owned().await)
            });
        }
        LockGuard { held }
    }

    /// Readers of one table share; they exclude only writers of that table (and its parents).
    pub async fn table_shared(&self, key: &TableKey) -> LockGuard {
        self.acquire(table_path(key, false)).await
    }

    /// Shared locks on several tables of one bucket, taking the parents once. Taking them
    /// per table would deadlock behind a queued bucket writer (tokio's RwLock is fair).
    pub async fn tables_shared(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
        tables: &[TableKey],
    ) -> LockGuard {
        let mut path = vec![
            (LockKey::Project(project.clone()), false),
            (LockKey::Bucket(project.clone(), bucket.clone()), false),
        ];
        path.extend(tables.iter().map(|t| (LockKey::Table(t.clone()), false)));
        self.acquire(path).await
    }

    /// DDL, deletes and imports on one table.
    pub async fn table_exclusive(&self, key: &TableKey) -> LockGuard {
        self.acquire(table_path(key, true)).await
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
    pub fn try_table_exclusive(&self, key: &TableKey) -> Option<OwnedRwLockWriteGuard<()>> {
        self.lock_for(LockKey::Table(key.clone()))
            .try_write_owned()
            .ok()
    }

    /// Forgets idle lock entries under a project (after it was deleted) so the map stays
    /// bounded. An entry is idle when the map holds its only reference: nobody holds it and
    /// nobody waits on it, and new users must come through the map, whose mutex we hold.
    pub fn forget_project(&self, project: &ProjectId) {
        self.forget_idle(|k| match k {
            LockKey::Project(p) | LockKey::Bucket(p, _) => p == project,
            LockKey::Table(t) => &t.project == project,
        });
    }

    /// Forgets idle lock entries of one bucket (after it was deleted).
    pub fn forget_bucket(&self, project: &ProjectId, bucket: &BucketName) {
        self.forget_idle(|k| match k {
            LockKey::Project(_) => false,
            LockKey::Bucket(p, b) => p == project && b == bucket,
            LockKey::Table(t) => &t.project == project && &t.bucket == bucket,
        });
    }

    /// Forgets the idle lock entry of one table (after it was deleted).
    pub fn forget_table(&self, key: &TableKey) {
        self.forget_idle(|k| matches!(k, LockKey::Table(t) if t == key));
    }

    fn forget_idle(&self, pred: impl Fn(&LockKey) -> bool) {
        self.locks
            .lock()
            .retain(|k, lock| !(pred(k) && Arc::strong_count(lock) == 1));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
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
        TableKey {
            project: ProjectId::parse("1").unwrap(),
            bucket: BucketName::parse("b").unwrap(),
            table: TableName::parse(t).unwrap(),
        }
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
    async fn forgetting_keeps_entries_that_are_held() {
        let reg = LockRegistry::default();
        let held = reg.table_shared(&key("a")).await;
        drop(reg.table_shared(&key("b")).await);
        assert_eq!(reg.len(), 4); // project, bucket, a, b
        reg.forget_project(&ProjectId::parse("1").unwrap());
        assert_eq!(reg.len(), 3, "only the idle table entry goes");
        drop(held);
        reg.forget_project(&ProjectId::parse("1").unwrap());
        assert_eq!(reg.len(), 0);
    }

    #[tokio::test]
    async fn try_exclusive_fails_while_a_reader_holds_the_table() {
        let reg = LockRegistry::default();
        let reader = reg.table_shared(&key("a")).await;
        assert!(reg.try_table_exclusive(&key("a")).is_none());
        drop(reader);
        assert!(reg.try_table_exclusive(&key("a")).is_some());
    }
}
