//! Files API tests, one module per operation; this module holds what they share: request
//! builders, upload and session steps, deterministic data and blob-dir inspection.

mod access;
mod blobs;
mod cleaner;
mod databank;
mod download;
mod prepared;
mod quota;
mod sessions;
mod storage;
mod upload;

use std::path::{Path, PathBuf};

use duckbank::config::Config;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

const BOUNDARY: &str = "duckbank-test-boundary-5f3a9c";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A multipart/form-data body with one file part named `file`.
fn multipart_body(filename: &str, content_type: &str, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + 256);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// A raw HTTP answer: status, headers and the exact body bytes.
struct Raw {
    status: u16,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    /// As a `Reply`, for `expect` / `expect_error`.
    fn reply(self) -> Reply {
        let body = self.json();
        Reply {
            status: reqwest::StatusCode::from_u16(self.status).unwrap(),
            headers: self.headers,
            body,
        }
    }

    #[track_caller]
    fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.bytes[..self.bytes.len().min(2000)])
        );
        self
    }
}

async fn send(req: reqwest::RequestBuilder) -> Raw {
    let res = req.send().await.expect("request failed");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("body").to_vec();
    Raw {
        status,
        headers,
        bytes,
    }
}

fn request(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
) -> reqwest::RequestBuilder {
    let req = app.client.request(method, app.url(path));
    match key {
        Some(k) => req.bearer_auth(k),
        None => req,
    }
}

/// Single-shot raw upload to `/projects/{project}/files/content?name=`.
async fn upload_raw(app: &TestApp, project: &str, key: &str, name: &str, data: &[u8]) -> Raw {
    send(
        request(
            app,
            Method::POST,
            &format!("/projects/{project}/files/content?name={}", enc(name)),
            Some(key),
        )
        .body(data.to_vec()),
    )
    .await
}

/// Single-shot upload that must succeed; returns the file JSON.
async fn upload(app: &TestApp, project: &str, key: &str, name: &str, data: &[u8]) -> Value {
    upload_raw(app, project, key, name, data)
        .await
        .reply()
        .expect(201)
}

async fn download(
    app: &TestApp,
    project: &str,
    key: &str,
    id: &str,
    headers: &[(&str, &str)],
) -> Raw {
    let mut req = request(
        app,
        Method::GET,
        &format!("/projects/{project}/files/{id}/download"),
        Some(key),
    );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req).await
}

async fn prepare(app: &TestApp, key: &str, filename: &str) -> Value {
    let body = json!({"filename": filename, "content_type": "text/csv"});
    prepare_with(app, key, body).await.expect(200)
}

/// Asks project 1 to prepare an upload described by `body` exactly as given.
async fn prepare_with(app: &TestApp, key: &str, body: Value) -> Reply {
    app.post("/projects/1/files/prepare", key, body).await
}

/// Opens an upload session of project 1 described by `body` exactly as given.
async fn open_session(app: &TestApp, key: &str, body: Value) -> Reply {
    app.post("/projects/1/uploads", key, body).await
}

async fn upload_prepared(
    app: &TestApp,
    key: &str,
    upload_url: &str,
    filename: &str,
    data: &[u8],
) -> Raw {
    send(
        request(app, Method::POST, upload_url, Some(key))
            .header("content-type", multipart_type())
            .body(multipart_body(filename, "text/csv", data)),
    )
    .await
}

/// 9500 bytes in chunks of 1000: ten chunks, the last one 500 bytes.
const TOTAL: usize = 9500;

const CHUNK: usize = 1000;

async fn create_session(
    app: &TestApp,
    key: &str,
    name: &str,
    total: usize,
    chunk: usize,
    sha: Option<&str>,
) -> Value {
    let mut body = json!({"name": name, "total_size": total, "chunk_size": chunk});
    if let Some(sha) = sha {
        body["sha256"] = json!(sha);
    }
    open_session(app, key, body).await.expect(201)
}

async fn put_chunk(
    app: &TestApp,
    key: &str,
    id: &str,
    n: u64,
    data: &[u8],
    claimed_sha: Option<&str>,
) -> Raw {
    let mut req = request(
        app,
        Method::PUT,
        &format!("/projects/1/uploads/{id}/chunks/{n}"),
        Some(key),
    )
    .body(data.to_vec());
    if let Some(sha) = claimed_sha {
        req = req.header("x-chunk-sha256", sha);
    }
    send(req).await
}

