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
    let created = blocking(move || {
        // Looked at before creating, so the message can say what this call added.
        let missing: Vec<&str> = std::iter::once("")
            .chain(DATA_SUBDIRS.iter().copied())
            .filter(|sub| !data_dir.join(sub).is_dir())
            .collect();
        init_layout(&data_dir)?;
        Ok(missing)
    })
    .await?;
    let data_dir = &state.config.data_dir;
    // The reference's keys: `<sub>_dir` for each directory, plus the catalog file.
    let mut paths = serde_json::Map::new();
    paths.insert("data_dir".into(), data_dir.display().to_string().into());
    for sub in DATA_SUBDIRS {
        paths.insert(
            format!("{sub}_dir"),
            data_dir.join(sub).display().to_string().into(),
        );
    }
    paths.insert(
        "metadata_db".into(),
        data_dir
            .join("metadata.duckdb")
            .display()
            .to_string()
            .into(),
    );
    Ok(Json(json!({
        "success": true,
        "message": init_message(&created),
        "storage_paths": paths,
    })))
}

/// Says which directories this call created and which were already there.
fn init_message(created: &[&str]) -> String {
    let mut new = Vec::new();
    let mut present = Vec::new();
    for sub in std::iter::once("").chain(DATA_SUBDIRS.iter().copied()) {
        let name = if sub.is_empty() {
            "data_dir".to_string()
        } else {
            format!("{sub}_dir")
        };
        if created.contains(&sub) {
            new.push(name);
        } else {
            present.push(name);
        }
    }
    match (new.is_empty(), present.is_empty()) {
        (true, _) => format!(
            "storage backend initialized: all directories were already present ({})",
            present.join(", ")
        ),
        (false, true) => format!("storage backend initialized: created {}", new.join(", ")),
        (false, false) => format!(
            "storage backend initialized: created {}; already present: {}",
            new.join(", "),
            present.join(", ")
        ),
    }
}

pub async fn remove(principal: Principal) -> ApiResult<Json<Value>> {
    principal.require_admin()?;
    Ok(Json(json!({
        "success": true,
        "message": "backend remove is a no-op: delete projects to remove their data",
        "storage_paths": null,
    })))
}
