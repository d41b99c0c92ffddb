//! Files API guards: the size limit, free disk space and the per-project file and byte quotas
//! on every way in (single-shot, multipart, register, complete); not auth.

use super::*;

#[tokio::test]
async fn an_upload_over_max_file_bytes_is_413_and_registers_nothing() {
    let (app, key) = app_with_project_configured(|c| c.max_file_bytes = 1000).await;
    upload_raw(&app, "1", &key, "big.bin", &bytes_of(2000, 22))
        .await
        .reply()
        .expect_error(413);
    upload(&app, "1", &key, "small.bin", &bytes_of(1000, 22)).await;
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(blob_files(&app).len(), 1);
    assert!(files_under(&app.data_dir.join("files/tmp")).is_empty());
}

#[tokio::test]
async fn a_multipart_upload_over_max_file_bytes_is_413_while_streaming() {
    let (app, key) = app_with_project_configured(|c| c.max_file_bytes = 1000).await;
    send(
        request(&app, Method::POST, "/projects/1/files/content", Some(&key))
            .header("content-type", multipart_type())
            .body(multipart_body(
                "big.bin",
                "application/octet-stream",
                &bytes_of(5000, 23),
            )),
    )
    .await
    .reply()
    .expect_error(413);
    assert_eq!(file_total(&app, &key).await, 0);
    assert!(blob_files(&app).is_empty());
    assert!(files_under(&app.data_dir.join("files/tmp")).is_empty());
}

#[tokio::test]
async fn a_resumable_session_larger_than_max_file_bytes_is_413() {
    let (app, key) = app_with_project_configured(|c| c.max_file_bytes = 1000).await;
    let body = json!({"name": "big.bin", "total_size": 2000, "chunk_size": 500});
    open_session(&app, &key, body).await.expect_error(413);
}

#[tokio::test]
async fn an_upload_without_enough_free_space_is_507() {
    let (app, key) = app_with_project_configured(|c| c.min_free_bytes = u64::MAX).await;
    upload_raw(&app, "1", &key, "a.bin", b"no room")
        .await
        .reply()
        .expect_error(507);
    assert!(blob_files(&app).is_empty());
    assert_eq!(app.get_without_key("/readyz").await.status.as_u16(), 503);
}

#[tokio::test]
async fn the_file_count_quota_refuses_the_next_upload_with_507() {
    let (app, key) = app_with_project_configured(|c| c.project_quota_files = 1).await;
    upload(&app, "1", &key, "a.bin", b"first").await;
    upload_raw(&app, "1", &key, "b.bin", b"second")
        .await
        .reply()
        .expect_error(507);
    assert_eq!(file_total(&app, &key).await, 1);
    assert_eq!(blob_files(&app).len(), 1, "the refused content is not kept");
    // Another project has its own quota.
    let key2 = app.create_project("2").await;
    upload(&app, "2", &key2, "b.bin", b"second").await;
}

#[tokio::test]
async fn the_file_count_quota_also_applies_to_register_and_complete() {
    let (app, key) = app_with_project_configured(|c| c.project_quota_files = 1).await;
    upload(&app, "1", &key, "a.bin", b"first").await;
    let prep = staged_upload(&app, &key, "b.csv", b"second").await;
    register(&app, &key, &prep).await.expect_error(507);
    let s = create_session(&app, &key, "c.bin", 10, 5, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 0, b"01234", None)
        .await
        .expect_status(200);
    put_chunk(&app, &key, id, 1, b"56789", None)
        .await
        .expect_status(200);
    complete(&app, &key, id).await.expect_error(507);
    assert_eq!(file_total(&app, &key).await, 1);
    // The first file and the still-staged upload keep their blobs; the refused assembly does not.
    assert_eq!(blob_files(&app).len(), 2, "{:?}", blob_files(&app));
}

#[tokio::test]
async fn the_byte_quota_refuses_an_upload_that_would_exceed_it() {
    let (app, key) = app_with_project_configured(|c| c.project_quota_bytes = 150).await;
    upload(&app, "1", &key, "a.bin", &bytes_of(100, 24)).await;
    upload_raw(&app, "1", &key, "b.bin", &bytes_of(100, 25))
        .await
        .reply()
        .expect_error(507);
    upload(&app, "1", &key, "c.bin", &bytes_of(50, 26)).await;
}

