//! Catalog writes for projects and their API keys.
//! Deleting a project removes every row that belongs to it or points at it, in one transaction.

use serde_json::Value;

use std::sync::Arc;

use super::api_keys::{insert_key, KeySpec};
use super::{micros, Apply, Catalog, ProjectRecord};
use crate::auth::keys::NewKey;
use crate::auth::scope::{Grant, KeyScope};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::ProjectId;

/// What the key a project is created with says about itself in key listings.
const FIRST_KEY_DESCRIPTION: &str = "Project admin key (created with the project)";

impl Catalog {
    /// Inserts the project and its first (project_admin) key; 409 if the id is taken.
    pub fn create_project(
        &self,
        id: ProjectId,
        name: Option<String>,
        settings: Option<Value>,
        key: &NewKey,
    ) -> ApiResult<ProjectRecord> {
        self.write(|tx, model| {
            if model.project(&id).is_some() {
                return Err(ApiError::new(
                    ErrorCode::ProjectExists,
                    format!("Project '{id}' already exists"),
                ));
            }
            let now = crate::catalog::now();
            let settings_text = settings.as_ref().map(Value::to_string);
            tx.execute(
                "INSERT INTO projects VALUES (?, ?, ?::JSON, 'active', make_timestamp(?), make_timestamp(?))",
                duckdb::params![id.as_str(), name, settings_text, micros(now), micros(now)],
            )?;
            let spec = KeySpec {
                grant: Grant {
                    project: id.clone(),
                    scope: KeyScope::ProjectAdmin,
                    branch: None,
                    buckets: None,
                    files: None,
                },
                description: Some(FIRST_KEY_DESCRIPTION.to_string()),
                expires_at: None,
            };
            let key_record = Arc::new(insert_key(tx, spec, key, now)?);
            let record = ProjectRecord {
                id: id.clone(),
                name,
                settings,
                status: "active".into(),
                created_at: now,
                updated_at: now,
                keys: vec![key_record],
                buckets: Default::default(),
                branches: Default::default(),
            };
            let out = record.clone();
            let apply: Apply = Box::new(move |m| {
                m.projects.insert(id, record);
            });
            Ok((out, apply))
        })
    }

    /// Changes name and/or settings; fields left `None` keep their value.
    pub fn update_project(
        &self,
        id: &ProjectId,
        name: Option<String>,
        settings: Option<Value>,
    ) -> ApiResult<ProjectRecord> {
        self.write(|tx, model| {
            let mut record = model.existing_project(id)?.clone();
            if let Some(name) = name {
                record.name = Some(name);
            }
            if let Some(settings) = settings {
                record.settings = Some(settings);
            }
            record.updated_at = crate::catalog::now();
            tx.execute(
                "UPDATE projects SET name = ?, settings = ?::JSON, updated_at = make_timestamp(?) WHERE id = ?",
                duckdb::params![
                    record.name,
                    record.settings.as_ref().map(Value::to_string),
                    micros(record.updated_at),
                    id.as_str()
                ],
            )?;
            let out = record.clone();
            let id = id.clone();
            let apply: Apply = Box::new(move |m| {
                if let Some(p) = m.projects.get_mut(&id) {
                    p.name = record.name;
                    p.settings = record.settings;
                    p.updated_at = record.updated_at;
                }
            });
            Ok((out, apply))
        })
    }

    /// Removes the project, its keys, buckets, tables, grants, jobs, snapshots, its shares, and other
    /// projects' shares to it: a project created later with the same id starts empty. Links other projects hold to its buckets stay and answer 403 (not live).
    pub fn delete_project(&self, id: &ProjectId) -> ApiResult<ProjectRecord> {
        self.write(|tx, model| {
            let record = model.existing_project(id)?.clone();
            let p = id.as_str();
            tx.execute("DELETE FROM api_keys WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM tables WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM buckets WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM readonly_grants WHERE project_id = ?", [p])?;
            tx.execute(
                "DELETE FROM bucket_shares WHERE project_id = ? OR target_project_id = ?",
                [p, p],
            )?;
            tx.execute("DELETE FROM files WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM file_uploads WHERE project_id = ?", [p])?;
            tx.execute(
                "DELETE FROM upload_chunks WHERE session_id IN (SELECT id FROM upload_sessions WHERE project_id = ?)",
                [p],
            )?;
            tx.execute("DELETE FROM upload_sessions WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM jobs WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM snapshots WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM branch_tables WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM workspaces WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM s3_credentials WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM s3_multipart WHERE project_id = ?", [p])?;
            tx.execute(
                "DELETE FROM s3_etags WHERE file_id IN (SELECT id FROM files WHERE project_id = ?)",
                [p],
            )?;
            tx.execute("DELETE FROM branches WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM snapshot_settings WHERE project_id = ?", [p])?;
            tx.execute("DELETE FROM projects WHERE id = ?", [p])?;
            let id = id.clone();
            let apply: Apply = Box::new(move |m| {
                m.projects.remove(&id);
                for project in m.projects.values_mut() {
                    for bucket in project.buckets.values_mut() {
                        bucket.shared_with.remove(&id);
                    }
                }
            });
            Ok((record, apply))
        })
    }
}
