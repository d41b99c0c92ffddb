//! The audit trail over HTTP: the layer outside the access gate that records every audited
//! request (refusals too), the action names, and `GET /admin/audit`, `GET /projects/{id}/audit`.
//! Long: one table names the action of every audited route (it grows with the routes), and
//! the layer, the queries and their tests read best beside it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Path, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::{Json, RequestExt};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::access::{Admission, Rule};
use super::extract::ApiQuery;
use crate::auth::scope::Need;
use crate::auth::Principal;
use crate::catalog::audit::{ActionFilter, AuditEntry, AuditPrincipal, AuditQuery};
use crate::error::{ApiError, ApiResult};
use crate::service::audit::AuditLog;
use crate::state::AppState;

/// The action of every audited route, by method and route template in the short path style
/// (the branch-first style maps onto it). Listed by hand so names stay stable when paths move.
const ACTIONS: &[(&str, &str, &str)] = &[
    ("POST", "/backend/init", "backend.init"),
    ("POST", "/backend/remove", "backend.remove"),
    ("GET", "/admin/quarantine", "admin.quarantine.read"),
    ("GET", "/admin/engine", "admin.engine.read"),
    ("GET", "/admin/audit", "admin.audit.read"),
    ("GET", "/projects", "project.list"),
    ("POST", "/projects", "project.create"),
    ("PUT", "/projects/{project_id}", "project.update"),
    ("DELETE", "/projects/{project_id}", "project.delete"),
    ("POST", "/projects/{project_id}/api-keys", "api_key.create"),
    (
        "DELETE",
        "/projects/{project_id}/api-keys/{key_id}",
        "api_key.revoke",
    ),
    (
        "POST",
        "/projects/{project_id}/api-keys/{key_id}/rotate",
        "api_key.rotate",
    ),
    (
        "POST",
        "/projects/{project_id}/s3-credentials",
        "s3_credential.create",
    ),
    ("PUT", "/s3/{bucket}", "s3.bucket.create"),
    ("POST", "/s3/{bucket}", "s3.objects.delete"),
    ("POST", "/s3/{bucket}/presign", "s3.presign"),
    ("PUT", "/s3/{bucket}/{*key}", "s3.object.write"),
    ("POST", "/s3/{bucket}/{*key}", "s3.multipart"),
    ("DELETE", "/s3/{bucket}/{*key}", "s3.object.delete"),
    ("POST", "/files", "databank.file.upload"),
    ("DELETE", "/files/{file_id}", "databank.file.delete"),
    ("POST", "/v1/blobs", "blob.create"),
    ("POST", "/projects/{project_id}/buckets", "bucket.create"),
    (
        "DELETE",
        "/projects/{project_id}/buckets/{bucket_name}",
        "bucket.delete",
    ),
    (
        "POST",
        "/projects/{project_id}/buckets/{bucket_name}/share",
        "bucket.share",
    ),
    (
        "DELETE",
        "/projects/{project_id}/buckets/{bucket_name}/share",
        "bucket.unshare",
    ),
    (
        "POST",
        "/projects/{project_id}/buckets/{bucket_name}/link",
        "bucket.link",
    ),
    (
        "DELETE",
        "/projects/{project_id}/buckets/{bucket_name}/link",
        "bucket.unlink",
    ),
    (
        "POST",
        "/projects/{project_id}/buckets/{bucket_name}/grant-readonly",
        "bucket.grant_readonly",
    ),
    (
        "DELETE",
        "/projects/{project_id}/buckets/{bucket_name}/grant-readonly",
        "bucket.revoke_readonly",
    ),
    (
        "POST",
        "/projects/{project_id}/buckets/{bucket_name}/tables",
        "table.create",
    ),
    (
        "POST",
        "/projects/{project_id}/buckets/{bucket_name}/tables/from-file",
        "table.create_from_file",
    ),
    (
        "DELETE",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}",
        "table.delete",
    ),
    (
        "POST",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/import/file",
        "table.import",
    ),
    (
        "POST",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/export",
        "table.export",
    ),
    (
        "POST",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/columns",
        "table.column.add",
    ),
    (
        "PUT",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/columns/{column_name}",
        "table.column.alter",
    ),
    (
        "DELETE",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/columns/{column_name}",
        "table.column.drop",
    ),
    (
        "POST",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/primary-key",
        "table.primary_key.add",
    ),
    (
        "DELETE",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/primary-key",
        "table.primary_key.drop",
    ),
    (
        "DELETE",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/rows",
        "table.rows.delete",
    ),
    (
        "POST",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/profile",
        "table.profile",
    ),
    (
        "PUT",
        "/projects/{project_id}/settings/snapshots",
        "snapshot_settings.project.update",
    ),
    (
        "DELETE",
        "/projects/{project_id}/settings/snapshots",
        "snapshot_settings.project.reset",
    ),
    (
        "PUT",
        "/projects/{project_id}/buckets/{bucket_name}/settings/snapshots",
        "snapshot_settings.bucket.update",
    ),
    (
        "DELETE",
        "/projects/{project_id}/buckets/{bucket_name}/settings/snapshots",
        "snapshot_settings.bucket.reset",
    ),
    (
        "PUT",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/settings/snapshots",
        "snapshot_settings.table.update",
    ),
    (
        "DELETE",
        "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}/settings/snapshots",
        "snapshot_settings.table.reset",
    ),
    (
        "POST",
        "/projects/{project_id}/snapshots",
        "snapshot.create",
    ),
    (
        "DELETE",
        "/projects/{project_id}/snapshots/{snapshot_id}",
        "snapshot.delete",
    ),
    (
        "POST",
        "/projects/{project_id}/snapshots/{snapshot_id}/restore",
        "snapshot.restore",
    ),
    ("POST", "/projects/{project_id}/branches", "branch.create"),
    (
        "DELETE",
        "/projects/{project_id}/branches/{branch_id}",
        "branch.delete",
    ),
    (
        "POST",
        "/projects/{project_id}/branches/{branch_id}/tables/{bucket_name}/{table_name}/pull",
        "branch.table.pull",
    ),
    (
        "POST",
        "/projects/{project_id}/branches/{branch_id}/merge",
        "branch.merge",
    ),
    ("POST", "/internal/pgwire/auth", "pgwire.auth"),
    ("POST", "/internal/pgwire/sessions", "pgwire.session.create"),
    (
        "POST",
        "/internal/pgwire/sessions/cleanup",
        "pgwire.sessions.cleanup",
    ),
    (
        "DELETE",
        "/internal/pgwire/sessions/{session_id}",
        "pgwire.session.close",
    ),
    (
        "PATCH",
        "/internal/pgwire/sessions/{session_id}/activity",
        "pgwire.session.activity",
    ),
    (
        "POST",
        "/projects/{project_id}/workspaces",
        "workspace.create",
    ),
    (
        "DELETE",
        "/projects/{project_id}/workspaces/{workspace_id}",
        "workspace.delete",
    ),
    (
        "POST",
        "/projects/{project_id}/workspaces/{workspace_id}/clear",
        "workspace.clear",
    ),
    (
        "DELETE",
        "/projects/{project_id}/workspaces/{workspace_id}/objects/{object_name}",
        "workspace.object.delete",
    ),
    (
        "POST",
        "/projects/{project_id}/workspaces/{workspace_id}/load",
        "workspace.load",
    ),
    (
        "POST",
        "/projects/{project_id}/workspaces/{workspace_id}/credentials/reset",
        "workspace.credentials.reset",
    ),
    (
        "POST",
        "/projects/{project_id}/workspaces/{workspace_id}/query",
        "workspace.query",
    ),
    ("POST", "/projects/{project_id}/files", "file.register"),
    (
        "POST",
        "/projects/{project_id}/files/prepare",
        "file.prepare",
    ),
    (
        "POST",
        "/projects/{project_id}/files/upload/{upload_key}",
        "file.upload_prepared",
    ),
    (
        "POST",
        "/projects/{project_id}/files/content",
        "file.upload",
    ),
    (
        "DELETE",
        "/projects/{project_id}/files/{file_id}",
        "file.delete",
    ),
    ("POST", "/projects/{project_id}/uploads", "upload.create"),
    (
        "DELETE",
        "/projects/{project_id}/uploads/{upload_id}",
        "upload.abort",
    ),
    (
        "PUT",
        "/projects/{project_id}/uploads/{upload_id}/chunks/{n}",
        "upload.chunk",
    ),
    (
        "POST",
        "/projects/{project_id}/uploads/{upload_id}/complete",
        "upload.complete",
    ),
];

