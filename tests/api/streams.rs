//! Clients that read slowly or not at all: a stalled streamed export holds up no writer of its
//! table and loses its stream when the share behind it ends; previews are bounded by bytes.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use crate::helpers::*;
use crate::table_data::{import, kv_csv, seed, setup_configured, upload, T};

/// Rows of ~520 bytes each: the CSV export of the table is ~52 MB.
const ROWS: u64 = 100_000;
const FILL: &str =
    "INSERT INTO data SELECT i, repeat(md5(i::VARCHAR), 16) FROM range(1, 100001) t(i)";

/// Project 1, bucket b, table t (id, v) holding `ROWS` rows of ~0.5 KB.
async fn big_table() -> (TestApp, String) {
    let app = spawn_app().await;
    let key = app
        .project_with_table(&[("id", "BIGINT"), ("v", "VARCHAR")], &["id"])
        .await;
    (app.fill_table(FILL).await, key)
}

/// A client that asks for `path` and then stops reading once it has the response headers:
/// a small receive buffer, so the server soon has nowhere to put the body.
struct StalledReader {
    stream: tokio::net::TcpStream,
    /// What arrived so far (headers and the start of the body).
    received: Vec<u8>,
}

impl StalledReader {
    async fn start(app: &TestApp, path: &str, key: &str) -> Self {
        let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let mut stream = socket.connect(addr).await.expect("connect");
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        );
        tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes())
            .await
            .expect("send request");
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf))
                .await
                .expect("response headers within a minute")
                .expect("read");
            assert!(n > 0, "connection closed before the headers");
            received.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&received);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        Self { stream, received }
    }

    /// Reads on until the server closes; the decoded body and whether it ended with the
    /// final chunk (a complete response) rather than a cut connection.
    async fn read_rest(mut self) -> (Vec<u8>, bool) {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(120), self.stream.read(&mut buf))
                .await
                .expect("the server ends the response within two minutes");
            match read {
                Ok(0) | Err(_) => break,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
            }
        }
        let split = self
            .received
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header block")
            + 4;
        dechunk_strict(&self.received[split..])
    }
}

