//! `POST …/profile`: per-column statistics of a table (read through links).
//! It only shapes the answer; the statistics are computed by the service.

use axum::extract::State;
use axum::Json;

use crate::api::extract::TableAccess;
use crate::api::responses::ProfileResponse;
use crate::error::ApiResult;
use crate::service::table_data;
use crate::state::AppState;

pub async fn profile(
    State(state): State<AppState>,
    access: TableAccess,
) -> ApiResult<Json<ProfileResponse>> {
    let profile = table_data::profile(
        &state,
        &access.project,
        &access.branch,
        &access.bucket,
        &access.table,
    )
    .await?;
    Ok(Json(ProfileResponse::new(
        access.bucket,
        access.table,
        profile,
    )))
}
