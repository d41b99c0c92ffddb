//! Projects: provisioning, listing, updates, stats, deletion, persistence across restarts.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn creating_a_project_returns_201_with_a_one_time_key_and_reference_fields() {
    let app = spawn_app().await;
    let body = app
        .post(
            "/projects",
            ADMIN_KEY,
            json!({"id": "123", "name": "My Project", "settings": {"a": 1}}),
        )
        .await
        .expect(201);
    assert_eq!(body["id"], "123");
    assert_eq!(body["name"], "My Project");
    assert_eq!(body["status"], "active");
    assert_eq!(body["db_path"], "project_123");
    assert_eq!(body["settings"], json!({"a": 1}));
    assert_eq!(body["bucket_count"], 0);
    let key = body["api_key"].as_str().unwrap();
    assert!(key.starts_with("proj_123_admin_"));
    assert!(app.data_dir.join("duckdb/project_123").is_dir());

    let got = app.get("/projects/123", key).await.expect(200);
    assert!(got.get("api_key").is_none());
    assert_eq!(got["name"], "My Project");
}

#[tokio::test]
async fn db_path_is_relative_to_the_duckdb_dir_in_every_project_reply() {
    let app = spawn_app().await;
    let key = app.create_project("42").await;
    let init = app
        .post("/backend/init", ADMIN_KEY, json!({}))
        .await
        .expect(200);
    let duckdb_dir = std::path::PathBuf::from(
        init["storage_paths"]["duckdb_dir"]
            .as_str()
            .expect("duckdb_dir"),
    );
    let got = app.get("/projects/42", &key).await.expect(200);
    assert_eq!(got["db_path"], "project_42", "{got}");
    let db_path = got["db_path"].as_str().expect("db_path");
    assert!(
        duckdb_dir.join(db_path).is_dir(),
        "{}",
        duckdb_dir.display()
    );
    let updated = app
        .call(
            reqwest::Method::PUT,
            "/projects/42",
            Some(&key),
            Some(json!({"name": "renamed"})),
        )
        .await
        .expect(200);
    assert_eq!(updated["db_path"], "project_42", "{updated}");
    let list = app.get("/projects", ADMIN_KEY).await.expect(200);
    assert_eq!(list["projects"][0]["db_path"], "project_42", "{list}");
}

#[tokio::test]
async fn the_project_key_is_stored_only_as_an_argon2id_hash() {
    let mut app = spawn_app().await;
    let key = app.create_project("7").await;
    app.stop().await;
    let conn = duckdb::Connection::open(app.data_dir.join("metadata.duckdb")).unwrap();
    let (hash, prefix): (String, String) = conn
        .query_row(
            "SELECT hash, prefix FROM api_keys WHERE project_id = '7'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(!hash.contains(&key));
    assert!(key.starts_with(&prefix) && prefix.len() < key.len());
}

#[tokio::test]
async fn listing_projects_pages_in_id_order_with_a_total() {
    let app = spawn_app().await;
    for id in ["a", "b", "c"] {
        app.create_project(id).await;
    }
    let body = app
        .get("/projects?limit=2&offset=1", ADMIN_KEY)
        .await
        .expect(200);
    assert_eq!(body["total"], 3);
    let ids: Vec<&str> = body["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b", "c"]);
    app.get("/projects?limit=0", ADMIN_KEY)
        .await
        .expect_error(422);
}

#[tokio::test]
async fn updating_a_project_changes_name_and_settings() {
    let (app, key) = spawn_app_with_project().await;
    let body = app
        .call(
            reqwest::Method::PUT,
            "/projects/1",
            Some(&key),
            Some(json!({"name": "Renamed", "settings": {"x": true}})),
        )
        .await
        .expect(200);
    assert_eq!(body["name"], "Renamed");
    assert_eq!(body["settings"], json!({"x": true}));
    let body = app.get("/projects/1", ADMIN_KEY).await.expect(200);
    assert_eq!(body["name"], "Renamed");
}

#[tokio::test]
async fn creating_a_project_twice_is_a_conflict() {
    let app = spawn_app().await;
    app.create_project("1").await;
    app.post("/projects", ADMIN_KEY, json!({"id": "1"}))
        .await
        .expect_error(409);
}

#[tokio::test]
async fn stats_count_buckets_and_tables_and_measure_bytes() {
    let (app, key) = spawn_app_with_project().await;
    app.create_bucket("1", &key, "b1").await;
    app.create_bucket("1", &key, "b2").await;
    app.create_table("1", &key, "b1", "t", &[("id", "INTEGER")], &[])
        .await;
    let body = app.get("/projects/1/stats", &key).await.expect(200);
    assert_eq!(body["id"], "1");
    assert_eq!(body["bucket_count"], 2);
    assert_eq!(body["table_count"], 1);
    assert!(body["size_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn deleting_a_project_removes_its_directory_and_its_key() {
    let app = spawn_app().await;
    let key = app.project_with_table(&[("id", "INTEGER")], &[]).await;
    // Warm the key cache so deletion must invalidate it.
    app.get("/projects/1/buckets", &key).await.expect(200);
    app.delete("/projects/1", ADMIN_KEY).await.expect(204);
    assert!(!app.data_dir.join("duckdb/project_1").exists());
    app.get("/projects/1/buckets", &key).await.expect_error(401);
    app.get("/projects/1", ADMIN_KEY).await.expect_error(404);
    // The id can be provisioned again, with a new key.
    let again = app.create_project("1").await;
    assert_ne!(again, key);
    let body = app.get("/projects/1/buckets", &again).await.expect(200);
    assert_eq!(body["total"], 0);
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let app = spawn_app().await;
    let key = app
        .project_with_table(&[("id", "INTEGER"), ("v", "VARCHAR")], &["id"])
        .await;
    let app = app.restart().await;
    let body = app
        .get("/projects/1/buckets/b/tables/t", &key)
        .await
        .expect(200);
    assert_eq!(body["primary_key"], json!(["id"]));
    assert_eq!(body["columns"][1]["name"], "v");
}

#[tokio::test]
async fn files_left_by_a_crash_are_swept_at_start_up() {
    let mut app = spawn_app().await;
    let key = app.project_with_table(&[("id", "INTEGER")], &[]).await;
    app.stop().await;
    let bucket_dir = app.data_dir.join("duckdb/project_1/b");
    std::fs::write(bucket_dir.join("orphan.duckdb"), b"junk").unwrap();
    std::fs::create_dir_all(app.data_dir.join("duckdb/project_1/ghost")).unwrap();
    std::fs::create_dir_all(app.data_dir.join("duckdb/project_99")).unwrap();
    let app = app.restart().await;
    assert!(!bucket_dir.join("orphan.duckdb").exists());
    assert!(bucket_dir.join("t.duckdb").exists());
    assert!(!app.data_dir.join("duckdb/project_1/ghost").exists());
    assert!(!app.data_dir.join("duckdb/project_99").exists());
    app.get("/projects/1/buckets/b/tables/t", &key)
        .await
        .expect(200);
}
