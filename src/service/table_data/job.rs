//! Table imports and exports as typed requests, run at once or queued as a job (`?async=true`).
//! The JSON a finished job records is shaped by the caller's result type, never built here.

use serde::Serialize;
use serde_json::{json, Value};

use super::export::{export, ExportRequest, Exported};
use super::import::{import, Imported};
use crate::catalog::jobs::JobRecord;
use crate::engine::import::ImportRequest;
use crate::error::{ApiError, ApiResult};
use crate::names::{BranchId, BucketName, ProjectId, TableName};
use crate::service::snapshots::AutoSnapshot;
use crate::state::AppState;

/// Work on one table that may run as a job.
pub enum TableJob {
    /// Loads a file of the project into the table.
    Import {
        file_id: String,
        request: ImportRequest,
        /// The truncate trigger's snapshot before a full load (skip, and who asked).
        auto: AutoSnapshot,
    },
    /// Writes the selected rows to a new file of the project.
    Export(ExportRequest),
}

/// What a table job produced.
pub enum TableJobOutcome {
    Imported(Imported),
    Exported(Box<Exported>),
}

/// A job that finished in the request, or the record of one now waiting in the queue.
pub enum JobRun<R> {
    Done(R),
    Queued(Box<JobRecord>),
}

impl TableJob {
    /// The job kind and the request as the job record keeps it.
    fn describe(&self, bucket: &BucketName, table: &TableName) -> (&'static str, Value) {
        match self {
            Self::Import { file_id, .. } => (
                "import",
                json!({ "bucket": bucket, "table": table, "file_id": file_id }),
            ),
            Self::Export(request) => (
                "export",
                json!({ "bucket": bucket, "table": table, "format": format!("{:?}", request.format).to_lowercase() }),
            ),
        }
    }

    async fn execute(
        self,
        state: &AppState,
        project: &ProjectId,
        branch: &BranchId,
        bucket: &BucketName,
        table: &TableName,
    ) -> ApiResult<TableJobOutcome> {
        match self {
            Self::Import {
                file_id,
                request,
                auto,
            } => import(
                state, project, branch, bucket, table, &file_id, request, auto,
            )
            .await
            .map(TableJobOutcome::Imported),
            Self::Export(request) => export(state, project, branch, bucket, table, request)
                .await
                .map(|e| TableJobOutcome::Exported(Box::new(e))),
        }
    }
}

/// Runs `job` on the table now, or (`queued`) submits it to the job queue and returns the
/// waiting job. `R` is the result as the caller shows it; a queued job records it as JSON.
#[tracing::instrument(skip_all, fields(project = %project, bucket = %bucket, table = %table, queued = queued))]
pub async fn run_job<R>(
    state: &AppState,
    project: ProjectId,
    branch: BranchId,
    bucket: BucketName,
    table: TableName,
    job: TableJob,
    queued: bool,
) -> ApiResult<JobRun<R>>
where
    R: From<TableJobOutcome> + Serialize + Send + 'static,
{
    if !queued {
        let outcome = job
            .execute(state, &project, &branch, &bucket, &table)
            .await?;
        return Ok(JobRun::Done(R::from(outcome)));
    }
    let (kind, described) = job.describe(&bucket, &table);
    let st = state.clone();
    let p = project.clone();
    let record = state
        .jobs
        .submit(&project, kind, described, move || async move {
            let outcome = job.execute(&st, &p, &branch, &bucket, &table).await?;
            serde_json::to_value(R::from(outcome))
                .map_err(|e| ApiError::internal(format!("cannot record the job's result: {e}")))
        })
        .await?;
    Ok(JobRun::Queued(Box::new(record)))
}
