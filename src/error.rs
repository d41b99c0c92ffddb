//! The one error type every layer returns: what went wrong (`ErrorCode`), a message for the
//! client, optional details, and for internal errors the cause chain, which only the log sees.
//! Status codes and the wire body are chosen here and nowhere else.
//! Long: one enum with its status and origin table, and the tests that keep it and the README's
//! error table in step; splitting it would scatter the one place codes are decided.

use std::error::Error as StdError;
use std::fmt;
use std::path::Path;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Defines `ErrorCode` with its wire name and status in one table, so neither can drift.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident => ($name:literal, $status:ident, $origin:ident),)*) => {
        /// What went wrong, as a client branches on it: the reference service's `error` values,
        /// plus duckbank's own (marked `Duckbank`) where the reference has no equivalent.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, for documentation and the mapping tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The `error` string on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name,)* }
            }

            /// The one HTTP status this code is answered with.
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)* }
            }

            /// Whether the reference service uses this code too (else it is duckbank's own).
            pub fn origin(self) -> CodeOrigin {
                match self { $(ErrorCode::$variant => CodeOrigin::$origin,)* }
            }
        }
    };
}

/// Where an error code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOrigin {
    /// The reference service sends the same `error` value.
    Reference,
    /// duckbank's own case, named in the same style.
    Duckbank,
}

