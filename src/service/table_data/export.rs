//! Reading rows out of tables: export to a new file of the project, or stream them to the
//! client from a snapshot file. Reads go through links; nothing here writes tables.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use crate::catalog::files::FileRecord;
use crate::engine::export::{Compression, ExportFormat, RowSelection};
use crate::engine::TableKey;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::files::spool::Spooled;
use crate::names::{BranchId, BucketName, ProjectId, TableName};
use crate::service::files::NewFile;
use crate::service::snapshots::manage::readable;
use crate::service::snapshots::unless_deleted;
use crate::service::tables::{resolve_reserved, resolve_table};
use crate::state::AppState;

use super::stream::snapshot_stream;

/// What to export: which rows and columns, in which file format, from the table or one
/// of its snapshots (time travel).
pub struct ExportRequest {
    pub selection: RowSelection,
    pub format: ExportFormat,
    pub compression: Compression,
    /// A snapshot id: its rows instead of the table's.
    pub snapshot: Option<String>,
}

/// Writes the selected rows to `out` on a bulk thread: the table's under its shared lock (read
/// through links), or a snapshot's. Returns the key the rows came from, the row count and
/// `out`: it moves into the task and back, so if the client leaves while DuckDB writes, the
/// finished file is dropped (removed) there, never left behind.
async fn write_rows(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
    request: ExportRequest,
    out: Spooled,
) -> ApiResult<(TableKey, u64, Spooled)> {
    let ExportRequest {
        selection,
        format,
        compression,
        snapshot,
    } = request;
    let engine = state.engine.clone();
    match snapshot {
        None => {
            let (reserved, guard, key) =
                resolve_reserved(state, project, branch, bucket, table).await?;
            state.files.admit(None)?;
            let k = key.clone();
            let (rows, out) = state
                .bulk
                .run(reserved, guard, move || {
                    let rows =
                        engine.export_to_file(&k, &selection, format, compression, out.path())?;
                    Ok((rows, out))
                })
                .await?;
            Ok((key, rows, out))
        }
        Some(id) => {
            let (key, file) = readable(state, project, branch, bucket, table, &id).await?;
            state.files.admit(None)?;
            let reserved = state.bulk.reserve(project).await;
            let k = key.clone();
            let written = state
                .bulk
                .run(reserved, (), move || {
                    let file = file.view(&k);
                    let rows = engine.export_snapshot(
                        &file,
                        &selection,
                        format,
                        compression,
                        out.path(),
                    )?;
                    Ok((rows, out))
                })
                .await;
            match written {
                Ok((rows, out)) => Ok((key, rows, out)),
                Err(e) => Err(unless_deleted(state, project, &id, e).await),
            }
        }
    }
}

/// A finished export: the new file record and how many rows it holds.
pub struct Exported {
    pub file: FileRecord,
    pub rows: u64,
}

/// Writes the selected rows to a new file of the caller's project. Reads go through links.
/// DuckDB writes a work file; hashing it and fsyncing it then run in parallel. (Hashing
/// through a pipe while DuckDB writes was measured too: the pipe costs more than the hash.)
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn export(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
    request: ExportRequest,
) -> ApiResult<Exported> {
    let (format, compression) = (request.format, request.compression);
    let out = state.files.work_file("");
    let started = std::time::Instant::now();
    let (key, rows, out) = write_rows(state, project, branch, bucket, table, request, out).await?;
    let written = started.elapsed();
    let meta = NewFile {
        name: format.file_name(table.as_str(), compression),
        content_type: Some(format.content_type(compression).to_string()),
        tags: Some(json!({ "export": { "bucket": bucket, "table": table } })),
        client_id: None,
    };
    let file = state.files.create_from_path(project, meta, out).await?;
    crate::telemetry::table_transfer("export", rows, started.elapsed());
    tracing::info!(
        table = %key.table, rows, file = %file.id,
        write_ms = written.as_millis() as u64,
        publish_ms = (started.elapsed() - written).as_millis() as u64,
        "export finished"
    );
    Ok(Exported { file, rows })
}

/// Streams the selected rows in `format` to the client. DuckDB first writes them to a
/// snapshot file under the table's shared lock (at disk speed, whatever the client does);
/// the lock is released before the first byte is sent, so a client that stops reading never
/// holds up a writer of the table (ADR 0021). Errors in the request (unknown column, bad
/// filter) come back as an error before any byte is sent. The stream ends early, cut short,
/// when the caller loses read access meanwhile (unshare, unlink, table deleted) or takes
/// nothing for `IDLE_CONNECTION_TIMEOUT_SECS`.
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn export_stream(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
    request: ExportRequest,
) -> ApiResult<impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>> {
    if !request.format.streamable(request.compression) {
        return Err(ApiError::new(
            ErrorCode::InvalidCompression,
            "gzip CSV cannot be streamed; stream plain CSV (and let HTTP compress it) or POST …/export",
        ));
    }
    let reads_table = request.snapshot.is_none();
    // The work file takes disk space: refused (507) while the data dir is short of it.
    let out = state.files.work_file(".export");
    let started = std::time::Instant::now();
    let (key, rows, snapshot) =
        write_rows(state, project, branch, bucket, table, request, out).await?;
    // The snapshot's writing is the export's work; streaming it is the client's pace.
    crate::telemetry::table_transfer("export", rows, started.elapsed());
    tracing::debug!(table = %key.table, rows, "export snapshot written; streaming it");
    let (st, p, br, b, t) = (
        state.clone(),
        project.clone(),
        branch.clone(),
        bucket.clone(),
        table.clone(),
    );
    // A snapshot's rows stay readable while access to the project lasts (the gate checked).
    let still_readable = move || {
        !reads_table || resolve_table(&st, &p, &br, &b, &t).is_ok_and(|(now, _)| now == key)
    };
    let stall = Duration::from_secs(state.config.idle_connection_timeout_secs.max(1));
    snapshot_stream(snapshot, stall, still_readable).await
}
