//! Idempotent retries over HTTP: `X-Idempotency-Key` / `Idempotency-Key` on POST, PUT, PATCH and
//! DELETE, kept per caller, checked after authentication, replayed or refused (ADR 0026).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http_body::Body as _;
use sha2::{Digest, Sha256};

use crate::auth::{presented_key, Principal};
use crate::catalog::idempotency::StoredResponse;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::server::body::{Observed, Observer};
use crate::service::idempotency::{open, seal};
use crate::state::AppState;

const KEY_HEADERS: [&str; 2] = ["x-idempotency-key", "idempotency-key"];
/// The response headers a replay repeats; others (request id, rate limits) are the retry's own.
const KEPT_HEADERS: [&str; 3] = ["content-type", "location", "etag"];
/// Responses larger than this are not stored: mutating routes answer with small JSON, and a
/// hostile client must not fill the catalog.
const MAX_STORED_BODY: usize = 256 * 1024;
const MAX_KEY_LEN: usize = 255;

/// The idempotency layer's state: the app's, and the routes whose body limit is lifted, so a
/// retry's body is read only as far as its route would accept it.
#[derive(Clone)]
pub struct Replays {
    state: AppState,
    unlimited: Arc<HashSet<(Method, String)>>,
}

impl Replays {
    /// `unlimited`: the (method, route template) pairs whose body limit is lifted (uploads).
    pub fn new(state: &AppState, unlimited: impl IntoIterator<Item = (Method, String)>) -> Self {
        let unlimited = unlimited.into_iter().collect();
        Self {
            state: state.clone(),
            unlimited: Arc::new(unlimited),
        }
    }

    /// The most a retry's body may hold on its route: MAX_BODY_BYTES (the JSON routes'
    /// `DefaultBodyLimit`), or no limit on upload routes.
    fn body_limit(&self, req: &Request) -> Option<usize> {
        let template = req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        let lifted = template.is_some_and(|t| {
            self.unlimited
                .contains(&(req.method().clone(), t.to_string()))
        });
        (!lifted).then_some(self.state.config.max_body_bytes)
    }
}

/// Runs the request at most once per (caller, idempotency key) within the TTL.
pub async fn idempotent(State(replays): State<Replays>, req: Request, next: Next) -> Response {
    let state = &replays.state;
    if !matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return next.run(req).await;
    }
    let key = match idempotency_key(req.headers()) {
        Ok(Some(key)) => key,
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    // Only routes behind the gate have a caller to keep the entry for.
    let Some(principal) = req.extensions().get::<Principal>().cloned() else {
        return next.run(req).await;
    };
    let secret = presented_key(req.headers()).unwrap_or_default().to_string();
    let limit = replays.body_limit(&req);
    let response = match run_once(state, &principal, &secret, &key, limit, req, next).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    echo_key(response, &key)
}

async fn run_once(
    state: &AppState,
    principal: &Principal,
    secret: &str,
    key: &str,
    body_limit: Option<usize>,
    req: Request,
    next: Next,
) -> ApiResult<Response> {
    let caller = principal.caller_id();
    let Some(claim) = state.idempotency.claim(&caller, key) else {
        return Err(ApiError::new(
            ErrorCode::IdempotencyInProgress,
            format!("a request with idempotency key '{key}' is still running; retry when it has finished"),
        ));
    };
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    if let Some(stored) = state.idempotency.stored(&caller, key).await? {
        return replay(stored, secret, key, &method, &path, body_limit, req).await;
    }

    let (parts, body) = req.into_parts();
    let fingerprint = Arc::new(OnceLock::new());
    let body = Body::new(Fingerprinting::body(body, fingerprint.clone()));
    let response = next.run(Request::from_parts(parts, body)).await;
    // Nothing to keep: a failure of ours or an answer about the caller's standing, which a
    // retry must ask again; or a body the handler did not read to its end.
    let status = response.status();
    if status.is_server_error()
        || matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
        )
    {
        return Ok(response);
    }
    let Some(fingerprint) = fingerprint.get().cloned() else {
        return Ok(response);
    };
    let fits = response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= MAX_STORED_BODY as u64);
    if !fits {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_STORED_BODY)
        .await
        .map_err(|e| ApiError::internal(format!("reading the response to store it: {e}")))?;
    let stored = StoredResponse {
        method,
        path,
        fingerprint,
        status: parts.status.as_u16(),
        headers: kept_headers(&parts.headers),
        sealed_body: seal(secret, &bytes),
        expires_at: crate::catalog::now(),
    };
    state.idempotency.keep(claim, stored);
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// The stored answer, when the retry is the same request; 409 saying what differs otherwise.
async fn replay(
    stored: StoredResponse,
    secret: &str,
    key: &str,
    method: &str,
    path: &str,
    body_limit: Option<usize>,
    req: Request,
) -> ApiResult<Response> {
    let conflict = |what: String| {
        Err(ApiError::new(
            ErrorCode::IdempotencyConflict,
            format!("idempotency key '{key}' was already used {what}"),
        ))
    };
    if stored.method != method || stored.path != path {
        return conflict(format!(
            "for {} {}; this request is {method} {path}",
            stored.method, stored.path
        ));
    }
    if fingerprint_of(req.into_body(), body_limit).await? != stored.fingerprint {
        return conflict(format!("for {method} {path} with a different body"));
    }
    // Sealed with another secret: the admin key was changed since. Running the request again
    // could repeat its effect, so refuse like any other mismatch.
    let Some(body) = open(secret, &stored.sealed_body) else {
        return conflict(format!("for {method} {path} with a different API key"));
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.insert(name, value);
        }
    }
    for name in ["x-idempotency-replay", "idempotent-replayed"] {
        headers.insert(name, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The key the request carries: `None` without one; 400 for an empty, too long or
/// non-printable one, or two different ones.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let mut found: Option<String> = None;
    for name in KEY_HEADERS {
        let Some(value) = headers.get(name) else {
            continue;
        };
        let valid = value
            .to_str()
            .ok()
            .filter(|v| (1..=MAX_KEY_LEN).contains(&v.len()))
            .filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)));
        let Some(value) = valid else {
            return Err(ApiError::bad_request(format!(
                "the {name} header must be 1 to {MAX_KEY_LEN} printable ASCII characters"
            )));
        };
        match &found {
            Some(other) if other != value => {
                return Err(ApiError::bad_request(
                    "X-Idempotency-Key and Idempotency-Key carry different values",
                ))
            }
            _ => found = Some(value.to_string()),
        }
    }
    Ok(found)
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