error_codes! {
    /// No project with that id.
    ProjectNotFound => ("project_not_found", NOT_FOUND, Reference),
    /// A project with that id exists already.
    ProjectExists => ("project_exists", CONFLICT, Reference),
    /// No bucket with that name in the project.
    BucketNotFound => ("bucket_not_found", NOT_FOUND, Reference),
    /// A bucket with that name exists already.
    BucketExists => ("bucket_exists", CONFLICT, Reference),
    /// The project links that bucket already.
    BucketAlreadyLinked => ("bucket_already_linked", CONFLICT, Reference),
    /// No table with that name in the bucket.
    TableNotFound => ("table_not_found", NOT_FOUND, Reference),
    /// A table with that name exists already.
    TableExists => ("table_exists", CONFLICT, Reference),
    /// The table has no column with that name.
    ColumnNotFound => ("column_not_found", NOT_FOUND, Reference),
    /// The table has a column with that name already.
    ColumnExists => ("column_exists", CONFLICT, Reference),
    /// The column is part of the primary key and cannot be dropped or made nullable.
    ColumnInPrimaryKey => ("column_in_primary_key", BAD_REQUEST, Reference),
    /// A table must keep at least one column.
    CannotDropLastColumn => ("cannot_drop_last_column", BAD_REQUEST, Reference),
    /// The table has a primary key already.
    PrimaryKeyExists => ("primary_key_exists", CONFLICT, Reference),
    /// The table has no primary key to drop or to upsert on.
    NoPrimaryKey => ("no_primary_key", BAD_REQUEST, Reference),
    /// The primary key names unknown or repeated columns.
    InvalidPrimaryKey => ("invalid_primary_key", BAD_REQUEST, Reference),
    /// Rows repeat a primary key where that is not allowed.
    DuplicateKey => ("duplicate_key", CONFLICT, Reference),
    /// A change request that changes nothing.
    NoChangesSpecified => ("no_changes_specified", BAD_REQUEST, Reference),
    /// A filter (where clause, whereColumn/whereValues, filter list) that does not parse or bind.
    InvalidWhereClause => ("invalid_where_clause", BAD_REQUEST, Reference),
    /// An unknown or unusable data format.
    InvalidFormat => ("invalid_format", BAD_REQUEST, Reference),
    /// An unknown or unusable compression.
    InvalidCompression => ("invalid_compression", BAD_REQUEST, Reference),
    /// The request is malformed or names something invalid.
    InvalidRequest => ("invalid_request", BAD_REQUEST, Reference),
    /// A settings document with values out of range.
    InvalidConfig => ("invalid_config", BAD_REQUEST, Reference),
    /// The body does not match the expected schema, or a query value does not parse (422).
    ValidationError => ("validation_error", UNPROCESSABLE_ENTITY, Duckbank),
    /// No file with that id in the project.
    FileNotFound => ("file_not_found", NOT_FOUND, Reference),
    /// A prepared upload whose content was never uploaded.
    FileNotUploaded => ("file_not_uploaded", BAD_REQUEST, Reference),
    /// The file is larger than allowed (MAX_FILE_BYTES, a declared size, a chunk's size).
    FileTooLarge => ("file_too_large", PAYLOAD_TOO_LARGE, Reference),
    /// A JSON request body larger than MAX_BODY_BYTES.
    PayloadTooLarge => ("payload_too_large", PAYLOAD_TOO_LARGE, Duckbank),
    /// The file record exists but its content is missing from the blob store.
    FileContentNotFound => ("file_content_not_found", NOT_FOUND, Reference),
    /// No prepared (staged) upload with that key.
    StagedFileNotFound => ("staged_file_not_found", NOT_FOUND, Reference),
    /// No resumable upload session with that id.
    UploadSessionNotFound => ("upload_session_not_found", NOT_FOUND, Reference),
    /// The upload session (or prepared upload) has expired.
    UploadSessionExpired => ("upload_session_expired", GONE, Reference),
    /// A chunk or the whole upload does not match what the session expects.
    UploadSessionMismatch => ("upload_session_mismatch", CONFLICT, Reference),
    /// No link for that bucket.
    LinkNotFound => ("link_not_found", NOT_FOUND, Reference),
    /// The bucket is shared with that project already.
    AlreadyShared => ("already_shared", CONFLICT, Reference),
    /// The operation is not possible in this state (read-only bucket, linked bucket, …).
    OperationNotAllowed => ("operation_not_allowed", BAD_REQUEST, Reference),
    /// The data directory is missing or not writable.
    StorageUnavailable => ("storage_unavailable", SERVICE_UNAVAILABLE, Reference),
    /// No API key with that id in the project.
    ApiKeyNotFound => ("api_key_not_found", NOT_FOUND, Reference),
    /// Revoking the project's last active project_admin key.
    CannotRevokeLastAdminKey => ("cannot_revoke_last_admin_key", BAD_REQUEST, Reference),
    /// Rotating a key that is revoked.
    CannotRotateRevokedKey => ("cannot_rotate_revoked_key", BAD_REQUEST, Reference),
    /// No branch with that id in the project.
    BranchNotFound => ("branch_not_found", NOT_FOUND, Reference),
    /// The project has a branch of that name already.
    BranchNameExists => ("branch_name_exists", CONFLICT, Reference),
    /// A merge found main tables changed since the branch copied them (`details.conflicts`);
    /// nothing was merged. `force=true` merges anyway.
    MergeConflict => ("merge_conflict", CONFLICT, Duckbank),
    /// No snapshot with that id in the project (or not one of the table the path names).
    SnapshotNotFound => ("snapshot_not_found", NOT_FOUND, Reference),
    /// Snapshots are turned off for the table (its effective `enabled` setting).
    SnapshotsDisabled => ("snapshots_disabled", BAD_REQUEST, Reference),
    /// The auto-snapshot a destructive change promises could not be taken, so the change was
    /// not made; retry, or pass `?skip_snapshot=true` to make it without one.
    SnapshotFailed => ("snapshot_failed", SERVICE_UNAVAILABLE, Duckbank),
    /// No job with that id in the project.
    JobNotFound => ("job_not_found", NOT_FOUND, Duckbank),
    /// No key, or a key nobody knows, or a revoked or expired key.
    Unauthorized => ("unauthorized", UNAUTHORIZED, Duckbank),
    /// A valid key that may not do this.
    Forbidden => ("forbidden", FORBIDDEN, Duckbank),
    /// No route for this path.
    NotFound => ("not_found", NOT_FOUND, Duckbank),
    /// The path exists, but not with this method.
    MethodNotAllowed => ("method_not_allowed", METHOD_NOT_ALLOWED, Duckbank),
    /// None of the requested byte ranges lies inside the file.
    RangeNotSatisfiable => ("range_not_satisfiable", RANGE_NOT_SATISFIABLE, Duckbank),
    /// The project's file quota (bytes or count) would be exceeded.
    QuotaExceeded => ("quota_exceeded", INSUFFICIENT_STORAGE, Duckbank),
    /// Not enough free disk space to accept the data.
    InsufficientStorage => ("insufficient_storage", INSUFFICIENT_STORAGE, Duckbank),
    /// The request body sent nothing for BODY_IDLE_TIMEOUT_SECS; what it sent is discarded.
    RequestTimeout => ("request_timeout", REQUEST_TIMEOUT, Duckbank),
    /// Too much work queued or too many requests; retry after `Retry-After` seconds.
    RateLimited => ("rate_limited", TOO_MANY_REQUESTS, Duckbank),
    /// A bug or an environment failure; the cause is in the log under the request id.
    InternalError => ("internal_error", INTERNAL_SERVER_ERROR, Duckbank),
    // codes added by catalog/engine
    /// The bucket is not shared with that project (unshare).
    ShareNotFound => ("share_not_found", NOT_FOUND, Duckbank),
    /// A blob with that id exists already in the project (`/v1/blobs`).
    BlobExists => ("blob_exists", CONFLICT, Duckbank),
    /// A column list (export or preview columns, import columns, a file's header) names columns
    /// the table does not have, repeats one, or lacks ones the table needs.
    InvalidColumns => ("invalid_columns", BAD_REQUEST, Duckbank),
    /// Values that do not fit: a file's rows for the table's columns, or a table's data for a
    /// column change (NULLs for NOT NULL, values that do not convert to the new type).
    InvalidData => ("invalid_data", BAD_REQUEST, Duckbank),
    /// The file cannot be read in the requested format with these options.
    UnreadableFile => ("unreadable_file", BAD_REQUEST, Duckbank),
    /// Rows have NULL in the columns that would become the primary key.
    NullPrimaryKey => ("null_primary_key", CONFLICT, Duckbank),
    // codes added by api/service
    /// A write into a bucket that is a link, or that has read-only access granted.
    BucketReadOnly => ("bucket_read_only", FORBIDDEN, Duckbank),
    /// A read through a link whose source project no longer shares the bucket.
    LinkNotLive => ("link_not_live", FORBIDDEN, Duckbank),
    /// A bucket that still has tables, deleted without cascade (or force).
    BucketNotEmpty => ("bucket_not_empty", CONFLICT, Duckbank),
    /// Received bytes whose SHA-256 differs from the one the client declared.
    ChecksumMismatch => ("checksum_mismatch", UNPROCESSABLE_ENTITY, Duckbank),
    /// Another request is completing the same upload session right now.
    UploadSessionBusy => ("upload_session_busy", CONFLICT, Duckbank),
    /// What the request addressed changed while it waited for a lock; retrying resolves it.
    ConcurrentChange => ("concurrent_change", CONFLICT, Duckbank),
    /// An idempotency key reused for a different method, path or body.
    IdempotencyConflict => ("idempotency_conflict", CONFLICT, Reference),
    /// A retry while the first request with the same idempotency key is still running.
    IdempotencyInProgress => ("idempotency_in_progress", CONFLICT, Duckbank),
    WorkspaceNotFound => ("workspace_not_found", NOT_FOUND, Reference),
    /// Workspaces (ADR 0033): past its `expires_at`; the cleaner removes it.
    WorkspaceExpired => ("workspace_expired", GONE, Reference),
    ObjectNotFound => ("object_not_found", NOT_FOUND, Reference),
    /// Workspace SQL that would reach outside the workspace (ATTACH, COPY, SET, …).
    SqlRefused => ("sql_refused", BAD_REQUEST, Duckbank),
    /// Workspace SQL that DuckDB rejected or failed to run; the message is DuckDB's.
    QueryFailed => ("query_failed", BAD_REQUEST, Duckbank),
    /// A workspace statement ran longer than PGWIRE_QUERY_TIMEOUT_SECS and was interrupted.
    QueryTimeout => ("query_timeout", REQUEST_TIMEOUT, Duckbank),
    /// The workspace has PGWIRE_MAX_CONNECTIONS_PER_WORKSPACE sessions already.
    TooManySessions => ("too_many_sessions", TOO_MANY_REQUESTS, Duckbank),
    /// The workspace holds `size_limit_gb` or more: writes that add data are refused.
    WorkspaceFull => ("workspace_full", INSUFFICIENT_STORAGE, Duckbank),
    /// `/internal/pgwire/auth`: no workspace with that user name and password.
    InvalidCredentials => ("invalid_credentials", UNAUTHORIZED, Reference),
    /// `/internal/pgwire/*`: the workspace has PGWIRE_MAX_CONNECTIONS_PER_WORKSPACE sessions
    /// already (the reference's name for `too_many_sessions` on these routes).
    ConnectionLimitReached => ("connection_limit_reached", TOO_MANY_REQUESTS, Reference),
    /// No external wire session with that id (`/internal/pgwire/sessions/{session_id}`).
    SessionNotFound => ("session_not_found", NOT_FOUND, Duckbank),
    /// An active external wire session with that id is registered already.
    SessionExists => ("session_exists", CONFLICT, Duckbank),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong while serving a request. Boxed: errors are rare and `Result`s
/// of every call carry one, so the happy path stays one pointer wide.
#[derive(Debug)]
pub struct ApiError(Box<ErrorParts>);

#[derive(Debug)]
struct ErrorParts {
    code: ErrorCode,
    message: String,
    details: Option<Value>,
    /// Seconds the client should wait (429, 503).
    retry_after_secs: Option<u64>,
    /// The file size a 416 reports in `Content-Range: bytes */<size>`.
    range_size: Option<u64>,
    /// The underlying cause of an internal error, for the log only.
    source: Option<BoxError>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.code == ErrorCode::InternalError {
            write!(f, "internal error: {}", self.0.message)?;
            if let Some(source) = &self.0.source {
                write!(f, ": {source}")?;
            }
            Ok(())
        } else {
            f.write_str(&self.0.message)
        }
    }
}

