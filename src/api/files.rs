//! `/projects/{id}/files` routes: the reference's prepare → upload → register flow, listing,
//! info, delete, download (Range/HEAD/ETag), and single-shot streaming uploads (`files/content`).

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::download;
use super::extract::{ApiJson, ApiQuery, ProjectAccess};
use super::responses::{blob_path, FileList, FileResponse};
use crate::catalog::files::FileRecord;
use crate::error::{ApiError, ApiResult};
use crate::names::ProjectId;
use crate::service::files::NewFile;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct FileParams {
    file_id: String,
}

#[derive(Deserialize)]
pub struct UploadKeyParams {
    upload_key: String,
}

#[derive(Deserialize)]
pub struct PrepareBody {
    filename: String,
    content_type: Option<String>,
    size_bytes: Option<u64>,
    tags: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
pub struct RegisterBody {
    upload_key: String,
    name: Option<String>,
    tags: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    include_staged: Option<bool>,
    limit: Option<u64>,
    offset: Option<u64>,
}

#[derive(Deserialize)]
pub struct ContentQuery {
    name: Option<String>,
    content_type: Option<String>,
}

/// Display names are kept as given (they never become paths) but must be sane.
pub fn check_file_name(name: &str) -> ApiResult<String> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request("file name must not be empty"));
    }
    if name.len() > 1024 {
        return Err(ApiError::bad_request("file name is longer than 1024 bytes"));
    }
    if name.contains('\0') {
        return Err(ApiError::bad_request("file name must not contain NUL"));
    }
    Ok(name.to_string())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

pub async fn prepare(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<PrepareBody>,
) -> ApiResult<Json<Value>> {
    let project = access.existing_project(&state)?;
    let name = check_file_name(&body.filename)?;
    let up = state
        .files
        .prepare(
            &project,
            name,
            body.content_type,
            body.size_bytes,
            body.tags.map(Value::Object),
        )
        .await?;
    Ok(Json(json!({
        "upload_key": up.upload_key,
        "upload_url": format!("/projects/{project}/files/upload/{}", up.upload_key),
        "expires_at": up.expires_at.to_rfc3339(),
    })))
}

/// Multipart upload of a prepared file (field `file`, or the first file field).
pub async fn upload(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Path<UploadKeyParams>,
    multipart: Multipart,
) -> ApiResult<Json<Value>> {
    let project = access.scope.project;
    let part = file_part(multipart).await?;
    let (sha, size) = state
        .files
        .upload_prepared(&project, &params.upload_key, part.body)
        .await?;
    Ok(Json(json!({
        "upload_key": params.upload_key,
        "staging_path": blob_path(&sha),
        "size_bytes": size,
        "checksum_sha256": sha,
    })))
}

/// The file part of a multipart body, streaming.
pub struct FilePart {
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub body: PartStream,
}

pub type PartStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, String>> + Send>>;

/// Finds the part holding the file (named `file`, else the first with a file name) and
/// streams it. A task owns the multipart reader and forwards the part's chunks through a
/// small bounded channel, so memory stays bounded and the borrow of the reader stays local.
pub async fn file_part(mut multipart: Multipart) -> ApiResult<FilePart> {
    let (meta_tx, meta_rx) =
        tokio::sync::oneshot::channel::<ApiResult<(Option<String>, Option<String>)>>();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, String>>(8);
    tokio::spawn(async move {
        loop {
            let mut field = match multipart.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => {
                    let _ = meta_tx.send(Err(ApiError::unprocessable(
                        "multipart body has no 'file' part",
                    )
                    .with_details(json!({ "field": "file" }))));
                    return;
                }
                Err(e) => {
                    let _ = meta_tx.send(Err(ApiError::bad_request(format!(
                        "malformed multipart body: {e}"
                    ))));
                    return;
                }
            };
            if field.name() != Some("file") && field.file_name().is_none() {
                continue;
            }
            let meta = (
                field.file_name().map(str::to_string),
                field.content_type().map(str::to_string),
            );
            if meta_tx.send(Ok(meta)).is_err() {
                return;
            }
            loop {
                let next = field.chunk().await.map_err(|e| e.to_string()).transpose();
                let Some(item) = next else { return };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        }
    });
    let (file_name, content_type) = meta_rx
        .await
        .map_err(|_| ApiError::bad_request("multipart body ended early"))??;
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(FilePart {
        file_name,
        content_type,
        body: Box::pin(body),
    })
}

