//! `/internal/pgwire/*` (ADR 0033): the reference's routes for an external wire server: log a
//! workspace user in, register, list, touch and close its sessions. Only the admin key or
//! PGWIRE_INTERNAL_TOKEN passes the gate (`Need::PgwireInternal`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{ApiJson, ApiQuery};
use crate::error::ApiError;
use crate::error::ApiResult;
use crate::service::pgwire::{self as service, AuthBody, SessionBody};
use crate::state::AppState;

/// The address the request came from, when the server knows it.
pub struct Peer(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip()),
        ))
    }
}

fn session_id(params: &HashMap<String, String>) -> ApiResult<&str> {
    params
        .get("session_id")
        .map(String::as_str)
        .ok_or_else(|| ApiError::internal("route lacks {session_id}"))
}

/// `POST /internal/pgwire/auth`: throttled per client (`client_ip` when given, else the
/// caller's address), with the built-in wire server's throttle.
pub async fn auth(
    State(state): State<AppState>,
    Peer(peer): Peer,
    ApiJson(body): ApiJson<AuthBody>,
) -> ApiResult<Json<Value>> {
    let address = service::parse_ip(body.client_ip.as_deref())?.or(peer);
    Ok(Json(service::authenticate(&state, body, address).await?))
}

pub async fn create_session(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SessionBody>,
) -> ApiResult<impl IntoResponse> {
    let info = state.pgwire_sessions.create(&state, body).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    workspace_id: Option<String>,
    status: Option<String>,
}

/// `GET /internal/pgwire/sessions`: a bare array, as in the reference.
pub async fn list_sessions(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Json<Value> {
    Json(Value::Array(
        state
            .pgwire_sessions
            .list(q.workspace_id.as_deref(), q.status.as_deref()),
    ))
}

pub async fn get_session(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    Ok(Json(state.pgwire_sessions.get(session_id(&params)?)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseQuery {
    reason: Option<String>,
}

pub async fn close_session(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    ApiQuery(q): ApiQuery<CloseQuery>,
) -> ApiResult<StatusCode> {
    let reason = q.reason.as_deref().unwrap_or("disconnected");
    state.pgwire_sessions.close(session_id(&params)?, reason)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityBody {
    increment_queries: Option<bool>,
}

pub async fn activity(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    ApiJson(body): ApiJson<Option<ActivityBody>>,
) -> ApiResult<Json<Value>> {
    let increment = body.and_then(|b| b.increment_queries).unwrap_or(true);
    Ok(Json(
        state
            .pgwire_sessions
            .activity(session_id(&params)?, increment)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanupQuery {
    idle_timeout_seconds: Option<u64>,
}

/// `POST /internal/pgwire/sessions/cleanup`: `{cleaned, idle_timeout_seconds}`.
pub async fn cleanup(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<CleanupQuery>,
) -> Json<Value> {
    let idle = q
        .idle_timeout_seconds
        .unwrap_or(service::DEFAULT_IDLE_TIMEOUT_SECS);
    let cleaned = state.pgwire_sessions.cleanup(Duration::from_secs(idle));
    Json(serde_json::json!({ "cleaned": cleaned, "idle_timeout_seconds": idle }))
}
