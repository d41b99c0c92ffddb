//! Files API, resumable uploads: sessions, chunks in any order, retries, checksums, status,
//! complete and abort, expiry and restarts; not the single-shot or prepared flows.

use futures_util::future::join_all;

use super::*;

#[tokio::test]
async fn creating_an_upload_session_reports_its_chunks() {
    let (app, key) = spawn_app_with_project().await;
    let s = create_session(&app, &key, "big.bin", TOTAL, CHUNK, None).await;
    assert!(s["upload_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(s["chunk_count"], 10);
    assert_eq!(as_ids(&s["missing_chunks"]), (0..10).collect::<Vec<_>>());
    assert_eq!(as_ids(&s["received_chunks"]), Vec::<u64>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chunks_in_reverse_and_concurrent_order_complete_to_the_original_bytes() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(TOTAL, 11);
    let sha = sha256_hex(&data);
    let s = create_session(&app, &key, "big.bin", TOTAL, CHUNK, Some(&sha)).await;
    let id = s["upload_id"].as_str().unwrap();
    for n in (5..10).rev() {
        let r = put_chunk(&app, &key, id, n as u64, chunk_of(&data, CHUNK, n), None).await;
        assert_eq!(r.reply().expect(200)["stored"], true);
    }
    let puts = (0..5).map(|n| {
        let (app, key, data) = (&app, &key, &data);
        async move {
            let part = chunk_of(data, CHUNK, n);
            put_chunk(app, key, id, n as u64, part, Some(&sha256_hex(part)))
                .await
                .status
        }
    });
    let statuses = join_all(puts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let file = complete(&app, &key, id).await.expect(201);
    assert_eq!(file["name"], "big.bin");
    assert_eq!(file["size_bytes"], TOTAL);
    assert_eq!(file["checksum_sha256"], sha);
    assert_eq!(file["is_staged"], false);
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
    app.get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect_error(404);
    assert!(
        !app.data_dir.join("files/uploads").join(id).exists(),
        "chunk files are removed after completion"
    );
}

#[tokio::test]
async fn a_retried_identical_chunk_is_a_no_op() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(TOTAL, 12);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    let part = chunk_of(&data, CHUNK, 3);
    let first = put_chunk(&app, &key, id, 3, part, None)
        .await
        .reply()
        .expect(200);
    assert_eq!(first["stored"], true);
    let again = put_chunk(&app, &key, id, 3, part, None)
        .await
        .reply()
        .expect(200);
    assert_eq!(again["stored"], false);
    let status = session(&app, &key, id).await;
    assert_eq!(as_ids(&status["received_chunks"]), vec![3]);
}

#[tokio::test]
async fn a_different_body_for_a_stored_chunk_is_409() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(TOTAL, 13);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 2, chunk_of(&data, CHUNK, 2), None)
        .await
        .expect_status(200);
    let other = bytes_of(CHUNK, 99);
    put_chunk(&app, &key, id, 2, &other, None)
        .await
        .reply()
        .expect_error(409);
    // The stored chunk is unchanged: completing gives the original bytes.
    put_chunks(&app, &key, id, &data, (0..10).filter(|n| *n != 2)).await;
    let file = complete(&app, &key, id).await.expect(201);
    assert_eq!(file["checksum_sha256"], sha256_hex(&data));
}

#[tokio::test]
async fn a_wrong_chunk_checksum_is_422_and_the_chunk_is_not_recorded() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(TOTAL, 14);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    let part = chunk_of(&data, CHUNK, 0);
    let wrong = sha256_hex(b"something else");
    let err = put_chunk(&app, &key, id, 0, part, Some(&wrong))
        .await
        .reply()
        .expect_error(422);
    assert_eq!(err["details"]["expected"], wrong);
    assert_eq!(err["details"]["actual"], sha256_hex(part));
    let status = session(&app, &key, id).await;
    assert_eq!(as_ids(&status["received_chunks"]), Vec::<u64>::new());
    assert!(as_ids(&status["missing_chunks"]).contains(&0));
    assert!(
        files_under(&app.data_dir.join("files/uploads")).is_empty(),
        "no chunk file is kept"
    );
    assert!(
        files_under(&app.data_dir.join("files/tmp")).is_empty(),
        "no temp file is kept"
    );
}

#[tokio::test]
async fn a_chunk_index_out_of_range_is_400() {
    let (app, key) = spawn_app_with_project().await;
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 10, &bytes_of(500, 1), None)
        .await
        .reply()
        .expect_error(400);
}

#[tokio::test]
async fn a_chunk_of_the_wrong_size_is_400_unless_it_is_the_shorter_last_chunk() {
    let (app, key) = spawn_app_with_project().await;
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 0, &bytes_of(CHUNK - 1, 1), None)
        .await
        .reply()
        .expect_error(400);
    put_chunk(&app, &key, id, 0, &bytes_of(CHUNK + 1, 1), None)
        .await
        .reply()
        .expect_error(400);
    put_chunk(&app, &key, id, 9, &bytes_of(CHUNK, 1), None)
        .await
        .reply()
        .expect_error(400);
    put_chunk(&app, &key, id, 9, &bytes_of(TOTAL - 9 * CHUNK, 1), None)
        .await
        .expect_status(200);
    let status = session(&app, &key, id).await;
    assert_eq!(as_ids(&status["received_chunks"]), vec![9]);
}

