//! Workspaces (ADR 0033): one DuckDB file per workspace, opened as its own locked-down DuckDB
//! instance with the project's tables ATTACHed READ_ONLY. Owns that registry and its sessions;
//! must not open a workspace file twice, nor run client SQL that the sandbox did not check.

pub mod query;
pub mod sandbox;
pub mod scram;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use duckdb::Connection;
use parking_lot::Mutex;

use crate::engine::{quote_ident, sql_string, wal_path, TableKey};
use crate::error::{ApiError, ApiResult, ErrorCode};

/// How workspace databases are opened.
#[derive(Debug, Clone)]
pub struct Settings {
    pub memory_limit: String,
    pub threads: u32,
    pub max_sessions: usize,
}

/// A project table a workspace reads, as it is on disk when the workspace database opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The bucket and table as the workspace's project names them (a linked bucket's name).
    pub bucket: String,
    pub table: String,
    /// The table file read (for a linked bucket, the source project's).
    pub key: TableKey,
    pub path: PathBuf,
    /// The table file's stamp (lengths, times): a changed table reopens an idle workspace.
    pub stamp: String,
}

impl Source {
    /// The name sessions see the table under: the reference's `"<bucket>_<table>"`.
    pub fn view_name(&self) -> String {
        format!("{}_{}", self.bucket, self.table)
    }
}

/// One open workspace database: the root connection of its own DuckDB instance.
pub struct WorkspaceDb {
    root: Mutex<Connection>,
    sources: Vec<Source>,
    sessions: AtomicUsize,
}

/// Every open workspace database, by workspace id: at most one instance per file.
pub struct Workspaces {
    root: PathBuf,
    settings: Settings,
    /// Locked before `external` when both are needed.
    open: Mutex<HashMap<String, Arc<WorkspaceDb>>>,
    /// Sessions of an external wire server (`/internal/pgwire/sessions`), by workspace id:
    /// they hold no connection here but count against the same limit.
    external: Arc<Mutex<HashMap<String, usize>>>,
}

/// One external session's place in its workspace's session limit, given back when dropped.
pub struct Slot {
    id: String,
    external: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut external = self.external.lock();
        if let Some(n) = external.get_mut(&self.id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                external.remove(&self.id);
            }
        }
    }
}

/// A connection to a workspace database for one client (a wire connection or one HTTP query):
/// counts against the workspace's session limit until dropped.
pub struct Session {
    pub conn: Connection,
    db: Arc<WorkspaceDb>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.db.sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Session {
    /// The workspace's tables and views (not the read-only source views), with row counts.
    pub fn objects(&self) -> ApiResult<Vec<(String, String, u64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT table_name, table_type FROM information_schema.tables \
             WHERE table_catalog = current_database() AND table_schema = 'main' \
             ORDER BY table_name",
        )?;
        let names: Vec<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(names.len());
        for (name, kind) in names {
            let rows: i64 = self.conn.query_row(
                &format!("SELECT count(*) FROM main.{}", quote_ident(&name)),
                [],
                |r| r.get(0),
            )?;
            let kind = if kind == "VIEW" { "view" } else { "table" };
            out.push((name, kind.to_string(), rows.max(0) as u64));
        }
        Ok(out)
    }