pub async fn register(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<impl IntoResponse> {
    let name = body.name.as_deref().map(check_file_name).transpose()?;
    let rec = state
        .files
        .register(
            &access.scope.project,
            &body.upload_key,
            name,
            body.tags.map(Value::Object),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(FileResponse::from(&rec))))
}

pub async fn list(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<FileList>> {
    let project = access.existing_project(&state)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit must be between 1 and 1000, got {limit}"
        ))
        .with_details(json!({ "limit": limit })));
    }
    let offset = q.offset.unwrap_or(0);
    // The catalog counts in signed 64-bit; a larger offset can only be past the end anyway,
    // but saying so beats a failed query.
    if offset > i64::MAX as u64 {
        return Err(ApiError::unprocessable(format!(
            "offset must be at most {}, got {offset}",
            i64::MAX
        ))
        .with_details(json!({ "offset": offset })));
    }
    let (page, total) = state.files.list(&project, offset, limit).await?;
    let mut files: Vec<FileResponse> = page.iter().map(FileResponse::from).collect();
    let mut total = total;
    if q.include_staged.unwrap_or(false) {
        let staged = state.files.staged(&project).await?;
        total += staged.len() as u64;
        files.extend(staged.iter().map(FileResponse::from));
    }
    Ok(Json(FileList::new(files, total)))
}

pub async fn get(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Path<FileParams>,
) -> ApiResult<Json<FileResponse>> {
    let rec = state
        .files
        .get(&access.scope.project, &params.file_id)
        .await?;
    Ok(Json(FileResponse::from(&rec)))
}

pub async fn delete(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Path<FileParams>,
) -> ApiResult<StatusCode> {
    let project = access.scope.project;
    let rec = state.files.get(&project, &params.file_id).await?;
    state.files.delete(&project, vec![rec]).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn download(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Path<FileParams>,
    method: Method,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rec = state
        .files
        .get(&access.scope.project, &params.file_id)
        .await?;
    download::respond(state.files.store.as_ref(), &rec, &method, &headers).await
}

/// Single-shot upload: a raw body (`?name=`), or multipart with a `file` field.
pub async fn upload_content(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiQuery(q): ApiQuery<ContentQuery>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> ApiResult<impl IntoResponse> {
    let project = access.existing_project(&state)?;
    let rec = create_from_request(
        &state,
        &project,
        q.name,
        q.content_type,
        None,
        &headers,
        request,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(FileResponse::from(&rec))))
}

/// Stores a single-shot upload as a new file of `project`: multipart (the `file` part, its
/// file name and type) or a raw body (type from Content-Type). An explicit `name` or
/// `content_type` wins; `fallback_name` is used when neither the query nor the part names it.
pub async fn create_from_request(
    state: &AppState,
    project: &ProjectId,
    name: Option<String>,
    content_type: Option<String>,
    fallback_name: Option<&str>,
    headers: &HeaderMap,
    request: axum::extract::Request,
) -> ApiResult<FileRecord> {
    let missing_name = || {
        ApiError::bad_request("a file name is required: ?name= or the multipart part's filename")
    };
    if is_multipart(headers) {
        let multipart = Multipart::from_request(request, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("malformed multipart body: {e}")))?;
        let part = file_part(multipart).await?;
        let name = name
            .or(part.file_name)
            .or_else(|| fallback_name.map(str::to_string))
            .ok_or_else(missing_name)?;
        let meta = NewFile {
            name: check_file_name(&name)?,
            content_type: content_type.or(part.content_type),
            tags: None,
            client_id: None,
        };
        state.files.create(project, meta, part.body, None).await
    } else {
        let name = name
            .or_else(|| fallback_name.map(str::to_string))
            .ok_or_else(missing_name)?;
        let meta = NewFile {
            name: check_file_name(&name)?,
            content_type: content_type.or_else(|| {
                headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            }),
            tags: None,
            client_id: None,
        };
        let body: Body = request.into_body();
        state
            .files
            .create(
                project,
                meta,
                body.into_data_stream(),
                content_length(headers),
            )
            .await
    }
}
