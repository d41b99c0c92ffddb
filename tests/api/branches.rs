//! Dev branches over HTTP: create/list/get/delete, isolation both ways with copy-on-write on
//! each write kind, branch-only tables, pull, diff, merge with and without a conflict, keys,
//! restart, and kill -9 during a merge.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{rows_csv, spawn_app, JsonClient, TestApp, ADMIN_KEY};

const MAIN: &str = "/projects/1/buckets/b/tables/t";

/// Project 1, bucket b, table t (id INTEGER primary key, name VARCHAR) with rows 1..=n.
async fn world(n: u32) -> (TestApp, String) {
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
    (app, key)
}

async fn branch(app: &TestApp, key: &str, name: &str) -> String {
    let b = app
        .post(
            "/projects/1/branches",
            key,
            json!({"name": name, "description": "work"}),
        )
        .await
        .expect(201);
    b["id"].as_str().expect("branch id").to_string()
}

/// The table path of `t` in branch `id`.
fn in_branch(id: &str) -> String {
    format!("/projects/1/branches/{id}/buckets/b/tables/t")
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

async fn upload(app: &TestApp, key: &str, csv: String) -> Value {
    let res = app
        .client
        .post(app.url("/projects/1/files/content?name=rows.csv"))
        .bearer_auth(key)
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

fn names(list: &Value) -> Vec<(String, String)> {
    list["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn branches_are_created_listed_described_and_deleted() {
    let (app, key) = world(3).await;
    let created = app
        .post("/projects/1/branches", &key, json!({"name": "feature"}))
        .await
        .expect(201);
    for field in [
        "id",
        "project_id",
        "name",
        "created_at",
        "created_by",
        "description",
        "table_count",
        "size_bytes",
    ] {
        assert!(created.get(field).is_some(), "{field} missing: {created}");
    }
    assert_eq!(created["table_count"], 0);
    let id = created["id"].as_str().unwrap().to_string();
    app.post("/projects/1/branches", &key, json!({"name": "feature"}))
        .await
        .expect_code(409, "branch_name_exists");
    let second = branch(&app, &key, "second").await;

    let list = app.get("/projects/1/branches", &key).await.expect(200);
    assert_eq!(list["count"], 2);
    assert_eq!(list["branches"][0]["id"], second, "newest first: {list}");
    let page = app
        .get("/projects/1/branches?limit=1&offset=1", &key)
        .await
        .expect(200);
    assert_eq!(page["branches"][0]["id"], id.as_str());
    app.get("/projects/1/branches?limit=0", &key)
        .await
        .expect(422);

    let detail = app
        .get(&format!("/projects/1/branches/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(detail["copied_tables"], json!([]));
    for missing in ["nope", "0190000000007000800000000000000a"] {
        app.get(&format!("/projects/1/branches/{missing}"), &key)
            .await
            .expect_code(404, "branch_not_found");
        app.get(
            &format!("/projects/1/branches/{missing}/buckets/b/tables"),
            &key,
        )
        .await
        .expect_code(404, "branch_not_found");
    }
    app.call(
        Method::DELETE,
        &format!("/projects/1/branches/{id}"),
        Some(&key),
        None,
    )
    .await
    .expect(204);
    app.get(&format!("/projects/1/branches/{id}"), &key)
        .await
        .expect_code(404, "branch_not_found");
}

#[tokio::test]
async fn a_branch_reads_main_live_until_it_writes_then_neither_side_sees_the_other() {
    let (app, key) = world(10).await;
    let id = branch(&app, &key, "dev").await;
    let table = in_branch(&id);

    // Before any write the branch reads main's table live: a main write shows through.
    delete_rows(&app, &key, MAIN, "id = 10").await;
    assert_eq!(rows(&app, &key, &table).await, 9);
    let preview = app
        .get(&format!("{table}/preview?order_by=id&limit=3"), &key)
        .await
        .expect(200);
    assert_eq!(
        preview["rows"].as_array().map(Vec::len),
        Some(3),
        "{preview}"
    );

    // The branch's first write copies the table; main keeps its rows.
    delete_rows(&app, &key, &table, "id > 5").await;
    assert_eq!(rows(&app, &key, &table).await, 5);
    assert_eq!(rows(&app, &key, MAIN).await, 9);
    let detail = app
        .get(&format!("/projects/1/branches/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(detail["copied_tables"][0]["table_name"], "t", "{detail}");
    assert_eq!(detail["table_count"], 1);
    assert!(detail["size_bytes"].as_u64().unwrap() > 0);

    // And a main write after the copy is invisible in the branch.
    delete_rows(&app, &key, MAIN, "id < 3").await;
    assert_eq!(rows(&app, &key, MAIN).await, 7);
    assert_eq!(rows(&app, &key, &table).await, 5);
    let listed = app
        .get(&format!("/projects/1/branches/{id}/buckets/b/tables"), &key)
        .await
        .expect(200);
    assert_eq!(names(&listed), vec![("t".into(), "branch".into())]);
    let main_list = app
        .get("/projects/1/buckets/b/tables", &key)
        .await
        .expect(200);
    assert_eq!(names(&main_list), vec![("t".into(), "main".into())]);
}

#[tokio::test]
async fn every_write_kind_in_a_branch_copies_first_and_leaves_main_alone() {
    let (app, key) = world(4).await;

    // Schema change.
    let id = branch(&app, &key, "schema").await;
    app.post(
        &format!("{}/columns", in_branch(&id)),
        &key,
        json!({"name": "extra", "type": "VARCHAR"}),
    )
    .await
    .expect(201);
    let main = app.get(MAIN, &key).await.expect(200);
    assert_eq!(main["columns"].as_array().unwrap().len(), 2, "{main}");
    let copy = app.get(&in_branch(&id), &key).await.expect(200);
    assert_eq!(copy["columns"].as_array().unwrap().len(), 3, "{copy}");

    // Import (incremental upsert of a file).
    let id = branch(&app, &key, "import").await;
    let file = upload(&app, &key, "id,name\n100,x\n101,y\n".into()).await;
    app.post(
        &format!("{}/import/file", in_branch(&id)),
        &key,
        json!({"file_id": file["id"], "import_options": {"incremental": true}}),
    )
    .await
    .expect(200);
    assert_eq!(rows(&app, &key, &in_branch(&id)).await, 6);
    assert_eq!(rows(&app, &key, MAIN).await, 4);

    // Table delete: hidden in the branch only.
    let id = branch(&app, &key, "drop").await;
    app.call(Method::DELETE, &in_branch(&id), Some(&key), None)
        .await
        .expect(204);
    app.get(&in_branch(&id), &key)
        .await
        .expect_code(404, "table_not_found");
    assert_eq!(rows(&app, &key, MAIN).await, 4);
    let listed = app
        .get(&format!("/projects/1/branches/{id}/buckets/b/tables"), &key)
        .await
        .expect(200);
    assert!(names(&listed).is_empty(), "{listed}");

    // Table create: a branch-only table, listed with its source, absent from main.
    let id = branch(&app, &key, "create").await;
    app.post(
        &format!("/projects/1/branches/{id}/buckets/b/tables"),
        &key,
        json!({"name": "fresh", "columns": [{"name": "k", "type": "INTEGER"}]}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/projects/1/branches/{id}/buckets/b/tables"),
        &key,
        json!({"name": "t", "columns": [{"name": "k", "type": "INTEGER"}]}),
    )
    .await
    .expect_code(409, "table_exists");
    let listed = app
        .get(&format!("/projects/1/branches/{id}/buckets/b/tables"), &key)
        .await
        .expect(200);
    assert_eq!(
        names(&listed),
        vec![
            ("fresh".into(), "branch".into()),
            ("t".into(), "main".into())
        ]
    );
    app.get("/projects/1/buckets/b/tables/fresh", &key)
        .await
        .expect_code(404, "table_not_found");

    // Buckets and sharing are main's.
    app.post(
        &format!("/projects/1/branches/{id}/buckets"),
        &key,
        json!({"name": "nb"}),
    )
    .await
    .expect_code(400, "operation_not_allowed");
    app.call(
        Method::DELETE,
        &format!("/projects/1/branches/{id}/buckets/b"),
        Some(&key),
        None,
    )
    .await
    .expect_code(400, "operation_not_allowed");
}

#[tokio::test]
async fn pull_drops_the_branch_copy_so_the_table_reads_main_again() {
    let (app, key) = world(6).await;
    let id = branch(&app, &key, "dev").await;
    let pull = format!("/projects/1/branches/{id}/tables/b/t/pull");
    let first = app.post(&pull, &key, json!({})).await.expect(200);
    assert_eq!(first["was_local"], false);
    assert_eq!(first["message"], "Table was already reading from main");

    delete_rows(&app, &key, &in_branch(&id), "id > 1").await;
    assert_eq!(rows(&app, &key, &in_branch(&id)).await, 1);
    let pulled = app.post(&pull, &key, json!({})).await.expect(200);
    assert_eq!(pulled["was_local"], true, "{pulled}");
    assert_eq!(pulled["message"], "Table now reads from main (live view)");
    assert_eq!(pulled["bucket_name"], "b");
    assert_eq!(rows(&app, &key, &in_branch(&id)).await, 6);
    app.post(
        &format!("/projects/1/branches/{id}/tables/b/nope/pull"),
        &key,
        json!({}),
    )
    .await
    .expect_code(404, "table_not_found");
}

#[tokio::test]
async fn merge_applies_copies_creations_and_deletions_and_refuses_conflicts_unless_forced() {
    let (app, key) = world(10).await;
    // A second main table the branch will delete.
    app.post(
        "/projects/1/buckets/b/tables",
        &key,
        json!({"name": "old", "columns": [{"name": "k", "type": "INTEGER"}]}),
    )
    .await
    .expect(201);
    let id = branch(&app, &key, "dev").await;
    delete_rows(&app, &key, &in_branch(&id), "id > 4").await;
    app.post(
        &format!("{}/columns", in_branch(&id)),
        &key,
        json!({"name": "extra", "type": "VARCHAR"}),
    )
    .await
    .expect(201);
    app.post(
        &format!("/projects/1/branches/{id}/buckets/b/tables"),
        &key,
        json!({"name": "fresh", "columns": [{"name": "k", "type": "INTEGER"}], "primary_key": ["k"]}),
    )
    .await
    .expect(201);
    app.call(
        Method::DELETE,
        &format!("/projects/1/branches/{id}/buckets/b/tables/old"),
        Some(&key),
        None,
    )
    .await
    .expect(204);

    let diff = app
        .get(&format!("/projects/1/branches/{id}/diff"), &key)
        .await
        .expect(200);
    assert_eq!(diff["count"], 3, "{diff}");
    let of = |name: &str| {
        diff["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table_name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {diff}"))
    };
    let t = of("t");
    assert_eq!(t["change"], "copied");
    assert_eq!(t["main"]["row_count"], 10);
    assert_eq!(t["branch"]["row_count"], 4);
    assert_eq!(t["schema_changes"]["added"], json!(["extra"]));
    assert_eq!(t["conflict"], false);
    assert_eq!(of("fresh")["change"], "created");
    assert_eq!(of("fresh")["main"], Value::Null);
    assert_eq!(of("old")["change"], "deleted");

    // Main changes after the copy: the merge refuses, merging nothing.
    delete_rows(&app, &key, MAIN, "id = 10").await;
    let refused = app
        .post(&format!("/projects/1/branches/{id}/merge"), &key, json!({}))
        .await
        .expect_code(409, "merge_conflict");
    assert_eq!(
        refused["details"]["conflicts"],
        json!([{"bucket_name": "b", "table_name": "t"}]),
        "{refused}"
    );
    assert_eq!(rows(&app, &key, MAIN).await, 9);
    app.get("/projects/1/buckets/b/tables/old", &key)
        .await
        .expect(200);

    // Only the tables without a conflict, then the rest by force.
    let some = app
        .post(
            &format!("/projects/1/branches/{id}/merge"),
            &key,
            json!({"tables": ["b.fresh", "b.old"]}),
        )
        .await
        .expect(200);
    assert_eq!(some["count"], 2, "{some}");
    app.get("/projects/1/buckets/b/tables/fresh", &key)
        .await
        .expect(200);
    app.get("/projects/1/buckets/b/tables/old", &key)
        .await
        .expect_code(404, "table_not_found");
    let forced = app
        .post(
            &format!("/projects/1/branches/{id}/merge?force=true"),
            &key,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(forced["merged"][0]["action"], "updated", "{forced}");
    let main = app.get(MAIN, &key).await.expect(200);
    assert_eq!(main["row_count"], 4, "{main}");
    assert_eq!(main["columns"].as_array().unwrap().len(), 3);
    assert_eq!(main["primary_key"], json!(["id"]));
    // Merged tables read main again in the branch; nothing is left to merge.
    let diff = app
        .get(&format!("/projects/1/branches/{id}/diff"), &key)
        .await
        .expect(200);
    assert_eq!(diff["count"], 0, "{diff}");
    // Merging from main itself is not a thing.
    app.post("/projects/1/branches/default/merge", &key, json!({}))
        .await
        .expect_code(400, "operation_not_allowed");
}

#[tokio::test]
async fn deleting_a_branch_removes_its_copies_and_keys_and_survives_restarts_before() {
    let (app, key) = world(5).await;
    let id = branch(&app, &key, "dev").await;
    let issued = app
        .post(
            "/projects/1/api-keys",
            &key,
            json!({"scope": "branch_admin", "branch_id": id, "description": "dev key"}),
        )
        .await
        .expect(201);
    let branch_key = issued["api_key"].as_str().unwrap().to_string();
    // The branch key writes in its branch (copy-on-write) and cannot reach main's writes.
    delete_rows(&app, &branch_key, &in_branch(&id), "id > 2").await;
    app.call(
        Method::DELETE,
        &format!("{MAIN}/rows"),
        Some(&branch_key),
        Some(json!({"where_clause": "id > 2"})),
    )
    .await
    .expect(403);
    app.post(
        "/projects/1/api-keys",
        &key,
        json!({"scope": "branch_read", "branch_id": "nope", "description": "x"}),
    )
    .await
    .expect_code(404, "branch_not_found");

    // A restart keeps the branch and its copy (the start-up sweep knows branch files).
    let app = app.restart().await;
    assert_eq!(rows(&app, &key, &in_branch(&id)).await, 2);
    assert_eq!(rows(&app, &key, MAIN).await, 5);
    let quarantined = app.get("/admin/quarantine", ADMIN_KEY).await.expect(200);
    assert_eq!(quarantined["total"], 0, "{quarantined}");

    let dir = app.data_dir.join(format!("duckdb/project_1/branch.{id}"));
    assert!(dir.exists());
    app.call(
        Method::DELETE,
        &format!("/projects/1/branches/{id}"),
        Some(&key),
        None,
    )
    .await
    .expect(204);
    assert!(!dir.exists(), "the branch's files are gone");
    app.get(MAIN, &branch_key).await.expect(401);
    assert_eq!(rows(&app, &key, MAIN).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_a_merge_leaves_main_whole_old_or_whole_new() {
    use crate::helpers::ServerProcess;
    let (server, key) = ServerProcess::with_killable_table().await;
    let upload = |csv: String| server.upload_csv(&key, "rows.csv", csv);
    let small = upload(rows_csv(1..=100)).await;
    server
        .post(
            "/projects/1/buckets/b/tables/t/import/file",
            &key,
            json!({"file_id": small["id"]}),
        )
        .await
        .expect(200);
    let b = server
        .post("/projects/1/branches", &key, json!({"name": "big"}))
        .await
        .expect(201);
    let id = b["id"].as_str().unwrap().to_string();
    const BIG: u64 = 3_000_000;
    let big = upload(rows_csv(1..=BIG)).await;
    server
        .post(
            &format!("{}/import/file", in_branch(&id)),
            &key,
            json!({"file_id": big["id"], "import_options": {"incremental": false}}),
        )
        .await
        .expect(200);

    let server = server
        .kill_during_post(&format!("/projects/1/branches/{id}/merge"), &key, "merge")
        .await;
    let t = server
        .get("/projects/1/buckets/b/tables/t", &key)
        .await
        .expect(200);
    assert_eq!(t["row_count"], 100, "main's old table, whole: {t}");
    // The branch still has its table, and merging it again completes.
    let done = server
        .post(&format!("/projects/1/branches/{id}/merge"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(done["merged"][0]["row_count"], BIG, "{done}");
    let t = server
        .get("/projects/1/buckets/b/tables/t", &key)
        .await
        .expect(200);
    assert_eq!(t["row_count"], BIG);
}

#[tokio::test]
async fn a_branch_workspace_reads_the_branch_and_goes_with_the_branch() {
    let (app, key) = world(5).await;
    let id = branch(&app, &key, "dev").await;
    delete_rows(&app, &key, &in_branch(&id), "id > 2").await;
    let ws = app
        .post(
            &format!("/projects/1/branches/{id}/workspaces"),
            &key,
            json!({"name": "w"}),
        )
        .await
        .expect(201);
    let ws_id = ws["id"].as_str().expect("workspace id").to_string();
    let count = |sql: &'static str| {
        let (app, key, ws_id) = (&app, &key, &ws_id);
        async move {
            let body = app
                .post(
                    &format!("/projects/1/workspaces/{ws_id}/query"),
                    key,
                    json!({ "sql": sql }),
                )
                .await
                .expect(200);
            body["rows"][0][0].clone()
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM b_t").await,
        2,
        "the branch's rows"
    );
    let loaded = app
        .post(
            &format!("/projects/1/workspaces/{ws_id}/load"),
            &key,
            json!({"tables": [{"source": "b.t", "destination": "mine"}]}),
        )
        .await
        .expect(200);
    assert_eq!(loaded["loaded"][0]["rows"], 2, "{loaded}");
    app.call(
        Method::DELETE,
        &format!("/projects/1/branches/{id}"),
        Some(&key),
        None,
    )
    .await
    .expect(204);
    app.get(&format!("/projects/1/workspaces/{ws_id}"), &key)
        .await
        .expect(404);
}
