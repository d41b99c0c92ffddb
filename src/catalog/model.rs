//! The in-memory read model of the catalog: every project, key, bucket, share and table record.
//! Loaded from metadata.duckdb at start and updated in the same code path as each catalog write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::scope::Grant;
use crate::error::ApiResult;
use crate::names::{BucketName, ColumnName, DevBranchId, ProjectId, TableName};

#[derive(Debug, Default, Clone)]
pub struct Model {
    pub projects: BTreeMap<ProjectId, ProjectRecord>,
}

#[derive(Debug, Clone)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub name: Option<String>,
    pub settings: Option<Value>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every key ever issued, revoked ones too (so a revoked key is told it is revoked).
    pub keys: Vec<Arc<KeyRecord>>,
    pub buckets: BTreeMap<BucketName, BucketRecord>,
    /// Its dev branches (ADR 0031).
    pub branches: BTreeMap<DevBranchId, BranchRecord>,
}

/// A dev branch: what it differs from main in, table by table.
#[derive(Debug, Clone)]
pub struct BranchRecord {
    pub id: DevBranchId,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub tables: BTreeMap<(BucketName, TableName), BranchTable>,
}

/// How a branch's view of one table differs from main's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchTable {
    pub kind: BranchTableKind,
    /// Main's table version when the branch copied or deleted it; `None` for a table the
    /// branch created.
    pub base_version: Option<u64>,
    pub changed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchTableKind {
    /// The branch has its own copy of main's table (made by its first write).
    Copied,
    /// The table exists only in the branch.
    Created,
    /// Main's table is hidden in the branch.
    Deleted,
}

impl BranchTableKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Copied => "copied",
            Self::Created => "created",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "copied" => Some(Self::Copied),
            "created" => Some(Self::Created),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: String,
    /// The project, scope, branch and permissions the key carries.
    pub grant: Grant,
    /// The key's public part and a few secret characters (`auth::keys::key_prefix`).
    pub prefix: String,
    /// argon2id PHC string.
    pub hash: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// As of the last batch written to the catalog (`auth::usage`).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Whether a key authenticates right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Revoked(DateTime<Utc>),
    Expired(DateTime<Utc>),
}

impl KeyRecord {
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        match (self.revoked_at, self.expires_at) {
            (Some(at), _) => KeyStatus::Revoked(at),
            (None, Some(at)) if at <= now => KeyStatus::Expired(at),
            _ => KeyStatus::Active,
        }
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.status(now) == KeyStatus::Active
    }
}

#[derive(Debug, Clone)]
pub struct BucketRecord {
    pub name: BucketName,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Set when this bucket is a read-only link to another project's bucket.
    pub link: Option<BucketLink>,
    /// Set by grant-readonly: tables in the bucket can be read but not changed.
    pub readonly: bool,
    /// Projects this bucket is shared with (they may link it).
    pub shared_with: BTreeSet<ProjectId>,
    pub tables: BTreeMap<TableName, TableRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketLink {
    pub source_project: ProjectId,
    pub source_bucket: BucketName,
}

#[derive(Debug, Clone)]
pub struct TableRecord {
    pub name: TableName,
    pub primary_key: Vec<ColumnName>,
    pub created_at: DateTime<Utc>,
    /// What a list shows about the table file, recorded with every write to it; `None` when
    /// unknown (never read, or the file changed since) until the file is read again.
    pub stats: Option<TableStats>,
    /// How many writes main's table has had: a branch's copy remembers it (merge conflicts).
    pub version: u64,
}

/// Facts about a table file as of its last change, so listing a bucket opens no file.
#[derive(Debug, Clone, PartialEq)]
pub struct TableStats {
    pub columns: Arc<Vec<StoredColumn>>,
    pub row_count: u64,
    pub size_bytes: u64,
    /// When duckbank last saw the table's content change.
    pub updated_at: DateTime<Utc>,
    /// The table file and its WAL on disk (lengths, modification times) when these were read.
    pub file_stamp: String,
}

/// A column as the table file declares it, as the catalog keeps it (JSON in `tables.columns`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
    pub ordinal_position: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

impl Model {
    pub fn project(&self, id: &ProjectId) -> Option<&ProjectRecord> {
        self.projects.get(id)
    }

    pub fn bucket(&self, project: &ProjectId, bucket: &BucketName) -> Option<&BucketRecord> {
        self.projects.get(project)?.buckets.get(bucket)
    }

    /// The project, or the 404 naming it.
    pub fn existing_project(&self, id: &ProjectId) -> ApiResult<&ProjectRecord> {
        self.project(id).ok_or_else(|| super::not_found_project(id))
    }

    /// The bucket, or the 404 naming it and its project.
    pub fn existing_bucket(
        &self,
        project: &ProjectId,
        bucket: &BucketName,
    ) -> ApiResult<&BucketRecord> {
        self.bucket(project, bucket)
            .ok_or_else(|| super::not_found_bucket(project, bucket))
    }

    pub fn bucket_mut(
        &mut self,
        project: &ProjectId,
        bucket: &BucketName,
    ) -> Option<&mut BucketRecord> {
        self.projects.get_mut(project)?.buckets.get_mut(bucket)
    }

    /// Whether `link` is live: the source bucket exists and is still shared with `target`.
    pub fn link_is_live(&self, target: &ProjectId, link: &BucketLink) -> bool {
        self.bucket(&link.source_project, &link.source_bucket)
            .is_some_and(|b| b.link.is_none() && b.shared_with.contains(target))
    }
}
