//! Table data routes (both path styles): import, create-from-file, export (file or stream),
//! column and primary-key changes, row deletes and profiles; imports and exports may run as jobs.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ProjectAccess, Scope};
use super::files::file_json;
use super::jobs::job_json;
use super::tables::{table_json, ColumnBody};
use crate::engine::export::{ExportFormat, RowSelection};
use crate::engine::filter::{Condition, Filter, OrderBy};
use crate::engine::import::{CsvOptions, DedupMode, Format, ImportRequest};
use crate::engine::schema::AlterColumn;
use crate::engine::{TableEngine, TableKey};
use crate::error::{ApiError, ApiResult};
use crate::names::{ColumnName, TableName};
use crate::service::table_data::{self, Exported, FromFile};
use crate::state::AppState;
use crate::types::{ColumnType, DefaultValue};

/// Query parameters of a request, repeated keys kept (`whereValues=a&whereValues=b`).
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(raw: Option<String>) -> Self {
        Self(
            raw.map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// The last value of the first of `names` present.
    pub fn get(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| {
            self.0
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        })
    }

    pub fn all(&self, names: &[&str]) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `?async=true` (also `1`/`yes`).
    fn wants_async(&self) -> ApiResult<bool> {
        match self.get(&["async"]) {
            None => Ok(false),
            Some(v) => parse_bool("async", v),
        }
    }

    pub fn number(&self, name: &str) -> ApiResult<Option<i64>> {
        self.get(&[name])
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::unprocessable_with(
                        format!("query parameter {name} must be an integer, got {v:?}"),
                        json!({ name: v }),
                    )
                })
            })
            .transpose()
    }

    /// Every filter form the query may carry, combined with AND.
    pub fn filter(&self) -> ApiResult<Option<Filter>> {
        let conditions = match self.get(&["filters", "where_filters"]) {
            None => None,
            Some(text) => Some(serde_json::from_str::<Vec<Condition>>(text).map_err(|e| {
                ApiError::bad_request(format!(
                    "filters must be a JSON array of {{column, operator, values}}: {e}"
                ))
            })?),
        };
        let mut values = self.all(&[
            "whereValues",
            "whereValues[]",
            "where_values",
            "where_values[]",
        ]);
        values.retain(|v| !v.is_empty());
        FilterInput {
            raw: self
                .get(&["where_filter", "where_clause"])
                .map(str::to_string),
            conditions,
            column: self
                .get(&["whereColumn", "where_column"])
                .map(str::to_string),
            values: (!values.is_empty()).then_some(values),
            operator: self
                .get(&["whereOperator", "where_operator"])
                .map(str::to_string),
        }
        .build()
    }

    pub fn columns(&self) -> Option<Vec<String>> {
        self.get(&["columns"]).map(|c| {
            c.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    pub fn order_by(&self) -> ApiResult<Option<OrderBy>> {
        self.get(&["order_by", "orderBy"])
            .filter(|o| !o.trim().is_empty())
            .map(OrderBy::parse)
            .transpose()
    }
}

fn parse_bool(name: &str, v: &str) -> ApiResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(ApiError::unprocessable(format!(
            "query parameter {name} must be true or false, got {v:?}"
        ))),
    }
}

/// The filter forms a request may carry: the reference's raw string, the JSON list of
/// conditions, and Keboola's whereColumn/whereValues/whereOperator. All present ones must hold.
#[derive(Default)]
struct FilterInput {
    raw: Option<String>,
    conditions: Option<Vec<Condition>>,
    column: Option<String>,
    values: Option<Vec<String>>,
    operator: Option<String>,
}

impl FilterInput {
    fn build(self) -> ApiResult<Option<Filter>> {
        let mut parts = Vec::new();
        if let Some(raw) = self.raw.filter(|r| !r.trim().is_empty()) {
            parts.push(Filter::parse(&raw)?);
        }
        if let Some(conditions) = self.conditions.filter(|c| !c.is_empty()) {
            parts.push(Filter::structured(&conditions)?);
        }
        match (self.column, self.values) {
            (Some(column), Some(values)) => {
                parts.push(Filter::keboola(&column, &values, self.operator.as_deref())?)
            }
            (Some(_), None) => {
                return Err(ApiError::bad_request(
                    "whereColumn needs whereValues (one or more values to compare with)",
                ))
            }
            (None, Some(_)) => {
                return Err(ApiError::bad_request(
                    "whereValues needs whereColumn (the column to compare)",
                ))
            }
            (None, None) => {}
        }
        Ok(parts.into_iter().reduce(Filter::and))
    }
}