/// The payload of a chunked body, and whether it ended with the terminating zero chunk.
fn dechunk_strict(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let text = String::from_utf8_lossy(&data[..eol]).to_string();
        let Ok(size) = usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16)
        else {
            return (out, false);
        };
        if size == 0 {
            return (out, true);
        }
        let start = eol + 2;
        if data.len() < start + size + 2 {
            out.extend_from_slice(&data[start..data.len().min(start + size)]);
            return (out, false);
        }
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_an_export_does_not_hold_up_an_import() {
    let (app, key) = big_table().await;
    let stalled = StalledReader::start(&app, &format!("{T}/t/export?format=csv"), &key).await;

    // A full load needs the table exclusively: it must not wait for the stalled reader.
    let file = upload(&app, &key, "new.csv", kv_csv(1..=10, "new").as_bytes()).await;
    let started = std::time::Instant::now();
    let reload = tokio::time::timeout(
        Duration::from_secs(60),
        import(
            &app,
            &key,
            "t",
            json!({ "file_id": file, "import_options": { "incremental": false } }),
        ),
    )
    .await
    .expect("the import waited for a client that does not read");
    assert_eq!(reload.expect(200)["table_rows_after"], 10);
    eprintln!(
        "import beside a stalled export of a {ROWS}-row table: {:?}",
        started.elapsed()
    );

    // The stalled client, reading again, gets the whole table as it was when it asked.
    let (body, complete) = stalled.read_rest().await;
    assert!(complete, "the export was cut short");
    let text = String::from_utf8(body).expect("CSV text");
    assert_eq!(
        text.lines().count() as u64,
        ROWS + 1,
        "header plus every old row"
    );
    assert!(!text.contains("new"), "no row of the later import");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsharing_ends_a_linked_projects_export_stream() {
    let (app, key1) = big_table().await;
    let key2 = app.create_project("2").await;
    app.share_bucket("1", &key1, "b", "2").await.expect(200);
    app.link_bucket("2", &key2, "lnk", ("1", "b"))
        .await
        .expect(201);
    let path = "/projects/2/buckets/lnk/tables/t/export?format=csv";
    let stalled = StalledReader::start(&app, path, &key2).await;

    app.delete("/projects/1/buckets/b/share?target_project_id=2", &key1)
        .await
        .expect(204);

    let (body, complete) = stalled.read_rest().await;
    assert!(!complete, "the stream went on to its end after the unshare");
    let full = ROWS * 500;
    assert!(
        (body.len() as u64) < full,
        "{} bytes reached project 2 after the unshare",
        body.len()
    );
    // Nothing is left of the snapshot once the stream has ended.
    let work = app.data_dir.join("files/work");
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in files/work: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_stops_at_max_preview_bytes_and_says_so() {
    let (app, key) = setup_configured(|c| c.max_preview_bytes = 10_000).await;
    app.create_table_t(&key, &[("id", "BIGINT"), ("v", "VARCHAR")], &["id"])
        .await;
    let x = "x".repeat(1000);
    let csv: String = std::iter::once("id,v\n".to_string())
        .chain((1..=100).map(|i| format!("{i},{x}\n")))
        .collect();
    seed(&app, &key, "t", &csv).await;

    let small = app
        .get(&format!("{T}/t/preview?limit=5"), &key)
        .await
        .expect(200);
    assert_eq!(small["truncated"], false);
    assert_eq!(small["preview_row_count"], 5);

    let big = app
        .get(&format!("{T}/t/preview?limit=100"), &key)
        .await
        .expect(200);
    assert_eq!(big["truncated"], true, "{}", big["preview_row_count"]);
    let rows = big["rows"].as_array().expect("rows");
    // Each row is ~1 KB of JSON: nine fit in 10 000 bytes, ten do not.
    assert_eq!(rows.len(), 9);
    assert_eq!(big["preview_row_count"], 9);
    assert_eq!(big["total_row_count"], 100);
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, (1..=9).collect::<Vec<_>>(), "the first rows, in order");

    // Ordered and filtered previews keep their order within the budget.
    let ordered = app
        .get(
            &format!("{T}/t/preview?limit=100&order_by=id%20DESC&where_filter=id%20%3C%2050"),
            &key,
        )
        .await
        .expect(200);
    let ids: Vec<i64> = ordered["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (41..=49).rev().collect::<Vec<_>>());
    assert_eq!(ordered["truncated"], true);
}

/// `VmRSS` or `VmHWM` of a process, in bytes.
fn memory_of(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("memory field")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_of_huge_rows_keeps_server_memory_bounded() {
    let server = ServerProcess::start(&[("ADMIN_API_KEY", ADMIN_KEY)]).await;
    let key = server
        .post("/projects", ADMIN_KEY, json!({ "id": "1", "name": "p" }))
        .await
        .expect(201)["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .post("/projects/1/buckets", &key, json!({ "name": "b" }))
        .await
        .expect(201);
    let columns = json!([{ "name": "id", "type": "BIGINT" }, { "name": "v", "type": "VARCHAR" }]);
    server
        .post(
            T,
            &key,
            json!({ "name": "t", "columns": columns, "primary_key": ["id"] }),
        )
        .await
        .expect(201);
    // 500 rows of 1 MB text each, written straight into the table file while it is stopped.
    let mut server = server;
    server.stop();
    {
        let path = server.dir().join("data/duckdb/project_1/b/t.duckdb");
        let conn = duckdb::Connection::open(path).expect("table file");
        conn.execute_batch(
            "INSERT INTO data SELECT i, repeat(md5(i::VARCHAR), 32768) FROM range(500) t(i)",
        )
        .expect("fill");
    }
    let server = server.restart().await;
    let pid = server.child.id();
    server.get(&format!("{T}/t"), &key).await.expect(200);
    let before = memory_of(pid, "VmRSS:");

    let res = server
        .client
        .get(server.url(&format!("{T}/t/preview?limit=10000")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("preview");
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.expect("preview JSON");
    let peak = memory_of(pid, "VmHWM:");
    let grown = peak.saturating_sub(before);
    eprintln!(
        "preview of 500 rows x 1 MiB: {} rows sent, server RSS {} MiB before, peak {} MiB (+{} MiB)",
        body["preview_row_count"],
        before >> 20,
        peak >> 20,
        grown >> 20
    );
    assert_eq!(body["truncated"], true);
    assert_eq!(body["total_row_count"], 500);
    assert!(
        grown < 200 << 20,
        "the server grew by {} MiB for one preview",
        grown >> 20
    );
}
