//! Files API: the reference prepare → upload → register flow, single-shot uploads,
//! content addressing with refcounted blobs, downloads (Range/HEAD/ETag), resumable chunked
//! uploads, the seed-compatible Data Bank and JSON blob paths, guards, auth and hostile input.

use std::path::{Path, PathBuf};

use base64::Engine;
use futures_util::future::join_all;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const BOUNDARY: &str = "duckbank-test-boundary-5f3a9c";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Deterministic pseudo-random bytes (xorshift), different per seed.
fn bytes_of(len: usize, seed: u64) -> Vec<u8> {
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
    app.post(
        "/projects/1/files/prepare",
        key,
        json!({"filename": filename, "content_type": "text/csv"}),
    )
    .await
    .expect(200)
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
    app.post("/projects/1/uploads", key, body).await.expect(201)
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

// ---------------------------------------------------------------------------------------
// Reference flow: prepare → upload → register
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn prepare_returns_an_upload_key_an_upload_url_and_an_expiry() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "data.csv").await;
    let upload_key = prep["upload_key"].as_str().unwrap();
    assert!(!upload_key.is_empty());
    assert_eq!(
        prep["upload_url"],
        format!("/projects/1/files/upload/{upload_key}")
    );
    let expires = prep["expires_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(expires).is_ok(),
        "{expires}"
    );
}

#[tokio::test]
async fn an_uploaded_prepared_file_reports_its_real_sha256_and_is_listed_as_staged() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "data.csv").await;
    let staged = app
        .get("/projects/1/files?include_staged=true", &key)
        .await
        .expect(200);
    assert_eq!(
        staged["total"], 0,
        "nothing is staged before the upload: {staged}"
    );

    let data = b"id,name\n1,alpha\n2,beta\n";
    let up = upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "data.csv",
        data,
    )
    .await;
    let up = up.reply().expect(200);
    assert_eq!(up["size_bytes"], data.len());
    assert_eq!(up["checksum_sha256"], sha256_hex(data));

    let staged = app
        .get("/projects/1/files?include_staged=true", &key)
        .await
        .expect(200);
    assert_eq!(staged["total"], 1, "{staged}");
    let f = &staged["files"][0];
    assert_eq!(f["is_staged"], true);
    assert_eq!(f["id"], prep["upload_key"]);
    assert_eq!(f["name"], "data.csv");
    assert_eq!(f["checksum_sha256"], sha256_hex(data));
    let plain = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(
        plain["total"], 0,
        "staged files are hidden by default: {plain}"
    );
}

#[tokio::test]
async fn registering_an_upload_creates_a_file_record_with_the_reference_fields() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "data.csv").await;
    let data = b"a,b\n1,2\n";
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "data.csv",
        data,
    )
    .await
    .expect_status(200);
    let file = app
        .post(
            "/projects/1/files",
            &key,
            json!({"upload_key": prep["upload_key"], "name": "renamed.csv", "tags": {"team": "sales"}}),
        )
        .await
        .expect(201);
    let sha = sha256_hex(data);
    assert!(file["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(file["project_id"], "1");
    assert_eq!(file["name"], "renamed.csv");
    assert_eq!(
        file["path"],
        format!("blobs/{}/{}/{sha}", &sha[..2], &sha[2..4])
    );
    assert_eq!(file["size_bytes"], data.len());
    assert_eq!(file["content_type"], "text/csv");
    assert_eq!(file["checksum_sha256"], sha);
    assert_eq!(file["is_staged"], false);
    assert!(chrono::DateTime::parse_from_rfc3339(file["created_at"].as_str().unwrap()).is_ok());
    assert_eq!(file["tags"], json!({"team": "sales"}));

    let staged = app
        .get("/projects/1/files?include_staged=true", &key)
        .await
        .expect(200);
    assert_eq!(
        staged["total"], 1,
        "the staged entry became the file: {staged}"
    );
    assert_eq!(staged["files"][0]["is_staged"], false);
}

#[tokio::test]
async fn a_registered_file_is_listed_fetched_and_downloaded() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "data.csv").await;
    let data = b"x,y\n3,4\n";
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "data.csv",
        data,
    )
    .await
    .expect_status(200);
    let file = app
        .post(
            "/projects/1/files",
            &key,
            json!({"upload_key": prep["upload_key"]}),
        )
        .await
        .expect(201);
    let id = file["id"].as_str().unwrap();
    assert_eq!(
        file["name"], "data.csv",
        "the prepared name is kept without an override"
    );

    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["files"][0]["id"], id);
    let got = app
        .get(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(got, file);
    let dl = download(&app, "1", &key, id, &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
    assert_eq!(dl.header("content-type"), "text/csv");
}

#[tokio::test]
async fn deleting_a_file_answers_204_and_then_404() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let file = upload(&app, "1", &key, "gone.txt", b"short lived").await;
    let id = file["id"].as_str().unwrap();
    app.delete(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect(204);
    app.get(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect_error(404);
    download(&app, "1", &key, id, &[])
        .await
        .reply()
        .expect_error(404);
    app.delete(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect_error(404);
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        0
    );
}

#[tokio::test]
async fn registering_the_same_upload_key_twice_is_404() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "once.csv").await;
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "once.csv",
        b"1\n",
    )
    .await
    .expect_status(200);
    let body = json!({"upload_key": prep["upload_key"]});
    app.post("/projects/1/files", &key, body.clone())
        .await
        .expect(201);
    app.post("/projects/1/files", &key, body)
        .await
        .expect_error(404);
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        1
    );
}

#[tokio::test]
async fn registering_an_unknown_upload_key_is_404() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    app.post(
        "/projects/1/files",
        &key,
        json!({"upload_key": "doesnotexist"}),
    )
    .await
    .expect_error(404);
}

#[tokio::test]
async fn uploading_to_an_unknown_upload_key_is_404() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    upload_prepared(
        &app,
        &key,
        "/projects/1/files/upload/doesnotexist",
        "x.csv",
        b"1\n",
    )
    .await
    .reply()
    .expect_error(404);
    assert!(blob_files(&app).is_empty());
}

#[tokio::test]
async fn registering_before_uploading_is_400() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "early.csv").await;
    app.post(
        "/projects/1/files",
        &key,
        json!({"upload_key": prep["upload_key"]}),
    )
    .await
    .expect_error(400);
}

// ---------------------------------------------------------------------------------------
// Single-shot uploads and downloads
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_raw_body_upload_creates_a_file_at_once() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = b"id,amount\n1,10\n2,20\n";
    let res = send(
        request(
            &app,
            Method::POST,
            "/projects/1/files/content?name=a.csv",
            Some(&key),
        )
        .header("content-type", "text/csv")
        .body(data.to_vec()),
    )
    .await;
    let file = res.reply().expect(201);
    assert_eq!(file["name"], "a.csv");
    assert_eq!(file["size_bytes"], data.len());
    assert_eq!(file["checksum_sha256"], sha256_hex(data));
    assert_eq!(file["content_type"], "text/csv");
    assert_eq!(file["is_staged"], false);
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn a_multipart_upload_creates_a_file_named_after_the_part() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(5000, 7);
    let res = send(
        request(&app, Method::POST, "/projects/1/files/content", Some(&key))
            .header("content-type", multipart_type())
            .body(multipart_body("part.bin", "application/x-test", &data)),
    )
    .await;
    let file = res.reply().expect(201);
    assert_eq!(file["name"], "part.bin");
    assert_eq!(file["size_bytes"], data.len());
    assert_eq!(file["checksum_sha256"], sha256_hex(&data));
    assert_eq!(file["content_type"], "application/x-test");
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
}

