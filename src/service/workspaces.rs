//! Workspaces (ADR 0033): create, list, inspect, clear, load, reset credentials and query.
//! Combines the catalog rows, the workspace databases and the table engine; every DuckDB call
//! runs on a blocking thread, and client SQL runs under the statement timeout.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::catalog::workspaces::WorkspaceRecord;
use crate::engine::filter::Filter;
use crate::engine::{find_column, quote_ident, TableKey};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::{BranchId, BucketName, ProjectId, TableName};
use crate::state::AppState;
use crate::workspace::query::{self, ResultSet, SizeCheck};
use crate::workspace::scram::ScramSecret;
use crate::workspace::{Session, Source};

use super::blocking;

/// What `POST …/workspaces` accepts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub name: String,
    pub ttl_hours: Option<i64>,
    pub size_limit_gb: Option<i64>,
    pub preload_tables: Option<Vec<String>>,
}

/// One table of a `load` request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadTable {
    /// `bucket.table` (the bucket name may itself contain dots: the last dot splits).
    pub source: String,
    pub destination: Option<String>,
    pub columns: Option<Vec<String>>,
    #[serde(rename = "where")]
    pub where_clause: Option<String>,
}

/// A new workspace's id: `ws_` and 16 random alphanumerics (also its wire user and database).
fn new_id() -> String {
    format!(
        "ws_{}",
        Alphanumeric
            .sample_string(&mut rand::thread_rng(), 16)
            .to_ascii_lowercase()
    )
}

fn new_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

/// The tables a workspace of `project` in `branch` reads: its own buckets' tables and live
/// links', as the branch sees them (its own copies and tables instead of main's, ADR 0031).
pub fn sources(state: &AppState, project: &ProjectId, branch: &str) -> Vec<Source> {
    let dev = match BranchId::parse(branch) {
        Ok(BranchId::Dev(id)) => Some(id),
        _ => None,
    };
    let keys: Vec<(String, String, TableKey)> = state.catalog.read(|m| {
        let Some(p) = m.project(project) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, bucket) in &p.buckets {
            let (owner, record) = match &bucket.link {
                None => (project, bucket),
                Some(link) if m.link_is_live(project, link) => {
                    match m.bucket(&link.source_project, &link.source_bucket) {
                        Some(b) => (&link.source_project, b),
                        None => continue,
                    }
                }
                Some(_) => continue,
            };
            for table in record.tables.keys() {
                out.push((
                    name.to_string(),
                    table.to_string(),
                    TableKey::new(owner, &record.name, table),
                ));
            }
        }
        if let Some(own) = dev.as_ref().and_then(|d| p.branches.get(d)) {
            for ((bucket, table), standing) in &own.tables {
                out.retain(|(b, t, _)| {
                    (b.as_str(), t.as_str()) != (bucket.as_str(), table.as_str())
                });
                if standing.kind != crate::catalog::BranchTableKind::Deleted {
                    let key = TableKey::in_branch(project, &own.id, bucket, table);
                    out.push((bucket.to_string(), table.to_string(), key));
                }
            }
        }
        out
    });
    keys.into_iter()
        .map(|(bucket, table, key)| Source {
            bucket,
            table,
            path: state.engine.table_path(&key),
            stamp: state.engine.file_stamp(&key),
            key,
        })
        .collect()
}

/// The record, or 410 `workspace_expired` when it is past its expiry.
pub fn live(state: &AppState, project: &ProjectId, id: &str) -> ApiResult<WorkspaceRecord> {
    let record = state.catalog.workspace(project.as_str(), id)?;
    if record.expired(crate::catalog::now()) {
        return Err(expired(&record));
    }
    Ok(record)
}

fn expired(record: &WorkspaceRecord) -> ApiError {
    ApiError::new(
        ErrorCode::WorkspaceExpired,
        format!(
            "Workspace '{}' expired at {}",
            record.id,
            record
                .expires_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()
        ),
    )
}

