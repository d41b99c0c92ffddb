//! Catalog writes for dev branches (ADR 0031): the branch rows, and the per-table record of
//! what a branch copied, created or deleted, kept in the model with every commit.

use super::{micros, Apply, BranchRecord, BranchTable, Catalog};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BranchId, BucketName, DevBranchId, ProjectId, TableName};

impl Catalog {
    /// Records a new branch; 409 `branch_name_exists` when the project has one of that name.
    pub fn insert_branch(
        &self,
        project: &ProjectId,
        branch: BranchRecord,
    ) -> ApiResult<BranchRecord> {
        self.write(|tx, model| {
            let p = model.existing_project(project)?;
            if p.branches.values().any(|b| b.name == branch.name) {
                return Err(ApiError::new(
                    ErrorCode::BranchNameExists,
                    format!(
                        "Branch '{}' already exists in project {project}",
                        branch.name
                    ),
                ));
            }
            tx.execute(
                "INSERT INTO branches VALUES (?, ?, ?, ?, make_timestamp(?), ?)",
                duckdb::params![
                    project.as_str(),
                    branch.id.as_str(),
                    branch.name,
                    branch.description,
                    micros(branch.created_at),
                    branch.created_by,
                ],
            )?;
            let (out, project) = (branch.clone(), project.clone());
            let apply: Apply = Box::new(move |m| {
                if let Some(p) = m.projects.get_mut(&project) {
                    p.branches.insert(branch.id.clone(), branch);
                }
            });
            Ok((out, apply))
        })
    }

    /// Removes a branch, its table records, its snapshots' rows and the keys limited to it, in
    /// one transaction; the caller removes its files afterwards (table files and snapshots).
    pub fn delete_branch(&self, project: &ProjectId, id: &DevBranchId) -> ApiResult<DeletedBranch> {
        self.write(|tx, model| {
            let p = model.existing_project(project)?;
            if !p.branches.contains_key(id) {
                return Err(branch_not_found(id.as_str()));
            }
            let branch = BranchId::Dev(id.clone());
            let keys: Vec<String> = p
                .keys
                .iter()
                .filter(|k| k.grant.branch.as_ref() == Some(&branch))
                .map(|k| k.id.clone())
                .collect();
            let args = [project.as_str(), id.as_str()];
            // Its snapshots go with it: nothing could reach them (ADR 0031).
            let snapshot_files: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT file_path FROM snapshots WHERE project_id = ? AND branch_id = ?",
                )?;
                let paths = stmt
                    .query_map(args, |r| r.get(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                paths
            };
            tx.execute(
                "DELETE FROM snapshots WHERE project_id = ? AND branch_id = ?",
                args,
            )?;
            tx.execute(
                "DELETE FROM branch_tables WHERE project_id = ? AND branch_id = ?",
                args,
            )?;
            tx.execute(
                "DELETE FROM api_keys WHERE project_id = ? AND branch_id = ?",
                args,
            )?;
            // Its workspaces read its tables; the caller removes their files.
            tx.execute(
                "DELETE FROM workspaces WHERE project_id = ? AND branch_id = ?",
                args,
            )?;
            tx.execute("DELETE FROM branches WHERE project_id = ? AND id = ?", args)?;
            let (project, id) = (project.clone(), id.clone());
            let out = DeletedBranch {
                keys: keys.clone(),
                snapshot_files,
            };
            let apply: Apply = Box::new(move |m| {
                if let Some(p) = m.projects.get_mut(&project) {
                    p.branches.remove(&id);
                    p.keys.retain(|k| !keys.contains(&k.id));
                }
            });
            Ok((out, apply))
        })
    }

    /// Records (or replaces) what branch `id` differs from main in for one table; `None`
    /// forgets it, so the branch reads main's table again.
    pub fn set_branch_table(
        &self,
        project: &ProjectId,
        id: &DevBranchId,
        bucket: &BucketName,
        table: &TableName,
        state: Option<BranchTable>,
    ) -> ApiResult<()> {
        self.write(|tx, model| {
            let p = model.existing_project(project)?;
            if !p.branches.contains_key(id) {
                return Err(branch_not_found(id.as_str()));
            }
            let key = [project.as_str(), id.as_str(), bucket.as_str(), table.as_str()];
            tx.execute(
                "DELETE FROM branch_tables WHERE project_id = ? AND branch_id = ? AND bucket = ? AND name = ?",
                key,
            )?;
            if let Some(t) = &state {
                tx.execute(
                    "INSERT INTO branch_tables VALUES (?, ?, ?, ?, ?, ?, make_timestamp(?))",
                    duckdb::params![
                        key[0],
                        key[1],
                        key[2],
                        key[3],
                        t.kind.as_str(),
                        t.base_version.map(|v| v as i64),
                        micros(t.changed_at),
                    ],
                )?;
            }
            let (project, id) = (project.clone(), id.clone());
            let names = (bucket.clone(), table.clone());
            let apply: Apply = Box::new(move |m| {
                if let Some(b) = m
                    .projects
                    .get_mut(&project)
                    .and_then(|p| p.branches.get_mut(&id))
                {
                    match state {
                        Some(t) => b.tables.insert(names, t),
                        None => b.tables.remove(&names),
                    };
                }
            });
            Ok(((), apply))
        })
    }
}

/// What deleting a branch removed from the catalog.
#[derive(Debug, Clone)]
pub struct DeletedBranch {
    /// Ids of the keys limited to the branch.
    pub keys: Vec<String>,
    /// Its snapshots' files (relative to the snapshot root), for the caller to remove.
    pub snapshot_files: Vec<String>,
}

/// 404 `branch_not_found` naming `id`.
pub fn branch_not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BranchNotFound,
        format!("Branch '{id}' not found"),
    )
}
