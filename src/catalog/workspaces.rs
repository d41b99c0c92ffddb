//! Catalog rows of workspaces (ADR 0033): identity, lifetime, size limit and the SCRAM keys of
//! the wire password. It stores what it is given; files and sessions live in `crate::workspace`.

use chrono::{DateTime, Utc};

use super::{from_micros, micros, no_model_change, Catalog};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::workspace::scram::ScramSecret;

/// One workspace as the catalog records it.
#[derive(Debug, Clone)]
pub struct WorkspaceRecord {
    pub id: String,
    pub project: String,
    pub branch: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub size_limit_gb: u32,
    pub secret: ScramSecret,
}

impl WorkspaceRecord {
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

const COLUMNS: &str = "id, project_id, branch_id, name, epoch_us(created_at), \
     epoch_us(expires_at), size_limit_gb, scram_salt, scram_iterations, scram_stored_key, \
     scram_server_key";

fn record(r: &duckdb::Row<'_>) -> duckdb::Result<(WorkspaceRecord, i64, Option<i64>, [String; 3])> {
    let record = WorkspaceRecord {
        id: r.get(0)?,
        project: r.get(1)?,
        branch: r.get(2)?,
        name: r.get(3)?,
        created_at: DateTime::<Utc>::default(),
        expires_at: None,
        size_limit_gb: r.get::<_, i32>(6)?.max(0) as u32,
        secret: ScramSecret {
            salt: Vec::new(),
            iterations: r.get::<_, i32>(8)?.max(1) as u32,
            stored_key: [0; 32],
            server_key: [0; 32],
        },
    };
    Ok((
        record,
        r.get(4)?,
        r.get(5)?,
        [r.get(7)?, r.get(9)?, r.get(10)?],
    ))
}

fn finish(
    (mut rec, created, expires, [salt, stored, server]): (
        WorkspaceRecord,
        i64,
        Option<i64>,
        [String; 3],
    ),
) -> ApiResult<WorkspaceRecord> {
    let bad = |what: &str| ApiError::internal(format!("workspace {}: bad {what}", rec.id));
    rec.created_at = from_micros(created)?;
    rec.expires_at = expires.map(from_micros).transpose()?;
    rec.secret.salt = hex::decode(&salt).map_err(|_| bad("salt"))?;
    rec.secret.stored_key = hex::decode(&stored)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| bad("stored key"))?;
    rec.secret.server_key = hex::decode(&server)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| bad("server key"))?;
    Ok(rec)
}

impl Catalog {
    pub fn insert_workspace(&self, w: &WorkspaceRecord) -> ApiResult<()> {
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO workspaces VALUES (?, ?, ?, ?, make_timestamp(?), make_timestamp(?), ?, ?, ?, ?, ?)",
                duckdb::params![
                    w.id,
                    w.project,
                    w.branch,
                    w.name,
                    micros(w.created_at),
                    w.expires_at.map(micros),
                    w.size_limit_gb as i32,
                    hex::encode(&w.secret.salt),
                    w.secret.iterations as i32,
                    hex::encode(w.secret.stored_key),
                    hex::encode(w.secret.server_key),
                ],
            )?;
            Ok(((), no_model_change()))
        })
    }

    /// The workspace `id` of `project` (any branch), or 404 `workspace_not_found`.
    pub fn workspace(&self, project: &str, id: &str) -> ApiResult<WorkspaceRecord> {
        let found = self.query(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM workspaces WHERE project_id = ? AND id = ?"
            ))?;
            let mut rows = stmt.query_map([project, id], record)?;
            rows.next().transpose().map_err(ApiError::from)
        })?;
        match found {
            Some(row) => finish(row),
            None => Err(ApiError::new(
                ErrorCode::WorkspaceNotFound,
                format!("Workspace '{id}' not found in project '{project}'"),
            )),
        }
    }

    /// The workspace with this id in any project (wire logins name only the workspace).
    pub fn workspace_by_id(&self, id: &str) -> ApiResult<Option<WorkspaceRecord>> {
        let found = self.query(|c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {COLUMNS} FROM workspaces WHERE id = ?"))?;
            let mut rows = stmt.query_map([id], record)?;
            rows.next().transpose().map_err(ApiError::from)
        })?;
        found.map(finish).transpose()
    }

    /// The workspaces of a project (of one branch when given), oldest first.
    pub fn workspaces(
        &self,
        project: &str,
        branch: Option<&str>,
    ) -> ApiResult<Vec<WorkspaceRecord>> {
        let rows = self.query(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM workspaces WHERE project_id = ? \
                 AND branch_id = coalesce(?, branch_id) ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map(duckdb::params![project, branch], record)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(ApiError::from)
        })?;
        rows.into_iter().map(finish).collect()
    }

    /// Workspaces past their expiry, for the cleaner.
    pub fn expired_workspaces(&self, now: DateTime<Utc>) -> ApiResult<Vec<WorkspaceRecord>> {
        let rows = self.query(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM workspaces WHERE expires_at <= make_timestamp(?)"
            ))?;
            let rows = stmt.query_map([micros(now)], record)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(ApiError::from)
        })?;
        rows.into_iter().map(finish).collect()
    }

    pub fn delete_workspace(&self, project: &str, id: &str) -> ApiResult<()> {
        self.write(|tx, _| {
            tx.execute(
                "DELETE FROM workspaces WHERE project_id = ? AND id = ?",
                [project, id],
            )?;
            Ok(((), no_model_change()))
        })
    }

    pub fn set_workspace_secret(&self, project: &str, id: &str, s: &ScramSecret) -> ApiResult<()> {
        self.write(|tx, _| {
            tx.execute(
                "UPDATE workspaces SET scram_salt = ?, scram_iterations = ?, scram_stored_key = ?, \
                 scram_server_key = ? WHERE project_id = ? AND id = ?",
                duckdb::params![
                    hex::encode(&s.salt),
                    s.iterations as i32,
                    hex::encode(s.stored_key),
                    hex::encode(s.server_key),
                    project,
                    id
                ],
            )?;
            Ok(((), no_model_change()))
        })
    }
}
