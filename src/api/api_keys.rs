//! `/projects/{id}/api-keys` routes: issue, list, show, revoke and rotate a project's keys.
//! JSON shapes follow the reference contract; the clear key appears only in 201 answers.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ProjectAccess};
use crate::auth::scope::{BucketPermission, FilePermission, KeyScope};
use crate::catalog::KeyRecord;
use crate::error::{ApiError, ApiResult};
use crate::names::BucketName;
use crate::service::api_keys::{self, KeyRequest};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateKey {
    description: String,
    #[serde(default = "default_scope")]
    scope: KeyScope,
    branch_id: Option<String>,
    expires_in_days: Option<i64>,
    bucket_permissions: Option<BTreeMap<String, BucketPermission>>,
    file_permissions: Option<BTreeSet<FilePermission>>,
}

fn default_scope() -> KeyScope {
    KeyScope::ProjectAdmin
}

#[derive(Deserialize)]
pub struct KeyPath {
    key_id: String,
}

const MAX_DESCRIPTION_LEN: usize = 1024;

/// The reference's key shape (without the clear key), plus the key's narrowing.
fn key_json(state: &AppState, key: &KeyRecord) -> Value {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
    json!({
        "id": key.id,
        "project_id": key.grant.project,
        "branch_id": key.grant.branch.as_ref().map(|b| b.as_str()),
        "key_prefix": key.prefix,
        "scope": key.grant.scope,
        "description": key.description,
        "created_at": key.created_at.to_rfc3339(),
        "last_used_at": time(state.keys.usage.last_used(key)),
        "expires_at": time(key.expires_at),
        "is_revoked": key.revoked_at.is_some(),
        "revoked_at": time(key.revoked_at),
        "bucket_permissions": key.grant.buckets,
        "file_permissions": key.grant.files,
    })
}

/// The create/rotate answer: the key's shape and, once, the clear key.
fn issued_json(state: &AppState, key: &KeyRecord, clear: String) -> impl IntoResponse {
    let mut out = key_json(state, key);
    out["api_key"] = Value::String(clear);
    (StatusCode::CREATED, Json(out))
}

pub async fn create(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<CreateKey>,
) -> ApiResult<impl IntoResponse> {
    let description = body.description;
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(ApiError::bad_request(format!(
            "description is longer than {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    if description.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "description must not contain control characters",
        ));
    }
    let buckets = body
        .bucket_permissions
        .map(|map| {
            map.into_iter()
                .map(|(name, right)| Ok((BucketName::parse(&name)?, right)))
                .collect::<ApiResult<BTreeMap<_, _>>>()
        })
        .transpose()?;
    let req = KeyRequest {
        description,
        scope: body.scope,
        branch: body.branch_id,
        expires_in_days: body.expires_in_days,
        buckets,
        files: body.file_permissions,
    };
    let (record, clear) = api_keys::create(&state, access.scope.project, req).await?;
    Ok(issued_json(&state, &record, clear))
}

pub async fn list(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<Json<Value>> {
    let keys = api_keys::list(&state, &access.scope.project)?;
    let items: Vec<Value> = keys.iter().map(|k| key_json(&state, k)).collect();
    Ok(Json(json!({ "count": items.len(), "api_keys": items })))
}

pub async fn get(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(path): Path<KeyPath>,
) -> ApiResult<Json<Value>> {
    let key = api_keys::get(&state, &access.scope.project, &path.key_id)?;
    Ok(Json(key_json(&state, &key)))
}

pub async fn revoke(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(path): Path<KeyPath>,
) -> ApiResult<StatusCode> {
    api_keys::revoke(&state, access.scope.project, path.key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(path): Path<KeyPath>,
) -> ApiResult<impl IntoResponse> {
    let (record, clear) = api_keys::rotate(&state, access.scope.project, path.key_id).await?;
    Ok(issued_json(&state, &record, clear))
}
