//! The JSON bodies the table, job, file and bucket routes answer, as typed structs whose field
//! order is the wire order. Shapes only: no handler logic and no other `api` module is used.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::catalog::files::{FileRecord, PreparedUpload};
use crate::catalog::jobs::{JobRecord, JobStatus};
use crate::catalog::{BucketRecord, StoredColumn};
use crate::engine::preview::Preview;
use crate::engine::profile::{ColumnProfile, Profile};
use crate::engine::ColumnInfo;
use crate::names::{BucketName, ProjectId, TableName};
use crate::service::table_data::{Exported, Imported, JobRun, TableJobOutcome};
use crate::service::tables::TableView;

/// A table column. The column's default is not shown.
#[derive(Serialize)]
pub struct ColumnResponse {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    nullable: bool,
    ordinal_position: u32,
}

impl From<&ColumnInfo> for ColumnResponse {
    fn from(c: &ColumnInfo) -> Self {
        Self {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            nullable: c.nullable,
            ordinal_position: c.ordinal_position,
        }
    }
}

impl From<&StoredColumn> for ColumnResponse {
    fn from(c: &StoredColumn) -> Self {
        Self {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            nullable: c.nullable,
            ordinal_position: c.ordinal_position,
        }
    }
}

/// A table: its catalog record and the figures recorded with it at its last change.
#[derive(Serialize)]
pub struct TableResponse {
    name: TableName,
    bucket: BucketName,
    columns: Vec<ColumnResponse>,
    row_count: u64,
    size_bytes: u64,
    primary_key: Vec<String>,
    created_at: String,
    /// When the table's content or definition last changed (duckbank's own field).
    updated_at: String,
    /// `main`, or `branch` for a dev branch's own copy or table (ADR 0031).
    source: &'static str,
}

impl From<&TableView> for TableResponse {
    fn from(view: &TableView) -> Self {
        Self {
            name: view.record.name.clone(),
            bucket: view.bucket.clone(),
            columns: view
                .stats
                .columns
                .iter()
                .map(ColumnResponse::from)
                .collect(),
            row_count: view.stats.row_count,
            size_bytes: view.stats.size_bytes,
            primary_key: view
                .record
                .primary_key
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            created_at: view.record.created_at.to_rfc3339(),
            updated_at: view.stats.updated_at.to_rfc3339(),
            source: if view.from_branch { "branch" } else { "main" },
        }
    }
}

#[derive(Serialize)]
pub struct TableList {
    tables: Vec<TableResponse>,
    total: usize,
}

impl From<&[TableView]> for TableList {
    fn from(views: &[TableView]) -> Self {
        let tables: Vec<TableResponse> = views.iter().map(TableResponse::from).collect();
        Self {
            total: tables.len(),
            tables,
        }
    }
}

/// Up to the asked number of rows, `{columns, rows, total_row_count, preview_row_count,
/// truncated}`. The rows are the JSON text the engine wrote (bounded by MAX_PREVIEW_BYTES);
/// they are sent as they are, framed by the other fields, never parsed or copied again.
pub fn preview_response(preview: Preview) -> Response {
    let columns: Vec<ColumnResponse> = preview.columns.iter().map(ColumnResponse::from).collect();
    let mut head = b"{\"columns\":".to_vec();
    // Serializing plain structs of strings and numbers into memory cannot fail.
    if serde_json::to_writer(&mut head, &columns).is_err() {
        return crate::error::ApiError::internal("writing preview columns failed").into_response();
    }
    head.extend_from_slice(b",\"rows\":[");
    let tail = format!(
        "],\"total_row_count\":{},\"preview_row_count\":{},\"truncated\":{}}}",
        preview.total_row_count, preview.row_count, preview.truncated
    );
    let parts = [
        Bytes::from(head),
        Bytes::from(preview.rows_json),
        Bytes::from(tail),
    ];
    let length: usize = parts.iter().map(Bytes::len).sum();
    let body = Body::from_stream(futures_util::stream::iter(
        parts.map(Ok::<_, std::convert::Infallible>),
    ));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(length)),
        ],
        body,
    )
        .into_response()
}

