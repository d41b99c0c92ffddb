//! The S3 blob backend against a real S3-compatible server (`s3s-fs`, installed by `.ci/run`)
//! on 127.0.0.1. Without the binary: skipped with a printed reason locally, failed in CI.

use sha2::{Digest, Sha256};

use crate::helpers::*;

const ACCESS_KEY: &str = "duckbank-test-access";
const SECRET_KEY: &str = "duckbank-test-secret";
const BUCKET: &str = "duckbank-blobs";

/// The s3s-fs binary: on PATH or in cargo's bin dir.
fn s3s_fs() -> Option<std::path::PathBuf> {
    let cargo_bin = std::env::var("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        })
        .join("bin/s3s-fs");
    if cargo_bin.exists() {
        return Some(cargo_bin);
    }
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| std::path::Path::new(d).join("s3s-fs"))
        .find(|p| p.exists())
}

struct S3Server {
    child: std::process::Child,
    root: tempfile::TempDir,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_s3() -> Option<S3Server> {
    let Some(bin) = s3s_fs() else {
        skip_outside_ci(
            "s3s-fs is not installed (.ci/run installs it; cargo install s3s-fs@0.14.1 --features binary)",
        );
        return None;
    };
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
    let port = free_port();
    let child = std::process::Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start s3s-fs");
    let endpoint = format!("http://127.0.0.1:{port}");
    let server = S3Server {
        child,
        root,
        endpoint,
    };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(server);
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("s3s-fs did not start");
}

async fn spawn_app_on_s3(s3: &S3Server) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.storage_backend = duckbank::config::StorageBackend::S3;
    config.s3_endpoint = Some(s3.endpoint.clone());
    config.s3_bucket = Some(BUCKET.into());
    config.s3_access_key_id = Some(duckbank::config::Secret::new(ACCESS_KEY));
    config.s3_secret_access_key = Some(duckbank::config::Secret::new(SECRET_KEY));
    (spawn_app_with(config).await, dir)
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sha(d: &[u8]) -> String {
    hex::encode(Sha256::digest(d))
}

async fn upload(app: &TestApp, key: &str, name: &str, body: Vec<u8>) -> serde_json::Value {
    let res = app
        .client
        .post(app.url(&format!("/projects/1/files/content?name={name}")))
        .bearer_auth(key)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_backend_stores_reads_ranges_and_deletes_blobs_on_a_real_s3_server() {
    let Some(s3) = start_s3().await else { return };
    let (app, _dir) = spawn_app_on_s3(&s3).await;
    let key = app.create_project("1").await;
    let body = data(100_000, 5);
    let file = upload(&app, &key, "small.bin", body.clone()).await;
    let hash = sha(&body);
    assert_eq!(file["checksum_sha256"], hash);
    let object = blob_object(s3.root.path(), &hash);
    assert!(object.exists(), "the blob is an object in the S3 bucket");
    assert!(
        !app.data_dir.join("files/blobs").exists()
            || std::fs::read_dir(app.data_dir.join("files/blobs"))
                .unwrap()
                .count()
                == 0
    );

    let id = file["id"].as_str().unwrap().to_string();
    let url = app.url(&format!("/projects/1/files/{id}/download"));
    let full = app.client.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(full.bytes().await.unwrap().as_ref(), body.as_slice());
    let part = app
        .client
        .get(&url)
        .bearer_auth(&key)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &body[1000..2000]);

    app.delete(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect(204);
    assert!(
        !object.exists(),
        "deleting the last record deletes the object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blobs_go_to_s3_as_multipart_uploads_and_deduplicate() {
    let Some(s3) = start_s3().await else { return };
    let (app, _dir) = spawn_app_on_s3(&s3).await;
    let key = app.create_project("1").await;
    let body = data(20 * 1024 * 1024 + 123, 9);
    let hash = sha(&body);
    let first = upload(&app, &key, "big.bin", body.clone()).await;
    let second = upload(&app, &key, "copy.bin", body.clone()).await;
    assert_eq!(first["checksum_sha256"], hash);
    assert_eq!(second["checksum_sha256"], hash);
    let id = first["id"].as_str().unwrap();
    let got = download(&app, &key, id).await;
    assert_eq!(sha(&got), hash);
    let object = blob_object(s3.root.path(), &hash);
    assert_eq!(std::fs::metadata(&object).unwrap().len(), body.len() as u64);
    app.delete(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect(204);
    assert!(object.exists(), "the second record still holds the content");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_read_from_and_exports_write_to_the_s3_backend() {
    let Some(s3) = start_s3().await else { return };
    let (app, _dir) = spawn_app_on_s3(&s3).await;
    let key = app
        .project_with_table(&[("id", "BIGINT"), ("v", "VARCHAR")], &["id"])
        .await;
    let mut csv = String::from("id,v\n");
    for i in 1..=2000 {
        csv.push_str(&format!("{i},value {i}\n"));
    }
    let file = upload(&app, &key, "t.csv", csv.clone().into_bytes()).await;
    let done = app
        .post(
            "/projects/1/buckets/b/tables/t/import/file",
            &key,
            serde_json::json!({ "file_id": file["id"] }),
        )
        .await
        .expect(200);
    assert_eq!(done["table_rows_after"], 2000);

    let exported = app
        .post(
            "/projects/1/buckets/b/tables/t/export",
            &key,
            serde_json::json!({ "format": "csv", "order_by": "id" }),
        )
        .await
        .expect(200);
    let hash = exported["file"]["checksum_sha256"].as_str().expect("sha");
    let object = blob_object(s3.root.path(), hash);
    assert!(object.exists(), "the export is an object in the S3 bucket");
    let id = exported["file_id"].as_str().expect("file id");
    let bytes = download(&app, &key, id).await;
    assert_eq!(String::from_utf8_lossy(&bytes), csv);
    // Nothing of either stays in the work directory.
    let work = app.data_dir.join("files/work");
    let left: Vec<_> = std::fs::read_dir(&work)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in files/work: {left:?}");
}

/// Downloads the content of file `id`.
async fn download(app: &TestApp, key: &str, id: &str) -> Vec<u8> {
    app.client
        .get(app.url(&format!("/projects/1/files/{id}/download")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// Where the S3 backend keeps the blob with this SHA-256 inside the server's bucket directory.
fn blob_object(bucket_root: &std::path::Path, hash: &str) -> std::path::PathBuf {
    bucket_root
        .join(BUCKET)
        .join(format!("blobs/{}/{}/{hash}", &hash[..2], &hash[2..4]))
}

/// The objects under `snapshots/project_1/` in the S3 bucket.
fn snapshot_objects(bucket_root: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(bucket_root.join(BUCKET).join("snapshots/project_1"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".parquet"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_on_the_s3_backend_live_in_the_bucket_and_are_read_through_a_local_cache() {
    let Some(s3) = start_s3().await else { return };
    let (app, _dir) = spawn_app_on_s3(&s3).await;
    let key = app
        .project_with_table(&[("id", "INTEGER"), ("name", "VARCHAR")], &["id"])
        .await;
    let csv: String = std::iter::once("id,name\n".to_string())
        .chain((1..=300).map(|i| format!("{i},n{i}\n")))
        .collect();
    let file = upload(&app, &key, "t.csv", csv.into_bytes()).await;
    app.post(
        "/projects/1/buckets/b/tables/t/import/file",
        &key,
        serde_json::json!({ "file_id": file["id"] }),
    )
    .await
    .expect(200);
    let snapshots = "/projects/1/branches/default/snapshots";
    let taken = app
        .post(
            snapshots,
            &key,
            serde_json::json!({"bucket": "b", "table": "t"}),
        )
        .await
        .expect(201);
    let id = taken["id"].as_str().expect("snapshot id").to_string();
    assert_eq!(
        snapshot_objects(s3.root.path()),
        vec![format!("{id}.parquet")],
        "the snapshot is an object in the S3 bucket"
    );

    // The local copy is only a cache: without it, time travel and restore fetch the object.
    let cached = app
        .data_dir
        .join(format!("snapshots/project_1/{id}.parquet"));
    std::fs::remove_file(&cached).expect("a cached copy after the snapshot was taken");
    let preview = app
        .get(
            &format!("/projects/1/buckets/b/tables/t/preview?snapshot={id}&limit=5&order_by=id"),
            &key,
        )
        .await
        .expect(200);
    assert_eq!(
        preview["rows"].as_array().map(Vec::len),
        Some(5),
        "{preview}"
    );
    assert!(cached.is_file(), "the read cached the snapshot again");
    std::fs::remove_file(&cached).expect("cached copy");
    app.call(
        reqwest::Method::DELETE,
        "/projects/1/buckets/b/tables/t/rows",
        Some(&key),
        Some(serde_json::json!({"where_clause": "id > 10"})),
    )
    .await
    .expect(200);
    let restored = app
        .post(
            &format!("{snapshots}/{id}/restore"),
            &key,
            serde_json::json!({}),
        )
        .await
        .expect(200);
    assert_eq!(restored["row_count"], 300, "{restored}");

    // Snapshot bytes count toward the project's size although the cache may be empty.
    let size = taken["size_bytes"].as_u64().expect("size_bytes");
    std::fs::remove_file(&cached).expect("cached copy");
    let stats = app.get("/projects/1/stats", ADMIN_KEY).await.expect(200);
    assert!(
        stats["size_bytes"].as_u64().expect("size") >= size,
        "{stats} vs {size}"
    );

    // Deleting the snapshot deletes the object; a read of it is then 404.
    app.call(
        reqwest::Method::DELETE,
        &format!("{snapshots}/{id}"),
        Some(&key),
        None,
    )
    .await
    .expect(204);
    assert!(snapshot_objects(s3.root.path()).is_empty());
    app.get(
        &format!("/projects/1/buckets/b/tables/t/preview?snapshot={id}"),
        &key,
    )
    .await
    .expect(404);

    // Deleting the project deletes its remaining snapshot objects.
    app.post(
        snapshots,
        &key,
        serde_json::json!({"bucket": "b", "table": "t"}),
    )
    .await
    .expect(201);
    assert_eq!(snapshot_objects(s3.root.path()).len(), 1);
    app.call(
        reqwest::Method::DELETE,
        "/projects/1",
        Some(ADMIN_KEY),
        None,
    )
    .await
    .expect(204);
    assert!(snapshot_objects(s3.root.path()).is_empty());
}
