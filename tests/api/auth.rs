//! Authentication and authorization, black-box: every route is checked against every kind of
//! caller (no key, unknown keys, another project's key, the project's own key, the admin key),
//! plus the alternative key headers, the shape and secrecy of project keys, and error bodies.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    spawn_app, spawn_app_with_two_projects, JsonClient, Reply, TestApp, ADMIN_KEY,
};

/// A key with the project-key shape for project 1 that was never issued.
fn forged_key() -> String {
    format!("proj_1_admin_{}", "0".repeat(32))
}

const RANDOM_KEY: &str = "not-a-key-Zx81kQ";

/// One row of the matrix: a route to call and the body to send.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
}

/// Sends one case with an optional bearer key.
async fn send(app: &TestApp, case: &Case, key: Option<&str>) -> Reply {
    app.call(case.method.clone(), &case.path, key, case.body.clone())
        .await
}

impl Case {
    fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Self {
        Self {
            method,
            path: path.into(),
            body,
        }
    }

    fn name(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Checks the reference error body and the request id header on an error reply.
#[track_caller]
fn assert_error(reply: &Reply, status: u16, code: &str, case: &str, who: &str) {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{case} with {who}: expected {status}, body: {}",
        reply.body
    );
    assert_eq!(
        reply.body["error"], code,
        "{case} with {who}: error code; body: {}",
        reply.body
    );
    assert!(
        reply.body["message"].is_string(),
        "{case} with {who}: message missing: {}",
        reply.body
    );
    assert!(
        reply.body.get("details").is_some(),
        "{case} with {who}: details missing: {}",
        reply.body
    );
    assert!(
        reply.headers.contains_key("x-request-id"),
        "{case} with {who}: x-request-id header missing"
    );
}

/// Checks that a caller got past authentication and authorization on a route that exists.
#[track_caller]
fn assert_allowed(reply: &Reply, case: &str, who: &str) {
    let status = reply.status.as_u16();
    assert!(
        status != 401 && status != 403,
        "{case} with {who}: expected access, got {status}: {}",
        reply.body
    );
    assert!(
        status < 500,
        "{case} with {who}: server error {status}: {}",
        reply.body
    );
    assert_ne!(
        status, 405,
        "{case} with {who}: method not routed: {}",
        reply.body
    );
    let message = reply.body["message"].as_str().unwrap_or("");
    assert!(
        !message.starts_with("no route"),
        "{case} with {who}: the matrix names a route that does not exist: {}",
        reply.body
    );
    assert!(
        reply.headers.contains_key("x-request-id"),
        "{case} with {who}: x-request-id header missing"
    );
}

/// Project 1 (the target, key A), project 2 (key B: "another project"), project 3 that shares
/// bucket `in_c_src` with project 1 so link routes can succeed.
struct World {
    app: TestApp,
    key_a: String,
    key_b: String,
}

async fn world() -> World {
    let (app, key_a, key_b) = spawn_app_with_two_projects().await;
    let key_c = app.create_project("3").await;
    app.create_bucket("1", &key_a, "in_c_main").await;
    app.create_table("1", &key_a, "in_c_main", "t", &[("id", "INTEGER")], &["id"])
        .await;
    app.create_bucket("3", &key_c, "in_c_src").await;
    app.share_bucket("3", &key_c, "in_c_src", "1")
        .await
        .expect(200);
    World { app, key_a, key_b }
}

/// Every route under `/projects/1/...`, for both path styles, in an order where each
/// successful call leaves the state the next one needs (the last one deletes project 1).
fn project_cases() -> Vec<Case> {
    let mut cases = vec![
        Case::new(Method::GET, "/projects/1", None),
        Case::new(
            Method::PUT,
            "/projects/1",
            Some(json!({ "name": "renamed" })),
        ),
        Case::new(Method::GET, "/projects/1/stats", None),
    ];
    for p in ["/projects/1", "/projects/1/branches/default"] {
        cases.extend([
            Case::new(Method::GET, format!("{p}/buckets"), None),
            Case::new(Method::POST, format!("{p}/buckets"), Some(json!({ "name": "matrix_bucket" }))),
            Case::new(Method::GET, format!("{p}/buckets/in_c_main"), None),
            Case::new(Method::DELETE, format!("{p}/buckets/matrix_bucket"), None),
            Case::new(
                Method::POST,
                format!("{p}/buckets/in_c_main/share"),
                Some(json!({ "target_project_id": "3" })),
            ),
            Case::new(
                Method::DELETE,
                format!("{p}/buckets/in_c_main/share?target_project_id=3"),
                None,
            ),
            Case::new(
                Method::POST,
                format!("{p}/buckets/matrix_link/link"),
                Some(json!({ "source_project_id": "3", "source_bucket_name": "in_c_src" })),
            ),
            Case::new(Method::DELETE, format!("{p}/buckets/matrix_link/link"), None),
            Case::new(Method::POST, format!("{p}/buckets/in_c_main/grant-readonly"), None),
            Case::new(Method::DELETE, format!("{p}/buckets/in_c_main/grant-readonly"), None),
            Case::new(Method::GET, format!("{p}/buckets/in_c_main/tables"), None),
            Case::new(
                Method::POST,
                format!("{p}/buckets/in_c_main/tables"),
                Some(json!({ "name": "matrix_table", "columns": [{ "name": "id", "type": "INTEGER" }] })),
            ),
            Case::new(Method::GET, format!("{p}/buckets/in_c_main/tables/t"), None),
            Case::new(Method::GET, format!("{p}/buckets/in_c_main/tables/t/preview"), None),
            Case::new(Method::DELETE, format!("{p}/buckets/in_c_main/tables/matrix_table"), None),
        ]);
    }
    cases.push(Case::new(Method::DELETE, "/projects/1", None));
    cases
}

/// The admin-only routes.
fn admin_cases() -> Vec<Case> {
    vec![
        Case::new(Method::POST, "/backend/init", None),
        Case::new(Method::POST, "/backend/remove", None),
        Case::new(Method::GET, "/projects", None),
        Case::new(
            Method::POST,
            "/projects",
            Some(json!({ "id": "77", "name": "from the matrix" })),
        ),
    ]
}

#[tokio::test]
async fn health_endpoints_are_public() {
    let app = spawn_app().await;
    let forged = forged_key();
    for path in ["/health", "/healthz", "/readyz"] {
        for key in [None, Some(RANDOM_KEY), Some(forged.as_str())] {
            let reply = app.call(Method::GET, path, key, None).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "GET {path} with key {key:?} should be public; body: {}",
                reply.body
            );
        }
    }
}

