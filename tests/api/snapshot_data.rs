//! Snapshots over HTTP: manual create/list/get/delete, restore (over, after a drop, elsewhere),
//! auto-snapshots per trigger and their refusal path, time travel, retention, project delete.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{rows_csv, spawn_app, spawn_app_configured, JsonClient, TestApp, ADMIN_KEY};

const SNAPSHOTS: &str = "/projects/1/branches/default/snapshots";
const T: &str = "/projects/1/branches/default/buckets/b/tables/t";
const TABLE_SETTINGS: &str = "/projects/1/branches/default/buckets/b/tables/t/settings/snapshots";

/// Project 1, bucket b, table t (id INTEGER primary key, name VARCHAR) with rows 1..=n.
async fn world_with(app: TestApp, n: u32) -> (TestApp, String) {
    let key = app
        .project_with_table(&[("id", "INTEGER"), ("name", "VARCHAR")], &["id"])
        .await;
    let app = app
        .fill_table(&format!(
            "INSERT INTO data SELECT i, 'n' || i FROM range(1, {}) r(i)",
            n + 1
        ))
        .await;
    (app, key)
}

async fn world(n: u32) -> (TestApp, String) {
    world_with(spawn_app().await, n).await
}

async fn snapshot(app: &TestApp, key: &str, table: &str) -> Value {
    app.post(
        SNAPSHOTS,
        key,
        json!({"bucket": "b", "table": table, "description": "before the change"}),
    )
    .await
    .expect(201)
}

async fn row_count(app: &TestApp, key: &str, table: &str) -> u64 {
    let t = app
        .get(&format!("/projects/1/buckets/b/tables/{table}"), key)
        .await
        .expect(200);
    t["row_count"].as_u64().unwrap_or_else(|| panic!("{t}"))
}

/// The snapshots of table t of the given type.
async fn of_type(app: &TestApp, key: &str, kind: &str) -> Vec<Value> {
    let list = app
        .get(&format!("{SNAPSHOTS}?table=t&type={kind}"), key)
        .await
        .expect(200);
    list["snapshots"].as_array().expect("snapshots").clone()
}

/// Deletes the rows of table t that `where_clause` matches.
async fn delete_rows(app: &TestApp, key: &str, where_clause: &str) {
    app.call(
        reqwest::Method::DELETE,
        &format!("{T}/rows"),
        Some(key),
        Some(json!({ "where_clause": where_clause })),
    )
    .await
    .expect(200);
}

fn id_of(s: &Value) -> String {
    s["id"].as_str().expect("snapshot id").to_string()
}