#[tokio::test]
async fn prepared_uploads_count_toward_the_byte_quota() {
    let (app, key) = app_with_project_configured(|c| c.project_quota_bytes = 1000).await;
    // An announced size is reserved at prepare: two of 600 bytes do not fit in 1000.
    let reserved = prepare_with(&app, &key, json!({"filename": "a.bin", "size_bytes": 600}))
        .await
        .expect(200);
    let refused = prepare_with(&app, &key, json!({"filename": "b.bin", "size_bytes": 600}))
        .await
        .expect_code(507, "quota_exceeded");
    assert_eq!(refused["details"]["quota_bytes"], 1000, "{refused}");
    // Content uploaded to keys that announced nothing counts once stored, staged or not.
    let first = staged_upload(&app, &key, "c.bin", &bytes_of(300, 31)).await;
    let second = prepare(&app, &key, "d.bin").await;
    let url = second["upload_url"].as_str().expect("upload_url");
    upload_prepared(&app, &key, url, "d.bin", &bytes_of(300, 32))
        .await
        .reply()
        .expect_code(507, "quota_exceeded");
    // Registering moves the staged bytes into a file without counting them twice.
    register(&app, &key, &first).await.expect(201);
    assert_eq!(file_total(&app, &key).await, 1);
    // 600 reserved + 300 in a file: a 100-byte single-shot upload still fits, 101 do not.
    upload_raw(&app, "1", &key, "e.bin", &bytes_of(101, 33))
        .await
        .reply()
        .expect_code(507, "quota_exceeded");
    upload(&app, "1", &key, "f.bin", &bytes_of(100, 34)).await;
    // The refused content is not kept: blobs of c.bin (now a file) and f.bin only.
    assert_eq!(blob_files(&app).len(), 2, "{:?}", blob_files(&app));
    // The project is full, but the 600 bytes reserved at prepare are a.bin's own to fill.
    let url = reserved["upload_url"].as_str().expect("upload_url");
    upload_prepared(&app, &key, url, "a.bin", &bytes_of(600, 35))
        .await
        .reply()
        .expect(200);
}

#[tokio::test]
async fn resumable_sessions_reserve_their_total_size_in_the_byte_quota() {
    let (app, key) = app_with_project_configured(|c| c.project_quota_bytes = 1000).await;
    let s = create_session(&app, &key, "a.bin", 800, 400, None).await;
    let id = s["upload_id"].as_str().unwrap();
    // The 800 bytes the session may still receive are taken: another session or upload
    // that would pass 1000 is refused before any chunk of it lands on disk.
    let body = json!({"name": "b.bin", "total_size": 201, "chunk_size": 201});
    open_session(&app, &key, body)
        .await
        .expect_code(507, "quota_exceeded");
    upload_raw(&app, "1", &key, "c.bin", &bytes_of(201, 35))
        .await
        .reply()
        .expect_code(507, "quota_exceeded");
    assert!(files_under(&app.data_dir.join("files/uploads")).is_empty());
    // Completing turns the reservation into the file's bytes: 200 bytes are left.
    let data = bytes_of(800, 36);
    put_chunk(&app, &key, id, 0, &data[..400], None)
        .await
        .expect_status(200);
    put_chunk(&app, &key, id, 1, &data[400..], None)
        .await
        .expect_status(200);
    complete(&app, &key, id).await.expect(201);
    upload(&app, "1", &key, "d.bin", &bytes_of(200, 37)).await;
    upload_raw(&app, "1", &key, "e.bin", b"x")
        .await
        .reply()
        .expect_code(507, "quota_exceeded");
}

#[tokio::test]
async fn aborting_a_session_gives_its_reservation_back() {
    let (app, key) = app_with_project_configured(|c| c.project_quota_bytes = 1000).await;
    let s = create_session(&app, &key, "a.bin", 1000, 500, None).await;
    let id = s["upload_id"].as_str().unwrap();
    upload_raw(&app, "1", &key, "b.bin", b"x")
        .await
        .reply()
        .expect_code(507, "quota_exceeded");
    app.delete(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect(204);
    upload(&app, "1", &key, "b.bin", b"x").await;
}

#[tokio::test]
async fn a_chunk_is_refused_with_507_when_the_disk_has_no_room_for_it() {
    let (app, key) = app_with_project_configured(|c| c.min_free_bytes = 0).await;
    let s = create_session(&app, &key, "a.bin", 10, 5, None).await;
    let id = s["upload_id"].as_str().unwrap().to_string();
    put_chunk(&app, &key, &id, 0, b"01234", None)
        .await
        .expect_status(200);
    // The free space the session was admitted with is gone by the second chunk.
    let app = app
        .restart_configured(|c| c.min_free_bytes = u64::MAX)
        .await;
    put_chunk(&app, &key, &id, 1, b"56789", None)
        .await
        .reply()
        .expect_code(507, "insufficient_storage");
    let chunks = files_under(&app.data_dir.join("files/uploads"));
    assert_eq!(chunks.len(), 1, "{chunks:?}");
    assert!(files_under(&app.data_dir.join("files/tmp")).is_empty());
}
