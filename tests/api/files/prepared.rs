//! Files API, reference flow: prepare → upload to the upload key → register, staged uploads,
//! upload keys of other projects, expiry and restarts; not single-shot uploads or downloads.

use super::*;

#[tokio::test]
async fn prepare_returns_an_upload_key_an_upload_url_and_an_expiry() {
    let (app, key) = spawn_app_with_project().await;
    let prep = prepare(&app, &key, "data.csv").await;
    let upload_key = prep["upload_key"].as_str().unwrap();
    assert!(!upload_key.is_empty());
    assert_eq!(
        prep["upload_url"],
        format!("/projects/1/files/upload/{upload_key}")
    );
    let expires = prep["expires_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(expires).is_ok(),
        "{expires}"
    );
}

#[tokio::test]
async fn an_uploaded_prepared_file_reports_its_real_sha256_and_is_listed_as_staged() {
    let (app, key) = spawn_app_with_project().await;
    let prep = prepare(&app, &key, "data.csv").await;
    let staged = app
        .get("/projects/1/files?include_staged=true", &key)
        .await
        .expect(200);
    assert_eq!(
        staged["total"], 0,
        "nothing is staged before the upload: {staged}"
    );

    let data = b"id,name\n1,alpha\n2,beta\n";
    let up = upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "data.csv",
        data,
    )
    .await;
    let up = up.reply().expect(200);
    assert_eq!(up["size_bytes"], data.len());
    assert_eq!(up["checksum_sha256"], sha256_hex(data));

    let staged = app
        .get("/projects/1/files?include_staged=true", &key)
        .await
        .expect(200);
    assert_eq!(staged["total"], 1, "{staged}");
    let f = &staged["files"][0];
    assert_eq!(f["is_staged"], true);
    assert_eq!(f["id"], prep["upload_key"]);
    assert_eq!(f["name"], "data.csv");
    assert_eq!(f["checksum_sha256"], sha256_hex(data));
    let plain = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(
        plain["total"], 0,
        "staged files are hidden by default: {plain}"
    );
}

