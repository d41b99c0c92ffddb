//! Sharing, black-box: a project shares a bucket, another links it and reads the source's tables
//! through the link; every way of ending the share cuts those reads off, links and read-only
//! grants refuse writes, and nobody can share what is not theirs.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, ADMIN_KEY};

const A: &str = "100";
const B: &str = "200";
const SHARED: &str = "in_c_share";
const TABLE: &str = "orders";
const LINK: &str = "linked";

/// Project A with bucket `in_c_share` holding `orders(id, amount)` with two rows, and
/// project B. Nothing is shared yet.
struct World {
    app: TestApp,
    key_a: String,
    key_b: String,
}

async fn world() -> World {
    let app = spawn_app().await;
    let key_a = app.create_project(A).await;
    let key_b = app.create_project(B).await;
    app.create_bucket(A, &key_a, SHARED).await;
    app.create_table(
        A,
        &key_a,
        SHARED,
        TABLE,
        &[("id", "INTEGER"), ("amount", "DECIMAL(10,2)")],
        &["id"],
    )
    .await;
    app.create_table(
        A,
        &key_a,
        SHARED,
        "customers",
        &[("id", "INTEGER"), ("name", "VARCHAR")],
        &[],
    )
    .await;
    let app = app
        .edit_table_file(
            A,
            SHARED,
            TABLE,
            "INSERT INTO data VALUES (1, 9.99), (2, 20.00);",
        )
        .await;
    World { app, key_a, key_b }
}

fn share_path(prefix: &str, project: &str, bucket: &str) -> String {
    format!("{prefix}/projects/{project}/buckets/{bucket}/share")
}

async fn share(w: &World, target: &str) -> Value {
    w.app
        .post(
            &share_path("", A, SHARED),
            &w.key_a,
            json!({ "target_project_id": target }),
        )
        .await
        .expect(200)
}

async fn link(w: &World) -> Value {
    w.app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/link"),
            &w.key_b,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect(201)
}

/// The three reads B does through its link, with their statuses.
async fn link_reads(w: &World) -> [(String, u16, Value); 3] {
    let paths = [
        format!("/projects/{B}/buckets/{LINK}/tables"),
        format!("/projects/{B}/buckets/{LINK}/tables/{TABLE}"),
        format!("/projects/{B}/buckets/{LINK}/tables/{TABLE}/preview"),
    ];
    let mut out = Vec::new();
    for p in paths {
        let r = w.app.get(&p, &w.key_b).await;
        out.push((p, r.status.as_u16(), r.body));
    }
    out.try_into().expect("three reads")
}

#[track_caller]
fn assert_reads(reads: &[(String, u16, Value); 3], status: u16, when: &str) {
    for (path, got, body) in reads {
        assert_eq!(*got, status, "{when}: GET {path} answered {got}: {body}");
        if status >= 400 {
            assert!(
                body["error"].is_string() && body.get("details").is_some(),
                "{when}: {path}: {body}"
            );
        }
    }
}

fn table_names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["tables"]
        .as_array()
        .expect("tables array")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

fn bucket_names(list: &Value) -> Vec<String> {
    list["buckets"]
        .as_array()
        .expect("buckets array")
        .iter()
        .map(|b| b["name"].as_str().expect("name").to_string())
        .collect()
}

