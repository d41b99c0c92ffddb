//! The auth matrix, generated from the server's own route table: every route × every kind of
//! caller (no key, garbage, another project's key, expired, revoked, each scope, narrowed keys,
//! admin), each cell checked against the one outcome the route's declared need implies.

use duckbank::api::access::Rule;
use duckbank::auth::scope::Need;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{enc, spawn_app_configured, JsonClient, Reply, TestApp, ADMIN_KEY};

/// The kinds of caller every route is tried with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    NoKey,
    Garbage,
    Expired,
    Revoked,
    /// A project_admin key of project 2.
    OtherProject,
    ProjectAdmin,
    BranchAdmin,
    BranchRead,
    /// branch_admin with `bucket_permissions: {"b": "read"}`.
    BucketReader,
    /// branch_admin with `file_permissions: ["upload"]`.
    UploadOnly,
    Admin,
    /// PGWIRE_INTERNAL_TOKEN: `/internal/pgwire/*` only, no key anywhere else.
    InternalToken,
}

const INTERNAL_TOKEN: &str = "matrix-internal-token";

const CALLERS: [Caller; 12] = [
    Caller::NoKey,
    Caller::Garbage,
    Caller::Expired,
    Caller::Revoked,
    Caller::OtherProject,
    Caller::BranchRead,
    Caller::BucketReader,
    Caller::UploadOnly,
    Caller::BranchAdmin,
    Caller::ProjectAdmin,
    Caller::Admin,
    Caller::InternalToken,
];

/// What one cell must answer.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Past the gate: whatever the handler says, but never 401/403, 405, 5xx or "no route".
    Admitted,
    Refused(u16, &'static str),
}

const UNAUTHORIZED: Outcome = Outcome::Refused(401, "unauthorized");
const FORBIDDEN: Outcome = Outcome::Refused(403, "forbidden");

/// The outcome a rule's need implies for a caller. Written from the scope table in the README,
/// not from the server's code.
fn expected(rule: &Rule, caller: Caller) -> Outcome {
    use Need::*;
    let need = rule.need;
    if need == Public {
        return Outcome::Admitted;
    }
    // An external wire server's routes: the master key or the internal token, else 401.
    if need == PgwireInternal {
        return match caller {
            Caller::Admin | Caller::InternalToken => Outcome::Admitted,
            _ => UNAUTHORIZED,
        };
    }
    let in_project_path = rule.path.starts_with("/projects/{project_id}");
    let admitted_if = |yes: bool| if yes { Outcome::Admitted } else { FORBIDDEN };
    match caller {
        Caller::NoKey
        | Caller::Garbage
        | Caller::Expired
        | Caller::Revoked
        | Caller::InternalToken => UNAUTHORIZED,
        Caller::Admin => Outcome::Admitted,
        // Routes without a project in the path act on the key's own project.
        Caller::OtherProject => admitted_if(need != Admin && !in_project_path),
        Caller::ProjectAdmin => admitted_if(need != Admin),
        Caller::BranchAdmin => admitted_if(!matches!(need, Admin | ProjectAdmin)),
        Caller::BranchRead => admitted_if(matches!(need, Read | FileRead)),
        // Its only bucket is read-only, and it cannot create buckets: no table write at all.
        Caller::BucketReader => admitted_if(!matches!(need, Admin | ProjectAdmin | Write)),
        Caller::UploadOnly => admitted_if(!matches!(
            need,
            Admin | ProjectAdmin | FileRead | FileDelete
        )),
    }
}

