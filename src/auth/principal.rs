//! Who is calling: the admin, or one project's key. Extracted from `Authorization: Bearer`,
//! `X-Api-Key` or `X-StorageApi-Token`; handlers ask it for the access they need.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

use std::sync::Arc;

use super::scope::{Need, Target};
use crate::catalog::KeyRecord;
use crate::error::{ApiError, ApiResult};
use crate::names::{BucketName, ProjectId};
use crate::state::AppState;

#[derive(Debug, Clone)]
pub enum Principal {
    Admin,
    /// One active API key, as the catalog holds it now.
    Key(Arc<KeyRecord>),
}

impl Principal {
    pub fn require_admin(&self) -> ApiResult<()> {
        match self {
            Self::Admin => Ok(()),
            Self::Key(_) => Err(ApiError::forbidden(
                "this operation requires the admin API key",
            )),
        }
    }

    /// The admin may act on any project; a key only on its own.
    pub fn require_project(&self, project: &ProjectId) -> ApiResult<()> {
        match self {
            Self::Key(key) if key.grant.project != *project => Err(ApiError::forbidden(format!(
                "this API key has no access to project '{project}'"
            ))),
            _ => Ok(()),
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin)
    }

    /// The key's project; `None` for the admin.
    pub fn project(&self) -> Option<&ProjectId> {
        match self {
            Self::Admin => None,
            Self::Key(key) => Some(&key.grant.project),
        }
    }

    /// `Ok` when this caller may do what `need` asks on `target` (403 saying why otherwise).
    pub fn allows(&self, need: Need, target: &Target<'_>) -> ApiResult<()> {
        match self {
            Self::Admin => Ok(()),
            Self::Key(key) => key.grant.allows(need, target),
        }
    }

    /// Whether bucket lists show `bucket` to this caller (keys limited to some buckets).
    pub fn sees_bucket(&self, bucket: &BucketName) -> bool {
        match self {
            Self::Admin => true,
            Self::Key(key) => key.grant.sees_bucket(bucket),
        }
    }

    /// The identity idempotency keys and rate limits are kept per: the admin, or one key.
    pub fn caller_id(&self) -> String {
        match self {
            Self::Admin => "admin".to_string(),
            Self::Key(key) => format!("key:{}", key.id),
        }
    }
}

/// The key presented with the request, if any.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let auth = auth.trim();
        if let Some((scheme, token)) = auth.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some(token.trim());
            }
        }
    }
    ["x-api-key", "x-storageapi-token"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .find(|v| !v.is_empty())
}

impl Principal {
    /// Who sent the request: 401 without a key or with one that is not valid.
    pub async fn authenticate(parts: &Parts, state: &AppState) -> ApiResult<Self> {
        let key = presented_key(&parts.headers).ok_or_else(|| {
            ApiError::unauthorized(
                "missing API key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'",
            )
        })?;
        state
            .keys
            .authenticate(key, client_address(parts), &state.catalog)
            .await
    }
}

/// The principal the access gate (`api::access`) put in the request, or, on a route outside
/// the gate, authenticated here.
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        Self::authenticate(parts, state).await
    }
}

/// The peer's address, when the server was started with connect info (`serve_on` does); the
/// address throttle is skipped without it. Forwarding headers are not trusted: anyone can
/// send them, and a forged one would throttle someone else.
fn client_address(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_and_alternative_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-storageapi-token", "abc".parse().unwrap());
        assert_eq!(presented_key(&h), Some("abc"));
        h.insert("authorization", "Bearer  xyz ".parse().unwrap());
        assert_eq!(presented_key(&h), Some("xyz"));
        h.insert("authorization", "Basic xyz".parse().unwrap());
        assert_eq!(presented_key(&h), Some("abc"));
    }
}
