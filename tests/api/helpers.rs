//! Test harness: starts the real server in-process on 127.0.0.1:0 with a temp data dir,
//! and offers typed request helpers. Every test gets its own server and directory.

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
        body
    }
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

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with an optional key and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request failed");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        Reply {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.call(Method::DELETE, path, Some(key), None).await
    }

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
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let dir = self._dir.take();
        let mut app = spawn_app_with(test_config(&self.data_dir)).await;
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

/// The server binary running as its own process, the way users start it; killed on drop
/// (also when an assertion fails).
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary from `cmd` (environment already set) on a free port and waits for
/// `/healthz`.
pub async fn spawn_binary(mut cmd: std::process::Command) -> ServerProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = cmd
        .env("PORT", port.to_string())
        .spawn()
        .expect("start server binary");
    let server = ServerProcess {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..400 {
        if client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_ok()
        {
            return server;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("server binary did not start");
}
