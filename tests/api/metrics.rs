//! `/metrics` and span export, against the server binary in its own process (the metrics
//! recorder is process-wide, so in-process servers of other tests would add to its counts).

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::*;

async fn start(extra: &[(&str, &str)]) -> ServerProcess {
    let mut env = vec![
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("MIN_FREE_BYTES", "0"),
        ("DUCKDB_THREADS", "2"),
        ("DUCKDB_MEMORY_LIMIT", "1GB"),
        ("RUST_LOG", "warn"),
    ];
    env.extend_from_slice(extra);
    ServerProcess::start(&env).await
}

/// A scrape, with `token` as the bearer token if given.
async fn scrape_response(server: &ServerProcess, token: Option<&str>) -> reqwest::Response {
    let mut req = server.client.get(server.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("scrape")
}

/// The scrape text, asserting 200.
async fn scrape(server: &ServerProcess, token: Option<&str>) -> String {
    let res = scrape_response(server, token).await;
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    res.text().await.unwrap()
}

/// The value of the sample `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn count(text: &str, endpoint: &str, status: &str) -> f64 {
    sample(
        text,
        "duckdb_api_requests_total",
        &[
            ("method", "GET"),
            ("endpoint", endpoint),
            ("status_code", status),
        ],
    )
    .unwrap_or(0.0)
}

/// Creates project `id`; returns its key.
async fn project(server: &ServerProcess, id: &str) -> String {
    let created = server
        .post("/projects", ADMIN_KEY, json!({ "id": id }))
        .await
        .expect(201);
    created["api_key"].as_str().unwrap().to_string()
}

/// A server started with `extra` settings that has served the same few requests: project
/// `metrics77` and its bucket `orders_bucket` created, the bucket list read with the key (200)
/// and without (401), and an unknown path (404). Returns the server and the project key.
async fn server_with_traffic(extra: &[(&str, &str)]) -> (ServerProcess, String) {
    let server = start(extra).await;
    let key = project(&server, "metrics77").await;
    server
        .post(
            "/projects/metrics77/buckets",
            &key,
            json!({"name": "orders_bucket"}),
        )
        .await
        .expect(201);
    server
        .get("/projects/metrics77/buckets", &key)
        .await
        .expect(200);
    server
        .get_without_key("/projects/metrics77/buckets")
        .await
        .expect_error(401);
    server
        .get("/no/such/route/metrics77", &key)
        .await
        .expect_error(404);
    (server, key)
}

