//! Reading rows out of a table: `POST …/export` writes a file (now or as a job) and
//! `GET …/export` streams the rows. Selections are parsed here; the service runs them.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::extract::{ApiJson, TableAccess};
use crate::api::query::{check_limit, BodyFilters, QueryParams};
use crate::engine::export::{ExportFormat, RowSelection};
use crate::engine::filter::OrderBy;
use crate::error::ApiResult;
use crate::service::table_data::{self, ExportRequest, TableJob};
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
    /// A snapshot id: export its rows instead of the table's (time travel).
    snapshot: Option<String>,
}

impl ExportBody {
    fn into_job(self) -> ApiResult<TableJob> {
        let format = ExportFormat::parse(self.format.as_deref().unwrap_or("csv"))?;
        let compression = format.compression(self.compression.as_deref())?;
        let selection = RowSelection {
            columns: self.columns.filter(|c| !c.is_empty()),
            filter: self.filters.build(None)?,
            order_by: self
                .order_by
                .filter(|o| !o.trim().is_empty())
                .map(|o| OrderBy::parse(&o))
                .transpose()?,
            limit: check_limit(self.limit)?,
        };
        Ok(TableJob::Export(ExportRequest {
            selection,
            format,
            compression,
            snapshot: self.snapshot,
        }))
    }
}

pub async fn export(
    State(state): State<AppState>,
    access: TableAccess,
    RawQuery(query): RawQuery,
    ApiJson(body): ApiJson<Option<ExportBody>>,
) -> ApiResult<Response> {
    let q = QueryParams::parse(query);
    let queued = q.wants_async()?;
    let mut body = body.unwrap_or_default();
    // `?snapshot=` works here as on `GET …/export` and previews; the body's wins.
    if body.snapshot.is_none() {
        body.snapshot = q.get(&["snapshot"]).map(str::to_string);
    }
    let job = body.into_job()?;
    super::run_table_job(&state, access, job, queued).await
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
        &access.branch,
        &access.bucket,
        &access.table,
        ExportRequest {
            selection,
            format,
            compression,
            snapshot: q.get(&["snapshot"]).map(str::to_string),
        },
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
