//! Health endpoints and the admin backend endpoints.

use serde_json::{json, Value};

use crate::helpers::*;

/// Runs the admin backend action `action` (init, remove); it must succeed.
async fn backend(app: &TestApp, action: &str) -> Value {
    app.post(&format!("/backend/{action}"), ADMIN_KEY, json!({}))
        .await
        .expect(200)
}

#[tokio::test]
async fn health_reports_healthy_storage_in_the_reference_shape() {
    let app = spawn_app().await;
    let res = app.get_without_key("/health").await;
    let body = res.expect(200);
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["storage_available"], true);
    assert!(body["version"].is_string());
    assert_eq!(body["details"]["metadata_db"], true);
}

#[tokio::test]
async fn healthz_answers_without_a_key() {
    let app = spawn_app().await;
    let body = app.get_without_key("/healthz").await.expect(200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_is_ready_when_free_space_is_above_the_minimum() {
    let app = spawn_app().await;
    let body = app.get_without_key("/readyz").await.expect(200);
    assert_eq!(body["status"], "ready");
    assert!(body["free_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn readyz_answers_503_with_the_reason_when_free_space_is_below_the_minimum() {
    let app = spawn_app_configured(|c| c.min_free_bytes = u64::MAX).await;
    let body = app.get_without_key("/readyz").await.expect_error(503);
    assert!(body["message"].as_str().unwrap().contains("MIN_FREE_BYTES"));
}

#[tokio::test]
async fn backend_init_creates_the_layout_and_reports_paths() {
    let app = spawn_app().await;
    std::fs::remove_dir_all(app.data_dir.join("snapshots")).unwrap();
    let body = backend(&app, "init").await;
    assert_eq!(body["success"], true);
    assert!(app.data_dir.join("snapshots").is_dir());
    let body = backend(&app, "remove").await;
    assert_eq!(body["success"], true);
}

#[tokio::test]
async fn backend_init_reports_the_reference_storage_paths_and_what_it_created() {
    let app = spawn_app().await;
    std::fs::remove_dir_all(app.data_dir.join("snapshots")).unwrap();
    let body = backend(&app, "init").await;
    let paths = body["storage_paths"].as_object().expect("storage_paths");
    let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "data_dir",
            "duckdb_dir",
            "files_dir",
            "snapshots_dir",
            "metadata_db"
        ],
        "{body}"
    );
    let path = |key: &str| std::path::PathBuf::from(paths[key].as_str().expect("a path string"));
    assert_eq!(path("duckdb_dir"), app.data_dir.join("duckdb"));
    assert_eq!(path("snapshots_dir"), app.data_dir.join("snapshots"));
    assert!(path("metadata_db").is_file(), "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("created snapshots_dir")
            && message.contains("already present: data_dir, duckdb_dir, files_dir"),
        "{message}"
    );

    // A second call creates nothing and says so.
    let again = backend(&app, "init").await;
    let message = again["message"].as_str().expect("message");
    assert!(
        message.contains("all directories were already present") && !message.contains("created"),
        "{message}"
    );
    assert_eq!(again["storage_paths"], body["storage_paths"]);
}

#[tokio::test]
async fn root_answers_with_the_service_name_version_and_links_without_a_key() {
    let app = spawn_app().await;
    let body = app.get_without_key("/").await.expect(200);
    assert_eq!(body["name"], "duckbank");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    let links = body["links"].as_object().expect("links");
    assert_eq!(links["health"], "/health", "{body}");
    // Every link leads somewhere real.
    for (name, link) in links {
        let path = link.as_str().expect("link path");
        let status = app.get_without_key(path).await.status;
        assert_eq!(status, 200, "link {name} -> {path}");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let res = app.get_without_key("/nope").await;
    assert!(res.headers.get("x-request-id").is_some());
    res.expect_error(404);
}

#[tokio::test]
async fn health_answers_from_background_checks_and_sees_a_repaired_layout() {
    let app = spawn_app_configured(|c| c.health_check_interval_secs = 1).await;
    let first = app.get_without_key("/health").await.expect(200);
    let checked_at = first["checked_at"]
        .as_str()
        .expect("checked_at")
        .to_string();
    // Probes between two rounds are served from the same snapshot: no disk or DuckDB work.
    let again = app.get_without_key("/health").await.expect(200);
    assert!(again["checked_at"].as_str() >= Some(checked_at.as_str()));

    std::fs::remove_dir_all(app.data_dir.join("files")).unwrap();
    let body = wait_for_status(&app, "/health", 503)
        .await
        .expect_code(503, "storage_unavailable");
    assert_eq!(
        body["details"]["unavailable"],
        json!(["files_dir"]),
        "{body}"
    );

    std::fs::create_dir_all(app.data_dir.join("files")).unwrap();
    let body = wait_for_status(&app, "/health", 200).await.expect(200);
    assert!(
        body["checked_at"].as_str() > Some(checked_at.as_str()),
        "{body}"
    );
}

#[tokio::test]
async fn readyz_reports_when_its_answer_was_checked() {
    let app = spawn_app().await;
    let body = app.get_without_key("/readyz").await.expect(200);
    assert!(body["checked_at"].as_str().is_some(), "{body}");
    assert!(body["free_bytes"].as_u64().is_some(), "{body}");
}
