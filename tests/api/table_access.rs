//! Who may move data in and out of tables, and what concurrent readers see: keys and projects,
//! linked and read-only buckets, and previews of a table while it is being reloaded.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::table_data::{import, kv_csv, seed, setup, upload, upload_to, T};

async fn kv(app: &TestApp, project: &str, key: &str, bucket: &str, name: &str) {
    app.create_table(
        project,
        key,
        bucket,
        name,
        &[("id", "BIGINT"), ("v", "VARCHAR")],
        &["id"],
    )
    .await;
}

#[tokio::test]
async fn data_routes_need_the_projects_key() {
    let (app, key) = setup().await;
    kv(&app, "1", &key, "b", "t").await;
    let other = app.create_project("2").await;
    let file = upload(&app, &key, "a.csv", kv_csv(1..=3, "a").as_bytes()).await;
    let routes: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (
            reqwest::Method::POST,
            format!("{T}/t/import/file"),
            Some(json!({ "file_id": file })),
        ),
        (
            reqwest::Method::POST,
            format!("{T}/t/export"),
            Some(json!({})),
        ),
        (
            reqwest::Method::GET,
            format!("{T}/t/export?format=csv"),
            None,
        ),
        (reqwest::Method::POST, format!("{T}/t/profile"), None),
        (
            reqwest::Method::POST,
            format!("{T}/t/columns"),
            Some(json!({ "name": "x", "type": "INTEGER" })),
        ),
        (
            reqwest::Method::DELETE,
            format!("{T}/t/rows"),
            Some(json!({ "where_clause": "id = 1" })),
        ),
        (
            reqwest::Method::POST,
            "/projects/1/buckets/b/tables/from-file".to_string(),
            Some(json!({ "name": "n", "file_id": file })),
        ),
        (reqwest::Method::GET, "/projects/1/jobs".to_string(), None),
    ];
    for (method, path, body) in routes {
        let none = app.call(method.clone(), &path, None, body.clone()).await;
        assert_eq!(none.status.as_u16(), 401, "{method} {path} without a key");
        let wrong = app
            .call(method.clone(), &path, Some(&other), body.clone())
            .await;
        assert_eq!(
            wrong.status.as_u16(),
            403,
            "{method} {path} with another project's key: {}",
            wrong.body
        );
    }
    // Nothing happened to the table meanwhile.
    let t = app.get(&format!("{T}/t"), &key).await.expect(200);
    assert_eq!(t["row_count"], 0);
    assert_eq!(t["columns"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn another_projects_file_cannot_be_imported() {
    let (app, key) = setup().await;
    kv(&app, "1", &key, "b", "t").await;
    let other = app.create_project("2").await;
    let theirs = upload_to(&app, "2", &other, "a.csv", kv_csv(1..=3, "a").as_bytes()).await;
    import(&app, &key, "t", json!({ "file_id": theirs }))
        .await
        .expect_error(404);
}

#[tokio::test]
async fn linked_and_read_only_buckets_export_but_refuse_writes() {
    let (app, key_a, key_b) = spawn_app_with_two_projects().await;
    app.create_bucket("1", &key_a, "b").await;
    kv(&app, "1", &key_a, "b", "t").await;
    seed(&app, &key_a, "t", &kv_csv(1..=5, "a")).await;
    app.share_bucket("1", &key_a, "b", "2").await.expect(200);
    app.link_bucket("2", &key_b, "linked", ("1", "b"))
        .await
        .expect(201);

    // B exports through its link: the file is B's, with A's rows.
    let exported = app
        .post(
            "/projects/2/buckets/linked/tables/t/export",
            &key_b,
            json!({ "format": "csv", "order_by": "id" }),
        )
        .await
        .expect(200);
    assert_eq!(exported["rows_exported"], 5);
    let id = exported["file_id"].as_str().expect("file id");
    app.get(&format!("/projects/2/files/{id}"), &key_b)
        .await
        .expect(200);
    app.get(&format!("/projects/1/files/{id}"), &key_a)
        .await
        .expect_error(404);
    let profile = app
        .post(
            "/projects/2/buckets/linked/tables/t/profile",
            &key_b,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(profile["row_count"], 5);

    // Writes through the link are refused and change nothing.
    let file_b = upload_to(&app, "2", &key_b, "b.csv", kv_csv(1..=9, "b").as_bytes()).await;
    app.post(
        "/projects/2/buckets/linked/tables/t/import/file",
        &key_b,
        json!({ "file_id": file_b }),
    )
    .await
    .expect_error(403);
    app.call(
        reqwest::Method::DELETE,
        "/projects/2/buckets/linked/tables/t/rows",
        Some(&key_b),
        Some(json!({ "where_clause": "TRUE" })),
    )
    .await
    .expect_error(403);
    app.post(
        "/projects/2/buckets/linked/tables/t/columns",
        &key_b,
        json!({ "name": "x", "type": "INTEGER" }),
    )
    .await
    .expect_error(403);

    // A read-only grant refuses A's own writes too, until it is revoked.
    app.post("/projects/1/buckets/b/grant-readonly", &key_a, json!({}))
        .await
        .expect(200);
    let file_a = upload(&app, &key_a, "c.csv", kv_csv(1..=9, "c").as_bytes()).await;
    import(&app, &key_a, "t", json!({ "file_id": file_a }))
        .await
        .expect_error(403);
    app.delete("/projects/1/buckets/b/grant-readonly", &key_a)
        .await
        .expect(204);
    let done = import(&app, &key_a, "t", json!({ "file_id": file_a }))
        .await
        .expect(200);
    assert_eq!(done["table_rows_after"], 9);
}

/// Ids and count of one preview: the table's rows must be all old or all new.
async fn observe(app: &TestApp, key: &str) -> (u64, Vec<String>) {
    let body = app
        .get(&format!("{T}/t/preview?limit=10000&order_by=id"), key)
        .await
        .expect(200);
    let values: Vec<String> = body["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r["v"]
                        .as_str()
                        .unwrap_or("")
                        .chars()
                        .next()
                        .unwrap_or('?')
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    (body["total_row_count"].as_u64().unwrap_or(0), values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_during_a_reload_sees_the_old_or_the_new_rows_never_a_mix() {
    let (app, key) = setup().await;
    kv(&app, "1", &key, "b", "t").await;
    seed(&app, &key, "t", &kv_csv(1..=1000, "o")).await;
    let big = upload(&app, &key, "new.csv", kv_csv(1..=300_000, "n").as_bytes()).await;
    assert_eq!(observe(&app, &key).await.0, 1000);

    let reload = {
        let (client, url, key) = (
            app.client.clone(),
            app.url(&format!("{T}/t/import/file")),
            key.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&json!({ "file_id": big }))
                .send()
                .await
                .expect("import")
                .status()
                .as_u16()
        })
    };
    let mut seen = std::collections::BTreeSet::new();
    // At least one preview runs after the reload was started, however fast the machine loads.
    loop {
        let (total, values) = observe(&app, &key).await;
        let kinds: std::collections::BTreeSet<&String> = values.iter().collect();
        assert_eq!(
            kinds.len(),
            1,
            "a preview mixed old and new rows: {kinds:?}"
        );
        match kinds.iter().next().map(|s| s.as_str()) {
            Some("o") => assert_eq!(total, 1000),
            Some("n") => assert_eq!(total, 300_000),
            other => panic!("unexpected rows {other:?}"),
        }
        seen.insert(total);
        if reload.is_finished() {
            break;
        }
    }
    assert_eq!(reload.await.expect("import task"), 200);
    let (total, values) = observe(&app, &key).await;
    assert_eq!(total, 300_000);
    assert!(values.iter().all(|v| v == "n"));
    // On a loaded machine the reload may finish before the first preview; when previews did run
    // during it, they saw only whole states (checked above).
    if !seen.contains(&1000) {
        eprintln!(
            "note: the reload finished before the first preview; only the end state was seen"
        );
    }
}

#[tokio::test]
async fn a_streamed_export_can_be_parquet_and_refuses_gzip_csv() {
    let (app, key) = setup().await;
    kv(&app, "1", &key, "b", "t").await;
    seed(&app, &key, "t", &kv_csv(1..=500, "a")).await;
    let res = app
        .client
        .get(app.url(&format!(
            "{T}/t/export?format=parquet&compression=zstd&order_by=id"
        )))
        .bearer_auth(&key)
        .send()
        .await
        .expect("stream");
    assert_eq!(res.status().as_u16(), 200);
    let bytes = res.bytes().await.expect("body");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("t.parquet");
    std::fs::write(&path, &bytes).expect("write");
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    let (n, last): (i64, String) = conn
        .query_row(
            &format!(
                "SELECT count(*), max(v) FROM read_parquet('{}')",
                path.display()
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("read parquet");
    assert_eq!((n, last.as_str()), (500, "a99"));

    app.get(&format!("{T}/t/export?format=csv&compression=gzip"), &key)
        .await
        .expect_error(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_a_streamed_export_releases_the_table() {
    let (app, key) = setup().await;
    kv(&app, "1", &key, "b", "t").await;
    seed(&app, &key, "t", &kv_csv(1..=400_000, "a")).await;
    for _ in 0..3 {
        let mut res = app
            .client
            .get(app.url(&format!("{T}/t/export?format=csv")))
            .bearer_auth(&key)
            .send()
            .await
            .expect("stream");
        assert_eq!(res.status().as_u16(), 200);
        let first = res.chunk().await.expect("chunk").expect("some bytes");
        assert!(first.starts_with(b"id,v\n"));
        drop(res);
    }
    // The exports stopped: a reload (which needs the table exclusively) goes through.
    let file = upload(&app, &key, "b.csv", kv_csv(1..=10, "b").as_bytes()).await;
    let reload = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        import(&app, &key, "t", json!({ "file_id": file })),
    )
    .await
    .expect("the table stayed locked after the clients left");
    assert_eq!(reload.expect(200)["table_rows_after"], 10);
    // No pipe is left behind in the work directory.
    let work = app.data_dir.join("files/work");
    let mut leftovers = Vec::new();
    for _ in 0..100 {
        leftovers = std::fs::read_dir(&work)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        if leftovers.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(leftovers.is_empty(), "left in files/work: {leftovers:?}");
}
