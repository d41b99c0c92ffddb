//! `/admin` routes: operator views that need the admin key: the quarantine of paths start-up
//! did not understand (moved aside, not deleted) and the sizes of the engine's in-memory tables.

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

/// `GET /admin/engine`, counters only (opens no file), so operators and tests can see the
/// in-memory tables stay bounded.
///
/// `lock_entries`: table/bucket/project locks held or waited for now (0 when idle);
/// `attached_tables`: table files attached now (at most `table_cache_size` when idle);
/// `tables_without_figures`: tables whose list figures will be read from their file when next
/// listed (their file changed behind the catalog's back, or they predate recorded figures).
pub async fn engine(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let without_figures = state.catalog.read(|m| {
        m.projects
            .values()
            .flat_map(|p| p.buckets.values())
            .flat_map(|b| b.tables.values())
            .filter(|t| t.stats.is_none())
            .count()
    });
    Ok(Json(json!({
        "lock_entries": state.engine.locks.entries(),
        "attached_tables": state.engine.attached_count(),
        "table_cache_size": state.config.table_cache_size,
        "tables_without_figures": without_figures,
    })))
}