/// The `n`-th chunk of `data` split into `chunk`-sized pieces.
fn chunk_of(data: &[u8], chunk: usize, n: usize) -> &[u8] {
    &data[n * chunk..((n + 1) * chunk).min(data.len())]
}

/// Stores the listed `CHUNK`-sized chunks of `data`; each must be accepted.
async fn put_chunks(
    app: &TestApp,
    key: &str,
    id: &str,
    data: &[u8],
    chunks: impl IntoIterator<Item = usize>,
) {
    for n in chunks {
        put_chunk(app, key, id, n as u64, chunk_of(data, CHUNK, n), None)
            .await
            .expect_status(200);
    }
}

/// The status of an upload session of project 1; must exist.
async fn session(app: &TestApp, key: &str, id: &str) -> Value {
    app.get(&format!("/projects/1/uploads/{id}"), key)
        .await
        .expect(200)
}

/// Completes an upload session of project 1.
pub(crate) async fn complete(app: &TestApp, key: &str, id: &str) -> Reply {
    app.post(
        &format!("/projects/1/uploads/{id}/complete"),
        key,
        json!({}),
    )
    .await
}

/// Every regular file below `dir` (empty when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn blob_files(app: &TestApp) -> Vec<PathBuf> {
    files_under(&app.data_dir.join("files/blobs"))
}

fn as_ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// Finds `needle` in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Polls `cond` for up to ten seconds.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..400 {
        if cond() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A server whose test config `change` adjusts, with project 1.
async fn app_with_project_configured(change: impl FnOnce(&mut Config)) -> (TestApp, String) {
    let app = spawn_app_configured(change).await;
    let key = app.create_project("1").await;
    (app, key)
}

/// The number of (non-staged) files project 1 lists.
async fn file_total(app: &TestApp, key: &str) -> Value {
    app.get("/projects/1/files", key).await.expect(200)["total"].clone()
}

/// Prepares an upload in project 1 and uploads `data` to its key; returns the prepare answer.
async fn staged_upload(app: &TestApp, key: &str, filename: &str, data: &[u8]) -> Value {
    let prep = prepare(app, key, filename).await;
    let url = prep["upload_url"].as_str().expect("upload_url");
    upload_prepared(app, key, url, filename, data)
        .await
        .expect_status(200);
    prep
}

/// Registers the upload key of a prepare answer as a file of project 1.
async fn register(app: &TestApp, key: &str, prep: &Value) -> Reply {
    app.post(
        "/projects/1/files",
        key,
        json!({"upload_key": prep["upload_key"]}),
    )
    .await
}

/// A HEAD request to `path`, sent with `key`.
async fn head(app: &TestApp, path: &str, key: &str) -> Raw {
    send(request(app, Method::HEAD, path, Some(key))).await
}

/// Downloads file `id` of project 1 asking for the byte `range`.
async fn download_range(app: &TestApp, key: &str, id: &str, range: &str) -> Raw {
    download(app, "1", key, id, &[("range", range)]).await
}

/// Downloads `file` of `project` in full and checks it answers 200 with `data`.
async fn assert_downloads(app: &TestApp, project: &str, key: &str, file: &Value, data: &[u8]) {
    let dl = download(app, project, key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
}

/// Uploads `data` as `one.bin` to project 1 and as `two.bin` to project 2.
async fn upload_to_both(app: &TestApp, key1: &str, key2: &str, data: &[u8]) -> (Value, Value) {
    let f1 = upload(app, "1", key1, "one.bin", data).await;
    let f2 = upload(app, "2", key2, "two.bin", data).await;
    (f1, f2)
}

/// Checks `raw` was refused with `status` and that no blob was left behind.
fn assert_refused_without_blob(app: &TestApp, raw: Raw, status: u16) {
    raw.reply().expect_error(status);
    assert!(blob_files(app).is_empty());
}

/// Checks that a raw upload, a prepare and a session open of project 1 each answer `status`.
async fn assert_every_way_in_is(
    app: &TestApp,
    key: &str,
    (upload_name, prepare_name, session_name): (&str, &str, &str),
    status: u16,
) {
    upload_raw(app, "1", key, upload_name, b"x")
        .await
        .reply()
        .expect_error(status);
    prepare_with(app, key, json!({"filename": prepare_name}))
        .await
        .expect_error(status);
    let body = json!({"name": session_name, "total_size": 10, "chunk_size": 5});
    open_session(app, key, body).await.expect_error(status);
}
