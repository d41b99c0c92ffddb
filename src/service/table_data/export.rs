//! Reading rows out of tables: export to a new file of the project, or stream them to the
//! client straight from DuckDB's writer. Reads go through links; nothing here writes tables.

use bytes::Bytes;
use serde_json::json;

use crate::catalog::files::FileRecord;
use crate::engine::export::{Compression, ExportFormat, RowSelection};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BucketName, ProjectId, TableName};
use crate::service::files::NewFile;
use crate::service::tables::resolve_locked;
use crate::state::AppState;

/// What to export: which rows and columns, in which file format.
pub struct ExportRequest {
    pub selection: RowSelection,
    pub format: ExportFormat,
    pub compression: Compression,
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
    bucket: &BucketName,
    table: &TableName,
    request: ExportRequest,
) -> ApiResult<Exported> {
    let ExportRequest {
        selection,
        format,
        compression,
    } = request;
    let (guard, key, _) = resolve_locked(state, project, bucket, table).await?;
    state.files.admit(None)?;
    let out = state.files.work_file("");
    let target = out.path().to_path_buf();
    let engine = state.engine.clone();
    let k = key.clone();
    let started = std::time::Instant::now();
    let rows = state
        .bulk
        .run(project, guard, move || {
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
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table))]
pub async fn export_stream(
    state: &AppState,
    project: &ProjectId,
    bucket: &BucketName,
    table: &TableName,
    request: ExportRequest,
) -> ApiResult<impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>> {
    let ExportRequest {
        selection,
        format,
        compression,
    } = request;
    if !format.through_pipe(compression) {
        return Err(ApiError::new(
            ErrorCode::InvalidCompression,
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
