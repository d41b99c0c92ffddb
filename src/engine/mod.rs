//! The table engine: one DuckDB instance for the process, per-table files ATTACHed on demand.
//! Owns table file paths, the bounded attach cache, connection reuse and per-table locks.

pub mod branch;
pub mod ddl;
pub mod export;
pub mod filter;
pub mod import;
pub(crate) mod lockdown;
pub mod locks;
pub mod preview;
pub mod profile;
pub mod quarantine;
pub mod schema;
pub mod snapshot;
mod table_key;
mod transaction;
pub mod values;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::SubsecRound;
use duckdb::Connection;
use parking_lot::Mutex;
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::names::{BucketName, DevBranchId, ProjectId};
pub use locks::{LockGuard, LockRegistry};
pub use quarantine::Quarantine;
pub use table_key::TableKey;

/// A column as stored in the table file.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    pub ordinal_position: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// What `describe` reports about a table file.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub columns: Arc<Vec<ColumnInfo>>,
    /// Primary-key columns as the table file declares them (the file is authoritative).
    pub primary_key: Arc<Vec<String>>,
    pub row_count: u64,
    pub size_bytes: u64,
    /// Whether every row is known to be small (see `preview`), once a preview has asked.
    pub small_rows: Option<bool>,
}

/// Facts read from a table file, cached until the next write to it.
#[derive(Clone)]
struct Described {
    columns: Arc<Vec<ColumnInfo>>,
    primary_key: Arc<Vec<String>>,
    row_count: u64,
    small_rows: Option<bool>,
}

/// An attached table file: its alias in the instance and cached facts about it.
struct Attached {
    alias: String,
    last_used: u64,
    /// Columns, primary key and row count, cached until the next write to the table.
    cached: Option<Described>,
}

pub struct TableEngine {
    data_dir: PathBuf,
    root: Mutex<Connection>,
    idle: Mutex<Vec<Connection>>,
    attached: Mutex<HashMap<TableKey, Attached>>,
    capacity: usize,
    clock: AtomicU64,
    pub locks: LockRegistry,
    /// Tables written to whose checkpoint DuckDB refused (another write transaction was open
    /// in the instance): their files will still change on detach or exit.
    unfolded: Mutex<HashSet<TableKey>>,
}

/// A pooled connection; returned to the pool on drop.
pub struct PooledConn<'e> {
    conn: Option<Connection>,
    engine: &'e TableEngine,
}

impl std::ops::Deref for PooledConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl Drop for PooledConn<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.engine.idle.lock();
            if idle.len() < 64 {
                idle.push(conn);
            }
        }
    }
}

impl TableEngine {
    pub fn new(data_dir: PathBuf, root: Connection, capacity: usize) -> Self {
        Self {
            data_dir,
            root: Mutex::new(root),
            idle: Mutex::new(Vec::new()),
            attached: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
            locks: LockRegistry::default(),
            unfolded: Mutex::new(HashSet::new()),
        }
    }

