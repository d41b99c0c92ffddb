//! `GET /metrics` (Prometheus text) and the one layer that measures every other request:
//! counts, durations, in-flight, errors and bytes, labelled by route template, never a raw path.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::Body as _;
use metrics::{counter, gauge, histogram};
use parking_lot::RwLock;
use subtle::ConstantTimeEq;

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

/// The recording layer (`axum::middleware::from_fn`), added in `router()` only when metrics
/// are enabled, outside the access gate so 401, 403, 404 and 429 are counted too.
pub async fn record(req: Request, next: Next) -> Response {
    let endpoint: &'static str = match req.extensions().get::<MatchedPath>() {
        Some(p) if p.as_str() == PATH => return next.run(req).await,
        Some(p) => telemetry::intern(p.as_str()),
        None => "unmatched",
    };
    let method = method_label(req.method());
    let handles = RouteHandles::of(method, endpoint);
    if let Some(len) = content_length(req.headers()) {
        handles.bytes_in.increment(len);
    }
    let in_flight = InFlight::enter(handles.in_flight.clone());
    let started = Instant::now();
    let response = next.run(req).await;
    drop(in_flight);
    let status = response.status();
    handles.requests(status).increment(1);
    handles.duration.record(started.elapsed().as_secs_f64());
    if status.is_client_error() || status.is_server_error() {
        let kind = response
            .extensions()
            .get::<ErrorCode>()
            .map(|c| c.as_str())
            .unwrap_or("http_error");
        counter!(names::ERRORS, "type" => kind, "endpoint" => endpoint).increment(1);
    }
    let out = handles.bytes_out.clone();
    match response.body().size_hint().exact() {
        Some(len) => {
            out.increment(len);
            response
        }
        // A streamed body (downloads, exports): counted as it goes out.
        None => response.map(|body| Body::new(Observed::new(body, Counted(out)))),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_label(status: StatusCode) -> &'static str {
    // Canonical reasons exist for every status duckbank sends; `as_str` of a `StatusCode` is
    // tied to the value, so the common ones are spelled out and the rest share one label.
    match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        206 => "206",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        410 => "410",
        413 => "413",
        416 => "416",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        507 => "507",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
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

/// One request in `duckdb_api_requests_in_flight`, left when dropped: also when the client
/// goes away and the request's future is dropped half-way.
struct InFlight(metrics::Gauge);

impl InFlight {
    fn enter(gauge: metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

/// The metric handles of one method on one route, resolved once: a request then updates
/// them without building label sets or looking them up in the recorder's registry.
struct RouteHandles {
    method: &'static str,
    endpoint: &'static str,
    in_flight: metrics::Gauge,
    duration: metrics::Histogram,
    bytes_in: metrics::Counter,
    bytes_out: metrics::Counter,
    /// `duckdb_api_requests_total` by status, added as statuses occur (a handful per route).
    by_status: RwLock<Vec<(StatusCode, metrics::Counter)>>,
}

type RouteKey = (&'static str, &'static str);

impl RouteHandles {
    fn of(method: &'static str, endpoint: &'static str) -> Arc<Self> {
        static ROUTES: OnceLock<RwLock<HashMap<RouteKey, Arc<RouteHandles>>>> = OnceLock::new();
        let routes = ROUTES.get_or_init(Default::default);
        if let Some(found) = routes.read().get(&(method, endpoint)) {
            return found.clone();
        }
        let family = family(endpoint);
        let handles = Arc::new(Self {
            method,
            endpoint,
            in_flight: gauge!(names::IN_FLIGHT, "method" => method),
            duration: histogram!(names::REQUEST_DURATION, "method" => method, "endpoint" => endpoint),
            bytes_in: counter!(names::REQUEST_BYTES, "family" => family),
            bytes_out: counter!(names::RESPONSE_BYTES, "family" => family),
            by_status: RwLock::new(Vec::new()),
        });
        routes
            .write()
            .entry((method, endpoint))
            .or_insert(handles)
            .clone()
    }

    fn requests(&self, status: StatusCode) -> metrics::Counter {
        if let Some((_, c)) = self.by_status.read().iter().find(|(s, _)| *s == status) {
            return c.clone();
        }
        let counter = counter!(names::REQUESTS,
            "method" => self.method, "endpoint" => self.endpoint,
            "status_code" => status_label(status));
        self.by_status.write().push((status, counter.clone()));
        counter
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
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
    use super::family;

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
