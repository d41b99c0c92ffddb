//! Dev branch routes (ADR 0031): create, list, get and delete branches; pull a table back to
//! main's live view; diff and merge a branch into main. Shapes follow the reference.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ApiQuery, ProjectAccess, TableAccess};
use super::query::{parse_bool, QueryParams};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BucketName, DevBranchId, TableName};
use crate::service::branches::{self, BranchView};
use crate::state::AppState;

/// A branch (the reference's `BranchResponse`).
fn summary(v: &BranchView) -> Value {
    json!({
        "id": v.record.id,
        "project_id": v.project,
        "name": v.record.name,
        "created_at": v.record.created_at.to_rfc3339(),
        "created_by": v.record.created_by,
        "description": v.record.description,
        "table_count": v.table_count,
        "size_bytes": v.size_bytes,
    })
}

/// The dev branch a branch route names; `default` has no branch-only operations.
fn dev(access: &ProjectAccess) -> ApiResult<DevBranchId> {
    access.scope.branch.dev().cloned().ok_or_else(|| {
        ApiError::new(
            ErrorCode::OperationNotAllowed,
            "'default' is the production branch: this operation exists for dev branches only",
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    description: Option<String>,
}

/// `POST /projects/{id}/branches` (201).
pub async fn create(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<impl IntoResponse> {
    super::query::check_description(body.description.as_deref())?;
    let view = branches::create(
        &state,
        &access.scope.project,
        body.name,
        body.description,
        access.principal.caller_id(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(summary(&view))))
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /projects/{id}/branches`: newest first, `count` of all.
pub async fn list(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let (limit, offset) = super::query::page(q.limit, q.offset)?;
    let (page, total) = branches::list(&state, &access.scope.project, limit, offset)?;
    let branches: Vec<Value> = page.iter().map(summary).collect();
    Ok(Json(json!({ "branches": branches, "count": total })))
}

/// `GET /projects/{id}/branches/{branch}`: with the tables it copied.
pub async fn get(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<Json<Value>> {
    let view = branches::get(&state, &access.scope.project, &access.scope.branch)?;
    let mut body = summary(&view);
    body["copied_tables"] = view
        .record
        .tables
        .iter()
        .filter(|(_, t)| t.kind == crate::catalog::BranchTableKind::Copied)
        .map(|((b, t), s)| {
            json!({"bucket_name": b, "table_name": t, "copied_at": s.changed_at.to_rfc3339()})
        })
        .collect();
    Ok(Json(body))
}

/// `DELETE /projects/{id}/branches/{branch}` (204): its tables, keys and files.
pub async fn delete(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<StatusCode> {
    branches::delete(&state, &access.scope.project, &access.scope.branch).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/branches/{branch}/tables/{bucket}/{table}/pull`: reads main's table again.
pub async fn pull(State(state): State<AppState>, access: TableAccess) -> ApiResult<Json<Value>> {
    let Some(branch) = access.branch.dev() else {
        return Err(ApiError::new(
            ErrorCode::OperationNotAllowed,
            "'default' is the production branch: there is nothing to pull from",
        ));
    };
    let pulled = branches::pull(
        &state,
        &access.project,
        branch,
        &access.bucket,
        &access.table,
    )
    .await?;
    let message = if pulled.changed {
        "Table now reads from main (live view)"
    } else {
        "Table was already reading from main"
    };
    Ok(Json(json!({
        "bucket_name": access.bucket,
        "table_name": access.table,
        "message": message,
        "was_local": pulled.was_local,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// `bucket.table` names; all changed tables when absent.
    tables: Option<Vec<String>>,
    force: Option<bool>,
}

/// `POST …/branches/{branch}/merge`: the branch's tables into main, each atomically; 409
/// `merge_conflict` unless `force` (body or query).
pub async fn merge(
    State(state): State<AppState>,
    access: ProjectAccess,
    RawQuery(query): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let branch = dev(&access)?;
    let params = QueryParams::parse(query);
    let auto = params.auto_snapshot(&access.principal)?;
    // The body is optional: no body merges every changed table.
    let body: MergeBody = if body.iter().all(u8::is_ascii_whitespace) {
        MergeBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::unprocessable(format!("invalid merge body: {e}")))?
    };
    let force = match params.get(&["force"]) {
        Some(v) => parse_bool("force", v)?,
        None => body.force.unwrap_or(false),
    };
    let only = body
        .tables
        .map(|names| {
            names
                .iter()
                .map(|n| {
                    let (b, t) = n.split_once('.').ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "table {n:?} must be named as \"bucket.table\""
                        ))
                    })?;
                    Ok((BucketName::parse(b)?, TableName::parse(t)?))
                })
                .collect::<ApiResult<Vec<_>>>()
        })
        .transpose()?;
    let merged = branches::merge(&state, &access.scope.project, &branch, only, force, auto).await?;
    Ok(Json(merged))
}

/// `GET …/branches/{branch}/diff`: what the branch changed, table by table.
pub async fn diff(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<Json<Value>> {
    let branch = dev(&access)?;
    Ok(Json(
        branches::diff(&state, &access.scope.project, &branch).await?,
    ))
}