const BRANCH_PREFIX: &str = "/projects/{project_id}/branches/{branch_id}/";

/// Whether requests to `rule` are audited: every change (any method but GET) and every
/// admin route, reads included.
pub fn audited(rule: &Rule) -> bool {
    rule.need == Need::Admin || rule.method != Method::GET
}

/// The action name of a route, the same for both path styles; `None` for a route not listed.
pub fn action(method: &Method, template: &str) -> Option<&'static str> {
    // Routes that exist only in the branch-first style are listed as they are.
    let listed = |template: &str| {
        ACTIONS
            .iter()
            .find(|(m, path, _)| *m == method.as_str() && *path == template)
            .map(|(_, _, action)| *action)
    };
    if let Some(action) = listed(template) {
        return Some(action);
    }
    let short;
    let template = match template.strip_prefix(BRANCH_PREFIX) {
        Some(rest) => {
            short = format!("/projects/{{project_id}}/{rest}");
            short.as_str()
        }
        None => template,
    };
    listed(template)
}

/// A response extension a handler sets to name what it created when the path does not
/// (`POST /projects` names the project, `POST .../buckets` the bucket); path parameters win.
#[derive(Debug, Clone)]
pub struct AuditTarget(pub &'static str, pub String);

/// The audit layer's state: where entries go and the action of every audited route.
#[derive(Clone)]
pub struct Recorder {
    log: Arc<AuditLog>,
    /// Route template → (method, action) of its audited methods.
    actions: Arc<HashMap<String, Vec<(Method, &'static str)>>>,
}

impl Recorder {
    pub fn new(state: &AppState, rules: &[Rule]) -> Self {
        let mut actions: HashMap<String, Vec<(Method, &'static str)>> = HashMap::new();
        for rule in rules.iter().filter(|r| audited(r)) {
            // Every audited rule is named (unit test below); "unnamed" is only a safety net.
            let name = action(&rule.method, &rule.path).unwrap_or("unnamed");
            actions
                .entry(rule.path.clone())
                .or_default()
                .push((rule.method.clone(), name));
        }
        Self {
            log: state.audit.clone(),
            actions: Arc::new(actions),
        }
    }
}

/// Records an audited request once it has been answered: who, what, on which target, with
/// which outcome. The entry is queued for the writer and logged under `duckbank::audit`.
pub async fn record(State(recorder): State<Recorder>, mut req: Request, next: Next) -> Response {
    // HEAD is served by GET handlers and audited as GET.
    let method = if req.method() == Method::HEAD {
        Method::GET
    } else {
        req.method().clone()
    };
    // Looked up without allocating: most requests (reads) are not audited.
    let found = req.extensions().get::<MatchedPath>().and_then(|m| {
        let methods = recorder.actions.get(m.as_str())?;
        let (_, action) = methods.iter().find(|(audited, _)| *audited == method)?;
        Some((*action, m.as_str().to_string()))
    });
    let Some((action, template)) = found else {
        return next.run(req).await;
    };
    let time = crate::catalog::now();
    let request_id = req
        .headers()
        .get(super::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let client_address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let target: Map<String, Value> = match req.extract_parts::<RawPathParams>().await {
        Ok(params) => params
            .iter()
            .map(|(name, value)| (name.to_string(), Value::String(value.to_string())))
            .collect(),
        Err(_) => Map::new(),
    };

    let response = next.run(req).await;

    let admission = response.extensions().get::<Admission>();
    let principal = match admission.and_then(|a| a.principal.as_ref()) {
        _ if admission.is_some_and(|a| a.internal_token) => AuditPrincipal::Internal,
        Some(Principal::Admin) => AuditPrincipal::Admin,
        Some(Principal::Key(key)) => AuditPrincipal::Key {
            project_id: key.grant.project.to_string(),
            key_id: key.id.clone(),
        },
        None => AuditPrincipal::Anonymous,
    };
    let mut target = target;
    if let Some(AuditTarget(name, value)) = response.extensions().get::<AuditTarget>() {
        target
            .entry(name.to_string())
            .or_insert_with(|| Value::String(value.clone()));
    }
    let text = |name: &str| target.get(name).and_then(Value::as_str).map(str::to_string);
    // Routes without a project in the path act on the key's own project.
    let project_id = text("project_id").or_else(|| match &principal {
        AuditPrincipal::Key { project_id, .. } => Some(project_id.clone()),
        _ => None,
    });
    let entry = AuditEntry {
        id: uuid::Uuid::new_v4().to_string(),
        time,
        principal,
        action: action.to_string(),
        method: method.to_string(),
        route: template,
        project_id,
        branch_id: text("branch_id"),
        target: Value::Object(target),
        outcome: response.status().as_u16(),
        request_id,
        client_address,
    };
    tracing::info!(
        target: "duckbank::audit",
        audit_id = %entry.id,
        action = %entry.action,
        principal = %json!(entry.principal),
        project = entry.project_id.as_deref().unwrap_or("-"),
        target = %entry.target,
        outcome = entry.outcome,
        request_id = entry.request_id.as_deref().unwrap_or("-"),
        client = entry.client_address.as_deref().unwrap_or("-"),
        "audit"
    );
    recorder.log.record(entry).await;
    response
}

/// Query parameters of both trail routes; every value is checked here so a bad one is 400.
#[derive(Deserialize)]
pub struct TrailQuery {
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    key_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    /// Admin trail only: entries targeting this project.
    project_id: Option<String>,
}

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

impl TrailQuery {
    fn into_query(self, project: Option<String>) -> ApiResult<AuditQuery> {
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid 'limit' '{text}': expected a whole number from 1 to {MAX_LIMIT}"
                    ))
                })?,
        };
        Ok(AuditQuery {
            project: project.or(self.project_id),
            action: self.action.as_deref().map(action_filter).transpose()?,
            since: self
                .since
                .as_deref()
                .map(|t| time("since", t))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| time("until", t))
                .transpose()?,
            key_id: self.key_id,
            before: self.cursor.as_deref().map(decode_cursor).transpose()?,
            limit: limit + 1,
        })
    }
}

