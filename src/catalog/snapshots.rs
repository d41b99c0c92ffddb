//! Catalog rows of snapshot settings (one per configured level) and of snapshots themselves.
//! It stores and returns what it is given; validation, inheritance and files live in the service.

use chrono::{DateTime, Utc};
use duckdb::types::Value as SqlValue;
use serde::{Deserialize, Serialize};

use super::{from_micros, micros, no_model_change, Catalog};
use crate::error::{ApiError, ApiResult};
use crate::service::snapshots::settings::LocalConfig;

/// A column as a snapshot recorded it: enough to create the table again exactly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    /// The default as DuckDB rendered it (SQL), if the column has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// One snapshot: a Parquet file of a table's rows at one moment, and the table's definition.
#[derive(Debug, Clone)]
pub struct SnapshotRecord {
    pub id: String,
    pub project: String,
    /// The dev branch it was taken in (and belongs to); `None` for main (ADR 0031).
    pub branch: Option<String>,
    pub bucket: String,
    pub table: String,
    /// `manual`, `auto_predrop`, `auto_predrop_column`, `auto_pretruncate`, `auto_predelete`, …
    pub kind: String,
    pub row_count: u64,
    pub size_bytes: u64,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub description: Option<String>,
    pub columns: Vec<SnapshotColumn>,
    pub primary_key: Vec<String>,
    /// Relative to `DATA_DIR/snapshots` (or the blob store's snapshot prefix).
    pub file_path: String,
}

/// Which snapshots a list returns.
#[derive(Debug, Clone, Default)]
pub struct SnapshotQuery {
    /// Whose snapshots: a dev branch's, or main's (`None`). A list never mixes branches.
    pub branch: Option<String>,
    pub bucket: Option<String>,
    /// Only snapshots of these buckets (a key limited to named buckets).
    pub buckets: Option<Vec<String>>,
    pub table: Option<String>,
    pub kind: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

const SNAPSHOT_COLUMNS: &str = "id, project_id, bucket_name, table_name, snapshot_type, \
     row_count, size_bytes, epoch_us(created_at), created_by, epoch_us(expires_at), description, \
     CAST(schema_columns AS VARCHAR), CAST(primary_key AS VARCHAR), file_path, branch_id";

fn snapshot_row(r: &duckdb::Row<'_>) -> duckdb::Result<(SnapshotRecord, i64, Option<i64>)> {
    let columns: String = r.get(11)?;
    let primary_key: String = r.get(12)?;
    let record = SnapshotRecord {
        id: r.get(0)?,
        project: r.get(1)?,
        bucket: r.get(2)?,
        table: r.get(3)?,
        kind: r.get(4)?,
        row_count: r.get::<_, i64>(5)?.max(0) as u64,
        size_bytes: r.get::<_, i64>(6)?.max(0) as u64,
        created_at: DateTime::<Utc>::default(),
        created_by: r.get(8)?,
        expires_at: None,
        description: r.get(10)?,
        columns: serde_json::from_str(&columns).unwrap_or_default(),
        primary_key: serde_json::from_str(&primary_key).unwrap_or_default(),
        file_path: r.get(13)?,
        branch: r.get(14)?,
    };
    Ok((record, r.get(7)?, r.get(9)?))
}

fn with_times(
    (mut record, created, expires): (SnapshotRecord, i64, Option<i64>),
) -> ApiResult<SnapshotRecord> {
    record.created_at = from_micros(created)?;
    record.expires_at = expires.map(from_micros).transpose()?;
    Ok(record)
}

/// The row key of one settings level: `bucket` and `table` are '' where the level has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsKey {
    pub project: String,
    pub bucket: String,
    pub table: String,
}

impl Catalog {
    /// The config set at `key`, if any (blocking).
    pub fn snapshot_settings(&self, key: &SettingsKey) -> ApiResult<Option<LocalConfig>> {
        let text: Option<String> = self.query(|conn| {
            let mut stmt = conn.prepare(
                "SELECT CAST(config AS VARCHAR) FROM snapshot_settings
                 WHERE project_id = ? AND bucket_name = ? AND table_name = ?",
            )?;
            let mut rows = stmt.query(duckdb::params![key.project, key.bucket, key.table])?;
            match rows.next()? {
                Some(row) => Ok(Some(row.get(0)?)),
                None => Ok(None),
            }
        })?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| {
                ApiError::internal(format!("stored snapshot settings do not parse: {e}"))
            })
        })
        .transpose()
    }

    /// Replaces the config at `key` (blocking).
    pub fn put_snapshot_settings(
        &self,
        key: &SettingsKey,
        level: &str,
        config: &LocalConfig,
    ) -> ApiResult<()> {
        let json = serde_json::to_string(config)
            .map_err(|e| ApiError::internal(format!("cannot encode snapshot settings: {e}")))?;
        self.write(|tx, _| {
            tx.execute(
                "INSERT OR REPLACE INTO snapshot_settings
                 VALUES (?, ?, ?, ?, ?::JSON, make_timestamp(?))",
                duckdb::params![
                    key.project,
                    level,
                    key.bucket,
                    key.table,
                    json,
                    micros(super::now())
                ],
            )?;
            Ok(((), no_model_change()))
        })
    }

    /// Removes the config at `key`; nothing to remove is not an error (blocking).
    pub fn delete_snapshot_settings(&self, key: &SettingsKey) -> ApiResult<()> {
        self.write(|tx, _| {
            tx.execute(
                "DELETE FROM snapshot_settings
                 WHERE project_id = ? AND bucket_name = ? AND table_name = ?",
                duckdb::params![key.project, key.bucket, key.table],
            )?;
            Ok(((), no_model_change()))
        })
    }
}

