//! Files API, content addressing: one blob per content shared by records and projects, and
//! when a blob is released (deletes, project deletes, the cleaner); not the request paths.

use futures_util::future::join_all;

use super::*;

#[tokio::test]
async fn identical_content_in_two_projects_is_stored_as_one_blob() {
    let (app, key1, key2) = spawn_app_with_two_projects().await;
    let data = bytes_of(3000, 1);
    let (f1, f2) = upload_to_both(&app, &key1, &key2, &data).await;
    assert_ne!(f1["id"], f2["id"]);
    let sha = sha256_hex(&data);
    assert_eq!(f1["checksum_sha256"], sha);
    assert_eq!(f2["checksum_sha256"], sha);
    let blobs = blob_files(&app);
    assert_eq!(
        blobs,
        vec![app
            .data_dir
            .join(format!("files/blobs/{}/{}/{sha}", &sha[..2], &sha[2..4]))],
    );
    assert_eq!(std::fs::read(&blobs[0]).unwrap(), data);
}

#[tokio::test]
async fn a_blob_is_removed_only_when_its_last_file_record_is_deleted() {
    let (app, key1, key2) = spawn_app_with_two_projects().await;
    let data = bytes_of(3000, 2);
    let (f1, f2) = upload_to_both(&app, &key1, &key2, &data).await;
    app.delete(
        &format!("/projects/1/files/{}", f1["id"].as_str().unwrap()),
        &key1,
    )
    .await
    .expect(204);
    assert_eq!(blob_files(&app).len(), 1, "project 2 still uses the blob");
    let dl = download(&app, "2", &key2, f2["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
    app.delete(
        &format!("/projects/2/files/{}", f2["id"].as_str().unwrap()),
        &key2,
    )
    .await
    .expect(204);
    assert!(blob_files(&app).is_empty(), "{:?}", blob_files(&app));
}

#[tokio::test]
async fn two_records_of_the_same_content_in_one_project_share_the_blob() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(1000, 3);
    let a = upload(&app, "1", &key, "a.bin", &data).await;
    let _b = upload(&app, "1", &key, "b.bin", &data).await;
    assert_eq!(file_total(&app, &key).await, 2);
    assert_eq!(blob_files(&app).len(), 1);
    app.delete(
        &format!("/projects/1/files/{}", a["id"].as_str().unwrap()),
        &key,
    )
    .await
    .expect(204);
    assert_eq!(blob_files(&app).len(), 1);
}

#[tokio::test]
async fn deleting_a_project_releases_its_blobs() {
    let (app, key1, key2) = spawn_app_with_two_projects().await;
    let shared = bytes_of(2000, 4);
    let own = bytes_of(2000, 5);
    let f1 = upload(&app, "1", &key1, "shared.bin", &shared).await;
    upload(&app, "2", &key2, "shared.bin", &shared).await;
    upload(&app, "2", &key2, "own.bin", &own).await;
    assert_eq!(blob_files(&app).len(), 2);
    app.delete("/projects/2", ADMIN_KEY).await.expect(204);
    let blobs = blob_files(&app);
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    assert!(blobs[0].ends_with(sha256_hex(&shared)), "{blobs:?}");
    assert_downloads(&app, "1", &key1, &f1, &shared).await;
}

#[tokio::test]
async fn deleting_a_project_releases_its_staged_uploads() {
    let (app, key) = spawn_app_with_project().await;
    staged_upload(&app, &key, "staged.csv", b"s\n").await;
    assert_eq!(blob_files(&app).len(), 1);
    app.delete("/projects/1", ADMIN_KEY).await.expect(204);
    assert!(blob_files(&app).is_empty(), "{:?}", blob_files(&app));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_and_a_delete_of_the_same_content_keep_the_blob() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(50_000, 31);
    let first = upload(&app, "1", &key, "first.bin", &data).await;
    let first_id = first["id"].as_str().unwrap().to_string();
    let delete = async {
        app.delete(&format!("/projects/1/files/{first_id}"), &key)
            .await
            .status
            .as_u16()
    };
    let uploads = join_all((0..8).map(|i| {
        let (app, key, data) = (&app, &key, &data);
        async move {
            upload_raw(app, "1", key, &format!("copy{i}.bin"), data)
                .await
                .status
        }
    }));
    let (deleted, statuses) = tokio::join!(delete, uploads);
    assert_eq!(deleted, 204);
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 8, "{list}");
    assert_eq!(blob_files(&app).len(), 1);
    for f in list["files"].as_array().unwrap() {
        let dl = download(&app, "1", &key, f["id"].as_str().unwrap(), &[]).await;
        dl.expect_status(200);
        assert_eq!(sha256_hex(&dl.bytes), sha256_hex(&data));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_cleaner_removes_expired_sessions_and_staged_uploads() {
    let (app, key) = app_with_project_configured(|c| {
        c.upload_ttl_secs = 1;
        c.cleanup_interval_secs = 1;
    })
    .await;
    let prep = staged_upload(&app, &key, "staged.csv", b"s\n").await;
    let s = create_session(&app, &key, "f.bin", 10, 5, None).await;
    let id = s["upload_id"].as_str().unwrap();
    put_chunk(&app, &key, id, 0, b"01234", None)
        .await
        .expect_status(200);
    assert_eq!(blob_files(&app).len(), 1);
    let uploads = app.data_dir.join("files/uploads");
    assert_eq!(files_under(&uploads).len(), 1);
    wait_until("the staged blob and the chunk are removed", || {
        blob_files(&app).is_empty() && files_under(&uploads).is_empty()
    })
    .await;
    app.get(&format!("/projects/1/uploads/{id}"), &key)
        .await
        .expect_error(404);
    register(&app, &key, &prep).await.expect_error(404);
    let staged = app
        .get("/projects/1/files?include_staged=true", &key)
        .await
        .expect(200);
    assert_eq!(staged["total"], 0, "{staged}");
}
