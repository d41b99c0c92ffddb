//! `…/settings/snapshots` routes at the project, bucket and table levels (ADR 0029): read the
//! effective settings with their origin, replace or reset one level. Shapes follow the reference.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use super::extract::{ApiJson, ProjectAccess};
use crate::error::ApiResult;
use crate::service::snapshots::settings::LocalConfig;
use crate::service::snapshots::{self, Target};
use crate::state::AppState;

fn target(access: ProjectAccess) -> Target {
    Target {
        project: access.scope.project,
        bucket: access.scope.bucket,
        table: access.scope.table,
    }
}

pub async fn get_settings(
    State(state): State<AppState>,
    access: ProjectAccess,
) -> ApiResult<Json<Value>> {
    let resolved = snapshots::get(&state, target(access)).await?;
    Ok(Json(resolved.to_json()))
}

/// Replaces the level's config; an empty body sets nothing (everything inherited).
pub async fn put_settings(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<Option<LocalConfig>>,
) -> ApiResult<Json<Value>> {
    let config = body.unwrap_or_default();
    let resolved = snapshots::put(&state, target(access), config).await?;
    Ok(Json(resolved.to_json()))
}

pub async fn delete_settings(
    State(state): State<AppState>,
    access: ProjectAccess,
) -> ApiResult<StatusCode> {
    snapshots::delete(&state, target(access)).await?;
    Ok(StatusCode::NO_CONTENT)
}
