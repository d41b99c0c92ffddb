//! Idempotent retries over HTTP: replay of the stored answer, 409 for a reused key, entries kept
//! per caller (the reference's are global), what is and is not stored, and durability.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const KEY: &str = "x-idempotency-key";

/// Sends `method path` with a JSON body and the given headers.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Reply {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(key)
        .json(&body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    reply_of(req.send().await.expect("request failed")).await
}

async fn create_bucket(app: &TestApp, key: &str, idem: &str, bucket: &str) -> Reply {
    send(
        app,
        Method::POST,
        "/projects/1/buckets",
        key,
        &[(KEY, idem)],
        json!({ "name": bucket }),
    )
    .await
}

/// `POST /projects` for project `id` with idempotency key `idem`.
async fn create_project(app: &TestApp, key: &str, idem: &str, id: &str) -> Reply {
    send(
        app,
        Method::POST,
        "/projects",
        key,
        &[(KEY, idem)],
        json!({ "id": id, "name": format!("Project {id}") }),
    )
    .await
}

fn replayed(reply: &Reply) -> bool {
    let flag = |name: &str| reply.headers.get(name).and_then(|v| v.to_str().ok()) == Some("true");
    assert_eq!(
        flag("x-idempotency-replay"),
        flag("idempotent-replayed"),
        "both replay headers or neither"
    );
    flag("x-idempotency-replay")
}

