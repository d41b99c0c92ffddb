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
