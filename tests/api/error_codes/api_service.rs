//! Error-code tests for failures detected in api service.
//! Each test provokes one failure over HTTP and checks status, `error` and `detail.error`.

use std::fmt::Write as _;

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::files::complete;
use crate::helpers::*;
use crate::table_data::{one_job_at_a_time, setup, setup_configured, upload, T};

/// A server with project 1 and bucket b holding table t (id INTEGER, v VARCHAR).
async fn with_table() -> (TestApp, String) {
    let (app, key) = setup().await;
    app.create_table_t(&key, &[("id", "INTEGER"), ("v", "VARCHAR")], &[])
        .await;
    (app, key)
}

/// Project 100 shares bucket `src` (with table t) with project 200, which links it as `lnk`.
async fn linked() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let key_a = app.create_project("100").await;
    let key_b = app.create_project("200").await;
    app.create_bucket("100", &key_a, "src").await;
    app.create_table("100", &key_a, "src", "t", &[("id", "INTEGER")], &[])
        .await;
    app.share_bucket("100", &key_a, "src", "200")
        .await
        .expect(200);
    app.link_bucket("200", &key_b, "lnk", ("100", "src"))
        .await
        .expect(201);
    (app, key_a, key_b)
}

/// Creates an upload session of project 1 and returns its id.
async fn new_session(
    app: &TestApp,
    key: &str,
    total: u64,
    chunk: u64,
    sha: Option<&str>,
) -> String {
    let mut body = json!({ "name": "f.bin", "total_size": total, "chunk_size": chunk });
    if let Some(sha) = sha {
        body["sha256"] = json!(sha);
    }
    let s = app.post("/projects/1/uploads", key, body).await.expect(201);
    s["upload_id"].as_str().expect("upload_id").to_string()
}

async fn put_chunk(app: &TestApp, key: &str, id: &str, n: u64, data: &[u8]) -> Reply {
    let path = format!("/projects/1/uploads/{id}/chunks/{n}");
    app.send_raw(Method::PUT, &path, key, &[], data.to_vec())
        .await
}

// ---------------------------------------------------------------------------------------------
// Buckets, links and read-only grants
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn creating_a_bucket_that_exists_is_409_bucket_exists() {
    let (app, key) = setup().await;
    app.post("/projects/1/buckets", &key, json!({ "name": "b" }))
        .await
        .expect_code(409, "bucket_exists");
}

#[tokio::test]
async fn deleting_a_bucket_that_still_has_tables_is_409_bucket_not_empty() {
    let (app, key) = with_table().await;
    let body = app
        .delete("/projects/1/buckets/b", &key)
        .await
        .expect_code(409, "bucket_not_empty");
    assert_eq!(body["details"]["tables"], json!(["t"]), "{body}");
}

#[tokio::test]
async fn writing_into_a_linked_bucket_is_403_bucket_read_only() {
    let (app, _, key_b) = linked().await;
    app.post(
        "/projects/200/buckets/lnk/tables",
        &key_b,
        json!({ "name": "n", "columns": [{ "name": "id", "type": "INTEGER" }] }),
    )
    .await
    .expect_code(403, "bucket_read_only");
}

#[tokio::test]
async fn writing_into_or_deleting_a_bucket_with_read_only_access_granted_is_403_bucket_read_only() {
    let (app, key) = with_table().await;
    app.post("/projects/1/buckets/b/grant-readonly", &key, json!({}))
        .await
        .expect(200);
    app.delete(&format!("{T}/t"), &key)
        .await
        .expect_code(403, "bucket_read_only");
    app.delete("/projects/1/buckets/b?force=true", &key)
        .await
        .expect_code(403, "bucket_read_only");
}

#[tokio::test]
async fn reading_through_a_link_whose_share_was_revoked_is_403_link_not_live() {
    let (app, key_a, key_b) = linked().await;
    app.delete(
        "/projects/100/buckets/src/share?target_project_id=200",
        &key_a,
    )
    .await
    .expect(204);
    app.get("/projects/200/buckets/lnk/tables/t", &key_b)
        .await
        .expect_code(403, "link_not_live");
}

#[tokio::test]
async fn unlinking_a_bucket_that_is_not_a_link_is_400_operation_not_allowed() {
    let (app, key) = setup().await;
    app.delete("/projects/1/buckets/b/link", &key)
        .await
        .expect_code(400, "operation_not_allowed");
}

