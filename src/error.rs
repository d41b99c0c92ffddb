//! The one error type every layer returns, and its mapping to HTTP status + reference error body.
//! Nothing else in the crate picks status codes; internal causes are logged, never sent to clients.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or names something invalid (400).
    #[error("{message}")]
    BadRequest {
        message: String,
        details: Option<Value>,
    },
    /// The JSON body does not match the expected schema (422, like the reference's validation errors).
    #[error("{message}")]
    Unprocessable {
        message: String,
        details: Option<Value>,
    },
    /// No key, or a key nobody knows (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid key that may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The named resource does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The resource exists already or is in a state that forbids the change (409).
    #[error("{message}")]
    Conflict {
        message: String,
        details: Option<Value>,
    },
    /// The body is larger than allowed (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The upload session or key existed but has expired (410).
    #[error("{0}")]
    Gone(String),
    /// Not enough free disk space to accept the data (507).
    #[error("{0}")]
    InsufficientStorage(String),
    /// Too much work queued; the client should retry after the given seconds (429).
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// The server cannot take the request now: storage not ready, disk nearly full (503).
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an environment failure; the cause is logged, the client sees only the request id (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request_with(message: impl Into<String>, details: Value) -> Self {
        Self::BadRequest {
            message: message.into(),
            details: Some(details),
        }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            details: None,
        }
    }

    pub fn conflict_with(message: impl Into<String>, details: Value) -> Self {
        Self::Conflict {
            message: message.into(),
            details: Some(details),
        }
    }

    pub fn unprocessable_with(message: impl Into<String>, details: Value) -> Self {
        Self::Unprocessable {
            message: message.into(),
            details: Some(details),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Gone(_) => StatusCode::GONE,
            Self::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `error` code of the reference body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad_request",
            Self::Unprocessable { .. } => "validation_error",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Conflict { .. } => "conflict",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::Gone(_) => "gone",
            Self::InsufficientStorage(_) => "insufficient_storage",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    fn details(&self) -> Option<&Value> {
        match self {
            Self::BadRequest { details, .. }
            | Self::Unprocessable { details, .. }
            | Self::Conflict { details, .. } => details.as_ref(),
            _ => None,
        }
    }

    /// The message shown to the client: internal causes are replaced by a generic text.
    fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => {
                "internal server error; quote the x-request-id header when reporting it".to_string()
            }
            other => other.to_string(),
        }
    }
}

impl ApiError {
    /// The reference error body; an internal cause is logged here, never sent.
    pub fn body(&self) -> Value {
        if let Self::Internal(cause) = self {
            tracing::error!(%cause, "request failed with an internal error");
        }
        json!({
            "error": self.code(),
            "message": self.public_message(),
            "details": self.details(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Self::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs),
            );
        }
        response
    }
}

impl From<duckdb::Error> for ApiError {
    fn from(err: duckdb::Error) -> Self {
        let text = err.to_string();
        // A full disk is the operator's to fix, not a bug: say so (507) instead of hiding it.
        if text.contains("No space left on device") {
            let first = text.lines().next().unwrap_or_default();
            return Self::InsufficientStorage(format!("the disk is full: {first}"));
        }
        Self::Internal(format!("duckdb: {text}"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(err: std::io::Error) -> Self {
        Self::Internal(format!("io: {err}"))
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::Internal(format!("blocking task failed: {err}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