fn new_table_body(name: &str) -> Value {
    json!({ "name": name, "columns": [{ "name": "id", "type": "INTEGER" }] })
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn shared_bucket_can_be_linked_and_read_through_the_link() {
    let w = world().await;
    let shared = share(&w, B).await;
    assert_eq!(shared["shared_with"], json!([B]), "share reply: {shared}");

    let bucket = link(&w).await;
    assert_eq!(bucket["name"], LINK);
    assert_eq!(bucket["is_linked"], true, "{bucket}");
    assert_eq!(bucket["source_project_id"], A, "{bucket}");
    assert_eq!(bucket["source_bucket_name"], SHARED, "{bucket}");
    assert_eq!(bucket["readonly"], true, "{bucket}");

    // B's bucket list shows the link.
    let list = w
        .app
        .get(&format!("/projects/{B}/buckets"), &w.key_b)
        .await
        .expect(200);
    let listed = list["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == LINK)
        .expect("linked bucket in B's list")
        .clone();
    assert_eq!(listed["is_linked"], true);
    assert_eq!(listed["table_count"], 2, "{listed}");
    // A's bucket records the share.
    let source = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(source["shared_with"], json!([B]));
    assert_eq!(source["is_linked"], false);

    // Tables of A, seen from B.
    let tables = w
        .app
        .get(&format!("/projects/{B}/buckets/{LINK}/tables"), &w.key_b)
        .await
        .expect(200);
    assert_eq!(table_names(&tables), vec!["customers", TABLE]);

    let table = w
        .app
        .get(
            &format!("/projects/{B}/buckets/{LINK}/tables/{TABLE}"),
            &w.key_b,
        )
        .await
        .expect(200);
    assert_eq!(table["name"], TABLE);
    assert_eq!(table["row_count"], 2, "{table}");
    assert_eq!(table["primary_key"], json!(["id"]));
    let columns: Vec<&str> = table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["id", "amount"]);

    let preview = w
        .app
        .get(
            &format!("/projects/{B}/buckets/{LINK}/tables/{TABLE}/preview"),
            &w.key_b,
        )
        .await
        .expect(200);
    assert_eq!(preview["total_row_count"], 2, "{preview}");
    let rows = preview["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    let mut ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().expect("id")).collect();
    ids.sort();
    assert_eq!(ids, [1, 2]);
    let one = rows.iter().find(|r| r["id"] == 1).unwrap();
    assert_eq!(one["amount"].to_string(), "9.99");
}

#[tokio::test]
async fn sharing_does_not_give_direct_access_to_the_source_project() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    for path in [
        format!("/projects/{A}/buckets"),
        format!("/projects/{A}/buckets/{SHARED}/tables"),
        format!("/projects/{A}/buckets/{SHARED}/tables/{TABLE}/preview"),
    ] {
        w.app.get(&path, &w.key_b).await.expect_error(403);
    }
}

#[tokio::test]
async fn linking_without_a_share_is_forbidden() {
    let w = world().await;
    let r = w
        .app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/link"),
            &w.key_b,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await;
    let body = r.expect_error(403);
    assert_eq!(body["error"], "forbidden");
    // Nothing was created in B.
    let list = w
        .app
        .get(&format!("/projects/{B}/buckets"), &w.key_b)
        .await
        .expect(200);
    assert!(bucket_names(&list).is_empty(), "{list}");

    // Sharing with a third project does not let B link either.
    w.app.create_project("300").await;
    share(&w, "300").await;
    w.app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/link"),
            &w.key_b,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect_error(403);
}

#[tokio::test]
async fn linking_a_missing_source_answers_404() {
    let w = world().await;
    share(&w, B).await;
    for (label, body) in [
        (
            "missing bucket",
            json!({ "source_project_id": A, "source_bucket_name": "in_c_nope" }),
        ),
        (
            "missing project",
            json!({ "source_project_id": "999", "source_bucket_name": SHARED }),
        ),
    ] {
        let r = w
            .app
            .post(
                &format!("/projects/{B}/buckets/{LINK}/link"),
                &w.key_b,
                body,
            )
            .await;
        assert_eq!(r.status.as_u16(), 404, "{label}: {}", r.body);
        r.expect_error(404);
    }
    let list = w
        .app
        .get(&format!("/projects/{B}/buckets"), &w.key_b)
        .await
        .expect(200);
    assert!(bucket_names(&list).is_empty(), "{list}");
}

#[tokio::test]
async fn link_requests_with_bad_sources_are_rejected() {
    let w = world().await;
    share(&w, B).await;
    // A project cannot link its own bucket.
    w.app
        .post(
            &format!("/projects/{A}/buckets/self_link/link"),
            &w.key_a,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect_error(400);
    // Bad names in the body.
    w.app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/link"),
            &w.key_b,
            json!({ "source_project_id": A, "source_bucket_name": "../in_c_share" }),
        )
        .await
        .expect_error(400);
    // A link cannot take the name of an existing bucket.
    w.app.create_bucket(B, &w.key_b, "taken").await;
    w.app
        .post(
            &format!("/projects/{B}/buckets/taken/link"),
            &w.key_b,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect_error(409);
}

#[tokio::test]
async fn writes_into_a_linked_bucket_are_forbidden() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    let r = w
        .app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/tables"),
            &w.key_b,
            new_table_body("sneaky"),
        )
        .await;
    assert_eq!(r.expect_error(403)["error"], "bucket_read_only");
    // Also under the name of an existing source table.
    w.app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/tables"),
            &w.key_b,
            new_table_body(TABLE),
        )
        .await
        .expect_error(403);
    w.app
        .delete(
            &format!("/projects/{B}/buckets/{LINK}/tables/{TABLE}"),
            &w.key_b,
        )
        .await
        .expect_error(403);
    // Even the admin cannot write through a link.
    w.app
        .delete(
            &format!("/projects/{B}/buckets/{LINK}/tables/{TABLE}"),
            ADMIN_KEY,
        )
        .await
        .expect_error(403);
    // A's table and data are untouched, and nothing appeared in A's bucket.
    let tables = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}/tables"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(table_names(&tables), vec!["customers", TABLE]);
    let preview = w
        .app
        .get(
            &format!("/projects/{A}/buckets/{SHARED}/tables/{TABLE}/preview"),
            &w.key_a,
        )
        .await
        .expect(200);
    assert_eq!(preview["total_row_count"], 2);
    assert!(
        !w.app
            .data_dir
            .join(format!("duckdb/project_{B}/{LINK}"))
            .exists(),
        "a directory was created for the linked bucket"
    );
}

