//! The seed-compatible file paths: the Data Bank API (`/files`, id = sha256, project from the
//! key) and the JSON blob API (`/v1/blobs`); not the project Files API.

use base64::Engine;

use super::*;

async fn databank_upload(app: &TestApp, key: &str, name: &str, data: &[u8]) -> Raw {
    send(
        request(app, Method::POST, "/files", Some(key))
            .header("content-type", multipart_type())
            .body(multipart_body(name, "text/plain", data)),
    )
    .await
}

#[tokio::test]
async fn the_data_bank_upload_answers_the_sha256_as_file_id() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"data bank content";
    let body = databank_upload(&app, &key, "bank.txt", data)
        .await
        .reply()
        .expect(201);
    assert_eq!(body["file_id"], sha256_hex(data));
    assert_eq!(body["size"], data.len());
    assert_eq!(body["name"], "bank.txt");
    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 1, "the file lands in the key's project");
}

#[tokio::test]
async fn the_data_bank_accepts_a_raw_body_with_a_name() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"raw data bank body";
    let res =
        send(request(&app, Method::POST, "/files?name=raw.txt", Some(&key)).body(data.to_vec()))
            .await;
    let body = res.reply().expect(201);
    assert_eq!(body["file_id"], sha256_hex(data));
    assert_eq!(body["name"], "raw.txt");
    let full = send(request(
        &app,
        Method::GET,
        &format!("/files/{}", sha256_hex(data)),
        Some(&key),
    ))
    .await;
    full.expect_status(200);
    assert_eq!(full.bytes, data);
}

#[tokio::test]
async fn data_bank_files_are_downloaded_by_sha256_with_ranges_and_head() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"0123456789abcdef";
    let sha = sha256_hex(data);
    databank_upload(&app, &key, "bank.txt", data)
        .await
        .expect_status(201);
    let full = send(request(
        &app,
        Method::GET,
        &format!("/files/{sha}"),
        Some(&key),
    ))
    .await;
    full.expect_status(200);
    assert_eq!(full.bytes, data);
    assert_eq!(full.header("etag"), format!("\"{sha}\""));
    let part = send(
        request(&app, Method::GET, &format!("/files/{sha}"), Some(&key))
            .header("range", "bytes=2-5"),
    )
    .await;
    part.expect_status(206);
    assert_eq!(part.bytes, b"2345");
    let head = head(&app, &format!("/files/{sha}"), &key).await;
    head.expect_status(200);
    assert!(head.bytes.is_empty());
    assert_eq!(head.header("content-length"), data.len().to_string());
}

#[tokio::test]
async fn data_bank_info_describes_the_file() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"info please";
    let sha = sha256_hex(data);
    databank_upload(&app, &key, "info.txt", data)
        .await
        .expect_status(201);
    let info = app
        .get(&format!("/files/{sha}/info"), &key)
        .await
        .expect(200);
    assert_eq!(info["file_id"], sha);
    assert_eq!(info["size"], data.len());
    assert_eq!(info["name"], "info.txt");
    assert!(info["created_at"].is_string());
    app.get(&format!("/files/{}/info", sha256_hex(b"other")), &key)
        .await
        .expect_error(404);
}

#[tokio::test]
async fn data_bank_delete_removes_the_file() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"delete me";
    let sha = sha256_hex(data);
    databank_upload(&app, &key, "d.txt", data)
        .await
        .expect_status(201);
    let path = format!("/files/{sha}");
    app.delete(&path, &key).await.expect(204);
    app.get(&path, &key).await.expect_error(404);
    app.delete(&path, &key).await.expect_error(404);
    assert!(blob_files(&app).is_empty());
}

#[tokio::test]
async fn a_data_bank_delete_removes_every_record_of_that_content() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"twice";
    upload(&app, "1", &key, "a.txt", data).await;
    upload(&app, "1", &key, "b.txt", data).await;
    app.delete(&format!("/files/{}", sha256_hex(data)), &key)
        .await
        .expect(204);
    assert_eq!(file_total(&app, &key).await, 0);
    assert!(blob_files(&app).is_empty());
}

#[tokio::test]
async fn data_bank_paths_refuse_the_admin_key_with_400() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"admin cannot";
    let sha = sha256_hex(data);
    databank_upload(&app, &key, "a.txt", data)
        .await
        .expect_status(201);
    databank_upload(&app, ADMIN_KEY, "a.txt", data)
        .await
        .reply()
        .expect_error(400);
    app.get(&format!("/files/{sha}"), ADMIN_KEY)
        .await
        .expect_error(400);
    app.get(&format!("/files/{sha}/info"), ADMIN_KEY)
        .await
        .expect_error(400);
    app.delete(&format!("/files/{sha}"), ADMIN_KEY)
        .await
        .expect_error(400);
}

#[tokio::test]
async fn data_bank_paths_without_a_key_are_401() {
    let app = spawn_app().await;
    let sha = sha256_hex(b"x");
    send(
        request(&app, Method::POST, "/files", None)
            .header("content-type", multipart_type())
            .body(multipart_body("a.txt", "text/plain", b"x")),
    )
    .await
    .reply()
    .expect_error(401);
    app.get_without_key(&format!("/files/{sha}"))
        .await
        .expect_error(401);
    app.get_without_key(&format!("/files/{sha}/info"))
        .await
        .expect_error(401);
    app.call(Method::DELETE, &format!("/files/{sha}"), None, None)
        .await
        .expect_error(401);
}

/// Stores a JSON blob of project 1's key with base64 `data` sent as given.
async fn post_blob(app: &TestApp, key: &str, id: &str, data: &str) -> Reply {
    app.post("/v1/blobs", key, json!({"id": id, "data": data}))
        .await
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test]
async fn a_json_blob_round_trips_through_base64() {
    let (app, key) = spawn_app_with_project().await;
    let data = bytes_of(300, 21);
    let created = post_blob(&app, &key, "blob-1", &b64(&data))
        .await
        .expect(201);
    assert_eq!(created["id"], "blob-1");
    assert_eq!(created["size"], data.len());
    assert!(created["created_at"].is_string());
    let got = app.get("/v1/blobs/blob-1", &key).await.expect(200);
    assert_eq!(got["id"], "blob-1");
    assert_eq!(got["data"], b64(&data));
}

#[tokio::test]
async fn a_blob_with_bad_base64_is_400() {
    let (app, key) = spawn_app_with_project().await;
    post_blob(&app, &key, "bad", "!!! not base64 !!!")
        .await
        .expect_error(400);
    app.get("/v1/blobs/bad", &key).await.expect_error(404);
}

#[tokio::test]
async fn a_duplicate_blob_id_is_409() {
    let (app, key) = spawn_app_with_project().await;
    post_blob(&app, &key, "dup", &b64(b"first"))
        .await
        .expect(201);
    post_blob(&app, &key, "dup", &b64(b"second"))
        .await
        .expect_error(409);
    let got = app.get("/v1/blobs/dup", &key).await.expect(200);
    assert_eq!(got["data"], b64(b"first"));
}

#[tokio::test]
async fn a_missing_blob_is_404() {
    let (app, key) = spawn_app_with_project().await;
    app.get("/v1/blobs/nothing-here", &key)
        .await
        .expect_error(404);
}

#[tokio::test]
async fn a_blob_id_with_path_characters_is_400() {
    let (app, key) = spawn_app_with_project().await;
    post_blob(&app, &key, "../escape", &b64(b"x"))
        .await
        .expect_error(400);
    post_blob(&app, &key, "", &b64(b"x"))
        .await
        .expect_error(400);
}