/// Keboola sends whereValues as strings, but numbers are common too.
fn value_strings(values: Option<Vec<Value>>) -> ApiResult<Option<Vec<String>>> {
    values
        .map(|vs| {
            vs.into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Bool(b) => Ok(b.to_string()),
                    other => Err(ApiError::bad_request(format!(
                        "whereValues must hold strings or numbers, got {other}"
                    ))),
                })
                .collect()
        })
        .transpose()
}

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
    fn into_request(self) -> ApiResult<(String, ImportRequest)> {
        let format = Format::parse(self.format.as_deref().unwrap_or("csv"))?;
        let options = self.import_options.unwrap_or_default();
        let dedup = DedupMode::parse(options.dedup_mode.as_deref().unwrap_or("update_duplicates"))?;
        Ok((
            self.file_id,
            ImportRequest {
                format,
                csv: self.csv_options.unwrap_or_default().into_options()?,
                incremental: options.incremental,
                dedup,
                columns: options.columns.filter(|c| !c.is_empty()),
                validate_only: self.validate_only,
            },
        ))
    }
}

/// 202 with the job and where to poll it.
fn accepted(project: &str, job: &crate::catalog::jobs::JobRecord) -> Response {
    let location = format!("/projects/{project}/jobs/{}", job.id);
    let mut response = (StatusCode::ACCEPTED, Json(job_json(job))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

pub async fn import_file(
    State(state): State<AppState>,
    access: ProjectAccess,
    RawQuery(query): RawQuery,
    ApiJson(body): ApiJson<ImportBody>,
) -> ApiResult<Response> {
    let query = QueryParams::parse(query);
    let run_async = query.wants_async()?;
    let (file_id, request) = body.into_request()?;
    let s = access.scope;
    let (bucket, table) = (s.bucket()?.clone(), s.table()?.clone());
    let project = s.project;
    if !run_async {
        let imported =
            table_data::import(&state, &project, &bucket, &table, &file_id, request).await?;
        return Ok(Json(imported.to_json()).into_response());
    }
    let described = json!({ "bucket": bucket, "table": table, "file_id": file_id });
    let st = state.clone();
    let p = project.clone();
    let job = state
        .jobs
        .submit(&project, "import", described, move || async move {
            let imported = table_data::import(&st, &p, &bucket, &table, &file_id, request).await?;
            Ok(imported.to_json())
        })
        .await?;
    Ok(accepted(project.as_str(), &job))
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
    access: ProjectAccess,
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
    let s = access.scope;
    let (view, outcome) =
        table_data::create_from_file(&state, &s.project, s.bucket()?, spec).await?;
    let mut out = table_json(&view);
    out["imported_rows"] = json!(outcome.imported_rows);
    out["warnings"] = json!(outcome.warnings);
    Ok((StatusCode::CREATED, Json(out)))
}

/// The filter fields a JSON body may carry besides the raw string (see `FilterInput`).
#[derive(Deserialize, Default)]
pub struct BodyFilters {
    where_filter: Option<String>,
    where_filters: Option<Vec<Condition>>,
    #[serde(rename = "whereColumn")]
    where_column: Option<String>,
    #[serde(rename = "whereValues")]
    where_values: Option<Vec<Value>>,
    #[serde(rename = "whereOperator")]
    where_operator: Option<String>,
}

impl BodyFilters {
    /// All filter forms of the body, `raw` (the route's own SQL-like field) taking precedence
    /// over `where_filter`.
    fn build(self, raw: Option<String>) -> ApiResult<Option<Filter>> {
        FilterInput {
            raw: raw.or(self.where_filter),
            conditions: self.where_filters,
            column: self.where_column,
            values: value_strings(self.where_values)?,
            operator: self.where_operator,
        }
        .build()
    }
}

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

fn check_limit(limit: Option<i64>) -> ApiResult<Option<u64>> {
    match limit {
        Some(n) if n < 0 => Err(ApiError::unprocessable_with(
            format!("limit must not be negative, got {n}"),
            json!({ "limit": n }),
        )),
        other => Ok(other.map(|n| n as u64)),
    }
}

fn export_json(e: &Exported) -> Value {
    let file = file_json(&e.file);
    json!({
        "file_id": e.file.id,
        "file_path": file["path"],
        "rows_exported": e.rows,
        "file_size_bytes": e.file.size_bytes,
        "file": file,
    })
}

pub async fn export(
    State(state): State<AppState>,
    access: ProjectAccess,
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
    let s = access.scope;
    let (bucket, table) = (s.bucket()?.clone(), s.table()?.clone());
    let project = s.project;
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
        return Ok(Json(export_json(&exported)).into_response());
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
            Ok(export_json(&exported))
        })
        .await?;
    Ok(accepted(project.as_str(), &job))
}

