//! `GET /metrics` (Prometheus text) and the one layer that measures every other request:
//! counts, durations, in-flight, errors and bytes, labelled by route template, never a raw path.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::Body as _;
use metrics::{counter, gauge, histogram};
use parking_lot::RwLock;
use pin_project_lite::pin_project;
use subtle::ConstantTimeEq;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::{ApiError, ErrorCode};
use crate::server::body::{Observed, Observer};
use crate::state::AppState;
use crate::telemetry::{self, names};

/// The scrape route; never measured itself.
pub const PATH: &str = "/metrics";

/// `GET /metrics`: 404 when METRICS_ENABLED is false, 401 without the METRICS_TOKEN bearer
/// when one is set. Figures come from memory (the catalog model, the last health check).
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(handle) = telemetry::handle().filter(|_| state.config.metrics_enabled) else {
        return ApiError::new(ErrorCode::NotFound, "metrics are disabled").into_response();
    };
    if let Some(token) = &state.config.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
            return ApiError::unauthorized(
                "GET /metrics needs the metrics token as a bearer token",
            )
            .into_response();
        }
    }
    refresh_gauges(&state);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

/// Gauges read at scrape time from in-memory state only.
fn refresh_gauges(state: &AppState) {
    let (projects, buckets, tables, table_bytes) = state.catalog.read(|model| {
        let mut counts = (model.projects.len(), 0usize, 0usize, 0u64);
        for project in model.projects.values() {
            counts.1 += project.buckets.len();
            for bucket in project.buckets.values().filter(|b| b.link.is_none()) {
                counts.2 += bucket.tables.len();
                counts.3 += bucket
                    .tables
                    .values()
                    .filter_map(|t| t.stats.as_ref())
                    .map(|s| s.size_bytes)
                    .sum::<u64>();
            }
        }
        counts
    });
    gauge!(names::PROJECTS).set(projects as f64);
    gauge!(names::BUCKETS).set(buckets as f64);
    gauge!(names::TABLES).set(tables as f64);
    gauge!(names::STORAGE_SIZE, "type" => "tables").set(table_bytes as f64);
    gauge!(names::TABLE_LOCKS).set(state.engine.locks.entries() as f64);
    gauge!(names::TABLES_ATTACHED).set(state.engine.attached_count() as f64);
    let health = state.health.latest();
    if let Ok(free) = health.free_bytes {
        gauge!(names::DISK_FREE).set(free as f64);
    }
    if let Some(sizes) = &health.sizes {
        gauge!(names::STORAGE_SIZE, "type" => "metadata").set(sizes.metadata as f64);
        gauge!(names::STORAGE_SIZE, "type" => "files").set(sizes.files as f64);
        gauge!(names::UPLOAD_SESSIONS).set(sizes.upload_sessions as f64);
    }
}

/// The recording layer, added with `Router::layer` in `router()` only when metrics are enabled,
/// outside the access gate so 401, 403, 404 and 429 are counted too. A plain tower layer: per
/// request it looks the matched route up once and updates handles resolved on first use; it
/// neither boxes the inner future nor builds label sets.
#[derive(Clone, Copy)]
pub struct RecordLayer {
    table: &'static RouteTable,
}

impl RecordLayer {
    /// `templates`: the router's route templates, whose labels are built here, once per
    /// process (the recorder is process-wide too). A template missing from them is still
    /// measured; its labels are built on its first request.
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        static TABLE: OnceLock<RouteTable> = OnceLock::new();
        Self {
            table: TABLE.get_or_init(|| RouteTable::new(templates)),
        }
    }
}

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            table: self.table,
        }
    }
}

/// One route's service, measured.
#[derive(Clone)]
pub struct Record<S> {
    inner: S,
    table: &'static RouteTable,
}

impl<S> Service<Request> for Record<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Recorded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let recording = self
            .table
            .endpoint(req.extensions().get::<MatchedPath>())
            .map(|endpoint| Recording::start(endpoint.handles(req.method()), req.headers()));
        Recorded {
            inner: self.inner.call(req),
            recording,
        }
    }
}

pin_project! {
    /// The inner service's future; records the response when it is ready.
    pub struct Recorded<F> {
        #[pin]
        inner: F,
        recording: Option<Recording>,
    }
}

impl<F, E> Future for Recorded<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        Poll::Ready(match this.recording.take() {
            Some(recording) => result.map(|response| recording.finish(response)),
            None => result,
        })
    }
}

/// One request being measured: counted in `duckdb_api_requests_in_flight` until dropped, also
/// when the client goes away and the request's future is dropped half-way.
struct Recording {
    handles: &'static RouteHandles,
    started: Instant,
}