#[tokio::test]
async fn a_download_returns_the_same_bytes_with_etag_ranges_disposition_and_type() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = b"col\nvalue\n";
    let file = upload(&app, "1", &key, "a.csv", data).await;
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
    assert_eq!(dl.header("etag"), format!("\"{}\"", sha256_hex(data)));
    assert_eq!(dl.header("accept-ranges"), "bytes");
    assert_eq!(dl.header("content-length"), data.len().to_string());
    let disposition = dl.header("content-disposition");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(disposition.contains("filename=\"a.csv\""), "{disposition}");
    assert_eq!(
        dl.header("content-type"),
        "text/csv",
        "guessed from the name"
    );
}

// ---------------------------------------------------------------------------------------
// Content addressing and blob refcounts
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn identical_content_in_two_projects_is_stored_as_one_blob() {
    let app = spawn_app().await;
    let key1 = app.create_project("1").await;
    let key2 = app.create_project("2").await;
    let data = bytes_of(3000, 1);
    let f1 = upload(&app, "1", &key1, "one.bin", &data).await;
    let f2 = upload(&app, "2", &key2, "two.bin", &data).await;
    assert_ne!(f1["id"], f2["id"]);
    let sha = sha256_hex(&data);
    assert_eq!(f1["checksum_sha256"], sha);
    assert_eq!(f2["checksum_sha256"], sha);
    let blobs = blob_files(&app);
    assert_eq!(
        blobs,
        vec![app
            .data_dir
            .join(format!("files/blobs/{}/{}/{sha}", &sha[..2], &sha[2..4]))],
    );
    assert_eq!(std::fs::read(&blobs[0]).unwrap(), data);
}

#[tokio::test]
async fn a_blob_is_removed_only_when_its_last_file_record_is_deleted() {
    let app = spawn_app().await;
    let key1 = app.create_project("1").await;
    let key2 = app.create_project("2").await;
    let data = bytes_of(3000, 2);
    let f1 = upload(&app, "1", &key1, "one.bin", &data).await;
    let f2 = upload(&app, "2", &key2, "two.bin", &data).await;
    app.delete(
        &format!("/projects/1/files/{}", f1["id"].as_str().unwrap()),
        &key1,
    )
    .await
    .expect(204);
    assert_eq!(blob_files(&app).len(), 1, "project 2 still uses the blob");
    let dl = download(&app, "2", &key2, f2["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
    app.delete(
        &format!("/projects/2/files/{}", f2["id"].as_str().unwrap()),
        &key2,
    )
    .await
    .expect(204);
    assert!(blob_files(&app).is_empty(), "{:?}", blob_files(&app));
}

#[tokio::test]
async fn two_records_of_the_same_content_in_one_project_share_the_blob() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(1000, 3);
    let a = upload(&app, "1", &key, "a.bin", &data).await;
    let _b = upload(&app, "1", &key, "b.bin", &data).await;
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        2
    );
    assert_eq!(blob_files(&app).len(), 1);
    app.delete(
        &format!("/projects/1/files/{}", a["id"].as_str().unwrap()),
        &key,
    )
    .await
    .expect(204);
    assert_eq!(blob_files(&app).len(), 1);
}

