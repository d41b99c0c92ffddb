//! Who sent an S3 request: SigV4 (Authorization header or presigned query) with a per-key
//! credential, or a plain API key (Bearer / X-Api-Key); and what the payload must hash to.

use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::sigv4::{self, SignatureParts};
use super::xml::{S3Error, S3Result};
use crate::auth::principal::presented_key;
use crate::auth::Principal;
use crate::state::AppState;

/// What the body must be checked against once received.
#[derive(Debug, Clone)]
pub enum Payload {
    /// No promise about the body (`UNSIGNED-PAYLOAD`, presigned URLs, API keys).
    Unsigned,
    /// The body's SHA-256, as the client signed it.
    Sha256(String),
    /// `aws-chunked` content encoding; with chunk signatures when `signing` is set.
    Chunked { signing: Option<ChunkSigning> },
}

/// What chunk signatures of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` body are chained from.
#[derive(Debug, Clone)]
pub struct ChunkSigning {
    pub key: Vec<u8>,
    pub amz_date: String,
    pub scope: String,
    pub seed: String,
}

pub struct Caller {
    pub principal: Principal,
    pub payload: Payload,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Authenticates an S3 request (403 `AccessDenied` / `SignatureDoesNotMatch` /
/// `RequestTimeTooSkewed` / `InvalidAccessKeyId` otherwise) and counts it against the
/// caller's rate limit (the gate leaves the S3 face to authenticate itself, ADR 0032): 503
/// `SlowDown` past it.
pub async fn authenticate(parts: &Parts, state: &AppState) -> S3Result<Caller> {
    let caller = identify(parts, state).await?;
    state.rate_limits.admit(&caller.principal)?;
    Ok(caller)
}

async fn identify(parts: &Parts, state: &AppState) -> S3Result<Caller> {
    let query = parts.uri.query().unwrap_or("");
    let authorization = header(&parts.headers, "authorization").unwrap_or("");
    if authorization.starts_with(sigv4::ALGORITHM) {
        let sig = sigv4::parse_authorization(authorization)
            .ok_or_else(|| S3Error::invalid_argument("the Authorization header is malformed"))?;
        return header_form(parts, state, sig).await;
    }
    let pairs = sigv4::query_pairs(query);
    let q = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if q("X-Amz-Algorithm").is_some() || q("X-Amz-Signature").is_some() {
        if q("X-Amz-Algorithm") != Some(sigv4::ALGORITHM) {
            return Err(S3Error::invalid_argument(
                "only AWS4-HMAC-SHA256 presigned URLs are supported",
            ));
        }
        let (Some(credential), Some(signed), Some(signature), Some(date), Some(expires)) = (
            q("X-Amz-Credential"),
            q("X-Amz-SignedHeaders"),
            q("X-Amz-Signature"),
            q("X-Amz-Date"),
            q("X-Amz-Expires"),
        ) else {
            return Err(S3Error::access_denied(
                "the presigned URL lacks one of X-Amz-Credential, X-Amz-SignedHeaders, X-Amz-Signature, X-Amz-Date, X-Amz-Expires",
            ));
        };
        let sig = sigv4::parts(credential, signed, signature)
            .ok_or_else(|| S3Error::access_denied("X-Amz-Credential is malformed"))?;
        return query_form(parts, state, sig, date, expires).await;
    }
    if presented_key(&parts.headers).is_some() {
        let principal = Principal::authenticate(parts, state)
            .await
            .map_err(|e| S3Error::access_denied(e.message().to_string()))?;
        let payload = match header(&parts.headers, "x-amz-content-sha256") {
            Some(h) if crate::files::is_sha256_hex(&h.to_ascii_lowercase()) => {
                Payload::Sha256(h.to_ascii_lowercase())
            }
            _ => Payload::Unsigned,
        };
        return Ok(Caller { principal, payload });
    }
    Err(S3Error::access_denied(
        "Access Denied: sign the request with SigV4 or send an API key",
    ))
}

/// The principal and secret behind an access key id (403 `InvalidAccessKeyId` if none).
async fn resolve(state: &AppState, sig: &SignatureParts) -> S3Result<(Principal, String)> {
    state
        .s3
        .resolve(&sig.access_key_id)
        .await
        .map_err(S3Error::from)?
        .ok_or_else(|| {
            S3Error::new(
                axum::http::StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        })
}

fn skewed() -> S3Error {
    S3Error::new(
        axum::http::StatusCode::FORBIDDEN,
        "RequestTimeTooSkewed",
        "The difference between the request time and the server's time is too large.",
    )
}

fn check_signature(
    parts: &Parts,
    sig: &SignatureParts,
    key: &[u8],
    amz_date: &str,
    payload_hash: &str,
) -> S3Result<()> {
    if !sig.signed_headers.iter().any(|h| h == "host") {
        return Err(S3Error::access_denied(
            "the signature must cover the host header",
        ));
    }
    let canonical = sigv4::Canonical {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        signed_headers: &sig.signed_headers,
        payload_hash,
    }
    .request();
    let expected = sigv4::signature(key, amz_date, &sig.scope, &canonical);
    use subtle::ConstantTimeEq;
    if bool::from(expected.as_bytes().ct_eq(sig.signature.as_bytes())) {
        Ok(())
    } else {
        tracing::debug!(%canonical, "S3 signature mismatch");
        Err(S3Error::signature_mismatch())
    }
}

async fn header_form(parts: &Parts, state: &AppState, sig: SignatureParts) -> S3Result<Caller> {
    let amz_date = header(&parts.headers, "x-amz-date")
        .ok_or_else(|| S3Error::access_denied("SigV4 requests need an x-amz-date header"))?;
    let when = sigv4::parse_amz_date(amz_date)
        .ok_or_else(|| S3Error::access_denied("x-amz-date is malformed"))?;
    if (crate::catalog::now() - when).num_seconds().abs() > sigv4::MAX_SKEW_SECS {
        return Err(skewed());
    }
    if !amz_date.starts_with(&sig.date) {
        return Err(S3Error::signature_mismatch());
    }
    let payload_hash = header(&parts.headers, "x-amz-content-sha256")
        .ok_or_else(|| {
            S3Error::invalid_argument("SigV4 requests to S3 need an x-amz-content-sha256 header")
        })?
        .to_string();
    let (principal, secret) = resolve(state, &sig).await?;
    let key = sigv4::signing_key(&secret, &sig.date, &sig.region);
    check_signature(parts, &sig, &key, amz_date, &payload_hash)?;
    let payload = match payload_hash.as_str() {
        sigv4::UNSIGNED => Payload::Unsigned,
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Payload::Chunked { signing: None },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
            Payload::Chunked {
                signing: Some(ChunkSigning {
                    key,
                    amz_date: amz_date.to_string(),
                    scope: sig.scope.clone(),
                    seed: sig.signature.clone(),
                }),
            }
        }
        h if crate::files::is_sha256_hex(&h.to_ascii_lowercase()) => {
            Payload::Sha256(h.to_ascii_lowercase())
        }
        other => {
            return Err(S3Error::invalid_argument(format!(
                "x-amz-content-sha256 {other:?} is not supported"
            )))
        }
    };
    Ok(Caller { principal, payload })
}

async fn query_form(
    parts: &Parts,
    state: &AppState,
    sig: SignatureParts,
    amz_date: &str,
    expires: &str,
) -> S3Result<Caller> {
    let when = sigv4::parse_amz_date(amz_date)
        .ok_or_else(|| S3Error::access_denied("X-Amz-Date is malformed"))?;
    let expires: i64 = expires
        .parse()
        .ok()
        .filter(|e| (1..=sigv4::MAX_EXPIRES_SECS).contains(e))
        .ok_or_else(|| {
            S3Error::access_denied("X-Amz-Expires must be between 1 and 604800 seconds")
        })?;
    let now = crate::catalog::now();
    if (when - now).num_seconds() > sigv4::MAX_SKEW_SECS {
        return Err(skewed());
    }
    if (now - when).num_seconds() > expires {
        return Err(S3Error::access_denied("Request has expired"));
    }
    if !amz_date.starts_with(&sig.date) {
        return Err(S3Error::signature_mismatch());
    }
    let (principal, secret) = resolve(state, &sig).await?;
    let key = sigv4::signing_key(&secret, &sig.date, &sig.region);
    check_signature(parts, &sig, &key, amz_date, sigv4::UNSIGNED)?;
    Ok(Caller {
        principal,
        payload: Payload::Unsigned,
    })
}
