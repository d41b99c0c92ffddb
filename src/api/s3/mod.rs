//! The S3-compatible face at `/s3/{bucket}/{key…}` (ADR 0032): path-style buckets that are
//! projects, objects that are file records, SigV4 or API-key auth, AWS XML and error codes.

mod auth;
mod chunked;
pub mod credentials;
mod listing;
mod multipart;
mod objects;
mod presign;
pub mod sigv4;
mod xml;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::auth::scope::{Need, Target};
use crate::auth::Principal;
use crate::names::ProjectId;
use crate::state::AppState;
use auth::{Caller, Payload};
use xml::{S3Error, S3Result};

/// Where the S3 face is served; clients use `endpoint_url = http://host:port/s3`.
pub const PREFIX: &str = "/s3";
/// The region SigV4 scopes are expected in when duckbank signs (presign); any region a
/// client signs with is accepted.
pub const REGION: &str = "us-east-1";
/// Longest key, as in S3.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest XML request body (DeleteObjects with 1000 long keys fits).
const MAX_XML_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
pub struct BucketParams {
    bucket: String,
}

#[derive(Deserialize)]
pub struct ObjectParams {
    bucket: String,
    key: String,
}

/// A request body as its real content (`aws-chunked` decoded).
pub type Content =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, String>> + Send>>;

/// An authenticated S3 request on one bucket (= project).
pub struct BucketCall {
    pub state: AppState,
    pub project: ProjectId,
    pub bucket: String,
    pub principal: Principal,
    pub payload: Payload,
    pub parts: Parts,
    pub body: Body,
}

impl BucketCall {
    /// 403 unless the caller may do `need` in this project.
    pub fn require(&self, need: Need) -> S3Result<()> {
        allow(&self.principal, &self.project, need)
    }

    pub fn query(&self, name: &str) -> Option<String> {
        query_value(&self.parts, name)
    }

    pub fn has_query(&self, name: &str) -> bool {
        query_value(&self.parts, name).is_some()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as a stream of its real content (`aws-chunked` decoded) and its length.
    pub fn into_content(self) -> (Self, Content, Option<u64>) {
        let mut call = self;
        let body = std::mem::take(&mut call.body);
        let raw = body
            .into_data_stream()
            .map(|r| r.map_err(|e| e.to_string()));
        let chunked = call
            .header("content-encoding")
            .is_some_and(|e| e.split(',').any(|p| p.trim() == "aws-chunked"));
        let (stream, length): (Content, Option<u64>) = match &call.payload {
            Payload::Chunked { signing } => (
                Box::pin(chunked::decode(raw, signing.clone())),
                call.header("x-amz-decoded-content-length")
                    .and_then(|v| v.parse().ok()),
            ),
            _ if chunked => (
                Box::pin(chunked::decode(raw, None)),
                call.header("x-amz-decoded-content-length")
                    .and_then(|v| v.parse().ok()),
            ),
            _ => (
                Box::pin(raw),
                call.header("content-length").and_then(|v| v.parse().ok()),
            ),
        };
        (call, stream, length)
    }

    /// A small body (an XML document), read whole and checked against its signed hash.
    pub async fn small_body(self) -> S3Result<(Self, Bytes)> {
        let (call, mut stream, _) = self.into_content();
        let mut buf = Vec::new();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| {
                S3Error::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "IncompleteBody",
                    format!("the request body could not be read: {e}"),
                )
            })?;
            buf.extend_from_slice(&piece);
            if buf.len() > MAX_XML_BYTES {
                return Err(S3Error::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "MaxMessageLengthExceeded",
                    "the XML request body is too large",
                ));
            }
        }
        if let Payload::Sha256(want) = &call.payload {
            if sigv4::sha256_hex(&buf) != *want {
                return Err(S3Error::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
        }
        Ok((call, Bytes::from(buf)))
    }

    /// The SHA-256 the stored content must have, when the client signed one.
    pub fn expected_sha256(&self) -> Option<String> {
        match &self.payload {
            Payload::Sha256(h) => Some(h.clone()),
            _ => None,
        }
    }
}

/// 403 `AccessDenied` unless `principal` may do `need` in `project`.
pub fn allow(principal: &Principal, project: &ProjectId, need: Need) -> S3Result<()> {
    let target = Target {
        project: Some(project.as_str()),
        branch: None,
        branched: false,
        bucket: None,
    };
    principal
        .allows(need, &target)
        .map_err(|e| S3Error::access_denied(e.message().to_string()))
}