/// Independent of the matrix: rules a wrong declaration would break.
#[test]
fn declared_needs_follow_the_scope_model() {
    use Need::*;
    let routes = duckbank::api::routes();
    let rules = routes.rules();
    assert!(rules.len() > 60, "the route table lost routes");
    // Non-GET routes that only read, and GET routes that need an upload right, by name.
    let reads_by_post = ["/export", "/profile"];
    for r in rules {
        let what = format!("{} {} ({:?})", r.method, r.path, r.need);
        // `/metrics` passes the gate; it checks METRICS_TOKEN itself when one is set.
        let public = [
            "/",
            "/health",
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/docs",
        ]
        .contains(&r.path.as_str());
        assert_eq!(
            r.need == Public,
            public,
            "{what}: public routes are exactly these"
        );
        let admin_only = r.path.starts_with("/admin/")
            || r.path.starts_with("/backend/")
            || r.path == "/projects";
        assert_eq!(r.need == Admin, admin_only, "{what}: admin routes");
        // The S3 face checks its callers itself (SigV4); tests/api/s3_api.rs covers it.
        let s3 = r.path == "/s3" || r.path.starts_with("/s3/");
        assert_eq!(r.need == S3, s3, "{what}: S3 routes");
        let internal = r.path.starts_with("/internal/");
        assert_eq!(
            r.need == PgwireInternal,
            internal,
            "{what}: internal routes"
        );
        let key_or_sharing = [
            "/api-keys",
            "/share",
            "/link",
            "/grant-readonly",
            "/s3-credentials",
        ]
        .iter()
        .any(|s| r.path.contains(s));
        let project_settings = (r.path == "/projects/{project_id}"
            && r.method != reqwest::Method::GET)
            || r.path == "/projects/{project_id}/audit"
            // Snapshot settings decide whether a drop can be undone (ADR 0029).
            || (r.path.ends_with("/settings/snapshots") && r.method != reqwest::Method::GET)
            // So does deleting a snapshot.
            || (r.path.ends_with("/snapshots/{snapshot_id}") && r.method == reqwest::Method::DELETE)
            // Creating and deleting dev branches, and merging one into main (ADR 0031).
            || (r.path == "/projects/{project_id}/branches" && r.method == reqwest::Method::POST)
            || (r.path == "/projects/{project_id}/branches/{branch_id}"
                && r.method == reqwest::Method::DELETE)
            || r.path == "/projects/{project_id}/branches/{branch_id}/merge";
        assert_eq!(
            r.need == ProjectAdmin,
            key_or_sharing || project_settings,
            "{what}: project_admin routes"
        );
        let is_get = r.method == reqwest::Method::GET;
        if is_get {
            assert!(
                !matches!(r.need, Write | FileDelete)
                    && (r.need != FileUpload || r.path.contains("/uploads/")),
                "{what}: a GET that needs a write right"
            );
        } else if matches!(r.need, Read | FileRead) {
            assert!(
                reads_by_post.iter().any(|s| r.path.ends_with(s)),
                "{what}: a non-GET route declared as a read"
            );
        }
        let files = r.path.contains("/files")
            || r.path.contains("/uploads")
            || r.path.contains("/v1/blobs");
        if files && !matches!(r.need, Public | Admin) {
            assert!(
                matches!(r.need, FileRead | FileUpload | FileDelete),
                "{what}: Files API routes need file rights"
            );
        }
    }
}

/// The keys and objects the matrix needs.
struct World {
    app: TestApp,
    keys: Vec<(Caller, Option<String>)>,
    /// Values for the path parameters of every route.
    params: Vec<(&'static str, String)>,
}

impl World {
    fn key(&self, caller: Caller) -> Option<&str> {
        self.keys
            .iter()
            .find(|(c, _)| *c == caller)
            .and_then(|(_, k)| k.as_deref())
    }

    /// The rule's path with every parameter filled in; panics on a parameter the matrix has
    /// no value for, so a route with a new kind of parameter fails here until it gets one.
    fn path(&self, rule: &Rule) -> String {
        let mut path = rule.path.clone();
        while let Some(start) = path.find('{') {
            let end = path[start..].find('}').expect("closing brace") + start;
            let name = &path[start + 1..end];
            let value = self
                .params
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| enc(v))
                .unwrap_or_else(|| {
                    panic!(
                        "the auth matrix has no value for {{{name}}} in {}",
                        rule.path
                    )
                });
            path.replace_range(start..=end, &value);
        }
        path
    }
}

/// Wrong keys are the point here: do not throttle them. The internal token is one caller.
fn matrix_config(c: &mut duckbank::config::Config) {
    c.auth_failures_per_minute = 0;
    c.pgwire_internal_token = Some(duckbank::config::Secret::new(INTERNAL_TOKEN));
}

async fn issue_key(app: &TestApp, key: &str, body: Value) -> (String, String) {
    let issued = app
        .post("/projects/1/api-keys", key, body)
        .await
        .expect(201);
    (
        issued["id"].as_str().expect("id").to_string(),
        issued["api_key"].as_str().expect("api_key").to_string(),
    )
}