impl Recording {
    fn start(handles: &'static RouteHandles, headers: &HeaderMap) -> Self {
        if let Some(len) = content_length(headers) {
            handles.bytes_in.increment(len);
        }
        handles.in_flight.increment(1.0);
        Self {
            handles,
            started: Instant::now(),
        }
    }

    fn finish(self, response: Response) -> Response {
        let handles = self.handles;
        let status = response.status();
        handles.requests(status).increment(1);
        handles
            .duration
            .record(self.started.elapsed().as_secs_f64());
        if status.is_client_error() || status.is_server_error() {
            let kind = response
                .extensions()
                .get::<ErrorCode>()
                .map_or("http_error", |c| c.as_str());
            handles.errors(kind).increment(1);
        }
        match response.body().size_hint().exact() {
            Some(len) => {
                handles.bytes_out.increment(len);
                response
            }
            // A streamed body (downloads, exports): counted as it goes out.
            None => {
                let out = Counted(handles.bytes_out.clone());
                response.map(|body| Body::new(Observed::new(body, out)))
            }
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.handles.in_flight.decrement(1.0);
    }
}

/// Every route's labels, built once: a request costs one lookup of its matched template.
struct RouteTable {
    routes: HashMap<&'static str, Endpoint>,
    /// Requests no route matched (404, and 405 from the fallback).
    unmatched: Endpoint,
    /// Templates that were not given to `RecordLayer::new` (none are expected).
    others: RwLock<HashMap<&'static str, &'static Endpoint>>,
}

impl RouteTable {
    fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        let routes = templates
            .into_iter()
            .filter(|t| *t != PATH)
            .map(|t| {
                let t = telemetry::intern(t);
                (t, Endpoint::new(t))
            })
            .collect();
        Self {
            routes,
            unmatched: Endpoint::new("unmatched"),
            others: RwLock::default(),
        }
    }

