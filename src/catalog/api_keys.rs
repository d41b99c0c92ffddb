//! Catalog writes for API keys: issue, revoke, rotate, and the batched `last_used_at` updates.
//! A project always keeps one active project_admin key: the last one cannot be revoked.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use duckdb::Transaction;
use serde_json::json;

use super::{micros, Apply, Catalog, KeyRecord, Model};
use crate::auth::keys::NewKey;
use crate::auth::scope::{Grant, KeyScope};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::ProjectId;

/// What a new key record holds besides its secret.
pub struct KeySpec {
    pub grant: Grant,
    pub description: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Catalog {
    /// Records a new key of an existing project.
    pub fn create_key(&self, spec: KeySpec, key: &NewKey) -> ApiResult<Arc<KeyRecord>> {
        self.write(|tx, model| {
            model.existing_project(&spec.grant.project)?;
            let record = Arc::new(insert_key(tx, spec, key, super::now())?);
            Ok((record.clone(), add_to_model(record)))
        })
    }

    /// Revokes a key (again: no change). 404 for a key the project does not have; 400 when it
    /// is the project's last active project_admin key.
    pub fn revoke_key(&self, project: &ProjectId, key_id: &str) -> ApiResult<()> {
        self.write(|tx, model| {
            let now = super::now();
            let key = existing_key(model, project, key_id)?;
            if key.revoked_at.is_some() {
                return Ok(((), super::no_model_change()));
            }
            if key.grant.scope == KeyScope::ProjectAdmin && key.is_active(now) {
                let active = active_admin_keys(model, project, now);
                if active <= 1 {
                    return Err(ApiError::new(
                        ErrorCode::CannotRevokeLastAdminKey,
                        "Cannot revoke the last active project_admin key; create another project_admin key first",
                    )
                    .with_details(json!({ "active_project_admin_keys": active })));
                }
            }
            Ok(((), revoke(tx, key, now)?))
        })
    }

    /// Revokes `key_id` and issues `new` in its place, in one transaction: same scope,
    /// branch and permissions, "<old> (rotated)", the same lifetime counted from now.
    pub fn rotate_key(
        &self,
        project: &ProjectId,
        key_id: &str,
        new: &NewKey,
    ) -> ApiResult<Arc<KeyRecord>> {
        self.write(|tx, model| {
            let now = super::now();
            let old = existing_key(model, project, key_id)?;
            if old.revoked_at.is_some() {
                return Err(ApiError::new(
                    ErrorCode::CannotRotateRevokedKey,
                    format!("API key '{key_id}' is revoked and cannot be rotated"),
                ));
            }
            let spec = KeySpec {
                grant: old.grant.clone(),
                description: Some(format!(
                    "{} (rotated)",
                    old.description.as_deref().unwrap_or("")
                )),
                expires_at: old.expires_at.map(|at| now + (at - old.created_at)),
            };
            let revoked = revoke(tx, old, now)?;
            let record = Arc::new(insert_key(tx, spec, new, now)?);
            let added = add_to_model(record.clone());
            let apply: Apply = Box::new(move |m| {
                revoked(m);
                added(m);
            });
            Ok((record, apply))
        })
    }

    /// Writes the newest use of each key in one transaction (keys gone since are skipped).
    pub fn record_key_use(&self, uses: &[(ProjectId, String, DateTime<Utc>)]) -> ApiResult<()> {
        self.write(|tx, _| {
            let mut stmt = tx.prepare(
                "UPDATE api_keys SET last_used_at = make_timestamp(?) \
                 WHERE id = ? AND (last_used_at IS NULL OR last_used_at < make_timestamp(?))",
            )?;
            for (_, id, at) in uses {
                stmt.execute(duckdb::params![micros(*at), id, micros(*at)])?;
            }
            let uses = uses.to_vec();
            let apply: Apply = Box::new(move |m| {
                for (project, id, at) in uses {
                    update_key(m, &project, &id, |k| {
                        if k.last_used_at.is_none_or(|t| t < at) {
                            k.last_used_at = Some(at);
                        }
                    });
                }
            });
            Ok(((), apply))
        })
    }
}

/// The project's key `key_id`, or 404 `api_key_not_found` (also for another project's key).
pub fn existing_key<'m>(
    model: &'m Model,
    project: &ProjectId,
    key_id: &str,
) -> ApiResult<&'m Arc<KeyRecord>> {
    model
        .existing_project(project)?
        .keys
        .iter()
        .find(|k| k.id == key_id)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ApiKeyNotFound,
                format!("API key '{key_id}' not found in project '{project}'"),
            )
        })
}

fn active_admin_keys(model: &Model, project: &ProjectId, now: DateTime<Utc>) -> usize {
    model.project(project).map_or(0, |p| {
        p.keys
            .iter()
            .filter(|k| k.grant.scope == KeyScope::ProjectAdmin && k.is_active(now))
            .count()
    })
}

/// Inserts the row of a new key; the record to add to the model once committed.
pub(super) fn insert_key(
    tx: &Transaction<'_>,
    spec: KeySpec,
    key: &NewKey,
    now: DateTime<Utc>,
) -> ApiResult<KeyRecord> {
    let record = KeyRecord {
        id: uuid::Uuid::new_v4().to_string(),
        grant: spec.grant,
        prefix: key.prefix.clone(),
        hash: key.hash.clone(),
        description: spec.description,
        created_at: now,
        expires_at: spec.expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    let grant = &record.grant;
    let json = |v: serde_json::Result<String>| {
        v.map_err(|e| ApiError::internal(format!("cannot encode key permissions: {e}")))
    };
    let buckets = grant
        .buckets
        .as_ref()
        .map(|b| json(serde_json::to_string(b)))
        .transpose()?;
    let files = grant
        .files
        .as_ref()
        .map(|f| json(serde_json::to_string(f)))
        .transpose()?;
    tx.execute(
        "INSERT INTO api_keys (id, project_id, branch_id, scope, prefix, hash, description, \
         created_at, expires_at, bucket_permissions, file_permissions) \
         VALUES (?, ?, ?, ?, ?, ?, ?, make_timestamp(?), make_timestamp(?), ?::JSON, ?::JSON)",
        duckdb::params![
            record.id,
            grant.project.as_str(),
            grant.branch.as_ref().map(|b| b.as_str()),
            grant.scope.as_str(),
            record.prefix,
            record.hash,
            record.description,
            micros(now),
            record.expires_at.map(micros),
            buckets,
            files,
        ],
    )?;
    Ok(record)
}

fn add_to_model(record: Arc<KeyRecord>) -> Apply {
    Box::new(move |m| {
        if let Some(p) = m.projects.get_mut(&record.grant.project) {
            p.keys.push(record);
        }
    })
}

fn revoke(tx: &Transaction<'_>, key: &KeyRecord, now: DateTime<Utc>) -> ApiResult<Apply> {
    tx.execute(
        "UPDATE api_keys SET revoked_at = make_timestamp(?) WHERE id = ?",
        duckdb::params![micros(now), key.id],
    )?;
    let (project, id) = (key.grant.project.clone(), key.id.clone());
    Ok(Box::new(move |m| {
        update_key(m, &project, &id, |k| k.revoked_at = Some(now));
    }))
}

/// Changes one key record in the model (records are shared: copy on write).
fn update_key(
    model: &mut Model,
    project: &ProjectId,
    id: &str,
    change: impl FnOnce(&mut KeyRecord),
) {
    let key = model
        .projects
        .get_mut(project)
        .and_then(|p| p.keys.iter_mut().find(|k| k.id == id));
    if let Some(key) = key {
        change(Arc::make_mut(key));
    }
}
