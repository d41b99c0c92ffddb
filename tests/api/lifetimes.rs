//! No leftovers across a project's lifetimes: a project created again with a deleted one's id
//! sees none of its jobs or files, and a create that fails leaves no project whose one-time
//! key was lost.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;
use crate::table_data::{kv_csv, seed, setup_kv_table, T};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_created_again_sees_none_of_the_old_owners_jobs() {
    let (app, key) = setup_kv_table(true).await;
    seed(&app, &key, "t", &kv_csv(1..=20, "x")).await;
    let job = app
        .post(
            &format!("{T}/t/export?async=true"),
            &key,
            json!({ "format": "csv" }),
        )
        .await
        .expect(202);
    let id = job["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = app
            .get(&format!("/projects/1/jobs/{id}"), &key)
            .await
            .expect(200);
        if matches!(job["status"].as_str(), Some("success" | "error")) {
            break;
        }
        assert!(Instant::now() < deadline, "the job did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = app.get("/projects/1/jobs", &key).await.expect(200);
    assert_eq!(before["total"], 1, "{before}");

    app.delete("/projects/1", ADMIN_KEY).await.expect(204);
    let new_key = app.create_project("1").await;
    let after = app.get("/projects/1/jobs", &new_key).await.expect(200);
    assert_eq!(after["total"], 0, "{after}");
    assert_eq!(after["jobs"], json!([]), "{after}");
    app.get(&format!("/projects/1/jobs/{id}"), &new_key)
        .await
        .expect_code(404, "job_not_found");
    app.get(&format!("/projects/1/jobs/{id}"), ADMIN_KEY)
        .await
        .expect_code(404, "job_not_found");
}

#[tokio::test]
async fn a_project_whose_directory_cannot_be_made_is_not_created_and_can_be_created_later() {
    let app = spawn_app().await;
    // A plain file where the project's directory must go: making the directory fails.
    let blocker = app.data_dir.join("duckdb/project_7");
    std::fs::write(&blocker, b"in the way").unwrap();
    let refused = app.post("/projects", ADMIN_KEY, json!({ "id": "7" })).await;
    refused.expect_error(500);
    // The catalog did not commit a project whose key nobody received.
    app.get("/projects/7", ADMIN_KEY)
        .await
        .expect_code(404, "project_not_found");

    std::fs::remove_file(&blocker).unwrap();
    let key = app.create_project("7").await;
    app.get("/projects/7", &key).await.expect(200);
    assert!(blocker.is_dir());
}

#[tokio::test]
async fn a_new_project_never_starts_with_the_files_a_former_one_left() {
    let app = spawn_app().await;
    // What a delete that could not remove its directory leaves behind.
    let left = app.data_dir.join("duckdb/project_6/b/t.duckdb");
    std::fs::create_dir_all(left.parent().unwrap()).unwrap();
    let old = bytes_of(4_096, 5);
    std::fs::write(&left, &old).unwrap();

    let key = app.create_project("6").await;
    let stats = app.get("/projects/6/stats", &key).await.expect(200);
    assert_eq!(stats["size_bytes"], 0, "{stats}");
    assert!(!left.exists());
    let listed = app.get("/admin/quarantine", ADMIN_KEY).await.expect(200);
    assert_eq!(listed["total"], 1, "{listed}");
    let entry = &listed["entries"][0];
    assert_eq!(entry["path"], "duckdb/project_6", "{listed}");
    assert_eq!(entry["kind"], "dir", "{listed}");
    assert_eq!(entry["size_bytes"], old.len(), "{listed}");
    let stamp = entry["quarantined_at"].as_str().unwrap();
    let moved = app
        .data_dir
        .join("quarantine")
        .join(stamp)
        .join("duckdb/project_6/b/t.duckdb");
    assert_eq!(std::fs::read(moved).unwrap(), old);
}
