//! Snapshot routes (ADR 0029): create, list, get, delete and restore snapshots, and the
//! `…/settings/snapshots` levels (project, bucket, table). Shapes follow the reference.
//! Each branch path reaches that branch's snapshots only; project paths mean main (ADR 0031).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ApiQuery, ProjectAccess};
use super::query::QueryParams;
use crate::auth::principal::Principal;
use crate::auth::scope::{Need, Target as AccessTarget};
use crate::catalog::snapshots::{SnapshotQuery, SnapshotRecord};
use crate::error::{ApiError, ApiResult};
use crate::names::{BucketName, TableName};
use crate::service::snapshots::settings::LocalConfig;
use crate::service::snapshots::{self, manage, restore, Target};
use crate::state::AppState;

/// A snapshot as lists show it (the reference's `SnapshotResponse`).
fn summary(s: &SnapshotRecord) -> Value {
    json!({
        "id": s.id,
        "project_id": s.project,
        "bucket_name": s.bucket,
        "table_name": s.table,
        "snapshot_type": s.kind,
        "row_count": s.row_count,
        "size_bytes": s.size_bytes,
        "created_at": s.created_at.to_rfc3339(),
        "created_by": s.created_by,
        "expires_at": s.expires_at.map(|t| t.to_rfc3339()),
        "description": s.description,
        // `null` for main's; a dev branch's id for the branch's (beyond the reference).
        "branch_id": s.branch,
    })
}

/// A snapshot with the table definition it holds (the reference's `SnapshotDetailResponse`).
fn detail(s: &SnapshotRecord) -> Value {
    let mut body = summary(s);
    body["schema_columns"] = s
        .columns
        .iter()
        .map(|c| json!({ "name": c.name, "type": c.data_type, "nullable": c.nullable }))
        .collect();
    body["primary_key"] = json!(s.primary_key);
    body
}

/// Snapshot routes name no bucket in their path, so a key limited to some buckets is checked
/// here against the bucket the snapshot (or the request) names; and a key limited to a branch
/// against the path's branch (project paths mean main), which the gate does not check on
/// `/projects/{id}/snapshots`.
fn require(
    principal: &Principal,
    access: &ProjectAccess,
    need: Need,
    bucket: Option<&str>,
) -> ApiResult<()> {
    principal.allows(
        need,
        &AccessTarget {
            project: Some(access.scope.project.as_str()),
            branch: Some(access.scope.branch.as_str()),
            branched: true,
            bucket,
        },
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    bucket: String,
    table: String,
    description: Option<String>,
}

/// `POST …/snapshots`: a manual snapshot of a table (201).
pub async fn create(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<CreateBody>,
) -> ApiResult<impl IntoResponse> {
    let bucket = BucketName::parse(&body.bucket)?;
    let table = TableName::parse(&body.table)?;
    super::query::check_description(body.description.as_deref())?;
    require(
        &access.principal,
        &access,
        Need::Write,
        Some(bucket.as_str()),
    )?;
    let record = manage::create(
        &state,
        &access.scope.project,
        &access.scope.branch,
        &bucket,
        &table,
        body.description,
        access.principal.caller_id(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(detail(&record))))
}

#[derive(Deserialize)]
pub struct ListQuery {
    bucket: Option<String>,
    table: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    /// Not a filter: the path names the branch (refused, so it never silently lists main's).
    branch: Option<String>,
}

/// `GET …/snapshots`: the path's branch's snapshots (main's on project paths), newest first,
/// `total` under the same filters.
pub async fn list(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let (limit, offset) = super::query::page(q.limit, q.offset)?;
    if q.branch.is_some() {
        return Err(ApiError::bad_request(
            "snapshots are listed per branch by path: use /projects/{project_id}/branches/{branch_id}/snapshots (the project path lists main's)",
        ));
    }
    require(&access.principal, &access, Need::Read, q.bucket.as_deref())?;
    // A key limited to some buckets lists only their snapshots.
    let buckets = match &access.principal {
        Principal::Key(key) => key
            .grant
            .buckets
            .as_ref()
            .map(|b| b.keys().map(|name| name.to_string()).collect()),
        Principal::Admin => None,
    };
    let query = SnapshotQuery {
        branch: access.scope.branch.dev().map(|b| b.to_string()),
        bucket: q.bucket,
        buckets,
        table: q.table,
        kind: q.kind,
        limit,
        offset,
    };
    let (records, total) = manage::list(&state, &access.scope.project, query).await?;
    Ok(Json(json!({
        "snapshots": records.iter().map(summary).collect::<Vec<_>>(),
        "total": total,
    })))
}

/// The `{snapshot_id}` path segment.
#[derive(Deserialize)]
pub struct SnapshotPath {
    snapshot_id: String,
}

/// `GET …/snapshots/{snapshot_id}`.
pub async fn get(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(path): Path<SnapshotPath>,
) -> ApiResult<Json<Value>> {
    let record = manage::get(
        &state,
        &access.scope.project,
        &access.scope.branch,
        &path.snapshot_id,
    )
    .await?;
    require(&access.principal, &access, Need::Read, Some(&record.bucket))?;
    Ok(Json(detail(&record)))
}

/// `DELETE …/snapshots/{snapshot_id}` (project admin: it removes a way back).
pub async fn delete(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(path): Path<SnapshotPath>,
) -> ApiResult<StatusCode> {
    manage::delete(
        &state,
        &access.scope.project,
        &access.scope.branch,
        &path.snapshot_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    target_bucket: Option<String>,
    target_table: Option<String>,
}

/// `POST …/snapshots/{snapshot_id}/restore`: onto the original table (replaced, or recreated
/// after a drop) or into a new one, in the path's branch (a dev branch's restore writes the
/// branch, never main); `?skip_snapshot=true` skips the truncate trigger's snapshot of the
/// table it replaces.
pub async fn restore(
    State(state): State<AppState>,
    access: ProjectAccess,
    Path(path): Path<SnapshotPath>,
    RawQuery(query): RawQuery,
    ApiJson(body): ApiJson<Option<RestoreBody>>,
) -> ApiResult<Json<Value>> {
    let body = body.unwrap_or_default();
    let bucket = body
        .target_bucket
        .as_deref()
        .map(BucketName::parse)
        .transpose()?;
    let table = body
        .target_table
        .as_deref()
        .map(TableName::parse)
        .transpose()?;
    let auto = QueryParams::parse(query).auto_snapshot(&access.principal)?;
    let project = access.scope.project.clone();
    let branch = access.scope.branch.clone();
    let snapshot = manage::get(&state, &project, &branch, &path.snapshot_id).await?;
    require(
        &access.principal,
        &access,
        Need::Read,
        Some(&snapshot.bucket),
    )?;
    let target_bucket = bucket
        .as_ref()
        .map_or(snapshot.bucket.as_str(), |b| b.as_str());
    require(&access.principal, &access, Need::Write, Some(target_bucket))?;
    let restored =
        restore::restore(&state, &project, &branch, snapshot, bucket, table, auto).await?;
    Ok(Json(json!({
        "restored_to": { "bucket": restored.bucket, "table": restored.table },
        "row_count": restored.row_count,
    })))
}

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
