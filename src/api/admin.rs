//! `/admin` routes: operator views that need the admin key, such as the quarantine of
//! paths start-up did not understand and moved aside instead of deleting.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::service::admin;
use crate::state::AppState;

/// `GET /admin/quarantine`: `{entries: [{quarantined_at, path, kind, size_bytes}], total}`.
pub async fn quarantine(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let entries = admin::quarantined(&state).await?;
    Ok(Json(json!({ "total": entries.len(), "entries": entries })))
}