    /// The endpoint a request is counted under; `None` for the scrape itself.
    fn endpoint(&'static self, matched: Option<&MatchedPath>) -> Option<&'static Endpoint> {
        let Some(template) = matched.map(MatchedPath::as_str) else {
            return Some(&self.unmatched);
        };
        if template == PATH {
            return None;
        }
        if let Some(endpoint) = self.routes.get(template) {
            return Some(endpoint);
        }
        if let Some(endpoint) = self.others.read().get(template) {
            return Some(endpoint);
        }
        let template = telemetry::intern(template);
        let mut others = self.others.write();
        Some(
            others
                .entry(template)
                .or_insert_with(|| Box::leak(Box::new(Endpoint::new(template)))),
        )
    }
}

/// One route template's labels, and its handles per method, registered with the recorder on
/// the method's first request (so `/metrics` lists only what was requested).
struct Endpoint {
    endpoint: &'static str,
    family: &'static str,
    methods: [OnceLock<RouteHandles>; METHODS.len()],
}

impl Endpoint {
    fn new(endpoint: &'static str) -> Self {
        Self {
            endpoint,
            family: family(endpoint),
            methods: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    fn handles(&'static self, method: &Method) -> &'static RouteHandles {
        let slot = method_slot(method);
        self.methods[slot].get_or_init(|| RouteHandles::new(METHODS[slot], self))
    }
}

/// The metric handles of one method on one route: a request updates them without building
/// label sets or looking them up in the recorder's registry.
struct RouteHandles {
    method: &'static str,
    endpoint: &'static str,
    in_flight: metrics::Gauge,
    duration: metrics::Histogram,
    bytes_in: metrics::Counter,
    bytes_out: metrics::Counter,
    /// `duckdb_api_requests_total` by status label, registered as statuses occur.
    by_status: [OnceLock<metrics::Counter>; STATUS_LABELS.len()],
    /// `duckdb_api_errors_total` by error code, added as codes occur (a handful per route).
    errors: RwLock<Vec<(&'static str, metrics::Counter)>>,
}

impl RouteHandles {
    fn new(method: &'static str, endpoint: &Endpoint) -> Self {
        let (family, endpoint) = (endpoint.family, endpoint.endpoint);
        Self {
            method,
            endpoint,
            in_flight: gauge!(names::IN_FLIGHT, "method" => method),
            duration: histogram!(names::REQUEST_DURATION, "method" => method, "endpoint" => endpoint),
            bytes_in: counter!(names::REQUEST_BYTES, "family" => family),
            bytes_out: counter!(names::RESPONSE_BYTES, "family" => family),
            by_status: std::array::from_fn(|_| OnceLock::new()),
            errors: RwLock::default(),
        }
    }

    fn requests(&self, status: StatusCode) -> &metrics::Counter {
        let slot = status_slot(status);
        self.by_status[slot].get_or_init(|| {
            counter!(names::REQUESTS,
                "method" => self.method, "endpoint" => self.endpoint,
                "status_code" => STATUS_LABELS[slot])
        })
    }

    fn errors(&self, kind: &'static str) -> metrics::Counter {
        if let Some((_, c)) = self.errors.read().iter().find(|(k, _)| *k == kind) {
            return c.clone();
        }
        let mut errors = self.errors.write();
        if let Some((_, c)) = errors.iter().find(|(k, _)| *k == kind) {
            return c.clone();
        }
        let counter = counter!(names::ERRORS, "type" => kind, "endpoint" => self.endpoint);
        errors.push((kind, counter.clone()));
        counter
    }
}

/// Method labels; the last one is for every method duckbank does not serve.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "other",
];

fn method_slot(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::HEAD => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// The statuses duckbank sends, each with its own label (sorted, for the search below).
const STATUS_CODES: [u16; 21] = [
    200, 201, 202, 204, 206, 304, 400, 401, 403, 404, 405, 408, 409, 410, 413, 416, 422, 429, 500,
    503, 507,
];

/// `STATUS_CODES` spelled out, then the class labels every other status shares.
const STATUS_LABELS: [&str; 25] = [
    "200", "201", "202", "204", "206", "304", "400", "401", "403", "404", "405", "408", "409",
    "410", "413", "416", "422", "429", "500", "503", "507", "2xx", "3xx", "4xx", "5xx",
];

fn status_slot(status: StatusCode) -> usize {
    let code = status.as_u16();
    STATUS_CODES.binary_search(&code).unwrap_or_else(|_| {
        let class = usize::from(code / 100).clamp(2, 5) - 2;
        STATUS_CODES.len() + class
    })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The route family bytes are counted by: what the route works on.
pub fn family(endpoint: &str) -> &'static str {
    const FAMILIES: &[(&str, &str)] = &[
        ("/tables", "tables"),
        ("/uploads", "files"),
        ("/files", "files"),
        ("/v1/blobs", "files"),
        ("/jobs", "jobs"),
        ("/buckets", "buckets"),
        ("/api-keys", "projects"),
        ("/projects", "projects"),
        ("/admin", "admin"),
        ("/backend", "admin"),
    ];
    FAMILIES
        .iter()
        .find(|(part, _)| endpoint.contains(part))
        .map_or("other", |(_, family)| family)
}

/// Counts a streamed response body's bytes as they are polled (an [`Observed`] body's observer).
struct Counted(metrics::Counter);

impl Observer for Counted {
    fn data(&mut self, data: &Bytes) {
        self.0.increment(data.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_get_their_own_label_or_their_class() {
        for (i, code) in STATUS_CODES.iter().enumerate() {
            assert_eq!(STATUS_LABELS[i], code.to_string());
            let status = StatusCode::from_u16(*code).unwrap();
            assert_eq!(STATUS_LABELS[status_slot(status)], code.to_string());
        }
        let label = |code: u16| STATUS_LABELS[status_slot(StatusCode::from_u16(code).unwrap())];
        assert_eq!(label(203), "2xx");
        assert_eq!(label(101), "2xx");
        assert_eq!(label(302), "3xx");
        assert_eq!(label(418), "4xx");
        assert_eq!(label(502), "5xx");
        assert_eq!(label(599), "5xx");
    }

    #[test]
    fn the_table_holds_every_template_but_the_scrape_and_an_unmatched_endpoint() {
        let table: &'static RouteTable = Box::leak(Box::new(RouteTable::new(["/a/{id}", PATH])));
        assert!(table.routes.contains_key("/a/{id}"));
        assert!(!table.routes.contains_key(PATH));
        assert_eq!(table.endpoint(None).map(|e| e.endpoint), Some("unmatched"));
    }

    #[test]
    fn route_families_follow_the_innermost_resource() {
        let p = "/projects/{project_id}";
        assert_eq!(
            family(&format!("{p}/buckets/{{bucket_name}}/tables")),
            "tables"
        );
        assert_eq!(family(&format!("{p}/buckets/{{bucket_name}}")), "buckets");
        assert_eq!(
            family(&format!("{p}/uploads/{{upload_id}}/chunks/{{n}}")),
            "files"
        );
        assert_eq!(family("/files/{file_id}"), "files");
        assert_eq!(family(&format!("{p}/api-keys")), "projects");
        assert_eq!(family("/health"), "other");
        assert_eq!(family("unmatched"), "other");
    }
}
