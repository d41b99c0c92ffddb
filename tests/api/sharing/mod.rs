//! Sharing, black-box: a project shares a bucket, another links it and reads the source's tables
//! through the link; every way of ending the share cuts those reads off, links and read-only
//! grants refuse writes, and nobody can share what is not theirs. This file holds the shared
//! world and its requests; the tests live in the files by topic, not here.

mod branch_paths;
mod linking;
mod permissions;
mod readonly;
mod revocation;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, JsonClient, Reply, TestApp};

const A: &str = "100";
const B: &str = "200";
const SHARED: &str = "in_c_share";
const TABLE: &str = "orders";
const LINK: &str = "linked";

/// Project A with bucket `in_c_share` holding `orders(id, amount)` with two rows, and
/// project B. Nothing is shared yet.
struct World {
    app: TestApp,
    key_a: String,
    key_b: String,
}

async fn world() -> World {
    let app = spawn_app().await;
    let key_a = app.create_project(A).await;
    let key_b = app.create_project(B).await;
    app.create_bucket(A, &key_a, SHARED).await;
    app.create_table(
        A,
        &key_a,
        SHARED,
        TABLE,
        &[("id", "INTEGER"), ("amount", "DECIMAL(10,2)")],
        &["id"],
    )
    .await;
    app.create_table(
        A,
        &key_a,
        SHARED,
        "customers",
        &[("id", "INTEGER"), ("name", "VARCHAR")],
        &[],
    )
    .await;
    let app = app
        .edit_table_file(
            A,
            SHARED,
            TABLE,
            "INSERT INTO data VALUES (1, 9.99), (2, 20.00);",
        )
        .await;
    World { app, key_a, key_b }
}

/// The world after A shared its bucket with B and B linked it as `linked`.
async fn linked_world() -> World {
    let w = world().await;
    share(&w, B).await;
    link(&w).await;
    w
}

fn share_path(prefix: &str, project: &str, bucket: &str) -> String {
    format!("{prefix}/projects/{project}/buckets/{bucket}/share")
}

/// The read-only grant of a bucket.
fn readonly_path(project: &str, bucket: &str) -> String {
    format!("/projects/{project}/buckets/{bucket}/grant-readonly")
}

/// The body that links A's shared bucket.
fn source_of_a() -> Value {
    json!({ "source_project_id": A, "source_bucket_name": SHARED })
}

impl World {
    /// Shares A's `bucket` with `target`, as `key`.
    async fn share_as(&self, key: &str, bucket: &str, target: &str) -> Reply {
        let body = json!({ "target_project_id": target });
        self.app.post(&share_path("", A, bucket), key, body).await
    }

    /// Takes A's share with B back (target in the query), as `key`.
    async fn unshare_as(&self, key: &str) -> Reply {
        let path = format!("{}?target_project_id={B}", share_path("", A, SHARED));
        self.app.delete(&path, key).await
    }

    /// Links `source` into `project` under `name`, as `key`.
    async fn link_as(&self, key: &str, project: &str, name: &str, source: Value) -> Reply {
        let path = format!("/projects/{project}/buckets/{name}/link");
        self.app.post(&path, key, source).await
    }

    /// Removes the link `name` of `project`, as `key`.
    async fn unlink_as(&self, key: &str, project: &str, name: &str) -> Reply {
        let path = format!("/projects/{project}/buckets/{name}/link");
        self.app.delete(&path, key).await
    }

    /// Grants read-only on `bucket` of `project`, as `key`.
    async fn grant_as(&self, key: &str, project: &str, bucket: &str) -> Reply {
        self.app
            .post(&readonly_path(project, bucket), key, json!({}))
            .await
    }

    /// Revokes read-only on `bucket` of `project`, as `key`.
    async fn revoke_as(&self, key: &str, project: &str, bucket: &str) -> Reply {
        self.app.delete(&readonly_path(project, bucket), key).await
    }

