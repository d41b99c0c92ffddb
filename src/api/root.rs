//! `GET /`: public service info (name, version, where to look next) for people and probes.
//! It reads nothing but compile-time constants, so it never touches storage.

use axum::Json;
use serde_json::{json, Value};

/// The reference defines no `/`; this shape is duckbank's own. Links point only at routes
/// this server really serves.
pub async fn root() -> Json<Value> {
    Json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "links": {
            "health": "/health",
            "healthz": "/healthz",
            "readyz": "/readyz",
            "openapi": super::openapi::PATH,
            "docs": super::openapi::DOCS_PATH,
        },
    }))
}
