//! Read-only grants: a granted bucket refuses table writes (also to the admin and after a
//! restart) but not reads, until revoked; revoking is idempotent. Setup lives in `mod.rs`.

use serde_json::json;

use super::{
    assert_reads, link_reads, linked_world, readonly_path, table_names, world, A, SHARED, TABLE,
};
use crate::helpers::{JsonClient, ADMIN_KEY};

#[tokio::test]
async fn grant_readonly_blocks_table_writes_but_not_reads_until_revoked() {
    let w = world().await;
    let grant = w.grant_as(&w.key_a, A, SHARED).await.expect(200);
    assert_eq!(grant["status"], "success", "{grant}");
    assert_eq!(grant["success"], true, "{grant}");
    assert_eq!(grant["readonly"], true, "{grant}");
    assert_eq!(grant["bucket_name"], SHARED, "{grant}");
    let bucket = w.source_bucket().await;
    assert_eq!(bucket["readonly"], true);

    for key in [w.key_a.as_str(), ADMIN_KEY] {
        let r = w.new_table_as(key, A, SHARED, "new_one").await;
        r.expect_error(403);
        let r = w.drop_table_as(key, A, SHARED, TABLE).await;
        r.expect_error(403);
    }
    // Reads still work.
    let tables = w.source_tables().await;
    assert_eq!(table_names(&tables), vec!["customers", TABLE]);
    let path = format!("/projects/{A}/buckets/{SHARED}/tables/{TABLE}");
    w.read(&path, &w.key_a).await;
    let preview = w.source_preview().await;
    assert_eq!(preview["total_row_count"], 2);
    assert!(!w
        .app
        .data_dir
        .join(format!("duckdb/project_{A}/{SHARED}/new_one.duckdb"))
        .exists());

    // Granting twice is harmless; the grant survives a restart.
    w.grant_as(&w.key_a, A, SHARED).await.expect(200);
    let w = w.restarted().await;
    let r = w.new_table_as(&w.key_a, A, SHARED, "new_one").await;
    r.expect_error(403);

    w.revoke_as(&w.key_a, A, SHARED).await.expect(204);
    let bucket = w.source_bucket().await;
    assert_eq!(bucket["readonly"], false);
    let r = w.new_table_as(&w.key_a, A, SHARED, "new_one").await;
    r.expect(201);
    let r = w.drop_table_as(&w.key_a, A, SHARED, "new_one").await;
    r.expect(204);
}

#[tokio::test]
async fn grant_readonly_on_a_missing_bucket_answers_404() {
    let w = world().await;
    let r = w.grant_as(&w.key_a, A, "in_c_nope").await;
    r.expect_error(404);
    let r = w.revoke_as(&w.key_a, A, "in_c_nope").await;
    r.expect_error(404);
}

#[tokio::test]
async fn revoking_readonly_is_idempotent_and_404_only_for_what_does_not_exist() {
    let w = world().await;
    let path = readonly_path(A, SHARED);
    // Nothing granted yet: nothing to revoke is still a success.
    w.app.delete(&path, &w.key_a).await.expect(204);
    let grant = w.app.post(&path, &w.key_a, json!({})).await.expect(200);
    assert_eq!(grant["status"], "success", "{grant}");
    assert_eq!(grant["bucket_name"], SHARED, "{grant}");
    w.app.delete(&path, &w.key_a).await.expect(204);
    w.app.delete(&path, &w.key_a).await.expect(204);
    let bucket = w.source_bucket().await;
    assert_eq!(bucket["readonly"], false);

    // A missing project (seen by the admin) and a missing bucket are 404, each named.
    let r = w.revoke_as(ADMIN_KEY, "999", SHARED).await;
    let body = r.expect_error(404);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Project") && message.contains("999"),
        "{body}"
    );
    let r = w.revoke_as(&w.key_a, A, "in_c_nope").await;
    let body = r.expect_error(404);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Bucket") && message.contains("in_c_nope"),
        "{body}"
    );
}

#[tokio::test]
async fn readonly_grant_does_not_stop_reads_through_a_link() {
    let w = linked_world().await;
    w.grant_as(&w.key_a, A, SHARED).await.expect(200);
    let when = "with a read-only grant on the source";
    assert_reads(&link_reads(&w).await, 200, when);
}

#[tokio::test]
async fn a_read_only_bucket_cannot_be_deleted_until_the_grant_is_revoked() {
    let app = crate::helpers::spawn_app().await;
    let key = app.project_with_table(&[("id", "INTEGER")], &[]).await;
    let grant = "/projects/1/buckets/b/grant-readonly";
    let force = "/projects/1/buckets/b?force=true";
    app.post(grant, &key, serde_json::json!({}))
        .await
        .expect(200);
    app.delete(force, &key).await.expect_error(403);
    let by_branch = "/projects/1/branches/default/buckets/b";
    app.delete(by_branch, &key).await.expect_error(403);
    assert!(app.data_dir.join("duckdb/project_1/b/t.duckdb").exists());
    app.delete(grant, &key).await.expect(204);
    app.delete(force, &key).await.expect(204);
}