/// Connection details; `password` only right after create or reset.
pub fn connection(state: &AppState, record: &WorkspaceRecord, password: Option<&str>) -> Value {
    let host = match state.config.host.as_str() {
        "0.0.0.0" | "::" => "127.0.0.1",
        h => h,
    };
    let port = state.config.pgwire_port;
    // With a certificate configured, clients are told to use TLS (plain ones still work).
    let tls = state.config.wire_tls_cert().is_some() && state.config.wire_tls_key().is_some();
    let (ssl_mode, query) = if tls {
        ("require", "?sslmode=require")
    } else {
        ("disable", "")
    };
    let mut conn = json!({
        "host": host,
        "port": port,
        "database": record.id,
        "username": record.id,
        "ssl_mode": ssl_mode,
    });
    let user = match password {
        Some(p) => {
            conn["password"] = json!(p);
            format!("{}:{p}", record.id)
        }
        None => record.id.clone(),
    };
    conn["connection_string"] = json!(format!(
        "postgresql://{user}@{host}:{port}/{}{query}",
        record.id
    ));
    conn
}

/// The list and detail shape (the reference's `WorkspaceResponse`).
pub fn summary(state: &AppState, record: &WorkspaceRecord, now: DateTime<Utc>) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "project_id": record.project,
        "branch_id": record.branch,
        "created_at": record.created_at.to_rfc3339(),
        "expires_at": record.expires_at.map(|t| t.to_rfc3339()),
        "size_bytes": state.workspaces.size_bytes(&record.project, &record.id),
        "size_limit_gb": record.size_limit_gb,
        "status": if record.expired(now) { "expired" } else { "active" },
        "connection": connection(state, record, None),
    })
}

/// Creates the workspace file and its record; returns the record and its password.
pub async fn create(
    state: &AppState,
    project: &ProjectId,
    branch: &str,
    body: CreateBody,
) -> ApiResult<(WorkspaceRecord, String)> {
    let name = body.name.trim().to_string();
    if name.is_empty() || name.len() > 255 {
        return Err(ApiError::unprocessable("name must be 1 to 255 characters"));
    }
    let ttl = body.ttl_hours;
    if ttl.is_some_and(|h| !(1..=168).contains(&h)) {
        return Err(ApiError::unprocessable(
            "ttl_hours must be between 1 and 168",
        ));
    }
    let size = body.size_limit_gb.unwrap_or(10);
    if !(1..=100).contains(&size) {
        return Err(ApiError::unprocessable(
            "size_limit_gb must be between 1 and 100",
        ));
    }
    state
        .catalog
        .read(|m| m.existing_project(project).map(|_| ()))?;
    let now = crate::catalog::now();
    let password = new_password();
    let record = WorkspaceRecord {
        id: new_id(),
        project: project.to_string(),
        branch: branch.to_string(),
        name,
        created_at: now,
        expires_at: ttl.map(|h| now + chrono::Duration::hours(h)),
        size_limit_gb: size as u32,
        secret: ScramSecret::derive(&password),
    };
    let (s, r) = (state.clone(), record.clone());
    blocking(move || {
        s.workspaces.create(&r.project, &r.id)?;
        if let Err(e) = s.catalog.insert_workspace(&r) {
            let _ = s.workspaces.remove(&r.project, &r.id);
            return Err(e);
        }
        Ok(())
    })
    .await?;
    if let Some(tables) = body.preload_tables.filter(|t| !t.is_empty()) {
        let tables = tables
            .into_iter()
            .map(|source| LoadTable {
                source,
                destination: None,
                columns: None,
                where_clause: None,
            })
            .collect();
        if let Err(e) = load(state, project, &record.id, tables).await {
            let _ = delete(state, project, &record.id).await;
            return Err(e);
        }
    }
    Ok((record, password))
}

/// Removes the workspace: record first, so nobody opens it again, then its files.
pub async fn delete(state: &AppState, project: &ProjectId, id: &str) -> ApiResult<()> {
    let (s, p, id) = (state.clone(), project.to_string(), id.to_string());
    blocking(move || {
        s.catalog.workspace(&p, &id)?;
        s.catalog.delete_workspace(&p, &id)?;
        s.workspaces.remove(&p, &id)
    })
    .await
}

/// Removes every expired workspace (the periodic cleaner); returns how many.
pub async fn purge_expired(state: &AppState) -> ApiResult<usize> {
    let s = state.clone();
    blocking(move || {
        let expired = s.catalog.expired_workspaces(crate::catalog::now())?;
        for w in &expired {
            s.catalog.delete_workspace(&w.project, &w.id)?;
            s.workspaces.remove(&w.project, &w.id)?;
        }
        Ok(expired.len())
    })
    .await
}

