//! Moving data in and out of tables and changing their schema: import, create-from-file,
//! export (file or stream), column and primary-key changes, row deletes and profiles.

use bytes::Bytes;
use serde_json::{json, Value};

use super::require_writable;
use super::tables::{resolve_locked, validate_definition, TableView};
use crate::catalog::files::FileRecord;
use crate::catalog::not_found_bucket;
use crate::catalog::tables::{table_exists, table_not_found};
use crate::engine::ddl::ColumnDef;
use crate::engine::export::{Compression, ExportFormat, RowSelection};
use crate::engine::filter::Filter;
use crate::engine::import::{CsvOptions, DedupMode, Format, ImportOutcome, ImportRequest, Source};
use crate::engine::profile::Profile;
use crate::engine::{LockGuard, TableEngine, TableKey};
use crate::error::{ApiError, ApiResult};
use crate::names::{BucketName, ColumnName, ProjectId, TableName};
use crate::service::files::NewFile;
use crate::state::AppState;
use crate::types::ColumnType;

/// An import's outcome plus the table's size afterwards.
pub struct Imported {
    pub outcome: ImportOutcome,
    pub table_size_bytes: u64,
    pub validate_only: bool,
}

impl Imported {
    pub fn to_json(&self) -> Value {
        json!({
            "imported_rows": self.outcome.imported_rows,
            "table_rows_after": self.outcome.table_rows_after,
            "table_size_bytes": self.table_size_bytes,
            "warnings": self.outcome.warnings,
            "validate_only": self.validate_only,
        })
    }
}

/// A finished export: the new file record and how many rows it holds.
pub struct Exported {
    pub file: FileRecord,
    pub rows: u64,
}