    /// Drops one table or view of the workspace; 404 `object_not_found` when there is none.
    pub fn drop_object(&self, name: &str) -> ApiResult<()> {
        let kind = self
            .objects()?
            .into_iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, k, _)| k)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::ObjectNotFound,
                    format!("Object '{name}' not found in the workspace"),
                )
            })?;
        let what = if kind == "view" { "VIEW" } else { "TABLE" };
        self.conn
            .execute_batch(&format!("DROP {what} main.{} CASCADE", quote_ident(name)))?;
        Ok(())
    }

    /// Drops every table and view of the workspace.
    pub fn clear(&self) -> ApiResult<()> {
        for (name, _, _) in self.objects()? {
            self.drop_object(&name)?;
        }
        Ok(())
    }

    /// The read-only source tables with their row counts.
    pub fn attached(&self) -> ApiResult<Vec<(String, String, u64)>> {
        let mut out = Vec::new();
        for (i, s) in self.db.sources.iter().enumerate() {
            let rows: i64 = self.conn.query_row(
                &format!("SELECT count(*) FROM \"src_{i}\".main.data"),
                [],
                |r| r.get(0),
            )?;
            out.push((s.bucket.clone(), s.table.clone(), rows.max(0) as u64));
        }
        Ok(out)
    }

    /// The attached alias and file of a source table (as the project names it), if the
    /// workspace reads it.
    pub fn source(&self, bucket: &str, table: &str) -> Option<(String, TableKey)> {
        self.db
            .sources
            .iter()
            .position(|s| s.bucket == bucket && s.table == table)
            .map(|i| (format!("src_{i}"), self.db.sources[i].key.clone()))
    }

    pub fn interrupt_handle(&self) -> Arc<duckdb::InterruptHandle> {
        self.conn.interrupt_handle()
    }
}

impl Workspaces {
    pub fn new(data_dir: &Path, settings: Settings) -> Self {
        Self {
            root: data_dir.join("workspaces"),
            settings,
            open: Mutex::new(HashMap::new()),
            external: Arc::default(),
        }
    }

    /// `DATA_DIR/workspaces/project_<id>/<ws>.duckdb`.
    pub fn path(&self, project: &str, id: &str) -> PathBuf {
        self.root
            .join(format!("project_{project}"))
            .join(format!("{id}.duckdb"))
    }

    /// Bytes on disk: the workspace file and its WAL.
    pub fn size_bytes(&self, project: &str, id: &str) -> u64 {
        let path = self.path(project, id);
        file_len(&path) + file_len(&wal_path(&path))
    }

    /// Bytes the workspace's data takes: DuckDB's used blocks (so dropped data frees room
    /// once checkpointed, although the file does not shrink) plus the WAL. What the size limit
    /// is checked against.
    pub fn used_bytes(&self, conn: &Connection, project: &str, id: &str) -> u64 {
        let used: Option<i64> = conn
            .query_row(
                "SELECT (used_blocks * block_size)::BIGINT FROM pragma_database_size() \
                 WHERE database_name = current_database()",
                [],
                |r| r.get(0),
            )
            .ok();
        let wal = file_len(&wal_path(&self.path(project, id)));
        match used {
            Some(n) => n.max(0) as u64 + wal,
            None => self.size_bytes(project, id),
        }
    }

    /// How many sessions a workspace has now: its own (wire, HTTP, internal) and an external
    /// wire server's.
    pub fn active_sessions(&self, id: &str) -> usize {
        let open = self.open.lock();
        let own = open
            .get(id)
            .map_or(0, |db| db.sessions.load(Ordering::Acquire));
        own + self.external_sessions(id)
    }

    fn external_sessions(&self, id: &str) -> usize {
        self.external.lock().get(id).copied().unwrap_or(0)
    }

    fn too_many(&self, id: &str) -> ApiError {
        ApiError::new(
            ErrorCode::TooManySessions,
            format!(
                "workspace '{id}' has {} sessions already (PGWIRE_MAX_CONNECTIONS_PER_WORKSPACE)",
                self.settings.max_sessions
            ),
        )
    }

    /// Whether one more session would pass the limit (429 `too_many_sessions` when not).
    pub fn check_room(&self, id: &str) -> ApiResult<()> {
        if self.active_sessions(id) >= self.settings.max_sessions {
            return Err(self.too_many(id));
        }
        Ok(())
    }

    /// Takes a place for an external wire server's session (429 `too_many_sessions` beyond
    /// the limit). An idle instance of the workspace is closed, so the external server can
    /// open the file (DuckDB lets one process at a time write it).
    pub fn reserve(&self, id: &str) -> ApiResult<Slot> {
        let mut open = self.open.lock();
        let own = open
            .get(id)
            .map_or(0, |db| db.sessions.load(Ordering::Acquire));
        let mut external = self.external.lock();
        let theirs = external.get(id).copied().unwrap_or(0);
        if own + theirs >= self.settings.max_sessions {
            return Err(self.too_many(id));
        }
        *external.entry(id.to_string()).or_insert(0) += 1;
        if own == 0 {
            drop(open.remove(id));
        }
        Ok(Slot {
            id: id.to_string(),
            external: self.external.clone(),
        })
    }

