//! GetObject / HeadObject (Range, conditional requests), PutObject (Content-MD5 and payload
//! hash checked), CopyObject (shares the blob), DeleteObject and DeleteObjects.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::xml::{self, S3Error, S3Result};
use super::{check_key, etag_of, iso_date, object_headers, BucketCall};
use crate::auth::scope::Need;
use crate::catalog::s3::ObjectRecord;
use crate::files::range::{self, RangeRequest};
use crate::names::ProjectId;
use crate::service::files::ObjectPut;
use crate::state::AppState;

async fn find(state: &AppState, project: &ProjectId, key: &str) -> S3Result<ObjectRecord> {
    let (catalog, p, k) = (state.catalog.clone(), project.clone(), key.to_string());
    crate::service::blocking(move || catalog.object(&p, &k))
        .await?
        .ok_or_else(|| S3Error::no_such_key(key))
}

fn etag_listed(list: &str, etag: &str) -> bool {
    let bare = etag.trim_matches('"');
    list.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/").trim_matches('"') == bare)
}

fn parse_http_date(raw: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc2822(raw.trim())
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

pub async fn get(call: BucketCall, key: String) -> S3Result<Response> {
    call.require(Need::FileRead)?;
    let object = find(&call.state, &call.project, &key).await?;
    let etag = etag_of(&object);
    let rec = &object.file;
    let mut headers = object_headers(rec, &etag);
    // Whole seconds, as Last-Modified says.
    let modified = rec.created_at.timestamp();
    if let Some(im) = call.header("if-match") {
        if !etag_listed(im, &etag) {
            return Err(precondition_failed());
        }
    } else if let Some(t) = call.header("if-unmodified-since").and_then(parse_http_date) {
        if modified > t.timestamp() {
            return Err(precondition_failed());
        }
    }
    let not_modified = match call.header("if-none-match") {
        Some(inm) => etag_listed(inm, &etag),
        None => call
            .header("if-modified-since")
            .and_then(parse_http_date)
            .is_some_and(|t| modified <= t.timestamp()),
    };
    if not_modified {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let content_type = rec
        .content_type
        .clone()
        .filter(|t| HeaderValue::from_str(t).is_ok() && !t.trim().is_empty())
        .unwrap_or_else(|| "binary/octet-stream".to_string());
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let head = call.parts.method == Method::HEAD;
    let len = rec.size_bytes;
    let range_header = call.header("range").map(str::to_string);
    let (status, start, count) = match range::parse(range_header.as_deref(), len) {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        // S3 serves one range; several are answered with the whole object.
        RangeRequest::Partial(ranges) if ranges.len() > 1 => (StatusCode::OK, 0, len),
        RangeRequest::Partial(ranges) => {
            let r = ranges[0];
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end)) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, r.start, r.len())
        }
        RangeRequest::Unsatisfiable => {
            let mut e = S3Error::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            );
            e.range_size = Some(len);
            return Err(e);
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    let body = if head || count == 0 {
        Body::empty()
    } else {
        Body::from_stream(
            call.state
                .files
                .store
                .read(&rec.sha256, start, count)
                .await?,
        )
    };
    Ok((status, headers, body).into_response())
}

fn precondition_failed() -> S3Error {
    S3Error::new(
        StatusCode::PRECONDITION_FAILED,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    )
}

/// `Content-MD5` (base64 of 16 bytes), 400 `InvalidDigest` when malformed.
pub fn content_md5(call: &BucketCall) -> S3Result<Option<[u8; 16]>> {
    let Some(raw) = call.header("content-md5") else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .map(Some)
        .ok_or_else(|| {
            S3Error::new(
                StatusCode::BAD_REQUEST,
                "InvalidDigest",
                "The Content-MD5 you specified is not valid.",
            )
        })
}

pub async fn put(call: BucketCall, key: String) -> S3Result<Response> {
    call.require(Need::FileUpload)?;
    let put = ObjectPut {
        key,
        content_type: call.header("content-type").map(str::to_string),
        expected_sha256: call.expected_sha256(),
        expected_md5: content_md5(&call)?,
    };
    let (call, body, length) = call.into_content();
    let (_, etag) = call
        .state
        .files
        .put_object(&call.project, put, body, length)
        .await?;
    Ok(([(header::ETAG, etag)], "").into_response())
}

