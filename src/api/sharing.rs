//! Sharing routes: share/unshare a bucket with a project, link/unlink a shared bucket,
//! grant/revoke read-only access. Only the main branch has buckets to share.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::buckets::bucket_response;
use super::extract::{ApiJson, ApiQuery, BucketAccess};
use crate::auth::Principal;
use crate::catalog::BucketLink;
use crate::error::{ApiError, ApiResult};
use crate::names::{BucketName, ProjectId};
use crate::service::sharing;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ShareBody {
    target_project_id: String,
}

#[derive(Deserialize)]
pub struct UnshareQuery {
    target_project_id: Option<String>,
}

#[derive(Deserialize)]
pub struct LinkBody {
    source_project_id: String,
    source_bucket_name: String,
}

fn share_info(shared_with: &std::collections::BTreeSet<ProjectId>) -> Value {
    json!({
        "shared_with": shared_with,
        "is_linked": false,
        "source_project_id": null,
        "source_bucket_name": null,
    })
}

pub async fn share(
    State(state): State<AppState>,
    access: BucketAccess,
    ApiJson(body): ApiJson<ShareBody>,
) -> ApiResult<Json<Value>> {
    super::extract::main_only(&access.branch, "sharing a bucket")?;
    let target = ProjectId::parse(&body.target_project_id)?;
    let record = sharing::share(&state, access.project, access.bucket, target).await?;
    Ok(Json(share_info(&record.shared_with)))
}

/// The target comes from `?target_project_id=` (reference) or a JSON body.
pub async fn unshare(
    State(state): State<AppState>,
    access: BucketAccess,
    ApiQuery(q): ApiQuery<UnshareQuery>,
    ApiJson(body): ApiJson<Option<ShareBody>>,
) -> ApiResult<StatusCode> {
    super::extract::main_only(&access.branch, "unsharing a bucket")?;
    let target = q
        .target_project_id
        .or(body.map(|b| b.target_project_id))
        .ok_or_else(|| ApiError::bad_request("target_project_id is required (query or body)"))?;
    let target = ProjectId::parse(&target)?;
    sharing::unshare(&state, access.project, access.bucket, target).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn link(
    State(state): State<AppState>,
    access: BucketAccess,
    ApiJson(body): ApiJson<LinkBody>,
) -> ApiResult<impl IntoResponse> {
    super::extract::main_only(&access.branch, "linking a bucket")?;
    let source = BucketLink {
        source_project: ProjectId::parse(&body.source_project_id)?,
        source_bucket: BucketName::parse(&body.source_bucket_name)?,
    };
    let project = access.project;
    let by_operator = matches!(access.principal, Principal::Admin);
    let record = sharing::link(&state, project.clone(), access.bucket, source, by_operator).await?;
    Ok((
        StatusCode::CREATED,
        Json(bucket_response(&state, &project, &record)),
    ))
}

pub async fn unlink(State(state): State<AppState>, access: BucketAccess) -> ApiResult<StatusCode> {
    super::extract::main_only(&access.branch, "unlinking a bucket")?;
    sharing::unlink(&state, access.project, access.bucket).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn grant_readonly(
    State(state): State<AppState>,
    access: BucketAccess,
) -> ApiResult<Json<Value>> {
    super::extract::main_only(&access.branch, "granting read-only access")?;
    super::extract::require_project_exists(&state, &access.project)?;
    let record = sharing::set_readonly(&state, access.project, access.bucket, true).await?;
    Ok(Json(json!({
        "status": "success",
        "success": true,
        "bucket_name": record.name,
        "readonly": true,
        "message": format!("read-only access granted on bucket {:?}: its tables can be read but not changed", record.name.as_str()),
    })))
}

/// Idempotent: 204 also when the bucket had no grant. A missing project or bucket is 404.
pub async fn revoke_readonly(
    State(state): State<AppState>,
    access: BucketAccess,
) -> ApiResult<StatusCode> {
    super::extract::main_only(&access.branch, "revoking read-only access")?;
    super::extract::require_project_exists(&state, &access.project)?;
    sharing::set_readonly(&state, access.project, access.bucket, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