/// The callers every route turns away with 401: no key, a forged key, a random string.
fn keyless_and_forged(forged: &str) -> Vec<(Option<&str>, u16, &'static str, &'static str)> {
    vec![
        (None, 401, "unauthorized", "no key"),
        (Some(forged), 401, "unauthorized", "a forged project-1 key"),
        (Some(RANDOM_KEY), 401, "unauthorized", "a random string"),
    ]
}

#[tokio::test]
async fn every_project_route_rejects_missing_unknown_and_foreign_keys_and_admits_owner_and_admin() {
    let w = world().await;
    let forged = forged_key();
    let cases = project_cases();
    assert_eq!(cases.len(), 3 + 2 * 15 + 1, "the matrix lost a route");
    for case in &cases {
        let name = case.name();

        let mut rejected = keyless_and_forged(&forged);
        rejected.extend([(Some(w.key_b.as_str()), 403, "forbidden", "project 2's key")]);
        for (key, status, code, who) in rejected {
            let r = send(&w.app, case, key).await;
            assert_error(&r, status, code, &name, who);
        }

        for (key, who) in [
            (w.key_a.as_str(), "project 1's own key"),
            (ADMIN_KEY, "the admin key"),
        ] {
            let r = send(&w.app, case, Some(key)).await;
            assert_allowed(&r, &name, who);
        }
    }
}

