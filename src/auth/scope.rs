//! What an API key may do: its scope, optional bucket and file permissions, and the one check
//! (`Grant::allows`) that compares them with what a route needs (ADR 0025).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::names::{BranchId, BucketName, ProjectId};

/// The reference's three key scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    /// Everything in its project, key management included.
    ProjectAdmin,
    /// Read and write in its branch; no keys, project settings or sharing.
    BranchAdmin,
    /// Reads in its branch only.
    BranchRead,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProjectAdmin => "project_admin",
            Self::BranchAdmin => "branch_admin",
            Self::BranchRead => "branch_read",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(raw.to_string())).ok()
    }

    pub fn is_branch_scoped(self) -> bool {
        !matches!(self, Self::ProjectAdmin)
    }

    fn can_write(self) -> bool {
        !matches!(self, Self::BranchRead)
    }
}

/// Access to one bucket for a key limited to some buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketPermission {
    Read,
    Write,
}

/// One of the Files API's separate rights (the seed Data Bank API's upload/read/delete keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilePermission {
    Upload,
    Read,
    Delete,
}

/// What a route needs from its caller. Every authenticated route declares one (`api::routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// No key at all (health, the root document).
    Public,
    /// The master key.
    Admin,
    /// A `project_admin` key of the path's project: keys, project settings, sharing.
    ProjectAdmin,
    /// Reading tables and buckets (and project facts) in the path's branch.
    Read,
    /// Changing tables and buckets in the path's branch.
    Write,
    /// The Files API: listing, metadata, downloads.
    FileRead,
    /// The Files API: uploads and registrations.
    FileUpload,
    /// The Files API: deletions.
    FileDelete,
    /// The S3 face (ADR 0032): the gate lets it through; the handler authenticates (SigV4 or
    /// a key) and checks the file right each operation needs with `Grant::allows`.
    S3,
    /// `/internal/pgwire/*` (ADR 0033): the master key or PGWIRE_INTERNAL_TOKEN; any other
    /// caller, a valid project key too, is 401.
    PgwireInternal,
}

/// Why a project key is refused on `/internal/pgwire/*`.
pub const INTERNAL_ONLY: &str = "internal routes need the admin API key or PGWIRE_INTERNAL_TOKEN";

/// What a request addresses, from its path: raw segments, compared with the key's own names.
#[derive(Debug, Default, Clone, Copy)]
pub struct Target<'a> {
    pub project: Option<&'a str>,
    /// The path's branch; `None` on routes without one (the seed's paths mean `default`).
    pub branch: Option<&'a str>,
    /// Whether the route lives in a branch at all (buckets, tables); files and jobs do not.
    pub branched: bool,
    pub bucket: Option<&'a str>,
}

/// Everything an API key is allowed, as recorded with the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub project: ProjectId,
    pub scope: KeyScope,
    /// Set exactly for the branch scopes.
    pub branch: Option<BranchId>,
    /// `None`: every bucket. `Some`: only these, with these rights.
    pub buckets: Option<BTreeMap<BucketName, BucketPermission>>,
    /// `None`: every file right the scope has. `Some`: only these.
    pub files: Option<BTreeSet<FilePermission>>,
}

impl Grant {
    /// `Ok` when this key may do what `need` asks on `target`; else 403 saying why.
    pub fn allows(&self, need: Need, target: &Target<'_>) -> ApiResult<()> {
        let scope = self.scope.as_str();
        if matches!(need, Need::Public | Need::S3) {
            return Ok(());
        }
        if need == Need::Admin {
            return Err(ApiError::forbidden(
                "this operation requires the admin API key",
            ));
        }
        if need == Need::PgwireInternal {
            return Err(ApiError::unauthorized(INTERNAL_ONLY));
        }
        if let Some(project) = target.project {
            if project != self.project.as_str() {
                return Err(ApiError::forbidden(format!(
                    "this API key has no access to project '{project}'"
                )));
            }
        }
        if need == Need::ProjectAdmin {
            return match self.scope {
                KeyScope::ProjectAdmin => Ok(()),
                _ => Err(ApiError::forbidden(format!(
                    "this operation requires a project_admin key; this key's scope is {scope}"
                ))),
            };
        }
        if let (true, Some(own)) = (target.branched, &self.branch) {
            let addressed = target
                .branch
                .map_or(Some(BranchId::Default), |b| BranchId::parse(b).ok());
            if addressed.as_ref() != Some(own) {
                return Err(ApiError::forbidden(format!(
                    "this {scope} key is limited to branch '{own}'"
                )));
            }
        }
        let writes = matches!(need, Need::Write | Need::FileUpload | Need::FileDelete);
        if writes && !self.scope.can_write() {
            return Err(ApiError::forbidden(format!(
                "this key's scope is {scope}, which only reads; this operation writes"
            )));
        }
        match need {
            Need::Read | Need::Write => self.allows_bucket(need, target.bucket),
            Need::FileRead => self.allows_file(FilePermission::Read),
            Need::FileUpload => self.allows_file(FilePermission::Upload),
            Need::FileDelete => self.allows_file(FilePermission::Delete),
            Need::Public | Need::S3 | Need::Admin | Need::ProjectAdmin | Need::PgwireInternal => {
                Ok(())
            }
        }
    }