pub fn query_value(parts: &Parts, name: &str) -> Option<String> {
    sigv4::query_pairs(parts.uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The project a bucket name stands for: `project_{id}` or `{id}`.
pub fn bucket_project(bucket: &str) -> Option<ProjectId> {
    ProjectId::parse(bucket.strip_prefix("project_").unwrap_or(bucket)).ok()
}

/// Who an S3 request turned out to be from and which project it named, for the audit trail:
/// the gate leaves the S3 face to authenticate itself (SigV4 needs the whole request).
#[derive(Default)]
pub struct Seen {
    principal: Option<Principal>,
    project: Option<ProjectId>,
}

/// Authenticates, then resolves the bucket to a project the caller may reach (403 before 404,
/// so another project's existence is not revealed).
async fn begin(
    state: AppState,
    bucket: String,
    request: Request,
    seen: &mut Seen,
) -> S3Result<BucketCall> {
    let (parts, body) = request.into_parts();
    let Caller { principal, payload } = auth::authenticate(&parts, &state).await?;
    seen.principal = Some(principal.clone());
    let project = bucket_project(&bucket).ok_or_else(|| S3Error::no_such_bucket(&bucket))?;
    seen.project = Some(project.clone());
    principal
        .require_project(&project)
        .map_err(|e| S3Error::access_denied(e.message().to_string()))?;
    if state.catalog.read(|m| m.project(&project).is_none()) {
        return Err(S3Error::no_such_bucket(&bucket));
    }
    Ok(BucketCall {
        state,
        project,
        bucket,
        principal,
        payload,
        parts,
        body,
    })
}

/// Refuses keys S3 clients should never send to a file store: empty, over 1024 bytes, with
/// NUL, a leading `/`, or a `..` segment.
pub fn check_key(key: &str) -> S3Result<()> {
    let bad = |why: &str| {
        Err(S3Error::new(
            axum::http::StatusCode::BAD_REQUEST,
            "InvalidObjectName",
            format!("invalid object key: {why}"),
        ))
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::new(
            axum::http::StatusCode::BAD_REQUEST,
            "KeyTooLongError",
            "Your key is too long (more than 1024 bytes)",
        ));
    }
    if key.contains('\0') {
        return bad("contains NUL");
    }
    if key.starts_with('/') {
        return bad("starts with '/'");
    }
    if key.split(['/', '\\']).any(|segment| segment == "..") {
        return bad("contains a '..' segment");
    }
    Ok(())
}

/// `Last-Modified` header form.
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The XML timestamp form.
pub fn iso_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The answer, carrying the caller and project for the gate and the audit layer outside.
fn finish(result: S3Result<Response>, seen: Seen) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    let extensions = response.extensions_mut();
    if let Some(principal) = seen.principal {
        extensions.insert(principal);
    }
    if let Some(project) = seen.project {
        extensions.insert(super::audit::AuditTarget("project_id", project.to_string()));
    }
    response
}

/// `GET /s3`: ListBuckets (the caller's project, or every project for the admin).
pub async fn service(State(state): State<AppState>, request: Request) -> Response {
    let mut seen = Seen::default();
    let result = listing::list_buckets(state, request, &mut seen).await;
    finish(result, seen)
}

/// `/s3/{bucket}`: ListObjects(V2), HeadBucket, GetBucketLocation, DeleteObjects,
/// ListMultipartUploads (empty).
pub async fn bucket(
    State(state): State<AppState>,
    Path(params): Path<BucketParams>,
    request: Request,
) -> Response {
    let mut seen = Seen::default();
    let result = bucket_call(state, params.bucket, request, &mut seen).await;
    finish(result, seen)
}