async fn bucket_count(app: &TestApp, key: &str) -> usize {
    let list = app.get("/projects/1/buckets", key).await.expect(200);
    list["buckets"].as_array().expect("buckets").len()
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_and_runs_once() {
    let (app, key) = spawn_app_with_project().await;
    let first = create_bucket(&app, &key, "create-b-1", "b").await;
    assert!(!replayed(&first));
    assert_eq!(first.headers[KEY], "create-b-1", "the key is echoed");
    let first_body = first.expect(201);

    let retry = create_bucket(&app, &key, "create-b-1", "b").await;
    assert!(replayed(&retry), "{:?}", retry.headers);
    assert_eq!(
        retry.headers["content-type"], "application/json",
        "stored headers come back"
    );
    assert_eq!(retry.expect(201), first_body);
    assert_eq!(bucket_count(&app, &key).await, 1);

    // The IETF draft's header name reaches the same entry.
    let draft = send(
        &app,
        Method::POST,
        "/projects/1/buckets",
        &key,
        &[("idempotency-key", "create-b-1")],
        json!({ "name": "b" }),
    )
    .await;
    assert!(replayed(&draft));
    draft.expect(201);

    // Without a key the same request really runs again.
    app.post("/projects/1/buckets", &key, json!({ "name": "b" }))
        .await
        .expect_code(409, "bucket_exists");
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_409_saying_what_differs() {
    let (app, key) = spawn_app_with_project().await;
    create_bucket(&app, &key, "k", "b").await.expect(201);

    let body = create_bucket(&app, &key, "k", "other")
        .await
        .expect_code(409, "idempotency_conflict");
    assert!(
        body["message"].as_str().unwrap().contains("different body"),
        "{body}"
    );
    let body = send(
        &app,
        Method::DELETE,
        "/projects/1/buckets/b",
        &key,
        &[(KEY, "k")],
        json!({}),
    )
    .await
    .expect_code(409, "idempotency_conflict");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("POST /projects/1/buckets") && message.contains("DELETE"),
        "{body}"
    );
    // Neither ran.
    assert_eq!(bucket_count(&app, &key).await, 1);
    app.get("/projects/1/buckets/b", &key).await.expect(200);
}

#[tokio::test]
async fn entries_belong_to_their_caller() {
    let (app, key1, key2) = spawn_app_with_two_projects().await;
    let issued = app
        .post(
            "/projects/1/api-keys",
            &key1,
            json!({ "description": "second" }),
        )
        .await
        .expect(201);
    let second = issued["api_key"].as_str().unwrap().to_string();

    create_bucket(&app, &key1, "shared-value", "b")
        .await
        .expect(201);
    // The same key value from another key of the same project is its own entry: it runs.
    let other = create_bucket(&app, &second, "shared-value", "b").await;
    assert!(!replayed(&other));
    other.expect_code(409, "bucket_exists");
    // And from another project.
    let elsewhere = send(
        &app,
        Method::POST,
        "/projects/2/buckets",
        &key2,
        &[(KEY, "shared-value")],
        json!({ "name": "b" }),
    )
    .await;
    assert!(!replayed(&elsewhere));
    elsewhere.expect(201);

    // The reference replays an admin's project creation, one-time key included, to anyone
    // who sends the same idempotency key. Here the gate refuses them first.
    let created = create_project(&app, ADMIN_KEY, "new-project", "3")
        .await
        .expect(201);
    assert!(created["api_key"].is_string());
    let stolen = create_project(&app, &key1, "new-project", "3").await;
    assert!(!replayed(&stolen));
    let body = stolen.expect_code(403, "forbidden");
    assert!(body.get("api_key").is_none(), "{body}");
    // The admin's own retry gets the key it was shown.
    let again = create_project(&app, ADMIN_KEY, "new-project", "3").await;
    assert!(replayed(&again));
    assert_eq!(again.expect(201)["api_key"], created["api_key"]);
}

#[tokio::test]
async fn client_errors_are_stored_but_refusals_of_the_caller_are_not() {
    let (app, key) = spawn_app_with_project().await;
    app.create_bucket("1", &key, "b").await;
    let conflict = create_bucket(&app, &key, "dup", "b").await;
    assert!(!replayed(&conflict));
    conflict.expect_code(409, "bucket_exists");
    let again = create_bucket(&app, &key, "dup", "b").await;
    assert!(replayed(&again), "a 4xx is replayed, as the reference does");
    again.expect_code(409, "bucket_exists");

    // 403 from the gate: a read-only key may not write, and nothing is kept for it.
    let issued = app
        .post(
            "/projects/1/api-keys",
            &key,
            json!({ "description": "reader", "scope": "branch_read", "branch_id": "default" }),
        )
        .await
        .expect(201);
    let reader = issued["api_key"].as_str().unwrap();
    for _ in 0..2 {
        let refused = create_bucket(&app, reader, "reader-1", "c").await;
        assert!(!replayed(&refused));
        refused.expect_code(403, "forbidden");
    }
    // 401: a wrong key never reaches the store either.
    for _ in 0..2 {
        let refused = create_bucket(&app, "proj_1_admin_wrong", "anon-1", "c").await;
        assert!(!replayed(&refused));
        refused.expect_error(401);
    }
}

#[tokio::test]
async fn a_malformed_key_is_400_and_reads_ignore_the_header() {
    let (app, key) = spawn_app_with_project().await;
    let long = "x".repeat(256);
    let bad = |headers: Vec<(&'static str, String)>| {
        let app = &app;
        let key = &key;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            send(
                app,
                Method::POST,
                "/projects/1/buckets",
                key,
                &headers,
                json!({ "name": "b" }),
            )
            .await
            .expect_code(400, "invalid_request")
        }
    };
    bad(vec![(KEY, long.clone())]).await;
    bad(vec![(KEY, String::new())]).await;
    bad(vec![(KEY, "a".into()), ("idempotency-key", "b".into())]).await;
    assert_eq!(bucket_count(&app, &key).await, 0, "nothing ran");

    let exact = "y".repeat(255);
    create_bucket(&app, &key, &exact, "b").await.expect(201);

    let read = send(
        &app,
        Method::GET,
        "/projects/1/buckets",
        &key,
        &[(KEY, "read-1")],
        json!(null),
    )
    .await;
    assert!(
        read.headers.get(KEY).is_none(),
        "GET is not idempotency-keyed"
    );
    read.expect(200);
}