#[tokio::test]
async fn deleting_a_project_releases_its_blobs() {
    let app = spawn_app().await;
    let key1 = app.create_project("1").await;
    let key2 = app.create_project("2").await;
    let shared = bytes_of(2000, 4);
    let own = bytes_of(2000, 5);
    let f1 = upload(&app, "1", &key1, "shared.bin", &shared).await;
    upload(&app, "2", &key2, "shared.bin", &shared).await;
    upload(&app, "2", &key2, "own.bin", &own).await;
    assert_eq!(blob_files(&app).len(), 2);
    app.delete("/projects/2", ADMIN_KEY).await.expect(204);
    let blobs = blob_files(&app);
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert!(blobs[0].ends_with(sha256_hex(&shared)), "{blobs:?}");
    let dl = download(&app, "1", &key1, f1["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, shared);
}

// ---------------------------------------------------------------------------------------
// Downloads: Range, HEAD, conditional requests
// ---------------------------------------------------------------------------------------

/// A project with one 100-byte file; returns (app, key, file id, bytes).
async fn app_with_file() -> (TestApp, String, String, Vec<u8>) {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(100, 9);
    let file = upload(&app, "1", &key, "r.bin", &data).await;
    let id = file["id"].as_str().unwrap().to_string();
    (app, key, id, data)
}

#[tokio::test]
async fn a_single_range_is_answered_with_206_and_the_exact_bytes() {
    let (app, key, id, data) = app_with_file().await;
    let res = download(&app, "1", &key, &id, &[("range", "bytes=0-9")]).await;
    res.expect_status(206);
    assert_eq!(res.header("content-range"), "bytes 0-9/100");
    assert_eq!(res.header("content-length"), "10");
    assert_eq!(res.bytes, &data[0..10]);
}

#[tokio::test]
async fn a_suffix_range_returns_the_last_bytes() {
    let (app, key, id, data) = app_with_file().await;
    let res = download(&app, "1", &key, &id, &[("range", "bytes=-5")]).await;
    res.expect_status(206);
    assert_eq!(res.header("content-range"), "bytes 95-99/100");
    assert_eq!(res.bytes, &data[95..]);
}

#[tokio::test]
async fn an_open_range_returns_the_rest_of_the_file() {
    let (app, key, id, data) = app_with_file().await;
    let res = download(&app, "1", &key, &id, &[("range", "bytes=10-")]).await;
    res.expect_status(206);
    assert_eq!(res.header("content-range"), "bytes 10-99/100");
    assert_eq!(res.bytes, &data[10..]);
}

#[tokio::test]
async fn multiple_ranges_are_answered_as_multipart_byteranges() {
    let (app, key, id, data) = app_with_file().await;
    let res = download(&app, "1", &key, &id, &[("range", "bytes=0-1,4-5")]).await;
    res.expect_status(206);
    let ct = res.header("content-type").to_string();
    let boundary = ct
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap_or_else(|| panic!("content-type {ct}"));
    assert_eq!(res.header("content-length"), res.bytes.len().to_string());
    for (start, end) in [(0usize, 1usize), (4, 5)] {
        let mut part = format!("--{boundary}\r\n").into_bytes();
        part.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
        part.extend_from_slice(
            format!("Content-Range: bytes {start}-{end}/100\r\n\r\n").as_bytes(),
        );
        part.extend_from_slice(&data[start..=end]);
        part.extend_from_slice(b"\r\n");
        assert!(
            contains(&res.bytes, &part),
            "part {start}-{end} missing in {:?}",
            String::from_utf8_lossy(&res.bytes)
        );
    }
    assert!(res
        .bytes
        .ends_with(format!("--{boundary}--\r\n").as_bytes()));
}

#[tokio::test]
async fn an_unsatisfiable_range_is_416_with_the_size() {
    let (app, key, id, _) = app_with_file().await;
    let res = download(&app, "1", &key, &id, &[("range", "bytes=1000-")]).await;
    assert_eq!(res.header("content-range"), "bytes */100");
    res.reply().expect_error(416);
}

#[tokio::test]
async fn a_malformed_range_is_ignored_and_the_full_body_sent() {
    let (app, key, id, data) = app_with_file().await;
    let res = download(&app, "1", &key, &id, &[("range", "bytes=abc")]).await;
    res.expect_status(200);
    assert_eq!(res.bytes, data);
    assert!(res.headers.get("content-range").is_none());
}

#[tokio::test]
async fn head_returns_the_headers_without_a_body() {
    let (app, key, id, data) = app_with_file().await;
    let res = send(request(
        &app,
        Method::HEAD,
        &format!("/projects/1/files/{id}/download"),
        Some(&key),
    ))
    .await;
    res.expect_status(200);
    assert!(res.bytes.is_empty());
    assert_eq!(res.header("content-length"), "100");
    assert_eq!(res.header("etag"), format!("\"{}\"", sha256_hex(&data)));
    assert_eq!(res.header("accept-ranges"), "bytes");
    assert!(res.header("content-disposition").contains("r.bin"));
}

#[tokio::test]
async fn head_with_a_range_reports_the_partial_length_without_a_body() {
    let (app, key, id, _) = app_with_file().await;
    let res = send(
        request(
            &app,
            Method::HEAD,
            &format!("/projects/1/files/{id}/download"),
            Some(&key),
        )
        .header("range", "bytes=0-9"),
    )
    .await;
    res.expect_status(206);
    assert!(res.bytes.is_empty());
    assert_eq!(res.header("content-range"), "bytes 0-9/100");
    assert_eq!(res.header("content-length"), "10");
}

#[tokio::test]
async fn if_none_match_with_the_etag_is_304() {
    let (app, key, id, data) = app_with_file().await;
    let etag = format!("\"{}\"", sha256_hex(&data));
    let res = download(&app, "1", &key, &id, &[("if-none-match", &etag)]).await;
    res.expect_status(304);
    assert!(res.bytes.is_empty());
    assert_eq!(res.header("etag"), etag);
    let other = download(&app, "1", &key, &id, &[("if-none-match", "\"other\"")]).await;
    other.expect_status(200);
    assert_eq!(other.bytes, data);
}

#[tokio::test]
async fn if_range_with_a_different_etag_sends_the_full_file() {
    let (app, key, id, data) = app_with_file().await;
    let res = download(
        &app,
        "1",
        &key,
        &id,
        &[("range", "bytes=0-9"), ("if-range", "\"0000stale\"")],
    )
    .await;
    res.expect_status(200);
    assert_eq!(res.bytes, data);
}

#[tokio::test]
async fn if_range_with_the_current_etag_honours_the_range() {
    let (app, key, id, data) = app_with_file().await;
    let etag = format!("\"{}\"", sha256_hex(&data));
    let res = download(
        &app,
        "1",
        &key,
        &id,
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    res.expect_status(206);
    assert_eq!(res.bytes, &data[..10]);
}

// ---------------------------------------------------------------------------------------
// Resumable uploads
// ---------------------------------------------------------------------------------------

/// 9500 bytes in chunks of 1000: ten chunks, the last one 500 bytes.
const TOTAL: usize = 9500;
const CHUNK: usize = 1000;

#[tokio::test]
async fn creating_an_upload_session_reports_its_chunks() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let s = create_session(&app, &key, "big.bin", TOTAL, CHUNK, None).await;
    assert!(s["upload_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(s["chunk_count"], 10);
    assert_eq!(as_ids(&s["missing_chunks"]), (0..10).collect::<Vec<_>>());
    assert_eq!(as_ids(&s["received_chunks"]), Vec::<u64>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chunks_in_reverse_and_concurrent_order_complete_to_the_original_bytes() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(TOTAL, 11);
    let sha = sha256_hex(&data);
    let s = create_session(&app, &key, "big.bin", TOTAL, CHUNK, Some(&sha)).await;
    let id = s["upload_id"].as_str().unwrap();
    for n in (5..10).rev() {
        let r = put_chunk(&app, &key, id, n as u64, chunk_of(&data, CHUNK, n), None).await;
        assert_eq!(r.reply().expect(200)["stored"], true);
    }
    let puts = (0..5).map(|n| {
        let (app, key, data) = (&app, &key, &data);
        async move {
            let part = chunk_of(data, CHUNK, n);
            put_chunk(app, key, id, n as u64, part, Some(&sha256_hex(part)))
                .await
                .status
        }
    });
    let statuses = join_all(puts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let file = app
        .post(
            &format!("/projects/1/uploads/{id}/complete"),
            &key,
            json!({}),
        )
        .await
        .expect(201);
    assert_eq!(file["name"], "big.bin");
    assert_eq!(file["size_bytes"], TOTAL);
    assert_eq!(file["checksum_sha256"], sha);
    assert_eq!(file["is_staged"], false);
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
    app.get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect_error(404);
    assert!(
        !app.data_dir.join("files/uploads").join(id).exists(),
        "chunk files are removed after completion"
    );
}

#[tokio::test]
async fn a_retried_identical_chunk_is_a_no_op() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(TOTAL, 12);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    let part = chunk_of(&data, CHUNK, 3);
    let first = put_chunk(&app, &key, id, 3, part, None)
        .await
        .reply()
        .expect(200);
    assert_eq!(first["stored"], true);
    let again = put_chunk(&app, &key, id, 3, part, None)
        .await
        .reply()
        .expect(200);
    assert_eq!(again["stored"], false);
    let status = app
        .get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(as_ids(&status["received_chunks"]), vec![3]);
}

#[tokio::test]
async fn a_different_body_for_a_stored_chunk_is_409() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(TOTAL, 13);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 2, chunk_of(&data, CHUNK, 2), None)
        .await
        .expect_status(200);
    let other = bytes_of(CHUNK, 99);
    put_chunk(&app, &key, id, 2, &other, None)
        .await
        .reply()
        .expect_error(409);
    // The stored chunk is unchanged: completing gives the original bytes.
    for n in (0..10).filter(|n| *n != 2) {
        put_chunk(&app, &key, id, n as u64, chunk_of(&data, CHUNK, n), None)
            .await
            .expect_status(200);
    }
    let file = app
        .post(
            &format!("/projects/1/uploads/{id}/complete"),
            &key,
            json!({}),
        )
        .await
        .expect(201);
    assert_eq!(file["checksum_sha256"], sha256_hex(&data));
}

#[tokio::test]
async fn a_wrong_chunk_checksum_is_422_and_the_chunk_is_not_recorded() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(TOTAL, 14);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    let part = chunk_of(&data, CHUNK, 0);
    let wrong = sha256_hex(b"something else");
    let err = put_chunk(&app, &key, id, 0, part, Some(&wrong))
        .await
        .reply()
        .expect_error(422);
    assert_eq!(err["details"]["expected"], wrong);
    assert_eq!(err["details"]["actual"], sha256_hex(part));
    let status = app
        .get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(as_ids(&status["received_chunks"]), Vec::<u64>::new());
    assert!(as_ids(&status["missing_chunks"]).contains(&0));
    assert!(
        files_under(&app.data_dir.join("files/uploads")).is_empty(),
        "no chunk file is kept"
    );
    assert!(
        files_under(&app.data_dir.join("files/tmp")).is_empty(),
        "no temp file is kept"
    );
}

#[tokio::test]
async fn a_chunk_index_out_of_range_is_400() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 10, &bytes_of(500, 1), None)
        .await
        .reply()
        .expect_error(400);
}

