//! Job records: what an asynchronous import or export was asked to do, its status and outcome.
//! Rows change only through these functions; a restart turns unfinished jobs into errors.

use chrono::{DateTime, Utc};
use duckdb::params;
use serde::Serialize;
use serde_json::Value;

use super::{from_micros, micros, no_model_change, Catalog};
use crate::error::ApiResult;
use crate::names::ProjectId;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Waiting,
    Processing,
    Success,
    Error,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Processing => "processing",
            Self::Success => "success",
            Self::Error => "error",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "waiting" => Self::Waiting,
            "processing" => Self::Processing,
            "success" => Self::Success,
            _ => Self::Error,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub id: String,
    pub project_id: String,
    pub kind: String,
    pub status: JobStatus,
    pub progress: f64,
    pub request: Option<Value>,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, project_id, kind, status, progress, request::VARCHAR, result::VARCHAR, \
     error::VARCHAR, epoch_us(created_at), epoch_us(started_at), epoch_us(finished_at)";

impl Catalog {
    /// Records a new job; 404 when its project is gone (deleted while the job was submitted,
    /// so the row would outlive the project and show to a later project of that id).
    pub fn insert_job(&self, project: &ProjectId, job: &JobRecord) -> ApiResult<()> {
        self.write(|tx, model| {
            model.existing_project(project)?;
            tx.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?::JSON, NULL, NULL, make_timestamp(?), NULL, NULL)",
                params![
                    job.id,
                    job.project_id,
                    job.kind,
                    job.status.as_str(),
                    job.progress,
                    job.request.as_ref().map(Value::to_string),
                    micros(job.created_at)
                ],
            )?;
            Ok(((), no_model_change()))
        })
    }

    /// Marks the job as processing; false when its row is gone (its project was deleted
    /// while it waited), and then the job must not run.
    pub fn start_job(&self, id: &str) -> ApiResult<bool> {
        self.write(|tx, _| {
            let n = tx.execute(
                "UPDATE jobs SET status = 'processing', progress = 0.1, started_at = make_timestamp(?) WHERE id = ?",
                params![micros(super::now()), id],
            )?;
            Ok((n > 0, no_model_change()))
        })
    }

    /// Records the outcome: a result body on success, an error body otherwise.
    pub fn finish_job(&self, id: &str, outcome: Result<Value, Value>) -> ApiResult<()> {
        let (status, result, error) = match outcome {
            Ok(v) => (JobStatus::Success, Some(v.to_string()), None),
            Err(e) => (JobStatus::Error, None, Some(e.to_string())),
        };
        self.write(|tx, _| {
            tx.execute(
                "UPDATE jobs SET status = ?, progress = 1.0, result = ?::JSON, error = ?::JSON, \
                 finished_at = make_timestamp(?) WHERE id = ?",
                params![status.as_str(), result, error, micros(super::now()), id],
            )?;
            Ok(((), no_model_change()))
        })
    }

    /// Marks every job a previous process left unfinished as failed; returns how many.
    pub fn interrupt_unfinished_jobs(&self) -> ApiResult<usize> {
        let error = serde_json::json!({
            "error": "interrupted",
            "message": "the job was interrupted: the server stopped before it finished; nothing it did was kept, submit it again",
            "details": null,
        })
        .to_string();
        self.write(|tx, _| {
            let n = tx.execute(
                "UPDATE jobs SET status = 'error', error = ?::JSON, finished_at = make_timestamp(?) \
                 WHERE status IN ('waiting', 'processing')",
                params![error, micros(super::now())],
            )?;
            Ok((n, no_model_change()))
        })
    }

    /// Removes finished jobs that ended before `cutoff`; returns how many.
    pub fn purge_finished_jobs(&self, cutoff: DateTime<Utc>) -> ApiResult<usize> {
        self.write(|tx, _| {
            let n = tx.execute(
                "DELETE FROM jobs WHERE status IN ('success', 'error') AND finished_at < make_timestamp(?)",
                params![micros(cutoff)],
            )?;
            Ok((n, no_model_change()))
        })
    }

    pub fn job(&self, project: &ProjectId, id: &str) -> ApiResult<Option<JobRecord>> {
        self.query(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE project_id = ? AND id = ?"
            ))?;
            let mut rows = stmt.query(params![project.as_str(), id])?;
            match rows.next()? {
                Some(r) => Ok(Some(job_from_row(r)?)),
                None => Ok(None),
            }
        })
    }

    /// The project's most recent jobs, newest first.
    pub fn jobs(&self, project: &ProjectId, limit: u32) -> ApiResult<Vec<JobRecord>> {
        self.query(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE project_id = ? ORDER BY created_at DESC, id LIMIT ?"
            ))?;
            let mut rows = stmt.query(params![project.as_str(), limit])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(job_from_row(r)?);
            }
            Ok(out)
        })
    }
}

fn job_from_row(r: &duckdb::Row<'_>) -> ApiResult<JobRecord> {
    let json = |i: usize| -> ApiResult<Option<Value>> {
        Ok(r.get::<_, Option<String>>(i)?
            .and_then(|s| serde_json::from_str(&s).ok()))
    };
    let time = |i: usize| -> ApiResult<Option<DateTime<Utc>>> {
        r.get::<_, Option<i64>>(i)?.map(from_micros).transpose()
    };
    Ok(JobRecord {
        id: r.get(0)?,
        project_id: r.get(1)?,
        kind: r.get(2)?,
        status: JobStatus::parse(&r.get::<_, String>(3)?),
        progress: r.get(4)?,
        request: json(5)?,
        result: json(6)?,
        error: json(7)?,
        created_at: from_micros(r.get(8)?)?,
        started_at: time(9)?,
        finished_at: time(10)?,
    })
}
