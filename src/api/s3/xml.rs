//! S3's wire format: XML error bodies (AWS codes mapped from `ErrorCode`), the few response
//! documents, and reading the two request bodies S3 sends as XML (quick-xml, no serde).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{ApiError, ErrorCode};

/// An S3 error: the AWS code clients branch on, its status and a message. Service errors
/// (`ApiError`) are mapped by their code, so there is still one source of truth for them.
#[derive(Debug)]
pub struct S3Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// 416: the object's size, for `Content-Range: bytes */size`.
    pub range_size: Option<u64>,
}

pub type S3Result<T> = Result<T, S3Error>;

impl S3Error {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            range_size: None,
        }
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    pub fn no_such_key(key: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            format!("The specified key does not exist: {key}"),
        )
    }

    pub fn no_such_bucket(bucket: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            format!("The specified bucket does not exist: {bucket}"),
        )
    }

    pub fn signature_mismatch() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided",
        )
    }

    pub fn malformed_xml(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MalformedXML", message)
    }
}

impl From<ApiError> for S3Error {
    fn from(e: ApiError) -> Self {
        let s3_detail = e
            .details()
            .and_then(|d| d.get("s3"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let digest = e
            .details()
            .and_then(|d| d.get("digest"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let (status, code) = match e.code() {
            ErrorCode::FileNotFound | ErrorCode::FileContentNotFound => {
                (StatusCode::NOT_FOUND, "NoSuchKey")
            }
            ErrorCode::ProjectNotFound => (StatusCode::NOT_FOUND, "NoSuchBucket"),
            ErrorCode::UploadSessionNotFound | ErrorCode::UploadSessionExpired => {
                (StatusCode::NOT_FOUND, "NoSuchUpload")
            }
            ErrorCode::UploadSessionMismatch => match s3_detail.as_deref() {
                Some("InvalidPartOrder") => (StatusCode::BAD_REQUEST, "InvalidPartOrder"),
                _ => (StatusCode::BAD_REQUEST, "InvalidPart"),
            },
            ErrorCode::UploadSessionBusy | ErrorCode::ConcurrentChange => {
                (StatusCode::CONFLICT, "OperationAborted")
            }
            ErrorCode::ChecksumMismatch => match digest.as_deref() {
                Some("x-amz-content-sha256") => {
                    (StatusCode::BAD_REQUEST, "XAmzContentSHA256Mismatch")
                }
                _ => (StatusCode::BAD_REQUEST, "BadDigest"),
            },
            ErrorCode::FileTooLarge | ErrorCode::PayloadTooLarge => {
                (StatusCode::BAD_REQUEST, "EntityTooLarge")
            }
            ErrorCode::Unauthorized | ErrorCode::Forbidden => {
                (StatusCode::FORBIDDEN, "AccessDenied")
            }
            ErrorCode::RangeNotSatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange"),
            ErrorCode::QuotaExceeded | ErrorCode::InsufficientStorage => {
                (StatusCode::INSUFFICIENT_STORAGE, "InsufficientStorage")
            }
            ErrorCode::RateLimited => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
            ErrorCode::StorageUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
            }
            ErrorCode::RequestTimeout => (StatusCode::BAD_REQUEST, "RequestTimeout"),
            ErrorCode::InternalError => {
                tracing::error!(error = %e, "S3 request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
            }
            _ if e.status().is_client_error() => (StatusCode::BAD_REQUEST, "InvalidRequest"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        };
        let message = if code == "InternalError" {
            "We encountered an internal error. Please try again.".to_string()
        } else {
            e.message().to_string()
        };
        let range_size = e
            .details()
            .and_then(|d| d.get("size"))
            .and_then(|v| v.as_u64());
        Self {
            status,
            code,
            message,
            range_size,
        }
    }
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
            self.code,
            escape(&self.message)
        );
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        if let Some(size) = self
            .range_size
            .filter(|_| self.status == StatusCode::RANGE_NOT_SATISFIABLE)
        {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
        }
        response
    }
}

/// Escapes text for an XML element.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// A `200 application/xml` answer.
pub fn document(body: String) -> Response {
    let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}

/// `<Tag>text</Tag>`, escaped.
pub fn element(tag: &str, text: &str) -> String {
    format!("<{tag}>{}</{tag}>", escape(text))
}

/// The text of every element named in `fields`, grouped by each `record` element, in order:
/// `records(xml, "Part", &["PartNumber", "ETag"])`. Anything else is skipped.
pub fn records(xml: &[u8], record: &str, fields: &[&str]) -> S3Result<Vec<Vec<Option<String>>>> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut out = Vec::new();
    let mut current: Option<Vec<Option<String>>> = None;
    let mut field: Option<usize> = None;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| S3Error::malformed_xml(format!("the XML body is not well formed: {e}")))?;
        match event {
            Event::Start(start) => {
                let name = start.local_name();
                let name = std::str::from_utf8(name.as_ref()).unwrap_or("");
                if name == record {
                    current = Some(vec![None; fields.len()]);
                } else if current.is_some() {
                    field = fields.iter().position(|f| *f == name);
                }
            }
            Event::Text(text) => {
                if let (Some(rec), Some(i)) = (current.as_mut(), field) {
                    let text = text.decode().map_err(|e| {
                        S3Error::malformed_xml(format!("bad text in the XML body: {e}"))
                    })?;
                    let text = quick_xml::escape::unescape(&text).map_err(|e| {
                        S3Error::malformed_xml(format!("bad text in the XML body: {e}"))
                    })?;
                    rec[i] = Some(rec[i].take().unwrap_or_default() + &text);
                }
            }
            // quick-xml reports `&amp;`, `&#38;` … as events of their own, between texts.
            Event::GeneralRef(reference) => {
                if let (Some(rec), Some(i)) = (current.as_mut(), field) {
                    let bad = |e: String| {
                        S3Error::malformed_xml(format!("bad entity in the XML body: {e}"))
                    };
                    let resolved = match reference
                        .resolve_char_ref()
                        .map_err(|e| bad(e.to_string()))?
                    {
                        Some(c) => c.to_string(),
                        None => {
                            let name = reference.decode().map_err(|e| bad(e.to_string()))?;
                            quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or_else(|| bad(format!("&{name};")))?
                                .to_string()
                        }
                    };
                    rec[i] = Some(rec[i].take().unwrap_or_default() + &resolved);
                }
            }
            Event::End(end) => {
                let name = end.local_name();
                if std::str::from_utf8(name.as_ref()).unwrap_or("") == record {
                    if let Some(rec) = current.take() {
                        out.push(rec);
                    }
                }
                field = None;
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parts_of_a_complete_body() {
        let body = br#"<?xml version="1.0"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <Part><ETag>"a&amp;b"</ETag><PartNumber>1</PartNumber></Part>
            <Part><PartNumber>2</PartNumber><ETag>"c"</ETag></Part></CompleteMultipartUpload>"#;
        let parts = records(body, "Part", &["PartNumber", "ETag"]).unwrap();
        assert_eq!(
            parts,
            vec![
                vec![Some("1".into()), Some("\"a&b\"".into())],
                vec![Some("2".into()), Some("\"c\"".into())]
            ]
        );
    }
}
