//! Public health endpoints: `/health` (reference shape), `/healthz` (liveness), `/readyz`
//! (data dir writable and enough free space). They never touch table files.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::state::{AppState, DATA_SUBDIRS};

pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let data_dir = state.config.data_dir.clone();
    let catalog = state.catalog.clone();
    let details = tokio::task::spawn_blocking(move || {
        let mut details = serde_json::Map::new();
        details.insert("data_dir".into(), data_dir.is_dir().into());
        for sub in DATA_SUBDIRS {
            details.insert(format!("{sub}_dir"), data_dir.join(sub).is_dir().into());
        }
        details.insert("metadata_db".into(), catalog.ping().into());
        details
    })
    .await
    .unwrap_or_default();
    let ok = !details.is_empty() && details.values().all(|v| v.as_bool() == Some(true));
    let body = json!({
        "status": if ok { "healthy" } else { "unhealthy" },
        "version": env!("CARGO_PKG_VERSION"),
        "storage_available": ok,
        "details": details,
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let data_dir = state.config.data_dir.clone();
    let min_free = state.config.min_free_bytes;
    let verdict = tokio::task::spawn_blocking(move || readiness(&data_dir, min_free))
        .await
        .unwrap_or_else(|e| Err(format!("readiness check failed: {e}")));
    match verdict {
        Ok(free) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "free_bytes": free, "min_free_bytes": min_free })),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": "not_ready",
                "message": reason,
                "details": { "min_free_bytes": min_free },
            })),
        ),
    }
}

/// Free bytes when the data dir is writable and has at least `min_free` bytes free.
fn readiness(data_dir: &std::path::Path, min_free: u64) -> Result<u64, String> {
    let probe = data_dir.join(format!(".readyz-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&probe, b"ok").map_err(|e| format!("data dir is not writable: {e}"))?;
    let _ = std::fs::remove_file(&probe);
    let free = crate::files::disk::available_space(data_dir)
        .map_err(|e| format!("cannot read free space: {e}"))?;
    if free < min_free {
        return Err(format!(
            "only {free} bytes free in the data dir; at least {min_free} (MIN_FREE_BYTES) are required"
        ));
    }
    Ok(free)
}