impl StdError for ApiError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

impl ApiError {
    /// An error of `code` with a message the client sees.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorParts {
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
            range_size: None,
            source: None,
        }))
    }

    /// Adds machine-readable details (which row, which keys, which position).
    pub fn with_details(mut self, details: Value) -> Self {
        self.0.details = Some(details);
        self
    }

    /// 400 `invalid_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 400 `invalid_request` with details.
    pub fn bad_request_with(message: impl Into<String>, details: Value) -> Self {
        Self::bad_request(message).with_details(details)
    }

    /// 422 `validation_error`: the body or a query value does not have the expected shape.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message)
    }

    /// 401: no key, or one that does not authenticate.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// 403: the key is valid but may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 429 (or 503 for `StorageUnavailable`) with `Retry-After`.
    pub fn retry_after(code: ErrorCode, message: impl Into<String>, secs: u64) -> Self {
        let mut err = Self::new(code, message);
        err.0.retry_after_secs = Some(secs);
        err
    }

    /// 416 for a file of `size` bytes: `Content-Range: bytes */<size>`.
    pub fn range_not_satisfiable(size: u64) -> Self {
        let mut err = Self::new(
            ErrorCode::RangeNotSatisfiable,
            format!("no requested range lies inside the file ({size} bytes)"),
        )
        .with_details(json!({ "size": size }));
        err.0.range_size = Some(size);
        err
    }

    /// 500 with a cause for the log: `context` says what was being done, `source` why it failed.
    pub fn internal_from(
        context: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        let mut err = Self::new(ErrorCode::InternalError, context);
        err.0.source = Some(Box::new(source));
        err
    }

    /// 500 for a broken invariant with no underlying error.
    pub fn internal(context: impl fmt::Display) -> Self {
        Self::new(ErrorCode::InternalError, context.to_string())
    }

    /// The same error with `prefix` before its message (kept for internal errors' context).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.0.message = format!("{prefix}{}", self.0.message);
        self
    }

    /// The same error with its details replaced.
    pub fn replace_details(mut self, details: Value) -> Self {
        self.0.details = Some(details);
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    pub fn status(&self) -> StatusCode {
        self.0.code.status()
    }

    /// The client-facing message (internal errors: a generic text).
    pub fn message(&self) -> &str {
        if self.0.code == ErrorCode::InternalError {
            INTERNAL_MESSAGE
        } else {
            &self.0.message
        }
    }

    pub fn details(&self) -> Option<&Value> {
        self.0.details.as_ref()
    }

    /// The wire body: duckbank's top-level fields plus the reference's `detail` object, so
    /// clients of either shape work. Internal errors are logged here with their whole chain.
    pub fn body(&self) -> Value {
        if self.0.code == ErrorCode::InternalError {
            tracing::error!(context = %self.0.message, cause = %CauseChain(self), "request failed with an internal error");
        }
        let inner = json!({
            "error": self.0.code.as_str(),
            "message": self.message(),
            "details": self.0.details,
        });
        json!({
            "error": self.0.code.as_str(),
            "message": self.message(),
            "details": self.0.details,
            "detail": inner,
        })
    }
}

