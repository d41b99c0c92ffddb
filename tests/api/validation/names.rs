//! Bad names and ids, in request bodies and in URL paths: 400 (or 404 for no route), never a
//! trace; the longest allowed names pass. The world and checks live in `mod.rs`.

use reqwest::Method;
use serde_json::json;

use super::{
    assert_rejected, assert_reply_rejected, bad_bucket_or_table_names, bad_project_ids, id_column,
    spawn_app, table_body, world, BUCKET, P, TABLE,
};
use crate::helpers::{enc, JsonClient, RawHttp, ADMIN_KEY};

// ---------------------------------------------------------------------------------------------
// Names in request bodies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_bucket_names_in_the_body_are_rejected_with_400_and_create_nothing() {
    let w = world().await;
    for (label, name) in bad_bucket_or_table_names() {
        let r = w.post_bucket(json!({ "name": name })).await;
        let case = format!("create bucket named {label} ({name:?})");
        assert_reply_rejected(&r, 400, &case);
        assert_eq!(r.body["error"], "invalid_request", "{case}: {}", r.body);
        w.assert_untouched(&case).await;
    }
}

#[tokio::test]
async fn bad_table_names_in_the_body_are_rejected_with_400_and_create_nothing() {
    let w = world().await;
    for (label, name) in bad_bucket_or_table_names() {
        let r = w.post_table(table_body(&name, id_column())).await;
        let case = format!("create table named {label} ({name:?})");
        w.assert_rejected_untouched(&r, 400, &case).await;
    }
}

#[tokio::test]
async fn bad_project_ids_in_the_body_are_rejected_with_400_and_create_nothing() {
    let w = world().await;
    for (label, id) in bad_project_ids() {
        let r = w
            .app
            .post("/projects", ADMIN_KEY, json!({ "id": id, "name": "x" }))
            .await;
        let case = format!("create project with id {label} ({id:?})");
        w.assert_rejected_untouched(&r, 400, &case).await;
    }
}

#[tokio::test]
async fn bad_project_display_names_are_rejected_with_400() {
    let w = world().await;
    for (label, name) in [
        ("NUL", "a\0b".to_string()),
        ("control character", "a\u{7}b".to_string()),
        ("257 chars", "n".repeat(257)),
    ] {
        let case = format!("create project named {label}");
        let r = w
            .app
            .post("/projects", ADMIN_KEY, json!({ "id": "2", "name": name }))
            .await;
        w.assert_rejected_untouched(&r, 400, &case).await;

        let case = format!("rename project to {label}");
        let r = w
            .app
            .call(
                Method::PUT,
                &format!("/projects/{P}"),
                Some(ADMIN_KEY),
                Some(json!({ "name": name })),
            )
            .await;
        assert_reply_rejected(&r, 400, &case);
        let project = w
            .app
            .get(&format!("/projects/{P}"), ADMIN_KEY)
            .await
            .expect(200);
        assert_eq!(
            project["name"],
            format!("Project {P}"),
            "{case}: name changed"
        );
    }
}

#[tokio::test]
async fn bad_column_names_are_rejected_with_400() {
    let w = world().await;
    for (label, name) in [
        ("SQL injection", "x\"; DROP TABLE y; --".to_string()),
        ("empty", String::new()),
        ("65 chars", "c".repeat(65)),
        ("Cyrillic", "\u{0430}mount".to_string()),
        ("slash", "a/b".to_string()),
        ("NUL", "a\0b".to_string()),
    ] {
        let case = format!("column named {label}");
        let r = w
            .post_table(table_body(
                "t_cols",
                json!([{ "name": name, "type": "INTEGER" }]),
            ))
            .await;
        w.assert_rejected_untouched(&r, 400, &case).await;
    }
}

#[tokio::test]
async fn longest_allowed_bucket_and_table_names_are_accepted() {
    let app = spawn_app().await;
    let key = app.create_project(P).await;
    let name = "b".repeat(96);
    app.create_bucket(P, &key, &name).await;
    let table = "t".repeat(96);
    app.create_table(P, &key, &name, &table, &[("id", "INTEGER")], &[])
        .await;
    app.get(
        &format!("/projects/{P}/buckets/{name}/tables/{table}"),
        &key,
    )
    .await
    .expect(200);
}

