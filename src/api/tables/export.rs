//! Reading rows out of a table: `POST …/export` writes a file (now or as a job) and
//! `GET …/export` streams the rows. Selections are parsed here; the service runs them.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::api::extract::{ApiJson, TableAccess};
use crate::api::query::{check_limit, BodyFilters, QueryParams};
use crate::api::responses::{job_accepted, ExportResponse};
use crate::engine::export::{ExportFormat, RowSelection};
use crate::engine::filter::OrderBy;
use crate::error::{ApiError, ApiResult};
use crate::service::table_data;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct ExportBody {
    format: Option<String>,
    compression: Option<String>,
    columns: Option<Vec<String>>,
    #[serde(flatten)]
    filters: BodyFilters,
    order_by: Option<String>,
    limit: Option<i64>,
}

pub async fn export(
    State(state): State<AppState>,
    access: TableAccess,
    RawQuery(query): RawQuery,
    ApiJson(body): ApiJson<Option<ExportBody>>,
) -> ApiResult<Response> {
    let run_async = QueryParams::parse(query).wants_async()?;
    let body = body.unwrap_or_default();
    let format = ExportFormat::parse(body.format.as_deref().unwrap_or("csv"))?;
    let compression = format.compression(body.compression.as_deref())?;
    let selection = RowSelection {
        columns: body.columns.filter(|c| !c.is_empty()),
        filter: body.filters.build(None)?,
        order_by: body
            .order_by
            .filter(|o| !o.trim().is_empty())
            .map(|o| OrderBy::parse(&o))
            .transpose()?,
        limit: check_limit(body.limit)?,
    };
    let TableAccess {
        project,
        bucket,
        table,
        ..
    } = access;
    if !run_async {
        let exported = table_data::export(
            &state,
            &project,
            &bucket,
            &table,
            selection,
            format,
            compression,
        )
        .await?;
        return Ok(Json(ExportResponse::from(exported)).into_response());
    }
    let described =
        json!({ "bucket": bucket, "table": table, "format": format!("{format:?}").to_lowercase() });
    let st = state.clone();
    let p = project.clone();
    let job = state
        .jobs
        .submit(&project, "export", described, move || async move {
            let exported =
                table_data::export(&st, &p, &bucket, &table, selection, format, compression)
                    .await?;
            serde_json::to_value(ExportResponse::from(exported))
                .map_err(|e| ApiError::internal(format!("cannot record the job's result: {e}")))
        })
        .await?;
    Ok(job_accepted(&project, &job))
}

/// `GET …/export?format=csv|parquet`: the rows streamed from DuckDB's writer, no file kept.
pub async fn export_stream(
    State(state): State<AppState>,
    access: TableAccess,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let q = QueryParams::parse(query);
    let format = ExportFormat::parse(q.get(&["format"]).unwrap_or("csv"))?;
    let compression = format.compression(q.get(&["compression"]))?;
    let selection = RowSelection {
        columns: q.columns(),
        filter: q.filter()?,
        order_by: q.order_by()?,
        limit: check_limit(q.number("limit")?)?,
    };
    let stream = table_data::export_stream(
        &state,
        &access.project,
        &access.bucket,
        &access.table,
        selection,
        format,
        compression,
    )
    .await?;
    let name = format.file_name(access.table.as_str(), compression);
    let content_type = match format {
        ExportFormat::Csv => "text/csv; charset=utf-8".to_string(),
        ExportFormat::Parquet => format.content_type(compression).to_string(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
