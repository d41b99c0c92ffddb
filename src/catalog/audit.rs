//! Catalog rows of the audit trail: append a batch, read a filtered page newest first, drop
//! entries past retention. It must not decide what is audited or redact (the API layer does).

use chrono::{DateTime, Utc};
use duckdb::types::Value as SqlValue;
use serde::Serialize;
use serde_json::Value;

use super::{from_micros, micros, no_model_change, Catalog};
use crate::error::ApiResult;

/// Who made an audited request, as the trail shows it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditPrincipal {
    Admin,
    Key {
        project_id: String,
        key_id: String,
    },
    /// No key, or one that did not authenticate (the request was refused with 401).
    Anonymous,
    /// A key of another project, shown so in a project's trail instead of its id.
    OtherProject,
    /// An external wire server with PGWIRE_INTERNAL_TOKEN (`/internal/pgwire/*`).
    Internal,
}

/// One audited request.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: String,
    pub time: DateTime<Utc>,
    pub principal: AuditPrincipal,
    pub action: String,
    pub method: String,
    /// The route template (`/projects/{project_id}/buckets`), never the raw path or query.
    pub route: String,
    /// The project the request acted on; `None` for service-wide actions.
    pub project_id: Option<String>,
    pub branch_id: Option<String>,
    /// The path parameters (`{"project_id": "1", "bucket_name": "b"}`).
    pub target: Value,
    /// The HTTP status answered.
    pub outcome: u16,
    pub request_id: Option<String>,
    pub client_address: Option<String>,
}

/// Which entries a read returns.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only entries targeting this project.
    pub project: Option<String>,
    /// Exact action, or every action starting with the prefix.
    pub action: Option<ActionFilter>,
    /// Inclusive lower and exclusive upper bound on the time.
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only entries made by this key; with `project` set, only that project's key of that id.
    pub key_id: Option<String>,
    /// Only entries older than this (time, id) position: the page after it.
    pub before: Option<(DateTime<Utc>, String)>,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionFilter {
    Exact(String),
    Prefix(String),
}

const COLUMNS: &str =
    "id, epoch_us(recorded_at), principal_type, principal_project, key_id, action, \
     method, route, project_id, branch_id, CAST(target AS VARCHAR), outcome, request_id, \
     client_address";

impl Catalog {
    /// Appends `entries` in one transaction (blocking).
    pub fn insert_audit_entries(&self, entries: &[AuditEntry]) -> ApiResult<()> {
        self.write(|tx, _| {
            let mut stmt = tx.prepare(
                "INSERT INTO audit_entries VALUES
                 (?, make_timestamp(?), ?, ?, ?, ?, ?, ?, ?, ?, ?::JSON, ?, ?, ?)",
            )?;
            for e in entries {
                let (kind, project, key) = match &e.principal {
                    AuditPrincipal::Admin => ("admin", None, None),
                    AuditPrincipal::Internal => ("internal", None, None),
                    AuditPrincipal::Key { project_id, key_id } => {
                        ("key", Some(project_id.as_str()), Some(key_id.as_str()))
                    }
                    AuditPrincipal::Anonymous | AuditPrincipal::OtherProject => {
                        ("anonymous", None, None)
                    }
                };
                stmt.execute(duckdb::params![
                    e.id,
                    micros(e.time),
                    kind,
                    project,
                    key,
                    e.action,
                    e.method,
                    e.route,
                    e.project_id,
                    e.branch_id,
                    e.target.to_string(),
                    i32::from(e.outcome),
                    e.request_id,
                    e.client_address,
                ])?;
            }
            Ok(((), no_model_change()))
        })
    }

    /// The entries `q` selects, newest first, at most `q.limit` (blocking).
    pub fn audit_entries(&self, q: &AuditQuery) -> ApiResult<Vec<AuditEntry>> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut params: Vec<SqlValue> = Vec::new();
        if let Some(project) = &q.project {
            clauses.push("project_id = ?");
            params.push(SqlValue::Text(project.clone()));
        }
        match &q.action {
            Some(ActionFilter::Exact(a)) => {
                clauses.push("action = ?");
                params.push(SqlValue::Text(a.clone()));
            }
            Some(ActionFilter::Prefix(p)) => {
                clauses.push("starts_with(action, ?)");
                params.push(SqlValue::Text(p.clone()));
            }
            None => {}
        }
        if let Some(since) = q.since {
            clauses.push("recorded_at >= make_timestamp(?)");
            params.push(SqlValue::BigInt(micros(since)));
        }
        if let Some(until) = q.until {
            clauses.push("recorded_at < make_timestamp(?)");
            params.push(SqlValue::BigInt(micros(until)));
        }
        if let Some(key) = &q.key_id {
            clauses.push("key_id = ?");
            params.push(SqlValue::Text(key.clone()));
            if let Some(project) = &q.project {
                // A project's trail never confirms which entries another project's key made.
                clauses.push("principal_project = ?");
                params.push(SqlValue::Text(project.clone()));
            }
        }
        if let Some((at, id)) = &q.before {
            clauses.push(
                "(recorded_at < make_timestamp(?) OR (recorded_at = make_timestamp(?) AND id < ?))",
            );
            params.push(SqlValue::BigInt(micros(*at)));
            params.push(SqlValue::BigInt(micros(*at)));
            params.push(SqlValue::Text(id.clone()));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_entries {filter} ORDER BY recorded_at DESC, id DESC LIMIT {}",
            q.limit
        );
        self.query(|conn| {
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(duckdb::params_from_iter(params.iter()), |r| {
                let kind: String = r.get(2)?;
                let principal = match (kind.as_str(), r.get(3)?, r.get(4)?) {
                    ("admin", _, _) => AuditPrincipal::Admin,
                    ("internal", _, _) => AuditPrincipal::Internal,
                    ("key", Some(project_id), Some(key_id)) => {
                        AuditPrincipal::Key { project_id, key_id }
                    }
                    _ => AuditPrincipal::Anonymous,
                };
                let target: String = r.get(10)?;
                let outcome: i32 = r.get(11)?;
                Ok((
                    r.get::<_, i64>(1)?,
                    AuditEntry {
                        id: r.get(0)?,
                        time: DateTime::<Utc>::default(),
                        principal,
                        action: r.get(5)?,
                        method: r.get(6)?,
                        route: r.get(7)?,
                        project_id: r.get(8)?,
                        branch_id: r.get(9)?,
                        target: serde_json::from_str(&target).unwrap_or(Value::Null),
                        outcome: u16::try_from(outcome).unwrap_or(0),
                        request_id: r.get(12)?,
                        client_address: r.get(13)?,
                    },
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (at, mut entry) = row?;
                entry.time = from_micros(at)?;
                out.push(entry);
            }
            Ok(out)
        })
    }

    /// Deletes entries older than `before`; returns how many (blocking).
    pub fn purge_audit_entries(&self, before: DateTime<Utc>) -> ApiResult<usize> {
        self.write(|tx, _| {
            let n = tx.execute(
                "DELETE FROM audit_entries WHERE recorded_at < make_timestamp(?)",
                duckdb::params![micros(before)],
            )?;
            Ok((n, no_model_change()))
        })
    }
}
