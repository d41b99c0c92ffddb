//! Test harness shared by the integration tests and the benchmark: the server in-process or as
//! its own binary, typed and hand-made HTTP requests, percent-encoding. Holds no test logic.

use std::path::{Path, PathBuf};

use duckbank::config::{Config, Secret};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    /// Keeps the temp dir alive for the app's lifetime (None when the caller owns it).
    _dir: Option<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

/// A response with its status and parsed JSON body (Null when empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts the reference error body shape and returns the body.
    #[track_caller]
    pub fn expect_error(self, status: u16) -> Value {
        let body = self.expect(status);
        assert!(body["error"].is_string(), "error code missing: {body}");
        assert!(body["message"].is_string(), "message missing: {body}");
        assert!(body.get("details").is_some(), "details missing: {body}");
        assert_eq!(
            body["detail"]["error"], body["error"],
            "detail.error: {body}"
        );
        assert_eq!(
            body["detail"]["message"], body["message"],
            "detail.message: {body}"
        );
        body
    }

    /// Asserts status, the top-level `error` code and the reference's `detail.error` together.
    #[track_caller]
    pub fn expect_code(self, status: u16, code: &str) -> Value {
        let body = self.expect_error(status);
        assert_eq!(body["error"], code, "error code: {body}");
        assert_eq!(body["detail"]["error"], code, "detail.error: {body}");
        body
    }
}

/// Sends a request with an optional bearer key and JSON body; the answer as a `Reply`.
async fn send_json(
    client: &reqwest::Client,
    method: Method,
    url: String,
    key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut req = client.request(method, url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    reply_of(req.send().await.expect("request failed")).await
}

/// Reads a response whole: status, headers, and the body as JSON (`Null` when it is not JSON).
pub async fn reply_of(res: reqwest::Response) -> Reply {
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// The JSON requests every server handle (in-process or its own process) answers the same way.
// Only this test crate implements and calls it, so the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait JsonClient {
    fn http(&self) -> &reqwest::Client;
    fn url(&self, path: &str) -> String;

    /// Sends a request with an optional key and JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        send_json(self.http(), method, self.url(path), key, body).await
    }

    async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, Some(key), None).await
    }

    /// GETs `path` with no key at all.
    async fn get_without_key(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, None).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    async fn put(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(key), Some(body)).await
    }

    async fn delete(&self, path: &str, key: &str) -> Reply {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// Sends raw bytes with the key and extra headers (no JSON encoding).
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let mut req = self
            .http()
            .request(method, self.url(path))
            .bearer_auth(key)
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        reply_of(req.send().await.expect("request failed")).await
    }
}

