//! The name of one table file: project, bucket and table.
//! A plain value that both the engine and its locks key on; it depends on no engine module.

use crate::names::{BucketName, ProjectId, TableName};

/// Identifies one table file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableKey {
    pub project: ProjectId,
    pub bucket: BucketName,
    pub table: TableName,
}

impl TableKey {
    /// The key of `table` in `bucket` of `project` (copies the names).
    pub fn new(project: &ProjectId, bucket: &BucketName, table: &TableName) -> Self {
        Self {
            project: project.clone(),
            bucket: bucket.clone(),
            table: table.clone(),
        }
    }
}