    /// A connection to the shared instance (blocking context only).
    pub fn conn(&self) -> ApiResult<PooledConn<'_>> {
        let pooled = self.idle.lock().pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.root.lock().try_clone()?,
        };
        Ok(PooledConn {
            conn: Some(conn),
            engine: self,
        })
    }

    pub fn tables_root(&self) -> PathBuf {
        self.data_dir.join("duckdb")
    }

    /// Where snapshot files live: `DATA_DIR/snapshots` (ADR 0029).
    pub fn snapshots_root(&self) -> PathBuf {
        self.data_dir.join("snapshots")
    }

    pub fn project_dir(&self, project: &ProjectId) -> PathBuf {
        self.tables_root().join(format!("project_{project}"))
    }

    pub fn bucket_dir(&self, project: &ProjectId, bucket: &BucketName) -> PathBuf {
        self.project_dir(project).join(bucket.as_str())
    }

    /// A dev branch's own table files: `project_<id>/branch.<branch id>/` — a bucket name
    /// cannot contain a dot, so this never collides with a bucket directory (ADR 0031).
    pub fn branch_dir(&self, project: &ProjectId, branch: &DevBranchId) -> PathBuf {
        self.project_dir(project)
            .join(format!("{BRANCH_DIR_PREFIX}{branch}"))
    }

    /// The directory holding the table's file: its bucket's, in main or in its branch.
    pub fn table_dir(&self, key: &TableKey) -> PathBuf {
        match &key.branch {
            None => self.bucket_dir(&key.project, &key.bucket),
            Some(branch) => self
                .branch_dir(&key.project, branch)
                .join(key.bucket.as_str()),
        }
    }

    pub fn table_path(&self, key: &TableKey) -> PathBuf {
        self.table_dir(key).join(format!("{}.duckdb", key.table))
    }

    /// Bytes on disk of a table: its file plus any pending WAL.
    pub fn size_bytes(&self, key: &TableKey) -> u64 {
        let path = self.table_path(key);
        file_len(&path) + file_len(&wal_path(&path))
    }

    /// What the table file and its WAL look like on disk: lengths and modification times. A
    /// write, a checkpoint or an edit by another tool changes it; attaching and reading do not.
    pub fn file_stamp(&self, key: &TableKey) -> String {
        let path = self.table_path(key);
        format!("{}/{}", stamp_of(&path), stamp_of(&wal_path(&path)))
    }

    /// Folds the table's WAL into its file (caller holds its exclusive lock), so that
    /// detaching it or closing the process later does not change the file again and the
    /// catalog's stamp stays true across restarts. Best effort: DuckDB refuses while the
    /// table has another transaction open, and then the table is merely read again after
    /// the next restart.
    pub fn checkpoint(&self, key: &TableKey) {
        let done = self.conn().and_then(|conn| {
            let alias = self.ensure_attached(&conn, key)?;
            conn.execute_batch(&format!("CHECKPOINT \"{alias}\""))?;
            Ok(())
        });
        if let Err(e) = done {
            tracing::debug!(table = %key.table, error = %e, "checkpoint after a write deferred");
            self.unfolded.lock().insert(key.clone());
        }
    }

    /// Retries the checkpoints DuckDB refused, for tables nobody uses now; returns the tables
    /// whose files no longer change on detach or exit, each with its exclusive lock held so
    /// the caller can record their stamps before any write comes in between.
    pub fn retry_checkpoints(&self) -> Vec<(TableKey, LockGuard)> {
        let pending: Vec<TableKey> = self.unfolded.lock().iter().cloned().collect();
        let mut done = Vec::new();
        for key in pending {
            let Some(guard) = self.locks.try_table_exclusive(&key) else {
                continue;
            };
            let attached = self.attached.lock().contains_key(&key);
            // A detached table was checkpointed by its DETACH; a deleted one needs nothing.
            let folded = !attached
                || self.conn().is_ok_and(|conn| {
                    self.ensure_attached(&conn, &key).is_ok_and(|alias| {
                        conn.execute_batch(&format!("CHECKPOINT \"{alias}\""))
                            .is_ok()
                    })
                });
            if folded {
                self.unfolded.lock().remove(&key);
                done.push((key, guard));
            }
        }
        done
    }

    /// When the table file or its WAL last changed on disk.
    pub fn modified_at(&self, key: &TableKey) -> Option<chrono::DateTime<chrono::Utc>> {
        let path = self.table_path(key);
        [path.clone(), wal_path(&path)]
            .iter()
            .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .max()
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).trunc_subsecs(6))
    }

    /// How many table files are attached now (bounded by TABLE_CACHE_SIZE while idle).
    pub fn attached_count(&self) -> usize {
        self.attached.lock().len()
    }

    /// The alias under which the table file is attached, attaching it if needed.
    /// Caller holds at least the table's shared lock.
    pub fn ensure_attached(&self, conn: &Connection, key: &TableKey) -> ApiResult<String> {
        self.attach(conn, key, false)
    }

    /// Attaches the table file; with `create`, DuckDB creates a missing file.
    fn attach(&self, conn: &Connection, key: &TableKey, create: bool) -> ApiResult<String> {
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut attached = self.attached.lock();
        if let Some(entry) = attached.get_mut(key) {
            entry.last_used = tick;
            return Ok(entry.alias.clone());
        }
        let path = self.table_path(key);
        if !create && !path.exists() {
            return Err(ApiError::internal(format!(
                "table file missing: {}",
                path.display()
            )));
        }
        if attached.len() >= self.capacity {
            self.evict_idle(conn, &mut attached);
        }
        let alias = format!("t{tick}");
        conn.execute_batch(&format!(
            "ATTACH {} AS \"{alias}\"",
            sql_string(&path.to_string_lossy())
        ))?;
        attached.insert(
            key.clone(),
            Attached {
                alias: alias.clone(),
                last_used: tick,
                cached: None,
            },
        );
        Ok(alias)
    }

    /// Detaches least recently used tables nobody is using until below capacity.
    fn evict_idle(&self, conn: &Connection, attached: &mut HashMap<TableKey, Attached>) {
        let mut by_age: Vec<(u64, TableKey)> = attached
            .iter()
            .map(|(k, a)| (a.last_used, k.clone()))
            .collect();
        by_age.sort();
        let excess = attached.len() + 1 - self.capacity;
        let mut evicted = 0;
        for (_, key) in by_age {
            if evicted >= excess {
                break;
            }
            // Only an idle table may be detached: nobody holds any lock on it.
            let Some(_guard) = self.locks.try_table_exclusive(&key) else {
                continue;
            };
            if let Some(entry) = attached.get(&key) {
                if conn
                    .execute_batch(&format!("DETACH \"{}\"", entry.alias))
                    .is_ok()
                {
                    attached.remove(&key);
                    evicted += 1;
                }
            }
        }
    }

    /// Detaches a table (caller holds its exclusive lock or its bucket's/project's).
    pub fn detach(&self, conn: &Connection, key: &TableKey) -> ApiResult<()> {
        let mut attached = self.attached.lock();
        if let Some(entry) = attached.remove(key) {
            conn.execute_batch(&format!("DETACH \"{}\"", entry.alias))?;
        }
        Ok(())
    }

    /// Detaches every attached table of a project or bucket (caller holds that scope exclusively).
    pub fn detach_where(
        &self,
        conn: &Connection,
        pred: impl Fn(&TableKey) -> bool,
    ) -> ApiResult<()> {
        let keys: Vec<TableKey> = self
            .attached
            .lock()
            .keys()
            .filter(|k| pred(k))
            .cloned()
            .collect();
        for key in keys {
            self.detach(conn, &key)?;
        }
        Ok(())
    }

    /// Columns and row count, from the cache when no write happened since they were read.
    pub fn describe(&self, key: &TableKey) -> ApiResult<TableInfo> {
        let conn = self.conn()?;
        let alias = self.ensure_attached(&conn, key)?;
        let cached = self.attached.lock().get(key).and_then(|a| a.cached.clone());
        let described = match cached {
            Some(c) => c,
            None => {
                let row_count: i64 = conn
                    .prepare_cached(&format!("SELECT count(*) FROM \"{alias}\".main.data"))?
                    .query_row([], |r| r.get(0))?;
                let described = Described {
                    columns: Arc::new(read_columns(&conn, &alias)?),
                    primary_key: Arc::new(read_primary_key(&conn, &alias)?),
                    row_count: row_count.max(0) as u64,
                    small_rows: None,
                };
                if let Some(a) = self.attached.lock().get_mut(key) {
                    a.cached = Some(described.clone());
                }
                described
            }
        };
        Ok(TableInfo {
            columns: described.columns,
            primary_key: described.primary_key,
            row_count: described.row_count,
            size_bytes: self.size_bytes(key),
            small_rows: described.small_rows,
        })
    }

    /// Caches whether the table's rows are all small, until the next write to it.
    pub(crate) fn remember_small_rows(&self, key: &TableKey, small: bool) {
        if let Some(cached) = self
            .attached
            .lock()
            .get_mut(key)
            .and_then(|a| a.cached.as_mut())
        {
            cached.small_rows = Some(small);
        }
    }

    /// Forgets cached facts about a table after a write (caller holds its exclusive lock).
    pub fn invalidate(&self, key: &TableKey) {
        if let Some(a) = self.attached.lock().get_mut(key) {
            a.cached = None;
        }
    }

    /// Moves table files, bucket and project directories the catalog does not know into
    /// the quarantine, content intact: a crash between a file operation and its catalog
    /// commit leaves them, but so would a catalog restored from an older backup, and a file
    /// deleted by mistake is data lost for good. Empty directories hold nothing and are
    /// removed.
    pub fn sweep_orphans(&self, known: &dyn Fn(&Path) -> bool, quarantine: &Quarantine) {
        let aside = |path: &Path, what: &str| move_unknown(path, what, quarantine);
        for project in known_entries(&self.tables_root(), known, "project directory", aside) {
            for bucket in known_entries(&project, known, "bucket directory", aside) {
                known_entries(&bucket, known, "table file", aside);
            }
        }
    }
}

