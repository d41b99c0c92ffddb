//! Catalog rows of snapshot settings (one per configured level) and, later, of snapshots.
//! It stores and returns configs as given; validation and inheritance live in the service.

use super::{micros, no_model_change, Catalog};
use crate::error::{ApiError, ApiResult};
use crate::service::snapshots::settings::LocalConfig;

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
