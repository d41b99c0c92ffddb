//! Admin backend endpoints: `/backend/init` creates the data dir layout, `/backend/remove`
//! is the reference's no-op. Both require the admin key.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::service::blocking;
use crate::state::{init_layout, AppState, DATA_SUBDIRS};

pub async fn init(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    let data_dir = state.config.data_dir.clone();
    blocking(move || Ok(init_layout(&data_dir)?)).await?;
    let mut paths = serde_json::Map::new();
    paths.insert(
        "data_dir".into(),
        state.config.data_dir.display().to_string().into(),
    );
    paths.insert(
        "metadata_db".into(),
        state
            .config
            .data_dir
            .join("metadata.duckdb")
            .display()
            .to_string()
            .into(),
    );
    for sub in DATA_SUBDIRS {
        paths.insert(
            sub.to_string(),
            state.config.data_dir.join(sub).display().to_string().into(),
        );
    }
    Ok(Json(json!({
        "success": true,
        "message": "storage backend initialized",
        "storage_paths": paths,
    })))
}

pub async fn remove(principal: Principal) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    Ok(Json(json!({
        "success": true,
        "message": "backend remove is a no-op: delete projects to remove their data",
        "storage_paths": null,
    })))
}