// ---------------------------------------------------------------------------------------------
// Names in URL paths
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_bucket_and_table_names_in_the_path_answer_400_or_404() {
    let w = world().await;
    // (label, methods the route has, path)
    let mut paths: Vec<(String, &[&str], String)> = Vec::new();
    const GET_DELETE: &[&str] = &["GET", "DELETE"];
    const GET: &[&str] = &["GET"];
    for (label, name) in bad_bucket_or_table_names() {
        if name.is_empty() {
            continue; // an empty segment is a different route, covered below
        }
        let seg = enc(&name);
        for prefix in [
            format!("/projects/{P}"),
            format!("/projects/{P}/branches/default"),
        ] {
            paths.push((
                format!("bucket {label}"),
                GET_DELETE,
                format!("{prefix}/buckets/{seg}"),
            ));
            paths.push((
                format!("tables of bucket {label}"),
                GET,
                format!("{prefix}/buckets/{seg}/tables"),
            ));
            paths.push((
                format!("table {label}"),
                GET_DELETE,
                format!("{prefix}/buckets/{BUCKET}/tables/{seg}"),
            ));
            paths.push((
                format!("table {label} in bucket {label}"),
                GET_DELETE,
                format!("{prefix}/buckets/{seg}/tables/{seg}"),
            ));
            paths.push((
                format!("preview of table {label}"),
                GET,
                format!("{prefix}/buckets/{BUCKET}/tables/{seg}/preview"),
            ));
        }
    }
    // Raw, un-encoded traversal and the literal percent-encoded dot-dot.
    for (methods, raw) in [
        (GET, format!("/projects/{P}/buckets/../tables")),
        (GET, format!("/projects/{P}/buckets/%2e%2e/tables")),
        (
            GET_DELETE,
            format!("/projects/{P}/buckets/%2E%2E/tables/{TABLE}"),
        ),
        (
            GET_DELETE,
            format!("/projects/{P}/buckets/{BUCKET}/tables/.."),
        ),
        (GET_DELETE, format!("/projects/{P}/buckets/..")),
        (
            GET,
            format!("/projects/{P}/buckets/{BUCKET}/tables/%2e%2e/preview"),
        ),
        (GET, format!("/projects/{P}/buckets/..%2f..%2f/tables")),
        (
            GET_DELETE,
            format!("/projects/{P}/buckets/{BUCKET}/tables/..%5c..%5cmetadata"),
        ),
        (GET, format!("/projects/{P}/buckets/%FF%FE/tables")),
        (GET, format!("/projects/{P}/buckets//tables")),
        (
            GET,
            format!("/projects/{P}/buckets/{BUCKET}/tables//preview"),
        ),
    ] {
        paths.push((format!("raw path {raw}"), methods, raw));
    }
    for (label, methods, path) in &paths {
        for method in methods.iter() {
            let case = format!("{label}: {method} {path}");
            let (status, body) =
                RawHttp::request(&w.app.base, method, path, Some(ADMIN_KEY), b"").await;
            assert_rejected(status, &body, 400, &case);
        }
    }
    // POSTs that would create something under a bad path segment.
    for (label, name) in bad_bucket_or_table_names() {
        if name.is_empty() {
            continue;
        }
        let seg = enc(&name);
        let posts = [
            (
                "tables",
                table_body("fine", id_column()),
                "create table in bucket",
            ),
            (
                "link",
                json!({ "source_project_id": "2", "source_bucket_name": "x" }),
                "link bucket named",
            ),
        ];
        for (route, body, what) in posts {
            let body = serde_json::to_vec(&body).unwrap();
            let (status, reply) = RawHttp::request(
                &w.app.base,
                "POST",
                &format!("/projects/{P}/buckets/{seg}/{route}"),
                Some(w.key.as_str()),
                &body,
            )
            .await;
            assert_rejected(status, &reply, 400, &format!("{what} {label}"));
        }
    }
    w.assert_untouched("bad names in paths").await;
}

#[tokio::test]
async fn bad_project_ids_in_the_path_answer_400_or_404() {
    let w = world().await;
    for (label, id) in bad_project_ids() {
        if id.is_empty() {
            continue;
        }
        let seg = enc(&id);
        for (methods, path) in [
            (&["GET", "DELETE"][..], format!("/projects/{seg}")),
            (&["GET"][..], format!("/projects/{seg}/buckets")),
            (
                &["GET"][..],
                format!("/projects/{seg}/branches/default/buckets"),
            ),
            (&["GET"][..], format!("/projects/{seg}/stats")),
        ] {
            for method in methods {
                let case = format!("project id {label}: {method} {path}");
                let (status, body) =
                    RawHttp::request(&w.app.base, method, &path, Some(ADMIN_KEY), b"").await;
                assert_rejected(status, &body, 400, &case);
            }
        }
    }
    // `/projects/../projects` is no route at all (404); the others name a bad project id (400).
    for (raw, expected) in [
        ("/projects/../projects", 404),
        ("/projects/%2e%2e/buckets", 400),
        ("/projects/..%2f..%2fetc/buckets", 400),
    ] {
        let (status, body) = RawHttp::request(&w.app.base, "GET", raw, Some(ADMIN_KEY), b"").await;
        assert_rejected(status, &body, expected, raw);
    }
    w.assert_untouched("bad project ids in paths").await;
}
