//! Public health endpoints: `/health` (reference shape), `/healthz` (liveness), `/readyz`
//! (data dir writable and enough free space). They never touch table files.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorCode};
use crate::state::{AppState, DATA_SUBDIRS};

/// 200 with the reference's `{status, version, storage_available, details}`; when a check
/// fails, 503 `storage_unavailable` naming the failed checks, with those fields kept beside
/// the error's so clients of either shape read it.
pub async fn health(State(state): State<AppState>) -> Response {
    let data_dir = state.config.data_dir.clone();
    let catalog = state.catalog.clone();
    let checks = tokio::task::spawn_blocking(move || {
        let mut checks = serde_json::Map::new();
        checks.insert("data_dir".into(), data_dir.is_dir().into());
        for sub in DATA_SUBDIRS {
            checks.insert(format!("{sub}_dir"), data_dir.join(sub).is_dir().into());
        }
        checks.insert("metadata_db".into(), catalog.ping().into());
        checks
    })
    .await
    .unwrap_or_default();
    let failed: Vec<String> = checks
        .iter()
        .filter(|(_, ok)| ok.as_bool() != Some(true))
        .map(|(name, _)| name.clone())
        .collect();
    let ok = !checks.is_empty() && failed.is_empty();
    let version = env!("CARGO_PKG_VERSION");
    if ok {
        return Json(json!({
            "status": "healthy",
            "version": version,
            "storage_available": true,
            "details": checks,
        }))
        .into_response();
    }
    let message = if failed.is_empty() {
        "storage is unavailable: the health checks could not run".to_string()
    } else {
        format!("storage is unavailable: {} failed", failed.join(", "))
    };
    let mut details = checks;
    details.insert("unavailable".into(), json!(failed));
    let err =
        ApiError::new(ErrorCode::StorageUnavailable, message).with_details(Value::Object(details));
    let mut body = err.body();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("status".into(), json!("unhealthy"));
        fields.insert("version".into(), json!(version));
        fields.insert("storage_available".into(), json!(false));
    }
    (err.status(), Json(body)).into_response()
}

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 when ready; else 503 `storage_unavailable` whose details name the failed check.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let data_dir = state.config.data_dir.clone();
    let min_free = state.config.min_free_bytes;
    let verdict = tokio::task::spawn_blocking(move || readiness(&data_dir, min_free))
        .await
        .unwrap_or_else(|e| {
            Err(not_ready(
                "readiness_check",
                format!("readiness check failed: {e}"),
                min_free,
            ))
        });
    match verdict {
        Ok(free) => {
            Json(json!({ "status": "ready", "free_bytes": free, "min_free_bytes": min_free }))
                .into_response()
        }
        Err(err) => err.into_response(),
    }
}

/// 503 `storage_unavailable` for the failed readiness `check`.
fn not_ready(check: &str, reason: String, min_free: u64) -> ApiError {
    ApiError::new(ErrorCode::StorageUnavailable, reason)
        .with_details(json!({ "not_ready": check, "min_free_bytes": min_free }))
}

/// Free bytes when the data dir is writable and has at least `min_free` bytes free.
fn readiness(data_dir: &std::path::Path, min_free: u64) -> Result<u64, ApiError> {
    let probe = data_dir.join(format!(".readyz-{}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&probe, b"ok").map_err(|e| {
        not_ready(
            "data_dir_writable",
            format!("data dir is not writable: {e}"),
            min_free,
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    let free = crate::files::disk::available_space(data_dir).map_err(|e| {
        not_ready(
            "free_space",
            format!("cannot read free space: {e}"),
            min_free,
        )
    })?;
    if free < min_free {
        return Err(ApiError::new(
            ErrorCode::StorageUnavailable,
            format!(
                "only {free} bytes free in the data dir; at least {min_free} (MIN_FREE_BYTES) are required"
            ),
        )
        .with_details(
            json!({ "not_ready": "free_space", "free_bytes": free, "min_free_bytes": min_free }),
        ));
    }
    Ok(free)
}