#[tokio::test]
async fn a_retry_while_the_first_request_runs_is_409_in_progress() {
    let (app, key) = spawn_app_with_project().await;
    let path = "/projects/1/files/content?name=slow.bin";
    let data = bytes_of(64 * 1024, 5);
    // The first upload sends half its body and stalls, holding the key.
    let mut first = RawHttp::connect(&app.base).await;
    first
        .send_head(
            "POST",
            path,
            &[
                ("Authorization", format!("Bearer {key}")),
                ("Content-Length", data.len().to_string()),
                (KEY, "upload-1".to_string()),
            ],
        )
        .await;
    first.send_body(&data[..data.len() / 2]).await;
    let mut busy = None;
    for _ in 0..100 {
        let reply = app
            .send_raw(Method::POST, path, &key, &[(KEY, "upload-1")], data.clone())
            .await;
        if reply.status.as_u16() == 409 {
            busy = Some(reply);
            break;
        }
        // The first request may not have reached the server yet.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let busy = busy.expect("the retry was never refused while the first ran");
    busy.expect_code(409, "idempotency_in_progress");

    first.send_body(&data[data.len() / 2..]).await;
    let (status, stored) = first.response().await;
    assert_eq!(status, 201, "{stored}");
    let retry = app
        .send_raw(Method::POST, path, &key, &[(KEY, "upload-1")], data.clone())
        .await;
    assert!(replayed(&retry));
    assert_eq!(retry.expect(201)["id"], stored["id"]);
    let files = app.get("/projects/1/files", &key).await.expect(200);
    assert_eq!(files["files"].as_array().unwrap().len(), 1, "{files}");

    // A different body under the same key is a conflict, even for an upload.
    app.send_raw(
        Method::POST,
        path,
        &key,
        &[(KEY, "upload-1")],
        b"x".to_vec(),
    )
    .await
    .expect_code(409, "idempotency_conflict");
}

#[tokio::test]
async fn stored_answers_survive_a_restart_sealed_and_expire() {
    let app = spawn_app().await;
    let created = create_project(&app, ADMIN_KEY, "p1", "1").await.expect(201);
    let secret = created["api_key"].as_str().unwrap().to_string();
    create_bucket(&app, &secret, "b", "b").await.expect(201);

    let mut app = app;
    app.stop().await;
    {
        // The one-time key is in the catalog only sealed.
        let conn = duckdb::Connection::open(app.data_dir.join("metadata.duckdb")).unwrap();
        let mut stmt = conn
            .prepare("SELECT sealed_body FROM idempotency_entries")
            .unwrap();
        let bodies: Vec<Vec<u8>> = stmt
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(bodies.len(), 2);
        for body in bodies {
            assert!(
                !body.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a stored answer holds the key in clear"
            );
        }
    }
    let app = app.restart_configured(|c| c.idempotency_ttl_secs = 1).await;
    let again = create_project(&app, ADMIN_KEY, "p1", "1").await;
    assert!(replayed(&again), "replayed after a restart");
    assert_eq!(again.expect(201)["api_key"], created["api_key"]);
    let bucket = create_bucket(&app, &secret, "b", "b").await;
    assert!(replayed(&bucket));
    bucket.expect(201);

    // Entries stored under a 1 s TTL are gone after it: the request runs again.
    create_bucket(&app, &secret, "short", "c").await.expect(201);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let expired = create_bucket(&app, &secret, "short", "c").await;
    assert!(!replayed(&expired));
    expired.expect_code(409, "bucket_exists");
}

/// Uploads 16 KiB as file `big.bin` with idempotency key `idem`.
async fn upload_16k(app: &TestApp, key: &str, idem: &str) -> Reply {
    let res = app
        .client
        .post(app.url("/projects/1/files/content?name=big.bin"))
        .bearer_auth(key)
        .header(KEY, idem)
        .body(vec![7u8; 16 * 1024])
        .send()
        .await
        .expect("upload");
    reply_of(res).await
}

#[tokio::test]
async fn a_retry_with_a_body_over_max_body_bytes_is_413_and_uploads_keep_their_own_limit() {
    let app = spawn_app_configured(|c| c.max_body_bytes = 4096).await;
    let key = app.create_project("1").await;
    create_bucket(&app, &key, "big", "b").await.expect(201);
    // The retry's body is refused from its length, not read and hashed in full.
    let huge = json!({ "name": "b", "padding": "x".repeat(64 * 1024) });
    send(
        &app,
        Method::POST,
        "/projects/1/buckets",
        &key,
        &[(KEY, "big")],
        huge,
    )
    .await
    .expect_code(413, "payload_too_large");
    // The stored answer is still there for the right retry.
    let retry = create_bucket(&app, &key, "big", "b").await;
    assert!(replayed(&retry));
    retry.expect(201);

    // Upload routes are not limited by MAX_BODY_BYTES: a retry larger than it is replayed.
    let first = upload_16k(&app, &key, "upload-1").await;
    assert!(!replayed(&first));
    let first = first.expect(201);
    let retry = upload_16k(&app, &key, "upload-1").await;
    assert!(replayed(&retry));
    assert_eq!(retry.expect(201), first);
}
