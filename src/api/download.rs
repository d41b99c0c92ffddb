//! Serving a stored file over HTTP: strong ETag (the SHA-256), If-None-Match, If-Range,
//! single and multiple byte ranges (multipart/byteranges), 416, HEAD, Content-Disposition.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::catalog::files::FileRecord;
use crate::error::{ApiError, ApiResult};
use crate::files::range::{self, ByteRange, RangeRequest};
use crate::files::BlobStore;

/// Builds the response for GET or HEAD of `rec`.
pub async fn respond(
    store: &dyn BlobStore,
    rec: &FileRecord,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let etag = format!("\"{}\"", rec.sha256);
    let len = rec.size_bytes;
    // A stored type that cannot be a header value (control characters, empty) is replaced
    // like a missing one, so every answer with a body has a Content-Type.
    let content_type = rec
        .content_type
        .clone()
        .filter(|t| !t.trim().is_empty() && HeaderValue::from_str(t).is_ok())
        .unwrap_or_else(|| {
            mime_guess::from_path(&rec.name)
                .first_or_octet_stream()
                .to_string()
        });

    let mut base = HeaderMap::new();
    insert(&mut base, header::ETAG, &etag);
    insert(&mut base, header::ACCEPT_RANGES, "bytes");
    insert(
        &mut base,
        header::CONTENT_DISPOSITION,
        &content_disposition(&rec.name),
    );
    insert(&mut base, "x-checksum-sha256", &rec.sha256);

    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        if etag_matches(inm, &rec.sha256) {
            return Ok((StatusCode::NOT_MODIFIED, base).into_response());
        }
    }
    // If-Range: honour the Range only while the client's copy is this exact content.
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range_header = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        Some(if_range) if if_range.trim() != etag => None,
        _ => range_header,
    };
    let head = method == Method::HEAD;

    match range::parse(range_header, len) {
        RangeRequest::Full => {
            insert(&mut base, header::CONTENT_TYPE, &content_type);
            insert(&mut base, header::CONTENT_LENGTH, &len.to_string());
            let body = if head {
                Body::empty()
            } else {
                Body::from_stream(store.read(&rec.sha256, 0, len).await?)
            };
            Ok((StatusCode::OK, base, body).into_response())
        }
        RangeRequest::Unsatisfiable => {
            // The error sets `Content-Range: bytes */len`; the file's own headers (ETag,
            // Accept-Ranges) stay, so the client can retry with a valid range.
            let mut response = ApiError::range_not_satisfiable(len)
                .replace_details(serde_json::json!({ "size_bytes": len }))
                .into_response();
            for (name, value) in &base {
                if !response.headers().contains_key(name) {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            Ok(response)
        }
        RangeRequest::Partial(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            insert(&mut base, header::CONTENT_TYPE, &content_type);
            insert(
                &mut base,
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{len}", r.start, r.end),
            );
            insert(&mut base, header::CONTENT_LENGTH, &r.len().to_string());
            let body = if head {
                Body::empty()
            } else {
                Body::from_stream(store.read(&rec.sha256, r.start, r.len()).await?)
            };
            Ok((StatusCode::PARTIAL_CONTENT, base, body).into_response())
        }
        RangeRequest::Partial(ranges) => {
            let boundary = uuid::Uuid::new_v4().simple().to_string();
            let parts: Vec<(Bytes, ByteRange)> = ranges
                .iter()
                .map(|r| {
                    let head = format!(
                        "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {}-{}/{len}\r\n\r\n",
                        r.start, r.end
                    );
                    (Bytes::from(head), *r)
                })
                .collect();
            let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
            let total: u64 = parts
                .iter()
                .map(|(h, r)| h.len() as u64 + r.len())
                .sum::<u64>()
                + tail.len() as u64;
            insert(
                &mut base,
                header::CONTENT_TYPE,
                &format!("multipart/byteranges; boundary={boundary}"),
            );
            insert(&mut base, header::CONTENT_LENGTH, &total.to_string());
            if head {
                return Ok((StatusCode::PARTIAL_CONTENT, base, Body::empty()).into_response());
            }
            let mut streams = Vec::with_capacity(parts.len() * 2 + 1);
            for (head, r) in parts {
                streams.push(futures_util::stream::once(async move { Ok(head) }).boxed());
                streams.push(store.read(&rec.sha256, r.start, r.len()).await?);
            }
            streams.push(futures_util::stream::once(async move { Ok(tail) }).boxed());
            let body = Body::from_stream(futures_util::stream::iter(streams).flatten());
            Ok((StatusCode::PARTIAL_CONTENT, base, body).into_response())
        }
    }
}

fn insert(map: &mut HeaderMap, name: impl header::IntoHeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        map.insert(name, v);
    }
}

/// `If-None-Match` holds `*` or a list of (possibly weak) entity tags.
fn etag_matches(if_none_match: &str, sha256: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == sha256)
}

/// `attachment` with an ASCII fallback name and the exact name percent-encoded (RFC 6266).
pub fn content_disposition(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let ascii: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ascii = if ascii.trim().is_empty() {
        "download".to_string()
    } else {
        ascii
    };
    let encoded: String = base
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_is_safe_for_hostile_names() {
        assert_eq!(
            content_disposition("report.csv"),
            "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv"
        );
        let d = content_disposition("../../etc/pa\"ss\r\nwd");
        assert!(d.starts_with("attachment; filename=\"pa_ss__wd\""), "{d}");
        assert!(!d.contains('\r') && !d.contains('\n'));
        assert!(content_disposition("naïve.txt").contains("filename*=UTF-8''na%C3%AFve.txt"));
    }

    #[test]
    fn etags_match_strong_weak_and_star() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("W/\"abc\", \"x\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }
}