/// Takes a table of the caller's own project for writing: exclusive lock first, then the
/// checks, so nothing changes between check and write.
async fn writable_locked(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<(LockGuard, TableKey)> {
    let key = TableKey {
        project: project.clone(),
        bucket: bucket.clone(),
        table: table.clone(),
    };
    let guard = state.engine.locks.table_exclusive(&key).await;
    state.catalog.read(|m| {
        let record = m
            .bucket(project, bucket)
            .ok_or_else(|| not_found_bucket(project, bucket))?;
        require_writable(record)?;
        if !record.tables.contains_key(table) {
            return Err(table_not_found(bucket, table));
        }
        Ok(())
    })?;
    Ok((guard, key))
}

pub async fn import(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
    file_id: &str,
    request: ImportRequest,
) -> ApiResult<Imported> {
    // The file must belong to the importing project (404 otherwise).
    let file = state.files.get(project, file_id).await?;
    let local = state.files.local_copy(&file).await?;
    let (guard, key) = writable_locked(state, project, bucket, table).await?;
    let engine = state.engine.clone();
    state.bulk.run(guard, move || {
        let outcome = engine.import_file(&key, local.path(), &request)?;
        tracing::info!(
            table = %key.table, rows = outcome.imported_rows, validate_only = request.validate_only,
            "import finished"
        );
        Ok(Imported {
            outcome,
            table_size_bytes: engine.size_bytes(&key),
            validate_only: request.validate_only,
        })
    })
    .await
}

/// How a table is created from a file.
pub struct FromFile {
    pub name: TableName,
    pub file_id: String,
    pub format: Format,
    pub csv: CsvOptions,
    pub primary_key: Vec<ColumnName>,
    pub all_varchar: bool,
}

/// Creates a table whose columns are inferred from the file and loads it, in one call.
/// A failed load removes the table again: the caller never sees a half-made table.
pub async fn create_from_file(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    spec: FromFile,
) -> ApiResult<(TableView, ImportOutcome)> {
    let file = state.files.get(project, &spec.file_id).await?;
    let local = state.files.local_copy(&file).await?;
    let key = TableKey {
        project: project.clone(),
        bucket: bucket.clone(),
        table: spec.name.clone(),
    };
    let guard = state.engine.locks.table_exclusive(&key).await;
    let st = state.clone();
    let (project, bucket) = (project.clone(), bucket.clone());
    state.bulk.run(guard, move || {
        let state = st;
        let record = state
            .catalog
            .read(|m| m.bucket(&project, &bucket).cloned())
            .ok_or_else(|| not_found_bucket(&project, &bucket))?;
        require_writable(&record)?;
        if record.tables.contains_key(&spec.name) {
            return Err(table_exists(&bucket, &spec.name));
        }
        let (columns, mut warnings) = infer_columns(&state, &spec, local.path())?;
        validate_definition(&columns, &spec.primary_key)?;
        state
            .engine
            .create_table(&key, &columns, &spec.primary_key)?;
        let record = match state.catalog.insert_table(
            &project,
            &bucket,
            spec.name.clone(),
            spec.primary_key.clone(),
        ) {
            Ok(r) => r,
            Err(e) => {
                let _ = state.engine.drop_table(&key);
                return Err(e);
            }
        };
        let request = ImportRequest {
            format: spec.format,
            csv: spec.csv.clone(),
            incremental: false,
            dedup: DedupMode::FailOnDuplicates,
            columns: None,
            validate_only: false,
        };
        let mut outcome = match state.engine.import_file(&key, local.path(), &request) {
            Ok(o) => o,
            Err(e) => {
                let _ = state.catalog.delete_table(&project, &bucket, &spec.name);
                let _ = state.engine.drop_table(&key);
                return Err(e);
            }
        };
        warnings.append(&mut outcome.warnings);
        outcome.warnings = warnings;
        let info = state.engine.describe(&key)?;
        tracing::info!(table = %key.table, rows = outcome.imported_rows, "table created from file");
        Ok((
            TableView {
                bucket,
                record,
                info,
            },
            outcome,
        ))
    })
    .await
}

/// Column definitions from what DuckDB's reader detects; types outside the allow-list
/// (nested JSON, say) become VARCHAR with a warning.
fn infer_columns(
    state: &AppState,
    spec: &FromFile,
    path: &std::path::Path,
) -> ApiResult<(Vec<ColumnDef>, Vec<String>)> {
    let conn = state.engine.conn()?;
    let source = Source::open(path, spec.format, &spec.csv)?;
    let detected = source.detect_typed(&conn, !spec.all_varchar)?;
    let mut warnings = Vec::new();
    let columns = detected
        .into_iter()
        .map(|(name, ty)| {
            let name = ColumnName::parse(&name).map_err(|e| {
                ApiError::bad_request_with(
                    format!("the file's column name {name:?} cannot be a column name: {e}"),
                    json!({ "column": name }),
                )
            })?;
            let data_type = match ColumnType::parse(&ty) {
                Ok(t) => t,
                Err(_) => {
                    warnings.push(format!(
                        "column {:?} was detected as {ty}, which tables do not support; it is stored as VARCHAR",
                        name.as_str()
                    ));
                    ColumnType::parse("VARCHAR")?
                }
            };
            Ok(ColumnDef {
                name,
                data_type,
                nullable: true,
                default: None,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((columns, warnings))
}

/// Writes the selected rows to a new file of the caller's project. Reads go through links.
/// DuckDB writes a work file; hashing it and fsyncing it then run in parallel. (Hashing
/// through a pipe while DuckDB writes was measured too: the pipe costs more than the hash.)
pub async fn export(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
    selection: RowSelection,
    format: ExportFormat,
    compression: Compression,
) -> ApiResult<Exported> {
    let (guard, key, _) = resolve_locked(state, project, bucket, table).await?;
    state.files.admit(None)?;
    let out = state.files.work_file("");
    let target = out.path().to_path_buf();
    let engine = state.engine.clone();
    let k = key.clone();
    let started = std::time::Instant::now();
    let rows = state
        .bulk
        .run(guard, move || {
            engine.export_to_file(&k, &selection, format, compression, &target)
        })
        .await?;
    let written = started.elapsed();
    let meta = NewFile {
        name: format.file_name(table.as_str(), compression),
        content_type: Some(format.content_type(compression).to_string()),
        tags: Some(json!({ "export": { "bucket": bucket, "table": table } })),
        client_id: None,
    };
    let file = state.files.create_from_path(project, meta, out).await?;
    tracing::info!(
        table = %key.table, rows, file = %file.id,
        write_ms = written.as_millis() as u64,
        publish_ms = (started.elapsed() - written).as_millis() as u64,
        "export finished"
    );
    Ok(Exported { file, rows })
}

/// Streams the selected rows in `format` straight from DuckDB's writer to the client: no file
/// is kept. Errors in the request (unknown column, bad filter) come back as an error before
/// any byte is sent; the table's shared lock is held until the end.
pub async fn export_stream(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
    selection: RowSelection,
    format: ExportFormat,
    compression: Compression,
) -> ApiResult<impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>> {
    if !format.through_pipe(compression) {
        return Err(ApiError::bad_request(
            "gzip CSV cannot be streamed; stream plain CSV (and let HTTP compress it) or POST …/export",
        ));
    }
    let (guard, key, _) = resolve_locked(state, project, bucket, table).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ApiResult<Bytes>>(8);
    let engine = state.engine.clone();
    let fifo = state.files.work_file(".fifo");
    tokio::task::spawn_blocking(move || {
        let _held = guard;
        let sink = |chunk: &[u8]| Ok(tx.blocking_send(Ok(Bytes::copy_from_slice(chunk))).is_ok());
        let result =
            engine.export_through_pipe(&key, &selection, format, compression, fifo.path(), sink);
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    // The first message tells whether the export started: a request error is answered as one.
    let first = match rx.recv().await {
        Some(first) => first?,
        None => Bytes::new(),
    };
    // A failure after the first bytes can only cut the body short: the client sees an
    // incomplete response, never a complete-looking one.
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item.map_err(std::io::Error::other), rx))
    });
    Ok(futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(first) }),
        rest,
    ))
}

