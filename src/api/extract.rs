//! Request extractors shared by the routers: JSON bodies and query strings with our error
//! format, and the validated, access-checked project, bucket and table a path names.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorCode};
use crate::names::{BranchId, BucketName, ProjectId, TableName};
use crate::state::AppState;

/// A JSON body. Malformed JSON is 400; JSON of the wrong shape is 422 with the serde reason.
/// The Content-Type is not enforced, like the reference service.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "request body is larger than MAX_BODY_BYTES",
                )
            } else {
                ApiError::bad_request(format!("cannot read request body: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"null".as_slice()
    } else {
        bytes
    };
    // Syntax first, shape second: a body that is not JSON at all is 400 even when it
    // also lacks fields.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request_with(
            format!("request body is not valid JSON: {e}"),
            serde_json::json!({ "line": e.line(), "column": e.column() }),
        )
    })?;
    serde_json::from_value(value).map_err(|e| {
        ApiError::unprocessable(format!(
            "request body does not match the expected schema: {e}"
        ))
    })
}

/// Query parameters; unparsable values are 422 naming the problem, as in the reference.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| {
                ApiError::unprocessable(format!("invalid query string: {}", e.body_text()))
            })
    }
}

/// Raw path parameters under the names both route styles use.
#[derive(Deserialize)]
struct RawScope {
    project_id: String,
    branch_id: Option<String>,
    bucket_name: Option<String>,
    table_name: Option<String>,
}

/// Which URL family a request came through; the reference (branch-first) family keeps the
/// reference service's defaults where they differ from duckbank's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// `/projects/{id}/buckets/...` (the seed's README).
    Seed,
    /// `/projects/{id}/branches/{branch}/buckets/...` (the reference OpenAPI contract).
    Reference,
}

/// The validated names a path addresses. Missing segments are `None`.
pub struct Scope {
    pub project: ProjectId,
    /// The path's branch; `default` on the seed's paths, which have none.
    pub branch: BranchId,
    pub style: PathStyle,
    pub bucket: Option<BucketName>,
    pub table: Option<TableName>,
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<RawScope>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))?;
        let (branch, style) = match &raw.branch_id {
            Some(branch) => (BranchId::parse(branch)?, PathStyle::Reference),
            None => (BranchId::Default, PathStyle::Seed),
        };
        Ok(Self {
            project: ProjectId::parse(&raw.project_id)?,
            branch,
            style,
            bucket: raw
                .bucket_name
                .as_deref()
                .map(BucketName::parse)
                .transpose()?,
            table: raw
                .table_name
                .as_deref()
                .map(TableName::parse)
                .transpose()?,
        })
    }
}

/// An authenticated caller allowed to act on the project named in the path.
/// Order of checks: key (401), path names (400/404 branch), project access (403).
pub struct ProjectAccess {
    pub principal: Principal,
    pub scope: Scope,
}

impl FromRequestParts<AppState> for ProjectAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let scope = Scope::from_request_parts(parts, state).await?;
        principal.require_project(&scope.project)?;
        if let Some(dev) = scope.branch.dev() {
            // A missing project is the service's 404 to give; a missing branch is ours.
            let known = state.catalog.read(|m| {
                m.project(&scope.project)
                    .map(|p| p.branches.contains_key(dev))
            });
            if known == Some(false) {
                return Err(crate::catalog::branches::branch_not_found(dev.as_str()));
            }
        }
        Ok(Self { principal, scope })
    }
}

impl ProjectAccess {
    /// The project the path names; 404 unless it exists (for routes whose service does not
    /// look it up).
    pub fn existing_project(self, state: &AppState) -> Result<ProjectId, ApiError> {
        require_project_exists(state, &self.scope.project)?;
        Ok(self.scope.project)
    }

    /// The bucket the path names (it must name one) and the table, if it names one too.
    fn into_bucket(self) -> Result<(BucketAccess, Option<TableName>), ApiError> {
        let Self { principal, scope } = self;
        let bucket = scope.bucket.ok_or_else(missing_segment("bucket"))?;
        let access = BucketAccess {
            principal,
            project: scope.project,
            branch: scope.branch,
            bucket,
            style: scope.style,
        };
        Ok((access, scope.table))
    }
}

/// A `ProjectAccess` on a route whose path names a bucket.
pub struct BucketAccess {
    pub principal: Principal,
    pub project: ProjectId,
    pub branch: BranchId,
    pub bucket: BucketName,
    pub style: PathStyle,
}

impl FromRequestParts<AppState> for BucketAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (access, _table) = ProjectAccess::from_request_parts(parts, state)
            .await?
            .into_bucket()?;
        Ok(access)
    }
}

/// A `ProjectAccess` on a route whose path names a bucket and a table.
pub struct TableAccess {
    pub principal: Principal,
    pub project: ProjectId,
    pub branch: BranchId,
    pub bucket: BucketName,
    pub table: TableName,
    pub style: PathStyle,
}

impl FromRequestParts<AppState> for TableAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let (access, table) = ProjectAccess::from_request_parts(parts, state)
            .await?
            .into_bucket()?;
        let table = table.ok_or_else(missing_segment("table"))?;
        Ok(Self {
            principal: access.principal,
            project: access.project,
            branch: access.branch,
            bucket: access.bucket,
            table,
            style: access.style,
        })
    }
}

/// 400 `operation_not_allowed` in a dev branch: buckets and sharing exist on main only
/// (the reference's rule; ADR 0031).
pub fn main_only(branch: &BranchId, what: &str) -> Result<(), ApiError> {
    match branch {
        BranchId::Default => Ok(()),
        BranchId::Dev(id) => Err(ApiError::new(
            crate::error::ErrorCode::OperationNotAllowed,
            format!("{what} is only possible on the main branch, not in dev branch '{id}'"),
        )),
    }
}

/// A route registered with the wrong extractor: a bug of ours, not of the request.
fn missing_segment(segment: &'static str) -> impl FnOnce() -> ApiError {
    move || ApiError::internal(format!("route without a {segment} segment"))
}

/// 404 unless the project exists (for routes whose service does not look it up).
pub fn require_project_exists(state: &AppState, project: &ProjectId) -> Result<(), ApiError> {
    state
        .catalog
        .read(|m| m.existing_project(project).map(|_| ()))
}
