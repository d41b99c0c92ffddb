//! Start-up never deletes what it does not understand: unknown table files and directories
//! move to `DATA_DIR/quarantine/<timestamp>/` byte for byte and are listed by
//! `GET /admin/quarantine`; after a catalog load that skipped rows nothing moves at all.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::helpers::*;

/// The timestamp directories under `DATA_DIR/quarantine`.
fn stamp_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(data_dir.join("quarantine"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// Writes `bytes` at `path` under the data dir, creating its parents.
fn plant(data_dir: &Path, path: &str, bytes: &[u8]) {
    let path = data_dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn unknown_table_files_and_project_directories_move_to_the_quarantine_byte_for_byte() {
    let mut app = spawn_app().await;
    let key = app.project_with_table(&[("id", "INTEGER")], &[]).await;
    app.stop().await;
    let stray = bytes_of(10_000, 1);
    let (old_table, old_notes) = (bytes_of(3_000, 2), b"kept by an operator".to_vec());
    plant(&app.data_dir, "duckdb/project_1/b/stray.duckdb", &stray);
    plant(&app.data_dir, "duckdb/project_42/old/t.duckdb", &old_table);
    plant(&app.data_dir, "duckdb/project_42/notes.txt", &old_notes);

    let app = app.restart().await;
    let d = &app.data_dir;
    assert!(!d.join("duckdb/project_1/b/stray.duckdb").exists());
    assert!(!d.join("duckdb/project_42").exists());
    let stamps = stamp_dirs(d);
    assert_eq!(stamps.len(), 1, "{stamps:?}");
    let q = &stamps[0];
    let read = |rel: &str| std::fs::read(q.join(rel)).unwrap();
    assert_eq!(read("duckdb/project_1/b/stray.duckdb"), stray);
    assert_eq!(read("duckdb/project_42/old/t.duckdb"), old_table);
    assert_eq!(read("duckdb/project_42/notes.txt"), old_notes);
    // What the catalog knows stayed.
    app.get("/projects/1/buckets/b/tables/t", &key)
        .await
        .expect(200);

    let listed = app.get("/admin/quarantine", ADMIN_KEY).await.expect(200);
    let stamp = q.file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(listed["total"], 2, "{listed}");
    assert_eq!(
        listed["entries"],
        json!([
            { "quarantined_at": stamp, "path": "duckdb/project_1/b/stray.duckdb",
              "kind": "file", "size_bytes": 10_000 },
            { "quarantined_at": stamp, "path": "duckdb/project_42",
              "kind": "dir", "size_bytes": 3_000 + old_notes.len() },
        ]),
        "{listed}"
    );
    // Another restart finds nothing new and lists the same.
    let app = app.restart().await;
    assert_eq!(stamp_dirs(&app.data_dir).len(), 1);
    let again = app.get("/admin/quarantine", ADMIN_KEY).await.expect(200);
    assert_eq!(again, listed);
}

#[tokio::test]
async fn the_quarantine_list_needs_the_admin_key() {
    let (app, key) = spawn_app_with_project().await;
    app.get("/admin/quarantine", &key)
        .await
        .expect_code(403, "forbidden");
    app.get_without_key("/admin/quarantine")
        .await
        .expect_error(401);
    let empty = app.get("/admin/quarantine", ADMIN_KEY).await.expect(200);
    assert_eq!(empty, json!({ "entries": [], "total": 0 }));
}

#[tokio::test]
async fn after_a_catalog_load_that_skipped_a_row_start_up_moves_nothing_and_says_why() {
    let server = ServerProcess::start(&[("ADMIN_API_KEY", ADMIN_KEY), ("RUST_LOG", "warn")]).await;
    let key: Value = server
        .post("/projects", ADMIN_KEY, json!({ "id": "1" }))
        .await
        .expect(201);
    let key = key["api_key"].as_str().unwrap().to_string();
    server
        .post("/projects/1/buckets", &key, json!({ "name": "b" }))
        .await
        .expect(201);
    let mut server = server;
    server.stop();
    let data_dir = server.dir().join("data");
    let stray = bytes_of(5_000, 3);
    plant(&data_dir, "duckdb/project_1/b/stray.duckdb", &stray);
    plant(&data_dir, "duckdb/project_7/b/t.duckdb", &stray);
    {
        // A row a later, stricter name rule refuses (as a restored older catalog might hold).
        let conn = duckdb::Connection::open(data_dir.join("metadata.duckdb")).unwrap();
        conn.execute_batch(
            "INSERT INTO projects VALUES ('bad id', 'old', NULL, 'active', now(), now())",
        )
        .unwrap();
    }

    let server = server.restart().await;
    assert_eq!(
        std::fs::read(data_dir.join("duckdb/project_1/b/stray.duckdb")).unwrap(),
        stray
    );
    assert_eq!(
        std::fs::read(data_dir.join("duckdb/project_7/b/t.duckdb")).unwrap(),
        stray
    );
    assert!(stamp_dirs(&data_dir).is_empty());
    let listed = server.get("/admin/quarantine", ADMIN_KEY).await.expect(200);
    assert_eq!(listed["total"], 0, "{listed}");
    let logs = server.logs();
    assert!(
        logs.contains("skipped rows") && logs.contains("projects: 1"),
        "{logs}"
    );
    // The rest of the catalog serves as before.
    server.get("/projects/1/buckets/b", &key).await.expect(200);
}