#[tokio::test]
async fn linked_bucket_cannot_be_shared_further() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    w.app.create_project("300").await;
    w.app
        .post(
            &share_path("", B, LINK),
            &w.key_b,
            json!({ "target_project_id": "300" }),
        )
        .await
        .expect_error(400);
}

#[tokio::test]
async fn unsharing_cuts_off_reads_through_the_link_and_resharing_restores_them() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    assert_reads(&link_reads(&w).await, 200, "while shared");

    w.app
        .delete(
            &format!("{}?target_project_id={B}", share_path("", A, SHARED)),
            &w.key_a,
        )
        .await
        .expect(204);
    assert_reads(&link_reads(&w).await, 403, "after unshare");
    let source = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(source["shared_with"], json!([]));
    // The link itself stays in B's list, showing no tables.
    let list = w
        .app
        .get(&format!("/projects/{B}/buckets"), &w.key_b)
        .await
        .expect(200);
    let listed = list["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == LINK)
        .cloned();
    let listed = listed.expect("link still listed");
    assert_eq!(listed["table_count"], 0, "{listed}");

    // Unsharing again: nothing to unshare.
    w.app
        .delete(
            &format!("{}?target_project_id={B}", share_path("", A, SHARED)),
            &w.key_a,
        )
        .await
        .expect_error(404);

    share(&w, B).await;
    assert_reads(&link_reads(&w).await, 200, "after re-sharing");
}

#[tokio::test]
async fn unshare_accepts_the_target_in_a_json_body() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    w.app
        .call(
            Method::DELETE,
            &share_path("", A, SHARED),
            Some(w.key_a.as_str()),
            Some(json!({ "target_project_id": B })),
        )
        .await
        .expect(204);
    assert_reads(&link_reads(&w).await, 403, "after unshare by body");
}

#[tokio::test]
async fn deleting_the_source_bucket_cuts_off_reads_through_the_link() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    w.app
        .delete(
            &format!("/projects/{A}/buckets/{SHARED}?force=true"),
            &w.key_a,
        )
        .await
        .expect(204);
    assert_reads(
        &link_reads(&w).await,
        403,
        "after the source bucket was deleted",
    );

    // A new bucket under the same name is not shared: the stale link must not see it.
    w.app.create_bucket(A, &w.key_a, SHARED).await;
    w.app
        .create_table(A, &w.key_a, SHARED, TABLE, &[("secret", "VARCHAR")], &[])
        .await;
    assert_reads(
        &link_reads(&w).await,
        403,
        "after the name was reused without a share",
    );

    // B can still remove its dead link.
    w.app
        .delete(&format!("/projects/{B}/buckets/{LINK}/link"), &w.key_b)
        .await
        .expect(204);
}

