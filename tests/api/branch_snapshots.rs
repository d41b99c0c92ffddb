//! Snapshots per dev branch over HTTP: a snapshot taken in a branch is the branch's (manual and
//! automatic), lists and reads by id stay within one branch, restore in a branch writes the
//! branch and never main, time travel reaches the branch's own snapshots, and deleting the
//! branch deletes its snapshots, rows and files.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, JsonClient, TestApp, ADMIN_KEY};

const MAIN: &str = "/projects/1/buckets/b/tables/t";
const MAIN_SNAPSHOTS: &str = "/projects/1/snapshots";

/// Project 1, bucket b, table t (id INTEGER primary key, name VARCHAR) with rows 1..=n, and a
/// dev branch of it; the project key and the branch id.
async fn world(n: u32) -> (TestApp, String, String) {
    let app = spawn_app().await;
    let key = app
        .project_with_table(&[("id", "INTEGER"), ("name", "VARCHAR")], &["id"])
        .await;
    let app = app
        .fill_table(&format!(
            "INSERT INTO data SELECT i, 'n' || i FROM range(1, {}) r(i)",
            n + 1
        ))
        .await;
    let id = new_branch(&app, &key, "dev").await;
    (app, key, id)
}

async fn new_branch(app: &TestApp, key: &str, name: &str) -> String {
    let b = app
        .post("/projects/1/branches", key, json!({ "name": name }))
        .await
        .expect(201);
    b["id"].as_str().expect("branch id").to_string()
}

fn snapshots_of(branch: &str) -> String {
    format!("/projects/1/branches/{branch}/snapshots")
}

fn table_in(branch: &str, table: &str) -> String {
    format!("/projects/1/branches/{branch}/buckets/b/tables/{table}")
}

async fn take(app: &TestApp, key: &str, snapshots: &str) -> Value {
    app.post(snapshots, key, json!({"bucket": "b", "table": "t"}))
        .await
        .expect(201)
}

fn id_of(s: &Value) -> String {
    s["id"].as_str().expect("snapshot id").to_string()
}

