//! Bad input, black-box: every malformed name, type, definition, body or query gets a clear 4xx
//! with the reference error body — never a 500 — and leaves no trace (no catalog entry, no file).
//! This file holds the world, the bad-input lists and the checks; tests live in the topic files.

mod bodies;
mod definitions;
mod names;
mod queries;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::helpers::{spawn_app, JsonClient, Reply, TestApp, ADMIN_KEY};

const P: &str = "1";
const BUCKET: &str = "in_c_ok";
const TABLE: &str = "orders";

/// Names that must never be accepted for buckets and tables, with a label for messages.
fn bad_bucket_or_table_names() -> Vec<(&'static str, String)> {
    vec![
        ("dot-dot", "..".into()),
        ("single dot", ".".into()),
        ("traversal", "../etc".into()),
        ("slash", "a/b".into()),
        ("backslash", "a\\b".into()),
        ("NUL", "a\0b".into()),
        ("percent-encoded dot-dot", "%2e%2e".into()),
        ("SQL injection", "x\"; DROP TABLE y; --".into()),
        ("single quote", "a'b".into()),
        ("reserved information_schema", "information_schema".into()),
        ("reserved main", "main".into()),
        ("reserved MAIN upper-case", "MAIN".into()),
        ("reserved pg_catalog", "pg_catalog".into()),
        ("empty", String::new()),
        ("space", "a b".into()),
        ("leading dash", "-rf".into()),
        ("97 chars", "a".repeat(97)),
        ("Cyrillic a", "t\u{0430}ble".into()),
        ("RTL override", "tab\u{202e}le".into()),
        ("zero-width space", "ta\u{200b}ble".into()),
        ("accented", "na\u{ef}ve".into()),
    ]
}

/// Project ids follow the same alphabet (reserved words are not special for them).
fn bad_project_ids() -> Vec<(&'static str, String)> {
    vec![
        ("dot-dot", "..".into()),
        ("slash", "a/b".into()),
        ("backslash", "a\\b".into()),
        ("NUL", "1\u{0}".into()),
        ("percent-encoded dot-dot", "%2e%2e".into()),
        ("SQL injection", "x\"; DROP TABLE y; --".into()),
        ("empty", String::new()),
        ("65 chars", "1".repeat(65)),
        ("Cyrillic", "\u{0440}roject".into()),
        ("RTL override", "12\u{202e}3".into()),
        ("leading dash", "-1".into()),
    ]
}

/// Every path (directories and files) under `data_dir/duckdb`.
fn tree(app: &TestApp) -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.insert(path.clone());
            if path.is_dir() {
                walk(&path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&app.data_dir.join("duckdb"), &mut out);
    out
}

/// The array `body[field]`, item by item through `pick`.
fn each(body: &Value, field: &str, pick: impl Fn(&Value) -> Value) -> Value {
    let items = body[field].as_array();
    let items = items.unwrap_or_else(|| panic!("{field} array: {body}"));
    items.iter().map(pick).collect()
}

/// What the API shows of project 1: its buckets and the tables of the known bucket.
async fn visible_state(app: &TestApp) -> (Value, Value, Value) {
    let projects = app.get("/projects", ADMIN_KEY).await.expect(200);
    let ids = each(&projects, "projects", |p| p["id"].clone());
    let buckets = format!("/projects/{P}/buckets");
    let buckets = app.get(&buckets, ADMIN_KEY).await.expect(200);
    let names = each(&buckets, "buckets", |b| b["name"].clone());
    let tables = format!("/projects/{P}/buckets/{BUCKET}/tables");
    let tables = app.get(&tables, ADMIN_KEY).await.expect(200);
    let table_names = each(&tables, "tables", |t| json!([t["name"], t["columns"]]));
    (ids, names, table_names)
}

/// Project 1 with bucket `in_c_ok` holding table `orders(id INTEGER, amount DOUBLE)`.
struct World {
    app: TestApp,
    key: String,
    files: BTreeSet<PathBuf>,
    state: (Value, Value, Value),
}

async fn world() -> World {
    let app = spawn_app().await;
    let key = app.create_project(P).await;
    app.create_bucket(P, &key, BUCKET).await;
    app.create_table(
        P,
        &key,
        BUCKET,
        TABLE,
        &[("id", "INTEGER"), ("amount", "DOUBLE")],
        &["id"],
    )
    .await;
    let files = tree(&app);
    let state = visible_state(&app).await;
    World {
        app,
        key,
        files,
        state,
    }
}

impl World {
    /// The server still answers and nothing was created or changed by the rejected request.
    #[track_caller]
    fn assert_untouched_sync(
        &self,
        files: &BTreeSet<PathBuf>,
        state: &(Value, Value, Value),
        case: &str,
    ) {
        assert_eq!(&self.files, files, "{case}: files under duckdb/ changed");
        assert_eq!(&self.state, state, "{case}: visible state changed");
    }

    /// Creates a table in `in_c_ok` with `body`, as the project.
    async fn post_table(&self, body: Value) -> Reply {
        let path = format!("/projects/{P}/buckets/{BUCKET}/tables");
        self.app.post(&path, &self.key, body).await
    }

    /// Creates a bucket in project 1 with `body`, as the project.
    async fn post_bucket(&self, body: Value) -> Reply {
        self.app
            .post(&format!("/projects/{P}/buckets"), &self.key, body)
            .await
    }

    async fn assert_untouched(&self, case: &str) {
        let state = visible_state(&self.app).await;
        let files = tree(&self.app);
        self.assert_untouched_sync(&files, &state, case);
    }

    /// A rejected request (see `assert_rejected`) that also left no trace behind.
    async fn assert_rejected_untouched(&self, reply: &Reply, expected: u16, case: &str) {
        assert_reply_rejected(reply, expected, case);
        self.assert_untouched(case).await;
    }
}

/// `assert_rejected` for a whole reply.
#[track_caller]
fn assert_reply_rejected(reply: &Reply, expected: u16, case: &str) {
    assert_rejected(reply.status.as_u16(), &reply.body, expected, case);
}

/// Checks a rejection: the `expected` status, the reference error body, never 5xx.
#[track_caller]
fn assert_rejected(status: u16, body: &Value, expected: u16, case: &str) {
    assert!(status < 500, "{case}: server error {status}: {body}");
    assert_eq!(status, expected, "{case}: unexpected status: {body}");
    assert!(
        body["error"].is_string(),
        "{case}: error code missing: {body}"
    );
    assert!(
        body["message"].is_string(),
        "{case}: message missing: {body}"
    );
    assert!(
        body.get("details").is_some(),
        "{case}: details missing: {body}"
    );
}

fn table_body(name: &str, columns: Value) -> Value {
    json!({ "name": name, "columns": columns })
}

fn id_column() -> Value {
    json!([{ "name": "id", "type": "INTEGER" }])
}

/// Sends a raw body through the HTTP client with a JSON content type.
async fn post_raw(
    app: &TestApp,
    path: &str,
    key: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let res = app
        .client
        .post(app.url(path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request failed");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}
