//! Table routes (both path styles): list, create, get, delete, preview.
//! Definitions are parsed into validated names and allow-listed types before any SQL exists.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use axum::extract::RawQuery;

use super::extract::{ApiJson, PathStyle, ProjectAccess};
use super::table_data::QueryParams;
use crate::engine::ddl::ColumnDef;
use crate::engine::export::RowSelection;
use crate::engine::ColumnInfo;
use crate::error::{ApiError, ApiResult};
use crate::names::{ColumnName, TableName};
use crate::service::tables::{self, TableView};
use crate::state::AppState;
use crate::types::{ColumnType, DefaultValue};

#[derive(Deserialize)]
pub struct CreateTable {
    name: String,
    columns: Vec<ColumnBody>,
    primary_key: Option<Vec<String>>,
}

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

pub(crate) fn table_json(view: &TableView) -> Value {
    json!({
        "name": view.record.name,
        "bucket": view.bucket,
        "columns": view.info.columns.iter().map(column_json).collect::<Vec<_>>(),
        "row_count": view.info.row_count,
        "size_bytes": view.info.size_bytes,
        "primary_key": view.info.primary_key.as_ref(),
        "created_at": view.record.created_at.to_rfc3339(),
        "source": "main",
    })
}

fn column_json(c: &ColumnInfo) -> Value {
    json!({
        "name": c.name,
        "type": c.data_type,
        "nullable": c.nullable,
        "ordinal_position": c.ordinal_position,
    })
}

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

pub async fn list(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<Json<Value>> {
    let views = tables::list(&state, &access.scope.project, access.scope.bucket()?).await?;
    let items: Vec<Value> = views.iter().map(table_json).collect();
    Ok(Json(json!({ "tables": items, "total": items.len() })))
}

pub async fn create(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<CreateTable>,
) -> ApiResult<impl IntoResponse> {
    let name = TableName::parse(&body.name)?;
    let columns = parse_columns(body.columns)?;
    let primary_key = body
        .primary_key
        .unwrap_or_default()
        .iter()
        .map(|c| ColumnName::parse(c))
        .collect::<ApiResult<Vec<_>>>()?;
    let scope = access.scope;
    let bucket = scope.bucket()?.clone();
    let view = tables::create(&state, scope.project, bucket, name, columns, primary_key).await?;
    Ok((StatusCode::CREATED, Json(table_json(&view))))
}

pub async fn get(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<Json<Value>> {
    let s = &access.scope;
    let view = tables::get(&state, &s.project, s.bucket()?, s.table()?).await?;
    Ok(Json(table_json(&view)))
}

pub async fn delete(State(state): State<AppState>, access: ProjectAccess) -> ApiResult<StatusCode> {
    let s = access.scope;
    let (bucket, table) = (s.bucket()?.clone(), s.table()?.clone());
    tables::delete(&state, s.project, bucket, table).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn preview(
    State(state): State<AppState>,
    access: ProjectAccess,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<PreviewBody>> {
    let s = &access.scope;
    let q = QueryParams::parse(query);
    // The reference contract previews 1 000 rows by default; duckbank's own paths 100.
    let default_limit = if s.style == PathStyle::Reference {
        1000
    } else {
        100
    };
    let limit = q.number("limit")?.unwrap_or(default_limit);
    if !(1..=MAX_PREVIEW_ROWS).contains(&limit) {
        return Err(ApiError::unprocessable_with(
            format!("limit must be between 1 and {MAX_PREVIEW_ROWS}, got {limit}"),
            json!({ "limit": limit }),
        ));
    }
    let selection = RowSelection {
        columns: q.columns(),
        filter: q.filter()?,
        order_by: q.order_by()?,
        limit: None,
    };
    let preview = tables::preview(
        &state,
        &s.project,
        s.bucket()?,
        s.table()?,
        limit as u32,
        selection,
    )
    .await?;
    let columns: Vec<Value> = preview.columns.iter().map(column_json).collect();
    // Serialized straight from the rows: no intermediate JSON tree copy of 10 000 rows.
    Ok(Json(PreviewBody {
        columns,
        preview_row_count: preview.rows.len(),
        total_row_count: preview.total_row_count,
        rows: preview.rows,
    }))
}

#[derive(serde::Serialize)]
pub struct PreviewBody {
    columns: Vec<Value>,
    rows: Vec<serde_json::Map<String, Value>>,
    total_row_count: u64,
    preview_row_count: usize,
}
