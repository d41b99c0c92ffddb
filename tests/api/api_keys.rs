//! The key API over HTTP: issuing scoped keys, listing, revoking, rotating and expiring them,
//! and what each scope and narrowing lets a key do (the reference's unchecked scopes, fixed).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with_project, JsonClient, TestApp, ADMIN_KEY};

/// Issues a key in project 1; the whole 201 answer.
async fn issue(app: &TestApp, key: &str, body: Value) -> Value {
    app.post("/projects/1/api-keys", key, body)
        .await
        .expect(201)
}

fn secret(issued: &Value) -> String {
    issued["api_key"].as_str().expect("api_key").to_string()
}

fn branch_key(scope: &str) -> Value {
    json!({ "description": format!("a {scope} key"), "scope": scope, "branch_id": "default" })
}

#[tokio::test]
async fn an_issued_key_has_the_reference_shape_and_every_admin_key_authenticates() {
    let (app, first) = spawn_app_with_project().await;
    let issued = issue(&app, &first, json!({ "description": "second admin" })).await;
    for field in [
        "id",
        "project_id",
        "key_prefix",
        "scope",
        "created_at",
        "api_key",
    ] {
        assert!(issued[field].is_string(), "{field}: {issued}");
    }
    assert_eq!(issued["project_id"], "1");
    assert_eq!(issued["scope"], "project_admin");
    assert_eq!(issued["branch_id"], Value::Null);
    assert_eq!(issued["expires_at"], Value::Null);
    assert_eq!(issued["description"], "second admin");
    let second = secret(&issued);
    assert!(second.starts_with("proj_1_admin_"), "{second}");
    assert!(second.starts_with(issued["key_prefix"].as_str().unwrap()));
    assert_ne!(second, first);
    // Both admin keys work (the reference finds only one by their shared prefix).
    app.get("/projects/1/buckets", &first).await.expect(200);
    app.get("/projects/1/buckets", &second).await.expect(200);

    let list = app.get("/projects/1/api-keys", &second).await.expect(200);
    assert_eq!(list["count"], 2);
    let keys = list["api_keys"].as_array().unwrap();
    assert_eq!(keys[0]["id"], issued["id"], "newest first: {list}");
    for k in keys {
        assert!(k.get("api_key").is_none(), "a listing shows a key: {k}");
        assert_eq!(k["is_revoked"], false);
        assert!(k.get("last_used_at").is_some());
    }
    let text = list.to_string();
    assert!(!text.contains(&first[first.len() - 20..]), "secret leaked");
    let one = app
        .get(
            &format!("/projects/1/api-keys/{}", issued["id"].as_str().unwrap()),
            ADMIN_KEY,
        )
        .await
        .expect(200);
    assert_eq!(one["id"], issued["id"]);
    assert!(one.get("api_key").is_none());
}

#[tokio::test]
async fn branch_keys_name_their_branch_and_scope() {
    let (app, owner) = spawn_app_with_project().await;
    let admin = issue(&app, &owner, branch_key("branch_admin")).await;
    assert!(
        secret(&admin).starts_with("proj_1_branch_default_admin_"),
        "{admin}"
    );
    assert_eq!(admin["branch_id"], "default");
    let read = issue(&app, &owner, branch_key("branch_read")).await;
    assert!(
        secret(&read).starts_with("proj_1_branch_default_read_"),
        "{read}"
    );
    // `main` is the default branch's alias.
    let mut via_alias = branch_key("branch_read");
    via_alias["branch_id"] = json!("main");
    assert_eq!(issue(&app, &owner, via_alias).await["branch_id"], "default");
}

#[tokio::test]
async fn invalid_key_requests_are_refused_with_the_reference_codes() {
    let (app, owner) = spawn_app_with_project().await;
    let path = "/projects/1/api-keys";
    let body = app
        .post(
            path,
            &owner,
            json!({ "description": "x", "scope": "branch_read" }),
        )
        .await
        .expect_code(400, "invalid_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("branch_id is required"),
        "{body}"
    );
    let body = app
        .post(
            path,
            &owner,
            json!({ "description": "x", "scope": "project_admin", "branch_id": "default" }),
        )
        .await
        .expect_code(400, "invalid_request");
    assert!(
        body["message"].as_str().unwrap().contains("must be null"),
        "{body}"
    );
    let mut dev = branch_key("branch_admin");
    dev["branch_id"] = json!("dev");
    app.post(path, &owner, dev)
        .await
        .expect_code(404, "branch_not_found");
    app.post(
        "/projects/9/api-keys",
        ADMIN_KEY,
        json!({ "description": "x" }),
    )
    .await
    .expect_code(404, "project_not_found");
    for days in [0, 366, -1] {
        app.post(
            path,
            &owner,
            json!({ "description": "x", "expires_in_days": days }),
        )
        .await
        .expect_error(422);
    }
    app.post(path, &owner, json!({ "scope": "project_admin" }))
        .await
        .expect_error(422);
    app.post(
        path,
        &owner,
        json!({ "description": "x", "scope": "superuser" }),
    )
    .await
    .expect_error(422);
    // A project_admin key cannot be narrowed: it could issue itself an unlimited key.
    app.post(
        path,
        &owner,
        json!({ "description": "x", "bucket_permissions": { "b": "read" } }),
    )
    .await
    .expect_code(400, "invalid_request");
    let mut bad_bucket = branch_key("branch_admin");
    bad_bucket["bucket_permissions"] = json!({ "no such/bucket": "read" });
    app.post(path, &owner, bad_bucket).await.expect_error(400);
    let mut bad_right = branch_key("branch_admin");
    bad_right["file_permissions"] = json!(["steal"]);
    app.post(path, &owner, bad_right).await.expect_error(422);
}