#[tokio::test]
async fn admin_only_routes_reject_project_keys_and_admit_the_admin() {
    let w = world().await;
    let forged = forged_key();
    for case in &admin_cases() {
        let name = case.name();

        let mut rejected = keyless_and_forged(&forged);
        rejected.extend([
            (Some(w.key_a.as_str()), 403, "forbidden", "project 1's key"),
            (Some(w.key_b.as_str()), 403, "forbidden", "project 2's key"),
        ]);
        for (key, status, code, who) in rejected {
            let r = send(&w.app, case, key).await;
            assert_error(&r, status, code, &name, who);
        }

        let r = send(&w.app, case, Some(ADMIN_KEY)).await;
        assert_allowed(&r, &name, "the admin key");
        assert!(
            r.status.is_success(),
            "{name} with the admin key: {} {}",
            r.status,
            r.body
        );
    }
}

#[tokio::test]
async fn project_key_does_not_open_a_project_that_does_not_exist() {
    let w = world().await;
    // A valid key of project 1 on project 99 is "another project": 403, not 404.
    w.app
        .get("/projects/99/buckets", &w.key_a)
        .await
        .expect_error(403);
    // The admin learns it does not exist.
    w.app
        .get("/projects/99/buckets", ADMIN_KEY)
        .await
        .expect_error(404);
}

/// Sends GET `path` with the key in a named header instead of `Authorization: Bearer`.
async fn get_with_header(app: &TestApp, path: &str, header: &str, key: &str) -> StatusCode {
    app.client
        .get(app.url(path))
        .header(header, key)
        .send()
        .await
        .expect("request failed")
        .status()
}

#[tokio::test]
async fn x_api_key_and_x_storageapi_token_headers_work_like_bearer() {
    let w = world().await;
    for header in ["X-Api-Key", "X-StorageApi-Token"] {
        assert_eq!(
            get_with_header(&w.app, "/projects/1/buckets", header, &w.key_a).await,
            StatusCode::OK,
            "{header} with project 1's key"
        );
        assert_eq!(
            get_with_header(&w.app, "/projects", header, ADMIN_KEY).await,
            StatusCode::OK,
            "{header} with the admin key"
        );
        assert_eq!(
            get_with_header(&w.app, "/projects/1/buckets", header, &w.key_b).await,
            StatusCode::FORBIDDEN,
            "{header} with project 2's key"
        );
        assert_eq!(
            get_with_header(&w.app, "/projects/1/buckets", header, &forged_key()).await,
            StatusCode::UNAUTHORIZED,
            "{header} with a forged key"
        );
        assert_eq!(
            get_with_header(&w.app, "/projects", header, &w.key_a).await,
            StatusCode::FORBIDDEN,
            "{header} with a project key on an admin route"
        );
    }
}

#[tokio::test]
async fn other_authorization_schemes_are_not_accepted() {
    let w = world().await;
    for value in [
        format!("Basic {}", w.key_a),
        w.key_a.clone(),
        "Bearer ".to_string(),
    ] {
        let status = w
            .app
            .client
            .get(w.app.url("/projects/1/buckets"))
            .header("Authorization", &value)
            .send()
            .await
            .expect("request failed")
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "Authorization: {value:?}");
    }
}