/// Opens an internal (not session-limited) session and runs `f` on it (blocking thread).
async fn with_session<T: Send + 'static>(
    state: &AppState,
    project: &ProjectId,
    id: &str,
    f: impl FnOnce(&AppState, &WorkspaceRecord, &Session) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let (s, p, id) = (state.clone(), project.clone(), id.to_string());
    blocking(move || {
        let record = live(&s, &p, &id)?;
        let session =
            s.workspaces
                .session(p.as_str(), &id, sources(&s, &p, &record.branch), false)?;
        f(&s, &record, &session)
    })
    .await
}

/// The detail view: the summary plus sessions, attached tables and objects.
pub async fn detail(state: &AppState, project: &ProjectId, id: &str) -> ApiResult<Value> {
    with_session(state, project, id, |s, record, session| {
        let mut body = summary(s, record, crate::catalog::now());
        // This request's own session is not one of the client's.
        body["active_sessions"] = json!(s.workspaces.active_sessions(&record.id).saturating_sub(1));
        body["attached_tables"] = session
            .attached()?
            .into_iter()
            .map(|(schema, table, rows)| json!({"schema": schema, "table": table, "rows": rows}))
            .collect();
        body["workspace_objects"] = session
            .objects()?
            .into_iter()
            .map(|(name, kind, rows)| json!({"name": name, "type": kind, "rows": rows}))
            .collect();
        Ok(body)
    })
    .await
}

pub async fn clear(state: &AppState, project: &ProjectId, id: &str) -> ApiResult<()> {
    with_session(state, project, id, |_, _, session| session.clear()).await
}

pub async fn drop_object(
    state: &AppState,
    project: &ProjectId,
    id: &str,
    name: String,
) -> ApiResult<()> {
    with_session(state, project, id, move |_, _, session| {
        session.drop_object(&name)
    })
    .await
}

/// A new password: the old one stops working for new connections.
pub async fn reset_credentials(
    state: &AppState,
    project: &ProjectId,
    id: &str,
) -> ApiResult<(WorkspaceRecord, String)> {
    let (s, p, id) = (state.clone(), project.clone(), id.to_string());
    blocking(move || {
        let mut record = live(&s, &p, &id)?;
        let password = new_password();
        record.secret = ScramSecret::derive(&password);
        s.catalog
            .set_workspace_secret(p.as_str(), &id, &record.secret)?;
        Ok((record, password))
    })
    .await
}

/// The byte cap of a workspace.
pub fn limit_bytes(state: &AppState, record: &WorkspaceRecord) -> u64 {
    u64::from(record.size_limit_gb).saturating_mul(state.config.workspace_size_unit_bytes)
}

/// `bucket.table` split at its last dot.
fn parse_source(source: &str) -> ApiResult<(BucketName, TableName)> {
    let (bucket, table) = source.rsplit_once('.').ok_or_else(|| {
        ApiError::bad_request(format!("source '{source}' must be 'bucket.table'"))
    })?;
    Ok((BucketName::parse(bucket)?, TableName::parse(table)?))
}

/// Copies tables into the workspace (`CREATE OR REPLACE TABLE … AS SELECT` from the attached
/// read-only file), each under its table's shared lock so it copies one committed state.
pub async fn load(
    state: &AppState,
    project: &ProjectId,
    id: &str,
    tables: Vec<LoadTable>,
) -> ApiResult<Value> {
    if tables.is_empty() {
        return Err(ApiError::unprocessable(
            "tables must name at least one table",
        ));
    }
    // A branch workspace loads the branch's view of each table (ADR 0031).
    let (s, p, w) = (state.clone(), project.clone(), id.to_string());
    let branch = blocking(move || live(&s, &p, &w).map(|r| r.branch)).await?;
    let branch = BranchId::parse(&branch)?;
    let mut planned = Vec::with_capacity(tables.len());
    for t in tables {
        let (bucket, table) = parse_source(&t.source)?;
        let (key, _) =
            crate::service::tables::resolve_table(state, project, &branch, &bucket, &table)?;
        planned.push((t, bucket, table, key));
    }
    let mut loaded = Vec::new();
    for (t, bucket, table, key) in planned {
        let guard = state.engine.locks.table_shared(&key).await;
        let (bucket, table) = (bucket.to_string(), table.to_string());
        let entry = with_session(state, project, id, move |s, record, session| {
            let _held = guard;
            load_one(s, record, session, &t, &bucket, &table, &key)
        })
        .await?;
        loaded.push(entry);
    }
    let size = state.workspaces.size_bytes(project.as_str(), id);
    Ok(json!({ "loaded": loaded, "workspace_size_bytes": size }))
}