#[tokio::test]
async fn revoking_a_key_stops_it_at_once_and_keeps_the_last_admin_key() {
    let (app, owner) = spawn_app_with_project().await;
    let issued = issue(&app, &owner, branch_key("branch_admin")).await;
    let key = secret(&issued);
    let id = issued["id"].as_str().unwrap().to_string();
    // Used once, so it sits in the verified-key cache when revoked.
    app.get("/projects/1/buckets", &key).await.expect(200);
    app.delete(&format!("/projects/1/api-keys/{id}"), &owner)
        .await
        .expect(204);
    let body = app
        .get("/projects/1/buckets", &key)
        .await
        .expect_code(401, "unauthorized");
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    // Again: still 204. Listed no more; shown by id as revoked.
    app.delete(&format!("/projects/1/api-keys/{id}"), &owner)
        .await
        .expect(204);
    let list = app.get("/projects/1/api-keys", &owner).await.expect(200);
    assert_eq!(list["count"], 1, "{list}");
    let one = app
        .get(&format!("/projects/1/api-keys/{id}"), &owner)
        .await
        .expect(200);
    assert_eq!(one["is_revoked"], true);
    assert!(one["revoked_at"].is_string());

    // The project's only admin key.
    let admin_id = list["api_keys"][0]["id"].as_str().unwrap().to_string();
    let body = app
        .delete(&format!("/projects/1/api-keys/{admin_id}"), ADMIN_KEY)
        .await
        .expect_code(400, "cannot_revoke_last_admin_key");
    assert_eq!(body["details"]["active_project_admin_keys"], 1);
    // With a second admin key, the first may go, even by itself.
    let second = secret(&issue(&app, &owner, json!({ "description": "next" })).await);
    app.delete(&format!("/projects/1/api-keys/{admin_id}"), &owner)
        .await
        .expect(204);
    app.get("/projects/1", &owner).await.expect_error(401);
    app.get("/projects/1", &second).await.expect(200);
}

#[tokio::test]
async fn keys_of_other_projects_are_not_found() {
    let app = spawn_app().await;
    let one = app.create_project("1").await;
    let two = app.create_project("2").await;
    let list = app.get("/projects/2/api-keys", &two).await.expect(200);
    let id = list["api_keys"][0]["id"].as_str().unwrap().to_string();
    // Project 1's admin asks for project 2's key through its own project.
    app.get(&format!("/projects/1/api-keys/{id}"), &one)
        .await
        .expect_code(404, "api_key_not_found");
    app.delete(&format!("/projects/1/api-keys/{id}"), &one)
        .await
        .expect_code(404, "api_key_not_found");
    app.post(
        &format!("/projects/1/api-keys/{id}/rotate"),
        &one,
        json!({}),
    )
    .await
    .expect_code(404, "api_key_not_found");
    // ...and cannot reach project 2's routes at all.
    app.get("/projects/2/api-keys", &one)
        .await
        .expect_code(403, "forbidden");
    app.get("/projects/1/api-keys/no-such-id", &one)
        .await
        .expect_code(404, "api_key_not_found");
}