/// Runs a schema change (`f`, on a bulk thread) under the table's exclusive lock and returns
/// the table afterwards.
pub async fn change_table(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
    f: impl FnOnce(&TableEngine, &TableKey) -> ApiResult<()> + Send + 'static,
) -> ApiResult<TableView> {
    let (guard, key) = writable_locked(state, project, bucket, table).await?;
    let st = state.clone();
    let (bucket, table) = (bucket.clone(), table.clone());
    state
        .bulk
        .run(guard, move || {
            let state = st;
            f(&state.engine, &key)?;
            let info = state.engine.describe(&key)?;
            // The file is authoritative for the primary key; keep the catalog's copy in step.
            let record = state.catalog.read(|m| {
                m.bucket(&key.project, &bucket)
                    .and_then(|b| b.tables.get(&table))
                    .cloned()
            });
            let record = record.ok_or_else(|| table_not_found(&bucket, &table))?;
            let file_pk: Vec<&str> = info.primary_key.iter().map(String::as_str).collect();
            let catalog_pk: Vec<&str> = record.primary_key.iter().map(ColumnName::as_str).collect();
            let record = if file_pk != catalog_pk {
                let pk: Vec<ColumnName> = info
                    .primary_key
                    .iter()
                    .filter_map(|p| ColumnName::parse(p).ok())
                    .collect();
                state
                    .catalog
                    .set_primary_key(&key.project, &bucket, &table, pk.clone())?;
                crate::catalog::TableRecord {
                    primary_key: pk,
                    ..record
                }
            } else {
                record
            };
            Ok(TableView {
                bucket,
                record,
                info,
            })
        })
        .await
}

/// Deletes matching rows; returns (deleted, remaining).
pub async fn delete_rows(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
    filter: Filter,
) -> ApiResult<(u64, u64)> {
    let (guard, key) = writable_locked(state, project, bucket, table).await?;
    let engine = state.engine.clone();
    state
        .bulk
        .run(guard, move || engine.delete_rows(&key, &filter))
        .await
}

pub async fn profile(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
) -> ApiResult<Profile> {
    let (guard, key, _) = resolve_locked(state, project, bucket, table).await?;
    let engine = state.engine.clone();
    state.bulk.run(guard, move || engine.profile(&key)).await
}