/// Percent-encodes every byte outside the unreserved set, so any text fits one path segment
/// or query value.
pub fn enc(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn test_config(data_dir: &Path) -> Config {
    Config {
        host: "127.0.0.1".into(),
        port: 0,
        data_dir: data_dir.to_path_buf(),
        admin_api_key: Some(Secret::new(ADMIN_KEY)),
        duckdb_threads: 2,
        duckdb_memory_limit: "1GB".into(),
        min_free_bytes: 0,
        max_body_bytes: 64 * 1024,
        // Off: parallel servers would all want 5433. Wire tests pick a free port.
        pgwire_port: 0,
        ..Config::default()
    }
}

/// Server logs go to the test output when DUCKBANK_TEST_LOG is set (e.g. `=debug`).
fn init_logs() {
    if let Ok(filter) = std::env::var("DUCKBANK_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let mut app = spawn_app_with(test_config(&path)).await;
    app._dir = Some(dir);
    app
}

/// A server with project `1`; the server and the project key.
pub async fn spawn_app_with_project() -> (TestApp, String) {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    (app, key)
}

/// A server with projects `1` and `2`; the server and both project keys.
pub async fn spawn_app_with_two_projects() -> (TestApp, String, String) {
    let (app, key1) = spawn_app_with_project().await;
    let key2 = app.create_project("2").await;
    (app, key1, key2)
}

/// Starts a server on a fresh temp data dir with the test config changed by `change`.
pub async fn spawn_app_configured(change: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    change(&mut config);
    let mut app = spawn_app_with(config).await;
    app._dir = Some(dir);
    app
}

/// Starts a server with the given config (its data dir must outlive the app).
pub async fn spawn_app_with(config: Config) -> TestApp {
    init_logs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let data_dir = config.data_dir.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        duckbank::serve_on(listener, config, async {
            let _ = rx.await;
        })
        .await
        .expect("server failed");
    });
    let app = TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        data_dir,
        _dir: None,
        shutdown: Some(tx),
        handle: Some(handle),
    };
    for _ in 0..200 {
        if let Ok(r) = app.client.get(format!("{}/healthz", app.base)).send().await {
            if r.status().is_success() {
                return app;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("server did not become healthy");
}

impl JsonClient for TestApp {
    fn http(&self) -> &reqwest::Client {
        &self.client
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// Polls `path` without a key until it answers `status` (state refreshed in the background,
/// such as `/health`), for at most 15 s; returns that reply or the last one.
pub async fn wait_for_status(app: &TestApp, path: &str, status: u16) -> Reply {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let reply = app.get_without_key(path).await;
        if reply.status.as_u16() == status || std::time::Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl TestApp {
    /// Creates a project as admin and returns its project key.
    pub async fn create_project(&self, id: &str) -> String {
        let body = self
            .post(
                "/projects",
                ADMIN_KEY,
                json!({ "id": id, "name": format!("Project {id}") }),
            )
            .await
            .expect(201);
        body["api_key"].as_str().expect("api_key").to_string()
    }

    pub async fn create_bucket(&self, project: &str, key: &str, bucket: &str) {
        self.post(
            &format!("/projects/{project}/buckets"),
            key,
            json!({ "name": bucket }),
        )
        .await
        .expect(201);
    }

    /// Shares `bucket` of `project` with project `target`.
    pub async fn share_bucket(
        &self,
        project: &str,
        key: &str,
        bucket: &str,
        target: &str,
    ) -> Reply {
        let path = format!("/projects/{project}/buckets/{bucket}/share");
        self.post(&path, key, json!({ "target_project_id": target }))
            .await
    }

    /// Links bucket `source_bucket` of `source_project` into `project` as bucket `name`.
    pub async fn link_bucket(
        &self,
        project: &str,
        key: &str,
        name: &str,
        (source_project, source_bucket): (&str, &str),
    ) -> Reply {
        let path = format!("/projects/{project}/buckets/{name}/link");
        let source =
            json!({ "source_project_id": source_project, "source_bucket_name": source_bucket });
        self.post(&path, key, source).await
    }

    /// Creates a table with the given (name, type) columns and primary key.
    pub async fn create_table(
        &self,
        project: &str,
        key: &str,
        bucket: &str,
        table: &str,
        columns: &[(&str, &str)],
        primary_key: &[&str],
    ) -> Value {
        let cols: Vec<Value> = columns
            .iter()
            .map(|(n, t)| json!({ "name": n, "type": t }))
            .collect();
        self.post(
            &format!("/projects/{project}/buckets/{bucket}/tables"),
            key,
            json!({ "name": table, "columns": cols, "primary_key": primary_key }),
        )
        .await
        .expect(201)
    }

    /// Creates table `t` in bucket `b` of project `1` (see `create_table`).
    pub async fn create_table_t(
        &self,
        key: &str,
        columns: &[(&str, &str)],
        primary_key: &[&str],
    ) -> Value {
        self.create_table("1", key, "b", "t", columns, primary_key)
            .await
    }

    /// Project `1` with bucket `b` holding table `t` of the given columns and primary key — the
    /// smallest world a table test needs; the project key.
    pub async fn project_with_table(
        &self,
        columns: &[(&str, &str)],
        primary_key: &[&str],
    ) -> String {
        let key = self.create_project("1").await;
        self.create_bucket("1", &key, "b").await;
        self.create_table("1", &key, "b", "t", columns, primary_key)
            .await;
        key
    }

    /// Runs `sql` on the file of table `t` in bucket `b` of project `1` (see `edit_table_file`).
    pub async fn fill_table(self, sql: &str) -> TestApp {
        self.edit_table_file("1", "b", "t", sql).await
    }

    /// Stops the server and waits until it has released every file.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task");
        }
    }

    /// Stops the server, runs `f` on the table file directly, and starts a new server on
    /// the same data dir — the way an operator's tool would touch a table file.
    pub async fn edit_table_file(
        mut self,
        project: &str,
        bucket: &str,
        table: &str,
        sql: &str,
    ) -> TestApp {
        self.stop().await;
        let path = self
            .data_dir
            .join(format!("duckdb/project_{project}/{bucket}/{table}.duckdb"));
        {
            let conn = duckdb::Connection::open(&path).expect("open table file");
            conn.execute_batch(sql).expect("edit table file");
        }
        self.restart().await
    }

    /// Starts a fresh server on the same data dir (after `stop`).
    pub async fn restart(self) -> TestApp {
        self.restart_configured(|_| {}).await
    }

    /// Starts a fresh server on the same data dir with the test config changed by `change`.
    pub async fn restart_configured(mut self, change: impl FnOnce(&mut Config)) -> TestApp {
        self.stop().await;
        let dir = self._dir.take();
        let mut config = test_config(&self.data_dir);
        change(&mut config);
        let mut app = spawn_app_with(config).await;
        app._dir = dir;
        app
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Hand-made HTTP/1.1 over a plain TCP connection: the request line and headers reach the
/// server byte for byte (an HTTP client would normalize `..` and `%2e%2e` segments away), and
/// a test may stop writing in the middle of a body.
pub struct RawHttp {
    stream: tokio::net::TcpStream,
    host: String,
}

impl RawHttp {
    /// Connects to the server at `base` (`http://host:port`).
    pub async fn connect(base: &str) -> Self {
        let host = base.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect");
        Self { stream, host }
    }

    /// Writes the request line and headers; `Host` and `Connection: close` are added.
    pub async fn send_head(&mut self, method: &str, path: &str, headers: &[(&str, String)]) {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.host
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.send_body(head.as_bytes()).await;
    }

    /// Writes (part of) a body.
    pub async fn send_body(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// Reads the whole answer: its status and its body as JSON (Null when not JSON).
    pub async fn response(mut self) -> (u16, Value) {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        self.stream
            .read_to_end(&mut buf)
            .await
            .expect("read response");
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("response has a header block");
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        let mut payload = buf[split + 4..].to_vec();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            payload = dechunk(&payload);
        }
        (
            status,
            serde_json::from_slice(&payload).unwrap_or(Value::Null),
        )
    }

    /// One whole request with an optional bearer key and JSON body.
    pub async fn request(
        base: &str,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        let mut headers = vec![("Content-Length", body.len().to_string())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json".to_string()));
        }
        if let Some(k) = key {
            headers.push(("Authorization", format!("Bearer {k}")));
        }
        let mut raw = Self::connect(base).await;
        raw.send_head(method, path, &headers).await;
        raw.send_body(body).await;
        raw.response().await
    }
}

/// The payload of a `Transfer-Encoding: chunked` body.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

/// Gives up a test whose environment lacks something it needs (a binary, root for a mount):
/// prints why and lets the caller return — except in CI (`CI` set), where the environment must
/// be complete and a silent skip would hide an untested path, so the test fails.
#[track_caller]
pub fn skip_outside_ci(reason: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{reason}: in CI this test must run, not skip"
    );
    eprintln!("skipping: {reason}");
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The server binary running as its own process, the way users start it: a clean environment
/// (PATH plus the given variables), its own dir as working dir with the data in `data/` and
/// stdout and stderr appended to `server.log`, a free port. Killed on drop (also when an
/// assertion fails).
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
    pub client: reqwest::Client,
    dir: PathBuf,
    env: Vec<(String, String)>,
    /// Keeps the temp dir alive for the server's lifetime (None when the caller owns it).
    _tmp: Option<tempfile::TempDir>,
}

impl JsonClient for ServerProcess {
    fn http(&self) -> &reqwest::Client {
        &self.client
    }

    fn url(&self, path: &str) -> String {
        ServerProcess::url(self, path)
    }
}

impl ServerProcess {
    /// Starts the binary in a fresh temp dir.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut server = Self::start_in(tmp.path(), env).await;
        server._tmp = Some(tmp);
        server
    }

    /// Starts the binary in `dir` (created when missing), e.g. on the data a killed one left.
    pub async fn start_in(dir: &Path, env: &[(&str, &str)]) -> Self {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::launch(dir.to_path_buf(), env, None).await
    }

    async fn launch(
        dir: PathBuf,
        env: Vec<(String, String)>,
        tmp: Option<tempfile::TempDir>,
    ) -> Self {
        std::fs::create_dir_all(&dir).expect("server dir");
        let port = free_port();
        let log = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("server.log"))
                .expect("server log")
        };
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_duckbank"))
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", dir.join("data"))
            .env("PGWIRE_PORT", "0")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .stdout(log())
            .stderr(log())
            .spawn()
            .expect("start server binary");
        // Owned at once, so the process is killed on every path out of here.
        let mut server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            dir,
            env,
            _tmp: tmp,
        };
        for _ in 0..400 {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("server binary exited with {status}:\n{}", server.logs());
            }
            if server
                .client
                .get(server.url("/healthz"))
                .send()
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("server binary did not start:\n{}", server.logs());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The server's own dir (working dir, `data/`, `server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything the server wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Kills the process with SIGKILL, like a crash or an OOM kill.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process with SIGTERM, the way an operator stops it, and waits until it has
    /// exited (SIGKILL after ten seconds).
    pub fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..400 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        self.kill();
    }

    /// Sends POST `path` (`{}` body) with `key`, kills the process with SIGKILL while that
    /// request still runs (a `what` that ends within 400 ms fails the test: make its table
    /// bigger), and restarts on the data it left.
    pub async fn kill_during_post(mut self, path: &str, key: &str, what: &str) -> Self {
        let request = self
            .client
            .post(self.url(path))
            .bearer_auth(key)
            .json(&json!({}))
            .send();
        let running = tokio::spawn(request);
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert!(
            !running.is_finished(),
            "the {what} must still run when the server is killed (make the table bigger)"
        );
        self.kill();
        let _ = running.await;
        self.restart().await
    }

    /// Stops the process (when it still runs) and starts a new one on the same dir and
    /// environment, on a new port.
    pub async fn restart(mut self) -> Self {
        self.stop();
        let dir = std::mem::take(&mut self.dir);
        let env = std::mem::take(&mut self.env);
        let tmp = self._tmp.take();
        drop(self);
        Self::launch(dir, env, tmp).await
    }
}

