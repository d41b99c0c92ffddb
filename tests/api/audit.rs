//! The audit trail: one entry per admin or changing request (refusals too), with who, what,
//! target, outcome, request id and client address; its filters, pages, redaction and restarts.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{enc, spawn_app, spawn_app_with_project, JsonClient, TestApp, ADMIN_KEY};

/// Entries a trail query returns once at least `want` are there (entries are written by a
/// background task, a moment after the request is answered).
async fn entries(app: &TestApp, path: &str, key: &str, want: usize) -> Vec<Value> {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = app.get(path, key).await.expect(200);
        let list = last["entries"].as_array().expect("entries").clone();
        assert_eq!(last["count"], list.len(), "{last}");
        if list.len() >= want {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {want} entries at {path}: {last}");
}

/// The one entry of `action` in project 1's trail.
async fn one(app: &TestApp, action: &str) -> Value {
    let list = entries(
        app,
        &format!("/projects/1/audit?action={action}"),
        ADMIN_KEY,
        1,
    )
    .await;
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].clone()
}

/// The id of project 1's first key (its project_admin key).
async fn key_id(app: &TestApp) -> String {
    let keys = app.get("/projects/1/api-keys", ADMIN_KEY).await.expect(200);
    keys["api_keys"][0]["id"].as_str().expect("id").to_string()
}

fn actions(list: &[Value]) -> Vec<&str> {
    list.iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect()
}

