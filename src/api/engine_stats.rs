//! `GET /admin/engine` (admin key): the sizes of the engine's in-memory tables, so operators
//! and tests can see that they stay bounded. It reads counters only and opens no file.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::state::AppState;

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