    /// Creates the (empty) workspace file (blocking).
    pub fn create(&self, project: &str, id: &str) -> ApiResult<()> {
        let path = self.path(project, id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let conn = Connection::open(&path)?;
        conn.execute_batch("CHECKPOINT")?;
        Ok(())
    }

    /// Opens a session (blocking). `limited`: counts against PGWIRE_MAX_CONNECTIONS_PER_WORKSPACE
    /// (429 `too_many_sessions` beyond); internal work (clear, load, get) is not limited.
    pub fn session(
        &self,
        project: &str,
        id: &str,
        sources: Vec<Source>,
        limited: bool,
    ) -> ApiResult<Session> {
        let db = {
            let mut open = self.open.lock();
            let reusable = open
                .get(id)
                .filter(|db| db.sources == sources || db.sessions.load(Ordering::Acquire) > 0);
            let db = match reusable {
                Some(db) => db.clone(),
                None => {
                    // The old instance (idle, or reading tables that changed since) closes
                    // before the file is opened again.
                    drop(open.remove(id));
                    let conn = self.open_db(&self.path(project, id), &sources)?;
                    let db = Arc::new(WorkspaceDb {
                        root: Mutex::new(conn),
                        sources,
                        sessions: AtomicUsize::new(0),
                    });
                    open.insert(id.to_string(), db.clone());
                    db
                }
            };
            let now = db.sessions.fetch_add(1, Ordering::AcqRel) + 1;
            if limited && now + self.external_sessions(id) > self.settings.max_sessions {
                db.sessions.fetch_sub(1, Ordering::AcqRel);
                return Err(self.too_many(id));
            }
            db
        };
        let conn = db.root.lock().try_clone();
        // From here the session's Drop gives the slot back.
        let session = match conn {
            Ok(conn) => Session { conn, db },
            Err(e) => {
                db.sessions.fetch_sub(1, Ordering::AcqRel);
                return Err(e.into());
            }
        };
        for (i, s) in session.db.sources.iter().enumerate() {
            session.conn.execute_batch(&format!(
                "CREATE TEMP VIEW {} AS SELECT * FROM \"src_{i}\".main.data",
                quote_ident(&s.view_name())
            ))?;
        }
        // psql's `\dt` asks for owners through a function DuckDB's pg_catalog lacks.
        session
            .conn
            .execute_batch("CREATE TEMP MACRO pg_get_userbyid(id) AS 'duckbank'")?;
        Ok(session)
    }

    /// Closes the workspace database and removes its files (blocking). Sessions still open
    /// keep their connection until they end; the files are unlinked under them.
    pub fn remove(&self, project: &str, id: &str) -> ApiResult<()> {
        drop(self.open.lock().remove(id));
        let path = self.path(project, id);
        for p in [path.clone(), wal_path(&path)] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        let mut tmp = path.into_os_string();
        tmp.push(".tmp");
        let _ = std::fs::remove_dir_all(PathBuf::from(tmp));
        Ok(())
    }

    /// Opens the workspace file as its own instance, attaches the sources READ_ONLY, then locks
    /// the instance down: nothing can be attached, read, written or set after this.
    fn open_db(&self, path: &Path, sources: &[Source]) -> ApiResult<Connection> {
        let mut config = duckdb::Config::default()
            .max_memory(&self.settings.memory_limit)?
            .with("autoinstall_known_extensions", "false")?
            .with("autoload_known_extensions", "false")?;
        if self.settings.threads > 0 {
            config = config.threads(i64::from(self.settings.threads))?;
        }
        let conn = Connection::open_with_flags(path, config)?;
        for (i, s) in sources.iter().enumerate() {
            conn.execute_batch(&format!(
                "ATTACH {} AS \"src_{i}\" (READ_ONLY)",
                sql_string(&s.path.to_string_lossy())
            ))?;
        }
        crate::engine::lockdown::lock_down(&conn, &[])?;
        Ok(conn)
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