#[tokio::test]
async fn the_session_status_lists_received_and_missing_chunks() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(TOTAL, 15);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunks(&app, &key, id, &data, [0usize, 2, 9]).await;
    let status = session(&app, &key, id).await;
    assert_eq!(as_ids(&status["received_chunks"]), vec![0, 2, 9]);
    assert_eq!(as_ids(&status["missing_chunks"]), vec![1, 3, 4, 5, 6, 7, 8]);
    assert_eq!(status["received_bytes"], 2 * CHUNK + 500);
    assert_eq!(status["is_complete"], false);
}

#[tokio::test]
async fn completing_with_missing_chunks_is_409_listing_them() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(TOTAL, 16);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunks(
        &app,
        &key,
        id,
        &data,
        (0..10).filter(|n| ![4usize, 7].contains(n)),
    )
    .await;
    let err = complete(&app, &key, id).await.expect_error(409);
    assert_eq!(as_ids(&err["details"]["missing_chunks"]), vec![4, 7]);
    assert_eq!(file_total(&app, &key).await, 0);
}

#[tokio::test]
async fn a_whole_file_checksum_mismatch_at_complete_is_422() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(TOTAL, 17);
    let claimed = sha256_hex(b"not the content");
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, Some(&claimed)).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunks(&app, &key, id, &data, 0..10).await;
    let err = complete(&app, &key, id).await.expect_error(422);
    assert_eq!(err["details"]["expected"], claimed);
    assert_eq!(err["details"]["actual"], sha256_hex(&data));
    assert_eq!(file_total(&app, &key).await, 0);
    assert!(blob_files(&app).is_empty(), "{:?}", blob_files(&app));
    assert!(files_under(&app.data_dir.join("files/tmp")).is_empty());
}

#[tokio::test]
async fn aborting_a_session_removes_it_and_its_chunks() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(TOTAL, 18);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 0, chunk_of(&data, CHUNK, 0), None)
        .await
        .expect_status(200);
    assert!(!files_under(&app.data_dir.join("files/uploads")).is_empty());
    let path = format!("/projects/1/uploads/{id}");
    app.delete(&path, &key).await.expect(204);
    app.get(&path, &key).await.expect_error(404);
    app.delete(&path, &key).await.expect_error(404);
    put_chunk(&app, &key, id, 1, chunk_of(&data, CHUNK, 1), None)
        .await
        .reply()
        .expect_error(404);
    assert!(files_under(&app.data_dir.join("files/uploads")).is_empty());
}

#[tokio::test]
async fn an_unknown_upload_session_is_404() {
    let (app, key) = spawn_app_with_project().await;
    app.get("/projects/1/uploads/nosuchsession", &key)
        .await
        .expect_error(404);
    app.post(
        "/projects/1/uploads/nosuchsession/complete",
        &key,
        json!({}),
    )
    .await
    .expect_error(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_completes_of_one_session_let_exactly_one_succeed() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(TOTAL, 19);
    let s = create_session(&app, &key, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunks(&app, &key, id, &data, 0..10).await;
    let path = format!("/projects/1/uploads/{id}/complete");
    let completes = (0..4).map(|_| {
        let (app, key, path) = (&app, &key, &path);
        async move { app.post(path, key, json!({})).await.status.as_u16() }
    });
    let statuses = join_all(completes).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [201, 404, 409].contains(s)),
        "{statuses:?}"
    );
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 1, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_resumes_after_a_server_restart() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(TOTAL, 20);
    let s = create_session(
        &app,
        &key,
        "resume.bin",
        TOTAL,
        CHUNK,
        Some(&sha256_hex(&data)),
    )
    .await;
    let id = s["upload_id"].as_str().unwrap().to_string();
    put_chunks(&app, &key, &id, &data, 0..5).await;
    let app = app.restart().await;
    let status = session(&app, &key, &id).await;
    assert_eq!(as_ids(&status["received_chunks"]), vec![0, 1, 2, 3, 4]);
    assert_eq!(as_ids(&status["missing_chunks"]), vec![5, 6, 7, 8, 9]);
    put_chunks(&app, &key, &id, &data, 5..10).await;
    let file = complete(&app, &key, &id).await.expect(201);
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
}

#[tokio::test]
async fn an_expired_upload_session_is_410() {
    let (app, key) = app_with_project_configured(|c| c.upload_ttl_secs = 0).await;
    let s = create_session(&app, &key, "late.bin", 10, 5, None).await;
    let id = s["upload_id"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    app.get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect_error(410);
    put_chunk(&app, &key, id, 0, b"01234", None)
        .await
        .reply()
        .expect_error(410);
    complete(&app, &key, id).await.expect_error(410);
}

#[tokio::test]
async fn an_empty_file_can_be_uploaded_as_one_empty_chunk() {
    let (app, key) = spawn_app_with_project().await;
    let s = create_session(&app, &key, "empty.bin", 0, 1000, None).await;
    assert_eq!(s["chunk_count"], 1);
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 0, b"", None)
        .await
        .expect_status(200);
    let file = complete(&app, &key, id).await.expect(201);
    assert_eq!(file["size_bytes"], 0);
    assert_eq!(file["checksum_sha256"], sha256_hex(b""));
}

#[tokio::test]
async fn a_session_with_an_invalid_sha256_or_chunk_size_is_400() {
    let (app, key) = spawn_app_with_project().await;
    for body in [
        json!({"name": "f", "total_size": 10, "chunk_size": 5, "sha256": "xyz"}),
        json!({"name": "f", "total_size": 10, "chunk_size": 0}),
    ] {
        open_session(&app, &key, body).await.expect_error(400);
    }
}
