//! Seed-compatible file APIs where the project comes from the key: the Data Bank API
//! (`/files`, file id = SHA-256) and the JSON blob API (`/v1/blobs`, base64 payloads).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::download;
use super::extract::{ApiJson, ApiQuery};
use super::files::create_from_request;
use crate::auth::Principal;
use crate::catalog::files::FileRecord;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::ProjectId;
use crate::service::files::NewFile;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ShaParams {
    file_id: String,
}

#[derive(Deserialize)]
pub struct NameQuery {
    name: Option<String>,
}

#[derive(Deserialize)]
pub struct BlobParams {
    id: String,
}

#[derive(Deserialize)]
pub struct BlobBody {
    id: String,
    data: String,
}

/// These APIs act on the caller's own project, so they need a project key.
fn own_project(principal: &Principal) -> ApiResult<ProjectId> {
    principal.project().cloned().ok_or_else(|| {
        ApiError::new(
            ErrorCode::OperationNotAllowed,
            "this API stores files in the caller's project: use a project API key",
        )
    })
}

fn info_json(rec: &FileRecord) -> Value {
    json!({
        "file_id": rec.sha256,
        "id": rec.id,
        "name": rec.name,
        "size": rec.size_bytes,
        "sha256": rec.sha256,
        "content_type": rec.content_type,
        "created_at": rec.created_at.to_rfc3339(),
    })
}

/// `POST /files`: multipart (`file` field) or a raw body with `?name=`; answers the SHA-256 id.
pub async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<NameQuery>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> ApiResult<impl IntoResponse> {
    let project = own_project(&principal)?;
    let rec = create_from_request(
        &state,
        &project,
        query.name,
        None,
        Some("upload.bin"),
        &headers,
        request,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(info_json(&rec))))
}

pub async fn download(
    State(state): State<AppState>,
    principal: Principal,
    Path(params): Path<ShaParams>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let project = own_project(&principal)?;
    let rec = state.files.get_by_sha(&project, &params.file_id).await?;
    download::respond(state.files.store.as_ref(), &rec, &method, &headers).await
}

pub async fn info(
    State(state): State<AppState>,
    principal: Principal,
    Path(params): Path<ShaParams>,
) -> ApiResult<Json<Value>> {
    let project = own_project(&principal)?;
    let rec = state.files.get_by_sha(&project, &params.file_id).await?;
    Ok(Json(info_json(&rec)))
}

/// Deletes every record of the caller's project holding this content.
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(params): Path<ShaParams>,
) -> ApiResult<StatusCode> {
    let project = own_project(&principal)?;
    let records = state.files.all_by_sha(&project, &params.file_id).await?;
    if records.is_empty() {
        return Err(ApiError::new(
            ErrorCode::FileNotFound,
            format!("File '{}' not found in project '{project}'", params.file_id),
        )
        .with_details(json!({ "file_id": params.file_id, "project_id": project })));
    }
    state.files.delete(&project, records).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Client blob ids: bounded and free of path and control characters.
fn check_blob_id(id: &str) -> ApiResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        && id != "."
        && id != "..";
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid blob id {id:?}: use 1-255 ASCII letters, digits, '-', '_', '.', ':'"
        )))
    }
}

/// `POST /v1/blobs`: `{id, data}` with base64 data; 409 when the id exists.
pub async fn create_blob(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<BlobBody>,
) -> ApiResult<impl IntoResponse> {
    let project = own_project(&principal)?;
    check_blob_id(&body.id)?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(body.data.trim())
        .map_err(|e| ApiError::bad_request(format!("data is not valid base64: {e}")))?;
    let meta = NewFile {
        name: body.id.clone(),
        content_type: Some("application/octet-stream".into()),
        tags: None,
        client_id: Some(body.id.clone()),
    };
    let len = data.len() as u64;
    let stream =
        futures_util::stream::once(
            async move { Ok::<_, std::io::Error>(bytes::Bytes::from(data)) },
        );
    let rec = state
        .files
        .create(&project, meta, Box::pin(stream), Some(len))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": body.id, "size": rec.size_bytes, "sha256": rec.sha256, "created_at": rec.created_at.to_rfc3339() }),
        ),
    ))
}

/// `GET /v1/blobs/{id}`: the blob with its data base64-encoded.
pub async fn get_blob(
    State(state): State<AppState>,
    principal: Principal,
    Path(params): Path<BlobParams>,
) -> ApiResult<Json<Value>> {
    let project = own_project(&principal)?;
    check_blob_id(&params.id)?;
    let rec = state.files.get_by_client_id(&project, &params.id).await?;
    let mut stream = state
        .files
        .store
        .read(&rec.sha256, 0, rec.size_bytes)
        .await?;
    let mut data = Vec::with_capacity(rec.size_bytes as usize);
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        data.extend_from_slice(&chunk?);
    }
    Ok(Json(json!({
        "id": params.id,
        "data": base64::engine::general_purpose::STANDARD.encode(&data),
        "size": rec.size_bytes,
        "sha256": rec.sha256,
        "created_at": rec.created_at.to_rfc3339(),
    })))
}