/// The bucket and key of `x-amz-copy-source` (`/bucket/key` or `bucket/key`, URL-encoded,
/// optionally `?versionId=…`).
fn copy_source(raw: &str) -> S3Result<(String, String)> {
    let path = raw.split('?').next().unwrap_or(raw);
    let decoded = String::from_utf8(super::sigv4::percent_decode(path))
        .map_err(|_| S3Error::invalid_argument("x-amz-copy-source is not UTF-8"))?;
    let decoded = decoded.trim_start_matches('/');
    let (bucket, key) = decoded
        .split_once('/')
        .ok_or_else(|| S3Error::invalid_argument("x-amz-copy-source must be bucket/key"))?;
    Ok((bucket.to_string(), key.to_string()))
}

pub async fn copy(call: BucketCall, key: String) -> S3Result<Response> {
    call.require(Need::FileUpload)?;
    let raw = call.header("x-amz-copy-source").unwrap_or_default();
    let (src_bucket, src_key) = copy_source(raw)?;
    check_key(&src_key)?;
    let src_project =
        super::bucket_project(&src_bucket).ok_or_else(|| S3Error::no_such_bucket(&src_bucket))?;
    call.principal
        .require_project(&src_project)
        .map_err(|e| S3Error::access_denied(e.message().to_string()))?;
    super::allow(&call.principal, &src_project, Need::FileRead)?;
    if src_project != call.project {
        return Err(S3Error::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "copies between buckets (projects) are not supported",
        ));
    }
    let source = find(&call.state, &src_project, &src_key).await?;
    let etag = etag_of(&source);
    let replace = call
        .header("x-amz-metadata-directive")
        .is_some_and(|d| d.eq_ignore_ascii_case("REPLACE"));
    let content_type = replace
        .then(|| call.header("content-type").map(str::to_string))
        .flatten();
    let rec = call
        .state
        .files
        .copy_object(&call.project, &source.file, key, content_type, etag.clone())
        .await?;
    Ok(xml::document(format!(
        "<CopyObjectResult><LastModified>{}</LastModified><ETag>{}</ETag></CopyObjectResult>",
        iso_date(rec.created_at),
        xml::escape(&etag)
    )))
}

/// Deletes every record named `key`; `Ok` also when there is none (S3 answers 204 anyway).
async fn remove(state: &AppState, project: &ProjectId, key: &str) -> S3Result<()> {
    let (catalog, p, k) = (state.catalog.clone(), project.clone(), key.to_string());
    let records = crate::service::blocking(move || catalog.files_named(&p, &k)).await?;
    if !records.is_empty() {
        state.files.delete(project, records).await?;
    }
    Ok(())
}

pub async fn delete(call: BucketCall, key: String) -> S3Result<Response> {
    call.require(Need::FileDelete)?;
    remove(&call.state, &call.project, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DeleteObjects: `<Delete><Quiet/><Object><Key/></Object>…</Delete>`, at most 1000 keys.
pub async fn delete_many(call: BucketCall) -> S3Result<Response> {
    call.require(Need::FileDelete)?;
    let (call, body) = call.small_body().await?;
    let keys: Vec<String> = xml::records(&body, "Object", &["Key"])?
        .into_iter()
        .filter_map(|mut r| r.pop().flatten())
        .collect();
    let quiet = xml::records(&body, "Delete", &["Quiet"])?
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .is_some_and(|q| q.trim().eq_ignore_ascii_case("true"));
    if keys.is_empty() || keys.len() > 1000 {
        return Err(S3Error::malformed_xml(
            "a Delete request names between 1 and 1000 objects",
        ));
    }
    let mut out = String::from("<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for key in keys {
        let result = match check_key(&key) {
            Ok(()) => remove(&call.state, &call.project, &key).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) if !quiet => {
                out.push_str(&format!("<Deleted>{}</Deleted>", xml::element("Key", &key)))
            }
            Ok(()) => {}
            Err(e) => out.push_str(&format!(
                "<Error>{}{}{}</Error>",
                xml::element("Key", &key),
                xml::element("Code", e.code),
                xml::element("Message", &e.message)
            )),
        }
    }
    out.push_str("</DeleteResult>");
    Ok(xml::document(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_copy_sources() {
        assert_eq!(
            copy_source("/project_1/a%20b/c.txt?versionId=x").unwrap(),
            ("project_1".into(), "a b/c.txt".into())
        );
        assert_eq!(copy_source("1/k").unwrap(), ("1".into(), "k".into()));
        assert!(copy_source("nokey").is_err());
    }
}
