//! Reads every catalog table into the in-memory model at start-up.
//! Rows that fail validation are skipped with a warning and counted, instead of stopping the
//! server; start-up then knows the model is incomplete (and moves no unknown file aside).

use std::collections::BTreeMap;

use duckdb::{Connection, Row};

use super::from_micros;
use super::model::*;
use crate::auth::scope::{Grant, KeyScope};
use crate::error::ApiResult;
use crate::names::{BranchId, BucketName, ColumnName, DevBranchId, ProjectId, TableName};

/// `projects`: id, name, settings, status, created and updated (µs).
type ProjectRow = (String, Option<String>, Option<String>, String, i64, i64);
/// `buckets`: project, name, description, created (µs), linked project and bucket.
type BucketRow = (
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
);

/// Catalog rows the load could not take into the model, per catalog table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped(BTreeMap<&'static str, usize>);

impl Skipped {
    fn add(&mut self, table: &'static str) {
        *self.0.entry(table).or_default() += 1;
    }

    /// Rows skipped in all catalog tables together.
    pub fn total(&self) -> usize {
        self.0.values().sum()
    }
}

impl std::fmt::Display for Skipped {
    /// `projects: 1, tables: 2`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(t, n)| format!("{t}: {n}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// `api_keys`: id, project, branch, scope, prefix, hash, description, created, expires, revoked
/// and last used (µs), bucket and file permissions (JSON).
type KeyRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// A key row as a model record of its (existing) project, or why it cannot be one.
fn key_record(row: KeyRow, model: &Model) -> Result<(ProjectId, KeyRecord), &'static str> {
    let (
        id,
        project,
        branch,
        scope,
        prefix,
        hash,
        description,
        created,
        expires,
        revoked,
        used,
        buckets,
        files,
    ) = row;
    let project = ProjectId::parse(&project).map_err(|_| "invalid project id")?;
    if model.project(&project).is_none() {
        return Err("its project is unknown");
    }
    let scope = KeyScope::parse(&scope).ok_or("unknown scope")?;
    let branch = branch
        .map(|b| BranchId::parse(&b))
        .transpose()
        .map_err(|_| "unknown branch")?;
    let buckets = buckets
        .map(|b| serde_json::from_str(&b))
        .transpose()
        .map_err(|_| "unreadable bucket_permissions")?;
    let files = files
        .map(|f| serde_json::from_str(&f))
        .transpose()
        .map_err(|_| "unreadable file_permissions")?;
    let time = |us: i64| from_micros(us).map_err(|_| "timestamp out of range");
    let record = KeyRecord {
        id,
        grant: Grant {
            project: project.clone(),
            scope,
            branch,
            buckets,
            files,
        },
        prefix,
        hash,
        description,
        created_at: time(created)?,
        expires_at: expires.map(time).transpose()?,
        revoked_at: revoked.map(time).transpose()?,
        last_used_at: used.map(time).transpose()?,
    };
    Ok((project, record))
}

/// `tables`: project, bucket, name, primary key, created (µs), then the recorded figures
/// (columns, rows, bytes, updated (µs), file stamp), NULL for tables never recorded.
type TableRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    i64,
);

/// `branches`: project, id, name, description, created (µs), created by.
type BranchRow = (String, String, String, Option<String>, i64, Option<String>);
/// `branch_tables`: project, branch, bucket, table, kind, base version, changed (µs).
type BranchTableRow = (String, String, String, String, String, Option<i64>, i64);

