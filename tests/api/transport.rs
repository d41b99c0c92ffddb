//! Slow, stalled and idle clients: header and keep-alive timeouts, a stalled body's 408, the
//! connection cap, and that stalled transfers leave the server answering; plus uploads without
//! Content-Length stopped by the project quota and the free-space reserve while they stream.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Bound on waiting for the server to act; far above every timeout the tests configure, so
/// reaching it means the server never acted.
const PATIENCE: Duration = Duration::from_secs(20);

fn host(app_base: &str) -> String {
    app_base.trim_start_matches("http://").to_string()
}

/// Reads until the server closes the connection; everything it sent. Fails the test if the
/// server keeps the connection open past `PATIENCE`.
async fn read_until_closed(stream: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept {what} open");
    out
}

/// The status and JSON body of a raw HTTP answer.
fn parse_answer(raw: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn tmp_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(app.data_dir.join("files/tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_connection_that_does_not_send_its_headers_is_closed() {
    let app = spawn_app_configured(|c| c.header_read_timeout_secs = 1).await;
    // Nothing at all, and a request line whose headers never end.
    let mut silent = TcpStream::connect(host(&app.base)).await.unwrap();
    let mut partial = TcpStream::connect(host(&app.base)).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        read_until_closed(&mut silent, "a silent connection"),
        read_until_closed(&mut partial, "a connection with half its headers"),
    );
    // Closed, or answered with an error and closed: never served.
    for answer in [a, b] {
        assert!(
            answer.is_empty() || parse_answer(&answer).0 >= 400,
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    // The server itself is fine.
    app.get_without_key("/healthz").await.expect(200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_configured(|c| c.idle_connection_timeout_secs = 1).await;
    let mut conn = TcpStream::connect(host(&app.base)).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // One answer on a connection that stays open for more; then silence until it is closed.
    let answer = read_until_closed(&mut conn, "an idle keep-alive connection").await;
    assert_eq!(parse_answer(&answer).0, 200);
}

#[tokio::test]
async fn a_stalled_upload_body_gets_408_and_leaves_no_temp_file() {
    let app = spawn_app_configured(|c| c.body_idle_timeout_secs = 1).await;
    let key = app.create_project("1").await;
    let auth = format!("Bearer {key}");
    let cases: [(&str, &str, &str, &[u8]); 3] = [
        (
            "POST",
            "/projects/1/files/content?name=a.bin",
            "Content-Length: 1000",
            b"ab",
        ),
        (
            "POST",
            "/projects/1/files/content?name=b.bin",
            "Transfer-Encoding: chunked",
            b"2\r\nab\r\n",
        ),
        (
            "POST",
            "/files?name=c.bin",
            "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 5000",
            b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.bin\"\r\n\r\nab",
        ),
    ];
    for (method, path, header, sent) in cases {
        let mut conn = TcpStream::connect(host(&app.base)).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nX-Project-Id: 1\r\n{header}\r\n\r\n"
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(sent).await.unwrap();
        let answer = read_until_closed(&mut conn, "a stalled upload").await;
        let (status, body) = parse_answer(&answer);
        assert_eq!(status, 408, "{path}: {body}");
        assert_eq!(body["error"], "request_timeout", "{body}");
        assert!(tmp_files(&app).is_empty(), "{path}: {:?}", tmp_files(&app));
    }
    let files = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(files["total"], 0, "{files}");
}

/// Opens `n` connections that each send the headers of a 10 MB upload and 2 bytes of it.
async fn stalled_uploads(base: &str, key: &str, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut conn = TcpStream::connect(host(base)).await.unwrap();
        let head = format!(
            "POST /projects/1/files/content?name=s{i}.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 10000000\r\n\r\nab"
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        out.push(conn);
    }
    out
}

/// Opens `n` downloads of `file` whose client never reads (a tiny receive buffer, so the
/// server's writes block almost at once).
async fn unread_downloads(base: &str, key: &str, file: &str, n: usize) -> Vec<TcpStream> {
    let addr: std::net::SocketAddr = host(base).parse().unwrap();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut conn = socket.connect(addr).await.unwrap();
        let head = format!(
            "GET /projects/1/files/{file}/download HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n"
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        out.push(conn);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_and_unread_downloads_leave_previews_answering() {
    let app = spawn_app().await;
    let key = app
        .project_with_table(&[("id", "BIGINT"), ("name", "VARCHAR")], &["id"])
        .await;
    // Larger than every buffer between the server and a client that does not read.
    let big = app
        .send_raw(
            reqwest::Method::POST,
            "/projects/1/files/content?name=big.bin",
            &key,
            &[],
            bytes_of(8 << 20, 31),
        )
        .await
        .expect(201);
    let file = big["id"].as_str().unwrap().to_string();
    let uploads = stalled_uploads(&app.base, &key, 600).await;
    let downloads = unread_downloads(&app.base, &key, &file, 600).await;
    // Every stalled transfer has reached its handler once a request sent after them is answered.
    app.get_without_key("/healthz").await.expect(200);
    let started = Instant::now();
    let preview = tokio::time::timeout(
        PATIENCE,
        app.get("/projects/1/buckets/b/tables/t/preview", &key),
    )
    .await
    .expect("a preview beside 600 stalled uploads and 600 unread downloads never answered");
    preview.expect(200);
    let took = started.elapsed();
    // Also a catalog call and a file written to disk.
    let created = tokio::time::timeout(
        PATIENCE,
        app.send_raw(
            reqwest::Method::POST,
            "/projects/1/files/content?name=small.bin",
            &key,
            &[],
            b"small".to_vec(),
        ),
    )
    .await
    .expect("an upload beside the stalled transfers never answered");
    created.expect(201);
    println!("preview beside 600 stalled uploads + 600 unread downloads: {took:?}");
    drop((uploads, downloads));
}

/// Raises this process's open-file limit to its hard limit; the soft limit it now has.
fn raise_fd_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_sockets_do_not_exhaust_the_servers_descriptors() {
    // The server runs as its own process with 1024 descriptors, fewer than the idle sockets:
    // without a cap and timeouts it would run out of them for good.
    let server = ServerProcess::start(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("MIN_FREE_BYTES", "0"),
        ("DUCKDB_THREADS", "2"),
        ("DUCKDB_MEMORY_LIMIT", "1GB"),
        ("MAX_CONNECTIONS", "512"),
        ("HEADER_READ_TIMEOUT_SECS", "1"),
        ("RUST_LOG", "error"),
    ])
    .await;
    let pid = rustix::process::Pid::from_child(&server.child);
    let server_limit = rustix::process::Rlimit {
        current: Some(1024),
        maximum: Some(1024),
    };
    rustix::process::prlimit(Some(pid), rustix::process::Resource::Nofile, server_limit)
        .expect("lower the server's open-file limit");
    // 5 000 sockets, fewer when this process may not open that many (said in the output).
    let own_limit = raise_fd_limit();
    let idle = 5000.min(own_limit.saturating_sub(1500) as usize);
    if idle < 5000 {
        println!("open-file limit {own_limit}: opening {idle} idle sockets instead of 5000");
    }
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..idle {
        let addr = addr.clone();
        opening.spawn(async move {
            // Beyond the backlog a connect waits; a client that gives up is fine too.
            tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
                .await
                .ok()
                .and_then(Result::ok)
        });
    }
    let mut sockets = Vec::with_capacity(idle);
    while let Some(done) = opening.join_next().await {
        sockets.extend(done.ok().flatten());
    }
    println!("{} of {idle} idle sockets connected", sockets.len());
    // MAX_CONNECTIONS sockets at most, plus the server's own files (catalog, tables, log).
    let fds_in_storm = std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        fds_in_storm <= 512 + 100,
        "the server holds {fds_in_storm} descriptors"
    );
    let patient = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap();
    let started = Instant::now();
    let created = patient
        .post(server.url("/projects"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"id": "1", "name": "one"}))
        .send()
        .await
        .expect("the server never answered beside the idle sockets");
    assert_eq!(created.status().as_u16(), 201);
    let key = created.json::<Value>().await.unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    // A new file on disk needs descriptors of its own.
    let upload = patient
        .post(server.url("/projects/1/files/content?name=a.bin"))
        .bearer_auth(&key)
        .body(b"abc".to_vec())
        .send()
        .await
        .expect("upload beside the idle sockets");
    assert_eq!(upload.status().as_u16(), 201);
    println!(
        "first answer beside {} idle sockets after {:?}; the server held {fds_in_storm} descriptors",
        sockets.len(),
        started.elapsed()
    );
    drop(sockets);
}

/// Sends `total` bytes as a chunked body in 64 KiB chunks, stopping when the server stops
/// taking them; the answer and how many bytes were written before it came.
async fn chunked_upload(base: &str, path: &str, key: &str, total: usize) -> (u16, Value, usize) {
    let conn = TcpStream::connect(host(base)).await.unwrap();
    let (mut rx, mut tx) = conn.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    tx.write_all(head.as_bytes()).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, rx.read_to_end(&mut out)).await;
        out
    });
    let data = bytes_of(total, 41);
    let mut written = 0;
    for chunk in data.chunks(64 * 1024) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if reader.is_finished() || tx.write_all(&framed).await.is_err() {
            break;
        }
        written += chunk.len();
    }
    let _ = tx.write_all(b"0\r\n\r\n").await;
    let answer = reader.await.unwrap();
    let (status, body) = parse_answer(&answer);
    (status, body, written)
}