impl ServerProcess {
    /// The kill -9 tests' world: the binary with one DuckDB thread and 1 GB memory (so big
    /// writes take long enough to be killed mid-way), project 1 with bucket b and table t
    /// (`id BIGINT` primary key, `name VARCHAR`); returns it and the project key.
    pub async fn with_killable_table() -> (Self, String) {
        let server = Self::start(&[
            ("ADMIN_API_KEY", ADMIN_KEY),
            ("MIN_FREE_BYTES", "0"),
            ("DUCKDB_THREADS", "1"),
            ("DUCKDB_MEMORY_LIMIT", "1GB"),
            ("RUST_LOG", "warn"),
        ])
        .await;
        let created = server
            .post("/projects", ADMIN_KEY, json!({"id": "1", "name": "One"}))
            .await
            .expect(201);
        let key = created["api_key"]
            .as_str()
            .expect("project key")
            .to_string();
        server
            .post("/projects/1/buckets", &key, json!({"name": "b"}))
            .await
            .expect(201);
        server
            .post(
                "/projects/1/buckets/b/tables",
                &key,
                json!({"name": "t", "columns": [{"name": "id", "type": "BIGINT"}, {"name": "name", "type": "VARCHAR"}],
                       "primary_key": ["id"]}),
            )
            .await
            .expect(201);
        (server, key)
    }

    /// Uploads `csv` as a file of project 1 named `name`; its file record.
    pub async fn upload_csv(&self, key: &str, name: &str, csv: String) -> Value {
        let res = self
            .client
            .post(self.url(&format!("/projects/1/files/content?name={name}")))
            .bearer_auth(key)
            .body(csv)
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status(), 201);
        res.json().await.expect("file record")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Deterministic incompressible bytes (xorshift), different per seed: test files and the
/// benchmark's payload, so runs are comparable.
pub fn bytes_of(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// CSV `id,name` rows for the ids in `range` (deterministic names): the big tables of the
/// kill -9 tests.
pub fn rows_csv(range: std::ops::RangeInclusive<u64>) -> String {
    let mut csv = String::from("id,name\n");
    for i in range {
        csv.push_str(&format!("{i},name-{i}-{}\n", i.wrapping_mul(2654435761)));
    }
    csv
}
