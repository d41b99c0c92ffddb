//! `POST /projects/{project_id}/s3-credentials` (project admin): issues an S3 access key id and
//! secret for one API key of the project; the secret is in this answer only (ADR 0032).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::api::extract::{ApiJson, ProjectAccess};
use crate::error::ApiResult;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateCredential {
    /// The API key the credential signs as (its project and scope apply).
    api_key_id: String,
}

pub async fn create(
    State(state): State<AppState>,
    access: ProjectAccess,
    ApiJson(body): ApiJson<CreateCredential>,
) -> ApiResult<impl IntoResponse> {
    let project = access.existing_project(&state)?;
    let issued = state.s3.issue(&project, &body.api_key_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "access_key_id": issued.access_key_id,
            "secret_access_key": issued.secret_access_key,
            "api_key_id": issued.record.api_key_id,
            "project_id": issued.record.project_id,
            "bucket": format!("project_{}", issued.record.project_id),
            "endpoint_path": super::PREFIX,
            "region": super::REGION,
            "created_at": issued.record.created_at.to_rfc3339(),
        })),
    ))
}