const INTERNAL_MESSAGE: &str =
    "internal server error; quote the x-request-id header when reporting it";

/// `a: b: c` over an error's `source()` chain, for the log.
struct CauseChain<'a>(&'a ApiError);

impl fmt::Display for CauseChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut next = self.0.source();
        let mut first = true;
        while let Some(e) = next {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{e}")?;
            first = false;
            next = e.source();
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status(), axum::Json(body)).into_response();
        // For the metrics layer's `duckdb_api_errors_total{type}`.
        response.extensions_mut().insert(self.0.code);
        let headers = response.headers_mut();
        if let Some(secs) = self.0.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(size) = self.0.range_size {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
        }
        response
    }
}

/// Whether an error text says the disk is full (DuckDB reports it as text).
fn is_disk_full(text: &str) -> bool {
    text.contains("No space left on device")
}

fn disk_full() -> ApiError {
    ApiError::new(
        ErrorCode::InsufficientStorage,
        "the storage volume is full; free space or raise the volume's size",
    )
}

impl From<duckdb::Error> for ApiError {
    fn from(err: duckdb::Error) -> Self {
        // A full disk is the operator's to fix, not a bug: say so (507) instead of hiding it.
        if is_disk_full(&err.to_string()) {
            return disk_full();
        }
        Self::internal_from("a DuckDB call failed", err)
    }
}

