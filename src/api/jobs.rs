//! Job routes: the status, progress, timings and outcome of asynchronous imports and exports.
//! A project key sees only its project's jobs.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::ProjectAccess;
use super::table_data::QueryParams;
use crate::catalog::jobs::JobRecord;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn job_json(job: &JobRecord) -> Value {
    json!({
        "id": job.id,
        "project_id": job.project_id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "request": job.request,
        "created_at": job.created_at.to_rfc3339(),
        "started_at": job.started_at.map(|t| t.to_rfc3339()),
        "finished_at": job.finished_at.map(|t| t.to_rfc3339()),
        "result": job.result,
        "error": job.error,
    })
}

#[derive(Deserialize)]
pub struct JobPath {
    job_id: String,
}

pub async fn get(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(path): Path<JobPath>,
) -> ApiResult<Json<Value>> {
    super::require_project_exists(&state, &access.scope.project)?;
    if path.job_id.len() > 64 {
        return Err(ApiError::NotFound(format!(
            "job {:?} not found",
            path.job_id
        )));
    }
    let job = state.jobs.get(&access.scope.project, &path.job_id).await?;
    Ok(Json(job_json(&job)))
}

pub async fn list(
    State(state): State<AppState>,
    access: ProjectAccess,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Value>> {
    super::require_project_exists(&state, &access.scope.project)?;
    let limit = QueryParams::parse(query).number("limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit must be between 1 and 1000, got {limit}"
        )));
    }
    let jobs = state.jobs.list(&access.scope.project, limit as u32).await?;
    let items: Vec<Value> = jobs.iter().map(job_json).collect();
    Ok(Json(json!({ "jobs": items, "total": items.len() })))
}