/// A table created from a file: the table, then what the load reported.
#[derive(Serialize)]
pub struct CreatedFromFile {
    #[serde(flatten)]
    table: TableResponse,
    imported_rows: u64,
    warnings: Vec<String>,
}

impl CreatedFromFile {
    pub fn new(view: &TableView, imported_rows: u64, warnings: Vec<String>) -> Self {
        Self {
            table: TableResponse::from(view),
            imported_rows,
            warnings,
        }
    }
}

#[derive(Serialize)]
pub struct ImportResponse {
    imported_rows: u64,
    table_rows_after: u64,
    table_size_bytes: u64,
    warnings: Vec<String>,
    validate_only: bool,
}

impl From<Imported> for ImportResponse {
    fn from(imported: Imported) -> Self {
        Self {
            imported_rows: imported.outcome.imported_rows,
            table_rows_after: imported.outcome.table_rows_after,
            table_size_bytes: imported.table_size_bytes,
            warnings: imported.outcome.warnings,
            validate_only: imported.validate_only,
        }
    }
}

#[derive(Serialize)]
pub struct ExportResponse {
    file_id: String,
    file_path: String,
    rows_exported: u64,
    file_size_bytes: u64,
    file: FileResponse,
}

impl From<Exported> for ExportResponse {
    fn from(exported: Exported) -> Self {
        let file = FileResponse::from(&exported.file);
        Self {
            file_id: exported.file.id,
            file_path: file.path.clone(),
            rows_exported: exported.rows,
            file_size_bytes: exported.file.size_bytes,
            file,
        }
    }
}

/// The result of an import or export, answered at once or recorded by its job.
#[derive(Serialize)]
#[serde(untagged)]
pub enum TableJobResponse {
    Imported(ImportResponse),
    Exported(Box<ExportResponse>),
}

impl From<TableJobOutcome> for TableJobResponse {
    fn from(outcome: TableJobOutcome) -> Self {
        match outcome {
            TableJobOutcome::Imported(i) => Self::Imported(i.into()),
            TableJobOutcome::Exported(e) => Self::Exported(Box::new((*e).into())),
        }
    }
}

/// 200 with the result of a job run in the request, or 202 with the queued job and where
/// to poll it.
pub fn job_run<R: Serialize>(project: &ProjectId, run: JobRun<R>) -> Response {
    match run {
        JobRun::Done(result) => Json(result).into_response(),
        JobRun::Queued(job) => {
            let location = format!("/projects/{project}/jobs/{}", job.id);
            let mut response =
                (StatusCode::ACCEPTED, Json(JobResponse::from(job.as_ref()))).into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            response
        }
    }
}

#[derive(Serialize)]
pub struct DeletedRows {
    deleted_rows: u64,
    table_rows_after: u64,
}

impl DeletedRows {
    pub fn new(deleted_rows: u64, table_rows_after: u64) -> Self {
        Self {
            deleted_rows,
            table_rows_after,
        }
    }
}

#[derive(Serialize)]
pub struct ProfileResponse {
    table_name: TableName,
    bucket_name: BucketName,
    row_count: u64,
    column_count: usize,
    statistics: Vec<ColumnProfile>,
}

impl ProfileResponse {
    pub fn new(bucket: BucketName, table: TableName, profile: Profile) -> Self {
        Self {
            table_name: table,
            bucket_name: bucket,
            row_count: profile.row_count,
            column_count: profile.columns.len(),
            statistics: profile.columns,
        }
    }
}

/// An asynchronous job: what it was asked, where it is, and its outcome.
#[derive(Serialize)]
pub struct JobResponse {
    id: String,
    project_id: String,
    kind: String,
    status: JobStatus,
    progress: f64,
    request: Option<Value>,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    result: Option<Value>,
    error: Option<Value>,
}