#[tokio::test]
async fn a_chunk_of_the_wrong_size_is_400_unless_it_is_the_shorter_last_chunk() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 0, &bytes_of(CHUNK - 1, 1), None)
        .await
        .reply()
        .expect_error(400);
    put_chunk(&app, &key, id, 0, &bytes_of(CHUNK + 1, 1), None)
        .await
        .reply()
        .expect_error(400);
    put_chunk(&app, &key, id, 9, &bytes_of(CHUNK, 1), None)
        .await
        .reply()
        .expect_error(400);
    put_chunk(&app, &key, id, 9, &bytes_of(TOTAL - 9 * CHUNK, 1), None)
        .await
        .expect_status(200);
    let status = app
        .get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(as_ids(&status["received_chunks"]), vec![9]);
}

#[tokio::test]
async fn the_session_status_lists_received_and_missing_chunks() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(TOTAL, 15);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    for n in [0usize, 2, 9] {
        put_chunk(&app, &key, id, n as u64, chunk_of(&data, CHUNK, n), None)
            .await
            .expect_status(200);
    }
    let status = app
        .get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(as_ids(&status["received_chunks"]), vec![0, 2, 9]);
    assert_eq!(as_ids(&status["missing_chunks"]), vec![1, 3, 4, 5, 6, 7, 8]);
    assert_eq!(status["received_bytes"], 2 * CHUNK + 500);
    assert_eq!(status["is_complete"], false);
}

#[tokio::test]
async fn completing_with_missing_chunks_is_409_listing_them() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(TOTAL, 16);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    for n in (0..10).filter(|n| ![4usize, 7].contains(n)) {
        put_chunk(&app, &key, id, n as u64, chunk_of(&data, CHUNK, n), None)
            .await
            .expect_status(200);
    }
    let err = app
        .post(
            &format!("/projects/1/uploads/{id}/complete"),
            &key,
            json!({}),
        )
        .await
        .expect_error(409);
    assert_eq!(as_ids(&err["details"]["missing_chunks"]), vec![4, 7]);
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        0
    );
}

#[tokio::test]
async fn a_whole_file_checksum_mismatch_at_complete_is_422() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(TOTAL, 17);
    let claimed = sha256_hex(b"not the content");
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, Some(&claimed)).await;
    let id = s["upload_id"].as_str().unwrap();
    for n in 0..10 {
        put_chunk(&app, &key, id, n as u64, chunk_of(&data, CHUNK, n), None)
            .await
            .expect_status(200);
    }
    let err = app
        .post(
            &format!("/projects/1/uploads/{id}/complete"),
            &key,
            json!({}),
        )
        .await
        .expect_error(422);
    assert_eq!(err["details"]["expected"], claimed);
    assert_eq!(err["details"]["actual"], sha256_hex(&data));
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        0
    );
    assert!(blob_files(&app).is_empty(), "{:?}", blob_files(&app));
    assert!(files_under(&app.data_dir.join("files/tmp")).is_empty());
}

#[tokio::test]
async fn aborting_a_session_removes_it_and_its_chunks() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(TOTAL, 18);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 0, chunk_of(&data, CHUNK, 0), None)
        .await
        .expect_status(200);
    assert!(!files_under(&app.data_dir.join("files/uploads")).is_empty());
    app.delete(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect(204);
    app.get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect_error(404);
    app.delete(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect_error(404);
    put_chunk(&app, &key, id, 1, chunk_of(&data, CHUNK, 1), None)
        .await
        .reply()
        .expect_error(404);
    assert!(files_under(&app.data_dir.join("files/uploads")).is_empty());
}

#[tokio::test]
async fn an_unknown_upload_session_is_404() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    app.get("/projects/1/uploads/nosuchsession", &key)
        .await
        .expect_error(404);
    app.post(
        "/projects/1/uploads/nosuchsession/complete",
        &key,
        json!({}),
    )
    .await
    .expect_error(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_completes_of_one_session_let_exactly_one_succeed() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(TOTAL, 19);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    for n in 0..10 {
        put_chunk(&app, &key, id, n as u64, chunk_of(&data, CHUNK, n), None)
            .await
            .expect_status(200);
    }
    let path = format!("/projects/1/uploads/{id}/complete");
    let completes = (0..4).map(|_| {
        let (app, key, path) = (&app, &key, &path);
        async move { app.post(path, key, json!({})).await.status.as_u16() }
    });
    let statuses = join_all(completes).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [201, 404, 409].contains(s)),
        "{statuses:?}"
    );
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 1, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_resumes_after_a_server_restart() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(TOTAL, 20);
    let s = create_session(
        &app,
        &key,
        "resume.bin",
        TOTAL,
        CHUNK,
        Some(&sha256_hex(&data)),
    )
    .await;
    let id = s["upload_id"].as_str().unwrap().to_string();
    for n in 0..5 {
        put_chunk(&app, &key, &id, n as u64, chunk_of(&data, CHUNK, n), None)
            .await
            .expect_status(200);
    }
    let app = app.restart().await;
    let status = app
        .get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(as_ids(&status["received_chunks"]), vec![0, 1, 2, 3, 4]);
    assert_eq!(as_ids(&status["missing_chunks"]), vec![5, 6, 7, 8, 9]);
    for n in 5..10 {
        put_chunk(&app, &key, &id, n as u64, chunk_of(&data, CHUNK, n), None)
            .await
            .expect_status(200);
    }
    let file = app
        .post(
            &format!("/projects/1/uploads/{id}/complete"),
            &key,
            json!({}),
        )
        .await
        .expect(201);
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_upload_survives_a_server_restart() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "kept.csv").await;
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "kept.csv",
        b"k\n1\n",
    )
    .await
    .expect_status(200);
    let app = app.restart().await;
    let file = app
        .post(
            "/projects/1/files",
            &key,
            json!({"upload_key": prep["upload_key"]}),
        )
        .await
        .expect(201);
    assert_eq!(file["checksum_sha256"], sha256_hex(b"k\n1\n"));
}

// ---------------------------------------------------------------------------------------
// Seed Data Bank API (/files, id = sha256) with the project taken from the key
// ---------------------------------------------------------------------------------------

async fn databank_upload(app: &TestApp, key: &str, name: &str, data: &[u8]) -> Raw {
    send(
        request(app, Method::POST, "/files", Some(key))
            .header("content-type", multipart_type())
            .body(multipart_body(name, "text/plain", data)),
    )
    .await
}

#[tokio::test]
async fn the_data_bank_upload_answers_the_sha256_as_file_id() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = b"data bank content";
    let body = databank_upload(&app, &key, "bank.txt", data)
        .await
        .reply()
        .expect(201);
    assert_eq!(body["file_id"], sha256_hex(data));
    assert_eq!(body["size"], data.len());
    assert_eq!(body["name"], "bank.txt");
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 1, "the file lands in the key's project");
}