fn is_project_key_for(key: &str, project: &str) -> bool {
    let Some(secret) = key.strip_prefix(&format!("proj_{project}_admin_")) else {
        return false;
    };
    secret.len() == 32
        && secret
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn project_key_has_the_reference_shape_and_is_unique() {
    let app = spawn_app().await;
    let k1 = app.create_project("123").await;
    let k2 = app.create_project("my-project_2").await;
    assert!(
        is_project_key_for(&k1, "123"),
        "key {k1:?} is not proj_123_admin_<32 lowercase hex>"
    );
    assert!(
        is_project_key_for(&k2, "my-project_2"),
        "key {k2:?} has the wrong shape"
    );
    assert_ne!(
        &k1[k1.len() - 32..],
        &k2[k2.len() - 32..],
        "two projects got the same secret"
    );
    // The issued key works on its own project.
    app.get("/projects/123", &k1).await.expect(200);
}

#[tokio::test]
async fn project_key_is_shown_only_at_creation() {
    let app = spawn_app().await;
    let key = app.create_project("5").await;
    let secret = key["proj_5_admin_".len()..].to_string();
    let seen = vec![
        app.get("/projects/5", ADMIN_KEY).await.expect(200),
        app.get("/projects/5", &key).await.expect(200),
        app.get("/projects", ADMIN_KEY).await.expect(200),
        app.get("/projects/5/stats", &key).await.expect(200),
        app.call(
            Method::PUT,
            "/projects/5",
            Some(key.as_str()),
            Some(json!({ "name": "new name" })),
        )
        .await
        .expect(200),
    ];
    for body in seen {
        let text = body.to_string();
        assert!(
            !text.contains(&secret),
            "a later response reveals the key: {text}"
        );
        assert!(
            body.get("api_key").is_none(),
            "a later response has api_key: {text}"
        );
        for item in body["projects"].as_array().into_iter().flatten() {
            assert!(
                item.get("api_key").is_none(),
                "project list shows api_key: {item}"
            );
        }
    }
}

#[tokio::test]
async fn deleted_projects_key_answers_401_even_after_the_id_is_reused() {
    let app = spawn_app().await;
    let key = app.create_project("8").await;
    // Use the key first so any cache of verified keys holds it.
    app.get("/projects/8/buckets", &key).await.expect(200);
    app.delete("/projects/8", ADMIN_KEY).await.expect(204);
    for path in ["/projects/8/buckets", "/projects/8"] {
        let r = app.get(path, &key).await;
        assert_error(
            &r,
            401,
            "unauthorized",
            &format!("GET {path}"),
            "a deleted project's key",
        );
    }

    // A new project with the same id gets a new key; the old one stays dead.
    let new_key = app.create_project("8").await;
    assert_ne!(new_key, key);
    app.get("/projects/8/buckets", &new_key).await.expect(200);
    let r = app.get("/projects/8/buckets", &key).await;
    assert_error(
        &r,
        401,
        "unauthorized",
        "GET /projects/8/buckets",
        "the old key of a re-created id",
    );
}

#[tokio::test]
async fn project_deleting_itself_with_its_own_key_invalidates_that_key() {
    let app = spawn_app().await;
    let key = app.create_project("9").await;
    app.get("/projects/9", &key).await.expect(200);
    app.delete("/projects/9", &key).await.expect(204);
    app.get("/projects/9", &key).await.expect_error(401);
    app.get("/projects/9", ADMIN_KEY).await.expect_error(404);
}

#[tokio::test]
async fn auth_errors_have_the_reference_body_and_a_request_id() {
    let w = world().await;
    let r = w.app.get_without_key("/projects/1/buckets").await;
    assert_error(&r, 401, "unauthorized", "GET /projects/1/buckets", "no key");
    let r = w.app.get("/projects/1/buckets", &w.key_b).await;
    assert_error(
        &r,
        403,
        "forbidden",
        "GET /projects/1/buckets",
        "project 2's key",
    );
    let r = w.app.get("/projects", &w.key_a).await;
    assert_error(&r, 403, "forbidden", "GET /projects", "project 1's key");
    // Successful replies carry a request id too.
    let r = w.app.get("/projects/1/buckets", &w.key_a).await;
    let id = r
        .headers
        .get("x-request-id")
        .expect("x-request-id on success");
    assert!(!id.is_empty());
}

#[tokio::test]
async fn request_ids_are_fresh_per_request_and_echo_a_client_supplied_one() {
    let w = world().await;
    let a = w.app.get("/projects/1/buckets", &w.key_a).await;
    let b = w.app.get("/projects/1/buckets", &w.key_a).await;
    assert_ne!(a.headers.get("x-request-id"), b.headers.get("x-request-id"));

    let res = w
        .app
        .client
        .get(w.app.url("/projects/1/buckets"))
        .header("x-request-id", "client-chosen-id-42")
        .send()
        .await
        .expect("request failed");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("client-chosen-id-42")
    );
}

#[tokio::test]
async fn auth_is_checked_before_the_path_is_validated() {
    let w = world().await;
    // An unauthenticated caller learns nothing about names or branches: always 401.
    for path in [
        "/projects/1/branches/feature/buckets",
        "/projects/nope!/buckets",
        "/projects/1/buckets/information_schema/tables",
    ] {
        let r = w.app.get_without_key(path).await;
        assert_error(&r, 401, "unauthorized", path, "no key");
        let r = w.app.get(path, RANDOM_KEY).await;
        assert_error(&r, 401, "unauthorized", path, "a random string");
    }
}