/// `GET …/export?format=csv|parquet`: the rows streamed from DuckDB's writer, no file kept.
pub async fn export_stream(
    State(state): State<AppState>,
    access: ProjectAccess,
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
    let s = &access.scope;
    let table = s.table()?.clone();
    let stream = table_data::export_stream(
        &state,
        &s.project,
        s.bucket()?,
        &table,
        selection,
        format,
        compression,
    )
    .await?;
    let name = format.file_name(table.as_str(), compression);
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

pub async fn add_column(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<ColumnBody>,
) -> ApiResult<impl IntoResponse> {
    let column = body.parse()?;
    let view = changed(&state, &access.scope, move |engine, key| {
        engine.add_column(key, &column)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Runs a schema change through the table-data service and answers the table afterwards.
async fn changed(
    state: &AppState,
    scope: &Scope,
    f: impl FnOnce(&TableEngine, &TableKey) -> ApiResult<()> + Send + 'static,
) -> ApiResult<Value> {
    let view =
        table_data::change_table(state, &scope.project, scope.bucket()?, scope.table()?, f).await?;
    Ok(table_json(&view))
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
    access: ProjectAccess,
    column: Path<ColumnPath>,
) -> ApiResult<Json<Value>> {
    let column = column_of(column)?;
    let view = changed(&state, &access.scope, move |engine, key| {
        engine.drop_column(key, &column)
    })
    .await?;
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
    access: ProjectAccess,
    column: Path<ColumnPath>,
    ApiJson(body): ApiJson<AlterColumnBody>,
) -> ApiResult<Json<Value>> {
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
        return Err(ApiError::bad_request(
            "nothing to change: give new_name, new_type, set_not_null or set_default",
        ));
    }
    let view = changed(&state, &access.scope, move |engine, key| {
        engine.alter_column(key, &column, &change)
    })
    .await?;
    Ok(Json(view))
}

#[derive(Deserialize)]
pub struct PrimaryKeyBody {
    columns: Vec<String>,
}

pub async fn add_primary_key(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<PrimaryKeyBody>,
) -> ApiResult<impl IntoResponse> {
    if body.columns.is_empty() {
        return Err(ApiError::unprocessable(
            "columns must name at least one column",
        ));
    }
    let view = changed(&state, &access.scope, move |engine, key| {
        engine.add_primary_key(key, &body.columns)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn drop_primary_key(
    State(state): State<AppState>,
    access: ProjectAccess,
) -> ApiResult<Json<Value>> {
    let view = changed(&state, &access.scope, |engine, key| {
        engine.drop_primary_key(key)
    })
    .await?;
    Ok(Json(view))
}

#[derive(Deserialize, Default)]
pub struct DeleteRowsBody {
    where_clause: Option<String>,
    #[serde(flatten)]
    filters: BodyFilters,
}

pub async fn delete_rows(
    State(state): State<AppState>,
    access: ProjectAccess,
    RawQuery(query): RawQuery,
    ApiJson(body): ApiJson<Option<DeleteRowsBody>>,
) -> ApiResult<Json<Value>> {
    let body = body.unwrap_or_default();
    let from_body = body.filters.build(body.where_clause)?;
    let from_query = QueryParams::parse(query).filter()?;
    let filter = match (from_body, from_query) {
        (Some(a), Some(b)) => a.and(b),
        (Some(f), None) | (None, Some(f)) => f,
        (None, None) => {
            return Err(ApiError::bad_request(
                "deleting rows needs a filter: where_clause, where_filters or whereColumn/whereValues (use where_clause \"TRUE\" to delete every row)",
            ))
        }
    };
    let s = &access.scope;
    let (deleted, after) =
        table_data::delete_rows(&state, &s.project, s.bucket()?, s.table()?, filter).await?;
    Ok(Json(
        json!({ "deleted_rows": deleted, "table_rows_after": after }),
    ))
}

pub async fn profile(
    State(state): State<AppState>,
    access: ProjectAccess,
) -> ApiResult<Json<Value>> {
    let s: &Scope = &access.scope;
    let profile = table_data::profile(&state, &s.project, s.bucket()?, s.table()?).await?;
    Ok(Json(json!({
        "table_name": s.table()?,
        "bucket_name": s.bucket()?,
        "row_count": profile.row_count,
        "column_count": profile.columns.len(),
        "statistics": profile.columns,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_filters_keep_numbers_through_the_flattened_fields() {
        let body: DeleteRowsBody = super::super::extract::parse_json(
            br#"{"whereColumn": "id", "whereValues": [1, 2.50, "x"], "whereOperator": "ne"}"#,
        )
        .unwrap();
        assert_eq!(
            value_strings(body.filters.where_values).unwrap(),
            Some(vec!["1".to_string(), "2.50".to_string(), "x".to_string()])
        );
    }
}
