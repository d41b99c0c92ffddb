//! Bad bodies: malformed JSON (400), the wrong shape (422), too large (413), conflicts (409) and
//! missing parents (404), none leaving a trace. The world and checks live in `mod.rs`.

use serde_json::{json, Value};

use super::{
    assert_rejected, assert_reply_rejected, id_column, post_raw, table_body, world, BUCKET, P,
    TABLE,
};
use crate::helpers::{JsonClient, ADMIN_KEY};

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_rejected_with_400() {
    let w = world().await;
    let targets = [
        "/projects".to_string(),
        format!("/projects/{P}/buckets"),
        format!("/projects/{P}/buckets/{BUCKET}/tables"),
        format!("/projects/{P}/buckets/{BUCKET}/share"),
        format!("/projects/{P}/buckets/new_link/link"),
    ];
    for path in &targets {
        for bad in [
            "{\"name\": ",
            "{\"name\": \"x\",}",
            "not json",
            "{'name': 'x'}",
            "{\"name\": \"x\"} trailing",
        ] {
            let case = format!("POST {path} with body {bad:?}");
            let (status, body) = post_raw(&w.app, path, ADMIN_KEY, bad).await;
            assert_rejected(status, &body, 400, &case);
            assert_eq!(body["error"], "invalid_request", "{case}");
        }
    }
    w.assert_untouched("malformed JSON").await;
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_rejected_with_422() {
    let w = world().await;
    let tables = format!("/projects/{P}/buckets/{BUCKET}/tables");
    let buckets = format!("/projects/{P}/buckets");
    let (tables, buckets) = (tables.as_str(), buckets.as_str());
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "table without name",
            tables,
            json!({ "columns": [{ "name": "id", "type": "INTEGER" }] }),
        ),
        (
            "columns not an array",
            tables,
            json!({ "name": "t", "columns": "id INTEGER" }),
        ),
        ("columns missing", tables, json!({ "name": "t" })),
        (
            "column without type",
            tables,
            json!({ "name": "t", "columns": [{ "name": "id" }] }),
        ),
        (
            "type is a number",
            tables,
            json!({ "name": "t", "columns": [{ "name": "id", "type": 4 }] }),
        ),
        (
            "primary_key a string",
            tables,
            json!({ "name": "t", "columns": [{ "name": "id", "type": "INTEGER" }], "primary_key": "id" }),
        ),
        (
            "nullable a string",
            tables,
            json!({ "name": "t", "columns": [{ "name": "id", "type": "INTEGER", "nullable": "no" }] }),
        ),
        (
            "table name a number",
            tables,
            json!({ "name": 5, "columns": [{ "name": "id", "type": "INTEGER" }] }),
        ),
        (
            "bucket without name",
            buckets,
            json!({ "description": "x" }),
        ),
        ("bucket body an array", buckets, json!([{ "name": "x" }])),
        ("bucket name null", buckets, json!({ "name": null })),
        ("project without id", "/projects", json!({ "name": "x" })),
        (
            "project settings not an object",
            "/projects",
            json!({ "id": "2", "settings": [1] }),
        ),
    ];
    for (label, path, body) in cases {
        let r = w.app.post(path, ADMIN_KEY, body).await;
        assert_reply_rejected(&r, 422, label);
        assert_eq!(r.body["error"], "validation_error", "{label}");
        w.assert_untouched(label).await;
    }
    // An empty body is "no JSON value", i.e. the wrong shape too.
    let (status, body) = post_raw(&w.app, buckets, ADMIN_KEY, "").await;
    assert_rejected(status, &body, 422, "empty body");
    w.assert_untouched("empty body").await;
}

#[tokio::test]
async fn bodies_over_max_body_bytes_are_rejected_with_413() {
    let w = world().await;
    let big = "x".repeat(70 * 1024);
    let cases = [
        (
            "/projects".to_string(),
            json!({ "id": "2", "name": "p", "settings": { "blob": big } }),
        ),
        (
            format!("/projects/{P}/buckets"),
            json!({ "name": "in_c_big", "description": big }),
        ),
        (
            format!("/projects/{P}/buckets/{BUCKET}/tables"),
            json!({ "name": "t_big", "columns": [{ "name": "id", "type": "VARCHAR", "default": format!("'{big}'") }] }),
        ),
    ];
    for (path, body) in cases {
        let case = format!("POST {path} with a 70 KiB body");
        let r = w.app.post(&path, ADMIN_KEY, body).await;
        assert_reply_rejected(&r, 413, &case);
        assert_eq!(r.body["error"], "payload_too_large", "{case}");
        w.assert_untouched(&case).await;
    }
    // Just under the limit is fine.
    let ok = "d".repeat(60 * 1024);
    w.app
        .post(
            &format!("/projects/{P}/buckets"),
            ADMIN_KEY,
            json!({ "name": "in_c_near_limit", "description": ok }),
        )
        .await
        .expect(201);
}

// ---------------------------------------------------------------------------------------------
// Conflicts and missing parents
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn creating_an_existing_project_bucket_or_table_answers_409_and_changes_nothing() {
    let w = world().await;
    let r = w
        .app
        .post("/projects", ADMIN_KEY, json!({ "id": P, "name": "again" }))
        .await;
    assert_reply_rejected(&r, 409, "existing project");
    assert_eq!(r.body["error"], "project_exists");
    // The existing project's key still works and its name is unchanged.
    let project = w
        .app
        .get(&format!("/projects/{P}"), &w.key)
        .await
        .expect(200);
    assert_eq!(project["name"], format!("Project {P}"));

    let r = w
        .post_bucket(json!({ "name": BUCKET, "description": "again" }))
        .await;
    assert_reply_rejected(&r, 409, "existing bucket");

    let r = w
        .post_table(table_body(
            TABLE,
            json!([{ "name": "other", "type": "VARCHAR" }]),
        ))
        .await;
    assert_reply_rejected(&r, 409, "existing table");
    // Same through the branch-first style.
    let r = w
        .app
        .post(
            &format!("/projects/{P}/branches/default/buckets/{BUCKET}/tables"),
            &w.key,
            table_body(TABLE, id_column()),
        )
        .await;
    assert_reply_rejected(&r, 409, "existing table (branch path)");
    w.assert_untouched("conflicts").await;
}

#[tokio::test]
async fn creating_under_a_missing_parent_answers_404() {
    let w = world().await;
    let r = w
        .app
        .post(
            &format!("/projects/{P}/buckets/in_c_missing/tables"),
            &w.key,
            table_body("t", id_column()),
        )
        .await;
    assert_reply_rejected(&r, 404, "table in a missing bucket");
    let r = w
        .app
        .post("/projects/404/buckets", ADMIN_KEY, json!({ "name": "b" }))
        .await;
    assert_reply_rejected(&r, 404, "bucket in a missing project");
    w.assert_untouched("missing parents").await;
    assert!(
        !w.app.data_dir.join("duckdb/project_404").exists(),
        "a directory was made for a missing project"
    );
}