impl From<std::io::Error> for ApiError {
    fn from(err: std::io::Error) -> Self {
        if err.raw_os_error() == Some(28) {
            return disk_full();
        }
        Self::internal_from("an I/O call failed", err)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::internal_from("a blocking task failed", err)
    }
}

/// Adds the path an I/O call was about to an error, for the log only (clients never see paths).
pub trait IoContext<T> {
    fn at_path(self, what: &str, path: &Path) -> Result<T, ApiError>;
}

impl<T> IoContext<T> for Result<T, std::io::Error> {
    fn at_path(self, what: &str, path: &Path) -> Result<T, ApiError> {
        self.map_err(|err| {
            if err.raw_os_error() == Some(28) {
                return disk_full();
            }
            ApiError::internal_from(format!("{what} {}", path.display()), err)
        })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_unique_wire_name_and_an_error_status() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(
                code.status().is_client_error() || code.status().is_server_error(),
                "{code} has status {}",
                code.status()
            );
        }
    }

    /// The reference service's `error` values: a code marked `Reference` must be one of them.
    const REFERENCE_CODES: &[&str] = &[
        "project_not_found",
        "project_exists",
        "bucket_not_found",
        "bucket_exists",
        "bucket_already_linked",
        "table_not_found",
        "table_exists",
        "column_not_found",
        "column_exists",
        "column_in_primary_key",
        "cannot_drop_last_column",
        "primary_key_exists",
        "no_primary_key",
        "invalid_primary_key",
        "duplicate_key",
        "no_changes_specified",
        "invalid_where_clause",
        "invalid_format",
        "invalid_compression",
        "invalid_request",
        "invalid_config",
        "file_not_found",
        "file_not_uploaded",
        "file_too_large",
        "file_content_not_found",
        "staged_file_not_found",
        "upload_session_not_found",
        "upload_session_expired",
        "upload_session_mismatch",
        "link_not_found",
        "already_shared",
        "operation_not_allowed",
        "storage_unavailable",
        "api_key_not_found",
        "branch_not_found",
        "branch_name_exists",
        "snapshot_not_found",
        "snapshots_disabled",
        "workspace_not_found",
        "workspace_expired",
        "object_not_found",
        "credentials_not_found",
        "invalid_credentials",
        "connection_limit_reached",
        "cannot_revoke_last_admin_key",
        "cannot_rotate_revoked_key",
        "idempotency_conflict",
    ];

    #[test]
    fn every_code_is_the_references_or_a_documented_duckbank_one() {
        let readme = include_str!("../README.md");
        for code in ErrorCode::ALL {
            match code.origin() {
                CodeOrigin::Reference => assert!(
                    REFERENCE_CODES.contains(&code.as_str()),
                    "{code} is marked as the reference's but is not in its vocabulary"
                ),
                CodeOrigin::Duckbank => assert!(
                    !REFERENCE_CODES.contains(&code.as_str()),
                    "{code} is the reference's: mark it so"
                ),
            }
            assert!(
                readme.contains(&format!("`{}`", code.as_str())),
                "{code} is not documented in README.md's error table"
            );
        }
    }

    #[test]
    fn the_body_carries_the_reference_detail_object() {
        let body = ApiError::new(ErrorCode::BucketNotFound, "Bucket 'x' not found")
            .with_details(json!({"bucket": "x"}))
            .body();
        assert_eq!(body["error"], "bucket_not_found");
        assert_eq!(body["detail"]["error"], "bucket_not_found");
        assert_eq!(body["detail"]["message"], body["message"]);
        assert_eq!(body["detail"]["details"]["bucket"], "x");
    }

    #[test]
    fn internal_errors_hide_their_cause_from_the_client() {
        let err = ApiError::internal_from(
            "reading /secret/path",
            std::io::Error::other("permission denied"),
        );
        let body = err.body();
        let text = body.to_string();
        assert!(!text.contains("/secret/path"), "{text}");
        assert!(!text.contains("permission denied"), "{text}");
        assert_eq!(CauseChain(&err).to_string(), "permission denied");
    }
}
