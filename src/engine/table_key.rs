//! The name of one table file: project, bucket and table.
//! A plain value that both the engine and its locks key on; it depends on no engine module.

use crate::names::{BucketName, DevBranchId, ProjectId, TableName};

/// Identifies one table file: main's, or a dev branch's own copy (ADR 0031).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableKey {
    pub project: ProjectId,
    /// `None` for the production branch. Declared before the bucket so that main's key of a
    /// table orders before any branch's (locks on both are taken in this order).
    pub branch: Option<DevBranchId>,
    pub bucket: BucketName,
    pub table: TableName,
}

impl TableKey {
    /// The key of main's `table` in `bucket` of `project` (copies the names).
    pub fn new(project: &ProjectId, bucket: &BucketName, table: &TableName) -> Self {
        Self {
            project: project.clone(),
            branch: None,
            bucket: bucket.clone(),
            table: table.clone(),
        }
    }

    /// The key of dev branch `branch`'s own file of the table.
    pub fn in_branch(
        project: &ProjectId,
        branch: &DevBranchId,
        bucket: &BucketName,
        table: &TableName,
    ) -> Self {
        Self {
            branch: Some(branch.clone()),
            ..Self::new(project, bucket, table)
        }
    }

    /// Main's key of the same table.
    pub fn on_main(&self) -> Self {
        Self {
            branch: None,
            ..self.clone()
        }
    }
}