#[tokio::test]
async fn the_data_bank_api_with_the_admin_key_is_400_operation_not_allowed() {
    let app = spawn_app().await;
    app.get(&format!("/files/{}", "0".repeat(64)), ADMIN_KEY)
        .await
        .expect_code(400, "operation_not_allowed");
}

// ---------------------------------------------------------------------------------------------
// Tables and their data
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_primary_key_naming_an_unknown_or_repeated_column_is_400_invalid_primary_key() {
    let (app, key) = setup().await;
    for pk in [json!(["nope"]), json!(["id", "id"])] {
        app.post(
            T,
            &key,
            json!({
                "name": "t",
                "columns": [{ "name": "id", "type": "INTEGER" }],
                "primary_key": pk,
            }),
        )
        .await
        .expect_code(400, "invalid_primary_key");
    }
}

#[tokio::test]
async fn a_column_change_that_changes_nothing_is_400_no_changes_specified() {
    let (app, key) = with_table().await;
    app.put(&format!("{T}/t/columns/v"), &key, json!({}))
        .await
        .expect_code(400, "no_changes_specified");
}

#[tokio::test]
async fn an_incomplete_filter_or_a_row_delete_without_one_is_400_invalid_where_clause() {
    let (app, key) = with_table().await;
    app.get(&format!("{T}/t/preview?whereColumn=id"), &key)
        .await
        .expect_code(400, "invalid_where_clause");
    app.get(&format!("{T}/t/preview?whereValues=1"), &key)
        .await
        .expect_code(400, "invalid_where_clause");
    app.get(&format!("{T}/t/preview?filters={}", enc("{not json")), &key)
        .await
        .expect_code(400, "invalid_where_clause");
    app.call(Method::DELETE, &format!("{T}/t/rows"), Some(&key), None)
        .await
        .expect_code(400, "invalid_where_clause");
}

