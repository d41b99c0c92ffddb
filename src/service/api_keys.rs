//! API keys of a project: issue (scoped, optionally narrowed to buckets and file rights),
//! list, revoke and rotate. The clear key leaves this module once, in the create/rotate answer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Duration;

use super::blocking;
use crate::auth::keys::generate_key;
use crate::auth::scope::{BucketPermission, FilePermission, Grant, KeyScope};
use crate::catalog::api_keys::{existing_key, KeySpec};
use crate::catalog::KeyRecord;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BranchId, BucketName, ProjectId};
use crate::state::AppState;

/// A key to issue, as the client asked for it (validated by `create`).
pub struct KeyRequest {
    pub description: String,
    pub scope: KeyScope,
    pub branch: Option<String>,
    pub expires_in_days: Option<i64>,
    pub buckets: Option<BTreeMap<BucketName, BucketPermission>>,
    pub files: Option<BTreeSet<FilePermission>>,
}

/// Longest key lifetime the reference allows, in days.
const MAX_LIFETIME_DAYS: i64 = 365;

/// Issues a key; returns its record and the clear key (shown once).
pub async fn create(
    state: &AppState,
    project: ProjectId,
    req: KeyRequest,
) -> ApiResult<(Arc<KeyRecord>, String)> {
    state
        .catalog
        .read(|m| m.existing_project(&project).map(|_| ()))?;
    let branch = match (req.scope, req.branch.as_deref()) {
        (KeyScope::ProjectAdmin, Some(_)) => {
            return Err(invalid("branch_id must be null for project_admin keys"))
        }
        (KeyScope::ProjectAdmin, None) => None,
        (scope, None) => {
            return Err(invalid(format!(
                "branch_id is required for {} keys",
                scope.as_str()
            )))
        }
        (_, Some(branch)) => Some(BranchId::parse(branch)?),
    };
    if let Some(dev) = branch.as_ref().and_then(BranchId::dev) {
        let known = state.catalog.read(|m| {
            m.project(&project)
                .is_some_and(|p| p.branches.contains_key(dev))
        });
        if !known {
            return Err(crate::catalog::branches::branch_not_found(dev.as_str()));
        }
    }
    if req.scope == KeyScope::ProjectAdmin && (req.buckets.is_some() || req.files.is_some()) {
        // A project_admin key manages keys: it could issue itself an unlimited one.
        return Err(invalid(
            "bucket_permissions and file_permissions apply to branch_admin and branch_read keys; \
             a project_admin key can issue keys and so cannot be limited",
        ));
    }
    let expires_at = match req.expires_in_days {
        None => None,
        Some(days) if (1..=MAX_LIFETIME_DAYS).contains(&days) => {
            Some(crate::catalog::now() + Duration::days(days))
        }
        Some(days) => {
            return Err(ApiError::unprocessable(format!(
                "expires_in_days must be between 1 and {MAX_LIFETIME_DAYS}, got {days}"
            )))
        }
    };
    let spec = KeySpec {
        grant: Grant {
            project,
            scope: req.scope,
            branch,
            buckets: req.buckets,
            files: req.files,
        },
        description: Some(req.description),
        expires_at,
    };
    let catalog = state.catalog.clone();
    blocking(move || {
        let key = generate_key(&spec.grant.project, spec.grant.scope, spec.grant.branch.clone());
        let record = catalog.create_key(spec, &key)?;
        tracing::info!(project = %record.grant.project, key_id = %record.id, key_prefix = %key.prefix, scope = record.grant.scope.as_str(), "API key created");
        Ok((record, key.clear))
    })
    .await
}

/// The project's keys that are not revoked, newest first.
pub fn list(state: &AppState, project: &ProjectId) -> ApiResult<Vec<Arc<KeyRecord>>> {
    state.catalog.read(|m| {
        let mut keys: Vec<_> = m
            .existing_project(project)?
            .keys
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .cloned()
            .collect();
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(keys)
    })
}

/// One key of the project, revoked ones too.
pub fn get(state: &AppState, project: &ProjectId, key_id: &str) -> ApiResult<Arc<KeyRecord>> {
    state
        .catalog
        .read(|m| existing_key(m, project, key_id).cloned())
}

/// Revokes a key; it stops working at once (the verified-key cache reads the record).
pub async fn revoke(state: &AppState, project: ProjectId, key_id: String) -> ApiResult<()> {
    let catalog = state.catalog.clone();
    blocking(move || {
        catalog.revoke_key(&project, &key_id)?;
        tracing::info!(project = %project, key_id, "API key revoked");
        Ok(())
    })
    .await
}

/// Replaces a key by a new one with the same grant; the old one stops working at once.
pub async fn rotate(
    state: &AppState,
    project: ProjectId,
    key_id: String,
) -> ApiResult<(Arc<KeyRecord>, String)> {
    let old = get(state, &project, &key_id)?;
    let catalog = state.catalog.clone();
    blocking(move || {
        let key = generate_key(&project, old.grant.scope, old.grant.branch.clone());
        let record = catalog.rotate_key(&project, &key_id, &key)?;
        tracing::info!(project = %project, old_key_id = key_id, key_id = %record.id, "API key rotated");
        Ok((record, key.clear))
    })
    .await
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}