/// The ids a snapshot list shows, and its total.
async fn listed(app: &TestApp, key: &str, path: &str) -> (Vec<String>, u64) {
    let list = app.get(path, key).await.expect(200);
    let ids = list["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(id_of)
        .collect();
    (ids, list["total"].as_u64().expect("total"))
}

async fn rows(app: &TestApp, key: &str, table: &str) -> u64 {
    let t = app.get(table, key).await.expect(200);
    t["row_count"].as_u64().unwrap_or_else(|| panic!("{t}"))
}

async fn delete_rows(app: &TestApp, key: &str, table: &str, filter: &str) {
    app.call(
        Method::DELETE,
        &format!("{table}/rows"),
        Some(key),
        Some(json!({ "where_clause": filter })),
    )
    .await
    .expect(200);
}

/// The table's rows as CSV ordered by id (a content check, not only a count).
async fn csv(app: &TestApp, key: &str, table: &str) -> String {
    let res = app
        .client
        .get(app.url(&format!("{table}/export?format=csv&order_by=id")))
        .bearer_auth(key)
        .send()
        .await
        .expect("export");
    assert_eq!(res.status(), 200);
    res.text().await.expect("csv")
}

#[tokio::test]
async fn a_snapshot_taken_in_a_branch_is_the_branchs_and_lists_apart_from_mains() {
    let (app, key, id) = world(10).await;
    delete_rows(&app, &key, &table_in(&id, "t"), "id > 5").await;

    let ours = take(&app, &key, &snapshots_of(&id)).await;
    assert_eq!(ours["row_count"], 5, "the branch's view: {ours}");
    assert_eq!(ours["branch_id"], id.as_str());
    let mains = take(&app, &key, MAIN_SNAPSHOTS).await;
    assert_eq!(mains["row_count"], 10);
    assert_eq!(mains["branch_id"], Value::Null);
    let (ours, mains) = (id_of(&ours), id_of(&mains));

    assert_eq!(
        listed(&app, &key, &snapshots_of(&id)).await,
        (vec![ours.clone()], 1)
    );
    for main_path in [
        MAIN_SNAPSHOTS,
        "/projects/1/branches/default/snapshots",
        "/projects/1/branches/main/snapshots",
    ] {
        assert_eq!(
            listed(&app, &key, main_path).await,
            (vec![mains.clone()], 1),
            "{main_path} lists main's only"
        );
    }
    // The path says the branch; a `branch` filter is refused rather than ignored.
    app.get(&format!("{MAIN_SNAPSHOTS}?branch={id}"), &key)
        .await
        .expect(400);
    // Another branch sees neither.
    let other = new_branch(&app, &key, "other").await;
    assert_eq!(listed(&app, &key, &snapshots_of(&other)).await, (vec![], 0));

    // By id, a snapshot is reachable only under its own branch's path.
    app.get(&format!("{}/{ours}", snapshots_of(&id)), &key)
        .await
        .expect(200);
    for (path, sid) in [
        (MAIN_SNAPSHOTS.to_string(), &ours),
        (snapshots_of(&other), &ours),
        (snapshots_of(&id), &mains),
    ] {
        app.get(&format!("{path}/{sid}"), &key)
            .await
            .expect_code(404, "snapshot_not_found");
        app.delete(&format!("{path}/{sid}"), &key)
            .await
            .expect_code(404, "snapshot_not_found");
    }
    app.get(&format!("{MAIN_SNAPSHOTS}/{mains}"), &key)
        .await
        .expect(200);

    // A key limited to the branch takes and lists the branch's snapshots, not main's.
    let issued = app
        .post(
            "/projects/1/api-keys",
            &key,
            json!({"scope": "branch_admin", "branch_id": id, "description": "dev"}),
        )
        .await
        .expect(201);
    let branch_key = issued["api_key"].as_str().unwrap().to_string();
    let by_key = take(&app, &branch_key, &snapshots_of(&id)).await;
    assert_eq!(by_key["branch_id"], id.as_str());
    assert_eq!(listed(&app, &branch_key, &snapshots_of(&id)).await.1, 2);
    app.get(&format!("{}/{ours}", snapshots_of(&id)), &branch_key)
        .await
        .expect(200);
    app.get(MAIN_SNAPSHOTS, &branch_key).await.expect(403);
    app.post(
        MAIN_SNAPSHOTS,
        &branch_key,
        json!({"bucket": "b", "table": "t"}),
    )
    .await
    .expect(403);
}

#[tokio::test]
async fn auto_snapshots_of_destructive_changes_in_a_branch_are_the_branchs() {
    let (app, key, id) = world(8).await;
    app.put(
        "/projects/1/settings/snapshots",
        &key,
        json!({"auto_snapshot_triggers": {"drop_table": true, "delete_all_rows": true,
                                          "drop_column": true, "truncate_table": true}}),
    )
    .await
    .expect(200);
    let t = table_in(&id, "t");
    // Deleting every row (first write: the copy, then the snapshot of the copy).
    delete_rows(&app, &key, &t, "TRUE").await;
    // Dropping a column.
    app.post(
        &format!("{t}/columns"),
        &key,
        json!({"name": "extra", "type": "INTEGER"}),
    )
    .await
    .expect(201);
    app.delete(&format!("{t}/columns/extra"), &key)
        .await
        .expect(200);
    // Dropping the branch's copy.
    app.call(Method::DELETE, &t, Some(&key), None)
        .await
        .expect(204);

    let list = app.get(&snapshots_of(&id), &key).await.expect(200);
    let mut kinds: Vec<&str> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["branch_id"], id.as_str(), "{s}");
            s["snapshot_type"].as_str().unwrap()
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec!["auto_predrop", "auto_predrop_column", "auto_pretruncate"],
        "{list}"
    );
    let pretruncate = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["snapshot_type"] == "auto_pretruncate")
        .unwrap();
    assert_eq!(pretruncate["row_count"], 8, "the copy before the delete");
    assert_eq!(
        listed(&app, &key, MAIN_SNAPSHOTS).await.1,
        0,
        "main has none"
    );
    assert_eq!(rows(&app, &key, MAIN).await, 8, "main untouched");
}