#[tokio::test]
async fn deleting_the_source_project_cuts_off_reads_through_the_link() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    w.app
        .delete(&format!("/projects/{A}"), ADMIN_KEY)
        .await
        .expect(204);
    assert_reads(
        &link_reads(&w).await,
        403,
        "after the source project was deleted",
    );

    // Re-creating the project id does not revive the link.
    let key_a = w.app.create_project(A).await;
    w.app.create_bucket(A, &key_a, SHARED).await;
    w.app
        .create_table(A, &key_a, SHARED, TABLE, &[("id", "INTEGER")], &[])
        .await;
    assert_reads(
        &link_reads(&w).await,
        403,
        "after the source project id was reused",
    );
}

#[tokio::test]
async fn unlinking_removes_the_link_and_leaves_the_source_untouched() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    w.app
        .delete(&format!("/projects/{B}/buckets/{LINK}/link"), &w.key_b)
        .await
        .expect(204);
    let list = w
        .app
        .get(&format!("/projects/{B}/buckets"), &w.key_b)
        .await
        .expect(200);
    assert!(!bucket_names(&list).contains(&LINK.to_string()), "{list}");
    w.app
        .get(&format!("/projects/{B}/buckets/{LINK}/tables"), &w.key_b)
        .await
        .expect_error(404);

    // A's data and share are untouched.
    let preview = w
        .app
        .get(
            &format!("/projects/{A}/buckets/{SHARED}/tables/{TABLE}/preview"),
            &w.key_a,
        )
        .await
        .expect(200);
    assert_eq!(preview["total_row_count"], 2);
    assert_eq!(preview["rows"].as_array().unwrap().len(), 2);
    let tables = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}/tables"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(table_names(&tables), vec!["customers", TABLE]);
    let source = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(source["shared_with"], json!([B]));
    assert!(w
        .app
        .data_dir
        .join(format!("duckdb/project_{A}/{SHARED}/{TABLE}.duckdb"))
        .is_file());

    // B can link again later.
    link(&w).await;
    assert_reads(&link_reads(&w).await, 200, "after linking again");
}

#[tokio::test]
async fn deleting_a_linked_bucket_like_a_bucket_leaves_the_source_untouched() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    w.app
        .delete(
            &format!("/projects/{B}/branches/default/buckets/{LINK}"),
            &w.key_b,
        )
        .await
        .expect(204);
    let preview = w
        .app
        .get(
            &format!("/projects/{A}/buckets/{SHARED}/tables/{TABLE}/preview"),
            &w.key_a,
        )
        .await
        .expect(200);
    assert_eq!(preview["total_row_count"], 2);
    assert!(w
        .app
        .data_dir
        .join(format!("duckdb/project_{A}/{SHARED}/{TABLE}.duckdb"))
        .is_file());
}

#[tokio::test]
async fn unlink_of_an_ordinary_bucket_is_rejected() {
    let w = world().await;
    w.app
        .delete(&format!("/projects/{A}/buckets/{SHARED}/link"), &w.key_a)
        .await
        .expect_error(400);
    // The bucket and its tables are still there.
    let tables = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}/tables"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(table_names(&tables).len(), 2);
    w.app
        .delete(&format!("/projects/{A}/buckets/in_c_nope/link"), &w.key_a)
        .await
        .expect_error(404);
}