impl Catalog {
    /// Records a snapshot whose file is already in place (blocking).
    pub fn insert_snapshot(&self, s: &SnapshotRecord) -> ApiResult<()> {
        let columns = serde_json::to_string(&s.columns)
            .map_err(|e| ApiError::internal(format!("cannot encode snapshot columns: {e}")))?;
        let primary_key = serde_json::to_string(&s.primary_key)
            .map_err(|e| ApiError::internal(format!("cannot encode snapshot key: {e}")))?;
        self.write(|tx, _| {
            tx.execute(
                "INSERT INTO snapshots (id, project_id, bucket_name, table_name, snapshot_type,
                 row_count, size_bytes, created_at, created_by, expires_at, description,
                 schema_columns, primary_key, file_path, branch_id)
                 VALUES (?, ?, ?, ?, ?, ?, ?, make_timestamp(?), ?,
                 make_timestamp(?), ?, ?::JSON, ?::JSON, ?, ?)",
                duckdb::params![
                    s.id,
                    s.project,
                    s.bucket,
                    s.table,
                    s.kind,
                    i64::try_from(s.row_count).unwrap_or(i64::MAX),
                    i64::try_from(s.size_bytes).unwrap_or(i64::MAX),
                    micros(s.created_at),
                    s.created_by,
                    s.expires_at.map(micros),
                    s.description,
                    columns,
                    primary_key,
                    s.file_path,
                    s.branch,
                ],
            )?;
            Ok(((), no_model_change()))
        })
    }

    /// The snapshot `id` of `project`, if any (blocking).
    pub fn snapshot(&self, project: &str, id: &str) -> ApiResult<Option<SnapshotRecord>> {
        let row = self.query(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE project_id = ? AND id = ?"
            ))?;
            let mut rows = stmt.query_map([project, id], snapshot_row)?;
            Ok(rows.next().transpose()?)
        })?;
        row.map(with_times).transpose()
    }

    /// A page of `project`'s snapshots newest first, and how many match in all (blocking).
    pub fn snapshots(
        &self,
        project: &str,
        q: &SnapshotQuery,
    ) -> ApiResult<(Vec<SnapshotRecord>, u64)> {
        let mut clauses = vec!["project_id = ?"];
        let mut params = vec![SqlValue::Text(project.to_string())];
        match &q.branch {
            Some(branch) => {
                clauses.push("branch_id = ?");
                params.push(SqlValue::Text(branch.clone()));
            }
            None => clauses.push("branch_id IS NULL"),
        }
        for (clause, value) in [
            ("bucket_name = ?", &q.bucket),
            ("table_name = ?", &q.table),
            ("snapshot_type = ?", &q.kind),
        ] {
            if let Some(v) = value {
                clauses.push(clause);
                params.push(SqlValue::Text(v.clone()));
            }
        }
        let among;
        if let Some(buckets) = &q.buckets {
            among = match buckets.len() {
                0 => "FALSE".to_string(),
                n => format!("bucket_name IN ({})", vec!["?"; n].join(", ")),
            };
            clauses.push(&among);
            params.extend(buckets.iter().map(|b| SqlValue::Text(b.clone())));
        }
        let filter = clauses.join(" AND ");
        let (rows, total) = self.query(|conn| {
            let total: i64 = conn.query_row(
                &format!("SELECT count(*) FROM snapshots WHERE {filter}"),
                duckdb::params_from_iter(params.iter()),
                |r| r.get(0),
            )?;
            let mut stmt = conn.prepare(&format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE {filter}
                 ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}",
                q.limit, q.offset
            ))?;
            let rows = stmt
                .query_map(duckdb::params_from_iter(params.iter()), snapshot_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((rows, total.max(0) as u64))
        })?;
        let rows = rows.into_iter().map(with_times).collect::<ApiResult<_>>()?;
        Ok((rows, total))
    }

    /// Removes the snapshot's row; false when there was none (blocking).
    pub fn delete_snapshot(&self, project: &str, id: &str) -> ApiResult<bool> {
        self.write(|tx, _| {
            let n = tx.execute(
                "DELETE FROM snapshots WHERE project_id = ? AND id = ?",
                [project, id],
            )?;
            Ok((n > 0, no_model_change()))
        })
    }

    /// Snapshots whose retention ended before `now`: (project, id, file path) (blocking).
    pub fn expired_snapshots(
        &self,
        now: DateTime<Utc>,
    ) -> ApiResult<Vec<(String, String, String)>> {
        self.query(|conn| {
            let mut stmt = conn.prepare(
                "SELECT project_id, id, file_path FROM snapshots
                 WHERE expires_at IS NOT NULL AND expires_at <= make_timestamp(?)",
            )?;
            let rows = stmt
                .query_map([micros(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Every snapshot file path the catalog knows (blocking): what the sweep must keep.
    pub fn snapshot_paths(&self) -> ApiResult<Vec<String>> {
        self.query(|conn| {
            let mut stmt = conn.prepare("SELECT file_path FROM snapshots")?;
            let rows = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    /// Bytes of a project's snapshot files, as recorded (blocking).
    pub fn snapshot_bytes(&self, project: &str) -> ApiResult<u64> {
        self.query(|conn| {
            let n: i64 = conn.query_row(
                "SELECT coalesce(sum(size_bytes), 0)::BIGINT FROM snapshots WHERE project_id = ?",
                [project],
                |r| r.get(0),
            )?;
            Ok(n.max(0) as u64)
        })
    }
}