#[tokio::test]
async fn rotating_replaces_a_key_with_the_same_grant_and_lifetime() {
    let (app, owner) = spawn_app_with_project().await;
    let mut body = branch_key("branch_read");
    body["expires_in_days"] = json!(30);
    body["bucket_permissions"] = json!({ "b": "read" });
    let old = issue(&app, &owner, body).await;
    let old_key = secret(&old);
    app.get("/projects/1/buckets", &old_key).await.expect(200);
    let id = old["id"].as_str().unwrap();
    let new = app
        .post(
            &format!("/projects/1/api-keys/{id}/rotate"),
            &owner,
            json!({}),
        )
        .await
        .expect(201);
    assert_ne!(new["id"], old["id"]);
    assert_eq!(new["scope"], "branch_read");
    assert_eq!(new["branch_id"], "default");
    assert_eq!(new["bucket_permissions"], json!({ "b": "read" }));
    assert_eq!(new["description"], "a branch_read key (rotated)");
    let lifetime = |k: &Value| {
        let at = |f: &str| chrono::DateTime::parse_from_rfc3339(k[f].as_str().unwrap()).unwrap();
        at("expires_at") - at("created_at")
    };
    assert_eq!(lifetime(&new), lifetime(&old));
    let new_key = secret(&new);
    assert!(new_key.starts_with("proj_1_branch_default_read_"));
    app.get("/projects/1/buckets", &new_key).await.expect(200);
    let body = app
        .get("/projects/1/buckets", &old_key)
        .await
        .expect_error(401);
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    app.post(
        &format!("/projects/1/api-keys/{id}/rotate"),
        &owner,
        json!({}),
    )
    .await
    .expect_code(400, "cannot_rotate_revoked_key");
}

#[tokio::test]
async fn a_read_key_reads_and_cannot_write_or_mint_keys() {
    let (app, owner) = spawn_app_with_project().await;
    app.create_bucket("1", &owner, "b").await;
    let reader = secret(&issue(&app, &owner, branch_key("branch_read")).await);
    app.get("/projects/1/buckets", &reader).await.expect(200);
    app.get("/projects/1/branches/default/buckets/b", &reader)
        .await
        .expect(200);
    let body = app
        .post("/projects/1/buckets", &reader, json!({ "name": "c" }))
        .await
        .expect_code(403, "forbidden");
    assert!(
        body["message"].as_str().unwrap().contains("branch_read"),
        "{body}"
    );
    // The reference lets any key mint admin keys.
    app.post(
        "/projects/1/api-keys",
        &reader,
        json!({ "description": "escalate" }),
    )
    .await
    .expect_code(403, "forbidden");
    app.get("/projects/1/api-keys", &reader)
        .await
        .expect_code(403, "forbidden");
    app.send_raw(
        Method::POST,
        "/projects/1/files/content?name=x.txt",
        &reader,
        &[],
        b"x".to_vec(),
    )
    .await
    .expect_code(403, "forbidden");
}

#[tokio::test]
async fn a_branch_admin_key_writes_data_but_manages_nothing() {
    let (app, owner) = spawn_app_with_project().await;
    let writer = secret(&issue(&app, &owner, branch_key("branch_admin")).await);
    app.create_bucket("1", &writer, "b").await;
    app.create_table("1", &writer, "b", "t", &[("id", "INTEGER")], &["id"])
        .await;
    app.delete("/projects/1/buckets/b/tables/t", &writer)
        .await
        .expect(204);
    for (method, path, body) in [
        (
            Method::POST,
            "/projects/1/api-keys",
            Some(json!({ "description": "x" })),
        ),
        (
            Method::PUT,
            "/projects/1",
            Some(json!({ "name": "renamed" })),
        ),
        (Method::DELETE, "/projects/1", None),
        (
            Method::POST,
            "/projects/1/buckets/b/share",
            Some(json!({ "target_project_id": "2" })),
        ),
        (Method::POST, "/projects/1/buckets/b/grant-readonly", None),
    ] {
        let reply = app.call(method.clone(), path, Some(&writer), body).await;
        let body = reply.expect_code(403, "forbidden");
        assert!(
            body["message"].as_str().unwrap().contains("project_admin"),
            "{method} {path}: {body}"
        );
    }
    // Only its branch: a branch other than its own is refused before it is looked up.
    app.get("/projects/1/branches/dev/buckets", &writer)
        .await
        .expect_code(403, "forbidden");
    app.get("/projects/1/branches/dev/buckets", &owner)
        .await
        .expect_code(404, "branch_not_found");
}