#[tokio::test]
async fn grant_readonly_blocks_table_writes_but_not_reads_until_revoked() {
    let w = world().await;
    let grant = w
        .app
        .post(
            &format!("/projects/{A}/buckets/{SHARED}/grant-readonly"),
            &w.key_a,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(grant["status"], "success", "{grant}");
    assert_eq!(grant["success"], true, "{grant}");
    assert_eq!(grant["readonly"], true, "{grant}");
    assert_eq!(grant["bucket_name"], SHARED, "{grant}");
    let bucket = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(bucket["readonly"], true);

    for key in [w.key_a.as_str(), ADMIN_KEY] {
        w.app
            .post(
                &format!("/projects/{A}/buckets/{SHARED}/tables"),
                key,
                new_table_body("new_one"),
            )
            .await
            .expect_error(403);
        w.app
            .delete(
                &format!("/projects/{A}/buckets/{SHARED}/tables/{TABLE}"),
                key,
            )
            .await
            .expect_error(403);
    }
    // Reads still work.
    let tables = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}/tables"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(table_names(&tables), vec!["customers", TABLE]);
    w.app
        .get(
            &format!("/projects/{A}/buckets/{SHARED}/tables/{TABLE}"),
            &w.key_a,
        )
        .await
        .expect(200);
    let preview = w
        .app
        .get(
            &format!("/projects/{A}/buckets/{SHARED}/tables/{TABLE}/preview"),
            &w.key_a,
        )
        .await
        .expect(200);
    assert_eq!(preview["total_row_count"], 2);
    assert!(!w
        .app
        .data_dir
        .join(format!("duckdb/project_{A}/{SHARED}/new_one.duckdb"))
        .exists());

    // Granting twice is harmless; the grant survives a restart.
    w.app
        .post(
            &format!("/projects/{A}/buckets/{SHARED}/grant-readonly"),
            &w.key_a,
            json!({}),
        )
        .await
        .expect(200);
    let World { app, key_a, key_b } = w;
    let app = app.restart().await;
    let w = World { app, key_a, key_b };
    w.app
        .post(
            &format!("/projects/{A}/buckets/{SHARED}/tables"),
            &w.key_a,
            new_table_body("new_one"),
        )
        .await
        .expect_error(403);

    w.app
        .delete(
            &format!("/projects/{A}/buckets/{SHARED}/grant-readonly"),
            &w.key_a,
        )
        .await
        .expect(204);
    let bucket = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(bucket["readonly"], false);
    w.app
        .post(
            &format!("/projects/{A}/buckets/{SHARED}/tables"),
            &w.key_a,
            new_table_body("new_one"),
        )
        .await
        .expect(201);
    w.app
        .delete(
            &format!("/projects/{A}/buckets/{SHARED}/tables/new_one"),
            &w.key_a,
        )
        .await
        .expect(204);
}

#[tokio::test]
async fn grant_readonly_on_a_missing_bucket_answers_404() {
    let w = world().await;
    w.app
        .post(
            &format!("/projects/{A}/buckets/in_c_nope/grant-readonly"),
            &w.key_a,
            json!({}),
        )
        .await
        .expect_error(404);
    w.app
        .delete(
            &format!("/projects/{A}/buckets/in_c_nope/grant-readonly"),
            &w.key_a,
        )
        .await
        .expect_error(404);
}

#[tokio::test]
async fn revoking_readonly_is_idempotent_and_404_only_for_what_does_not_exist() {
    let w = world().await;
    let path = format!("/projects/{A}/buckets/{SHARED}/grant-readonly");
    // Nothing granted yet: nothing to revoke is still a success.
    w.app.delete(&path, &w.key_a).await.expect(204);
    let grant = w.app.post(&path, &w.key_a, json!({})).await.expect(200);
    assert_eq!(grant["status"], "success", "{grant}");
    assert_eq!(grant["bucket_name"], SHARED, "{grant}");
    w.app.delete(&path, &w.key_a).await.expect(204);
    w.app.delete(&path, &w.key_a).await.expect(204);
    let bucket = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(bucket["readonly"], false);

    // A missing project (seen by the admin) and a missing bucket are 404, each named.
    let body = w
        .app
        .delete(
            &format!("/projects/999/buckets/{SHARED}/grant-readonly"),
            ADMIN_KEY,
        )
        .await
        .expect_error(404);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("project") && message.contains("999"),
        "{body}"
    );
    let body = w
        .app
        .delete(
            &format!("/projects/{A}/buckets/in_c_nope/grant-readonly"),
            &w.key_a,
        )
        .await
        .expect_error(404);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("bucket") && message.contains("in_c_nope"),
        "{body}"
    );
}

#[tokio::test]
async fn readonly_grant_does_not_stop_reads_through_a_link() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    w.app
        .post(
            &format!("/projects/{A}/buckets/{SHARED}/grant-readonly"),
            &w.key_a,
            json!({}),
        )
        .await
        .expect(200);
    assert_reads(
        &link_reads(&w).await,
        200,
        "with a read-only grant on the source",
    );
}

#[tokio::test]
async fn sharing_with_a_missing_project_answers_404() {
    let w = world().await;
    let r = w
        .app
        .post(
            &share_path("", A, SHARED),
            &w.key_a,
            json!({ "target_project_id": "999" }),
        )
        .await;
    r.expect_error(404);
    let source = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(source["shared_with"], json!([]));
    // Sharing a missing bucket is 404 too.
    w.app
        .post(
            &share_path("", A, "in_c_nope"),
            &w.key_a,
            json!({ "target_project_id": B }),
        )
        .await
        .expect_error(404);
}

