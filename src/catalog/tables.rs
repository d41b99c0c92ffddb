//! Catalog writes for table records (name, primary key, creation time).
//! Column definitions live in the table file itself; the engine reads them from there.

use super::{apply_to_bucket, micros, Catalog, TableRecord};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BucketName, ColumnName, ProjectId, TableName};

impl Catalog {
    /// Records a table whose file the engine has just created; 409 if the name is taken.
    pub fn insert_table(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
        name: TableName,
        primary_key: Vec<ColumnName>,
    ) -> ApiResult<TableRecord> {
        self.write(|tx, model| {
            let b = model.existing_bucket(project, bucket)?;
            if b.tables.contains_key(&name) {
                return Err(table_exists(bucket, &name));
            }
            let now = crate::catalog::now();
            let pk: Vec<&str> = primary_key.iter().map(ColumnName::as_str).collect();
            let pk_json = serde_json::to_string(&pk)
                .map_err(|e| ApiError::internal_from("encoding a primary key", e))?;
            tx.execute(
                "INSERT INTO tables VALUES (?, 'default', ?, ?, ?::JSON, make_timestamp(?))",
                duckdb::params![
                    project.as_str(),
                    bucket.as_str(),
                    name.as_str(),
                    pk_json,
                    micros(now)
                ],
            )?;
            let record = TableRecord {
                name: name.clone(),
                primary_key,
                created_at: now,
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

impl Catalog {
    /// Records a table's new primary key after its file changed (the file is authoritative;
    /// this keeps the catalog's copy in step for listings and tools reading metadata.duckdb).
    pub fn set_primary_key(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
        name: &TableName,
        primary_key: Vec<ColumnName>,
    ) -> ApiResult<()> {
        self.write(|tx, _| {
            let pk: Vec<&str> = primary_key.iter().map(ColumnName::as_str).collect();
            let pk_json = serde_json::to_string(&pk)
                .map_err(|e| ApiError::internal_from("encoding a primary key", e))?;
            tx.execute(
                "UPDATE tables SET primary_key = ?::JSON WHERE project_id = ? AND bucket = ? AND name = ?",
                duckdb::params![pk_json, project.as_str(), bucket.as_str(), name.as_str()],
            )?;
            let name = name.clone();
            let apply = apply_to_bucket(project, bucket, move |b| {
                if let Some(t) = b.tables.get_mut(&name) {
                    t.primary_key = primary_key;
                }
            });
            Ok(((), apply))
        })
    }
}
