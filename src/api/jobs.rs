//! Job routes: the status, progress, timings and outcome of asynchronous imports and exports.
//! A project key sees only its project's jobs.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde::Deserialize;

use super::extract::{require_project_exists, ProjectAccess};
use super::query::QueryParams;
use super::responses::{JobList, JobResponse};
use crate::error::{ApiError, ApiResult};
use crate::service::jobs::job_not_found;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct JobPath {
    job_id: String,
}

pub async fn get(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(path): Path<JobPath>,
) -> ApiResult<Json<JobResponse>> {
    require_project_exists(&state, &access.scope.project)?;
    if path.job_id.len() > 64 {
        return Err(job_not_found(&access.scope.project, &path.job_id));
    }
    let job = state.jobs.get(&access.scope.project, &path.job_id).await?;
    Ok(Json(JobResponse::from(&job)))
}

pub async fn list(
    State(state): State<AppState>,
    access: ProjectAccess,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<JobList>> {
    require_project_exists(&state, &access.scope.project)?;
    let limit = QueryParams::parse(query).number("limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit must be between 1 and 1000, got {limit}"
        )));
    }
    let jobs = state.jobs.list(&access.scope.project, limit as u32).await?;
    Ok(Json(JobList::from(jobs.as_slice())))
}
