//! `/internal/pgwire/*` for an external wire server (ADR 0033): checking a workspace login
//! (throttled like the built-in server's) and the registry of its sessions, each holding a
//! place in its workspace's session limit until closed or timed out. Kept in memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};

use super::blocking;
use crate::catalog::workspaces::WorkspaceRecord;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::names::ProjectId;
use crate::state::AppState;
use crate::workspace::Slot;

/// What `POST /internal/pgwire/auth` accepts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthBody {
    pub username: String,
    pub password: String,
    pub client_ip: Option<String>,
}

/// What `POST /internal/pgwire/sessions` accepts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    pub session_id: String,
    pub workspace_id: String,
    pub client_ip: Option<String>,
}

/// Closed sessions stay listed this long, so an operator can see how they ended.
const KEEP_CLOSED: Duration = Duration::from_secs(3600);
/// Sessions remembered at most (active ones are never dropped to make room).
const MAX_REMEMBERED: usize = 10_000;
/// `POST …/sessions/cleanup` without `idle_timeout_seconds`.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 3600;

struct Entry {
    workspace_id: String,
    client_ip: Option<String>,
    connected_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
    query_count: u64,
    /// `active`, `timeout`, or the reason given when it was closed (`disconnected`).
    status: String,
    closed_at: Option<DateTime<Utc>>,
    /// The place in the workspace's session limit, while active.
    slot: Option<Slot>,
}

impl Entry {
    fn info(&self, id: &str) -> Value {
        json!({
            "session_id": id,
            "workspace_id": self.workspace_id,
            "client_ip": self.client_ip,
            "connected_at": self.connected_at.to_rfc3339(),
            "last_activity_at": self.last_activity_at.to_rfc3339(),
            "query_count": self.query_count,
            "status": self.status,
        })
    }

    fn close(&mut self, status: &str, now: DateTime<Utc>) {
        self.status = status.to_string();
        self.closed_at = Some(now);
        self.slot = None;
    }
}

/// The sessions an external wire server registered, by its session id.
#[derive(Default)]
pub struct ExternalSessions {
    sessions: Mutex<HashMap<String, Entry>>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::SessionNotFound,
        format!("Session '{id}' not found"),
    )
}

/// The reference's 429 on these routes.
fn limit_reached(e: ApiError) -> ApiError {
    if e.code() == ErrorCode::TooManySessions {
        ApiError::new(ErrorCode::ConnectionLimitReached, e.message().to_string())
    } else {
        e
    }
}

/// A client address given in a body: an IP address (422 otherwise).
pub fn parse_ip(raw: Option<&str>) -> ApiResult<Option<IpAddr>> {
    raw.map(|ip| {
        ip.trim()
            .parse::<IpAddr>()
            .map_err(|_| ApiError::unprocessable(format!("client_ip '{ip}' is not an IP address")))
    })
    .transpose()
}

/// A live workspace by id alone (the internal routes name no project): 404, or 410 past
/// its expiry.
fn live_by_id(state: &AppState, id: &str) -> ApiResult<WorkspaceRecord> {
    let record = state.catalog.workspace_by_id(id)?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::WorkspaceNotFound,
            format!("Workspace '{id}' not found"),
        )
    })?;
    let project = ProjectId::parse(&record.project)?;
    super::workspaces::live(state, &project, id)
}

/// Checks a workspace login for an external wire server: 401 `invalid_credentials` (counted
/// against `address` in the wire servers' shared throttle, 429 once it is used up), 410 past
/// expiry, 429 `connection_limit_reached` when the workspace has no session left. Returns
/// what the external server needs to open the session itself.
pub async fn authenticate(
    state: &AppState,
    body: AuthBody,
    address: Option<IpAddr>,
) -> ApiResult<Value> {
    if let Some(wait) = address.and_then(|a| state.logins.blocked(a)) {
        let secs = wait.as_secs().max(1);
        return Err(ApiError::retry_after(
            ErrorCode::RateLimited,
            format!("too many failed logins from this address; retry in {secs} s"),
            secs,
        ));
    }
    let s = state.clone();
    let found =
        blocking(move || s.logins.check_password(&s, &body.username, &body.password)).await?;
    let Some(record) = found else {
        if let Some(a) = address {
            state.logins.failed(a);
        }
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "invalid workspace user name or password",
        ));
    };
    let s = state.clone();
    blocking(move || {
        let record = live_by_id(&s, &record.id)?;
        s.workspaces.check_room(&record.id).map_err(limit_reached)?;
        let project = ProjectId::parse(&record.project)?;
        let sources = super::workspaces::sources(&s, &project, &record.branch);
        let tables: Vec<Value> = sources
            .iter()
            .map(|src| {
                let rows = s.catalog.read(|m| {
                    m.bucket(&src.key.project, &src.key.bucket)
                        .and_then(|b| b.tables.get(&src.key.table))
                        .and_then(|t| t.stats.as_ref())
                        .filter(|_| src.key.branch.is_none())
                        .map_or(0, |st| st.row_count)
                });
                json!({
                    "bucket": src.bucket,
                    "name": src.table,
                    "path": src.path.to_string_lossy(),
                    "rows": rows,
                })
            })
            .collect();
        let branch = (record.branch != "default").then_some(record.branch.clone());
        let db_path = s.workspaces.path(&record.project, &record.id);
        Ok(json!({
            "workspace_id": record.id,
            "project_id": record.project,
            "branch_id": branch,
            "db_path": db_path.to_string_lossy(),
            "tables": tables,
            "memory_limit": s.config.workspace_memory_limit,
            "query_timeout_seconds": s.config.pgwire_query_timeout_secs,
        }))
    })
    .await
}

