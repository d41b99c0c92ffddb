//! Linking: B links A's shared bucket and reads A's tables through it, but cannot write
//! through it, share it on, or reach A directly. Setup and requests live in `mod.rs`.

use serde_json::json;

use super::{
    assert_reads, bucket_names, link, link_reads, linked_world, listed_link, share, share_path,
    source_of_a, table_names, world, A, B, LINK, SHARED, TABLE,
};
use crate::helpers::{JsonClient, ADMIN_KEY};

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
    let list = w.b_buckets().await;
    let listed = listed_link(&list).expect("linked bucket in B's list");
    assert_eq!(listed["is_linked"], true);
    assert_eq!(listed["table_count"], 2, "{listed}");
    // A's bucket records the share.
    let source = w.source_bucket().await;
    assert_eq!(source["shared_with"], json!([B]));
    assert_eq!(source["is_linked"], false);

    // Tables of A, seen from B.
    let linked = format!("/projects/{B}/buckets/{LINK}/tables");
    let tables = w.read(&linked, &w.key_b).await;
    assert_eq!(table_names(&tables), vec!["customers", TABLE]);

    let table = w.read(&format!("{linked}/{TABLE}"), &w.key_b).await;
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

    let preview = w.read(&format!("{linked}/{TABLE}/preview"), &w.key_b).await;
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
    let w = linked_world().await;
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
    let r = w.link_as(&w.key_b, B, LINK, source_of_a()).await;
    let body = r.expect_error(403);
    assert_eq!(body["error"], "forbidden");
    // Nothing was created in B.
    let list = w.b_buckets().await;
    assert!(bucket_names(&list).is_empty(), "{list}");

    // Sharing with a third project does not let B link either.
    w.app.create_project("300").await;
    share(&w, "300").await;
    let r = w.link_as(&w.key_b, B, LINK, source_of_a()).await;
    r.expect_error(403);
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
        let r = w.link_as(&w.key_b, B, LINK, body).await;
        assert_eq!(r.status.as_u16(), 404, "{label}: {}", r.body);
        r.expect_error(404);
    }
    let list = w.b_buckets().await;
    assert!(bucket_names(&list).is_empty(), "{list}");
}

#[tokio::test]
async fn link_requests_with_bad_sources_are_rejected() {
    let w = world().await;
    share(&w, B).await;
    // A project cannot link its own bucket.
    let r = w.link_as(&w.key_a, A, "self_link", source_of_a()).await;
    r.expect_error(400);
    // Bad names in the body.
    let bad = json!({ "source_project_id": A, "source_bucket_name": "../in_c_share" });
    let r = w.link_as(&w.key_b, B, LINK, bad).await;
    r.expect_error(400);
    // A link cannot take the name of an existing bucket.
    w.app.create_bucket(B, &w.key_b, "taken").await;
    let r = w.link_as(&w.key_b, B, "taken", source_of_a()).await;
    r.expect_error(409);
}

#[tokio::test]
async fn writes_into_a_linked_bucket_are_forbidden() {
    let w = linked_world().await;
    let r = w.new_table_as(&w.key_b, B, LINK, "sneaky").await;
    assert_eq!(r.expect_error(403)["error"], "bucket_read_only");
    // Also under the name of an existing source table.
    let r = w.new_table_as(&w.key_b, B, LINK, TABLE).await;
    r.expect_error(403);
    let r = w.drop_table_as(&w.key_b, B, LINK, TABLE).await;
    r.expect_error(403);
    // Even the admin cannot write through a link.
    let r = w.drop_table_as(ADMIN_KEY, B, LINK, TABLE).await;
    r.expect_error(403);
    // A's table and data are untouched, and nothing appeared in A's bucket.
    let tables = w.source_tables().await;
    assert_eq!(table_names(&tables), vec!["customers", TABLE]);
    let preview = w.source_preview().await;
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
    let w = linked_world().await;
    w.app.create_project("300").await;
    let body = json!({ "target_project_id": "300" });
    let r = w.app.post(&share_path("", B, LINK), &w.key_b, body).await;
    r.expect_error(400);
}

#[tokio::test]
async fn unlinking_removes_the_link_and_leaves_the_source_untouched() {
    let w = linked_world().await;
    w.unlink_as(&w.key_b, B, LINK).await.expect(204);
    let list = w.b_buckets().await;
    assert!(!bucket_names(&list).contains(&LINK.to_string()), "{list}");
    let linked = format!("/projects/{B}/buckets/{LINK}/tables");
    w.app.get(&linked, &w.key_b).await.expect_error(404);

    // A's data and share are untouched.
    let preview = w.source_preview().await;
    assert_eq!(preview["total_row_count"], 2);
    assert_eq!(preview["rows"].as_array().unwrap().len(), 2);
    let tables = w.source_tables().await;
    assert_eq!(table_names(&tables), vec!["customers", TABLE]);
    let source = w.source_bucket().await;
    assert_eq!(source["shared_with"], json!([B]));
    assert!(w.source_file_exists(TABLE));

    // B can link again later.
    link(&w).await;
    assert_reads(&link_reads(&w).await, 200, "after linking again");
}

#[tokio::test]
async fn deleting_a_linked_bucket_like_a_bucket_leaves_the_source_untouched() {
    let w = linked_world().await;
    let path = format!("/projects/{B}/branches/default/buckets/{LINK}");
    w.app.delete(&path, &w.key_b).await.expect(204);
    let preview = w.source_preview().await;
    assert_eq!(preview["total_row_count"], 2);
    assert!(w.source_file_exists(TABLE));
}

#[tokio::test]
async fn unlink_of_an_ordinary_bucket_is_rejected() {
    let w = world().await;
    let r = w.unlink_as(&w.key_a, A, SHARED).await;
    r.expect_error(400);
    // The bucket and its tables are still there.
    let tables = w.source_tables().await;
    assert_eq!(table_names(&tables).len(), 2);
    let r = w.unlink_as(&w.key_a, A, "in_c_nope").await;
    r.expect_error(404);
}
