//! The periodic cleaner: work files of imports and exports and stored blobs no catalog row
//! references are removed once unchanged for the upload TTL; referenced blobs stay.

use super::*;

/// A server cleaning every second with a two-second upload TTL, and project 1.
async fn app_cleaning_fast() -> (TestApp, String) {
    app_with_project_configured(|c| {
        c.cleanup_interval_secs = 1;
        c.upload_ttl_secs = 2;
    })
    .await
}

/// Writes `data` at `path`, creating its directories.
fn plant(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, data).expect("plant a file");
}

/// Where the local backend keeps the blob of `sha`.
fn blob_path(app: &TestApp, sha: &str) -> PathBuf {
    app.data_dir
        .join("files/blobs")
        .join(&sha[..2])
        .join(&sha[2..4])
        .join(sha)
}

/// Polls up to thirty seconds for `path` to disappear.
async fn wait_gone(path: &Path) {
    for _ in 0..1200 {
        if !path.exists() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{} was not removed", path.display());
}

#[tokio::test]
async fn the_cleaner_removes_stale_work_files_and_unreferenced_blobs_but_keeps_referenced_ones() {
    let (app, key) = app_cleaning_fast().await;
    let data = bytes_of(5000, 41);
    let file = upload(&app, "1", &key, "kept.bin", &data).await;
    let kept = blob_path(&app, &sha256_hex(&data));
    assert!(kept.exists());
    // What a crash between storing a blob and committing its row leaves, and what an export
    // whose request never finished leaves in the work directory.
    let orphan_data = bytes_of(3000, 42);
    let orphan = blob_path(&app, &sha256_hex(&orphan_data));
    plant(&orphan, &orphan_data);
    let work = app.data_dir.join("files/work/0123456789abcdef.parquet");
    plant(&work, b"half an export");
    // Not named like a blob: not the cleaner's to judge.
    let stranger = app.data_dir.join("files/blobs/README");
    plant(&stranger, b"an operator's note");

    wait_gone(&orphan).await;
    wait_gone(&work).await;
    assert!(kept.exists(), "a referenced blob was removed");
    assert!(stranger.exists(), "a file that is no blob was removed");
    assert_downloads(&app, "1", &key, &file, &data).await;
    // The same content uploaded again is stored again.
    let again = upload(&app, "1", &key, "again.bin", &orphan_data).await;
    assert_downloads(&app, "1", &key, &again, &orphan_data).await;
}

/// The number of `blob_data` rows holding `sha` in the stopped server's catalog.
fn stored_in_catalog(app: &TestApp, sha: &str) -> i64 {
    let conn = duckdb::Connection::open(app.data_dir.join("metadata.duckdb")).expect("catalog");
    conn.query_row(
        "SELECT count(*) FROM blob_data WHERE sha256 = ?",
        [sha],
        |r| r.get(0),
    )
    .expect("count")
}

#[tokio::test]
async fn the_cleaner_removes_unreferenced_blobs_of_the_database_backend() {
    let in_database = |c: &mut Config| {
        c.storage_backend = duckbank::config::StorageBackend::Database;
        c.cleanup_interval_secs = 1;
    };
    let (mut app, key) = app_with_project_configured(in_database).await;
    let data = bytes_of(2000, 43);
    let file = upload(&app, "1", &key, "kept.bin", &data).await;
    // A crash between storing the blob and committing its row, replayed by hand.
    app.stop().await;
    let orphan_data = bytes_of(1000, 44);
    let orphan = sha256_hex(&orphan_data);
    {
        let conn = duckdb::Connection::open(app.data_dir.join("metadata.duckdb")).expect("catalog");
        conn.execute(
            "INSERT INTO blob_data VALUES (?, ?)",
            duckdb::params![orphan, orphan_data],
        )
        .expect("plant an orphan blob");
    }
    // A round runs at start and every second; the catalog can only be read with the server
    // stopped, so look between runs.
    let mut gone = false;
    for _ in 0..20 {
        app = app.restart_configured(in_database).await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        app.stop().await;
        if stored_in_catalog(&app, &orphan) == 0 {
            gone = true;
            break;
        }
    }
    assert!(gone, "the unreferenced blob is still stored");
    assert_eq!(stored_in_catalog(&app, &sha256_hex(&data)), 1);
    let app = app.restart_configured(in_database).await;
    assert_downloads(&app, "1", &key, &file, &data).await;
}