/// A session id: 1 to 128 printable characters.
fn check_session_id(id: &str) -> ApiResult<()> {
    if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control()) {
        return Err(ApiError::unprocessable(
            "session_id must be 1 to 128 printable characters",
        ));
    }
    Ok(())
}

impl ExternalSessions {
    /// Registers a session of a live workspace, taking one of its session places (429
    /// `connection_limit_reached` when none is left); 409 when the id is active already.
    pub async fn create(&self, state: &AppState, body: SessionBody) -> ApiResult<Value> {
        check_session_id(&body.session_id)?;
        parse_ip(body.client_ip.as_deref())?;
        let (s, ws) = (state.clone(), body.workspace_id.clone());
        let record = blocking(move || live_by_id(&s, &ws)).await?;
        let mut sessions = self.sessions.lock();
        if sessions
            .get(&body.session_id)
            .is_some_and(|e| e.slot.is_some())
        {
            return Err(ApiError::new(
                ErrorCode::SessionExists,
                format!("Session '{}' is registered already", body.session_id),
            ));
        }
        let now = crate::catalog::now();
        forget_old(&mut sessions, now);
        if sessions.len() >= MAX_REMEMBERED && !sessions.contains_key(&body.session_id) {
            return Err(ApiError::new(
                ErrorCode::ConnectionLimitReached,
                "too many external wire sessions are registered",
            ));
        }
        let slot = state
            .workspaces
            .reserve(&record.id)
            .map_err(limit_reached)?;
        let entry = Entry {
            workspace_id: record.id,
            client_ip: body.client_ip,
            connected_at: now,
            last_activity_at: now,
            query_count: 0,
            status: "active".to_string(),
            closed_at: None,
            slot: Some(slot),
        };
        let info = entry.info(&body.session_id);
        sessions.insert(body.session_id, entry);
        Ok(info)
    }

    /// Every remembered session, oldest first, optionally of one workspace or status.
    pub fn list(&self, workspace: Option<&str>, status: Option<&str>) -> Vec<Value> {
        let sessions = self.sessions.lock();
        let mut found: Vec<(&String, &Entry)> = sessions
            .iter()
            .filter(|(_, e)| workspace.is_none_or(|w| e.workspace_id == w))
            .filter(|(_, e)| status.is_none_or(|s| e.status == s))
            .collect();
        found.sort_by(|a, b| (a.1.connected_at, a.0).cmp(&(b.1.connected_at, b.0)));
        found.into_iter().map(|(id, e)| e.info(id)).collect()
    }

    pub fn get(&self, id: &str) -> ApiResult<Value> {
        let sessions = self.sessions.lock();
        sessions
            .get(id)
            .map(|e| e.info(id))
            .ok_or_else(|| not_found(id))
    }

    /// Records activity of an active session (and one more query unless told otherwise);
    /// 404 for an unknown or closed one.
    pub fn activity(&self, id: &str, increment_queries: bool) -> ApiResult<Value> {
        let mut sessions = self.sessions.lock();
        let entry = sessions
            .get_mut(id)
            .filter(|e| e.slot.is_some())
            .ok_or_else(|| not_found(id))?;
        entry.last_activity_at = crate::catalog::now();
        if increment_queries {
            entry.query_count += 1;
        }
        Ok(entry.info(id))
    }

    /// Closes a session with `reason` as its status, giving its place back; closing a closed
    /// one changes nothing.
    pub fn close(&self, id: &str, reason: &str) -> ApiResult<()> {
        if reason.is_empty()
            || reason.len() > 64
            || !reason
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ApiError::unprocessable(
                "reason must be 1 to 64 letters, digits, '_' or '-'",
            ));
        }
        let mut sessions = self.sessions.lock();
        let entry = sessions.get_mut(id).ok_or_else(|| not_found(id))?;
        if entry.slot.is_some() {
            entry.close(reason, crate::catalog::now());
        }
        Ok(())
    }

    /// Marks active sessions idle for `idle` or longer as `timeout`, giving their places
    /// back; returns how many.
    pub fn cleanup(&self, idle: Duration) -> usize {
        let now = crate::catalog::now();
        let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
        let mut sessions = self.sessions.lock();
        let mut n = 0;
        for entry in sessions.values_mut() {
            if entry.slot.is_some() && now.signed_duration_since(entry.last_activity_at) >= idle {
                entry.close("timeout", now);
                n += 1;
            }
        }
        forget_old(&mut sessions, now);
        n
    }
}

/// Drops sessions closed longer than KEEP_CLOSED ago.
fn forget_old(sessions: &mut HashMap<String, Entry>, now: DateTime<Utc>) {
    let keep = chrono::Duration::from_std(KEEP_CLOSED).unwrap_or(chrono::Duration::MAX);
    sessions.retain(|_, e| {
        e.closed_at
            .is_none_or(|t| now.signed_duration_since(t) < keep)
    });
}
