//! Files API access: keys of other projects, missing keys, the admin key, and records and
//! sessions of one project staying invisible to another; not the Data Bank paths.

use super::*;

#[tokio::test]
async fn another_projects_key_is_403_on_project_files() {
    let (app, _key1, key2) = spawn_app_with_two_projects().await;
    app.get("/projects/1/files", &key2).await.expect_error(403);
    assert_every_way_in_is(&app, &key2, ("x.bin", "x.csv", "x"), 403).await;
}

#[tokio::test]
async fn project_files_without_a_key_are_401() {
    let app = spawn_app().await;
    app.create_project("1").await;
    app.get_without_key("/projects/1/files")
        .await
        .expect_error(401);
}

#[tokio::test]
async fn the_admin_key_may_use_project_files_of_an_existing_project_only() {
    let (app, key) = spawn_app_with_project().await;
    upload(&app, "1", &key, "a.txt", b"a").await;
    let list = app.get("/projects/1/files", ADMIN_KEY).await.expect(200);
    assert_eq!(list["total"], 1);
    app.get("/projects/9/files", ADMIN_KEY)
        .await
        .expect_error(404);
    upload_raw(&app, "9", ADMIN_KEY, "x.txt", b"x")
        .await
        .reply()
        .expect_error(404);
    assert_eq!(blob_files(&app).len(), 1);
}

#[tokio::test]
async fn a_file_of_one_project_is_not_visible_to_another() {
    let (app, key1, key2) = spawn_app_with_two_projects().await;
    let data = b"private to project 1";
    let file = upload(&app, "1", &key1, "secret.txt", data).await;
    let id = file["id"].as_str().unwrap();
    app.get(&format!("/projects/2/files/{id}"), &key2)
        .await
        .expect_error(404);
    download(&app, "2", &key2, id, &[])
        .await
        .reply()
        .expect_error(404);
    app.delete(&format!("/projects/2/files/{id}"), &key2)
        .await
        .expect_error(404);
    assert_eq!(
        app.get("/projects/2/files", &key2).await.expect(200)["total"],
        0
    );
    let sha = sha256_hex(data);
    for path in [format!("/files/{sha}"), format!("/files/{sha}/info")] {
        app.get(&path, &key2).await.expect_error(404);
    }
    // Project 1 still has it.
    app.get(&format!("/projects/1/files/{id}"), &key1)
        .await
        .expect(200);
}

#[tokio::test]
async fn an_upload_session_of_one_project_is_not_visible_to_another() {
    let (app, key1, key2) = spawn_app_with_two_projects().await;
    let s = create_session(&app, &key1, "f.bin", TOTAL, CHUNK, None).await;
    let id = s["upload_id"].as_str().unwrap();
    let theirs = format!("/projects/2/uploads/{id}");
    app.get(&theirs, &key2).await.expect_error(404);
    app.delete(&theirs, &key2).await.expect_error(404);
    app.get(&format!("/projects/1/uploads/{id}"), &key1)
        .await
        .expect(200);
}
