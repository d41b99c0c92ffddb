//! Workspace routes (ADR 0033): create, list, get, delete, clear, drop an object, load tables,
//! reset credentials and run SQL, under a project and under a branch. Shapes follow the reference.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ProjectAccess};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::service::workspaces::{self as service, CreateBody, LoadTable};
use crate::state::AppState;
use crate::workspace::query::value_json;

/// Path parameters beyond the project (which `ProjectAccess` validates).
type Params = Path<HashMap<String, String>>;

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> ApiResult<&'a str> {
    params
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| ApiError::internal(format!("route lacks {{{name}}}")))
}

/// A workspace reads every table of the project: a key limited to some buckets gets none.
fn require_whole_project(principal: &Principal) -> ApiResult<()> {
    match principal {
        Principal::Key(key) if key.grant.buckets.is_some() => Err(ApiError::forbidden(
            "this API key is limited to named buckets; a workspace reads every table of the project",
        )),
        _ => Ok(()),
    }
}

/// `POST …/workspaces`: 201 with the connection details and the password (shown only here).
pub async fn create(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<impl IntoResponse> {
    require_whole_project(&access.principal)?;
    let branch = access.scope.branch.as_str();
    let (record, password) = service::create(&state, &access.scope.project, branch, body).await?;
    let mut out = service::summary(&state, &record, crate::catalog::now());
    out["connection"] = service::connection(&state, &record, Some(&password));
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET …/workspaces`: `{workspaces, count}`; the branch routes list that branch's only.
pub async fn list(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Params,
) -> ApiResult<Json<Value>> {
    let branch = params
        .contains_key("branch_id")
        .then(|| access.scope.branch.as_str().to_string());
    let project = access.scope.project.clone();
    let s = state.clone();
    let records =
        crate::service::blocking(move || s.catalog.workspaces(project.as_str(), branch.as_deref()))
            .await?;
    let now = crate::catalog::now();
    let list: Vec<Value> = records
        .iter()
        .map(|r| service::summary(&state, r, now))
        .collect();
    Ok(Json(json!({ "count": list.len(), "workspaces": list })))
}

pub async fn get(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Params,
) -> ApiResult<Json<Value>> {
    let id = param(&params, "workspace_id")?;
    Ok(Json(
        service::detail(&state, &access.scope.project, id).await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Params,
) -> ApiResult<StatusCode> {
    let id = param(&params, "workspace_id")?;
    service::delete(&state, &access.scope.project, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn clear(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Params,
) -> ApiResult<StatusCode> {
    let id = param(&params, "workspace_id")?;
    service::clear(&state, &access.scope.project, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn drop_object(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Params,
) -> ApiResult<StatusCode> {
    let id = param(&params, "workspace_id")?;
    let name = param(&params, "object_name")?.to_string();
    service::drop_object(&state, &access.scope.project, id, name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBody {
    tables: Vec<LoadTable>,
}

pub async fn load(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Params,
    ApiJson(body): ApiJson<LoadBody>,
) -> ApiResult<Json<Value>> {
    require_whole_project(&access.principal)?;
    let id = param(&params, "workspace_id")?;
    Ok(Json(
        service::load(&state, &access.scope.project, id, body.tables).await?,
    ))
}

pub async fn reset_credentials(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Params,
) -> ApiResult<Json<Value>> {
    require_whole_project(&access.principal)?;
    let id = param(&params, "workspace_id")?;
    let (record, password) = service::reset_credentials(&state, &access.scope.project, id).await?;
    Ok(Json(service::connection(&state, &record, Some(&password))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    sql: String,
    limit: Option<usize>,
}

/// Rows a query returns at most (`limit` may lower it).
const MAX_QUERY_ROWS: usize = 100_000;

/// `POST …/workspaces/{ws}/query`: runs SQL in the workspace's sandbox; the last statement's
/// columns (name and type) and rows come back as JSON.
pub async fn query(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(params): Params,
    ApiJson(body): ApiJson<QueryBody>,
) -> ApiResult<Json<Value>> {
    require_whole_project(&access.principal)?;
    let id = param(&params, "workspace_id")?;
    let limit = body.limit.unwrap_or(1000).clamp(1, MAX_QUERY_ROWS);
    let result = service::run_sql(&state, &access.scope.project, id, body.sql, limit).await?;
    let columns: Vec<Value> = result
        .columns
        .iter()
        .map(|(name, t)| json!({ "name": name, "type": crate::workspace::query::type_name(t) }))
        .collect();
    let rows: Vec<Value> = result
        .rows
        .iter()
        .map(|row| {
            Value::Array(
                row.iter()
                    .zip(&result.columns)
                    .map(|(v, (_, t))| value_json(t, v))
                    .collect(),
            )
        })
        .collect();
    Ok(Json(json!({
        "columns": columns,
        "rows": rows,
        "row_count": rows.len(),
        "truncated": result.truncated,
    })))
}