fn echo_key(mut response: Response, key: &str) -> Response {
    if let Ok(value) = HeaderValue::try_from(key) {
        response.headers_mut().insert("x-idempotency-key", value);
    }
    response
}

/// The SHA-256 of a retry's body; 413 as soon as it is known to hold more than `limit` bytes
/// (from its Content-Length, else while reading), so an oversized retry is not read in full.
async fn fingerprint_of(body: Body, limit: Option<usize>) -> ApiResult<String> {
    let limit = limit.map_or(u64::MAX, |l| l as u64);
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "request body is larger than MAX_BODY_BYTES",
        )
    };
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        read += chunk.len() as u64;
        if read > limit {
            return Err(too_large());
        }
        hasher.update(&chunk);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Hashes what the handler reads of a request body (an [`Observed`] body's observer); the
/// SHA-256 is known once the handler has read it to its end (never, if it stops early or the
/// body fails).
struct Fingerprinting {
    hasher: Option<Sha256>,
    done: Arc<OnceLock<String>>,
}

impl Fingerprinting {
    fn body(inner: Body, done: Arc<OnceLock<String>>) -> Observed<Body, Self> {
        let hasher = Some(Sha256::new());
        Observed::new(inner, Self { hasher, done })
    }
}

impl Observer for Fingerprinting {
    fn data(&mut self, data: &Bytes) {
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(data);
        }
    }

    fn end(&mut self) {
        if let Some(hasher) = self.hasher.take() {
            let _ = self.done.set(hex::encode(hasher.finalize()));
        }
    }

    // A failed body is not a body read to its end.
    fn error(&mut self) {
        self.hasher = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::try_from(*name).unwrap(),
                HeaderValue::try_from(*value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn reads_either_header_and_checks_the_value() {
        assert_eq!(idempotency_key(&headers(&[])).unwrap(), None);
        assert_eq!(
            idempotency_key(&headers(&[("x-idempotency-key", "abc-1")])).unwrap(),
            Some("abc-1".into())
        );
        assert_eq!(
            idempotency_key(&headers(&[("idempotency-key", "k k")])).unwrap(),
            Some("k k".into())
        );
        assert!(idempotency_key(&headers(&[
            ("idempotency-key", "a"),
            ("x-idempotency-key", "a")
        ]))
        .is_ok());
        assert!(idempotency_key(&headers(&[
            ("idempotency-key", "a"),
            ("x-idempotency-key", "b")
        ]))
        .is_err());
        assert!(idempotency_key(&headers(&[("idempotency-key", "")])).is_err());
        let long = "x".repeat(256);
        assert!(idempotency_key(&headers(&[("idempotency-key", &long)])).is_err());
        assert!(idempotency_key(&headers(&[("idempotency-key", &long[..255])])).is_ok());
        assert!(idempotency_key(&headers(&[("idempotency-key", "tab\there")])).is_err());
    }

    #[tokio::test]
    async fn the_fingerprint_is_known_once_the_body_is_read() {
        let done = Arc::new(OnceLock::new());
        let body = Body::new(Fingerprinting::body(Body::from("hello"), done.clone()));
        let bytes = axum::body::to_bytes(body, 100).await.unwrap();
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(
            done.get().cloned(),
            Some(fingerprint_of(Body::from("hello"), None).await.unwrap())
        );

        let empty = Arc::new(OnceLock::new());
        let _unread = Fingerprinting::body(Body::empty(), empty.clone());
        assert!(empty.get().is_some(), "an empty body needs no reading");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_whether_or_not_its_length_is_announced() {
        let chunks = || {
            let chunk = || Ok::<_, std::io::Error>(Bytes::from_static(&[b'x'; 100]));
            futures_util::stream::iter([chunk(), chunk(), chunk()])
        };
        // No size hint: counted while read.
        let err = fingerprint_of(Body::from_stream(chunks()), Some(250))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
        // A known length: refused before reading.
        let err = fingerprint_of(Body::from(vec![0u8; 300]), Some(250))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
        assert!(fingerprint_of(Body::from_stream(chunks()), Some(300))
            .await
            .is_ok());
        assert!(fingerprint_of(Body::from_stream(chunks()), None)
            .await
            .is_ok());
    }
}