#[tokio::test]
async fn data_bank_files_are_downloaded_by_sha256_with_ranges_and_head() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = b"0123456789abcdef";
    let sha = sha256_hex(data);
    databank_upload(&app, &key, "bank.txt", data)
        .await
        .expect_status(201);
    let full = send(request(
        &app,
        Method::GET,
        &format!("/files/{sha}"),
        Some(&key),
    ))
    .await;
    full.expect_status(200);
    assert_eq!(full.bytes, data);
    assert_eq!(full.header("etag"), format!("\"{sha}\""));
    let part = send(
        request(&app, Method::GET, &format!("/files/{sha}"), Some(&key))
            .header("range", "bytes=2-5"),
    )
    .await;
    part.expect_status(206);
    assert_eq!(part.bytes, b"2345");
    let head = send(request(
        &app,
        Method::HEAD,
        &format!("/files/{sha}"),
        Some(&key),
    ))
    .await;
    head.expect_status(200);
    assert!(head.bytes.is_empty());
    assert_eq!(head.header("content-length"), data.len().to_string());
}

#[tokio::test]
async fn data_bank_info_describes_the_file() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = b"info please";
    let sha = sha256_hex(data);
    databank_upload(&app, &key, "info.txt", data)
        .await
        .expect_status(201);
    let info = app
        .get(&format!("/files/{sha}/info"), &key)
        .await
        .expect(200);
    assert_eq!(info["file_id"], sha);
    assert_eq!(info["size"], data.len());
    assert_eq!(info["name"], "info.txt");
    assert!(info["created_at"].is_string());
    app.get(&format!("/files/{}/info", sha256_hex(b"other")), &key)
        .await
        .expect_error(404);
}

#[tokio::test]
async fn data_bank_delete_removes_the_file() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = b"delete me";
    let sha = sha256_hex(data);
    databank_upload(&app, &key, "d.txt", data)
        .await
        .expect_status(201);
    app.delete(&format!("/files/{sha}"), &key).await.expect(204);
    app.get(&format!("/files/{sha}"), &key)
        .await
        .expect_error(404);
    app.delete(&format!("/files/{sha}"), &key)
        .await
        .expect_error(404);
    assert!(blob_files(&app).is_empty());
}

#[tokio::test]
async fn data_bank_paths_refuse_the_admin_key_with_400() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = b"admin cannot";
    let sha = sha256_hex(data);
    databank_upload(&app, &key, "a.txt", data)
        .await
        .expect_status(201);
    databank_upload(&app, ADMIN_KEY, "a.txt", data)
        .await
        .reply()
        .expect_error(400);
    app.get(&format!("/files/{sha}"), ADMIN_KEY)
        .await
        .expect_error(400);
    app.get(&format!("/files/{sha}/info"), ADMIN_KEY)
        .await
        .expect_error(400);
    app.delete(&format!("/files/{sha}"), ADMIN_KEY)
        .await
        .expect_error(400);
}

#[tokio::test]
async fn data_bank_paths_without_a_key_are_401() {
    let app = spawn_app().await;
    let sha = sha256_hex(b"x");
    send(
        request(&app, Method::POST, "/files", None)
            .header("content-type", multipart_type())
            .body(multipart_body("a.txt", "text/plain", b"x")),
    )
    .await
    .reply()
    .expect_error(401);
    app.call(Method::GET, &format!("/files/{sha}"), None, None)
        .await
        .expect_error(401);
    app.call(Method::GET, &format!("/files/{sha}/info"), None, None)
        .await
        .expect_error(401);
    app.call(Method::DELETE, &format!("/files/{sha}"), None, None)
        .await
        .expect_error(401);
}

// ---------------------------------------------------------------------------------------
// Seed JSON blob API (/v1/blobs)
// ---------------------------------------------------------------------------------------

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test]
async fn a_json_blob_round_trips_through_base64() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(300, 21);
    let created = app
        .post(
            "/v1/blobs",
            &key,
            json!({"id": "blob-1", "data": b64(&data)}),
        )
        .await
        .expect(201);
    assert_eq!(created["id"], "blob-1");
    assert_eq!(created["size"], data.len());
    assert!(created["created_at"].is_string());
    let got = app.get("/v1/blobs/blob-1", &key).await.expect(200);
    assert_eq!(got["id"], "blob-1");
    assert_eq!(got["data"], b64(&data));
}

#[tokio::test]
async fn a_blob_with_bad_base64_is_400() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    app.post(
        "/v1/blobs",
        &key,
        json!({"id": "bad", "data": "!!! not base64 !!!"}),
    )
    .await
    .expect_error(400);
    app.get("/v1/blobs/bad", &key).await.expect_error(404);
}

#[tokio::test]
async fn a_duplicate_blob_id_is_409() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    app.post(
        "/v1/blobs",
        &key,
        json!({"id": "dup", "data": b64(b"first")}),
    )
    .await
    .expect(201);
    app.post(
        "/v1/blobs",
        &key,
        json!({"id": "dup", "data": b64(b"second")}),
    )
    .await
    .expect_error(409);
    let got = app.get("/v1/blobs/dup", &key).await.expect(200);
    assert_eq!(got["data"], b64(b"first"));
}

#[tokio::test]
async fn a_missing_blob_is_404() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    app.get("/v1/blobs/nothing-here", &key)
        .await
        .expect_error(404);
}

// ---------------------------------------------------------------------------------------
// Guards: size limit, free space, quotas
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_upload_over_max_file_bytes_is_413_and_registers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.max_file_bytes = 1000;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    upload_raw(&app, "1", &key, "big.bin", &bytes_of(2000, 22))
        .await
        .reply()
        .expect_error(413);
    upload(&app, "1", &key, "small.bin", &bytes_of(1000, 22)).await;
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(blob_files(&app).len(), 1);
    assert!(files_under(&app.data_dir.join("files/tmp")).is_empty());
}

#[tokio::test]
async fn a_multipart_upload_over_max_file_bytes_is_413_while_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.max_file_bytes = 1000;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    send(
        request(&app, Method::POST, "/projects/1/files/content", Some(&key))
            .header("content-type", multipart_type())
            .body(multipart_body(
                "big.bin",
                "application/octet-stream",
                &bytes_of(5000, 23),
            )),
    )
    .await
    .reply()
    .expect_error(413);
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        0
    );
    assert!(blob_files(&app).is_empty());
    assert!(files_under(&app.data_dir.join("files/tmp")).is_empty());
}

#[tokio::test]
async fn an_upload_without_enough_free_space_is_507() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.min_free_bytes = u64::MAX;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    upload_raw(&app, "1", &key, "a.bin", b"no room")
        .await
        .reply()
        .expect_error(507);
    assert!(blob_files(&app).is_empty());
    assert_eq!(
        app.call(Method::GET, "/readyz", None, None)
            .await
            .status
            .as_u16(),
        503
    );
}

#[tokio::test]
async fn the_file_count_quota_refuses_the_next_upload_with_507() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.project_quota_files = 1;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    upload(&app, "1", &key, "a.bin", b"first").await;
    upload_raw(&app, "1", &key, "b.bin", b"second")
        .await
        .reply()
        .expect_error(507);
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        1
    );
    assert_eq!(blob_files(&app).len(), 1, "the refused content is not kept");
    // Another project has its own quota.
    let key2 = app.create_project("2").await;
    upload(&app, "2", &key2, "b.bin", b"second").await;
}

#[tokio::test]
async fn the_byte_quota_refuses_an_upload_that_would_exceed_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.project_quota_bytes = 150;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    upload(&app, "1", &key, "a.bin", &bytes_of(100, 24)).await;
    upload_raw(&app, "1", &key, "b.bin", &bytes_of(100, 25))
        .await
        .reply()
        .expect_error(507);
    upload(&app, "1", &key, "c.bin", &bytes_of(50, 26)).await;
}