#[tokio::test]
async fn a_manual_snapshot_is_listed_read_and_deleted_with_its_file() {
    let (app, key) = world(50).await;
    let s = snapshot(&app, &key, "t").await;
    let id = id_of(&s);
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{s}");
    assert_eq!(s["project_id"], "1");
    assert_eq!(s["bucket_name"], "b");
    assert_eq!(s["table_name"], "t");
    assert_eq!(s["snapshot_type"], "manual");
    assert_eq!(s["row_count"], 50);
    assert_eq!(s["description"], "before the change");
    assert!(s["size_bytes"].as_u64().unwrap() > 0, "{s}");
    let created = chrono::DateTime::parse_from_rfc3339(s["created_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(s["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        (expires - created).num_days(),
        90,
        "manual retention default: {s}"
    );
    let file = app
        .data_dir
        .join(format!("snapshots/project_1/{id}.parquet"));
    assert!(file.is_file(), "snapshot file at {}", file.display());

    let second = snapshot(&app, &key, "t").await;
    let list = app.get(SNAPSHOTS, &key).await.expect(200);
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(
        list["snapshots"][0]["id"], second["id"],
        "newest first: {list}"
    );
    let page = app
        .get(&format!("{SNAPSHOTS}?limit=1&offset=1"), &key)
        .await
        .expect(200);
    assert_eq!(page["total"], 2);
    assert_eq!(page["snapshots"][0]["id"], id, "{page}");
    // The seed path style serves the same snapshots.
    let seed = app.get("/projects/1/snapshots", &key).await.expect(200);
    assert_eq!(seed["total"], 2);

    let detail = app
        .get(&format!("{SNAPSHOTS}/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(
        detail["schema_columns"],
        json!([{"name": "id", "type": "INTEGER", "nullable": false},
               {"name": "name", "type": "VARCHAR", "nullable": true}])
    );
    assert_eq!(detail["primary_key"], json!(["id"]));

    // Snapshot files count toward the project's size.
    let stats = app.get("/projects/1/stats", &key).await.expect(200);
    let table_bytes = app.get(T, &key).await.expect(200)["size_bytes"]
        .as_u64()
        .unwrap();
    assert!(
        stats["size_bytes"].as_u64().unwrap() > table_bytes,
        "{stats}"
    );

    app.delete(&format!("{SNAPSHOTS}/{id}"), &key)
        .await
        .expect(204);
    assert!(!file.exists(), "the file goes with the snapshot");
    app.get(&format!("{SNAPSHOTS}/{id}"), &key)
        .await
        .expect_code(404, "snapshot_not_found");
    app.delete(&format!("{SNAPSHOTS}/{id}"), &key)
        .await
        .expect_code(404, "snapshot_not_found");

    // Creating and deleting snapshots is in the audit trail.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let trail = app
            .get("/projects/1/audit?action=snapshot.*", ADMIN_KEY)
            .await
            .expect(200);
        let mut actions: Vec<&str> = trail["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        actions.sort();
        if actions
            == [
                "snapshot.create",
                "snapshot.create",
                "snapshot.delete",
                "snapshot.delete",
            ]
        {
            break;
        }
        assert!(Instant::now() < deadline, "{trail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn snapshot_requests_are_checked() {
    let (app, key) = world(3).await;
    app.post(SNAPSHOTS, &key, json!({"bucket": "nope", "table": "t"}))
        .await
        .expect_code(404, "bucket_not_found");
    app.post(SNAPSHOTS, &key, json!({"bucket": "b", "table": "nope"}))
        .await
        .expect_code(404, "table_not_found");
    app.post(SNAPSHOTS, &key, json!({"bucket": "b"}))
        .await
        .expect(422);
    app.post(
        SNAPSHOTS,
        &key,
        json!({"bucket": "b", "table": "t", "x": 1}),
    )
    .await
    .expect(422);
    for id in [
        "0190a1b2-0000-7000-8000-000000000000",
        "not-a-uuid",
        "..%2F..%2Fmetadata",
    ] {
        app.get(&format!("{SNAPSHOTS}/{id}"), &key)
            .await
            .expect_code(404, "snapshot_not_found");
    }
    app.get(&format!("{SNAPSHOTS}?limit=0"), &key)
        .await
        .expect(422);
    app.get(&format!("{SNAPSHOTS}?limit=1001"), &key)
        .await
        .expect(422);
    app.get("/projects/9/branches/default/snapshots", ADMIN_KEY)
        .await
        .expect_code(404, "project_not_found");
    // Another project's key sees none of them.
    let other = app.create_project("2").await;
    app.get(SNAPSHOTS, &other).await.expect(403);

    // Turned off in the settings: manual snapshots are refused.
    app.put(TABLE_SETTINGS, &key, json!({"enabled": false}))
        .await
        .expect(200);
    app.post(SNAPSHOTS, &key, json!({"bucket": "b", "table": "t"}))
        .await
        .expect_code(400, "snapshots_disabled");
}

#[tokio::test]
async fn a_restore_replaces_the_table_with_its_columns_and_key() {
    let (app, key) = world(20).await;
    let s = snapshot(&app, &key, "t").await;
    let id = id_of(&s);
    delete_rows(&app, &key, "id > 5").await;
    app.post(
        &format!("{T}/columns"),
        &key,
        json!({"name": "extra", "type": "INTEGER"}),
    )
    .await
    .expect(201);
    assert_eq!(row_count(&app, &key, "t").await, 5);

    let restored = app
        .post(&format!("{SNAPSHOTS}/{id}/restore"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(
        restored,
        json!({"restored_to": {"bucket": "b", "table": "t"}, "row_count": 20})
    );
    let table = app.get(T, &key).await.expect(200);
    assert_eq!(table["row_count"], 20, "{table}");
    let names: Vec<&str> = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "name"], "the added column is gone: {table}");
    assert_eq!(table["primary_key"], json!(["id"]), "{table}");
    let preview = app
        .get(&format!("{T}/preview?order_by=id&limit=2"), &key)
        .await
        .expect(200);
    assert_eq!(
        preview["rows"],
        json!([{"id": 1, "name": "n1"}, {"id": 2, "name": "n2"}])
    );
}

#[tokio::test]
async fn a_dropped_table_comes_back_from_its_auto_snapshot() {
    let (app, key) = world(10).await;
    app.delete(T, &key).await.expect(204);
    app.get(T, &key).await.expect_code(404, "table_not_found");
    let auto = of_type(&app, &key, "auto_predrop").await;
    assert_eq!(auto.len(), 1, "drop_table is on by default: {auto:?}");
    assert_eq!(auto[0]["row_count"], 10);
    assert_eq!(
        auto[0]["created_by"]
            .as_str()
            .map(|s| s.starts_with("key:")),
        Some(true)
    );
    let created =
        chrono::DateTime::parse_from_rfc3339(auto[0]["created_at"].as_str().unwrap()).unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(auto[0]["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_days(), 7, "auto retention default");
    let id = id_of(&auto[0]);

    // Time travel works on a table that no longer exists.
    let preview = app
        .get(
            &format!("{T}/preview?snapshot={id}&order_by=id&limit=1"),
            &key,
        )
        .await
        .expect(200);
    assert_eq!(preview["rows"], json!([{"id": 1, "name": "n1"}]));

    let restored = app
        .post(&format!("{SNAPSHOTS}/{id}/restore"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(restored["row_count"], 10);
    let table = app.get(T, &key).await.expect(200);
    assert_eq!(table["row_count"], 10);
    assert_eq!(table["primary_key"], json!(["id"]), "{table}");

    // Into another table; onto an existing other table is a conflict; a missing bucket 404.
    let copy = app
        .post(
            &format!("{SNAPSHOTS}/{id}/restore"),
            &key,
            json!({"target_table": "copy"}),
        )
        .await
        .expect(200);
    assert_eq!(copy["restored_to"], json!({"bucket": "b", "table": "copy"}));
    assert_eq!(row_count(&app, &key, "copy").await, 10);
    let restore_path = format!("{SNAPSHOTS}/{id}/restore");
    let restore = |target: Value| app.post(&restore_path, &key, target);
    restore(json!({"target_table": "copy"}))
        .await
        .expect_code(409, "table_exists");
    restore(json!({"target_bucket": "nope"}))
        .await
        .expect_code(404, "bucket_not_found");
    restore(json!({"target_table": "bad name!"}))
        .await
        .expect(400);
}

#[tokio::test]
async fn every_trigger_takes_its_snapshot_and_skip_snapshot_skips_it() {
    let (app, key) = world(10).await;
    app.put(
        TABLE_SETTINGS,
        &key,
        json!({"auto_snapshot_triggers": {"drop_table": true, "truncate_table": true,
                                          "delete_all_rows": true, "drop_column": true}}),
    )
    .await
    .expect(200);
    app.post(
        &format!("{T}/columns"),
        &key,
        json!({"name": "extra", "type": "INTEGER"}),
    )
    .await
    .expect(201);

    // Dropping a column.
    app.delete(&format!("{T}/columns/extra?skip_snapshot=true"), &key)
        .await
        .expect(200);
    assert!(of_type(&app, &key, "auto_predrop_column").await.is_empty());
    app.post(
        &format!("{T}/columns"),
        &key,
        json!({"name": "extra", "type": "INTEGER"}),
    )
    .await
    .expect(201);
    app.delete(&format!("{T}/columns/extra"), &key)
        .await
        .expect(200);
    let dropped = of_type(&app, &key, "auto_predrop_column").await;
    assert_eq!(dropped.len(), 1);
    let detail = app
        .get(&format!("{SNAPSHOTS}/{}", id_of(&dropped[0])), &key)
        .await
        .expect(200);
    assert_eq!(
        detail["schema_columns"].as_array().unwrap().len(),
        3,
        "the column is in it"
    );

    // Deleting some rows takes none; deleting every row takes one.
    let rows = format!("{T}/rows");
    let delete = |body: Value, query: &'static str| {
        let path = format!("{rows}{query}");
        let (app, key) = (&app, &key);
        async move {
            app.call(reqwest::Method::DELETE, &path, Some(key), Some(body))
                .await
                .expect(200)
        }
    };
    delete(json!({"where_clause": "id > 8"}), "").await;
    assert!(of_type(&app, &key, "auto_pretruncate").await.is_empty());
    delete(json!({"where_clause": "TRUE"}), "").await;
    let truncated = of_type(&app, &key, "auto_pretruncate").await;
    assert_eq!(truncated.len(), 1);
    assert_eq!(truncated[0]["row_count"], 8);

    // A full load replaces every row: snapshot first; skipped on request.
    let file = upload(&app, &key, "a.csv", "id,name\n100,x\n101,y\n").await;
    let import = format!("{T}/import/file");
    app.post(
        &import,
        &key,
        json!({"file_id": file, "import_options": {"incremental": false}}),
    )
    .await
    .expect(200);
    let truncated = of_type(&app, &key, "auto_pretruncate").await;
    assert_eq!(truncated.len(), 2);
    assert_eq!(
        truncated[0]["row_count"], 0,
        "the table was empty before the load"
    );
    app.post(
        &format!("{import}?skip_snapshot=true"),
        &key,
        json!({"file_id": file, "import_options": {"incremental": false}}),
    )
    .await
    .expect(200);
    app.post(
        &import,
        &key,
        json!({"file_id": file, "import_options": {"incremental": true}}),
    )
    .await
    .expect(200);
    assert_eq!(
        of_type(&app, &key, "auto_pretruncate").await.len(),
        2,
        "incremental loads take none"
    );

    // Restoring over the table is a truncate too.
    let manual = snapshot(&app, &key, "t").await;
    app.post(
        &format!("{SNAPSHOTS}/{}/restore", id_of(&manual)),
        &key,
        json!({}),
    )
    .await
    .expect(200);
    assert_eq!(of_type(&app, &key, "auto_pretruncate").await.len(), 3);

    // Dropping the table.
    app.delete(&format!("{T}?skip_snapshot=false"), &key)
        .await
        .expect(204);
    let dropped = of_type(&app, &key, "auto_predrop").await;
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["row_count"], 2);
    app.get(&format!("{T}?skip_snapshot=maybe"), &key)
        .await
        .expect(404);
}

#[tokio::test]
async fn a_snapshot_that_cannot_be_taken_stops_the_drop_unless_skipped() {
    let (app, key) = world(5).await;
    // A file where the project's snapshot directory belongs: every snapshot write fails.
    let root = app.data_dir.join("snapshots");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("project_1"), b"in the way").unwrap();
    let refused = app
        .delete(T, &key)
        .await
        .expect_code(503, "snapshot_failed");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("skip_snapshot=true"), "{refused}");
    assert_eq!(
        refused["details"]["trigger"],
        "auto_snapshot_triggers.drop_table"
    );
    assert_eq!(
        row_count(&app, &key, "t").await,
        5,
        "the table is still there"
    );
    app.post(SNAPSHOTS, &key, json!({"bucket": "b", "table": "t"}))
        .await
        .expect(500);
    app.delete(&format!("{T}?skip_snapshot=true"), &key)
        .await
        .expect(204);
    app.get(T, &key).await.expect_code(404, "table_not_found");
    let list = app.get(SNAPSHOTS, &key).await.expect(200);
    assert_eq!(list["total"], 0, "{list}");
}

#[tokio::test]
async fn time_travel_reads_a_snapshot_like_the_table() {
    let (app, key) = world(30).await;
    let s = snapshot(&app, &key, "t").await;
    let id = id_of(&s);
    delete_rows(&app, &key, "TRUE").await;

    let old = app
        .get(
            &format!("{T}/preview?snapshot={id}&columns=name&whereColumn=id&whereValues=7&whereValues=9&order_by=id%20DESC"),
            &key,
        )
        .await
        .expect(200);
    assert_eq!(
        old["rows"],
        json!([{"name": "n9"}, {"name": "n7"}]),
        "{old}"
    );
    assert_eq!(old["total_row_count"], 30, "{old}");
    let live = app.get(&format!("{T}/preview"), &key).await.expect(200);
    assert_eq!(live["rows"], json!([]));
    app.get(&format!("{T}/preview?snapshot={id}&columns=nope"), &key)
        .await
        .expect(400);

    let csv = app
        .client
        .get(app.url(&format!(
            "{T}/export?snapshot={id}&format=csv&order_by=id&limit=2"
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.text().await.unwrap(), "id,name\n1,n1\n2,n2\n");
    let exported = app
        .post(
            &format!("{T}/export"),
            &key,
            json!({"snapshot": id, "format": "csv"}),
        )
        .await
        .expect(200);
    assert_eq!(
        exported["rows_exported"]
            .as_u64()
            .or(exported["row_count"].as_u64()),
        Some(30),
        "{exported}"
    );

    // A snapshot of another table is not one of this table.
    app.create_table("1", &key, "b", "u", &[("id", "INTEGER")], &[])
        .await;
    app.get(
        &format!("/projects/1/buckets/b/tables/u/preview?snapshot={id}"),
        &key,
    )
    .await
    .expect_code(404, "snapshot_not_found");
}

#[tokio::test]
async fn expired_snapshots_lose_their_rows_and_files() {
    let app = spawn_app_configured(|c| c.cleanup_interval_secs = 1).await;
    let (mut app, key) = world_with(app, 5).await;
    let keep = id_of(&snapshot(&app, &key, "t").await);
    let expire = id_of(&snapshot(&app, &key, "t").await);
    let file = |id: &str| {
        app.data_dir
            .join(format!("snapshots/project_1/{id}.parquet"))
    };
    let (kept_file, expired_file) = (file(&keep), file(&expire));
    assert!(expired_file.is_file());
    // Retention is whole days: the test moves one snapshot's end into the past instead.
    app.stop().await;
    {
        let conn = duckdb::Connection::open(app.data_dir.join("metadata.duckdb")).unwrap();
        conn.execute(
            "UPDATE snapshots SET expires_at = now()::TIMESTAMP - INTERVAL 1 MINUTE WHERE id = ?",
            [&expire],
        )
        .unwrap();
    }
    let app = app
        .restart_configured(|c| c.cleanup_interval_secs = 1)
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while expired_file.exists() {
        assert!(
            Instant::now() < deadline,
            "the expired snapshot's file was not removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.get(&format!("{SNAPSHOTS}/{expire}"), &key)
        .await
        .expect_code(404, "snapshot_not_found");
    app.get(&format!("{SNAPSHOTS}/{keep}"), &key)
        .await
        .expect(200);
    assert!(kept_file.is_file());
}

#[tokio::test]
async fn deleting_a_project_deletes_its_snapshots() {
    let (app, key) = world(5).await;
    snapshot(&app, &key, "t").await;
    let dir = app.data_dir.join("snapshots/project_1");
    assert!(dir.is_dir());
    app.delete("/projects/1", ADMIN_KEY).await.expect(204);
    assert!(!dir.exists(), "the project's snapshot files are gone");
    // A new project with the same id starts without snapshots.
    let key = app.create_project("1").await;
    let list = app.get(SNAPSHOTS, &key).await.expect(200);
    assert_eq!(list["total"], 0, "{list}");
}

#[tokio::test]
async fn keys_limited_to_buckets_reach_only_their_snapshots() {
    let (app, key) = world(5).await;
    app.create_bucket("1", &key, "other").await;
    app.create_table("1", &key, "other", "o", &[("id", "INTEGER")], &[])
        .await;
    let s = snapshot(&app, &key, "t").await;
    let limited = app
        .post(
            "/projects/1/api-keys",
            &key,
            json!({"description": "only other", "scope": "branch_admin", "branch_id": "default",
                   "bucket_permissions": {"other": "write"}}),
        )
        .await
        .expect(201);
    let limited = limited["api_key"].as_str().unwrap().to_string();
    app.get(&format!("{SNAPSHOTS}/{}", id_of(&s)), &limited)
        .await
        .expect(403);
    app.post(SNAPSHOTS, &limited, json!({"bucket": "b", "table": "t"}))
        .await
        .expect(403);
    // Writes on snapshot routes name no bucket in the path: the gate refuses them to keys
    // limited to named buckets, whatever bucket the body names (ADR 0029).
    app.post(
        SNAPSHOTS,
        &limited,
        json!({"bucket": "other", "table": "o"}),
    )
    .await
    .expect(403);
    app.post(SNAPSHOTS, &key, json!({"bucket": "other", "table": "o"}))
        .await
        .expect(201);
    let own = app.get(SNAPSHOTS, &limited).await.expect(200);
    assert_eq!(own["total"], 1, "only the snapshots of its buckets: {own}");
    assert_eq!(own["snapshots"][0]["bucket_name"], "other");
    app.get(&format!("{SNAPSHOTS}?bucket=b"), &limited)
        .await
        .expect(403);
    let own = app
        .get(&format!("{SNAPSHOTS}?bucket=other"), &limited)
        .await
        .expect(200);
    assert_eq!(own["total"], 1);
    app.delete(&format!("{SNAPSHOTS}/{}", id_of(&s)), &limited)
        .await
        .expect(403);
}

async fn upload(app: &TestApp, key: &str, name: &str, data: &str) -> String {
    let res = app
        .client
        .post(app.url(&format!("/projects/1/files/content?name={name}")))
        .bearer_auth(key)
        .body(data.to_string())
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status().as_u16(), 201);
    let body: Value = res.json().await.expect("json");
    body["id"].as_str().expect("file id").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_a_restore_leaves_the_old_table() {
    use crate::helpers::ServerProcess;
    let (server, key) = ServerProcess::with_killable_table().await;
    const BIG: u64 = 3_000_000;
    let file = server.upload_csv(&key, "big.csv", rows_csv(1..=BIG)).await;
    let import = "/projects/1/buckets/b/tables/t/import/file";
    server
        .post(
            import,
            &key,
            json!({"file_id": file["id"], "import_options": {"incremental": false}}),
        )
        .await
        .expect(200);
    let big = id_of(
        &server
            .post(SNAPSHOTS, &key, json!({"bucket": "b", "table": "t"}))
            .await
            .expect(201),
    );
    server
        .call(
            reqwest::Method::DELETE,
            "/projects/1/buckets/b/tables/t/rows",
            Some(&key),
            Some(json!({"where_clause": "id > 100"})),
        )
        .await
        .expect(200);
    let export = "/projects/1/buckets/b/tables/t/export?format=csv&order_by=id";
    let text = |server: &ServerProcess| {
        let req = server
            .client
            .get(server.url(export))
            .bearer_auth(&key)
            .send();
        async move { req.await.unwrap().text().await.unwrap() }
    };
    let before = text(&server).await;
    assert_eq!(before, rows_csv(1..=100));

    // The restore of three million rows runs while the process is killed.
    let server = server
        .kill_during_post(&format!("{SNAPSHOTS}/{big}/restore"), &key, "restore")
        .await;
    let t = server
        .get("/projects/1/buckets/b/tables/t", &key)
        .await
        .expect(200);
    assert_eq!(t["row_count"], 100, "the old table, whole: {t}");
    assert_eq!(text(&server).await, before);
    // The snapshot is intact and restores completely afterwards.
    let done = server
        .post(
            &format!("{SNAPSHOTS}/{big}/restore?skip_snapshot=true"),
            &key,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(done["row_count"], BIG);
}

#[tokio::test]
async fn start_up_clears_interrupted_snapshots_and_sets_unknown_files_aside() {
    let (mut app, key) = world(5).await;
    let kept = id_of(&snapshot(&app, &key, "t").await);
    app.stop().await;
    let dir = app.data_dir.join("snapshots/project_1");
    std::fs::write(
        dir.join(".0190a1b2-0000-7000-8000-000000000000.parquet.tmp"),
        b"half",
    )
    .unwrap();
    std::fs::write(dir.join("stray.parquet"), b"not ours").unwrap();
    let app = app.restart().await;
    assert!(!dir
        .join(".0190a1b2-0000-7000-8000-000000000000.parquet.tmp")
        .exists());
    assert!(!dir.join("stray.parquet").exists(), "set aside");
    assert!(
        dir.join(format!("{kept}.parquet")).is_file(),
        "a known snapshot stays"
    );
    let quarantined = walk(&app.data_dir.join("quarantine"));
    assert!(
        quarantined
            .iter()
            .any(|p| p.ends_with("snapshots/project_1/stray.parquet")),
        "{quarantined:?}"
    );
    app.get(&format!("{T}/preview?snapshot={kept}"), &key)
        .await
        .expect(200);
}

/// Every file under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
