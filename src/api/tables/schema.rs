//! Column and primary-key routes: add, alter and drop a column; add and drop the primary key.
//! Bodies become a typed `SchemaChange`; the service runs it and the table is answered.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;

use super::ColumnBody;
use crate::api::extract::{ApiJson, TableAccess};
use crate::api::query::QueryParams;
use crate::api::responses::TableResponse;
use crate::engine::schema::AlterColumn;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::ColumnName;
use crate::service::snapshots::AutoSnapshot;
use crate::service::table_data::{self, SchemaChange};
use crate::state::AppState;
use crate::types::{ColumnType, DefaultValue};

/// Runs a schema change through the table-data service and answers the table afterwards.
async fn changed(
    state: &AppState,
    access: &TableAccess,
    change: SchemaChange,
) -> ApiResult<TableResponse> {
    let auto = QueryParams::parse(None).auto_snapshot(&access.principal)?;
    changed_with(state, access, change, auto).await
}

/// `changed`, with what the client asked about the change's auto-snapshot.
async fn changed_with(
    state: &AppState,
    access: &TableAccess,
    change: SchemaChange,
    auto: AutoSnapshot,
) -> ApiResult<TableResponse> {
    let view = table_data::change_table(
        state,
        &access.project,
        &access.branch,
        &access.bucket,
        &access.table,
        change,
        auto,
    )
    .await?;
    Ok(TableResponse::from(&view))
}

pub async fn add_column(
    State(state): State<AppState>,
    access: TableAccess,
    ApiJson(body): ApiJson<ColumnBody>,
) -> ApiResult<impl IntoResponse> {
    let column = body.parse()?;
    let view = changed(&state, &access, SchemaChange::AddColumn(column)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The `{column_name}` path segment.
#[derive(Deserialize)]
pub struct ColumnPath {
    column_name: String,
}

fn column_of(raw: Path<ColumnPath>) -> ApiResult<String> {
    let name = raw.0.column_name;
    // Looked up against the table's columns, never spliced into SQL; only its size is checked.
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::bad_request("column name must be 1 to 255 bytes"));
    }
    Ok(name)
}

pub async fn drop_column(
    State(state): State<AppState>,
    access: TableAccess,
    column: Path<ColumnPath>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<TableResponse>> {
    let column = column_of(column)?;
    let auto = QueryParams::parse(query).auto_snapshot(&access.principal)?;
    let view = changed_with(&state, &access, SchemaChange::DropColumn(column), auto).await?;
    Ok(Json(view))
}

#[derive(Deserialize)]
pub struct AlterColumnBody {
    new_name: Option<String>,
    new_type: Option<String>,
    set_not_null: Option<bool>,
    set_default: Option<String>,
}

pub async fn alter_column(
    State(state): State<AppState>,
    access: TableAccess,
    column: Path<ColumnPath>,
    ApiJson(body): ApiJson<AlterColumnBody>,
) -> ApiResult<Json<TableResponse>> {
    let column = column_of(column)?;
    let change = AlterColumn {
        new_name: body
            .new_name
            .as_deref()
            .map(ColumnName::parse)
            .transpose()?,
        new_type: body
            .new_type
            .as_deref()
            .map(ColumnType::parse)
            .transpose()?,
        set_not_null: body.set_not_null,
        set_default: body
            .set_default
            .map(|d| {
                if d.is_empty() {
                    Ok(None)
                } else {
                    DefaultValue::parse(&d).map(Some)
                }
            })
            .transpose()?,
    };
    if change.new_name.is_none()
        && change.new_type.is_none()
        && change.set_not_null.is_none()
        && change.set_default.is_none()
    {
        return Err(ApiError::new(
            ErrorCode::NoChangesSpecified,
            "nothing to change: give new_name, new_type, set_not_null or set_default",
        ));
    }
    let view = changed(
        &state,
        &access,
        SchemaChange::AlterColumn { column, change },
    )
    .await?;
    Ok(Json(view))
}

#[derive(Deserialize)]
pub struct PrimaryKeyBody {
    columns: Vec<String>,
}

pub async fn add_primary_key(
    State(state): State<AppState>,
    access: TableAccess,
    ApiJson(body): ApiJson<PrimaryKeyBody>,
) -> ApiResult<impl IntoResponse> {
    if body.columns.is_empty() {
        return Err(ApiError::unprocessable(
            "columns must name at least one column",
        ));
    }
    let view = changed(&state, &access, SchemaChange::AddPrimaryKey(body.columns)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn drop_primary_key(
    State(state): State<AppState>,
    access: TableAccess,
) -> ApiResult<Json<TableResponse>> {
    let view = changed(&state, &access, SchemaChange::DropPrimaryKey).await?;
    Ok(Json(view))
}