#[tokio::test]
async fn bucket_permissions_limit_what_a_key_sees_and_changes() {
    let (app, owner) = spawn_app_with_project().await;
    for b in ["r", "w", "hidden"] {
        app.create_bucket("1", &owner, b).await;
    }
    let mut body = branch_key("branch_admin");
    body["bucket_permissions"] = json!({ "r": "read", "w": "write" });
    let key = secret(&issue(&app, &owner, body).await);
    let list = app.get("/projects/1/buckets", &key).await.expect(200);
    let mut names: Vec<&str> = list["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["r", "w"], "{list}");
    app.get("/projects/1/buckets/hidden", &key)
        .await
        .expect_code(403, "forbidden");
    app.get("/projects/1/buckets/r/tables", &key)
        .await
        .expect(200);
    let cols = json!({ "name": "t", "columns": [{ "name": "id", "type": "INTEGER" }] });
    app.post("/projects/1/buckets/r/tables", &key, cols.clone())
        .await
        .expect_code(403, "forbidden");
    app.post("/projects/1/buckets/w/tables", &key, cols)
        .await
        .expect(201);
    app.post("/projects/1/buckets", &key, json!({ "name": "new" }))
        .await
        .expect_code(403, "forbidden");
}

#[tokio::test]
async fn file_permissions_split_upload_read_and_delete() {
    let (app, owner) = spawn_app_with_project().await;
    let with_rights = |rights: Value| {
        let mut body = branch_key("branch_admin");
        body["file_permissions"] = rights;
        body
    };
    let uploader = secret(&issue(&app, &owner, with_rights(json!(["upload"]))).await);
    let reader = secret(&issue(&app, &owner, with_rights(json!(["read"]))).await);
    let file = app
        .send_raw(
            Method::POST,
            "/projects/1/files/content?name=a.txt",
            &uploader,
            &[],
            b"hello".to_vec(),
        )
        .await
        .expect(201);
    let id = file["id"].as_str().unwrap();
    app.get(&format!("/projects/1/files/{id}"), &uploader)
        .await
        .expect_code(403, "forbidden");
    app.get(&format!("/projects/1/files/{id}"), &reader)
        .await
        .expect(200);
    app.send_raw(
        Method::POST,
        "/projects/1/files/content?name=b.txt",
        &reader,
        &[],
        b"x".to_vec(),
    )
    .await
    .expect_code(403, "forbidden");
    app.delete(&format!("/projects/1/files/{id}"), &reader)
        .await
        .expect_code(403, "forbidden");
    app.delete(&format!("/projects/1/files/{id}"), &owner)
        .await
        .expect(204);
}

#[tokio::test]
async fn last_use_is_reported_and_survives_a_restart() {
    let (app, owner) = spawn_app_with_project().await;
    let issued = issue(&app, &owner, branch_key("branch_read")).await;
    let path = format!("/projects/1/api-keys/{}", issued["id"].as_str().unwrap());
    let before = app.get(&path, &owner).await.expect(200);
    assert_eq!(before["last_used_at"], Value::Null);
    app.get("/projects/1/buckets", &secret(&issued))
        .await
        .expect(200);
    let after = app.get(&path, &owner).await.expect(200);
    assert!(after["last_used_at"].is_string(), "{after}");
    let app = app.restart().await;
    let restarted = app.get(&path, ADMIN_KEY).await.expect(200);
    assert_eq!(restarted["last_used_at"], after["last_used_at"]);
}

#[tokio::test]
async fn keys_and_revocations_survive_a_restart() {
    let (app, owner) = spawn_app_with_project().await;
    let kept = secret(&issue(&app, &owner, branch_key("branch_admin")).await);
    let gone = issue(&app, &owner, branch_key("branch_admin")).await;
    app.delete(
        &format!("/projects/1/api-keys/{}", gone["id"].as_str().unwrap()),
        &owner,
    )
    .await
    .expect(204);
    let app = app.restart().await;
    app.get("/projects/1/buckets", &kept).await.expect(200);
    app.get("/projects/1/buckets", &secret(&gone))
        .await
        .expect_error(401);
    let list = app.get("/projects/1/api-keys", &owner).await.expect(200);
    assert_eq!(list["count"], 2, "{list}");
}

#[tokio::test]
async fn an_expired_key_is_told_so() {
    let (app, owner) = spawn_app_with_project().await;
    let mut body = branch_key("branch_read");
    body["expires_in_days"] = json!(1);
    let issued = issue(&app, &owner, body).await;
    let key = secret(&issued);
    app.get("/projects/1/buckets", &key).await.expect(200);
    let mut app = app;
    app.stop().await;
    {
        let conn = duckdb::Connection::open(app.data_dir.join("metadata.duckdb")).unwrap();
        conn.execute(
            "UPDATE api_keys SET expires_at = now()::TIMESTAMP - INTERVAL 1 MINUTE WHERE id = ?",
            [issued["id"].as_str().unwrap()],
        )
        .unwrap();
    }
    let app = app.restart().await;
    let body = app.get("/projects/1/buckets", &key).await.expect_error(401);
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    // Still listed (expiry is not revocation).
    let list = app.get("/projects/1/api-keys", &owner).await.expect(200);
    assert_eq!(list["count"], 2);
}

#[tokio::test]
async fn deleting_a_project_ends_all_its_keys() {
    let (app, owner) = spawn_app_with_project().await;
    let extra = secret(&issue(&app, &owner, branch_key("branch_admin")).await);
    app.get("/projects/1/buckets", &extra).await.expect(200);
    app.delete("/projects/1", ADMIN_KEY).await.expect(204);
    app.create_project("1").await;
    app.get("/projects/1/buckets", &extra)
        .await
        .expect_error(401);
    app.get("/projects/1/buckets", &owner)
        .await
        .expect_error(401);
}
