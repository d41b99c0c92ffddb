//! Files at scale and on other stores: 64 MiB and 1 GiB round trips (the latter through the
//! server binary with bounded memory) and the database blob backend; not the API details.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_round_trips_with_a_matching_sha256() {
    let (app, key) = spawn_app_with_project().await;
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

/// A server whose blobs live in the catalog database, refusing objects over 4 KiB; project 1.
async fn app_on_database_backend() -> (TestApp, String) {
    app_with_project_configured(|c| {
        c.storage_backend = duckbank::config::StorageBackend::Database;
        c.database_blob_max_bytes = 4096;
    })
    .await
}

#[tokio::test]
async fn the_database_backend_round_trips_files_with_ranges_and_keeps_no_blob_files() {
    let (mut app, key) = app_on_database_backend().await;
    let data = bytes_of(3000, 11);
    let file = upload(&app, "1", &key, "small.bin", &data).await;
    assert_eq!(file["checksum_sha256"], sha256_hex(&data));
    let id = file["id"].as_str().unwrap().to_string();

    let full = download(&app, "1", &key, &id, &[]).await;
    full.expect_status(200);
    assert_eq!(full.bytes, data);
    let part = download(&app, "1", &key, &id, &[("Range", "bytes=100-199")]).await;
    part.expect_status(206);
    assert_eq!(part.bytes, &data[100..200]);
    let blobs = app.data_dir.join("files/blobs");
    assert!(!blobs.exists() || std::fs::read_dir(&blobs).unwrap().count() == 0);

    app.delete(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect(204);
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
    let (app, key) = app_on_database_backend().await;
    upload_raw(&app, "1", &key, "big.bin", &bytes_of(5000, 3))
        .await
        .reply()
        .expect_error(413);
    assert_eq!(file_total(&app, &key).await, 0);
}