#[tokio::test]
async fn admin_project_create_and_delete_are_recorded() {
    let app = spawn_app().await;
    let created = app.post("/projects", ADMIN_KEY, json!({ "id": "7" })).await;
    let request_id = created.headers["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let project_key = created.expect(201)["api_key"]
        .as_str()
        .expect("api_key")
        .to_string();
    app.delete("/projects/7", ADMIN_KEY).await.expect(204);

    let list = entries(&app, "/admin/audit?action=project.*", ADMIN_KEY, 2).await;
    assert_eq!(actions(&list), ["project.delete", "project.create"]);
    let create = &list[1];
    assert_eq!(create["principal"], json!({ "type": "admin" }));
    assert_eq!(create["outcome"], 201);
    assert_eq!(create["project_id"], "7");
    assert_eq!(create["method"], "POST");
    assert_eq!(create["route"], "/projects");
    assert_eq!(create["request_id"], request_id.as_str());
    assert_eq!(create["client_address"], "127.0.0.1");
    assert!(create["time"].is_string(), "{create}");
    assert_eq!(list[0]["outcome"], 204);
    assert_eq!(list[0]["target"], json!({ "project_id": "7" }));
    // The one-time key is nowhere in the trail.
    let all = app.get("/admin/audit", ADMIN_KEY).await.expect(200);
    assert!(!all.to_string().contains(&project_key));
    // Admin reads are audited too.
    entries(&app, "/admin/audit?action=admin.audit.read", ADMIN_KEY, 1).await;
}

#[tokio::test]
async fn bucket_and_table_create_and_delete_are_recorded_in_both_path_styles() {
    let (app, key) = spawn_app_with_project().await;
    let id = key_id(&app).await;
    app.create_bucket("1", &key, "b").await;
    app.create_table("1", &key, "b", "t", &[("id", "INTEGER")], &["id"])
        .await;
    app.delete("/projects/1/branches/default/buckets/b/tables/t", &key)
        .await
        .expect(204);
    app.delete("/projects/1/buckets/b", &key).await.expect(204);

    let bucket = one(&app, "bucket.create").await;
    assert_eq!(
        bucket["principal"],
        json!({ "type": "key", "project_id": "1", "key_id": id })
    );
    assert_eq!(bucket["outcome"], 201);
    assert_eq!(bucket["branch_id"], Value::Null);
    let table = one(&app, "table.create").await;
    assert_eq!(table["target"]["bucket_name"], "b");
    let deleted = one(&app, "table.delete").await;
    assert_eq!(deleted["branch_id"], "default");
    assert_eq!(
        deleted["target"],
        json!({ "project_id": "1", "branch_id": "default", "bucket_name": "b", "table_name": "t" })
    );
    assert_eq!(one(&app, "bucket.delete").await["outcome"], 204);
    let trail = app.get("/projects/1/audit", &key).await.expect(200);
    assert!(
        !trail.to_string().contains(&key),
        "the key itself is never stored"
    );
}

#[tokio::test]
async fn sharing_linking_and_grants_are_recorded() {
    let (app, one_key) = spawn_app_with_project().await;
    let two_key = app.create_project("2").await;
    app.create_bucket("1", &one_key, "b").await;
    app.share_bucket("1", &one_key, "b", "2").await.expect(200);
    app.link_bucket("2", &two_key, "linked", ("1", "b"))
        .await
        .expect(201);
    app.post("/projects/1/buckets/b/grant-readonly", &one_key, json!({}))
        .await
        .expect(200);

    assert_eq!(one(&app, "bucket.share").await["outcome"], 200);
    assert_eq!(one(&app, "bucket.grant_readonly").await["outcome"], 200);
    let link = entries(&app, "/projects/2/audit?action=bucket.link", &two_key, 1).await;
    assert_eq!(link[0]["target"]["bucket_name"], "linked");
    assert_eq!(link[0]["principal"]["project_id"], "2");
}

#[tokio::test]
async fn key_create_rotate_and_revoke_are_recorded() {
    let (app, key) = spawn_app_with_project().await;
    let issued = app
        .post(
            "/projects/1/api-keys",
            &key,
            json!({ "description": "ci", "scope": "branch_read", "branch_id": "default" }),
        )
        .await
        .expect(201);
    let id = issued["id"].as_str().expect("id");
    let rotated = app
        .post(
            &format!("/projects/1/api-keys/{id}/rotate"),
            &key,
            json!({}),
        )
        .await
        .expect(201);
    let new_id = rotated["id"].as_str().unwrap_or(id).to_string();
    app.delete(&format!("/projects/1/api-keys/{new_id}"), &key)
        .await
        .expect(204);

    let list = entries(&app, "/projects/1/audit?action=api_key.*", &key, 3).await;
    assert_eq!(
        actions(&list),
        ["api_key.revoke", "api_key.rotate", "api_key.create"]
    );
    assert_eq!(list[1]["target"]["key_id"], id);
    let text = serde_json::to_string(&list).expect("json");
    assert!(!text.contains(issued["api_key"].as_str().expect("key")));
    assert!(!text.contains(rotated["api_key"].as_str().unwrap_or("-")));
}

#[tokio::test]
async fn import_schema_change_and_row_delete_are_recorded() {
    let app = spawn_app().await;
    let key = app
        .project_with_table(&[("id", "INTEGER"), ("name", "VARCHAR")], &["id"])
        .await;
    crate::table_data::seed(&app, &key, "t", "id,name\n1,a\n2,b\n").await;
    let t = "/projects/1/buckets/b/tables/t";
    app.post(
        &format!("{t}/columns"),
        &key,
        json!({ "name": "extra", "type": "INTEGER" }),
    )
    .await
    .expect(201);
    app.delete(&format!("{t}/columns/extra"), &key)
        .await
        .expect(200);
    app.call(
        Method::DELETE,
        &format!("{t}/rows"),
        Some(&key),
        Some(json!({ "where_clause": "id = 1" })),
    )
    .await
    .expect(200);

    assert_eq!(one(&app, "file.upload").await["outcome"], 201);
    assert_eq!(one(&app, "table.import").await["outcome"], 200);
    assert_eq!(one(&app, "table.column.add").await["outcome"], 201);
    let dropped = one(&app, "table.column.drop").await;
    assert_eq!(dropped["target"]["column_name"], "extra");
    assert_eq!(one(&app, "table.rows.delete").await["outcome"], 200);
    let schema = entries(&app, "/projects/1/audit?action=table.column.*", &key, 2).await;
    assert_eq!(schema.len(), 2);
}

#[tokio::test]
async fn refused_requests_are_recorded_and_foreign_keys_are_redacted() {
    let (app, one_key) = spawn_app_with_project().await;
    let two_key = app.create_project("2").await;
    app.create_bucket("1", &one_key, "b").await;
    // No key: 401, by nobody.
    app.call(Method::DELETE, "/projects/1/buckets/b", None, None)
        .await
        .expect(401);
    // Project 2's key on project 1: 403.
    app.delete("/projects/1/buckets/b", &two_key)
        .await
        .expect(403);
    let keys = app.get("/projects/2/api-keys", ADMIN_KEY).await.expect(200);
    let two_id = keys["api_keys"][0]["id"].as_str().expect("id").to_string();

    let list = entries(&app, "/projects/1/audit?action=bucket.delete", &one_key, 2).await;
    assert_eq!(list[0]["outcome"], 403);
    assert_eq!(list[0]["principal"], json!({ "type": "other_project" }));
    assert_eq!(list[1]["outcome"], 401);
    assert_eq!(list[1]["principal"], json!({ "type": "anonymous" }));
    let text = serde_json::to_string(&list).expect("json");
    assert!(
        !text.contains(&two_id),
        "project 1 sees project 2's key id: {text}"
    );
    // Filtering project 1's trail by the foreign key id confirms nothing.
    let filtered = app
        .get(
            &format!("/projects/1/audit?key_id={}", enc(&two_id)),
            &one_key,
        )
        .await
        .expect(200);
    assert_eq!(filtered["count"], 0, "{filtered}");
    // The admin sees whose key it was.
    let admin = entries(
        &app,
        &format!("/admin/audit?action=bucket.delete&key_id={}", enc(&two_id)),
        ADMIN_KEY,
        1,
    )
    .await;
    assert_eq!(admin[0]["principal"]["key_id"], two_id.as_str());
    assert_eq!(admin[0]["project_id"], "1");
}

#[tokio::test]
async fn a_project_trail_shows_only_that_project() {
    let (app, one_key) = spawn_app_with_project().await;
    let two_key = app.create_project("2").await;
    app.create_bucket("1", &one_key, "one").await;
    app.create_bucket("2", &two_key, "two").await;
    let list = entries(&app, "/projects/2/audit?action=bucket.create", &two_key, 1).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["target"]["bucket_name"], "two");
    app.get("/projects/2/audit", &one_key).await.expect(403);
    app.get("/admin/audit", &one_key).await.expect(403);
    // Routes without a project in the path are filed under the key's own project.
    app.post(
        "/v1/blobs",
        &two_key,
        json!({ "id": "x", "content": "aGk=" }),
    )
    .await;
    let blob = entries(&app, "/projects/2/audit?action=blob.create", &two_key, 1).await;
    assert_eq!(blob[0]["project_id"], "2");
}

