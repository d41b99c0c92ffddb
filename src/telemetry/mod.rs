//! Process-wide telemetry: the Prometheus recorder and its names, the gauges other layers feed,
//! and the optional OTLP span export (`otlp`). It records and renders; it decides nothing.
//!
//! The `metrics` facade is global: with no recorder installed (METRICS_ENABLED=false) every
//! recording call below is a no-op, so code records unconditionally.

pub mod otlp;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Reference names (the dashboards of the reference service use them).
pub mod names {
    pub const REQUESTS: &str = "duckdb_api_requests_total";
    pub const REQUEST_DURATION: &str = "duckdb_api_request_duration_seconds";
    pub const IN_FLIGHT: &str = "duckdb_api_requests_in_flight";
    pub const ERRORS: &str = "duckdb_api_errors_total";
    pub const SERVICE_INFO: &str = "duckdb_api_service_info";
    pub const PROJECTS: &str = "duckdb_projects_total";
    pub const BUCKETS: &str = "duckdb_buckets_total";
    pub const TABLES: &str = "duckdb_tables_total";
    pub const STORAGE_SIZE: &str = "duckdb_storage_size_bytes";
    pub const IDEMPOTENCY_CACHE: &str = "duckdb_idempotency_cache_size";
    pub const TABLE_LOCKS: &str = "duckdb_table_locks_active";
    pub const METADATA_QUERIES: &str = "duckdb_metadata_queries_total";
    pub const METADATA_CONNECTIONS: &str = "duckdb_metadata_connections_active";
    pub const METADATA_QUERY_DURATION: &str = "duckdb_metadata_query_duration_seconds";
    // duckbank's own.
    pub const REQUEST_BYTES: &str = "duckbank_request_bytes_total";
    pub const RESPONSE_BYTES: &str = "duckbank_response_bytes_total";
    pub const ROWS: &str = "duckbank_table_rows_total";
    pub const BULK_DURATION: &str = "duckbank_table_transfer_duration_seconds";
    pub const QUEUE_WAITING: &str = "duckbank_queue_waiting";
    pub const QUEUE_WAIT: &str = "duckbank_queue_wait_seconds";
    pub const TABLES_ATTACHED: &str = "duckbank_tables_attached";
    pub const KEY_VERIFICATIONS: &str = "duckbank_key_verifications_total";
    pub const DISK_FREE: &str = "duckbank_disk_free_bytes";
    pub const BLOB_OPERATIONS: &str = "duckbank_blob_operations_total";
    pub const UPLOAD_SESSIONS: &str = "duckbank_upload_sessions_open";
    pub const THROTTLED: &str = "duckbank_throttled_total";
}

/// Latency buckets (seconds) for every `_seconds` histogram: 1 ms … 60 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once; later calls return the same handle). `None` when
/// another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    gauge!(names::SERVICE_INFO,
                        "version" => env!("CARGO_PKG_VERSION"),
                        "duckdb_version" => duckdb_version())
                    .set(1.0);
                    spawn_upkeep(handle.clone());
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// The installed recorder's handle, if `install` ran and succeeded.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(Option::as_ref)
}

/// Histograms keep their samples until drained: drain them now and then even with no scrape.
fn spawn_upkeep(handle: PrometheusHandle) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
}