fn load_one(
    state: &AppState,
    record: &WorkspaceRecord,
    session: &Session,
    t: &LoadTable,
    bucket: &str,
    table: &str,
    key: &TableKey,
) -> ApiResult<Value> {
    let limit = limit_bytes(state, record);
    let used = |s: &Session| {
        state
            .workspaces
            .used_bytes(&s.conn, &record.project, &record.id)
    };
    let before = used(session);
    if before >= limit {
        return Err(ApiError::new(
            ErrorCode::WorkspaceFull,
            format!(
                "the workspace holds {before} bytes, at or over its size limit of {limit} bytes"
            ),
        ));
    }
    let (alias, _) = session.source(bucket, table).ok_or_else(|| {
        ApiError::new(
            ErrorCode::TableNotFound,
            format!("Table '{table}' not found in bucket '{bucket}'"),
        )
    })?;
    let info = state.engine.describe(key)?;
    let select = match &t.columns {
        None => "*".to_string(),
        Some(cols) if cols.is_empty() => {
            return Err(ApiError::unprocessable("columns must not be empty"))
        }
        Some(cols) => cols
            .iter()
            .map(|c| {
                find_column(&info.columns, c)
                    .map(|col| quote_ident(&col.name))
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::InvalidColumns,
                            format!("column '{c}' not found in table '{table}'"),
                        )
                    })
            })
            .collect::<ApiResult<Vec<_>>>()?
            .join(", "),
    };
    let filter = match t.where_clause.as_deref().map(str::trim) {
        None | Some("") => String::new(),
        Some(text) => format!(" WHERE {}", Filter::parse(text)?.to_sql(&info.columns)?),
    };
    let destination = t.destination.clone().unwrap_or_else(|| table.to_string());
    if destination.is_empty() || destination.len() > 255 {
        return Err(ApiError::unprocessable(
            "destination must be 1 to 255 characters",
        ));
    }
    session
        .conn
        .execute_batch(&format!(
            "CREATE OR REPLACE TABLE main.{} AS SELECT {select} FROM \"{alias}\".main.data{filter}; \
             CHECKPOINT",
            quote_ident(&destination)
        ))
        .map_err(crate::engine::filter::refused_value)?;
    let rows: i64 = session.conn.query_row(
        &format!("SELECT count(*) FROM main.{}", quote_ident(&destination)),
        [],
        |r| r.get(0),
    )?;
    let after = used(session);
    Ok(json!({
        "source": format!("{bucket}.{table}"),
        "destination": destination,
        "rows": rows.max(0),
        "size_bytes": after.saturating_sub(before),
    }))
}

/// Runs client SQL in a session that counts against the workspace's limit, under the
/// statement timeout (the statement is interrupted when it passes).
pub async fn run_sql(
    state: &AppState,
    project: &ProjectId,
    id: &str,
    sql: String,
    limit: usize,
) -> ApiResult<ResultSet> {
    let (s, p, ws) = (state.clone(), project.clone(), id.to_string());
    let (record, session) = blocking(move || {
        let record = live(&s, &p, &ws)?;
        let session =
            s.workspaces
                .session(p.as_str(), &ws, sources(&s, &p, &record.branch), true)?;
        Ok((record, session))
    })
    .await?;
    let timeout = Duration::from_secs(state.config.pgwire_query_timeout_secs.max(1));
    let interrupt = session.interrupt_handle();
    let s = state.clone();
    let mut task = tokio::task::spawn_blocking(move || {
        let limit_bytes = limit_bytes(&s, &record);
        let used = || {
            s.workspaces
                .used_bytes(&session.conn, &record.project, &record.id)
        };
        query::run(
            &session,
            &sql,
            limit,
            &SizeCheck {
                used: &used,
                limit_bytes,
            },
        )
    });
    match tokio::time::timeout(timeout, &mut task).await {
        Ok(done) => done?,
        Err(_) => {
            interrupt.interrupt();
            let _ = task.await;
            Err(timed_out(timeout))
        }
    }
}

pub fn timed_out(timeout: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::QueryTimeout,
        format!(
            "the statement ran longer than {} s (PGWIRE_QUERY_TIMEOUT_SECS) and was interrupted",
            timeout.as_secs()
        ),
    )
}