#[tokio::test]
async fn a_resumable_session_larger_than_max_file_bytes_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.max_file_bytes = 1000;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    app.post(
        "/projects/1/uploads",
        &key,
        json!({"name": "big.bin", "total_size": 2000, "chunk_size": 500}),
    )
    .await
    .expect_error(413);
}

// ---------------------------------------------------------------------------------------
// Auth and project isolation
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn another_projects_key_is_403_on_project_files() {
    let app = spawn_app().await;
    let _key1 = app.create_project("1").await;
    let key2 = app.create_project("2").await;
    app.get("/projects/1/files", &key2).await.expect_error(403);
    upload_raw(&app, "1", &key2, "x.bin", b"x")
        .await
        .reply()
        .expect_error(403);
    app.post(
        "/projects/1/files/prepare",
        &key2,
        json!({"filename": "x.csv"}),
    )
    .await
    .expect_error(403);
    app.post(
        "/projects/1/uploads",
        &key2,
        json!({"name": "x", "total_size": 10, "chunk_size": 5}),
    )
    .await
    .expect_error(403);
}

#[tokio::test]
async fn project_files_without_a_key_are_401() {
    let app = spawn_app().await;
    app.create_project("1").await;
    app.call(Method::GET, "/projects/1/files", None, None)
        .await
        .expect_error(401);
}

#[tokio::test]
async fn a_file_of_one_project_is_not_visible_to_another() {
    let app = spawn_app().await;
    let key1 = app.create_project("1").await;
    let key2 = app.create_project("2").await;
    let data = b"private to project 1";
    let file = upload(&app, "1", &key1, "secret.txt", data).await;
    let id = file["id"].as_str().unwrap();
    app.get(&format!("/projects/2/files/{id}"), &key2)
        .await
        .expect_error(404);
    download(&app, "2", &key2, id, &[])
        .await
        .reply()
        .expect_error(404);
    app.delete(&format!("/projects/2/files/{id}"), &key2)
        .await
        .expect_error(404);
    assert_eq!(
        app.get("/projects/2/files", &key2).await.expect(200)["total"],
        0
    );
    let sha = sha256_hex(data);
    app.get(&format!("/files/{sha}"), &key2)
        .await
        .expect_error(404);
    app.get(&format!("/files/{sha}/info"), &key2)
        .await
        .expect_error(404);
    // Project 1 still has it.
    app.get(&format!("/projects/1/files/{id}"), &key1)
        .await
        .expect(200);
}

#[tokio::test]
async fn an_upload_session_of_one_project_is_not_visible_to_another() {
    let app = spawn_app().await;
    let key1 = app.create_project("1").await;
    let key2 = app.create_project("2").await;
    let s = create_session(&app, &key1, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    app.get(&format!("/projects/2/uploads/{id}"), &key2)
        .await
        .expect_error(404);
    app.delete(&format!("/projects/2/uploads/{id}"), &key2)
        .await
        .expect_error(404);
    app.get(&format!("/projects/1/uploads/{id}"), &key1)
        .await
        .expect(200);
}

// ---------------------------------------------------------------------------------------
// Hostile names
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_name_with_path_separators_is_kept_for_display_but_not_used_as_a_path() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let escape_target = app.data_dir.join("files/../../etc/passwd");
    let existed_before = escape_target.exists();
    let data = b"root:x:0:0\n";
    let name = "../../etc/passwd";
    let file = upload(&app, "1", &key, name, data).await;
    assert_eq!(file["name"], name);
    let sha = sha256_hex(data);
    assert_eq!(
        file["path"],
        format!("blobs/{}/{}/{sha}", &sha[..2], &sha[2..4])
    );
    assert_eq!(escape_target.exists(), existed_before);
    assert!(!app.data_dir.join("etc").exists());
    for path in files_under(&app.data_dir) {
        assert!(
            !path.to_string_lossy().contains("passwd"),
            "a file named after the upload exists: {}",
            path.display()
        );
    }
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
    let disposition = dl.header("content-disposition");
    assert!(!disposition.is_empty());
    assert!(!disposition.contains('/'), "{disposition}");
    assert!(!disposition.contains('\\'), "{disposition}");
}

#[tokio::test]
async fn a_name_with_control_characters_cannot_inject_headers() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let name = "evil\r\nX-Injected: 1.txt";
    let file = upload(&app, "1", &key, name, b"payload").await;
    assert_eq!(file["name"], name, "the name is kept for display");
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert!(dl.headers.get("x-injected").is_none());
    let disposition = dl.header("content-disposition");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(!disposition.contains('\r') && !disposition.contains('\n'));
}

#[tokio::test]
async fn a_name_with_nul_is_400() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    upload_raw(&app, "1", &key, "a\0b.txt", b"x")
        .await
        .reply()
        .expect_error(400);
    app.post(
        "/projects/1/files/prepare",
        &key,
        json!({"filename": "a\u{0}b.txt"}),
    )
    .await
    .expect_error(400);
    app.post(
        "/projects/1/uploads",
        &key,
        json!({"name": "a\u{0}b", "total_size": 10, "chunk_size": 5}),
    )
    .await
    .expect_error(400);
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        0
    );
    assert!(blob_files(&app).is_empty());
}

// ---------------------------------------------------------------------------------------
// Large file
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_round_trips_with_a_matching_sha256() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(64 * 1024 * 1024, 64);
    let sha = sha256_hex(&data);
    let file = upload(&app, "1", &key, "big.bin", &data).await;
    assert_eq!(file["size_bytes"], data.len());
    assert_eq!(file["checksum_sha256"], sha);
    drop(data);
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes.len(), 64 * 1024 * 1024);
    assert_eq!(sha256_hex(&dl.bytes), sha);
}

// ---------------------------------------------------------------------------------------
// Expiry, cleanup, disconnects
// ---------------------------------------------------------------------------------------

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

#[tokio::test]
async fn an_expired_upload_key_is_410() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.upload_ttl_secs = 0;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "late.csv").await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "late.csv",
        b"1\n",
    )
    .await
    .reply()
    .expect_error(410);
    app.post(
        "/projects/1/files",
        &key,
        json!({"upload_key": prep["upload_key"]}),
    )
    .await
    .expect_error(410);
    assert!(blob_files(&app).is_empty());
}

