//! Loading files into tables: `POST …/import/file` (now or as a job with `?async=true`) and
//! `POST …/tables/from-file`. Bodies are parsed into typed requests; the service does the rest.

use crate::service::snapshots::AutoSnapshot;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::api::extract::{ApiJson, BucketAccess, TableAccess};
use crate::api::query::QueryParams;
use crate::api::responses::CreatedFromFile;
use crate::engine::import::{CsvOptions, DedupMode, Format, ImportRequest};
use crate::error::ApiResult;
use crate::names::{ColumnName, TableName};
use crate::service::table_data::{self, FromFile, TableJob};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct CsvOptionsBody {
    delimiter: Option<String>,
    quote: Option<String>,
    escape: Option<String>,
    header: Option<bool>,
    null_string: Option<String>,
}

impl CsvOptionsBody {
    fn into_options(self) -> ApiResult<CsvOptions> {
        let d = CsvOptions::default();
        let options = CsvOptions {
            delimiter: self.delimiter.unwrap_or(d.delimiter),
            quote: self.quote.unwrap_or(d.quote),
            escape: self.escape.unwrap_or(d.escape),
            header: self.header.unwrap_or(d.header),
            null_string: self.null_string.unwrap_or(d.null_string),
        };
        options.validate()?;
        Ok(options)
    }
}

#[derive(Deserialize, Default)]
pub struct ImportOptionsBody {
    #[serde(default)]
    incremental: bool,
    dedup_mode: Option<String>,
    columns: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub struct ImportBody {
    file_id: String,
    format: Option<String>,
    csv_options: Option<CsvOptionsBody>,
    #[serde(default)]
    import_options: Option<ImportOptionsBody>,
    #[serde(default)]
    validate_only: bool,
}

impl ImportBody {
    fn into_job(self, auto: AutoSnapshot) -> ApiResult<TableJob> {
        let format = Format::parse(self.format.as_deref().unwrap_or("csv"))?;
        let options = self.import_options.unwrap_or_default();
        let dedup = DedupMode::parse(options.dedup_mode.as_deref().unwrap_or("update_duplicates"))?;
        Ok(TableJob::Import {
            file_id: self.file_id,
            request: ImportRequest {
                format,
                csv: self.csv_options.unwrap_or_default().into_options()?,
                incremental: options.incremental,
                dedup,
                columns: options.columns.filter(|c| !c.is_empty()),
                validate_only: self.validate_only,
            },
            auto,
        })
    }
}

pub async fn import_file(
    State(state): State<AppState>,
    access: TableAccess,
    RawQuery(query): RawQuery,
    ApiJson(body): ApiJson<ImportBody>,
) -> ApiResult<Response> {
    let q = QueryParams::parse(query);
    let queued = q.wants_async()?;
    let job = body.into_job(q.auto_snapshot(&access.principal)?)?;
    super::run_table_job(&state, access, job, queued).await
}

#[derive(Deserialize)]
pub struct FromFileBody {
    name: String,
    file_id: String,
    format: Option<String>,
    csv_options: Option<CsvOptionsBody>,
    primary_key: Option<Vec<String>>,
    #[serde(default)]
    all_varchar: bool,
}

pub async fn create_from_file(
    State(state): State<AppState>,
    access: BucketAccess,
    ApiJson(body): ApiJson<FromFileBody>,
) -> ApiResult<impl IntoResponse> {
    let spec = FromFile {
        name: TableName::parse(&body.name)?,
        file_id: body.file_id,
        format: Format::parse(body.format.as_deref().unwrap_or("csv"))?,
        csv: body.csv_options.unwrap_or_default().into_options()?,
        primary_key: body
            .primary_key
            .unwrap_or_default()
            .iter()
            .map(|c| ColumnName::parse(c))
            .collect::<ApiResult<_>>()?,
        all_varchar: body.all_varchar,
    };
    let (view, outcome) = table_data::create_from_file(
        &state,
        &access.project,
        &access.branch,
        &access.bucket,
        spec,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedFromFile::new(
            &view,
            outcome.imported_rows,
            outcome.warnings,
        )),
    ))
}
