//! The documentation of `/internal/pgwire/*` (ADR 0033), the reference's routes for an
//! external wire server, in the reference's shapes.

use serde_json::{json, Value};

use super::{doc, json_content, Doc};

fn session_info() -> Value {
    let text = || json!({ "type": ["string", "null"] });
    json!({
        "type": "object",
        "required": ["session_id", "workspace_id", "query_count", "status"],
        "properties": {
            "session_id": { "type": "string" },
            "workspace_id": { "type": "string" },
            "client_ip": text(),
            "connected_at": text(),
            "last_activity_at": text(),
            "query_count": { "type": "integer" },
            "status": { "type": "string", "description": "`active`, `timeout`, or the reason it was closed with (`disconnected`)." },
        },
    })
}

/// `suffix` is the path after `/internal/pgwire`.
pub fn entry(method: &str, suffix: &str) -> Option<Doc> {
    let d = match (method, suffix) {
        ("POST", "/auth") => doc("Check a workspace login for an external wire server")
            .raw_body(json_content(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "username": { "type": "string" },
                    "password": { "type": "string" },
                    "client_ip": { "type": ["string", "null"] },
                },
                "required": ["username", "password"],
            })))
            .ok(
                200,
                "What the external server needs to open the session.",
                json!({
                    "type": "object",
                    "required": ["workspace_id", "project_id", "db_path", "tables", "memory_limit", "query_timeout_seconds"],
                    "properties": {
                        "workspace_id": { "type": "string" },
                        "project_id": { "type": "string" },
                        "branch_id": { "type": ["string", "null"] },
                        "db_path": { "type": "string" },
                        "tables": { "type": "array", "items": {
                            "type": "object",
                            "required": ["bucket", "name", "path", "rows"],
                            "properties": {
                                "bucket": { "type": "string" },
                                "name": { "type": "string" },
                                "path": { "type": "string" },
                                "rows": { "type": "integer" },
                            },
                        } },
                        "memory_limit": { "type": "string" },
                        "query_timeout_seconds": { "type": "integer" },
                    },
                }),
            )
            .errors(&[410, 429]),
        ("GET", "/sessions") => doc("List external wire sessions")
            .query("workspace_id", json!({ "type": "string" }))
            .query("status", json!({ "type": "string" }))
            .ok(200, "The sessions, oldest first.", json!({ "type": "array", "items": session_info() })),
        ("POST", "/sessions") => doc("Register an external wire session (takes a session place)")
            .raw_body(json_content(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "session_id": { "type": "string", "minLength": 1, "maxLength": 128 },
                    "workspace_id": { "type": "string" },
                    "client_ip": { "type": ["string", "null"] },
                },
                "required": ["session_id", "workspace_id"],
            })))
            .ok(201, "The registered session.", session_info())
            .errors(&[404, 409, 410, 429]),
        ("POST", "/sessions/cleanup") => doc("Time out sessions idle too long")
            .query("idle_timeout_seconds", json!({ "type": "integer", "minimum": 0 }))
            .ok(
                200,
                "How many were timed out.",
                json!({ "type": "object", "properties": {
                    "cleaned": { "type": "integer" },
                    "idle_timeout_seconds": { "type": "integer" } } }),
            ),
        ("GET", "/sessions/{session_id}") => doc("Get an external wire session")
            .ok(200, "The session.", session_info())
            .errors(&[404]),
        ("DELETE", "/sessions/{session_id}") => doc("Close an external wire session")
            .query("reason", json!({ "type": "string", "default": "disconnected" }))
            .no_content()
            .errors(&[404]),
        ("PATCH", "/sessions/{session_id}/activity") => doc("Record a session's activity")
            .raw_body(json_content(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": { "increment_queries": { "type": "boolean", "default": true } },
            })))
            .ok(200, "The session.", session_info())
            .errors(&[404]),
        _ => return None,
    };
    Some(d)
}