#[tokio::test]
async fn filters_and_cursor_pages_walk_the_trail_newest_first() {
    let (app, key) = spawn_app_with_project().await;
    let before = chrono::Utc::now();
    for i in 0..5 {
        app.create_bucket("1", &key, &format!("b{i}")).await;
    }
    let all = entries(&app, "/projects/1/audit?action=bucket.create", &key, 5).await;
    let names: Vec<&str> = all
        .iter()
        .map(|e| e["target"]["bucket_name"].as_str().expect("bucket"))
        .collect();
    assert_eq!(names, ["b4", "b3", "b2", "b1", "b0"]);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/projects/1/audit?action=bucket.*&limit=2".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        let page = app.get(&path, &key).await.expect(200);
        for e in page["entries"].as_array().expect("entries") {
            seen.push(e["id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let ids: Vec<String> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, ids);

    let since = enc(&before.to_rfc3339());
    let recent = app
        .get(
            &format!("/projects/1/audit?action=bucket.create&since={since}"),
            &key,
        )
        .await
        .expect(200);
    assert_eq!(recent["count"], 5);
    let old = app
        .get(&format!("/projects/1/audit?until={since}"), &key)
        .await
        .expect(200);
    assert!(old["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .all(|e| e["action"] != "bucket.create"));
    let none = app
        .get("/projects/1/audit?action=bucket.delete", &key)
        .await
        .expect(200);
    assert_eq!(none["count"], 0);
    assert_eq!(none["next_cursor"], Value::Null);

    for bad in [
        "since=yesterday",
        "until=2026-13-01T00:00:00Z",
        "limit=0",
        "limit=1001",
        "limit=ten",
        "cursor=garbage!",
        "action=ta*ble",
    ] {
        app.get(&format!("/projects/1/audit?{bad}"), &key)
            .await
            .expect_code(400, "invalid_request");
    }
}

#[tokio::test]
async fn the_trail_survives_a_restart() {
    let (app, key) = spawn_app_with_project().await;
    app.create_bucket("1", &key, "kept").await;
    // Stopped right away: the entry is flushed on the way down, not left in memory.
    let app = app.restart().await;
    let list = app
        .get("/projects/1/audit?action=bucket.create", ADMIN_KEY)
        .await
        .expect(200);
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["entries"][0]["target"]["bucket_name"], "kept");
}

/// Entries of `backend.init` in the whole trail.
async fn inits(app: &TestApp) -> u64 {
    let list = app
        .get("/admin/audit?action=backend.init", ADMIN_KEY)
        .await
        .expect(200);
    list["count"].as_u64().expect("count")
}

#[tokio::test]
async fn the_cleaner_removes_entries_past_retention_unless_it_is_zero() {
    let mut app = spawn_app().await;
    app.stop().await;
    {
        let conn =
            duckdb::Connection::open(app.data_dir.join("metadata.duckdb")).expect("open catalog");
        conn.execute_batch(
            "INSERT INTO audit_entries VALUES ('old', now()::TIMESTAMP - INTERVAL 2 DAY, 'admin',
             NULL, NULL, 'backend.init', 'POST', '/backend/init', NULL, NULL, '{}', 200, NULL,
             NULL)",
        )
        .expect("insert an old entry");
    }
    // Retention 0 keeps everything, however often the cleaner runs.
    let app = app
        .restart_configured(|c| {
            c.cleanup_interval_secs = 1;
            c.audit_retention_days = 0;
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(inits(&app).await, 1);

    let app = app
        .restart_configured(|c| {
            c.cleanup_interval_secs = 1;
            c.audit_retention_days = 1;
        })
        .await;
    for _ in 0..100 {
        if inits(&app).await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the entry older than AUDIT_RETENTION_DAYS was not removed");
}

#[tokio::test]
async fn s3_writes_are_recorded_with_their_caller_and_project() {
    let (app, key) = spawn_app_with_project().await;
    let id = key_id(&app).await;
    let res = app
        .client
        .put(app.url("/s3/project_1/audited.txt"))
        .bearer_auth(&key)
        .body("x")
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 200);
    let entry = one(&app, "s3.object.write").await;
    assert_eq!(
        entry["principal"],
        json!({ "type": "key", "project_id": "1", "key_id": id })
    );
    assert_eq!(entry["project_id"], "1");
    assert_eq!(entry["outcome"], 200);
    // A request nobody signed stays anonymous.
    let res = app
        .client
        .delete(app.url("/s3/project_1/audited.txt"))
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 403);
    // Not authenticated, it names no project: it is in the admin's trail.
    let list = entries(&app, "/admin/audit?action=s3.object.delete", ADMIN_KEY, 1).await;
    assert_eq!(list[0]["principal"], json!({ "type": "anonymous" }));
    assert_eq!(list[0]["outcome"], 403);
}
