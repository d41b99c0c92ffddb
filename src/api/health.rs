//! Public health endpoints: `/health` (reference shape), `/healthz` (liveness), `/readyz`
//! (data dir writable and enough free space). They read state checked in the background.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorCode};
use crate::service::health::HealthSnapshot;
use crate::state::AppState;

/// 200 with the reference's `{status, version, storage_available, details}`; when a check
/// fails, 503 `storage_unavailable` naming the failed checks, with those fields kept beside
/// the error's so clients of either shape read it. Answers from the background snapshot.
pub async fn health(State(state): State<AppState>) -> Response {
    let snapshot = state.health.latest();
    let checks: serde_json::Map<String, Value> = snapshot
        .checks
        .iter()
        .map(|(name, ok)| (name.clone(), Value::Bool(*ok)))
        .collect();
    let failed = snapshot.failed();
    let version = env!("CARGO_PKG_VERSION");
    let checked_at = snapshot.checked_at.to_rfc3339();
    if failed.is_empty() {
        return Json(json!({
            "status": "healthy",
            "version": version,
            "storage_available": true,
            "details": checks,
            "checked_at": checked_at,
        }))
        .into_response();
    }
    let message = format!("storage is unavailable: {} failed", failed.join(", "));
    let mut details = checks;
    details.insert("unavailable".into(), json!(failed));
    let err =
        ApiError::new(ErrorCode::StorageUnavailable, message).with_details(Value::Object(details));
    let mut body = err.body();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("status".into(), json!("unhealthy"));
        fields.insert("version".into(), json!(version));
        fields.insert("storage_available".into(), json!(false));
        fields.insert("checked_at".into(), json!(checked_at));
    }
    (err.status(), Json(body)).into_response()
}

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// 200 when ready; else 503 `storage_unavailable` whose details name the failed check.
/// Answers from the background snapshot, like `/health`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.health.latest();
    match readiness(&snapshot, state.config.min_free_bytes) {
        Ok(free) => Json(json!({
            "status": "ready",
            "free_bytes": free,
            "min_free_bytes": state.config.min_free_bytes,
            "checked_at": snapshot.checked_at.to_rfc3339(),
        }))
        .into_response(),
        Err(err) => err.into_response(),
    }
}

/// 503 `storage_unavailable` for the failed readiness `check`.
fn not_ready(check: &str, reason: String, min_free: u64) -> ApiError {
    ApiError::new(ErrorCode::StorageUnavailable, reason)
        .with_details(json!({ "not_ready": check, "min_free_bytes": min_free }))
}

/// Free bytes when the data dir was writable and had at least `min_free` bytes free.
fn readiness(snapshot: &HealthSnapshot, min_free: u64) -> Result<u64, ApiError> {
    if let Err(e) = &snapshot.writable {
        return Err(not_ready(
            "data_dir_writable",
            format!("data dir is not writable: {e}"),
            min_free,
        ));
    }
    let free = snapshot.free_bytes.clone().map_err(|e| {
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
