//! Per-key rate limits over HTTP: a token bucket per API key, 429 with `Retry-After` and
//! `RateLimit-*` headers, other keys unaffected, admin and public routes exempt.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

fn header(reply: &Reply, name: &str) -> u64 {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {name}: {:?}", reply.headers))
}

#[track_caller]
fn assert_limited(reply: Reply) -> Value {
    let retry_after = header(&reply, "retry-after");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(header(&reply, "ratelimit-remaining"), 0);
    assert_eq!(header(&reply, "ratelimit-limit"), 3);
    reply.expect_code(429, "rate_limited")
}

#[tokio::test]
async fn a_key_beyond_its_rate_gets_429_and_others_do_not() {
    let app = spawn_app_configured(|c| c.rate_limit_per_minute = 3).await;
    let key1 = app.create_project("1").await;
    let key2 = app.create_project("2").await;

    for remaining in (0..3).rev() {
        let reply = app.get("/projects/1/buckets", &key1).await;
        assert_eq!(header(&reply, "ratelimit-limit"), 3);
        assert_eq!(header(&reply, "ratelimit-remaining"), remaining);
        assert!(header(&reply, "ratelimit-reset") <= 60);
        reply.expect(200);
    }
    let body = assert_limited(app.get("/projects/1/buckets", &key1).await);
    assert!(body["message"].as_str().unwrap().contains("rate limit"));
    // Writes count against the same bucket.
    assert_limited(
        app.call(
            Method::DELETE,
            "/projects/1/buckets/none",
            Some(&key1),
            None,
        )
        .await,
    );

    // Another key has its own bucket.
    app.get("/projects/2/buckets", &key2).await.expect(200);
    // The admin is exempt by default, and public routes are never limited.
    for _ in 0..6 {
        app.get("/projects/1", ADMIN_KEY).await.expect(200);
        app.get_without_key("/healthz").await.expect(200);
        app.get_without_key("/health").await.expect(200);
    }
}

#[tokio::test]
async fn the_admin_is_limited_when_configured() {
    let app = spawn_app_configured(|c| {
        c.rate_limit_per_minute = 3;
        c.rate_limit_admin = true;
    })
    .await;
    for _ in 0..3 {
        app.get("/projects", ADMIN_KEY).await.expect(200);
    }
    assert_limited(app.get("/projects", ADMIN_KEY).await);
}

#[tokio::test]
async fn without_a_limit_no_rate_headers_are_sent() {
    let (app, key) = spawn_app_with_project().await;
    for _ in 0..5 {
        let reply = app.get("/projects/1/buckets", &key).await;
        assert!(reply.headers.get("ratelimit-limit").is_none());
        reply.expect(200);
    }
}

#[tokio::test]
async fn the_s3_face_counts_against_the_same_bucket_and_answers_slow_down() {
    let app = spawn_app_configured(|c| c.rate_limit_per_minute = 3).await;
    let key = app.create_project("1").await;
    let put = |name: &str| {
        app.client
            .put(app.url(&format!("/s3/project_1/{name}")))
            .bearer_auth(&key)
            .body("x")
            .send()
    };
    for i in 0..3 {
        assert_eq!(put(&format!("o{i}")).await.expect("put").status(), 200);
    }
    let res = put("over").await.expect("put");
    assert_eq!(res.status(), 503);
    let text = res.text().await.expect("body");
    assert!(text.contains("<Code>SlowDown</Code>"), "{text}");
    // The REST API shares the key's bucket.
    assert_limited(app.get("/projects/1/buckets", &key).await);
}
