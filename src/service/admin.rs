//! Operator views of the data dir that no project owns: what start-ups moved to the
//! quarantine instead of deleting it.

use super::blocking;
use crate::engine::quarantine::{self, QuarantineEntry};
use crate::error::ApiResult;
use crate::state::AppState;

/// Everything in `DATA_DIR/quarantine` that a start-up moved there, oldest first.
pub async fn quarantined(state: &AppState) -> ApiResult<Vec<QuarantineEntry>> {
    let data_dir = state.config.data_dir.clone();
    blocking(move || Ok(quarantine::list(&data_dir)?)).await
}