/// The model, and the rows that did not make it into it. A row is skipped when it fails
/// validation (a name rule tightened later) or its parent row was skipped or is missing.
pub fn load_model(conn: &Connection) -> ApiResult<(Model, Skipped)> {
    let mut model = Model::default();
    let mut skipped = Skipped::default();

    let projects: Vec<ProjectRow> = read_rows(
        conn,
        "SELECT id, name, settings::VARCHAR, status, epoch_us(created_at), epoch_us(updated_at) FROM projects",
    )?;
    for (id, name, settings, status, created, updated) in projects {
        let Ok(id) = ProjectId::parse(&id) else {
            tracing::warn!(id, "skipping catalog project with an invalid id");
            skipped.add("projects");
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
                branches: BTreeMap::new(),
            },
        );
    }

    let keys: Vec<KeyRow> = read_rows(
        conn,
        "SELECT id, project_id, branch_id, scope, prefix, hash, description, epoch_us(created_at), \
         epoch_us(expires_at), epoch_us(revoked_at), epoch_us(last_used_at), \
         bucket_permissions::VARCHAR, file_permissions::VARCHAR FROM api_keys",
    )?;
    for row in keys {
        let id = row.0.clone();
        match key_record(row, &model) {
            Ok((project, record)) => {
                if let Some(p) = project_mut(&mut model, project.as_str()) {
                    p.keys.push(std::sync::Arc::new(record));
                }
            }
            Err(why) => {
                tracing::warn!(key = id, why, "skipping an API key");
                skipped.add("api_keys");
            }
        }
    }

    let buckets: Vec<BucketRow> = read_rows(
        conn,
        "SELECT project_id, name, description, epoch_us(created_at), linked_project_id, linked_bucket FROM buckets",
    )?;
    for (project, name, description, created, linked_project, linked_bucket) in buckets {
        let Ok(name) = BucketName::parse(&name) else {
            tracing::warn!(
                project,
                name,
                "skipping catalog bucket with an invalid name"
            );
            skipped.add("buckets");
            continue;
        };
        let link = match (linked_project, linked_bucket) {
            (Some(p), Some(b)) => match (ProjectId::parse(&p), BucketName::parse(&b)) {
                (Ok(source_project), Ok(source_bucket)) => Some(BucketLink {
                    source_project,
                    source_bucket,
                }),
                _ => {
                    tracing::warn!(project, %name, "skipping catalog bucket with an invalid link");
                    skipped.add("buckets");
                    continue;
                }
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
        } else {
            tracing::warn!(project, %name, "skipping a catalog bucket of an unknown project");
            skipped.add("buckets");
        }
    }

    let tables: Vec<TableRow> = read_rows(
        conn,
        "SELECT project_id, bucket, name, primary_key::VARCHAR, epoch_us(created_at), \
         columns::VARCHAR, row_count, size_bytes, epoch_us(updated_at), file_stamp, \
         coalesce(version, 0) FROM tables",
    )?;
    for (project, bucket, name, pk, created, columns, rows, size, updated, stamp, version) in tables
    {
        let Some(b) = bucket_mut(&mut model, &project, &bucket) else {
            tracing::warn!(
                project,
                bucket,
                name,
                "skipping a catalog table of an unknown bucket"
            );
            skipped.add("tables");
            continue;
        };
        let Ok(name) = TableName::parse(&name) else {
            tracing::warn!(
                project,
                bucket,
                name,
                "skipping catalog table with an invalid name"
            );
            skipped.add("tables");
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
                stats: table_stats(columns, rows, size, updated, stamp),
                version: version.max(0) as u64,
            },
        );
    }
    load_branches(conn, &mut model, &mut skipped)?;

    let shares: Vec<(String, String, String)> = read_rows(
        conn,
        "SELECT project_id, bucket, target_project_id FROM bucket_shares",
    )?;
    for (project, bucket, target) in shares {
        if let (Some(b), Ok(target)) = (
            bucket_mut(&mut model, &project, &bucket),
            ProjectId::parse(&target),
        ) {
            b.shared_with.insert(target);
        } else {
            tracing::warn!(
                project,
                bucket,
                target,
                "skipping a catalog share that names no bucket or target"
            );
            skipped.add("bucket_shares");
        }
    }

    let grants: Vec<(String, String)> =
        read_rows(conn, "SELECT project_id, bucket FROM readonly_grants")?;
    for (project, bucket) in grants {
        if let Some(b) = bucket_mut(&mut model, &project, &bucket) {
            b.readonly = true;
        } else {
            tracing::warn!(
                project,
                bucket,
                "skipping a read-only grant of an unknown bucket"
            );
            skipped.add("readonly_grants");
        }
    }
    Ok((model, skipped))
}

/// The recorded figures of a table, when all are present and readable; otherwise the table
/// is read again from its file the first time it is listed.
fn table_stats(
    columns: Option<String>,
    rows: Option<i64>,
    size: Option<i64>,
    updated: Option<i64>,
    stamp: Option<String>,
) -> Option<TableStats> {
    let columns: Vec<StoredColumn> = serde_json::from_str(&columns?).ok()?;
    Some(TableStats {
        columns: std::sync::Arc::new(columns),
        row_count: u64::try_from(rows?).ok()?,
        size_bytes: u64::try_from(size?).ok()?,
        updated_at: from_micros(updated?).ok()?,
        file_stamp: stamp?,
    })
}

/// Every row of `sql`, each read as the tuple `T` (one element per selected column).
fn read_rows<T>(conn: &Connection, sql: &str) -> ApiResult<Vec<T>>
where
    T: for<'r> TryFrom<&'r Row<'r>, Error = duckdb::Error>,
{
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| T::try_from(r))?;
    Ok(rows.collect::<duckdb::Result<Vec<T>>>()?)
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

/// Dev branches and what each differs from main in (ADR 0031).
fn load_branches(conn: &Connection, model: &mut Model, skipped: &mut Skipped) -> ApiResult<()> {
    let branches: Vec<BranchRow> = read_rows(
        conn,
        "SELECT project_id, id, name, description, epoch_us(created_at), created_by FROM branches",
    )?;
    for (project, id, name, description, created, created_by) in branches {
        let parsed = (ProjectId::parse(&project), DevBranchId::parse(&id));
        let (Ok(project_id), Ok(id)) = parsed else {
            tracing::warn!(project, id, "skipping a catalog branch with an invalid id");
            skipped.add("branches");
            continue;
        };
        let Some(p) = model.projects.get_mut(&project_id) else {
            tracing::warn!(project, %id, "skipping a catalog branch of an unknown project");
            skipped.add("branches");
            continue;
        };
        p.branches.insert(
            id.clone(),
            BranchRecord {
                id,
                name,
                description,
                created_at: from_micros(created)?,
                created_by,
                tables: BTreeMap::new(),
            },
        );
    }
    let tables: Vec<BranchTableRow> = read_rows(
        conn,
        "SELECT project_id, branch_id, bucket, name, kind, base_version, epoch_us(changed_at) \
         FROM branch_tables",
    )?;
    for (project, branch, bucket, name, kind, base, changed) in tables {
        let branch_record = ProjectId::parse(&project)
            .ok()
            .zip(DevBranchId::parse(&branch).ok())
            .and_then(|(p, b)| model.projects.get_mut(&p)?.branches.get_mut(&b));
        let names = BucketName::parse(&bucket)
            .ok()
            .zip(TableName::parse(&name).ok());
        let (Some(record), Some(names), Some(kind)) =
            (branch_record, names, BranchTableKind::parse(&kind))
        else {
            tracing::warn!(
                project,
                branch,
                bucket,
                name,
                "skipping an unreadable catalog branch table"
            );
            skipped.add("branch_tables");
            continue;
        };
        record.tables.insert(
            names,
            BranchTable {
                kind,
                base_version: base.map(|v| v.max(0) as u64),
                changed_at: from_micros(changed)?,
            },
        );
    }
    Ok(())
}
