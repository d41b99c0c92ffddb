//! Bad query strings, unknown branches and routes, wrong methods, and a burst of bad requests
//! the server survives. The world and checks live in `mod.rs`.

use reqwest::Method;
use serde_json::json;

use super::{assert_reply_rejected, bad_bucket_or_table_names, post_raw, world, BUCKET, P, TABLE};
use crate::helpers::{JsonClient, ADMIN_KEY};

// ---------------------------------------------------------------------------------------------
// Query strings, branches, routes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn preview_limit_out_of_range_or_unparsable_answers_422() {
    let w = world().await;
    for prefix in [
        format!("/projects/{P}"),
        format!("/projects/{P}/branches/default"),
    ] {
        for q in [
            "limit=0",
            "limit=10001",
            "limit=-1",
            "limit=abc",
            "limit=1.5",
            "limit=99999999999999999999",
        ] {
            let path = format!("{prefix}/buckets/{BUCKET}/tables/{TABLE}/preview?{q}");
            let r = w.app.get(&path, &w.key).await;
            assert_reply_rejected(&r, 422, &path);
            assert_eq!(r.body["error"], "validation_error", "{path}");
        }
        // The edges are accepted.
        for q in ["limit=1", "limit=10000"] {
            let path = format!("{prefix}/buckets/{BUCKET}/tables/{TABLE}/preview?{q}");
            w.app.get(&path, &w.key).await.expect(200);
        }
    }
}

#[tokio::test]
async fn preview_of_an_unknown_column_answers_400() {
    let w = world().await;
    for q in [
        "columns=nope",
        "columns=id,nope",
        "columns=id%22%3B%20DROP%20TABLE%20data%3B%20--",
    ] {
        let path = format!("/projects/{P}/buckets/{BUCKET}/tables/{TABLE}/preview?{q}");
        let r = w.app.get(&path, &w.key).await;
        assert_reply_rejected(&r, 400, &path);
    }
    // The table is still there and readable.
    let ok = w
        .app
        .get(
            &format!("/projects/{P}/buckets/{BUCKET}/tables/{TABLE}/preview?columns=id"),
            &w.key,
        )
        .await
        .expect(200);
    assert_eq!(ok["columns"].as_array().map(Vec::len), Some(1));
    w.assert_untouched("preview columns").await;
}

#[tokio::test]
async fn unknown_branch_answers_404() {
    let w = world().await;
    for path in [
        format!("/projects/{P}/branches/feature/buckets"),
        format!("/projects/{P}/branches/feature/buckets/{BUCKET}"),
        format!("/projects/{P}/branches/feature/buckets/{BUCKET}/tables/{TABLE}"),
        format!("/projects/{P}/branches/123/buckets/{BUCKET}/tables/{TABLE}/preview"),
    ] {
        let r = w.app.get(&path, &w.key).await;
        assert_reply_rejected(&r, 404, &path);
    }
    let r = w
        .app
        .post(
            &format!("/projects/{P}/branches/feature/buckets"),
            &w.key,
            json!({ "name": "in_c_branch" }),
        )
        .await;
    assert_reply_rejected(&r, 404, "create bucket on an unknown branch");
    w.assert_untouched("unknown branch").await;
    // The main branch is reachable under both of its names.
    for branch in ["default", "main"] {
        w.app
            .get(&format!("/projects/{P}/branches/{branch}/buckets"), &w.key)
            .await
            .expect(200);
    }
}

#[tokio::test]
async fn unknown_routes_answer_404_json_and_wrong_methods_405_json() {
    let w = world().await;
    for path in [
        "/nope",
        "/projects/1/nope",
        "/projects/1/buckets/in_c_ok/tables/orders/extra",
        "/v2/storage",
    ] {
        let r = w.app.get(path, ADMIN_KEY).await;
        assert_reply_rejected(&r, 404, path);
        assert_eq!(r.body["error"], "not_found", "{path}");
        // Unauthenticated callers get the same JSON 404 for routes that do not exist.
        let r = w.app.get_without_key(path).await;
        assert_reply_rejected(&r, 404, path);
        assert_eq!(r.body["error"], "not_found", "{path}");
    }
    for (method, path) in [
        (Method::PATCH, "/projects"),
        (Method::DELETE, "/health"),
        (Method::PUT, "/projects/1/buckets"),
    ] {
        let r = w
            .app
            .call(method.clone(), path, Some(ADMIN_KEY), None)
            .await;
        assert_reply_rejected(&r, 405, &format!("{method} {path}"));
        assert_eq!(r.body["error"], "method_not_allowed", "{method} {path}");
    }
}

