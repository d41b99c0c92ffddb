//! Resumable uploads: create a session, PUT chunks in any order (idempotent, optional
//! `X-Chunk-SHA256`), ask which chunks are missing, complete (verified), or abort.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ProjectAccess};
use super::files::check_file_name;
use super::responses::FileResponse;
use crate::catalog::files::{ChunkRecord, UploadSession};
use crate::error::{ApiError, ApiResult};
use crate::service::files::missing_chunks;
use crate::state::AppState;

/// Chunk size used when the client does not choose one.
const DEFAULT_CHUNK_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Deserialize)]
pub struct CreateBody {
    #[serde(alias = "filename")]
    name: String,
    #[serde(alias = "totalSize")]
    total_size: u64,
    #[serde(alias = "chunkSize")]
    chunk_size: Option<u64>,
    #[serde(alias = "checksum", alias = "file_checksum_sha256")]
    sha256: Option<String>,
    content_type: Option<String>,
}

#[derive(Deserialize)]
pub struct SessionParams {
    upload_id: String,
}

#[derive(Deserialize)]
pub struct ChunkParams {
    upload_id: String,
    n: u64,
}

fn session_json(s: &UploadSession, chunks: &[ChunkRecord]) -> Value {
    let received: Vec<u64> = chunks.iter().map(|c| c.idx).collect();
    let missing = missing_chunks(s, chunks);
    json!({
        "upload_id": s.id,
        "project_id": s.project_id,
        "name": s.name,
        "content_type": s.content_type,
        "total_size": s.total_size,
        "chunk_size": s.chunk_size,
        "chunk_count": s.chunk_count(),
        "sha256": s.expected_sha256,
        "received_chunks": received,
        "missing_chunks": missing,
        "received_bytes": chunks.iter().map(|c| c.size_bytes).sum::<u64>(),
        "is_complete": missing.is_empty(),
        "created_at": s.created_at.to_rfc3339(),
        "expires_at": s.expires_at.to_rfc3339(),
    })
}

pub async fn create(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<impl IntoResponse> {
    let project = access.existing_project(&state)?;
    let name = check_file_name(&body.name)?;
    let session = state
        .files
        .create_session(
            &project,
            name,
            body.content_type,
            body.total_size,
            body.chunk_size.unwrap_or(DEFAULT_CHUNK_BYTES),
            body.sha256.map(|s| s.to_ascii_lowercase()),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(session_json(&session, &[]))))
}

pub async fn put_chunk(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Path<ChunkParams>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let claimed = headers
        .get("x-chunk-sha256")
        .map(|v| {
            v.to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::bad_request("X-Chunk-SHA256 is not valid text"))
        })
        .transpose()?;
    let stored = state
        .files
        .put_chunk(
            &access.scope.project,
            &params.upload_id,
            params.n,
            claimed,
            body.into_data_stream(),
        )
        .await?;
    Ok(Json(json!({
        "upload_id": params.upload_id,
        "chunk": params.n,
        "stored": stored,
        "message": if stored { "chunk stored" } else { "chunk was already stored with the same content" },
    })))
}

pub async fn status(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Path<SessionParams>,
) -> ApiResult<Json<Value>> {
    let (session, chunks) = state
        .files
        .session(&access.scope.project, &params.upload_id)
        .await?;
    Ok(Json(session_json(&session, &chunks)))
}

pub async fn complete(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Path<SessionParams>,
) -> ApiResult<impl IntoResponse> {
    let rec = state
        .files
        .complete_session(&access.scope.project, &params.upload_id)
        .await?;
    Ok((StatusCode::CREATED, Json(FileResponse::from(&rec))))
}

pub async fn abort(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Path<SessionParams>,
) -> ApiResult<StatusCode> {
    state
        .files
        .abort_session(&access.scope.project, &params.upload_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