/// The bundled DuckDB library's version (`v1.2.0` style), as the reference reports it.
fn duckdb_version() -> String {
    duckdb::Connection::open_in_memory()
        .and_then(|c| {
            c.query_row("SELECT library_version FROM pragma_version()", [], |r| {
                r.get(0)
            })
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    use names::*;
    describe_counter!(
        REQUESTS,
        "HTTP requests by method, route template and status code"
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "HTTP request handling time"
    );
    describe_gauge!(IN_FLIGHT, "HTTP requests being handled");
    describe_counter!(
        ERRORS,
        "HTTP error responses by error code and route template"
    );
    describe_gauge!(SERVICE_INFO, "Always 1; labels carry the versions");
    describe_gauge!(PROJECTS, "Projects in the catalog");
    describe_gauge!(BUCKETS, "Buckets in the catalog (links included)");
    describe_gauge!(TABLES, "Tables in the catalog");
    describe_gauge!(
        STORAGE_SIZE,
        Unit::Bytes,
        "Bytes stored: metadata, tables, files"
    );
    describe_gauge!(
        IDEMPOTENCY_CACHE,
        "Stored idempotent responses not yet expired"
    );
    describe_gauge!(
        TABLE_LOCKS,
        "Table, bucket and project locks held or waited for"
    );
    describe_counter!(
        METADATA_QUERIES,
        "Catalog statements by operation (read, write)"
    );
    describe_gauge!(METADATA_CONNECTIONS, "Catalog connections in use");
    describe_histogram!(
        METADATA_QUERY_DURATION,
        Unit::Seconds,
        "Catalog statement time"
    );
    describe_counter!(
        REQUEST_BYTES,
        Unit::Bytes,
        "Request body bytes by route family"
    );
    describe_counter!(
        RESPONSE_BYTES,
        Unit::Bytes,
        "Response body bytes by route family"
    );
    describe_counter!(ROWS, "Rows imported into or exported from tables");
    describe_histogram!(BULK_DURATION, Unit::Seconds, "Import and export time");
    describe_gauge!(
        QUEUE_WAITING,
        "Work waiting for a bulk thread or a job worker"
    );
    describe_histogram!(
        QUEUE_WAIT,
        Unit::Seconds,
        "Time waited for a bulk thread or job worker"
    );
    describe_gauge!(TABLES_ATTACHED, "Table files attached to DuckDB");
    describe_counter!(KEY_VERIFICATIONS, "argon2 key verifications by outcome");
    describe_gauge!(
        DISK_FREE,
        Unit::Bytes,
        "Free bytes on the data dir's filesystem"
    );
    describe_counter!(
        BLOB_OPERATIONS,
        "Blob store operations by backend, operation, outcome"
    );
    describe_gauge!(
        UPLOAD_SESSIONS,
        "Resumable upload sessions not completed or expired"
    );
    describe_counter!(THROTTLED, "Requests refused with 429, by reason");
}

/// `duckdb_idempotency_cache_size`: stored idempotent responses still replayable.
pub fn set_idempotency_entries(n: u64) {
    gauge!(names::IDEMPOTENCY_CACHE).set(n as f64);
}

/// A request refused with 429: `rate_limit` (per key), `auth_queue`, `auth_failures`,
/// `job_queue`.
pub fn throttled(reason: &'static str) {
    counter!(names::THROTTLED, "reason" => reason).increment(1);
}

/// One argon2 verification: `accepted` or `rejected`.
pub fn key_verified(accepted: bool) {
    let outcome = if accepted { "accepted" } else { "rejected" };
    counter!(names::KEY_VERIFICATIONS, "outcome" => outcome).increment(1);
}

/// A finished import or export (`direction`: `import` | `export`) of `rows` rows.
pub fn table_transfer(direction: &'static str, rows: u64, took: Duration) {
    counter!(names::ROWS, "direction" => direction).increment(rows);
    histogram!(names::BULK_DURATION, "direction" => direction).record(took.as_secs_f64());
}

/// A blob store call on `backend` (`local` | `database` | `s3`).
pub fn blob_op(backend: &'static str, operation: &'static str, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    counter!(names::BLOB_OPERATIONS,
        "backend" => backend, "operation" => operation, "outcome" => outcome)
    .increment(1);
}

/// One catalog statement (`operation`: `read` | `write`).
pub fn metadata_query(operation: &'static str, took: Duration) {
    counter!(names::METADATA_QUERIES, "operation" => operation).increment(1);
    histogram!(names::METADATA_QUERY_DURATION, "operation" => operation).record(took.as_secs_f64());
}

/// Counts one piece of work waiting in `queue` (`bulk` | `jobs`) while alive; on `admitted`,
/// records how long it waited.
pub struct QueueWait {
    queue: &'static str,
    since: std::time::Instant,
}

impl QueueWait {
    pub fn start(queue: &'static str) -> Self {
        gauge!(names::QUEUE_WAITING, "queue" => queue).increment(1.0);
        Self {
            queue,
            since: std::time::Instant::now(),
        }
    }

    /// The work got its thread: records the wait (dropping without admission records none).
    pub fn admitted(self) {
        histogram!(names::QUEUE_WAIT, "queue" => self.queue)
            .record(self.since.elapsed().as_secs_f64());
    }
}

impl Drop for QueueWait {
    fn drop(&mut self) {
        gauge!(names::QUEUE_WAITING, "queue" => self.queue).decrement(1.0);
    }
}

/// A `'static` copy of a route template, for labels. Templates are a fixed set (the router's
/// routes), so the set of leaked strings is bounded.
pub fn intern(template: &str) -> &'static str {
    use std::collections::HashSet;
    static TEMPLATES: OnceLock<parking_lot::RwLock<HashSet<&'static str>>> = OnceLock::new();
    let set = TEMPLATES.get_or_init(Default::default);
    if let Some(found) = set.read().get(template) {
        return found;
    }
    let mut set = set.write();
    if let Some(found) = set.get(template) {
        return found;
    }
    let leaked: &'static str = Box::leak(template.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// One catalog statement or transaction in progress: counts the connection as active and,
/// when dropped, records the statement and its time.
pub struct MetadataUse {
    operation: &'static str,
    since: std::time::Instant,
}

impl MetadataUse {
    pub fn start(operation: &'static str) -> Self {
        gauge!(names::METADATA_CONNECTIONS).increment(1.0);
        Self {
            operation,
            since: std::time::Instant::now(),
        }
    }
}

impl Drop for MetadataUse {
    fn drop(&mut self) {
        gauge!(names::METADATA_CONNECTIONS).decrement(1.0);
        metadata_query(self.operation, self.since.elapsed());
    }
}
