//! AWS Signature Version 4 for the S3 face: canonical requests over the full path (with the
//! `/s3` prefix), the header and query (presigned) forms, chunk signatures, and presigning.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const UNSIGNED: &str = "UNSIGNED-PAYLOAD";
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Clock skew allowed between a signed request and the server, as S3 does.
pub const MAX_SKEW_SECS: i64 = 15 * 60;
/// Longest lifetime of a presigned URL (7 days), as S3 does.
pub const MAX_EXPIRES_SECS: i64 = 604_800;

/// The parts of a signature a request carries (Authorization header or query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParts {
    pub access_key_id: String,
    /// `yyyymmdd/region/s3/aws4_request`.
    pub scope: String,
    pub date: String,
    pub region: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// AWS's URI encoding: unreserved characters stay, everything else is `%XX`; `/` stays in
/// paths.
pub fn uri_encode(raw: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a `+` stays a `+`); malformed escapes are kept as they are.
pub fn percent_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The query's pairs, decoded (S3 clients encode spaces as `%20`, never `+`).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                String::from_utf8_lossy(&percent_decode(k)).into_owned(),
                String::from_utf8_lossy(&percent_decode(v)).into_owned(),
            )
        })
        .collect()
}

/// The canonical query string, leaving out `X-Amz-Signature`.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .filter(|(k, _)| k != "X-Amz-Signature")
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// One signed header's canonical value: every occurrence, trimmed, inner runs of spaces
/// collapsed, joined by commas.
fn canonical_header_value<'a>(values: impl Iterator<Item = &'a [u8]>) -> String {
    values
        .map(|v| {
            String::from_utf8_lossy(v)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The request as SigV4 signs it.
pub struct Canonical<'a> {
    pub method: &'a str,
    /// The raw (still encoded) request path, including `/s3`.
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a axum::http::HeaderMap,
    pub signed_headers: &'a [String],
    pub payload_hash: &'a str,
}

impl Canonical<'_> {
    pub fn request(&self) -> String {
        let path = uri_encode(&percent_decode(self.raw_path), true);
        let headers: String = self
            .signed_headers
            .iter()
            .map(|name| {
                let value = canonical_header_value(
                    self.headers
                        .get_all(name.as_str())
                        .iter()
                        .map(|v| v.as_bytes()),
                );
                format!("{name}:{value}\n")
            })
            .collect();
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            path,
            canonical_query(self.raw_query),
            headers,
            self.signed_headers.join(";"),
            self.payload_hash
        )
    }
}

/// The signing key for `secret` on `date` (yyyymmdd) in `region`.
pub fn signing_key(secret: &str, date: &str, region: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, b"s3");
    hmac(&k, b"aws4_request")
}

/// The hex signature of `canonical_request` at `amz_date` within `scope`.
pub fn signature(key: &[u8], amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    hex::encode(hmac(key, to_sign.as_bytes()))
}

/// The signature of one `aws-chunked` chunk, chained on the previous one.
pub fn chunk_signature(
    key: &[u8],
    amz_date: &str,
    scope: &str,
    previous: &str,
    chunk: &[u8],
) -> String {
    let to_sign = format!(
        "{ALGORITHM}-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{EMPTY_SHA256}\n{}",
        sha256_hex(chunk)
    );
    hex::encode(hmac(key, to_sign.as_bytes()))
}

/// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
pub fn parse_authorization(value: &str) -> Option<SignatureParts> {
    let rest = value.trim().strip_prefix(ALGORITHM)?.trim();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for field in rest.split(',') {
        let (k, v) = field.trim().split_once('=')?;
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    parts(credential?, signed?, signature?)
}

/// Builds the parts from a credential (`AKID/date/region/s3/aws4_request`) and the rest.
pub fn parts(credential: &str, signed_headers: &str, signature: &str) -> Option<SignatureParts> {
    let mut fields = credential.splitn(2, '/');
    let access_key_id = fields.next()?.to_string();
    let scope = fields.next()?.to_string();
    let scope_fields: Vec<&str> = scope.split('/').collect();
    let [date, region, "s3", "aws4_request"] = scope_fields.as_slice() else {
        return None;
    };
    if access_key_id.is_empty() || date.len() != 8 {
        return None;
    }
    Some(SignatureParts {
        access_key_id,
        date: date.to_string(),
        region: region.to_string(),
        scope: scope.clone(),
        signed_headers: signed_headers
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect(),
        signature: signature.to_ascii_lowercase(),
    })
}

/// Parses an `x-amz-date` / `X-Amz-Date` value (`yyyymmddThhmmssZ`).
pub fn parse_amz_date(raw: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(raw, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

pub fn format_amz_date(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A SigV4 presigned URL's query (without the leading `?`) for `method` on `raw_path`, signed
/// with the `host` header only, or `host` and `content-type` when one is given.
#[allow(clippy::too_many_arguments)]
pub fn presign_query(
    method: &str,
    raw_path: &str,
    host: &str,
    content_type: Option<&str>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    now: DateTime<Utc>,
    expires_secs: i64,
) -> String {
    let amz_date = format_amz_date(now);
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let signed: Vec<String> = match content_type {
        Some(_) => vec!["content-type".into(), "host".into()],
        None => vec!["host".into()],
    };
    let query = format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders={}",
        uri_encode(format!("{access_key_id}/{scope}").as_bytes(), false),
        uri_encode(signed.join(";").as_bytes(), false),
    );
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(v) = axum::http::HeaderValue::from_str(host) {
        headers.insert(axum::http::header::HOST, v);
    }
    if let Some(Ok(v)) = content_type.map(axum::http::HeaderValue::from_str) {
        headers.insert(axum::http::header::CONTENT_TYPE, v);
    }
    let canonical = Canonical {
        method,
        raw_path,
        raw_query: &query,
        headers: &headers,
        signed_headers: &signed,
        payload_hash: UNSIGNED,
    }
    .request();
    let sig = signature(
        &signing_key(secret, date, region),
        &amz_date,
        &scope,
        &canonical,
    );
    format!("{query}&X-Amz-Signature={sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented GET Object example (s3 "Signature Calculations for the
    /// Authorization Header", example 1).
    #[test]
    fn matches_the_aws_get_object_example() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        headers.insert("range", "bytes=0-9".parse().unwrap());
        headers.insert("x-amz-content-sha256", EMPTY_SHA256.parse().unwrap());
        headers.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        let signed: Vec<String> = ["host", "range", "x-amz-content-sha256", "x-amz-date"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let canonical = Canonical {
            method: "GET",
            raw_path: "/test.txt",
            raw_query: "",
            headers: &headers,
            signed_headers: &signed,
            payload_hash: EMPTY_SHA256,
        }
        .request();
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20130524",
            "us-east-1",
        );
        assert_eq!(
            signature(
                &key,
                "20130524T000000Z",
                "20130524/us-east-1/s3/aws4_request",
                &canonical
            ),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// AWS's documented presigned URL example ("Authenticating Requests: Using Query
    /// Parameters").
    #[test]
    fn matches_the_aws_presigned_example() {
        let now = parse_amz_date("20130524T000000Z").unwrap();
        let query = presign_query(
            "GET",
            "/test.txt",
            "examplebucket.s3.amazonaws.com",
            None,
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            now,
            86400,
        );
        assert!(
            query.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{query}"
        );
    }

    #[test]
    fn parses_an_authorization_header() {
        let p = parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=ABC").unwrap();
        assert_eq!(p.access_key_id, "AKID");
        assert_eq!(p.date, "20130524");
        assert_eq!(p.signed_headers, vec!["host", "x-amz-date"]);
        assert_eq!(p.signature, "abc");
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/x/us/ec2/aws4_request, SignedHeaders=host, Signature=a").is_none());
    }

    #[test]
    fn encodes_and_decodes_paths() {
        assert_eq!(uri_encode(b"/s3/b/a b+c", true), "/s3/b/a%20b%2Bc");
        assert_eq!(percent_decode("a%20b%2"), b"a b%2");
        assert_eq!(canonical_query("b=2&a=1&X-Amz-Signature=x"), "a=1&b=2");
    }
}
