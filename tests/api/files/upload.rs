//! Files API, single-shot uploads (raw body and multipart), listing and deleting records,
//! empty files, hostile names and cut connections; not ranges, sessions or quotas.

use super::*;

#[tokio::test]
async fn a_raw_body_upload_creates_a_file_at_once() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"id,amount\n1,10\n2,20\n";
    let res = send(
        request(
            &app,
            Method::POST,
            "/projects/1/files/content?name=a.csv",
            Some(&key),
        )
        .header("content-type", "text/csv")
        .body(data.to_vec()),
    )
    .await;
    let file = res.reply().expect(201);
    assert_eq!(file["name"], "a.csv");
    assert_eq!(file["size_bytes"], data.len());
    assert_eq!(file["checksum_sha256"], sha256_hex(data));
    assert_eq!(file["content_type"], "text/csv");
    assert_eq!(file["is_staged"], false);
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 1);
}

#[tokio::test]
async fn a_multipart_upload_creates_a_file_named_after_the_part() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(5000, 7);
    let res = send(
        request(&app, Method::POST, "/projects/1/files/content", Some(&key))
            .header("content-type", multipart_type())
            .body(multipart_body("part.bin", "application/x-test", &data)),
    )
    .await;
    let file = res.reply().expect(201);
    assert_eq!(file["name"], "part.bin");
    assert_eq!(file["size_bytes"], data.len());
    assert_eq!(file["checksum_sha256"], sha256_hex(&data));
    assert_eq!(file["content_type"], "application/x-test");
    assert_downloads(&app, "1", &key, &file, &data).await;
}

#[tokio::test]
async fn a_raw_upload_without_a_name_is_400() {
    let (app, key) = spawn_app_with_project().await;
    let raw = send(
        request(&app, Method::POST, "/projects/1/files/content", Some(&key)).body(b"x".to_vec()),
    )
    .await;
    assert_refused_without_blob(&app, raw, 400);
}

#[tokio::test]
async fn a_multipart_body_without_a_file_part_is_422() {
    let (app, key) = spawn_app_with_project().await;
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n"
    );
    let req = request(
        &app,
        Method::POST,
        "/projects/1/files/content?name=x.txt",
        Some(&key),
    );
    let raw = send(req.header("content-type", multipart_type()).body(body)).await;
    assert_refused_without_blob(&app, raw, 422);
}

#[tokio::test]
async fn deleting_a_file_answers_204_and_then_404() {
    let (app, key) = spawn_app_with_project().await;
    let file = upload(&app, "1", &key, "gone.txt", b"short lived").await;
    let id = file["id"].as_str().unwrap();
    let path = format!("/projects/1/files/{id}");
    app.delete(&path, &key).await.expect(204);
    app.get(&path, &key).await.expect_error(404);
    download(&app, "1", &key, id, &[])
        .await
        .reply()
        .expect_error(404);
    app.delete(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect_error(404);
    assert_eq!(file_total(&app, &key).await, 0);
}

#[tokio::test]
async fn the_file_list_pages_with_limit_and_offset() {
    let (app, key) = spawn_app_with_project().await;
    for i in 0..3u64 {
        upload(&app, "1", &key, &format!("f{i}.txt"), &bytes_of(10, i)).await;
    }
    let page = app
        .get("/projects/1/files?limit=2&offset=1", &key)
        .await
        .expect(200);
    assert_eq!(page["total"], 3);
    assert_eq!(page["files"].as_array().unwrap().len(), 2);
    app.get("/projects/1/files?limit=0", &key)
        .await
        .expect_error(422);
}

#[tokio::test]
async fn an_empty_file_can_be_uploaded_and_downloaded() {
    let (app, key) = spawn_app_with_project().await;
    let file = upload(&app, "1", &key, "empty.txt", b"").await;
    assert_eq!(file["size_bytes"], 0);
    assert_eq!(file["checksum_sha256"], sha256_hex(b""));
    let id = file["id"].as_str().unwrap();
    let dl = download(&app, "1", &key, id, &[]).await;
    dl.expect_status(200);
    assert!(dl.bytes.is_empty());
    assert_eq!(dl.header("content-length"), "0");
    let ranged = download(&app, "1", &key, id, &[("range", "bytes=0-")]).await;
    assert_eq!(ranged.header("content-range"), "bytes */0");
    ranged.reply().expect_error(416);
}

#[tokio::test]
async fn a_name_with_path_separators_is_kept_for_display_but_not_used_as_a_path() {
    let (app, key) = spawn_app_with_project().await;
    let escape_target = app.data_dir.join("files/../../etc/passwd");
    let existed_before = escape_target.exists();
    let data = b"root:x:0:0\n";
    let name = "../../etc/passwd";
    let file = upload(&app, "1", &key, name, data).await;
    assert_eq!(file["name"], name);
    let sha = sha256_hex(data);
    assert_eq!(
        file["path"],
        format!("blobs/{}/{}/{sha}", &sha[..2], &sha[2..4])
    );
    assert_eq!(escape_target.exists(), existed_before);
    assert!(!app.data_dir.join("etc").exists());
    for path in files_under(&app.data_dir) {
        assert!(
            !path.to_string_lossy().contains("passwd"),
            "a file named after the upload exists: {}",
            path.display()
        );
    }
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
    let disposition = dl.header("content-disposition");
    assert!(!disposition.is_empty());
    assert!(!disposition.contains('/'), "{disposition}");
    assert!(!disposition.contains('\\'), "{disposition}");
}

#[tokio::test]
async fn a_name_with_control_characters_cannot_inject_headers() {
    let (app, key) = spawn_app_with_project().await;
    let name = "evil\r\nX-Injected: 1.txt";
    let file = upload(&app, "1", &key, name, b"payload").await;
    assert_eq!(file["name"], name, "the name is kept for display");
    let dl = download(&app, "1", &key, file["id"].as_str().unwrap(), &[]).await;
    dl.expect_status(200);
    assert!(dl.headers.get("x-injected").is_none());
    let disposition = dl.header("content-disposition");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(!disposition.contains('\r') && !disposition.contains('\n'));
}

#[tokio::test]
async fn a_name_with_nul_is_400() {
    let (app, key) = spawn_app_with_project().await;
    assert_every_way_in_is(&app, &key, ("a\0b.txt", "a\u{0}b.txt", "a\u{0}b"), 400).await;
    assert_eq!(file_total(&app, &key).await, 0);
    assert!(blob_files(&app).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_upload_leaves_nothing_behind() {
    let (app, key) = spawn_app_with_project().await;
    let mut stream = RawHttp::connect(&app.base).await;
    stream
        .send_head(
            "POST",
            "/projects/1/files/content?name=cut.bin",
            &[
                ("Authorization", format!("Bearer {key}")),
                ("Content-Length", "10000000".to_string()),
            ],
        )
        .await;
    stream.send_body(&bytes_of(256 * 1024, 30)).await;
    let tmp = app.data_dir.join("files/tmp");
    wait_until("the upload is being spooled", || {
        !files_under(&tmp).is_empty()
    })
    .await;
    drop(stream);
    wait_until("the temp file is removed", || files_under(&tmp).is_empty()).await;
    assert_eq!(file_total(&app, &key).await, 0);
    assert!(blob_files(&app).is_empty());
}