#[tokio::test]
async fn sharing_twice_answers_409() {
    let w = world().await;
    share(&w, B).await;
    let body = w
        .app
        .post(
            &share_path("", A, SHARED),
            &w.key_a,
            json!({ "target_project_id": B }),
        )
        .await
        .expect_error(409);
    assert_eq!(body["error"], "already_shared");
    let source = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(source["shared_with"], json!([B]));
}

#[tokio::test]
async fn sharing_with_its_own_project_answers_400() {
    let w = world().await;
    w.app
        .post(
            &share_path("", A, SHARED),
            &w.key_a,
            json!({ "target_project_id": A }),
        )
        .await
        .expect_error(400);
    w.app
        .post(
            &share_path("", A, SHARED),
            &w.key_a,
            json!({ "target_project_id": "../200" }),
        )
        .await
        .expect_error(400);
}

#[tokio::test]
async fn sharing_with_several_projects_lists_them_all() {
    let w = world().await;
    w.app.create_project("300").await;
    share(&w, B).await;
    let reply = share(&w, "300").await;
    assert_eq!(reply["shared_with"], json!([B, "300"]), "{reply}");
}

#[tokio::test]
async fn another_projects_key_cannot_share_unshare_or_grant_on_a_bucket() {
    let w = world().await;
    // B tries to share A's bucket with itself.
    let body = w
        .app
        .post(
            &share_path("", A, SHARED),
            &w.key_b,
            json!({ "target_project_id": B }),
        )
        .await
        .expect_error(403);
    assert_eq!(body["error"], "forbidden");
    let source = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(
        source["shared_with"],
        json!([]),
        "B's attempt left a share behind"
    );
    // And B still cannot link.
    w.app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/link"),
            &w.key_b,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect_error(403);

    // Once A shares, B cannot take it back on A's behalf, nor grant or revoke read-only.
    share(&w, B).await;
    w.app
        .delete(
            &format!("{}?target_project_id={B}", share_path("", A, SHARED)),
            &w.key_b,
        )
        .await
        .expect_error(403);
    w.app
        .post(
            &format!("/projects/{A}/buckets/{SHARED}/grant-readonly"),
            &w.key_b,
            json!({}),
        )
        .await
        .expect_error(403);
    w.app
        .delete(
            &format!("/projects/{A}/buckets/{SHARED}/grant-readonly"),
            &w.key_b,
        )
        .await
        .expect_error(403);
    // A cannot act on B's link or create links in B.
    link(&w).await;
    w.app
        .delete(&format!("/projects/{B}/buckets/{LINK}/link"), &w.key_a)
        .await
        .expect_error(403);
    w.app
        .post(
            &format!("/projects/{B}/buckets/other/link"),
            &w.key_a,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect_error(403);
}

#[tokio::test]
async fn the_admin_can_share_and_link_on_behalf_of_projects() {
    let w = world().await;
    w.app
        .post(
            &share_path("", A, SHARED),
            ADMIN_KEY,
            json!({ "target_project_id": B }),
        )
        .await
        .expect(200);
    w.app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/link"),
            ADMIN_KEY,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect(201);
    assert_reads(
        &link_reads(&w).await,
        200,
        "after the admin shared and linked",
    );
}

#[tokio::test]
async fn the_admin_can_link_a_bucket_that_was_not_shared_and_that_records_the_share() {
    let w = world().await;
    let bucket = w
        .app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/link"),
            ADMIN_KEY,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect(201);
    assert_eq!(bucket["is_linked"], true, "{bucket}");
    assert_eq!(bucket["source_project_id"], A, "{bucket}");
    // The operator acted for both projects: the share is on record, and B reads through it.
    let source = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(source["shared_with"], json!([B]), "{source}");
    assert_reads(&link_reads(&w).await, 200, "after the admin linked");
    // The owner can still take it back, which cuts the link off as usual.
    w.app
        .delete(
            &format!("{}?target_project_id={B}", share_path("", A, SHARED)),
            &w.key_a,
        )
        .await
        .expect(204);
    assert_reads(&link_reads(&w).await, 403, "after the owner unshared");
}

#[tokio::test]
async fn a_refused_admin_link_leaves_no_share_behind() {
    let w = world().await;
    w.app.create_bucket(B, &w.key_b, "taken").await;
    let cases = [
        (
            "taken",
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
            409,
        ),
        (
            LINK,
            json!({ "source_project_id": A, "source_bucket_name": "in_c_nope" }),
            404,
        ),
        (
            LINK,
            json!({ "source_project_id": "999", "source_bucket_name": SHARED }),
            404,
        ),
    ];
    for (name, body, status) in cases {
        w.app
            .post(
                &format!("/projects/{B}/buckets/{name}/link"),
                ADMIN_KEY,
                body,
            )
            .await
            .expect_error(status);
    }
    // Linking into the source project itself stays a 400 for the admin too.
    w.app
        .post(
            &format!("/projects/{A}/buckets/self_link/link"),
            ADMIN_KEY,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect_error(400);
    let source = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(source["shared_with"], json!([]), "{source}");
    // And a project key still needs the share.
    w.app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/link"),
            &w.key_b,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect_error(403);
}

#[tokio::test]
async fn the_whole_flow_works_through_the_branch_first_paths() {
    let w = world().await;
    let pa = format!("/projects/{A}/branches/default/buckets");
    let pb = format!("/projects/{B}/branches/default/buckets");

    let shared = w
        .app
        .post(
            &format!("{pa}/{SHARED}/share"),
            &w.key_a,
            json!({ "target_project_id": B }),
        )
        .await
        .expect(200);
    assert_eq!(shared["shared_with"], json!([B]));
    let linked = w
        .app
        .post(
            &format!("{pb}/{LINK}/link"),
            &w.key_b,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect(201);
    assert_eq!(linked["is_linked"], true);

    let tables = w
        .app
        .get(&format!("{pb}/{LINK}/tables"), &w.key_b)
        .await
        .expect(200);
    assert_eq!(table_names(&tables), vec!["customers", TABLE]);
    w.app
        .get(&format!("{pb}/{LINK}/tables/{TABLE}"), &w.key_b)
        .await
        .expect(200);
    let preview = w
        .app
        .get(&format!("{pb}/{LINK}/tables/{TABLE}/preview"), &w.key_b)
        .await
        .expect(200);
    assert_eq!(preview["rows"].as_array().unwrap().len(), 2);
    // The seed-style paths see the same link.
    assert_reads(
        &link_reads(&w).await,
        200,
        "seed paths after a branch-path link",
    );

    // Writes through the link are refused here too.
    w.app
        .post(
            &format!("{pb}/{LINK}/tables"),
            &w.key_b,
            new_table_body("sneaky"),
        )
        .await
        .expect_error(403);
    w.app
        .delete(&format!("{pb}/{LINK}/tables/{TABLE}"), &w.key_b)
        .await
        .expect_error(403);

    // Unshare through the branch path cuts the link off; re-share restores it.
    w.app
        .delete(
            &format!("{pa}/{SHARED}/share?target_project_id={B}"),
            &w.key_a,
        )
        .await
        .expect(204);
    w.app
        .get(&format!("{pb}/{LINK}/tables/{TABLE}/preview"), &w.key_b)
        .await
        .expect_error(403);
    w.app
        .post(
            &format!("{pa}/{SHARED}/share"),
            &w.key_a,
            json!({ "target_project_id": B }),
        )
        .await
        .expect(200);
    w.app
        .get(&format!("{pb}/{LINK}/tables/{TABLE}/preview"), &w.key_b)
        .await
        .expect(200);

    // Read-only grant through the branch path.
    w.app
        .post(
            &format!("{pa}/{SHARED}/grant-readonly"),
            &w.key_a,
            json!({}),
        )
        .await
        .expect(200);
    w.app
        .post(
            &format!("{pa}/{SHARED}/tables"),
            &w.key_a,
            new_table_body("blocked"),
        )
        .await
        .expect_error(403);
    w.app
        .delete(&format!("{pa}/{SHARED}/grant-readonly"), &w.key_a)
        .await
        .expect(204);
    w.app
        .post(
            &format!("{pa}/{SHARED}/tables"),
            &w.key_a,
            new_table_body("allowed"),
        )
        .await
        .expect(201);

    // Unlink through the branch path.
    w.app
        .delete(&format!("{pb}/{LINK}/link"), &w.key_b)
        .await
        .expect(204);
    let list = w.app.get(&pb, &w.key_b).await.expect(200);
    assert!(bucket_names(&list).is_empty(), "{list}");
    let preview = w
        .app
        .get(&format!("{pa}/{SHARED}/tables/{TABLE}/preview"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(preview["total_row_count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_racing_an_unshare_see_200_or_403_and_403_after_it() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for i in 0..4 {
        let client = w.app.client.clone();
        let key = w.key_b.clone();
        let url = if i % 2 == 0 {
            w.app.url(&format!(
                "/projects/{B}/buckets/{LINK}/tables/{TABLE}/preview"
            ))
        } else {
            w.app.url(&format!("/projects/{B}/buckets/{LINK}/tables"))
        };
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let res = client
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .expect("request");
                seen.push(res.status().as_u16());
            }
            seen
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for _ in 0..5 {
        w.app
            .delete(
                &format!("{}?target_project_id={B}", share_path("", A, SHARED)),
                &w.key_a,
            )
            .await
            .expect(204);
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        share(&w, B).await;
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    w.app
        .delete(
            &format!("{}?target_project_id={B}", share_path("", A, SHARED)),
            &w.key_a,
        )
        .await
        .expect(204);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for r in readers {
        let seen = r.await.expect("reader task");
        total += seen.len();
        for s in &seen {
            assert!(*s == 200 || *s == 403, "a read racing unshare answered {s}");
        }
    }
    assert!(total > 0, "readers made no requests");
    assert_reads(&link_reads(&w).await, 403, "after the final unshare");
}

#[tokio::test]
async fn shares_links_and_their_revocation_survive_a_restart() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    let World { app, key_a, key_b } = w;
    let w = World {
        app: app.restart().await,
        key_a,
        key_b,
    };
    assert_reads(&link_reads(&w).await, 200, "after a restart");
    let bucket = w
        .app
        .get(&format!("/projects/{B}/buckets/{LINK}"), &w.key_b)
        .await
        .expect(200);
    assert_eq!(bucket["is_linked"], true, "{bucket}");
    assert_eq!(bucket["source_bucket_name"], SHARED, "{bucket}");

    w.app
        .delete(
            &format!("{}?target_project_id={B}", share_path("", A, SHARED)),
            &w.key_a,
        )
        .await
        .expect(204);
    let World { app, key_a, key_b } = w;
    let w = World {
        app: app.restart().await,
        key_a,
        key_b,
    };
    assert_reads(&link_reads(&w).await, 403, "after unshare and a restart");
}

#[tokio::test]
async fn a_recreated_target_project_does_not_inherit_the_old_share() {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    w.app
        .delete(&format!("/projects/{B}"), ADMIN_KEY)
        .await
        .expect(204);
    let source = w
        .app
        .get(&format!("/projects/{A}/buckets/{SHARED}"), &w.key_a)
        .await
        .expect(200);
    assert_eq!(
        source["shared_with"],
        json!([]),
        "share to a deleted project remains"
    );

    let key_b = w.app.create_project(B).await;
    let list = w
        .app
        .get(&format!("/projects/{B}/buckets"), &key_b)
        .await
        .expect(200);
    assert!(bucket_names(&list).is_empty(), "{list}");
    w.app
        .post(
            &format!("/projects/{B}/buckets/{LINK}/link"),
            &key_b,
            json!({ "source_project_id": A, "source_bucket_name": SHARED }),
        )
        .await
        .expect_error(403);
}

#[tokio::test]
async fn a_read_only_bucket_cannot_be_deleted_until_the_grant_is_revoked() {
    let app = crate::helpers::spawn_app().await;
    let key = app.create_project("1").await;
    app.create_bucket("1", &key, "b").await;
    app.create_table("1", &key, "b", "t", &[("id", "INTEGER")], &[])
        .await;
    app.post(
        "/projects/1/buckets/b/grant-readonly",
        &key,
        serde_json::json!({}),
    )
    .await
    .expect(200);
    app.delete("/projects/1/buckets/b?force=true", &key)
        .await
        .expect_error(403);
    app.delete("/projects/1/branches/default/buckets/b", &key)
        .await
        .expect_error(403);
    assert!(app.data_dir.join("duckdb/project_1/b/t.duckdb").exists());
    app.delete("/projects/1/buckets/b/grant-readonly", &key)
        .await
        .expect(204);
    app.delete("/projects/1/buckets/b?force=true", &key)
        .await
        .expect(204);
}