#[tokio::test]
async fn an_expired_upload_session_is_410() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.upload_ttl_secs = 0;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    let s = create_session(&app, &key, "late.bin", 10, 5, None).await;
    let id = s["upload_id"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    app.get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect_error(410);
    put_chunk(&app, &key, id, 0, b"01234", None)
        .await
        .reply()
        .expect_error(410);
    app.post(
        &format!("/projects/1/uploads/{id}/complete"),
        &key,
        json!({}),
    )
    .await
    .expect_error(410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_cleaner_removes_expired_sessions_and_staged_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.upload_ttl_secs = 1;
    config.cleanup_interval_secs = 1;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "staged.csv").await;
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "staged.csv",
        b"s\n",
    )
    .await
    .expect_status(200);
    let s = create_session(&app, &key, "f.bin", 10, 5, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 0, b"01234", None)
        .await
        .expect_status(200);
    assert_eq!(blob_files(&app).len(), 1);
    let uploads = app.data_dir.join("files/uploads");
    assert_eq!(files_under(&uploads).len(), 1);
    wait_until("the staged blob and the chunk are removed", || {
        blob_files(&app).is_empty() && files_under(&uploads).is_empty()
    })
    .await;
    app.get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect_error(404);
    app.post(
        "/projects/1/files",
        &key,
        json!({"upload_key": prep["upload_key"]}),
    )
    .await
    .expect_error(404);
    let staged = app
        .get("/projects/1/files?include_staged=true", &key)
        .await
        .expect(200);
    assert_eq!(staged["total"], 0, "{staged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_upload_leaves_nothing_behind() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let mut stream = RawHttp::connect(&app.base).await;
    stream
        .send_head(
            "POST",
            "/projects/1/files/content?name=cut.bin",
            &[
                ("Authorization", format!("Bearer {key}")),
                ("Content-Length", "10000000".to_string()),
            ],
        )
        .await;
    stream.send_body(&bytes_of(256 * 1024, 30)).await;
    let tmp = app.data_dir.join("files/tmp");
    wait_until("the upload is being spooled", || {
        !files_under(&tmp).is_empty()
    })
    .await;
    drop(stream);
    wait_until("the temp file is removed", || files_under(&tmp).is_empty()).await;
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        0
    );
    assert!(blob_files(&app).is_empty());
}

// ---------------------------------------------------------------------------------------
// Edge cases
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_empty_file_can_be_uploaded_and_downloaded() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let file = upload(&app, "1", &key, "empty.txt", b"").await;
    assert_eq!(file["size_bytes"], 0);
    assert_eq!(file["checksum_sha256"], sha256_hex(b""));
    let id = file["id"].as_str().unwrap();
    let dl = download(&app, "1", &key, id, &[]).await;
    dl.expect_status(200);
    assert!(dl.bytes.is_empty());
    assert_eq!(dl.header("content-length"), "0");
    let ranged = download(&app, "1", &key, id, &[("range", "bytes=0-")]).await;
    assert_eq!(ranged.header("content-range"), "bytes */0");
    ranged.reply().expect_error(416);
}

#[tokio::test]
async fn an_empty_file_can_be_uploaded_as_one_empty_chunk() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let s = create_session(&app, &key, "empty.bin", 0, 1000, None).await;
    assert_eq!(s["chunk_count"], 1);
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 0, b"", None)
        .await
        .expect_status(200);
    let file = app
        .post(
            &format!("/projects/1/uploads/{id}/complete"),
            &key,
            json!({}),
        )
        .await
        .expect(201);
    assert_eq!(file["size_bytes"], 0);
    assert_eq!(file["checksum_sha256"], sha256_hex(b""));
}

#[tokio::test]
async fn a_session_with_an_invalid_sha256_or_chunk_size_is_400() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    app.post(
        "/projects/1/uploads",
        &key,
        json!({"name": "f", "total_size": 10, "chunk_size": 5, "sha256": "xyz"}),
    )
    .await
    .expect_error(400);
    app.post(
        "/projects/1/uploads",
        &key,
        json!({"name": "f", "total_size": 10, "chunk_size": 0}),
    )
    .await
    .expect_error(400);
}

#[tokio::test]
async fn if_none_match_star_is_304() {
    let (app, key, id, _) = app_with_file().await;
    download(&app, "1", &key, &id, &[("if-none-match", "*")])
        .await
        .expect_status(304);
}

#[tokio::test]
async fn a_second_upload_to_a_prepared_key_replaces_the_staged_content() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "v.csv").await;
    let url = prep["upload_url"].as_str().unwrap();
    upload_prepared(&app, &key, url, "v.csv", b"version 1\n")
        .await
        .expect_status(200);
    upload_prepared(&app, &key, url, "v.csv", b"version 2\n")
        .await
        .expect_status(200);
    let blobs = blob_files(&app);
    assert_eq!(
        blobs.len(),
        1,
        "the replaced content is released: {blobs:?}"
    );
    let file = app
        .post(
            "/projects/1/files",
            &key,
            json!({"upload_key": prep["upload_key"]}),
        )
        .await
        .expect(201);
    assert_eq!(file["checksum_sha256"], sha256_hex(b"version 2\n"));
}

#[tokio::test]
async fn an_upload_that_differs_from_the_prepared_size_is_400() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let prep = app
        .post(
            "/projects/1/files/prepare",
            &key,
            json!({"filename": "sized.csv", "size_bytes": 10}),
        )
        .await
        .expect(200);
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "sized.csv",
        b"12345",
    )
    .await
    .reply()
    .expect_error(400);
    let staged = app
        .get("/projects/1/files?include_staged=true", &key)
        .await
        .expect(200);
    assert_eq!(staged["total"], 0, "{staged}");
    assert!(blob_files(&app).is_empty());
}

#[tokio::test]
async fn an_upload_key_of_another_project_cannot_be_registered() {
    let app = spawn_app().await;
    let key1 = app.create_project("1").await;
    let key2 = app.create_project("2").await;
    let prep = prepare(&app, &key1, "mine.csv").await;
    upload_prepared(
        &app,
        &key1,
        prep["upload_url"].as_str().unwrap(),
        "mine.csv",
        b"m\n",
    )
    .await
    .expect_status(200);
    app.post(
        "/projects/2/files",
        &key2,
        json!({"upload_key": prep["upload_key"]}),
    )
    .await
    .expect_error(404);
    app.post(
        "/projects/1/files",
        &key1,
        json!({"upload_key": prep["upload_key"]}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn the_file_count_quota_also_applies_to_register_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.project_quota_files = 1;
    let app = spawn_app_with(config).await;
    let key = app.create_project("1").await;
    upload(&app, "1", &key, "a.bin", b"first").await;
    let prep = prepare(&app, &key, "b.csv").await;
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "b.csv",
        b"second",
    )
    .await
    .expect_status(200);
    app.post(
        "/projects/1/files",
        &key,
        json!({"upload_key": prep["upload_key"]}),
    )
    .await
    .expect_error(507);
    let s = create_session(&app, &key, "c.bin", 10, 5, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 0, b"01234", None)
        .await
        .expect_status(200);
    put_chunk(&app, &key, id, 1, b"56789", None)
        .await
        .expect_status(200);
    app.post(
        &format!("/projects/1/uploads/{id}/complete"),
        &key,
        json!({}),
    )
    .await
    .expect_error(507);
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        1
    );
    // The first file and the still-staged upload keep their blobs; the refused assembly does not.
    assert_eq!(blob_files(&app).len(), 2, "{:?}", blob_files(&app));
}

#[tokio::test]
async fn the_file_list_pages_with_limit_and_offset() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    for i in 0..3u64 {
        upload(&app, "1", &key, &format!("f{i}.txt"), &bytes_of(10, i)).await;
    }
    let page = app
        .get("/projects/1/files?limit=2&offset=1", &key)
        .await
        .expect(200);
    assert_eq!(page["total"], 3);
    assert_eq!(page["files"].as_array().unwrap().len(), 2);
    app.get("/projects/1/files?limit=0", &key)
        .await
        .expect_error(422);
}

#[tokio::test]
async fn the_data_bank_accepts_a_raw_body_with_a_name() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = b"raw data bank body";
    let res =
        send(request(&app, Method::POST, "/files?name=raw.txt", Some(&key)).body(data.to_vec()))
            .await;
    let body = res.reply().expect(201);
    assert_eq!(body["file_id"], sha256_hex(data));
    assert_eq!(body["name"], "raw.txt");
    let full = send(request(
        &app,
        Method::GET,
        &format!("/files/{}", sha256_hex(data)),
        Some(&key),
    ))
    .await;
    full.expect_status(200);
    assert_eq!(full.bytes, data);
}

