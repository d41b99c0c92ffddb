//! `/projects` routes: provisioning (admin), listing (admin), get/update/delete/stats
//! (admin or the project's own key). JSON shapes follow the reference contract.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::extract::{ApiJson, ApiQuery, ProjectAccess};
use crate::auth::Principal;
use crate::catalog::ProjectRecord;
use crate::error::{ApiError, ApiResult};
use crate::names::ProjectId;
use crate::service::projects::{self, ProjectStats};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateProject {
    id: IdText,
    name: Option<String>,
    settings: Option<Map<String, Value>>,
}

/// Project ids arrive as strings, but a bare number is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdText {
    Text(String),
    Number(u64),
}

impl IdText {
    fn into_string(self) -> String {
        match self {
            Self::Text(s) => s,
            Self::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
pub struct UpdateProject {
    name: Option<String>,
    settings: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

const MAX_NAME_LEN: usize = 256;

fn check_name(name: &Option<String>) -> ApiResult<()> {
    match name {
        Some(n) if n.chars().count() > MAX_NAME_LEN => Err(ApiError::bad_request(format!(
            "project name is longer than {MAX_NAME_LEN} characters"
        ))),
        Some(n) if n.chars().any(char::is_control) => Err(ApiError::bad_request(
            "project name must not contain control characters",
        )),
        _ => Ok(()),
    }
}

pub fn project_json(record: &ProjectRecord, stats: &ProjectStats) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        // Relative to the DuckDB dir (`storage_paths.duckdb_dir`), as the reference reports it.
        "db_path": format!("project_{}", record.id),
        "created_at": record.created_at.to_rfc3339(),
        "updated_at": record.updated_at.to_rfc3339(),
        "size_bytes": stats.size_bytes,
        "table_count": stats.table_count,
        "bucket_count": stats.bucket_count,
        "status": record.status,
        "settings": record.settings,
    })
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult<impl IntoResponse> {
    principal.require_admin()?;
    let id = ProjectId::parse(&body.id.into_string())?;
    check_name(&body.name)?;
    let (record, clear_key) =
        projects::create(&state, id, body.name, body.settings.map(Value::Object)).await?;
    let stats = projects::stats(&state, &record).await?;
    let mut out = project_json(&record, &stats);
    out["api_key"] = Value::String(clear_key);
    let audited = super::audit::AuditTarget("project_id", record.id.to_string());
    Ok((StatusCode::CREATED, axum::Extension(audited), Json(out)))
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit must be between 1 and 1000, got {limit}"
        ))
        .with_details(json!({ "limit": limit })));
    }
    let offset = q.offset.unwrap_or(0);
    // Deleted projects are removed, not kept as tombstones, so only 'active' ones exist.
    let (page, total) = match q.status.as_deref() {
        None | Some("active") => projects::list(&state, offset, limit),
        Some("deleted") => (Vec::new(), 0),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown status {other:?}; use 'active' or 'deleted'"
            )))
        }
    };
    let mut items = Vec::with_capacity(page.len());
    for record in &page {
        let stats = projects::stats(&state, record).await?;
        items.push(project_json(record, &stats));
    }
    Ok(Json(json!({ "projects": items, "total": total })))
}

pub async fn get(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<Json<Value>> {
    let record = projects::get(&state, &access.scope.project)?;
    let stats = projects::stats(&state, &record).await?;
    Ok(Json(project_json(&record, &stats)))
}

pub async fn update(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<Option<UpdateProject>>,
) -> ApiResult<Json<Value>> {
    let body = body.unwrap_or(UpdateProject {
        name: None,
        settings: None,
    });
    check_name(&body.name)?;
    let record = projects::update(
        &state,
        access.scope.project,
        body.name,
        body.settings.map(Value::Object),
    )
    .await?;
    let stats = projects::stats(&state, &record).await?;
    Ok(Json(project_json(&record, &stats)))
}

pub async fn delete(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<StatusCode> {
    projects::delete(&state, access.scope.project).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn stats(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<Json<Value>> {
    let record = projects::get(&state, &access.scope.project)?;
    let stats = projects::stats(&state, &record).await?;
    Ok(Json(json!({
        "id": record.id,
        "size_bytes": stats.size_bytes,
        "table_count": stats.table_count,
        "bucket_count": stats.bucket_count,
    })))
}