impl From<&JobRecord> for JobResponse {
    fn from(job: &JobRecord) -> Self {
        Self {
            id: job.id.clone(),
            project_id: job.project_id.clone(),
            kind: job.kind.clone(),
            status: job.status,
            progress: job.progress,
            request: job.request.clone(),
            created_at: job.created_at.to_rfc3339(),
            started_at: job.started_at.map(|t| t.to_rfc3339()),
            finished_at: job.finished_at.map(|t| t.to_rfc3339()),
            result: job.result.clone(),
            error: job.error.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct JobList {
    jobs: Vec<JobResponse>,
    total: usize,
}

impl From<&[JobRecord]> for JobList {
    fn from(records: &[JobRecord]) -> Self {
        let jobs: Vec<JobResponse> = records.iter().map(JobResponse::from).collect();
        Self {
            total: jobs.len(),
            jobs,
        }
    }
}

/// Where the reference service keeps a blob, derived from its SHA-256.
pub fn blob_path(sha: &str) -> String {
    format!(
        "blobs/{}/{}/{sha}",
        &sha[..2.min(sha.len())],
        sha.get(2..4).unwrap_or("")
    )
}

/// A stored file, or a prepared upload not yet registered (`is_staged`).
#[derive(Serialize)]
pub struct FileResponse {
    id: String,
    project_id: ProjectId,
    name: String,
    path: String,
    size_bytes: u64,
    content_type: Option<String>,
    checksum_sha256: Option<String>,
    is_staged: bool,
    created_at: String,
    expires_at: Option<String>,
    tags: Option<Value>,
}

impl From<&FileRecord> for FileResponse {
    fn from(rec: &FileRecord) -> Self {
        Self {
            id: rec.id.clone(),
            project_id: rec.project_id.clone(),
            name: rec.name.clone(),
            path: blob_path(&rec.sha256),
            size_bytes: rec.size_bytes,
            content_type: rec.content_type.clone(),
            checksum_sha256: Some(rec.sha256.clone()),
            is_staged: false,
            created_at: rec.created_at.to_rfc3339(),
            expires_at: None,
            tags: rec.tags.clone(),
        }
    }
}

impl From<&PreparedUpload> for FileResponse {
    fn from(up: &PreparedUpload) -> Self {
        let sha = up.sha256.clone().unwrap_or_default();
        Self {
            id: up.upload_key.clone(),
            project_id: up.project_id.clone(),
            name: up.filename.clone(),
            path: blob_path(&sha),
            size_bytes: up.size_bytes.unwrap_or(0),
            content_type: up.content_type.clone(),
            checksum_sha256: up.sha256.clone(),
            is_staged: true,
            created_at: up.created_at.to_rfc3339(),
            expires_at: Some(up.expires_at.to_rfc3339()),
            tags: up.tags.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct FileList {
    files: Vec<FileResponse>,
    total: u64,
}

impl FileList {
    pub fn new(files: Vec<FileResponse>, total: u64) -> Self {
        Self { files, total }
    }
}

/// A bucket; a link shows where it points and is always read-only.
#[derive(Serialize)]
pub struct BucketResponse {
    name: BucketName,
    table_count: usize,
    description: Option<String>,
    created_at: String,
    is_linked: bool,
    source_project_id: Option<ProjectId>,
    source_bucket_name: Option<BucketName>,
    readonly: bool,
    shared_with: BTreeSet<ProjectId>,
}

impl BucketResponse {
    /// `table_count` is passed in: for a link it is the source bucket's count.
    pub fn new(b: &BucketRecord, table_count: usize) -> Self {
        Self {
            name: b.name.clone(),
            table_count,
            description: b.description.clone(),
            created_at: b.created_at.to_rfc3339(),
            is_linked: b.link.is_some(),
            source_project_id: b.link.as_ref().map(|l| l.source_project.clone()),
            source_bucket_name: b.link.as_ref().map(|l| l.source_bucket.clone()),
            readonly: b.readonly || b.link.is_some(),
            shared_with: b.shared_with.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct BucketList {
    buckets: Vec<BucketResponse>,
    total: usize,
}

impl BucketList {
    pub fn new(buckets: Vec<BucketResponse>) -> Self {
        Self {
            total: buckets.len(),
            buckets,
        }
    }
}
