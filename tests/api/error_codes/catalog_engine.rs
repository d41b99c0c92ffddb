//! Error-code tests for failures detected in catalog engine.
//! Each test provokes one failure over HTTP and checks status, `error` and `detail.error`.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::table_data::{import, setup, upload, T};

/// Uploads a file through the raw-body route and returns the reply.
async fn upload_reply(app: &TestApp, key: &str, name: &str, data: &[u8]) -> Reply {
    let path = format!("/projects/1/files/content?name={}", enc(name));
    app.send_raw(reqwest::Method::POST, &path, key, &[], data.to_vec())
        .await
}

/// POSTs `body` to `route` under table `table` of bucket b.
async fn post_to(app: &TestApp, key: &str, table: &str, route: &str, body: Value) -> Reply {
    app.post(&format!("{T}/{table}/{route}"), key, body).await
}

/// POSTs `body` to `route` of table `t`, expecting the refusal `status` with `code`.
async fn refused_on_t(app: &TestApp, key: &str, route: &str, body: Value, status: u16, code: &str) {
    post_to(app, key, "t", route, body)
        .await
        .expect_code(status, code);
}

/// Uploads `csv` and imports it into `table`; the import must succeed.
async fn load(app: &TestApp, key: &str, table: &str, csv: &[u8]) {
    let id = upload(app, key, "d.csv", csv).await;
    import(app, key, table, json!({ "file_id": id }))
        .await
        .expect(200);
}

/// Project 1 with bucket b and table t (id BIGINT primary key, v VARCHAR) holding two rows.
async fn with_table() -> (TestApp, String) {
    let (app, key) = setup().await;
    app.create_table(
        "1",
        &key,
        "b",
        "t",
        &[("id", "BIGINT"), ("v", "VARCHAR")],
        &["id"],
    )
    .await;
    load(&app, &key, "t", b"id,v\n1,a\n2,\n").await;
    (app, key)
}

/// Projects 1 and 2; project 1's bucket `shared` is shared with project 2.
async fn with_share() -> (TestApp, String, String) {
    let (app, key1, key2) = spawn_app_with_two_projects().await;
    app.create_bucket("1", &key1, "shared").await;
    app.share_bucket("1", &key1, "shared", "2")
        .await
        .expect(200);
    (app, key1, key2)
}

#[tokio::test]
async fn an_unknown_project_is_project_not_found() {
    let app = spawn_app().await;
    app.get("/projects/999", ADMIN_KEY)
        .await
        .expect_code(404, "project_not_found");
}

#[tokio::test]
async fn creating_a_project_twice_is_project_exists() {
    let app = spawn_app().await;
    app.create_project("1").await;
    app.post("/projects", ADMIN_KEY, json!({ "id": "1" }))
        .await
        .expect_code(409, "project_exists");
}

#[tokio::test]
async fn an_unknown_bucket_is_bucket_not_found() {
    let (app, key) = setup().await;
    let body = app
        .get("/projects/1/buckets/nope", &key)
        .await
        .expect_code(404, "bucket_not_found");
    assert_eq!(body["message"], "Bucket 'nope' not found in project '1'");
}

#[tokio::test]
async fn linking_under_a_taken_bucket_name_is_bucket_exists() {
    let (app, _key1, key2) = with_share().await;
    app.create_bucket("2", &key2, "taken").await;
    app.link_bucket("2", &key2, "taken", ("1", "shared"))
        .await
        .expect_code(409, "bucket_exists");
}

#[tokio::test]
async fn an_unknown_table_is_table_not_found() {
    let (app, key) = setup().await;
    app.get(&format!("{T}/nope"), &key)
        .await
        .expect_code(404, "table_not_found");
}

#[tokio::test]
async fn creating_a_table_twice_is_table_exists() {
    let (app, key) = with_table().await;
    let body = app
        .post(
            T,
            &key,
            json!({ "name": "t", "columns": [{ "name": "id", "type": "BIGINT" }] }),
        )
        .await
        .expect_code(409, "table_exists");
    assert_eq!(body["message"], "Table 't' already exists in bucket 'b'");
}

#[tokio::test]
async fn dropping_an_unknown_column_is_column_not_found() {
    let (app, key) = with_table().await;
    app.delete(&format!("{T}/t/columns/nope"), &key)
        .await
        .expect_code(404, "column_not_found");
}

