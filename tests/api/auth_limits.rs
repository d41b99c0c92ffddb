//! Key checks under attack: a flood of wrong keys beyond the verification queue is refused with
//! 429 + Retry-After while verified keys keep working, new wrong guesses are throttled per client
//! address and per claimed project, and an unknown project is answered exactly like a wrong secret.
//! Other client addresses come from binding the client to 127.0.0.x (all loopback on Linux).

use std::net::IpAddr;

use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{reply_of, spawn_app_configured, JsonClient, Reply, TestApp};

/// A key of the project-key shape for `project` that was never issued; distinct per `n`.
fn guess(project: &str, n: u64) -> String {
    format!("proj_{project}_admin_{n:032x}")
}

/// GET `path` with `key`, sent from 127.0.0.`octet`.
async fn get_from(app: &TestApp, octet: u8, path: &str, key: &str) -> Reply {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, octet]))
        .build()
        .expect("client");
    let res = client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("request failed");
    reply_of(res).await
}

/// Asserts a 429 `rate_limited` with a Retry-After of 1 to 60 seconds; returns the body.
#[track_caller]
fn assert_throttled(reply: Reply, what: &str) -> Value {
    let retry_after: u64 = reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no numeric Retry-After; body {}", reply.body));
    assert!(
        (1..=60).contains(&retry_after),
        "{what}: Retry-After {retry_after}"
    );
    reply.expect_code(429, "rate_limited")
}

#[tokio::test]
async fn a_flood_of_wrong_keys_beyond_the_verification_queue_gets_429_while_a_verified_key_answers()
{
    // One verification at a time, two waiting, no guess throttling: only the queue bounds it.
    let app = spawn_app_configured(|c| {
        c.key_verify_concurrency = 1;
        c.key_verify_queue = 2;
        c.auth_failures_per_minute = 0;
    })
    .await;
    let key = app.create_project("1").await;
    app.get("/projects/1/buckets", &key).await.expect(200);

    let flood = join_all((0..100).map(|n| {
        let app = &app;
        async move { app.get("/projects/1/buckets", &guess("1", n)).await }
    }));
    let valid = async {
        let mut statuses = Vec::new();
        for _ in 0..5 {
            statuses.push(app.get("/projects/1/buckets", &key).await.status.as_u16());
        }
        statuses
    };
    let (replies, valid) = tokio::join!(flood, valid);

    assert_eq!(valid, vec![200; 5], "the verified key during the flood");
    let mut refused = 0;
    for reply in replies {
        if reply.status.as_u16() == 429 {
            assert_throttled(reply, "a guess beyond the queue");
            refused += 1;
        } else {
            reply.expect_code(401, "unauthorized");
        }
    }
    assert!(
        refused > 0,
        "100 concurrent guesses with 1 verification slot and a queue of 2: none was refused"
    );
    // Once the flood is over, verification works again.
    app.get("/projects/1/buckets", &guess("1", 1000))
        .await
        .expect_code(401, "unauthorized");
}

#[tokio::test]
async fn new_wrong_guesses_are_throttled_per_client_address() {
    let app = spawn_app_configured(|c| c.auth_failures_per_minute = 3).await;
    let key = app.create_project("1").await;
    app.get("/projects/1/buckets", &key).await.expect(200);

    // Three guesses, each at another (unknown) project, so only the address adds up.
    for n in 0..3u8 {
        let project = format!("5{n}");
        get_from(&app, 2, "/projects/1/buckets", &guess(&project, n.into()))
            .await
            .expect_code(401, "unauthorized");
    }
    let throttled = [
        guess("53", 3),
        guess("1", 4),
        "not-a-key-at-all-Qx7".to_string(),
    ];
    for key in &throttled {
        let reply = get_from(&app, 2, "/projects/1/buckets", key).await;
        assert_throttled(
            reply,
            &format!("a new guess {key} from a throttled address"),
        );
    }

    // A verified key from the same address is not throttled; other addresses are not either.
    get_from(&app, 2, "/projects/1/buckets", &key)
        .await
        .expect(200);
    get_from(&app, 3, "/projects/1/buckets", &guess("54", 5))
        .await
        .expect_code(401, "unauthorized");
    // A client repeating one wrong key makes no new guess: it keeps getting 401, not 429.
    for _ in 0..6 {
        get_from(&app, 4, "/projects/1/buckets", &guess("1", 6))
            .await
            .expect_code(401, "unauthorized");
    }
}

#[tokio::test]
async fn new_wrong_guesses_are_throttled_per_claimed_project() {
    let app = spawn_app_configured(|c| c.auth_failures_per_minute = 3).await;
    let key = app.create_project("1").await;
    app.create_project("2").await;
    app.get("/projects/1/buckets", &key).await.expect(200);

    // Three guesses at project 1, each from another address, so only the project adds up.
    for n in 0..3u8 {
        get_from(&app, 10 + n, "/projects/1/buckets", &guess("1", n.into()))
            .await
            .expect_code(401, "unauthorized");
    }
    let reply = get_from(&app, 13, "/projects/1/buckets", &guess("1", 3)).await;
    assert_throttled(reply, "a fourth guess at project 1 from a fresh address");

    // Project 1's verified key still works; guesses at project 2 are counted apart.
    app.get("/projects/1/buckets", &key).await.expect(200);
    get_from(&app, 14, "/projects/2/buckets", &guess("2", 4))
        .await
        .expect_code(401, "unauthorized");
}

#[tokio::test]
async fn an_unknown_project_and_a_wrong_secret_are_answered_and_throttled_alike() {
    let app = spawn_app_configured(|c| c.auth_failures_per_minute = 2).await;
    app.create_project("1").await;

    let mut answers = Vec::new();
    for (project, first_octet) in [("1", 20u8), ("99", 30u8)] {
        let path = format!("/projects/{project}/buckets");
        let mut bodies = Vec::new();
        for n in 0..2u8 {
            let reply = get_from(&app, first_octet + n, &path, &guess(project, n.into())).await;
            bodies.push(reply.expect_code(401, "unauthorized"));
        }
        let reply = get_from(&app, first_octet + 2, &path, &guess(project, 2)).await;
        bodies.push(assert_throttled(
            reply,
            &format!("a third guess at project {project}"),
        ));
        answers.push(bodies);
    }
    assert_eq!(
        answers[0], answers[1],
        "a wrong secret for project 1 and any key for the unknown project 99 must look the same"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_with_one_uncached_key_share_one_verification() {
    // One verification thread and a queue of one: without sharing, 50 requests with the same
    // key not yet in the cache (after a restart, or when its entry expires) would queue 50
    // argon2 runs and all but two would be refused with 429.
    let narrow = |c: &mut duckbank::config::Config| {
        c.key_verify_concurrency = 1;
        c.key_verify_queue = 1;
    };
    let app = spawn_app_configured(narrow).await;
    let key = app.create_project("1").await;
    let app = app.restart_configured(narrow).await;
    let replies = join_all((0..50).map(|_| app.get("/projects/1/buckets", &key))).await;
    for reply in replies {
        reply.expect(200);
    }
    // The same for one wrong key: one run, every request a plain 401, none refused for load.
    let wrong = guess("1", 7);
    let replies = join_all((0..50).map(|_| app.get("/projects/1/buckets", &wrong))).await;
    for reply in replies {
        reply.expect_code(401, "unauthorized");
    }
}