async fn world() -> World {
    let app = spawn_app_configured(matrix_config).await;
    let owner = app.create_project("1").await;
    let other = app.create_project("2").await;
    app.create_bucket("1", &owner, "b").await;
    app.create_table(
        "1",
        &owner,
        "b",
        "t",
        &[("id", "INTEGER"), ("name", "VARCHAR")],
        &["id"],
    )
    .await;
    let file = app
        .send_raw(
            Method::POST,
            "/projects/1/files/content?name=a.csv",
            &owner,
            &[],
            b"id,name\n1,a\n".to_vec(),
        )
        .await
        .expect(201);
    let prepared = app
        .post(
            "/projects/1/files/prepare",
            &owner,
            json!({ "filename": "p.csv" }),
        )
        .await
        .expect(200);
    let session = app
        .post(
            "/projects/1/uploads",
            &owner,
            json!({ "name": "s.bin", "total_size": 4 }),
        )
        .await
        .expect(201);

    let branch =
        |scope: &str| json!({ "description": scope, "scope": scope, "branch_id": "default" });
    let (_, branch_admin) = issue_key(&app, &owner, branch("branch_admin")).await;
    let (_, branch_read) = issue_key(&app, &owner, branch("branch_read")).await;
    let mut narrowed = branch("branch_admin");
    narrowed["bucket_permissions"] = json!({ "b": "read" });
    let (_, bucket_reader) = issue_key(&app, &owner, narrowed).await;
    let mut narrowed = branch("branch_admin");
    narrowed["file_permissions"] = json!(["upload"]);
    let (_, upload_only) = issue_key(&app, &owner, narrowed).await;
    let (revoked_id, revoked) = issue_key(&app, &owner, branch("branch_admin")).await;
    app.delete(&format!("/projects/1/api-keys/{revoked_id}"), &owner)
        .await
        .expect(204);
    let mut expiring = branch("branch_admin");
    expiring["expires_in_days"] = json!(1);
    let (expired_id, expired) = issue_key(&app, &owner, expiring).await;
    // The key the key-management routes act on.
    let (spare_id, _) = issue_key(&app, &owner, branch("branch_read")).await;
    let app = expire_key(app, &expired_id).await;

    let params = vec![
        ("project_id", "1".to_string()),
        ("branch_id", "default".to_string()),
        ("bucket_name", "b".to_string()),
        ("table_name", "t".to_string()),
        ("column_name", "name".to_string()),
        ("file_id", file["id"].as_str().expect("file id").to_string()),
        (
            "upload_key",
            prepared["upload_key"]
                .as_str()
                .expect("upload_key")
                .to_string(),
        ),
        (
            "upload_id",
            session["upload_id"]
                .as_str()
                .expect("upload_id")
                .to_string(),
        ),
        ("n", "0".to_string()),
        ("job_id", "no-such-job".to_string()),
        // Any id: the gate answers before the snapshot is looked up.
        (
            "snapshot_id",
            "0190a1b2-0000-7000-8000-000000000000".to_string(),
        ),
        ("key_id", spare_id),
        ("id", "no-such-blob".to_string()),
        // Any id: the gate answers before the workspace is looked up.
        ("workspace_id", "ws_nosuchworkspace00".to_string()),
        ("object_name", "no_such_object".to_string()),
        ("session_id", "no-such-session".to_string()),
    ];
    let keys = vec![
        (Caller::NoKey, None),
        (Caller::Garbage, Some("not-a-key-Zx81kQ".to_string())),
        (Caller::Expired, Some(expired)),
        (Caller::Revoked, Some(revoked)),
        (Caller::OtherProject, Some(other)),
        (Caller::ProjectAdmin, Some(owner)),
        (Caller::BranchAdmin, Some(branch_admin)),
        (Caller::BranchRead, Some(branch_read)),
        (Caller::BucketReader, Some(bucket_reader)),
        (Caller::UploadOnly, Some(upload_only)),
        (Caller::Admin, Some(ADMIN_KEY.to_string())),
        (Caller::InternalToken, Some(INTERNAL_TOKEN.to_string())),
    ];
    World { app, keys, params }
}

/// Moves a key's expiry into the past, as time would: stops the server, edits the catalog,
/// starts it again.
async fn expire_key(mut app: TestApp, key_id: &str) -> TestApp {
    app.stop().await;
    {
        let conn =
            duckdb::Connection::open(app.data_dir.join("metadata.duckdb")).expect("open catalog");
        let changed = conn
            .execute(
                "UPDATE api_keys SET expires_at = now()::TIMESTAMP - INTERVAL 1 DAY WHERE id = ?",
                [key_id],
            )
            .expect("expire key");
        assert_eq!(changed, 1);
    }
    app.restart_configured(matrix_config).await
}

#[track_caller]
fn check(cell: &str, reply: &Reply, outcome: &Outcome) {
    let status = reply.status.as_u16();
    match outcome {
        Outcome::Refused(want, code) => {
            assert_eq!(status, *want, "{cell}: body {}", reply.body);
            assert_eq!(reply.body["error"], *code, "{cell}: body {}", reply.body);
        }
        Outcome::Admitted => {
            assert!(
                !matches!(status, 401 | 403 | 405) && status < 500,
                "{cell}: expected to pass the gate, got {status}: {}",
                reply.body
            );
            let message = reply.body["message"].as_str().unwrap_or("");
            assert!(!message.starts_with("no route"), "{cell}: {}", reply.body);
        }
    }
    assert!(
        reply.headers.contains_key("x-request-id"),
        "{cell}: x-request-id missing"
    );
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_its_need_says() {
    let w = world().await;
    let routes = duckbank::api::routes();
    // The S3 face authenticates in its handlers (its own matrix is in s3_api.rs).
    let mut rules: Vec<&Rule> = routes
        .rules()
        .iter()
        .filter(|r| r.need != Need::S3)
        .collect();
    // Deleting the project ends its keys: that route goes last.
    rules.sort_by_key(|r| r.path == "/projects/{project_id}" && r.method == Method::DELETE);
    let mut cells = 0;
    for rule in rules {
        let path = w.path(rule);
        let body = [Method::POST, Method::PUT, Method::PATCH]
            .contains(&rule.method)
            .then(|| json!({}));
        for caller in CALLERS {
            let outcome = expected(rule, caller);
            let reply = w
                .app
                .call(rule.method.clone(), &path, w.key(caller), body.clone())
                .await;
            let cell = format!("{} {path} as {caller:?}", rule.method);
            check(&cell, &reply, &outcome);
            cells += 1;
        }
    }
    assert!(cells > 600, "only {cells} cells");
}