/// `table.delete` matches that action; `table.*` every action starting with `table.`.
fn action_filter(text: &str) -> ApiResult<ActionFilter> {
    let (name, prefix) = match text.strip_suffix('*') {
        Some(name) => (name, true),
        None => (text, false),
    };
    if name.contains('*') || (name.is_empty() && !prefix) {
        return Err(ApiError::bad_request(format!(
            "invalid 'action' '{text}': expected an action such as 'table.delete', or a prefix \
             ending in '*' such as 'table.*'"
        )));
    }
    Ok(if prefix {
        ActionFilter::Prefix(name.to_string())
    } else {
        ActionFilter::Exact(name.to_string())
    })
}

fn time(name: &str, text: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::bad_request(format!(
                "invalid '{name}' '{text}': expected an RFC 3339 time such as \
                 2026-01-31T12:00:00Z ({e})"
            ))
        })
}

/// The position after an entry: its time and id, opaque to clients.
fn encode_cursor(entry: &AuditEntry) -> String {
    let raw = format!("{}:{}", entry.time.timestamp_micros(), entry.id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(text: &str) -> ApiResult<(DateTime<Utc>, String)> {
    let invalid = || ApiError::bad_request(format!("invalid 'cursor' '{text}'"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (micros, id) = raw.split_once(':').ok_or_else(invalid)?;
    let time = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    Ok((time, id.to_string()))
}

/// `{entries, count, next_cursor}` from a page fetched with one entry more than asked for.
fn page(mut entries: Vec<AuditEntry>, limit: usize) -> Json<Value> {
    let next_cursor = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(encode_cursor)
    } else {
        None
    };
    Json(json!({
        "entries": entries,
        "count": entries.len(),
        "next_cursor": next_cursor,
    }))
}

/// `GET /admin/audit`: the whole trail, newest first.
pub async fn admin_trail(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TrailQuery>,
) -> ApiResult<Json<Value>> {
    let q = query.into_query(None)?;
    let limit = q.limit - 1;
    let entries = state.audit.entries(q).await?;
    Ok(page(entries, limit))
}

/// `GET /projects/{project_id}/audit`: entries targeting the project. Another project's key is
/// shown as `{"type": "other_project"}`, never by its id. Deleted projects keep their trail.
pub async fn project_trail(
    State(state): State<AppState>,
    Path(project): Path<String>,
    ApiQuery(mut query): ApiQuery<TrailQuery>,
) -> ApiResult<Json<Value>> {
    query.project_id = None;
    let q = query.into_query(Some(project.clone()))?;
    let limit = q.limit - 1;
    let mut entries = state.audit.entries(q).await?;
    for entry in &mut entries {
        if matches!(&entry.principal, AuditPrincipal::Key { project_id, .. } if *project_id != project)
        {
            entry.principal = AuditPrincipal::OtherProject;
        }
    }
    Ok(page(entries, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_audited_route_has_its_own_action() {
        let routes = crate::api::routes();
        let mut seen: HashMap<&str, String> = HashMap::new();
        let mut audited_count = 0;
        for rule in routes.rules().iter().filter(|r| audited(r)) {
            audited_count += 1;
            let name = action(&rule.method, &rule.path)
                .unwrap_or_else(|| panic!("{} {} has no audit action", rule.method, rule.path));
            assert!(!name.is_empty());
            let short = rule.path.replace("/branches/{branch_id}", "");
            let key = format!("{} {short}", rule.method);
            if let Some(other) = seen.insert(name, key.clone()) {
                assert_eq!(other, key, "action {name} names two routes");
            }
        }
        assert!(audited_count > 40, "only {audited_count} audited routes");
    }

    #[test]
    fn every_listed_action_names_a_served_route() {
        let routes = crate::api::routes();
        let served: HashSet<(String, String)> = routes
            .rules()
            .iter()
            .map(|r| (r.method.to_string(), r.path.clone()))
            .collect();
        for (method, path, name) in ACTIONS {
            assert!(
                served.contains(&(method.to_string(), path.to_string())),
                "{name}: {method} {path} is not served"
            );
        }
    }

    #[test]
    fn both_path_styles_share_an_action() {
        let short = "/projects/{project_id}/buckets/{bucket_name}";
        let branched = "/projects/{project_id}/branches/{branch_id}/buckets/{bucket_name}";
        assert_eq!(action(&Method::DELETE, short), Some("bucket.delete"));
        assert_eq!(action(&Method::DELETE, branched), Some("bucket.delete"));
        assert_eq!(action(&Method::GET, short), None);
    }

    #[test]
    fn action_filters_are_exact_or_a_trailing_prefix() {
        assert_eq!(
            action_filter("table.delete").ok(),
            Some(ActionFilter::Exact("table.delete".into()))
        );
        assert_eq!(
            action_filter("table.*").ok(),
            Some(ActionFilter::Prefix("table.".into()))
        );
        assert_eq!(
            action_filter("*").ok(),
            Some(ActionFilter::Prefix(String::new()))
        );
        for bad in ["", "ta*ble", "**", "*.delete"] {
            assert!(action_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let time = crate::catalog::now();
        let entry = AuditEntry {
            id: "abc".into(),
            time,
            principal: AuditPrincipal::Admin,
            action: "x".into(),
            method: "GET".into(),
            route: "/".into(),
            project_id: None,
            branch_id: None,
            target: json!({}),
            outcome: 200,
            request_id: None,
            client_address: None,
        };
        let decoded = decode_cursor(&encode_cursor(&entry)).expect("decodes");
        assert_eq!(decoded, (time, "abc".to_string()));
        for bad in ["", "!!", "bm90LWEtY3Vyc29y"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