    /// Creates table `name` (one id column) in `bucket` of `project`, as `key`.
    async fn new_table_as(&self, key: &str, project: &str, bucket: &str, name: &str) -> Reply {
        let path = format!("/projects/{project}/buckets/{bucket}/tables");
        self.app.post(&path, key, new_table_body(name)).await
    }

    /// Deletes table `table` in `bucket` of `project`, as `key`.
    async fn drop_table_as(&self, key: &str, project: &str, bucket: &str, table: &str) -> Reply {
        let path = format!("/projects/{project}/buckets/{bucket}/tables/{table}");
        self.app.delete(&path, key).await
    }

    /// GET `path` as `key`, expecting 200.
    async fn read(&self, path: &str, key: &str) -> Value {
        self.app.get(path, key).await.expect(200)
    }

    /// A's shared bucket, as A sees it.
    async fn source_bucket(&self) -> Value {
        self.read(&format!("/projects/{A}/buckets/{SHARED}"), &self.key_a)
            .await
    }

    /// The tables of A's shared bucket, as A sees them.
    async fn source_tables(&self) -> Value {
        self.read(
            &format!("/projects/{A}/buckets/{SHARED}/tables"),
            &self.key_a,
        )
        .await
    }

    /// The preview of A's `orders`, as A sees it.
    async fn source_preview(&self) -> Value {
        let path = format!("/projects/{A}/buckets/{SHARED}/tables/{TABLE}/preview");
        self.read(&path, &self.key_a).await
    }

    /// B's bucket list, as B sees it.
    async fn b_buckets(&self) -> Value {
        self.read(&format!("/projects/{B}/buckets"), &self.key_b)
            .await
    }

    /// Whether A's table file `table` exists on disk.
    fn source_file_exists(&self, table: &str) -> bool {
        self.app
            .data_dir
            .join(format!("duckdb/project_{A}/{SHARED}/{table}.duckdb"))
            .is_file()
    }

    /// The same world after a server restart on the same data.
    async fn restarted(self) -> World {
        let World { app, key_a, key_b } = self;
        World {
            app: app.restart().await,
            key_a,
            key_b,
        }
    }
}

async fn share(w: &World, target: &str) -> Value {
    w.share_as(&w.key_a, SHARED, target).await.expect(200)
}

async fn link(w: &World) -> Value {
    w.link_as(&w.key_b, B, LINK, source_of_a())
        .await
        .expect(201)
}

/// The three reads B does through its link, with their statuses.
async fn link_reads(w: &World) -> [(String, u16, Value); 3] {
    let paths = [
        format!("/projects/{B}/buckets/{LINK}/tables"),
        format!("/projects/{B}/buckets/{LINK}/tables/{TABLE}"),
        format!("/projects/{B}/buckets/{LINK}/tables/{TABLE}/preview"),
    ];
    let mut out = Vec::new();
    for p in paths {
        let r = w.app.get(&p, &w.key_b).await;
        out.push((p, r.status.as_u16(), r.body));
    }
    out.try_into().expect("three reads")
}

#[track_caller]
fn assert_reads(reads: &[(String, u16, Value); 3], status: u16, when: &str) {
    for (path, got, body) in reads {
        assert_eq!(*got, status, "{when}: GET {path} answered {got}: {body}");
        if status >= 400 {
            assert!(
                body["error"].is_string() && body.get("details").is_some(),
                "{when}: {path}: {body}"
            );
        }
    }
}

fn table_names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["tables"]
        .as_array()
        .expect("tables array")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

fn bucket_names(list: &Value) -> Vec<String> {
    list["buckets"]
        .as_array()
        .expect("buckets array")
        .iter()
        .map(|b| b["name"].as_str().expect("name").to_string())
        .collect()
}

/// The entry of B's link in B's bucket list, when listed.
fn listed_link(list: &Value) -> Option<Value> {
    list["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == LINK)
        .cloned()
}

fn new_table_body(name: &str) -> Value {
    json!({ "name": name, "columns": [{ "name": "id", "type": "INTEGER" }] })
}