#[tokio::test]
async fn streaming_a_gzip_csv_export_is_400_invalid_compression() {
    let (app, key) = with_table().await;
    app.get(&format!("{T}/t/export?format=csv&compression=gzip"), &key)
        .await
        .expect_code(400, "invalid_compression");
}

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_job_is_404_job_not_found() {
    let (app, key) = setup().await;
    let body = app
        .get("/projects/1/jobs/nosuchjob", &key)
        .await
        .expect_code(404, "job_not_found");
    assert_eq!(body["details"]["job_id"], "nosuchjob", "{body}");
    // An id longer than any job id is answered the same way.
    app.get(&format!("/projects/1/jobs/{}", "j".repeat(65)), &key)
        .await
        .expect_code(404, "job_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_to_a_full_job_queue_is_429_rate_limited() {
    let (app, key) = setup_configured(one_job_at_a_time).await;
    app.create_table_t(&key, &[("id", "INTEGER"), ("v", "VARCHAR")], &[])
        .await;
    let mut csv = String::from("id,v\n");
    for i in 0..200_000 {
        writeln!(csv, "{i},value-{i}-abcdefgh").unwrap();
    }
    let file = upload(&app, &key, "big.csv", csv.as_bytes()).await;
    let path = format!("{T}/t/import/file?async=true");
    let mut refused = None;
    for _ in 0..6 {
        let reply = app.post(&path, &key, json!({ "file_id": file })).await;
        if reply.status.as_u16() == 429 {
            refused = Some(reply);
            break;
        }
        reply.expect(202);
    }
    let reply = refused.expect("a queue of one refuses back-to-back submits");
    assert!(reply.headers.get("retry-after").is_some());
    reply.expect_code(429, "rate_limited");
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_file_id_hash_or_blob_id_is_404_file_not_found() {
    let (app, key) = setup().await;
    app.get("/projects/1/files/nosuchfile", &key)
        .await
        .expect_code(404, "file_not_found");
    let sha = "0".repeat(64);
    app.get(&format!("/files/{sha}"), &key)
        .await
        .expect_code(404, "file_not_found");
    app.delete(&format!("/files/{sha}"), &key)
        .await
        .expect_code(404, "file_not_found");
    app.get("/v1/blobs/nosuchblob", &key)
        .await
        .expect_code(404, "file_not_found");
}

#[tokio::test]
async fn registering_an_unknown_upload_key_is_404_staged_file_not_found() {
    let (app, key) = setup().await;
    app.post(
        "/projects/1/files",
        &key,
        json!({ "upload_key": "nosuchkey" }),
    )
    .await
    .expect_code(404, "staged_file_not_found");
}

#[tokio::test]
async fn registering_a_prepared_upload_with_no_content_is_400_file_not_uploaded() {
    let (app, key) = setup().await;
    let prep = app
        .post(
            "/projects/1/files/prepare",
            &key,
            json!({ "filename": "a.txt" }),
        )
        .await
        .expect(200);
    app.post(
        "/projects/1/files",
        &key,
        json!({ "upload_key": prep["upload_key"] }),
    )
    .await
    .expect_code(400, "file_not_uploaded");
}

#[tokio::test]
async fn a_file_over_max_file_bytes_is_413_file_too_large() {
    let app = spawn_app_configured(|c| c.max_file_bytes = 1000).await;
    let key = app.create_project("1").await;
    app.post(
        "/projects/1/uploads",
        &key,
        json!({ "name": "big.bin", "total_size": 2000, "chunk_size": 500 }),
    )
    .await
    .expect_code(413, "file_too_large");
}

#[tokio::test]
async fn an_upload_without_enough_free_space_is_507_insufficient_storage() {
    let app = spawn_app_configured(|c| c.min_free_bytes = u64::MAX).await;
    let key = app.create_project("1").await;
    app.post(
        "/projects/1/uploads",
        &key,
        json!({ "name": "a.bin", "total_size": 10, "chunk_size": 5 }),
    )
    .await
    .expect_code(507, "insufficient_storage");
}

#[tokio::test]
async fn an_unknown_upload_session_is_404_upload_session_not_found() {
    let (app, key) = setup().await;
    app.get("/projects/1/uploads/nosuchsession", &key)
        .await
        .expect_code(404, "upload_session_not_found");
    app.delete("/projects/1/uploads/nosuchsession", &key)
        .await
        .expect_code(404, "upload_session_not_found");
}

#[tokio::test]
async fn an_expired_upload_session_is_410_upload_session_expired() {
    let app = spawn_app_configured(|c| c.upload_ttl_secs = 0).await;
    let key = app.create_project("1").await;
    let id = new_session(&app, &key, 10, 5, None).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    app.get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect_code(410, "upload_session_expired");
}

#[tokio::test]
async fn an_upload_that_does_not_match_its_session_is_409_upload_session_mismatch() {
    let (app, key) = setup().await;
    let id = new_session(&app, &key, 10, 5, None).await;
    put_chunk(&app, &key, &id, 0, b"01234").await.expect(200);
    // Chunk 1 is missing.
    let body = complete(&app, &key, &id)
        .await
        .expect_code(409, "upload_session_mismatch");
    assert_eq!(body["details"]["missing_chunks"], json!([1]), "{body}");
    // Chunk 0 again, with other bytes.
    put_chunk(&app, &key, &id, 0, b"43210")
        .await
        .expect_code(409, "upload_session_mismatch");
}

#[tokio::test]
async fn a_chunk_or_file_whose_checksum_differs_is_422_checksum_mismatch() {
    let (app, key) = setup().await;
    let id = new_session(&app, &key, 5, 5, None).await;
    let path = format!("/projects/1/uploads/{id}/chunks/0");
    app.send_raw(
        Method::PUT,
        &path,
        &key,
        &[("x-chunk-sha256", &"0".repeat(64))],
        b"01234".to_vec(),
    )
    .await
    .expect_code(422, "checksum_mismatch");
    let id = new_session(&app, &key, 5, 5, Some(&"0".repeat(64))).await;
    put_chunk(&app, &key, &id, 0, b"01234").await.expect(200);
    complete(&app, &key, &id)
        .await
        .expect_code(422, "checksum_mismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completing_a_session_another_request_is_completing_is_409_upload_session_busy() {
    let (app, key) = setup().await;
    let chunk = vec![7u8; 4 << 20];
    // Assembling 16 MiB takes long enough for a second complete to meet the first; a few
    // sessions make a lucky miss on a fast machine very unlikely.
    for attempt in 0..5 {
        let id = new_session(&app, &key, 4 * chunk.len() as u64, chunk.len() as u64, None).await;
        for n in 0..4 {
            put_chunk(&app, &key, &id, n, &chunk).await.expect(200);
        }
        let replies =
            futures_util::future::join_all((0..4).map(|_| complete(&app, &key, &id))).await;
        let codes: Vec<String> = replies
            .iter()
            .map(|r| format!("{} {}", r.status, r.body["error"]))
            .collect();
        if let Some(busy) = replies
            .into_iter()
            .find(|r| r.body["error"] == "upload_session_busy")
        {
            busy.expect_code(409, "upload_session_busy");
            return;
        }
        eprintln!("attempt {attempt}: no complete overlapped another: {codes:?}");
    }
    panic!("no complete met another one in progress");
}

#[tokio::test]
async fn an_unsatisfiable_range_is_416_range_not_satisfiable_with_the_size() {
    let (app, key) = setup().await;
    let id = upload(&app, &key, "a.bin", &[1u8; 100]).await;
    let reply = app
        .send_raw(
            Method::GET,
            &format!("/projects/1/files/{id}/download"),
            &key,
            &[("range", "bytes=1000-")],
            Vec::new(),
        )
        .await;
    let header = |name: &str| {
        reply
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(header("content-range"), "bytes */100");
    assert_eq!(header("accept-ranges"), "bytes");
    let sha = hex::encode(Sha256::digest([1u8; 100]));
    assert_eq!(header("etag"), format!("\"{sha}\""));
    let body = reply.expect_code(416, "range_not_satisfiable");
    assert_eq!(body["details"]["size_bytes"], 100, "{body}");
}

// ---------------------------------------------------------------------------------------------
// Requests themselves
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_body_that_is_not_json_is_400_invalid_request() {
    let (app, key) = setup().await;
    app.send_raw(
        Method::POST,
        "/projects/1/buckets",
        &key,
        &[("content-type", "application/json")],
        b"not json".to_vec(),
    )
    .await
    .expect_code(400, "invalid_request");
}

#[tokio::test]
async fn a_body_or_query_of_the_wrong_shape_is_422_validation_error() {
    let (app, key) = with_table().await;
    app.post("/projects/1/buckets", &key, json!({ "nom": "b2" }))
        .await
        .expect_code(422, "validation_error");
    app.get(&format!("{T}/t/preview?limit=0"), &key)
        .await
        .expect_code(422, "validation_error");
    app.get(&format!("{T}/t/preview?limit=many"), &key)
        .await
        .expect_code(422, "validation_error");
}

#[tokio::test]
async fn a_json_body_over_max_body_bytes_is_413_payload_too_large() {
    let (app, key) = setup().await;
    let description = "x".repeat(128 * 1024);
    app.post(
        "/projects/1/buckets",
        &key,
        json!({ "name": "b2", "description": description }),
    )
    .await
    .expect_code(413, "payload_too_large");
}

#[tokio::test]
async fn a_path_with_no_route_is_404_not_found() {
    let app = spawn_app().await;
    app.get("/no/such/route", ADMIN_KEY)
        .await
        .expect_code(404, "not_found");
}

#[tokio::test]
async fn a_method_the_path_does_not_take_is_405_method_not_allowed() {
    let app = spawn_app().await;
    app.call(Method::PATCH, "/projects", Some(ADMIN_KEY), None)
        .await
        .expect_code(405, "method_not_allowed");
}

// ---------------------------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn readyz_below_the_free_space_minimum_is_503_storage_unavailable() {
    let app = spawn_app_configured(|c| c.min_free_bytes = u64::MAX).await;
    let body = app
        .get_without_key("/readyz")
        .await
        .expect_code(503, "storage_unavailable");
    assert_eq!(body["details"]["not_ready"], "free_space", "{body}");
}

#[tokio::test]
async fn health_with_a_missing_duckdb_dir_is_503_storage_unavailable_naming_it() {
    let app = spawn_app_configured(|c| c.health_check_interval_secs = 1).await;
    std::fs::remove_dir_all(app.data_dir.join("duckdb")).unwrap();
    // `/health` answers from checks refreshed in the background: wait for the next round.
    let body = wait_for_status(&app, "/health", 503)
        .await
        .expect_code(503, "storage_unavailable");
    assert_eq!(
        body["details"]["unavailable"],
        json!(["duckdb_dir"]),
        "{body}"
    );
    assert_eq!(body["details"]["duckdb_dir"], false, "{body}");
    // The reference's health fields stay beside the error's.
    assert_eq!(body["status"], "unhealthy", "{body}");
    assert_eq!(body["storage_available"], false, "{body}");
}
