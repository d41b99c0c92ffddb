//! Bucket routes (both path styles): list, create, get, delete.
//! Delete refuses a non-empty bucket unless cascade is asked for (see ADR 0004 for defaults).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ApiQuery, PathStyle, ProjectAccess};
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

pub fn bucket_json(state: &AppState, project: &ProjectId, b: &BucketRecord) -> Value {
    json!({
        "name": b.name,
        "table_count": buckets::table_count(state, project, b),
        "description": b.description,
        "created_at": b.created_at.to_rfc3339(),
        "is_linked": b.link.is_some(),
        "source_project_id": b.link.as_ref().map(|l| &l.source_project),
        "source_bucket_name": b.link.as_ref().map(|l| &l.source_bucket),
        "readonly": b.readonly || b.link.is_some(),
        "shared_with": b.shared_with,
    })
}

pub async fn list(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<Json<Value>> {
    let project = &access.scope.project;
    let records = buckets::list(&state, project)?;
    let items: Vec<Value> = records
        .iter()
        .map(|b| bucket_json(&state, project, b))
        .collect();
    Ok(Json(json!({ "buckets": items, "total": items.len() })))
}

pub async fn create(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<CreateBucket>,
) -> ApiResult<impl IntoResponse> {
    let name = BucketName::parse(&body.name)?;
    let project = access.scope.project;
    let record = buckets::create(&state, project.clone(), name, body.description).await?;
    Ok((
        StatusCode::CREATED,
        Json(bucket_json(&state, &project, &record)),
    ))
}

pub async fn get(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<Json<Value>> {
    let project = &access.scope.project;
    let record = buckets::get(&state, project, access.scope.bucket()?)?;
    Ok(Json(bucket_json(&state, project, &record)))
}

pub async fn delete(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> ApiResult<StatusCode> {
    // The reference contract defaults to cascade; duckbank's own paths refuse unless asked.
    let default_cascade = access.scope.style == PathStyle::Reference;
    let cascade = q.force.unwrap_or(false) || q.cascade.unwrap_or(default_cascade);
    let bucket = access.scope.bucket()?.clone();
    buckets::delete(&state, access.scope.project, bucket, cascade).await?;
    Ok(StatusCode::NO_CONTENT)
}