#[tokio::test]
async fn restore_in_a_branch_writes_the_branch_and_leaves_main_unchanged() {
    let (app, key, id) = world(10).await;
    let t = table_in(&id, "t");
    // Taken before the branch wrote anything: it reads main's file, copies nothing.
    let full = id_of(&take(&app, &key, &snapshots_of(&id)).await);
    let diff = app
        .get(&format!("/projects/1/branches/{id}/diff"), &key)
        .await
        .expect(200);
    assert_eq!(diff["count"], 0, "a snapshot is not a write: {diff}");
    delete_rows(&app, &key, MAIN, "id = 10").await;
    let main_before = csv(&app, &key, MAIN).await;
    let restore = format!("{}/{full}/restore", snapshots_of(&id));

    // Over the branch's own copy.
    delete_rows(&app, &key, &t, "id > 3").await;
    let done = app.post(&restore, &key, json!({})).await.expect(200);
    assert_eq!(done["row_count"], 10, "{done}");
    assert_eq!(done["restored_to"], json!({"bucket": "b", "table": "t"}));
    assert_eq!(rows(&app, &key, &t).await, 10);
    assert_eq!(csv(&app, &key, MAIN).await, main_before);

    // Over main's table seen through the branch: copied first, then replaced.
    app.post(
        &format!("/projects/1/branches/{id}/tables/b/t/pull"),
        &key,
        json!({}),
    )
    .await
    .expect(200);
    assert_eq!(rows(&app, &key, &t).await, 9, "reads main again");
    app.post(&restore, &key, json!({})).await.expect(200);
    assert_eq!(rows(&app, &key, &t).await, 10);
    let detail = app
        .get(&format!("/projects/1/branches/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(detail["copied_tables"][0]["table_name"], "t", "{detail}");
    assert_eq!(csv(&app, &key, MAIN).await, main_before);

    // Into a new name: a table of the branch's own, absent from main.
    let copy = app
        .post(&restore, &key, json!({"target_table": "t2"}))
        .await
        .expect(200);
    assert_eq!(copy["restored_to"]["table"], "t2");
    assert_eq!(rows(&app, &key, &table_in(&id, "t2")).await, 10);
    let listed_tables = app
        .get(&format!("/projects/1/branches/{id}/buckets/b/tables"), &key)
        .await
        .expect(200);
    assert!(
        listed_tables["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "t2" && x["source"] == "branch"),
        "{listed_tables}"
    );
    app.get("/projects/1/buckets/b/tables/t2", &key)
        .await
        .expect_code(404, "table_not_found");
    // Onto another existing table: refused.
    app.post(&restore, &key, json!({"target_table": "t2"}))
        .await
        .expect_code(409, "table_exists");

    // After the table was deleted in the branch: recreated there, main still unchanged.
    app.call(Method::DELETE, &t, Some(&key), None)
        .await
        .expect(204);
    app.get(&t, &key).await.expect_code(404, "table_not_found");
    let back = app
        .post(&format!("{restore}?skip_snapshot=true"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(back["row_count"], 10);
    assert_eq!(rows(&app, &key, &t).await, 10);
    assert_eq!(csv(&app, &key, MAIN).await, main_before);
    assert_eq!(rows(&app, &key, MAIN).await, 9);

    // Main's snapshot cannot be restored through the branch, nor the branch's through main.
    let mains = id_of(&take(&app, &key, MAIN_SNAPSHOTS).await);
    app.post(
        &format!("{}/{mains}/restore", snapshots_of(&id)),
        &key,
        json!({}),
    )
    .await
    .expect_code(404, "snapshot_not_found");
    app.post(&format!("{MAIN_SNAPSHOTS}/{full}/restore"), &key, json!({}))
        .await
        .expect_code(404, "snapshot_not_found");
    assert_eq!(csv(&app, &key, MAIN).await, main_before);
}

#[tokio::test]
async fn time_travel_in_a_branch_reaches_only_the_branchs_snapshots() {
    let (app, key, id) = world(6).await;
    let t = table_in(&id, "t");
    delete_rows(&app, &key, &t, "id > 2").await;
    let ours = id_of(&take(&app, &key, &snapshots_of(&id)).await);
    let mains = id_of(&take(&app, &key, MAIN_SNAPSHOTS).await);
    delete_rows(&app, &key, &t, "TRUE").await;

    let old = app
        .get(&format!("{t}/preview?snapshot={ours}&order_by=id"), &key)
        .await
        .expect(200);
    assert_eq!(
        old["rows"],
        json!([{"id": 1, "name": "n1"}, {"id": 2, "name": "n2"}]),
        "{old}"
    );
    let exported = app
        .client
        .get(app.url(&format!(
            "{t}/export?snapshot={ours}&format=csv&order_by=id"
        )))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(exported.status(), 200);
    assert_eq!(exported.text().await.unwrap(), "id,name\n1,n1\n2,n2\n");

    // Main's snapshot from the branch path, and the branch's from main's: not found.
    for (table, sid) in [(t.as_str(), &mains), (MAIN, &ours)] {
        app.get(&format!("{table}/preview?snapshot={sid}"), &key)
            .await
            .expect_code(404, "snapshot_not_found");
        app.get(&format!("{table}/export?snapshot={sid}&format=csv"), &key)
            .await
            .expect_code(404, "snapshot_not_found");
    }
    app.get(&format!("{MAIN}/preview?snapshot={mains}"), &key)
        .await
        .expect(200);
}

#[tokio::test]
async fn deleting_a_branch_deletes_its_snapshots_rows_and_files() {
    let (app, key, id) = world(5).await;
    delete_rows(&app, &key, &table_in(&id, "t"), "id > 2").await;
    let ours = [
        id_of(&take(&app, &key, &snapshots_of(&id)).await),
        id_of(&take(&app, &key, &snapshots_of(&id)).await),
    ];
    let mains = id_of(&take(&app, &key, MAIN_SNAPSHOTS).await);
    let file = |sid: &str| {
        app.data_dir
            .join(format!("snapshots/project_1/{sid}.parquet"))
    };
    for sid in ours.iter().chain([&mains]) {
        assert!(file(sid).is_file(), "{sid}");
    }
    let stats_before = app.get("/projects/1/stats", &key).await.expect(200);

    app.delete(&format!("/projects/1/branches/{id}"), &key)
        .await
        .expect(204);
    for sid in &ours {
        assert!(!file(sid).exists(), "the branch's snapshot file is gone");
        app.get(&format!("{MAIN_SNAPSHOTS}/{sid}"), &key)
            .await
            .expect_code(404, "snapshot_not_found");
    }
    assert!(file(&mains).is_file(), "main's stays");
    assert_eq!(
        listed(&app, &key, MAIN_SNAPSHOTS).await,
        (vec![mains.clone()], 1)
    );
    let stats_after = app.get("/projects/1/stats", &key).await.expect(200);
    assert!(
        stats_after["size_bytes"].as_u64() < stats_before["size_bytes"].as_u64(),
        "{stats_before} -> {stats_after}"
    );

    // Nothing is left for the start-up sweep to set aside.
    let app = app.restart().await;
    let quarantined = app.get("/admin/quarantine", ADMIN_KEY).await.expect(200);
    assert_eq!(quarantined["total"], 0, "{quarantined}");
    app.get(&format!("{MAIN}/preview?snapshot={mains}"), &key)
        .await
        .expect(200);
}
