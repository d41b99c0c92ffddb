//! Loading files into tables: import into an existing table, and create a table from a file
//! (columns inferred, then loaded). It does not decide whether the work runs now or queued.

use serde_json::json;

use crate::catalog::tables::table_exists;
use crate::engine::ddl::ColumnDef;
use crate::engine::import::{CsvOptions, DedupMode, Format, ImportOutcome, ImportRequest, Source};
use crate::engine::TableKey;
use crate::error::{ApiError, ApiResult};
use crate::names::{BranchId, BucketName, ColumnName, ProjectId, TableName};
use crate::service::require_writable;
use crate::service::snapshots::take::{before_change, Trigger};
use crate::service::snapshots::AutoSnapshot;
use crate::service::tables::{
    record_after_write, record_created, validate_definition, view_after_write, writable_reserved,
    TableView,
};
use crate::state::AppState;
use crate::types::ColumnType;

/// An import's outcome plus the table's size afterwards.
pub struct Imported {
    pub outcome: ImportOutcome,
    pub table_size_bytes: u64,
    pub validate_only: bool,
}

#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table, file = %file_id))]
// The table's address (project, branch, bucket, table) and the job's three parts as the job
// queue carries them; bundling either would only move the list elsewhere.
#[allow(clippy::too_many_arguments)]
pub async fn import(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    table: &TableName,
    file_id: &str,
    request: ImportRequest,
    auto: AutoSnapshot,
) -> ApiResult<Imported> {
    // The file must belong to the importing project (404 otherwise).
    let file = state.files.get(project, file_id).await?;
    let local = state.files.local_copy(&file).await?;
    let (reserved, guard, key) = writable_reserved(state, project, branch, bucket, table).await?;
    let st = state.clone();
    let started = std::time::Instant::now();
    state.bulk.run(reserved, guard, move || {
        let state = st;
        // A full load replaces every row: the truncate trigger's snapshot comes first.
        if !request.incremental && !request.validate_only {
            before_change(&state, &key, Trigger::TruncateTable, &auto)?;
        }
        let imported = state.engine.import_file(&key, local.path(), &request);
        if !request.validate_only {
            record_after_write(&state, &key);
        }
        let outcome = imported?;
        if !request.validate_only {
            crate::telemetry::table_transfer("import", outcome.imported_rows, started.elapsed());
        }
        tracing::info!(
            table = %key.table, rows = outcome.imported_rows, validate_only = request.validate_only,
            "import finished"
        );
        Ok(Imported {
            outcome,
            table_size_bytes: state.engine.size_bytes(&key),
            validate_only: request.validate_only,
        })
    })
    .await
}

/// How a table is created from a file.
pub struct FromFile {
    pub name: TableName,
    pub file_id: String,
    pub format: Format,
    pub csv: CsvOptions,
    pub primary_key: Vec<ColumnName>,
    pub all_varchar: bool,
}

/// Creates a table whose columns are inferred from the file and loads it, in one call.
/// A failed load removes the table again: the caller never sees a half-made table.
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %spec.name, file = %spec.file_id))]
pub async fn create_from_file(
    state: &AppState,
    project: &ProjectId,
    branch: &BranchId,
    bucket: &BucketName,
    spec: FromFile,
) -> ApiResult<(TableView, ImportOutcome)> {
    let file = state.files.get(project, &spec.file_id).await?;
    let local = state.files.local_copy(&file).await?;
    let key = match branch.dev() {
        Some(dev) => TableKey::in_branch(project, dev, bucket, &spec.name),
        None => TableKey::new(project, bucket, &spec.name),
    };
    // A thread first, then the lock (see `BulkPool::reserve`).
    let reserved = state.bulk.reserve(project).await;
    let guard = state.engine.locks.table_exclusive(&key).await;
    let started = std::time::Instant::now();
    let st = state.clone();
    let (p, bucket) = (project.clone(), bucket.clone());
    state.bulk.run(reserved, guard, move || {
        let (state, project) = (st, p);
        match &key.branch {
            Some(dev) => crate::service::branches::overlay::require_absent(&state, &key, dev)?,
            None => state.catalog.read(|m| {
                let record = m.existing_bucket(&project, &bucket)?;
                require_writable(record)?;
                if record.tables.contains_key(&spec.name) {
                    return Err(table_exists(&bucket, &spec.name));
                }
                Ok(())
            })?,
        }
        let (columns, mut warnings) = infer_columns(&state, &spec, local.path())?;
        validate_definition(&columns, &spec.primary_key)?;
        state
            .engine
            .create_table(&key, &columns, &spec.primary_key)?;
        // Recorded at once (empty), so the table is never listed without figures.
        if let Err(e) = record_created(&state, &key) {
            let _ = state.engine.drop_table(&key);
            return Err(e);
        }
        let request = ImportRequest {
            format: spec.format,
            csv: spec.csv.clone(),
            incremental: false,
            dedup: DedupMode::FailOnDuplicates,
            columns: None,
            validate_only: false,
        };
        let mut outcome = match state.engine.import_file(&key, local.path(), &request) {
            Ok(o) => o,
            Err(e) => {
                let _ = match &key.branch {
                    Some(dev) => state
                        .catalog
                        .set_branch_table(&project, dev, &bucket, &spec.name, None),
                    None => state
                        .catalog
                        .delete_table(&project, &bucket, &spec.name)
                        .map(|_| ()),
                };
                let _ = state.engine.drop_table(&key);
                return Err(e);
            }
        };
        warnings.append(&mut outcome.warnings);
        outcome.warnings = warnings;
        let mut view = view_after_write(&state, &key, bucket)?;
        view.from_branch = key.branch.is_some();
        crate::telemetry::table_transfer("import", outcome.imported_rows, started.elapsed());
        tracing::info!(table = %key.table, rows = outcome.imported_rows, "table created from file");
        Ok((view, outcome))
    })
    .await
}

/// Column definitions from what DuckDB's reader detects; types outside the allow-list
/// (nested JSON, say) become VARCHAR with a warning.
fn infer_columns(
    state: &AppState,
    spec: &FromFile,
    path: &std::path::Path,
) -> ApiResult<(Vec<ColumnDef>, Vec<String>)> {
    let conn = state.engine.conn()?;
    let source = Source::open(path, spec.format, &spec.csv)?;
    let detected = source.detect_typed(&conn, !spec.all_varchar)?;
    let mut warnings = Vec::new();
    let columns = detected
        .into_iter()
        .map(|(name, ty)| {
            let name = ColumnName::parse(&name).map_err(|e| {
                ApiError::bad_request_with(
                    format!("the file's column name {name:?} cannot be a column name: {e}"),
                    json!({ "column": name }),
                )
            })?;
            let data_type = match ColumnType::parse(&ty) {
                Ok(t) => t,
                Err(_) => {
                    warnings.push(format!(
                        "column {:?} was detected as {ty}, which tables do not support; it is stored as VARCHAR",
                        name.as_str()
                    ));
                    ColumnType::parse("VARCHAR")?
                }
            };
            Ok(ColumnDef {
                name,
                data_type,
                nullable: true,
                default: None,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok((columns, warnings))
}