#[tokio::test]
async fn a_data_bank_delete_removes_every_record_of_that_content() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = b"twice";
    upload(&app, "1", &key, "a.txt", data).await;
    upload(&app, "1", &key, "b.txt", data).await;
    app.delete(&format!("/files/{}", sha256_hex(data)), &key)
        .await
        .expect(204);
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        0
    );
    assert!(blob_files(&app).is_empty());
}

#[tokio::test]
async fn a_blob_id_with_path_characters_is_400() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    app.post(
        "/v1/blobs",
        &key,
        json!({"id": "../escape", "data": b64(b"x")}),
    )
    .await
    .expect_error(400);
    app.post("/v1/blobs", &key, json!({"id": "", "data": b64(b"x")}))
        .await
        .expect_error(400);
}

#[tokio::test]
async fn deleting_a_project_releases_its_staged_uploads() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let prep = prepare(&app, &key, "staged.csv").await;
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "staged.csv",
        b"s\n",
    )
    .await
    .expect_status(200);
    assert_eq!(blob_files(&app).len(), 1);
    app.delete("/projects/1", ADMIN_KEY).await.expect(204);
    assert!(blob_files(&app).is_empty(), "{:?}", blob_files(&app));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_and_a_delete_of_the_same_content_keep_the_blob() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let data = bytes_of(50_000, 31);
    let first = upload(&app, "1", &key, "first.bin", &data).await;
    let first_id = first["id"].as_str().unwrap().to_string();
    let delete = async {
        app.delete(&format!("/projects/1/files/{first_id}"), &key)
            .await
            .status
            .as_u16()
    };
    let uploads = join_all((0..8).map(|i| {
        let (app, key, data) = (&app, &key, &data);
        async move {
            upload_raw(app, "1", key, &format!("copy{i}.bin"), data)
                .await
                .status
        }
    }));
    let (deleted, statuses) = tokio::join!(delete, uploads);
    assert_eq!(deleted, 204);
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 8, "{list}");
    assert_eq!(blob_files(&app).len(), 1);
    for f in list["files"].as_array().unwrap() {
        let dl = download(&app, "1", &key, f["id"].as_str().unwrap(), &[]).await;
        dl.expect_status(200);
        assert_eq!(sha256_hex(&dl.bytes), sha256_hex(&data));
    }
}

#[tokio::test]
async fn the_admin_key_may_use_project_files_of_an_existing_project_only() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    upload(&app, "1", &key, "a.txt", b"a").await;
    let list = app.get("/projects/1/files", ADMIN_KEY).await.expect(200);
    assert_eq!(list["total"], 1);
    app.get("/projects/9/files", ADMIN_KEY)
        .await
        .expect_error(404);
    upload_raw(&app, "9", ADMIN_KEY, "x.txt", b"x")
        .await
        .reply()
        .expect_error(404);
    assert_eq!(blob_files(&app).len(), 1);
}

#[tokio::test]
async fn a_raw_upload_without_a_name_is_400() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    send(request(&app, Method::POST, "/projects/1/files/content", Some(&key)).body(b"x".to_vec()))
        .await
        .reply()
        .expect_error(400);
    assert!(blob_files(&app).is_empty());
}

#[tokio::test]
async fn a_multipart_body_without_a_file_part_is_422() {
    let app = spawn_app().await;
    let key = app.create_project("1").await;
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n"
    );
    send(
        request(
            &app,
            Method::POST,
            "/projects/1/files/content?name=x.txt",
            Some(&key),
        )
        .header("content-type", multipart_type())
        .body(body),
    )
    .await
    .reply()
    .expect_error(422);
    assert!(blob_files(&app).is_empty());
}

/// Peak resident memory of a process in MiB (VmHWM from /proc).
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_file_round_trips_through_the_server_binary_with_bounded_memory() {
    let server = ServerProcess::start(&[("ADMIN_API_KEY", ADMIN_KEY), ("RUST_LOG", "warn")]).await;
    let base = server.base.clone();
    let client = server.client.clone();
    let created = server
        .post("/projects", ADMIN_KEY, json!({"id": "big"}))
        .await
        .expect(201);
    let key = created["api_key"].as_str().unwrap().to_string();

    let data = bytes_of(1 << 30, 7);
    let expected = sha256_hex(&data);
    let res = client
        .post(format!("{base}/projects/big/files/content?name=big.bin"))
        .bearer_auth(&key)
        .body(data)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let file: serde_json::Value = res.json().await.unwrap();
    assert_eq!(file["checksum_sha256"], expected);
    assert_eq!(file["size_bytes"], 1u64 << 30);

    let id = file["id"].as_str().unwrap();
    let mut res = client
        .get(format!("{base}/projects/big/files/{id}/download"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = res.chunk().await.unwrap() {
        hasher.update(&chunk);
        n += chunk.len() as u64;
    }
    assert_eq!(n, 1 << 30);
    assert_eq!(hex::encode(hasher.finalize()), expected);

    // Streaming both ways: the server never held more than a small fraction of the file.
    let rss = peak_rss_mib(server.child.id());
    assert!(
        rss < 256.0,
        "server peak RSS {rss:.1} MiB for a 1 GiB round trip"
    );
}

/// A server whose blobs live in the catalog database, refusing objects over 4 KiB.
async fn spawn_database_backend() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.storage_backend = "database".into();
    config.database_blob_max_bytes = 4096;
    (spawn_app_with(config).await, dir)
}

#[tokio::test]
async fn the_database_backend_round_trips_files_with_ranges_and_keeps_no_blob_files() {
    let (app, _dir) = spawn_database_backend().await;
    let key = app.create_project("1").await;
    let data = bytes_of(3000, 11);
    let res = app
        .client
        .post(app.url("/projects/1/files/content?name=small.bin"))
        .bearer_auth(&key)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let file: serde_json::Value = res.json().await.unwrap();
    assert_eq!(file["checksum_sha256"], sha256_hex(&data));
    let id = file["id"].as_str().unwrap().to_string();

    let full = app
        .client
        .get(app.url(&format!("/projects/1/files/{id}/download")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), 200);
    assert_eq!(full.bytes().await.unwrap().as_ref(), data.as_slice());
    let part = app
        .client
        .get(app.url(&format!("/projects/1/files/{id}/download")))
        .bearer_auth(&key)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &data[100..200]);
    let blobs = app.data_dir.join("files/blobs");
    assert!(!blobs.exists() || std::fs::read_dir(&blobs).unwrap().count() == 0);

    app.delete(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect(204);
    let mut app = app;
    app.stop().await;
    let conn = duckdb::Connection::open(app.data_dir.join("metadata.duckdb")).unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM blob_data", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        left, 0,
        "deleting the last record removes the blob from the database"
    );
}

#[tokio::test]
async fn the_database_backend_refuses_objects_over_its_limit_with_413() {
    let (app, _dir) = spawn_database_backend().await;
    let key = app.create_project("1").await;
    let res = app
        .client
        .post(app.url("/projects/1/files/content?name=big.bin"))
        .bearer_auth(&key)
        .body(bytes_of(5000, 3))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 0);
}
