//! Concurrent requests: creates and previews on different tables and on the same table.

use futures_util::future::join_all;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_different_tables_all_succeed() {
    let (app, key) = spawn_app_with_project().await;
    app.create_bucket("1", &key, "b").await;
    let statuses = create_all(&app, &key, (0..16).map(|i| serde_json::json!({"name": format!("t{i}"), "columns": [{"name": "id", "type": "INTEGER"}]}))).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let list = app
        .get("/projects/1/buckets/b/tables", &key)
        .await
        .expect(200);
    assert_eq!(list["total"], 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_the_same_table_succeed_exactly_once() {
    let (app, key) = spawn_app_with_project().await;
    app.create_bucket("1", &key, "b").await;
    let statuses = create_all(&app, &key, (0..12).map(|i| serde_json::json!({"name": "same", "columns": [{"name": format!("c{i}"), "type": "INTEGER"}]}))).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        11,
        "{statuses:?}"
    );
    let table = app
        .get("/projects/1/buckets/b/tables/same", &key)
        .await
        .expect(200);
    assert_eq!(table["columns"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_previews_of_one_and_many_tables_agree() {
    let (app, key) = spawn_app_with_project().await;
    app.create_bucket("1", &key, "b").await;
    for t in ["t0", "t1", "t2"] {
        app.create_table("1", &key, "b", t, &[("id", "INTEGER")], &[])
            .await;
    }
    let mut app = app;
    for (i, t) in ["t0", "t1", "t2"].iter().enumerate() {
        app = app
            .edit_table_file(
                "1",
                "b",
                t,
                &format!(
                    "INSERT INTO main.data SELECT * FROM range({})",
                    (i + 1) * 10
                ),
            )
            .await;
    }
    let previews = (0..60).map(|i| {
        let (app, key) = (&app, &key);
        async move {
            let t = i % 3;
            let body = app
                .get(&format!("/projects/1/buckets/b/tables/t{t}/preview"), key)
                .await
                .expect(200);
            (
                t,
                body["total_row_count"].as_u64().unwrap(),
                body["preview_row_count"].as_u64().unwrap(),
            )
        }
    });
    for (t, total, shown) in join_all(previews).await {
        assert_eq!(total, (t as u64 + 1) * 10);
        assert_eq!(shown, total);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_during_creates_and_deletes_never_fail_with_500() {
    let (app, key) = spawn_app_with_project().await;
    app.create_bucket("1", &key, "b").await;
    app.create_table("1", &key, "b", "stable", &[("id", "INTEGER")], &[])
        .await;
    let churn = async {
        for i in 0..8 {
            let name = format!("churn{i}");
            app.create_table("1", &key, "b", &name, &[("id", "INTEGER")], &[])
                .await;
            app.delete(&format!("/projects/1/buckets/b/tables/{name}"), &key)
                .await
                .expect(204);
        }
    };
    let reads = async {
        for _ in 0..40 {
            app.get("/projects/1/buckets/b/tables/stable/preview", &key)
                .await
                .expect(200);
            let list = app.get("/projects/1/buckets/b/tables", &key).await;
            assert_eq!(list.status, 200, "{}", list.body);
        }
    };
    tokio::join!(churn, reads);
}

/// Sends one table create per body, all at once, and returns the statuses.
async fn create_all(
    app: &TestApp,
    key: &str,
    bodies: impl Iterator<Item = serde_json::Value>,
) -> Vec<u16> {
    join_all(bodies.map(|body| async move {
        app.post("/projects/1/buckets/b/tables", key, body)
            .await
            .status
            .as_u16()
    }))
    .await
}