#[tokio::test]
async fn registering_an_upload_creates_a_file_record_with_the_reference_fields() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"a,b\n1,2\n";
    let prep = staged_upload(&app, &key, "data.csv", data).await;
    let file = app
        .post(
            "/projects/1/files",
            &key,
            json!({"upload_key": prep["upload_key"], "name": "renamed.csv", "tags": {"team": "sales"}}),
        )
        .await
        .expect(201);
    let sha = sha256_hex(data);
    assert!(file["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(file["project_id"], "1");
    assert_eq!(file["name"], "renamed.csv");
    assert_eq!(
        file["path"],
        format!("blobs/{}/{}/{sha}", &sha[..2], &sha[2..4])
    );
    assert_eq!(file["size_bytes"], data.len());
    assert_eq!(file["content_type"], "text/csv");
    assert_eq!(file["checksum_sha256"], sha);
    assert_eq!(file["is_staged"], false);
    assert!(chrono::DateTime::parse_from_rfc3339(file["created_at"].as_str().unwrap()).is_ok());
    assert_eq!(file["tags"], json!({"team": "sales"}));

    let staged = app
        .get("/projects/1/files?include_staged=true", &key)
        .await
        .expect(200);
    assert_eq!(
        staged["total"], 1,
        "the staged entry became the file: {staged}"
    );
    assert_eq!(staged["files"][0]["is_staged"], false);
}

#[tokio::test]
async fn a_registered_file_is_listed_fetched_and_downloaded() {
    let (app, key) = spawn_app_with_project().await;
    let data = b"x,y\n3,4\n";
    let prep = staged_upload(&app, &key, "data.csv", data).await;
    let file = register(&app, &key, &prep).await.expect(201);
    let id = file["id"].as_str().unwrap();
    assert_eq!(
        file["name"], "data.csv",
        "the prepared name is kept without an override"
    );

    let list = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["files"][0]["id"], id);
    let got = app
        .get(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(got, file);
    let dl = download(&app, "1", &key, id, &[]).await;
    dl.expect_status(200);
    assert_eq!(dl.bytes, data);
    assert_eq!(dl.header("content-type"), "text/csv");
}

#[tokio::test]
async fn registering_the_same_upload_key_twice_is_404() {
    let (app, key) = spawn_app_with_project().await;
    let prep = staged_upload(&app, &key, "once.csv", b"1\n").await;
    let body = json!({"upload_key": prep["upload_key"]});
    app.post("/projects/1/files", &key, body.clone())
        .await
        .expect(201);
    app.post("/projects/1/files", &key, body)
        .await
        .expect_error(404);
    assert_eq!(file_total(&app, &key).await, 1);
}

#[tokio::test]
async fn registering_an_unknown_upload_key_is_404() {
    let (app, key) = spawn_app_with_project().await;
    app.post(
        "/projects/1/files",
        &key,
        json!({"upload_key": "doesnotexist"}),
    )
    .await
    .expect_error(404);
}

#[tokio::test]
async fn uploading_to_an_unknown_upload_key_is_404() {
    let (app, key) = spawn_app_with_project().await;
    let url = "/projects/1/files/upload/doesnotexist";
    let raw = upload_prepared(&app, &key, url, "x.csv", b"1\n").await;
    assert_refused_without_blob(&app, raw, 404);
}

#[tokio::test]
async fn registering_before_uploading_is_400() {
    let (app, key) = spawn_app_with_project().await;
    let prep = prepare(&app, &key, "early.csv").await;
    register(&app, &key, &prep).await.expect_error(400);
}

#[tokio::test]
async fn a_second_upload_to_a_prepared_key_replaces_the_staged_content() {
    let (app, key) = spawn_app_with_project().await;
    let prep = prepare(&app, &key, "v.csv").await;
    let url = prep["upload_url"].as_str().unwrap();
    upload_prepared(&app, &key, url, "v.csv", b"version 1\n")
        .await
        .expect_status(200);
    upload_prepared(&app, &key, url, "v.csv", b"version 2\n")
        .await
        .expect_status(200);
    let blobs = blob_files(&app);
    assert_eq!(
        blobs.len(),
        1,
        "the replaced content is released: {blobs:?}"
    );
    let file = register(&app, &key, &prep).await.expect(201);
    assert_eq!(file["checksum_sha256"], sha256_hex(b"version 2\n"));
}

#[tokio::test]
async fn an_upload_that_differs_from_the_prepared_size_is_400() {
    let (app, key) = spawn_app_with_project().await;
    let body = json!({"filename": "sized.csv", "size_bytes": 10});
    let prep = prepare_with(&app, &key, body).await.expect(200);
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "sized.csv",
        b"12345",
    )
    .await
    .reply()
    .expect_error(400);
    let staged = app
        .get("/projects/1/files?include_staged=true", &key)
        .await
        .expect(200);
    assert_eq!(staged["total"], 0, "{staged}");
    assert!(blob_files(&app).is_empty());
}

#[tokio::test]
async fn an_upload_key_of_another_project_cannot_be_registered() {
    let (app, key1, key2) = spawn_app_with_two_projects().await;
    let prep = staged_upload(&app, &key1, "mine.csv", b"m\n").await;
    app.post(
        "/projects/2/files",
        &key2,
        json!({"upload_key": prep["upload_key"]}),
    )
    .await
    .expect_error(404);
    register(&app, &key1, &prep).await.expect(201);
}

#[tokio::test]
async fn an_expired_upload_key_is_410() {
    let (app, key) = app_with_project_configured(|c| c.upload_ttl_secs = 0).await;
    let prep = prepare(&app, &key, "late.csv").await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    upload_prepared(
        &app,
        &key,
        prep["upload_url"].as_str().unwrap(),
        "late.csv",
        b"1\n",
    )
    .await
    .reply()
    .expect_error(410);
    register(&app, &key, &prep).await.expect_error(410);
    assert!(blob_files(&app).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_upload_survives_a_server_restart() {
    let (app, key) = spawn_app_with_project().await;
    let prep = staged_upload(&app, &key, "kept.csv", b"k\n1\n").await;
    let app = app.restart().await;
    let file = register(&app, &key, &prep).await.expect(201);
    assert_eq!(file["checksum_sha256"], sha256_hex(b"k\n1\n"));
}
