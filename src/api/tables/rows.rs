//! `DELETE …/rows`: deletes the rows a filter matches. A filter is required (body, query or
//! both, combined with AND); deleting every row must be asked for explicitly.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::Deserialize;

use crate::api::extract::{ApiJson, TableAccess};
use crate::api::query::{invalid_filter, BodyFilters, QueryParams};
use crate::api::responses::DeletedRows;
use crate::error::ApiResult;
use crate::service::table_data;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct DeleteRowsBody {
    where_clause: Option<String>,
    #[serde(flatten)]
    filters: BodyFilters,
}

pub async fn delete_rows(
    State(state): State<AppState>,
    access: TableAccess,
    RawQuery(query): RawQuery,
    ApiJson(body): ApiJson<Option<DeleteRowsBody>>,
) -> ApiResult<Json<DeletedRows>> {
    let body = body.unwrap_or_default();
    let from_body = body.filters.build(body.where_clause)?;
    let q = QueryParams::parse(query);
    let auto = q.auto_snapshot(&access.principal)?;
    let from_query = q.filter()?;
    let filter = match (from_body, from_query) {
        (Some(a), Some(b)) => a.and(b),
        (Some(f), None) | (None, Some(f)) => f,
        (None, None) => {
            return Err(invalid_filter(
                "deleting rows needs a filter: where_clause, where_filters or whereColumn/whereValues (use where_clause \"TRUE\" to delete every row)",
            ))
        }
    };
    let (deleted, after) = table_data::delete_rows(
        &state,
        &access.project,
        &access.branch,
        &access.bucket,
        &access.table,
        filter,
        auto,
    )
    .await?;
    Ok(Json(DeletedRows::new(deleted, after)))
}