#[tokio::test]
async fn project_list_paging_out_of_range_is_rejected() {
    let w = world().await;
    // An unknown status value is a bad request.
    let r = w.app.get("/projects?status=weird", ADMIN_KEY).await;
    assert_reply_rejected(&r, 400, "status=weird");
    // Out-of-range or unparsable paging is a validation error, like preview's limit.
    for q in ["limit=0", "limit=1001", "limit=-1", "offset=abc"] {
        let r = w.app.get(&format!("/projects?{q}"), ADMIN_KEY).await;
        assert_reply_rejected(&r, 422, q);
    }
}

#[tokio::test]
async fn huge_offsets_and_limits_are_client_errors_or_empty_pages_never_5xx() {
    let w = world().await;
    let huge = [
        "18446744073709551615",
        "9223372036854775808",
        "18446744073709551616",
    ];
    for n in huge {
        let r = w
            .app
            .get(&format!("/projects/{P}/files?offset={n}"), &w.key)
            .await;
        assert_reply_rejected(&r, 422, &format!("files offset={n}"));
        let r = w.app.get(&format!("/projects?offset={n}"), ADMIN_KEY).await;
        let status = r.status.as_u16();
        assert!(
            status == 200 || status == 422,
            "projects offset={n}: {status} {}",
            r.body
        );
        for path in [
            format!("/projects/{P}/files?limit={n}"),
            format!("/projects/{P}/jobs?limit={n}&offset={n}"),
            format!("/projects?limit={n}"),
            format!("/projects/{P}/buckets/{BUCKET}/tables/{TABLE}/preview?limit={n}"),
        ] {
            let key = if path.starts_with("/projects?") {
                ADMIN_KEY
            } else {
                w.key.as_str()
            };
            let r = w.app.get(&path, key).await;
            assert!(
                r.status.is_client_error(),
                "{path}: {} {}",
                r.status,
                r.body
            );
        }
    }
    // The largest signed offset is accepted: an empty page.
    let r = w
        .app
        .get(&format!("/projects/{P}/files?offset={}", i64::MAX), &w.key)
        .await
        .expect(200);
    assert_eq!(r["files"], json!([]), "{r}");
}

#[tokio::test]
async fn unshare_without_a_target_answers_400() {
    let w = world().await;
    let r = w
        .app
        .delete(&format!("/projects/{P}/buckets/{BUCKET}/share"), &w.key)
        .await;
    assert_reply_rejected(&r, 400, "unshare without target");
    let r = w
        .app
        .delete(
            &format!("/projects/{P}/buckets/{BUCKET}/share?target_project_id=..%2f"),
            &w.key,
        )
        .await;
    assert_reply_rejected(&r, 400, "unshare with a bad target");
}

#[tokio::test]
async fn the_server_keeps_serving_after_a_burst_of_bad_requests() {
    let w = world().await;
    for (_, name) in bad_bucket_or_table_names() {
        let _ = w.post_bucket(json!({ "name": name })).await;
        let _ = post_raw(&w.app, &format!("/projects/{P}/buckets"), &w.key, "{oops").await;
    }
    w.app.get("/healthz", ADMIN_KEY).await.expect(200);
    let preview = w
        .app
        .get(
            &format!("/projects/{P}/buckets/{BUCKET}/tables/{TABLE}/preview"),
            &w.key,
        )
        .await
        .expect(200);
    assert_eq!(preview["total_row_count"], 0);
    w.assert_untouched("burst").await;
}