#[tokio::test]
async fn adding_a_column_that_exists_is_column_exists() {
    let (app, key) = with_table().await;
    refused_on_t(
        &app,
        &key,
        "columns",
        json!({ "name": "v", "type": "VARCHAR" }),
        409,
        "column_exists",
    )
    .await;
}

#[tokio::test]
async fn dropping_a_primary_key_column_is_column_in_primary_key() {
    let (app, key) = with_table().await;
    app.delete(&format!("{T}/t/columns/id"), &key)
        .await
        .expect_code(400, "column_in_primary_key");
}

#[tokio::test]
async fn dropping_the_only_column_is_cannot_drop_last_column() {
    let (app, key) = setup().await;
    app.create_table("1", &key, "b", "solo", &[("only", "BIGINT")], &[])
        .await;
    app.delete(&format!("{T}/solo/columns/only"), &key)
        .await
        .expect_code(400, "cannot_drop_last_column");
}

#[tokio::test]
async fn adding_a_second_primary_key_is_primary_key_exists() {
    let (app, key) = with_table().await;
    refused_on_t(
        &app,
        &key,
        "primary-key",
        json!({ "columns": ["v"] }),
        409,
        "primary_key_exists",
    )
    .await;
}

#[tokio::test]
async fn dropping_a_missing_primary_key_is_no_primary_key() {
    let (app, key) = setup().await;
    app.create_table("1", &key, "b", "plain", &[("id", "BIGINT")], &[])
        .await;
    app.delete(&format!("{T}/plain/primary-key"), &key)
        .await
        .expect_code(400, "no_primary_key");
}

#[tokio::test]
async fn a_primary_key_on_an_unknown_column_is_invalid_primary_key() {
    let (app, key) = setup().await;
    app.create_table("1", &key, "b", "plain", &[("id", "BIGINT")], &[])
        .await;
    post_to(
        &app,
        &key,
        "plain",
        "primary-key",
        json!({ "columns": ["nope"] }),
    )
    .await
    .expect_code(400, "invalid_primary_key");
}

#[tokio::test]
async fn a_primary_key_over_repeated_values_is_duplicate_key() {
    let (app, key) = setup().await;
    app.create_table("1", &key, "b", "plain", &[("id", "BIGINT")], &[])
        .await;
    load(&app, &key, "plain", b"id\n1\n1\n").await;
    post_to(
        &app,
        &key,
        "plain",
        "primary-key",
        json!({ "columns": ["id"] }),
    )
    .await
    .expect_code(409, "duplicate_key");
}

#[tokio::test]
async fn a_primary_key_over_null_values_is_null_primary_key() {
    let (app, key) = setup().await;
    app.create_table(
        "1",
        &key,
        "b",
        "plain",
        &[("id", "BIGINT"), ("v", "VARCHAR")],
        &[],
    )
    .await;
    load(&app, &key, "plain", b"id,v\n1,a\n2,\n").await;
    post_to(
        &app,
        &key,
        "plain",
        "primary-key",
        json!({ "columns": ["v"] }),
    )
    .await
    .expect_code(409, "null_primary_key");
}

#[tokio::test]
async fn making_a_column_with_nulls_not_null_is_invalid_data() {
    let (app, key) = with_table().await;
    app.put(
        &format!("{T}/t/columns/v"),
        &key,
        json!({ "set_not_null": true }),
    )
    .await
    .expect_code(400, "invalid_data");
}

#[tokio::test]
async fn exporting_an_unknown_column_is_invalid_columns() {
    let (app, key) = with_table().await;
    refused_on_t(
        &app,
        &key,
        "export",
        json!({ "format": "csv", "columns": ["id", "nope"] }),
        400,
        "invalid_columns",
    )
    .await;
}

#[tokio::test]
async fn importing_a_file_with_unknown_columns_is_invalid_columns() {
    let (app, key) = with_table().await;
    let id = upload(&app, &key, "x.csv", b"id,v,extra\n3,c,x\n").await;
    refused_on_t(
        &app,
        &key,
        "import/file",
        json!({ "file_id": id }),
        400,
        "invalid_columns",
    )
    .await;
}

