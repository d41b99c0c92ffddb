//! OTLP/HTTP export of spans when OTEL_EXPORTER_OTLP_ENDPOINT is set, and the W3C `traceparent`
//! of an incoming request as its span's parent. Unset: no exporter, no propagation, no cost.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::registry::LookupSpan;

/// Set once an exporter runs: only then is `traceparent` read.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The running exporter; `shutdown` sends the spans still buffered.
pub struct SpanExport {
    provider: SdkTracerProvider,
}

impl SpanExport {
    /// Blocking: flushes what is buffered and stops the export thread.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("duckbank: span export shutdown: {e}");
        }
    }
}

/// The URL spans are posted to: the base URL with `/v1/traces`, as the OTLP spec defines for
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub fn traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

/// A tracing layer turning spans into OTLP spans posted (protobuf over HTTP, batched on the
/// SDK's own thread) to `endpoint`.
pub fn layer<S>(endpoint: &str) -> Result<(OpenTelemetryLayer<S, SdkTracer>, SpanExport), String>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .build()
        .map_err(|e| e.to_string())?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("duckbank").build())
        .build();
    let tracer = provider.tracer("duckbank");
    EXPORTING.store(true, Ordering::Relaxed);
    Ok((
        tracing_opentelemetry::layer().with_tracer(tracer),
        SpanExport { provider },
    ))
}

/// Makes the request's `traceparent` (if any, and if spans are exported) the parent of `span`.
pub fn set_parent_from(span: &tracing::Span, headers: &HeaderMap) {
    if !EXPORTING.load(Ordering::Relaxed) || !headers.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(cx);
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
