//! Catalog writes for table records: name, primary key, creation time, and what a list shows
//! about the table file (columns, row count, size, last change), recorded with every write.

use super::{apply_to_bucket, micros, Catalog, TableRecord, TableStats};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BucketName, ColumnName, ProjectId, TableName};

impl Catalog {
    /// Records a table whose file the engine has just created, with what the file holds;
    /// 409 if the name is taken.
    pub fn insert_table(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
        name: TableName,
        primary_key: Vec<ColumnName>,
        stats: TableStats,
    ) -> ApiResult<TableRecord> {
        self.write(|tx, model| {
            let b = model.existing_bucket(project, bucket)?;
            if b.tables.contains_key(&name) {
                return Err(table_exists(bucket, &name));
            }
            let now = crate::catalog::now();
            tx.execute(
                "INSERT INTO tables (project_id, branch_id, bucket, name, primary_key, created_at, \
                 columns, row_count, size_bytes, updated_at, file_stamp) \
                 VALUES (?, 'default', ?, ?, ?::JSON, make_timestamp(?), ?::JSON, ?, ?, make_timestamp(?), ?)",
                duckdb::params![
                    project.as_str(),
                    bucket.as_str(),
                    name.as_str(),
                    pk_json(&primary_key)?,
                    micros(now),
                    columns_json(&stats)?,
                    stats.row_count as i64,
                    stats.size_bytes as i64,
                    micros(stats.updated_at),
                    stats.file_stamp,
                ],
            )?;
            let record = TableRecord {
                name: name.clone(),
                primary_key,
                created_at: now,
                stats: Some(stats),
                version: 0,
            };
            let out = record.clone();
            let apply = apply_to_bucket(project, bucket, move |b| {
                b.tables.insert(name, record);
            });
            Ok((out, apply))
        })
    }

    /// Removes a table record; the caller removes the file afterwards.
    pub fn delete_table(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
        name: &TableName,
    ) -> ApiResult<TableRecord> {
        self.write(|tx, model| {
            let record = model
                .bucket(project, bucket)
                .and_then(|b| b.tables.get(name))
                .cloned()
                .ok_or_else(|| table_not_found(bucket, name))?;
            tx.execute(
                "DELETE FROM tables WHERE project_id = ? AND bucket = ? AND name = ?",
                [project.as_str(), bucket.as_str(), name.as_str()],
            )?;
            let name = name.clone();
            let apply = apply_to_bucket(project, bucket, move |b| {
                b.tables.remove(&name);
            });
            Ok((record, apply))
        })
    }

    /// Records what a table file holds after a write to it (or after reading it again): the
    /// primary key as the file declares it and the list figures. Returns the updated record,
    /// or 404 when the table is gone. `written`: after a write, which counts in its version.
    pub fn set_table_stats(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
        name: &TableName,
        primary_key: Vec<ColumnName>,
        stats: TableStats,
        written: bool,
    ) -> ApiResult<TableRecord> {
        self.write(|tx, model| {
            let mut record = model
                .bucket(project, bucket)
                .and_then(|b| b.tables.get(name))
                .cloned()
                .ok_or_else(|| table_not_found(bucket, name))?;
            tx.execute(
                "UPDATE tables SET primary_key = ?::JSON, columns = ?::JSON, row_count = ?, \
                 size_bytes = ?, updated_at = make_timestamp(?), file_stamp = ?, \
                 version = coalesce(version, 0) + ? \
                 WHERE project_id = ? AND bucket = ? AND name = ?",
                duckdb::params![
                    pk_json(&primary_key)?,
                    columns_json(&stats)?,
                    stats.row_count as i64,
                    stats.size_bytes as i64,
                    micros(stats.updated_at),
                    stats.file_stamp,
                    i64::from(written),
                    project.as_str(),
                    bucket.as_str(),
                    name.as_str(),
                ],
            )?;
            record.primary_key = primary_key;
            record.stats = Some(stats);
            record.version += u64::from(written);
            let out = record.clone();
            let name = name.clone();
            let apply = apply_to_bucket(project, bucket, move |b| {
                if let Some(t) = b.tables.get_mut(&name) {
                    *t = record;
                }
            });
            Ok((out, apply))
        })
    }

    /// Records a table file's stamp anew when the file changed on disk but not in content (its
    /// WAL was folded in later than its figures were recorded).
    pub fn set_file_stamp(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
        name: &TableName,
        file_stamp: String,
    ) -> ApiResult<()> {
        self.write(|tx, _| {
            tx.execute(
                "UPDATE tables SET file_stamp = ? WHERE project_id = ? AND bucket = ? AND name = ?",
                duckdb::params![file_stamp, project.as_str(), bucket.as_str(), name.as_str()],
            )?;
            let name = name.clone();
            let apply = apply_to_bucket(project, bucket, move |b| {
                if let Some(stats) = b.tables.get_mut(&name).and_then(|t| t.stats.as_mut()) {
                    stats.file_stamp = file_stamp;
                }
            });
            Ok(((), apply))
        })
    }

    /// Forgets the recorded figures of every table `is_stale` rejects, in the read model only:
    /// the stored row keeps its old stamp, which still will not match, until the table is read
    /// again. Returns how many were forgotten.
    pub fn forget_stale_stats(
        &self,
        is_stale: impl Fn(&ProjectId, &BucketName, &TableName, &TableStats) -> bool,
    ) -> usize {
        let mut forgotten = 0;
        let mut model = self.model.write();
        for (pid, project) in model.projects.iter_mut() {
            for (bname, bucket) in project.buckets.iter_mut() {
                for (tname, table) in bucket.tables.iter_mut() {
                    if table
                        .stats
                        .as_ref()
                        .is_some_and(|s| is_stale(pid, bname, tname, s))
                    {
                        table.stats = None;
                        forgotten += 1;
                    }
                }
            }
        }
        forgotten
    }
}

fn pk_json(primary_key: &[ColumnName]) -> ApiResult<String> {
    let pk: Vec<&str> = primary_key.iter().map(ColumnName::as_str).collect();
    serde_json::to_string(&pk).map_err(|e| ApiError::internal_from("encoding a primary key", e))
}

fn columns_json(stats: &TableStats) -> ApiResult<String> {
    serde_json::to_string(stats.columns.as_slice())
        .map_err(|e| ApiError::internal_from("encoding table columns", e))
}

pub(crate) fn table_exists(bucket: &BucketName, name: &TableName) -> ApiError {
    ApiError::new(
        ErrorCode::TableExists,
        format!("Table '{name}' already exists in bucket '{bucket}'"),
    )
}

pub(crate) fn table_not_found(bucket: &BucketName, name: &TableName) -> ApiError {
    ApiError::new(
        ErrorCode::TableNotFound,
        format!("Table '{name}' not found in bucket '{bucket}'"),
    )
}