#[tokio::test]
async fn importing_a_csv_file_as_parquet_is_unreadable_file() {
    let (app, key) = with_table().await;
    let id = upload(&app, &key, "x.csv", b"id,v\n3,c\n").await;
    refused_on_t(
        &app,
        &key,
        "import/file",
        json!({ "file_id": id, "format": "parquet" }),
        400,
        "unreadable_file",
    )
    .await;
}

#[tokio::test]
async fn exporting_in_an_unknown_format_is_invalid_format() {
    let (app, key) = with_table().await;
    refused_on_t(
        &app,
        &key,
        "export",
        json!({ "format": "xml" }),
        400,
        "invalid_format",
    )
    .await;
}

#[tokio::test]
async fn exporting_csv_with_zstd_is_invalid_compression() {
    let (app, key) = with_table().await;
    refused_on_t(
        &app,
        &key,
        "export",
        json!({ "format": "csv", "compression": "zstd" }),
        400,
        "invalid_compression",
    )
    .await;
}

#[tokio::test]
async fn sharing_a_bucket_twice_is_already_shared() {
    let (app, key1, _key2) = with_share().await;
    app.share_bucket("1", &key1, "shared", "2")
        .await
        .expect_code(409, "already_shared");
}

#[tokio::test]
async fn unsharing_a_bucket_that_is_not_shared_is_share_not_found() {
    let (app, key1, _key2) = with_share().await;
    app.create_project("3").await;
    app.delete(
        "/projects/1/buckets/shared/share?target_project_id=3",
        &key1,
    )
    .await
    .expect_code(404, "share_not_found");
}

#[tokio::test]
async fn sharing_a_bucket_with_its_own_project_is_operation_not_allowed() {
    let (app, key1, _key2) = with_share().await;
    app.share_bucket("1", &key1, "shared", "1")
        .await
        .expect_code(400, "operation_not_allowed");
}

#[tokio::test]
async fn linking_a_bucket_that_is_not_shared_is_forbidden() {
    let (app, key1, key2) = with_share().await;
    app.create_bucket("1", &key1, "private").await;
    app.link_bucket("2", &key2, "mine", ("1", "private"))
        .await
        .expect_code(403, "forbidden");
}

#[tokio::test]
async fn a_request_without_a_key_is_unauthorized() {
    let app = spawn_app().await;
    app.get_without_key("/projects/1/buckets")
        .await
        .expect_code(401, "unauthorized");
}

#[tokio::test]
async fn an_unknown_branch_is_branch_not_found() {
    let (app, key) = setup().await;
    app.get("/projects/1/branches/feature/buckets", &key)
        .await
        .expect_code(404, "branch_not_found");
}

#[tokio::test]
async fn an_invalid_bucket_name_is_invalid_request() {
    let (app, key) = setup().await;
    app.post("/projects/1/buckets", &key, json!({ "name": "a.b" }))
        .await
        .expect_code(400, "invalid_request");
}

#[tokio::test]
async fn a_file_over_the_project_file_quota_is_quota_exceeded() {
    let app = spawn_app_configured(|c| c.project_quota_files = 1).await;
    let key = app.create_project("1").await;
    upload_reply(&app, &key, "a.txt", b"a").await.expect(201);
    upload_reply(&app, &key, "b.txt", b"b")
        .await
        .expect_code(507, "quota_exceeded");
}

#[tokio::test]
async fn a_file_over_the_database_backend_limit_is_file_too_large() {
    let app = spawn_app_configured(|c| {
        c.storage_backend = duckbank::config::StorageBackend::Database;
        c.database_blob_max_bytes = 100;
    })
    .await;
    let key = app.create_project("1").await;
    upload_reply(&app, &key, "big.bin", &[7u8; 500])
        .await
        .expect_code(413, "file_too_large");
}

#[tokio::test]
async fn a_blob_id_that_exists_is_blob_exists() {
    let (app, key) = spawn_app_with_project().await;
    let body = json!({ "id": "greeting", "data": "aGVsbG8=" });
    app.post("/v1/blobs", &key, body.clone()).await.expect(201);
    app.post("/v1/blobs", &key, body)
        .await
        .expect_code(409, "blob_exists");
}
