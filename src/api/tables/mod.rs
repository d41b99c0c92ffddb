//! Table routes (both path styles): the table resource itself (list, create, get, delete,
//! preview) here, one submodule per operation on its data. Definitions are validated first.

pub mod export;
pub mod import;
pub mod profile;
pub mod rows;
pub mod schema;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::extract::{ApiJson, BucketAccess, PathStyle, TableAccess};
use super::query::QueryParams;
use super::responses::{job_run, preview_response, TableJobResponse, TableList, TableResponse};
use crate::engine::ddl::ColumnDef;
use crate::engine::export::RowSelection;
use crate::error::{ApiError, ApiResult};
use crate::names::{ColumnName, TableName};
use crate::service::table_data::{self, TableJob};
use crate::service::{snapshots, tables};
use crate::state::AppState;
use crate::types::{ColumnType, DefaultValue};

#[derive(Deserialize)]
pub struct CreateTable {
    name: String,
    columns: Vec<ColumnBody>,
    primary_key: Option<Vec<String>>,
}

/// A column definition as a client sends it (create table, add column).
#[derive(Deserialize)]
pub struct ColumnBody {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    #[serde(default = "yes")]
    nullable: bool,
    default: Option<String>,
}

fn yes() -> bool {
    true
}

/// Largest preview a client may ask for.
const MAX_PREVIEW_ROWS: i64 = 10_000;

impl ColumnBody {
    /// The validated definition: checked name, allow-listed type, parsed default literal.
    pub(crate) fn parse(self) -> ApiResult<ColumnDef> {
        Ok(ColumnDef {
            name: ColumnName::parse(&self.name)?,
            data_type: ColumnType::parse(&self.data_type)?,
            nullable: self.nullable,
            default: self
                .default
                .as_deref()
                .map(DefaultValue::parse)
                .transpose()?,
        })
    }
}

fn parse_columns(body: Vec<ColumnBody>) -> ApiResult<Vec<ColumnDef>> {
    body.into_iter().map(ColumnBody::parse).collect()
}

pub async fn list(
    State(state): State<AppState>,
    access: BucketAccess,
) -> ApiResult<Json<TableList>> {
    let views = tables::list(&state, &access.project, &access.branch, &access.bucket).await?;
    Ok(Json(TableList::from(views.as_slice())))
}

pub async fn create(
    State(state): State<AppState>,
    access: BucketAccess,
    ApiJson(body): ApiJson<CreateTable>,
) -> ApiResult<impl IntoResponse> {
    let name = TableName::parse(&body.name)?;
    let audited = crate::api::audit::AuditTarget("table_name", name.to_string());
    let columns = parse_columns(body.columns)?;
    let primary_key = body
        .primary_key
        .unwrap_or_default()
        .iter()
        .map(|c| ColumnName::parse(c))
        .collect::<ApiResult<Vec<_>>>()?;
    let view = tables::create(
        &state,
        access.project,
        &access.branch,
        access.bucket,
        name,
        columns,
        primary_key,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Extension(audited),
        Json(TableResponse::from(&view)),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    access: TableAccess,
) -> ApiResult<Json<TableResponse>> {
    let view = tables::get(
        &state,
        &access.project,
        &access.branch,
        &access.bucket,
        &access.table,
    )
    .await?;
    Ok(Json(TableResponse::from(&view)))
}

pub async fn delete(
    State(state): State<AppState>,
    access: TableAccess,
    RawQuery(query): RawQuery,
) -> ApiResult<StatusCode> {
    let auto = QueryParams::parse(query).auto_snapshot(&access.principal)?;
    tables::delete(
        &state,
        access.project,
        &access.branch,
        access.bucket,
        access.table,
        auto,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn preview(
    State(state): State<AppState>,
    access: TableAccess,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let q = QueryParams::parse(query);
    // The reference contract previews 1 000 rows by default; duckbank's own paths 100.
    let default_limit = if access.style == PathStyle::Reference {
        1000
    } else {
        100
    };
    let limit = q.number("limit")?.unwrap_or(default_limit);
    if !(1..=MAX_PREVIEW_ROWS).contains(&limit) {
        return Err(ApiError::unprocessable(format!(
            "limit must be between 1 and {MAX_PREVIEW_ROWS}, got {limit}"
        ))
        .with_details(json!({ "limit": limit })));
    }
    let selection = RowSelection {
        columns: q.columns(),
        filter: q.filter()?,
        order_by: q.order_by()?,
        limit: None,
    };
    // `?snapshot=<id>`: time travel, the same selection read from one of its snapshots.
    let preview = match q.get(&["snapshot"]) {
        Some(id) => {
            snapshots::manage::preview(
                &state,
                &access.project,
                &access.branch,
                &access.bucket,
                &access.table,
                id,
                limit as u32,
                selection,
            )
            .await?
        }
        None => {
            tables::preview(
                &state,
                &access.project,
                &access.branch,
                &access.bucket,
                &access.table,
                limit as u32,
                selection,
            )
            .await?
        }
    };
    Ok(preview_response(preview))
}

/// Runs `job` on the addressed table now (200 with its result) or, `queued`, as a job
/// (202 with the job and where to poll it): the import and export routes answer alike.
async fn run_table_job(
    state: &AppState,
    access: TableAccess,
    job: TableJob,
    queued: bool,
) -> ApiResult<Response> {
    let project = access.project;
    let run = table_data::run_job::<TableJobResponse>(
        state,
        project.clone(),
        access.branch,
        access.bucket,
        access.table,
        job,
        queued,
    )
    .await?;
    Ok(job_run(&project, run))
}
