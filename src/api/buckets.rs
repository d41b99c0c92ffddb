//! Bucket routes (both path styles): list, create, get, delete.
//! Delete refuses a non-empty bucket unless cascade is asked for (see ADR 0004 for defaults).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::extract::{ApiJson, ApiQuery, BucketAccess, PathStyle, ProjectAccess};
use super::responses::{BucketList, BucketResponse};
use crate::catalog::BucketRecord;
use crate::error::ApiResult;
use crate::names::{BucketName, ProjectId};
use crate::service::buckets;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateBucket {
    name: String,
    description: Option<String>,
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    force: Option<bool>,
    cascade: Option<bool>,
}

/// The bucket as answered, with its table count (a link's count is its source's).
pub(crate) fn bucket_response(
    state: &AppState,
    project: &ProjectId,
    b: &BucketRecord,
) -> BucketResponse {
    BucketResponse::new(b, buckets::table_count(state, project, b))
}

pub async fn list(
    State(state): State<AppState>,
    access: ProjectAccess,
) -> ApiResult<Json<BucketList>> {
    let project = &access.scope.project;
    let records = buckets::list(&state, project)?;
    // A key limited to some buckets sees only those.
    let items = records
        .iter()
        .filter(|b| access.principal.sees_bucket(&b.name))
        .map(|b| bucket_response(&state, project, b))
        .collect();
    Ok(Json(BucketList::new(items)))
}

pub async fn create(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<CreateBucket>,
) -> ApiResult<impl IntoResponse> {
    super::extract::main_only(&access.scope.branch, "creating a bucket")?;
    let name = BucketName::parse(&body.name)?;
    let audited = super::audit::AuditTarget("bucket_name", name.to_string());
    let project = access.scope.project;
    let record = buckets::create(&state, project.clone(), name, body.description).await?;
    Ok((
        StatusCode::CREATED,
        axum::Extension(audited),
        Json(bucket_response(&state, &project, &record)),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    access: BucketAccess,
) -> ApiResult<Json<BucketResponse>> {
    let record = buckets::get(&state, &access.project, &access.bucket)?;
    Ok(Json(bucket_response(&state, &access.project, &record)))
}

pub async fn delete(
    State(state): State<AppState>,
    access: BucketAccess,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<StatusCode> {
    super::extract::main_only(&access.branch, "deleting a bucket")?;
    // The reference contract defaults to cascade; duckbank's own paths refuse unless asked.
    let default_cascade = access.style == PathStyle::Reference;
    let cascade = q.force.unwrap_or(false) || q.cascade.unwrap_or(default_cascade);
    buckets::delete(&state, access.project, access.bucket, cascade).await?;
    Ok(StatusCode::NO_CONTENT)
}