/// The entries of `dir` that `known` accepts; every other one is handed to `unknown`
/// (a directory that cannot be read has no entries).
fn known_entries(
    dir: &Path,
    known: &dyn Fn(&Path) -> bool,
    what: &str,
    unknown: impl Fn(&Path, &str),
) -> Vec<PathBuf> {
    let mut kept = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if known(&path) {
            kept.push(path);
        } else {
            unknown(&path, what);
        }
    }
    kept
}

/// Removes `path` when it is an empty directory, else moves it to the quarantine; when
/// that fails it stays where it is. Either way the log says what happened.
fn move_unknown(path: &Path, what: &str, quarantine: &Quarantine) {
    let empty_dir = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
    // `remove_dir` refuses a directory that is not empty, so nothing can be lost here.
    if empty_dir && std::fs::remove_dir(path).is_ok() {
        tracing::info!(path = %path.display(), "removed an empty {what} the catalog does not know");
        return;
    }
    match quarantine.move_aside(path) {
        Ok(to) => tracing::warn!(
            path = %path.display(),
            to = %to.display(),
            "moved a {what} the catalog does not know to the quarantine"
        ),
        Err(e) => tracing::error!(
            path = %path.display(),
            error = %e,
            "a {what} the catalog does not know could not be moved to the quarantine; left in place"
        ),
    }
}

