//! Catalog writes for buckets and the sharing relations between them: shares, links, read-only grants.
//! Links are buckets whose reads resolve to another project's bucket while it stays shared.

use super::{apply_to_bucket, micros, Apply, BucketLink, BucketRecord, Catalog};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BucketName, ProjectId};

impl Catalog {
    /// Creates an ordinary bucket, or a linked one when `link` is given; 409 if the name is taken.
    /// A link requires the source bucket to exist and be shared with `project` (403 otherwise).
    pub fn create_bucket(
        &self,
        project: &ProjectId,
        name: BucketName,
        description: Option<String>,
        link: Option<BucketLink>,
    ) -> ApiResult<BucketRecord> {
        self.write(|tx, model| {
            let p = model.existing_project(project)?;
            if p.buckets.contains_key(&name) {
                return Err(ApiError::new(
                    ErrorCode::BucketExists,
                    format!("Bucket '{name}' already exists in project '{project}'"),
                ));
            }
            if let Some(link) = &link {
                if &link.source_project == project {
                    return Err(ApiError::new(
                        ErrorCode::OperationNotAllowed,
                        "a project cannot link its own bucket",
                    ));
                }
                model.existing_project(&link.source_project)?;
                let source = model.existing_bucket(&link.source_project, &link.source_bucket)?;
                if source.link.is_some() {
                    return Err(ApiError::new(
                        ErrorCode::OperationNotAllowed,
                        "the source bucket is itself a linked bucket; link its origin instead",
                    ));
                }
                if !source.shared_with.contains(project) {
                    return Err(ApiError::forbidden(format!(
                        "Bucket '{}' of project '{}' is not shared with project '{project}'",
                        link.source_bucket, link.source_project
                    )));
                }
            }
            let now = crate::catalog::now();
            tx.execute(
                "INSERT INTO buckets VALUES (?, 'default', ?, ?, make_timestamp(?), ?, ?)",
                duckdb::params![
                    project.as_str(),
                    name.as_str(),
                    description,
                    micros(now),
                    link.as_ref().map(|l| l.source_project.as_str()),
                    link.as_ref().map(|l| l.source_bucket.as_str()),
                ],
            )?;
            let record = BucketRecord {
                name: name.clone(),
                description,
                created_at: now,
                link,
                readonly: false,
                shared_with: Default::default(),
                tables: Default::default(),
            };
            let out = record.clone();
            let project = project.clone();
            let apply: Apply = Box::new(move |m| {
                if let Some(p) = m.projects.get_mut(&project) {
                    p.buckets.insert(name, record);
                }
            });
            Ok((out, apply))
        })
    }

    /// Removes a bucket with its table rows, shares and grant. The caller removes the files.
    pub fn delete_bucket(&self, project: &ProjectId, name: &BucketName) -> ApiResult<BucketRecord> {
        self.write(|tx, model| {
            let record = model.existing_bucket(project, name)?.clone();
            let (p, b) = (project.as_str(), name.as_str());
            tx.execute(
                "DELETE FROM tables WHERE project_id = ? AND bucket = ?",
                [p, b],
            )?;
            tx.execute(
                "DELETE FROM bucket_shares WHERE project_id = ? AND bucket = ?",
                [p, b],
            )?;
            tx.execute(
                "DELETE FROM readonly_grants WHERE project_id = ? AND bucket = ?",
                [p, b],
            )?;
            tx.execute(
                "DELETE FROM buckets WHERE project_id = ? AND name = ?",
                [p, b],
            )?;
            // The dev branches' copies and changes of its tables go with it.
            tx.execute(
                "DELETE FROM branch_tables WHERE project_id = ? AND bucket = ?",
                [p, b],
            )?;
            let (project, name) = (project.clone(), name.clone());
            let apply: Apply = Box::new(move |m| {
                if let Some(p) = m.projects.get_mut(&project) {
                    p.buckets.remove(&name);
                    for branch in p.branches.values_mut() {
                        branch.tables.retain(|(b, _), _| b != &name);
                    }
                }
            });
            Ok((record, apply))
        })
    }

    /// Shares `bucket` with `target`; 409 if already shared.
    pub fn share_bucket(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
        target: &ProjectId,
    ) -> ApiResult<BucketRecord> {
        self.write(|tx, model| {
            let record = model.existing_bucket(project, bucket)?;
            if record.link.is_some() {
                return Err(ApiError::new(
                    ErrorCode::OperationNotAllowed,
                    "a linked bucket cannot be shared further",
                ));
            }
            if target == project {
                return Err(ApiError::new(
                    ErrorCode::OperationNotAllowed,
                    "a bucket cannot be shared with its own project",
                ));
            }
            model.existing_project(target)?;
            if record.shared_with.contains(target) {
                return Err(ApiError::new(
                    ErrorCode::AlreadyShared,
                    format!("Bucket '{bucket}' is already shared with project '{target}'"),
                ));
            }
            tx.execute(
                "INSERT INTO bucket_shares VALUES (?, ?, ?, make_timestamp(?))",
                duckdb::params![
                    project.as_str(),
                    bucket.as_str(),
                    target.as_str(),
                    micros(crate::catalog::now())
                ],
            )?;
            let mut out = record.clone();
            out.shared_with.insert(target.clone());
            let target = target.clone();
            let apply = apply_to_bucket(project, bucket, move |b| {
                b.shared_with.insert(target);
            });
            Ok((out, apply))
        })
    }

    /// Stops sharing; links the target made stop resolving at once (they are no longer live).
    pub fn unshare_bucket(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
        target: &ProjectId,
    ) -> ApiResult<()> {
        self.write(|tx, model| {
            let record = model.existing_bucket(project, bucket)?;
            if !record.shared_with.contains(target) {
                return Err(ApiError::new(
                    ErrorCode::ShareNotFound,
                    format!("Bucket '{bucket}' is not shared with project '{target}'"),
                ));
            }
            tx.execute(
                "DELETE FROM bucket_shares WHERE project_id = ? AND bucket = ? AND target_project_id = ?",
                [project.as_str(), bucket.as_str(), target.as_str()],
            )?;
            let target = target.clone();
            let apply = apply_to_bucket(project, bucket, move |b| {
                b.shared_with.remove(&target);
            });
            Ok(((), apply))
        })
    }

    /// Marks a bucket read-only (`true`) or writable again (`false`). Idempotent.
    pub fn set_readonly(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
        readonly: bool,
    ) -> ApiResult<BucketRecord> {
        self.write(|tx, model| {
            let record = model.existing_bucket(project, bucket)?;
            let (p, b) = (project.as_str(), bucket.as_str());
            tx.execute(
                "DELETE FROM readonly_grants WHERE project_id = ? AND bucket = ?",
                [p, b],
            )?;
            if readonly {
                tx.execute(
                    "INSERT INTO readonly_grants VALUES (?, ?, make_timestamp(?))",
                    duckdb::params![p, b, micros(crate::catalog::now())],
                )?;
            }
            let mut out = record.clone();
            out.readonly = readonly;
            let apply = apply_to_bucket(project, bucket, move |b| b.readonly = readonly);
            Ok((out, apply))
        })
    }
}