#[tokio::test]
async fn the_reference_metric_names_appear_with_their_labels_after_a_few_requests() {
    let (server, _) = server_with_traffic(&[]).await;
    let text = scrape(&server, None).await;
    let buckets = "/projects/{project_id}/buckets";
    assert_eq!(count(&text, buckets, "200"), 1.0, "{text}");
    assert_eq!(count(&text, buckets, "401"), 1.0);
    assert_eq!(count(&text, "unmatched", "404"), 1.0);
    let errors = "duckdb_api_errors_total";
    assert_eq!(
        sample(
            &text,
            errors,
            &[("type", "unauthorized"), ("endpoint", buckets)]
        ),
        Some(1.0)
    );
    for name in [
        "duckdb_api_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/projects/{project_id}/buckets\"",
        "duckdb_api_requests_in_flight{method=\"GET\"}",
        "duckdb_api_service_info{version=",
        "duckdb_storage_size_bytes{type=\"metadata\"}",
        "duckdb_storage_size_bytes{type=\"tables\"}",
        "duckdb_storage_size_bytes{type=\"files\"}",
        "duckdb_idempotency_cache_size ",
        "duckdb_table_locks_active ",
        "duckdb_metadata_queries_total{operation=\"read\"}",
        "duckdb_metadata_queries_total{operation=\"write\"}",
        "duckdb_metadata_connections_active ",
        "duckdb_metadata_query_duration_seconds_bucket{operation=\"write\"",
        "duckbank_request_bytes_total{family=\"buckets\"}",
        "duckbank_response_bytes_total{family=\"buckets\"}",
        "duckbank_tables_attached ",
        "duckbank_disk_free_bytes ",
        "duckbank_upload_sessions_open ",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert_eq!(sample(&text, "duckdb_projects_total", &[]), Some(1.0));
    assert_eq!(sample(&text, "duckdb_buckets_total", &[]), Some(1.0));
    assert_eq!(sample(&text, "duckdb_tables_total", &[]), Some(0.0));
}

#[tokio::test]
async fn the_endpoint_label_holds_route_templates_never_ids_or_raw_paths() {
    let (server, _) = server_with_traffic(&[]).await;
    let text = scrape(&server, None).await;
    for line in text.lines().filter(|l| l.contains("endpoint=\"")) {
        assert!(
            !line.contains("metrics77") && !line.contains("orders_bucket"),
            "a raw id in a label: {line}"
        );
    }
    assert!(
        !text.contains("endpoint=\"/metrics\""),
        "the scrape counts itself"
    );
}

#[tokio::test]
async fn counts_move_with_requests_and_the_scrape_is_not_counted() {
    let (server, key) = server_with_traffic(&[]).await;
    let buckets = "/projects/{project_id}/buckets";
    let before = scrape(&server, None).await;
    for _ in 0..3 {
        server
            .get("/projects/metrics77/buckets", &key)
            .await
            .expect(200);
    }
    scrape(&server, None).await;
    let after = scrape(&server, None).await;
    assert_eq!(
        count(&after, buckets, "200") - count(&before, buckets, "200"),
        3.0
    );
    let bytes = |t: &str| {
        sample(t, "duckbank_response_bytes_total", &[("family", "buckets")]).unwrap_or(0.0)
    };
    assert!(bytes(&after) > bytes(&before));
}

#[tokio::test]
async fn with_a_metrics_token_the_scrape_needs_it_as_a_bearer_token() {
    let server = start(&[("METRICS_TOKEN", "scrape-secret")]).await;
    // None, a wrong one, and the admin key, which is no substitute.
    for token in [None, Some("scrape-secreT"), Some(ADMIN_KEY)] {
        let res = scrape_response(&server, token).await;
        assert_eq!(res.status(), 401, "token {token:?}");
    }
    let text = scrape(&server, Some("scrape-secret")).await;
    assert!(text.contains("duckdb_api_service_info"));
}

#[tokio::test]
async fn disabled_metrics_answer_404() {
    let (server, _) = server_with_traffic(&[("METRICS_ENABLED", "false")]).await;
    assert_eq!(scrape_response(&server, None).await.status(), 404);
}

/// Accepts HTTP/1.1 POSTs and sends each (path, body) on; answers 200 to all.
async fn otlp_collector() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    let _ = tx.send((path, body));
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if conn.write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (base, rx)
}

#[tokio::test]
async fn spans_are_posted_over_otlp_http_under_the_callers_traceparent() {
    let (collector, mut received) = otlp_collector().await;
    let server = start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ])
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = server
        .client
        .get(server.url("/health"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let wanted = hex::decode(trace_id).unwrap();
    let found = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some((path, body)) = received.recv().await {
            assert_eq!(path, "/v1/traces");
            assert!(!body.is_empty());
            if body.windows(wanted.len()).any(|w| w == wanted.as_slice()) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "no exported span carried the caller's trace id; server log:\n{}",
        server.logs()
    );
}

#[tokio::test]
async fn duckbanks_own_figures_count_verifications_blob_writes_and_refusals() {
    let server = start(&[("RATE_LIMIT_PER_MINUTE", "2"), ("RATE_LIMIT_BURST", "2")]).await;
    let key = project(&server, "metrics78").await;
    server
        .send_raw(
            reqwest::Method::POST,
            "/projects/metrics78/files/content?name=x.txt",
            &key,
            &[],
            b"hello metrics".to_vec(),
        )
        .await
        .expect(201);
    // The burst of 2 is spent: the next ones are refused.
    for _ in 0..3 {
        let _ = server.get("/projects/metrics78/files", &key).await;
    }
    let text = scrape(&server, None).await;
    let verified = [("outcome", "accepted")];
    assert!(sample(&text, "duckbank_key_verifications_total", &verified).unwrap_or(0.0) >= 1.0);
    let put = [
        ("backend", "local"),
        ("operation", "put"),
        ("outcome", "ok"),
    ];
    assert_eq!(
        sample(&text, "duckbank_blob_operations_total", &put),
        Some(1.0),
        "{text}"
    );
    let limited = [("reason", "rate_limit")];
    assert!(sample(&text, "duckbank_throttled_total", &limited).unwrap_or(0.0) >= 1.0);
    let errors = [
        ("type", "rate_limited"),
        ("endpoint", "/projects/{project_id}/files"),
    ];
    assert!(sample(&text, "duckdb_api_errors_total", &errors).unwrap_or(0.0) >= 1.0);
    assert!(text.contains("duckbank_request_bytes_total{family=\"files\"}"));
}