#[tokio::test]
async fn an_upload_without_content_length_stops_at_the_project_quota_with_507() {
    let app = spawn_app_configured(|c| c.project_quota_bytes = 1 << 20).await;
    let key = app.create_project("1").await;
    let (status, body, written) = chunked_upload(
        &app.base,
        "/projects/1/files/content?name=big.bin",
        &key,
        64 << 20,
    )
    .await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"], "quota_exceeded", "{body}");
    // Refused while streaming, not after taking all 64 MiB (socket buffers hold a few MiB).
    assert!(written < 32 << 20, "{written} bytes taken before the 507");
    assert!(tmp_files(&app).is_empty(), "{:?}", tmp_files(&app));
    let files = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(files["total"], 0, "{files}");
    // What fits still fits, and then the full project refuses the first byte of more.
    app.send_raw(
        reqwest::Method::POST,
        "/projects/1/files/content?name=fits.bin",
        &key,
        &[],
        bytes_of(1 << 20, 42),
    )
    .await
    .expect(201);
    let (status, body, _) = chunked_upload(
        &app.base,
        "/projects/1/files/content?name=more.bin",
        &key,
        1,
    )
    .await;
    assert_eq!(status, 507, "{body}");
}

#[tokio::test]
async fn an_upload_without_content_length_stops_at_the_free_space_reserve_with_507() {
    let fs = match crate::disk_full::Tmpfs::mount(64) {
        Ok(fs) => fs,
        Err(why) => {
            skip_outside_ci(&format!(
                "cannot mount a tmpfs for the free-space test ({why})"
            ));
            return;
        }
    };
    let mut config = test_config(&fs.dir.path().join("data"));
    config.min_free_bytes = 40 << 20;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    let (status, body, written) = chunked_upload(
        &app.base,
        "/projects/1/files/content?name=big.bin",
        &key,
        128 << 20,
    )
    .await;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"], "insufficient_storage", "{body}");
    // Stopped at the reserve (about 20 MiB in), not when the 64 MiB volume was full.
    assert!(written < 48 << 20, "{written} bytes taken before the 507");
    assert!(tmp_files(&app).is_empty(), "{:?}", tmp_files(&app));
    app.get("/projects/1/files", &key).await.expect(200);
}