fn read_columns(conn: &Connection, alias: &str) -> ApiResult<Vec<ColumnInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT column_name, data_type, is_nullable, column_default, column_index \
         FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' AND table_name = 'data' \
         ORDER BY column_index",
    )?;
    let rows = stmt.query_map([alias], |r| {
        Ok(ColumnInfo {
            name: r.get(0)?,
            data_type: r.get(1)?,
            nullable: r.get(2)?,
            default: r.get(3)?,
            ordinal_position: r.get::<_, i64>(4)? as u32,
        })
    })?;
    rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
}

fn read_primary_key(conn: &Connection, alias: &str) -> ApiResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT unnest(constraint_column_names) FROM duckdb_constraints() \
         WHERE database_name = ? AND schema_name = 'main' AND table_name = 'data' \
         AND constraint_type = 'PRIMARY KEY'",
    )?;
    let rows = stmt.query_map([alias], |r| r.get::<_, String>(0))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
}

/// Quotes an identifier read back from a table file or matched against one.
/// The directory name prefix of a dev branch's files inside its project's directory.
pub const BRANCH_DIR_PREFIX: &str = "branch.";

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The column a client names: DuckDB folds identifier case, so names match ignoring ASCII case.
pub fn find_column<'c>(columns: &'c [ColumnInfo], name: &str) -> Option<&'c ColumnInfo> {
    columns
        .iter()
        .find(|c| c.name == name)
        .or_else(|| columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
}

/// The first line of a DuckDB message (the rest are hints about DuckDB's own options).
pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// A single-quoted SQL string literal: paths we built, and client text that DuckDB must see
/// as a value (CSV header names, delimiters), never as SQL.
pub fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `<length>@<modified, ns since the epoch>`, or `-` for a missing file.
fn stamp_of(path: &Path) -> String {
    let Ok(meta) = std::fs::metadata(path) else {
        return "-".into();
    };
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{}@{modified}", meta.len())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub fn wal_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".wal");
    PathBuf::from(p)
}

/// Makes a directory entry durable (after creating or removing files in it).
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
