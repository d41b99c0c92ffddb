//! Asynchronous jobs: a bounded queue of imports and exports run by a fixed number of
//! workers, each recorded in the catalog from submission to outcome (429 when the queue is full).
//! Workers are handed out fairly across projects, not first come first served.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::blocking;
use super::fair::FairSlots;
use crate::catalog::jobs::{JobRecord, JobStatus};
use crate::catalog::Catalog;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::ProjectId;
use futures_util::FutureExt;
use serde_json::Value;

/// Seconds a client is asked to wait when the queue is full.
const RETRY_AFTER_SECS: u64 = 5;

pub struct JobService {
    catalog: Arc<Catalog>,
    /// Worker slots, handed out fairly across projects.
    workers: Arc<FairSlots>,
    /// Jobs submitted and not yet finished.
    active: Arc<AtomicUsize>,
    capacity: usize,
}

/// A place in the queue; given back when the job finishes, however it finishes.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl JobService {
    /// Marks jobs a previous process left unfinished as interrupted (blocking).
    pub fn open(catalog: Arc<Catalog>, workers: usize, capacity: usize) -> ApiResult<Self> {
        let interrupted = catalog.interrupt_unfinished_jobs()?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "jobs left unfinished by the previous process are marked as interrupted"
            );
        }
        Ok(Self {
            catalog,
            workers: FairSlots::new(workers.max(1)),
            active: Arc::new(AtomicUsize::new(0)),
            capacity: capacity.max(1),
        })
    }

    /// Queues `work`; returns the job as recorded (status waiting).
    #[tracing::instrument(skip_all, fields(project = %project, kind = %kind))]
    pub async fn submit<F, Fut>(
        &self,
        project: &ProjectId,
        kind: &str,
        request: Value,
        work: F,
    ) -> ApiResult<JobRecord>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ApiResult<Value>> + Send + 'static,
    {
        let taken = self.active.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.active.clone());
        if taken >= self.capacity {
            crate::telemetry::throttled("job_queue");
            return Err(ApiError::retry_after(
                ErrorCode::RateLimited,
                format!(
                    "the job queue is full ({} jobs waiting or running); retry later",
                    self.capacity
                ),
                RETRY_AFTER_SECS,
            ));
        }
        let job = JobRecord {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: project.to_string(),
            kind: kind.to_string(),
            status: JobStatus::Waiting,
            progress: 0.0,
            request: Some(request),
            result: None,
            error: None,
            created_at: crate::catalog::now(),
            started_at: None,
            finished_at: None,
        };
        let catalog = self.catalog.clone();
        let (record, p) = (job.clone(), project.clone());
        blocking(move || catalog.insert_job(&p, &record)).await?;

        let (catalog, workers, id) = (self.catalog.clone(), self.workers.clone(), job.id.clone());
        let owner = project.to_string();
        tokio::spawn(async move {
            let waiting = crate::telemetry::QueueWait::start("jobs");
            let permit = workers.acquire(&owner).await;
            waiting.admitted();
            let c = catalog.clone();
            let i = id.clone();
            match blocking(move || c.start_job(&i)).await {
                Ok(true) => {}
                Ok(false) => {
                    // Its project was deleted while it waited; a project created since
                    // with the same id must not get the old owner's import or export.
                    tracing::info!(job = %id, "a job of a deleted project is dropped unrun");
                    return;
                }
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "could not mark a job as started")
                }
            }
            // A panic inside the work is an internal error of this job, not a lost job.
            let outcome = match AssertUnwindSafe(work()).catch_unwind().await {
                Ok(Ok(result)) => Ok(result),
                Ok(Err(e)) => Err(e.body()),
                Err(_) => Err(ApiError::internal("the job panicked").body()),
            };
            // The work is done: its queue place is free before anyone can read the outcome,
            // so a client that saw the job finish can submit the next one at once.
            drop(permit);
            drop(slot);
            let i = id.clone();
            if let Err(e) = blocking(move || catalog.finish_job(&i, outcome)).await {
                tracing::error!(job = %id, error = %e, "could not record a job's outcome");
            }
        });
        Ok(job)
    }

    /// Forgets finished jobs older than `retention` (the cleaner calls this).
    #[tracing::instrument(skip_all)]
    pub async fn purge(&self, retention: std::time::Duration) -> ApiResult<usize> {
        let catalog = self.catalog.clone();
        let cutoff = chrono::Duration::from_std(retention)
            .ok()
            .and_then(|r| crate::catalog::now().checked_sub_signed(r))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        blocking(move || catalog.purge_finished_jobs(cutoff)).await
    }

    #[tracing::instrument(skip_all, fields(project = %project, job = %id))]
    pub async fn get(&self, project: &ProjectId, id: &str) -> ApiResult<JobRecord> {
        let (catalog, p, i) = (self.catalog.clone(), project.clone(), id.to_string());
        blocking(move || catalog.job(&p, &i))
            .await?
            .ok_or_else(|| job_not_found(project, id))
    }

    #[tracing::instrument(skip_all, fields(project = %project, limit = limit))]
    pub async fn list(&self, project: &ProjectId, limit: u32) -> ApiResult<Vec<JobRecord>> {
        let (catalog, p) = (self.catalog.clone(), project.clone());
        blocking(move || catalog.jobs(&p, limit)).await
    }
}

/// 404 `job_not_found` for job `id` of `project`.
pub fn job_not_found(project: &ProjectId, id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::JobNotFound,
        format!("Job '{id}' not found in project '{project}'"),
    )
    .with_details(serde_json::json!({ "job_id": id, "project_id": project }))
}