    /// Whether a bucket list shows `bucket` to this key.
    pub fn sees_bucket(&self, bucket: &BucketName) -> bool {
        self.buckets.as_ref().is_none_or(|b| b.contains_key(bucket))
    }

    fn allows_bucket(&self, need: Need, bucket: Option<&str>) -> ApiResult<()> {
        let Some(permitted) = &self.buckets else {
            return Ok(());
        };
        let Some(bucket) = bucket else {
            // The bucket collection: listing is filtered; creating a bucket would reach past
            // the buckets this key was given.
            return match need {
                Need::Write => Err(ApiError::forbidden(
                    "this API key is limited to named buckets and cannot create buckets",
                )),
                _ => Ok(()),
            };
        };
        let granted = BucketName::parse(bucket)
            .ok()
            .and_then(|b| permitted.get(&b).copied());
        match (granted, need) {
            (Some(BucketPermission::Write), _) | (Some(BucketPermission::Read), Need::Read) => {
                Ok(())
            }
            (Some(BucketPermission::Read), _) => Err(ApiError::forbidden(format!(
                "this API key may only read bucket '{bucket}'"
            ))),
            (None, _) => Err(ApiError::forbidden(format!(
                "this API key has no access to bucket '{bucket}'"
            ))),
        }
    }

    fn allows_file(&self, right: FilePermission) -> ApiResult<()> {
        match &self.files {
            Some(rights) if !rights.contains(&right) => Err(ApiError::forbidden(format!(
                "this API key has no '{}' file permission",
                serde_json::to_value(right)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scope: KeyScope) -> Grant {
        Grant {
            project: ProjectId::parse("p1").unwrap(),
            scope,
            branch: scope.is_branch_scoped().then_some(BranchId::Default),
            buckets: None,
            files: None,
        }
    }

    fn on(bucket: Option<&str>) -> Target<'_> {
        Target {
            project: Some("p1"),
            branch: Some("default"),
            branched: true,
            bucket,
        }
    }

    #[test]
    fn scopes_rank_as_the_reference_describes() {
        let admin = grant(KeyScope::ProjectAdmin);
        let writer = grant(KeyScope::BranchAdmin);
        let reader = grant(KeyScope::BranchRead);
        for need in [
            Need::ProjectAdmin,
            Need::Read,
            Need::Write,
            Need::FileDelete,
        ] {
            assert!(admin.allows(need, &on(None)).is_ok(), "{need:?}");
        }
        assert!(writer.allows(Need::Write, &on(Some("b"))).is_ok());
        assert!(writer.allows(Need::ProjectAdmin, &on(None)).is_err());
        assert!(reader.allows(Need::Read, &on(Some("b"))).is_ok());
        assert!(reader.allows(Need::FileRead, &on(None)).is_ok());
        for need in [Need::Write, Need::FileUpload, Need::FileDelete] {
            let refused = reader.allows(need, &on(Some("b"))).unwrap_err();
            assert!(refused.message().contains("branch_read"), "{need:?}");
        }
        for g in [&admin, &writer, &reader] {
            assert!(g.allows(Need::Admin, &on(None)).is_err());
        }
    }

    #[test]
    fn other_projects_and_branches_are_refused() {
        let writer = grant(KeyScope::BranchAdmin);
        let other = Target {
            project: Some("p2"),
            ..on(None)
        };
        assert!(writer.allows(Need::Read, &other).is_err());
        let main_alias = Target {
            branch: Some("main"),
            ..on(None)
        };
        assert!(writer.allows(Need::Read, &main_alias).is_ok());
        let dev = Target {
            branch: Some("dev"),
            ..on(None)
        };
        assert!(writer.allows(Need::Read, &dev).is_err());
        let seed_path = Target {
            branch: None,
            ..on(None)
        };
        assert!(writer.allows(Need::Read, &seed_path).is_ok());
    }

    #[test]
    fn bucket_and_file_permissions_narrow_a_key() {
        let mut g = grant(KeyScope::BranchAdmin);
        g.buckets = Some(BTreeMap::from([
            (BucketName::parse("r").unwrap(), BucketPermission::Read),
            (BucketName::parse("w").unwrap(), BucketPermission::Write),
        ]));
        g.files = Some(BTreeSet::from([FilePermission::Upload]));
        assert!(g.allows(Need::Read, &on(Some("r"))).is_ok());
        assert!(g.allows(Need::Write, &on(Some("r"))).is_err());
        assert!(g.allows(Need::Write, &on(Some("w"))).is_ok());
        assert!(g.allows(Need::Read, &on(Some("x"))).is_err());
        assert!(g.allows(Need::Read, &on(None)).is_ok());
        assert!(g.allows(Need::Write, &on(None)).is_err());
        assert!(g.allows(Need::FileUpload, &on(None)).is_ok());
        assert!(g.allows(Need::FileRead, &on(None)).is_err());
        assert!(g.sees_bucket(&BucketName::parse("w").unwrap()));
        assert!(!g.sees_bucket(&BucketName::parse("x").unwrap()));
    }
}