async fn bucket_call(
    state: AppState,
    bucket: String,
    request: Request,
    seen: &mut Seen,
) -> S3Result<Response> {
    let call = begin(state, bucket, request, seen).await?;
    let method = call.parts.method.clone();
    match method {
        Method::GET | Method::HEAD if call.has_query("location") => {
            call.require(Need::FileRead)?;
            Ok(xml::document(format!(
                "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{REGION}</LocationConstraint>"
            )))
        }
        Method::HEAD => {
            call.require(Need::FileRead)?;
            Ok(([("x-amz-bucket-region", REGION)], "").into_response())
        }
        Method::GET if call.has_query("uploads") => {
            call.require(Need::FileUpload)?;
            Ok(xml::document(format!(
                "<ListMultipartUploadsResult><Bucket>{}</Bucket><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
                xml::escape(&call.bucket)
            )))
        }
        Method::GET => listing::list_objects(call).await,
        Method::POST if call.has_query("delete") => objects::delete_many(call).await,
        Method::PUT => {
            // CreateBucket: buckets are projects, made through the projects API; the caller's
            // own bucket exists already.
            call.require(Need::FileUpload)?;
            Err(S3Error::new(
                axum::http::StatusCode::CONFLICT,
                "BucketAlreadyOwnedByYou",
                "buckets are duckbank projects and exist already",
            ))
        }
        _ => Err(S3Error::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )),
    }
}

/// `/s3/{bucket}/{key…}`: the object operations and multipart uploads.
pub async fn object(
    State(state): State<AppState>,
    Path(params): Path<ObjectParams>,
    request: Request,
) -> Response {
    let mut seen = Seen::default();
    let result = object_call(state, params.bucket, params.key, request, &mut seen).await;
    finish(result, seen)
}

async fn object_call(
    state: AppState,
    bucket: String,
    key: String,
    request: Request,
    seen: &mut Seen,
) -> S3Result<Response> {
    let call = begin(state, bucket, request, seen).await?;
    check_key(&key)?;
    let method = call.parts.method.clone();
    let upload_id = call.query("uploadId");
    match (method, upload_id) {
        (Method::PUT, Some(upload_id)) => multipart::upload_part(call, upload_id).await,
        (Method::POST, Some(upload_id)) => multipart::complete(call, key, upload_id).await,
        (Method::GET, Some(upload_id)) => multipart::list_parts(call, key, upload_id).await,
        (Method::DELETE, Some(upload_id)) => multipart::abort(call, upload_id).await,
        (Method::POST, None) if call.has_query("uploads") => multipart::create(call, key).await,
        (Method::GET | Method::HEAD, None) => objects::get(call, key).await,
        (Method::PUT, None) if call.header("x-amz-copy-source").is_some() => {
            objects::copy(call, key).await
        }
        (Method::PUT, None) => objects::put(call, key).await,
        (Method::DELETE, None) => objects::delete(call, key).await,
        _ => Err(S3Error::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )),
    }
}

/// `POST /s3/{bucket}/presign`: the reference's presign route, or (with `?uploads` /
/// `?uploadId`) a multipart call on an object named `presign`.
pub async fn presign(
    State(state): State<AppState>,
    Path(params): Path<BucketParams>,
    request: Request,
) -> Response {
    let query = request.uri().query().unwrap_or("").to_string();
    let multipart = sigv4::query_pairs(&query)
        .iter()
        .any(|(k, _)| k == "uploads" || k == "uploadId");
    let mut seen = Seen::default();
    let result = if multipart {
        object_call(state, params.bucket, "presign".into(), request, &mut seen).await
    } else {
        presign::presign(state, params.bucket, request, &mut seen).await
    };
    finish(result, seen)
}

/// The headers every object answer carries.
pub fn object_headers(rec: &crate::catalog::files::FileRecord, etag: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    };
    put("etag", etag);
    put("last-modified", &http_date(rec.created_at));
    put("accept-ranges", "bytes");
    put("x-amz-checksum-sha256-hex", &rec.sha256);
    headers
}

/// The quoted ETag of an object: its MD5 when written through S3, else its SHA-256.
pub fn etag_of(object: &crate::catalog::s3::ObjectRecord) -> String {
    object
        .etag
        .clone()
        .unwrap_or_else(|| format!("\"{}\"", object.file.sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_keys() {
        assert!(check_key("a/b.csv").is_ok());
        assert!(check_key("a..b").is_ok());
        for bad in ["", "/a", "a/../b", "..", "a\0b", &"x".repeat(1025)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn buckets_name_projects() {
        assert_eq!(bucket_project("project_7").unwrap().as_str(), "7");
        assert_eq!(bucket_project("7").unwrap().as_str(), "7");
    }
}
