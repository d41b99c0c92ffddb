//! Reads every catalog table into the in-memory model at start-up.
//! Rows that fail validation are skipped with a warning instead of stopping the server.

use std::collections::BTreeMap;

use duckdb::Connection;

use super::from_micros;
use super::model::*;
use crate::error::ApiResult;
use crate::names::{BucketName, ColumnName, ProjectId, TableName};

pub fn load_model(conn: &Connection) -> ApiResult<Model> {
    let mut model = Model::default();

    let mut stmt = conn.prepare(
        "SELECT id, name, settings::VARCHAR, status, epoch_us(created_at), epoch_us(updated_at) FROM projects",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    for row in rows {
        let (id, name, settings, status, created, updated) = row?;
        let Ok(id) = ProjectId::parse(&id) else {
            tracing::warn!(id, "skipping catalog project with an invalid id");
            continue;
        };
        let settings = settings.and_then(|s| serde_json::from_str(&s).ok());
        model.projects.insert(
            id.clone(),
            ProjectRecord {
                id,
                name,
                settings,
                status,
                created_at: from_micros(created)?,
                updated_at: from_micros(updated)?,
                keys: Vec::new(),
                buckets: BTreeMap::new(),
            },
        );
    }

    let mut stmt = conn.prepare(
        "SELECT id, project_id, scope, prefix, hash, epoch_us(created_at) FROM api_keys WHERE revoked_at IS NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    for row in rows {
        let (id, project, scope, prefix, hash, created) = row?;
        if let Some(p) = project_mut(&mut model, &project) {
            p.keys.push(KeyRecord {
                id,
                scope,
                prefix,
                hash,
                created_at: from_micros(created)?,
            });
        }
    }

    let mut stmt = conn.prepare(
        "SELECT project_id, name, description, epoch_us(created_at), linked_project_id, linked_bucket FROM buckets",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })?;
    for row in rows {
        let (project, name, description, created, linked_project, linked_bucket) = row?;
        let Ok(name) = BucketName::parse(&name) else {
            tracing::warn!(
                project,
                name,
                "skipping catalog bucket with an invalid name"
            );
            continue;
        };
        let link = match (linked_project, linked_bucket) {
            (Some(p), Some(b)) => match (ProjectId::parse(&p), BucketName::parse(&b)) {
                (Ok(source_project), Ok(source_bucket)) => Some(BucketLink {
                    source_project,
                    source_bucket,
                }),
                _ => continue,
            },
            _ => None,
        };
        let created_at = from_micros(created)?;
        if let Some(p) = project_mut(&mut model, &project) {
            p.buckets.insert(
                name.clone(),
                BucketRecord {
                    name,
                    description,
                    created_at,
                    link,
                    readonly: false,
                    shared_with: Default::default(),
                    tables: BTreeMap::new(),
                },
            );
        }
    }

    let mut stmt = conn.prepare(
        "SELECT project_id, bucket, name, primary_key::VARCHAR, epoch_us(created_at) FROM tables",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    for row in rows {
        let (project, bucket, name, pk, created) = row?;
        let Some(b) = bucket_mut(&mut model, &project, &bucket) else {
            continue;
        };
        let Ok(name) = TableName::parse(&name) else {
            tracing::warn!(
                project,
                bucket,
                name,
                "skipping catalog table with an invalid name"
            );
            continue;
        };
        let pk: Vec<String> = serde_json::from_str(&pk).unwrap_or_default();
        let primary_key = pk
            .iter()
            .filter_map(|c| ColumnName::parse(c).ok())
            .collect();
        b.tables.insert(
            name.clone(),
            TableRecord {
                name,
                primary_key,
                created_at: from_micros(created)?,
            },
        );
    }

    let mut stmt =
        conn.prepare("SELECT project_id, bucket, target_project_id FROM bucket_shares")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (project, bucket, target) = row?;
        if let (Some(b), Ok(target)) = (
            bucket_mut(&mut model, &project, &bucket),
            ProjectId::parse(&target),
        ) {
            b.shared_with.insert(target);
        }
    }

    let mut stmt = conn.prepare("SELECT project_id, bucket FROM readonly_grants")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (project, bucket) = row?;
        if let Some(b) = bucket_mut(&mut model, &project, &bucket) {
            b.readonly = true;
        }
    }
    Ok(model)
}

fn project_mut<'m>(model: &'m mut Model, id: &str) -> Option<&'m mut ProjectRecord> {
    model.projects.get_mut(&ProjectId::parse(id).ok()?)
}

fn bucket_mut<'m>(
    model: &'m mut Model,
    project: &str,
    bucket: &str,
) -> Option<&'m mut BucketRecord> {
    let project = ProjectId::parse(project).ok()?;
    let bucket = BucketName::parse(bucket).ok()?;
    model.bucket_mut(&project, &bucket)
}
