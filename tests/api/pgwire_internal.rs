//! `/internal/pgwire/*` (ADR 0033) over HTTP: only the admin key or PGWIRE_INTERNAL_TOKEN
//! passes, logins are checked and throttled with the built-in wire server's throttle, and
//! registered sessions hold places in the same per-workspace session limit.

use duckbank::config::{Config, Secret};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_postgres::NoTls;

use crate::helpers::*;

const TOKEN: &str = "internal-token-for-tests";

/// Project `1` with table `b.t` holding three rows and a workspace on it; the server, the
/// project key and the workspace (with its password).
async fn world(change: impl Fn(&mut Config)) -> (TestApp, String, Value) {
    let mut app = spawn_app_configured(&change).await;
    let key = app
        .project_with_table(&[("id", "INTEGER"), ("name", "VARCHAR")], &["id"])
        .await;
    app.stop().await;
    {
        let path = app.data_dir.join("duckdb/project_1/b/t.duckdb");
        let conn = duckdb::Connection::open(&path).expect("open table file");
        conn.execute_batch("INSERT INTO data VALUES (1, 'a'), (2, 'b'), (3, 'c')")
            .expect("fill table");
    }
    let app = app.restart_configured(&change).await;
    // Listing reads the changed file's figures again.
    app.get("/projects/1/buckets/b/tables", &key)
        .await
        .expect(200);
    let ws = app
        .post("/projects/1/workspaces", &key, json!({ "name": "w" }))
        .await
        .expect(201);
    (app, key, ws)
}

fn with_token(c: &mut Config) {
    c.pgwire_internal_token = Some(Secret::new(TOKEN));
}

fn login(ws: &Value, password: &str, client_ip: &str) -> Value {
    json!({ "username": ws["id"], "password": password, "client_ip": client_ip })
}

fn password(ws: &Value) -> String {
    ws["connection"]["password"]
        .as_str()
        .expect("password")
        .to_string()
}

#[tokio::test]
async fn only_the_admin_key_or_the_internal_token_pass_and_every_other_caller_is_401() {
    let (app, key, ws) = world(with_token).await;
    let body = login(&ws, &password(&ws), "10.0.0.1");
    for caller in [None, Some("garbage-key"), Some(key.as_str())] {
        let reply = app
            .call(
                Method::POST,
                "/internal/pgwire/auth",
                caller,
                Some(body.clone()),
            )
            .await;
        reply.expect_code(401, "unauthorized");
        app.call(Method::GET, "/internal/pgwire/sessions", caller, None)
            .await
            .expect_code(401, "unauthorized");
    }
    let by_token = app
        .post("/internal/pgwire/auth", TOKEN, body.clone())
        .await
        .expect(200);
    let by_admin = app
        .post("/internal/pgwire/auth", ADMIN_KEY, body)
        .await
        .expect(200);
    assert_eq!(by_token, by_admin);
    app.get("/internal/pgwire/sessions", TOKEN)
        .await
        .expect(200);

    // The token's requests are audited as the internal principal (entries are written a
    // moment after the answer, by a background task).
    let mut trail = serde_json::Value::Null;
    for _ in 0..100 {
        trail = app
            .get("/admin/audit?action=pgwire.auth", ADMIN_KEY)
            .await
            .expect(200);
        let kinds: Vec<String> = trail["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| {
                e["principal"]["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        if kinds.iter().any(|k| k == "internal") && kinds.iter().any(|k| k == "admin") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no internal and admin pgwire.auth entries: {trail}");
}

#[tokio::test]
async fn without_a_token_setting_the_admin_key_alone_passes() {
    let (app, _, ws) = world(|c| c.pgwire_internal_token = Some(Secret::new(""))).await;
    let body = login(&ws, &password(&ws), "10.0.0.1");
    // An empty token is no token: presenting nothing, or "", gets no further than any key.
    app.call(
        Method::POST,
        "/internal/pgwire/auth",
        Some(TOKEN),
        Some(body.clone()),
    )
    .await
    .expect_code(401, "unauthorized");
    app.call(
        Method::POST,
        "/internal/pgwire/auth",
        None,
        Some(body.clone()),
    )
    .await
    .expect_code(401, "unauthorized");
    app.post("/internal/pgwire/auth", ADMIN_KEY, body)
        .await
        .expect(200);
}

#[tokio::test]
async fn auth_answers_what_an_external_server_needs_and_refuses_wrong_passwords() {
    let (app, _, ws) = world(with_token).await;
    let id = ws["id"].as_str().unwrap();
    let got = app
        .post(
            "/internal/pgwire/auth",
            TOKEN,
            login(&ws, &password(&ws), "10.0.0.1"),
        )
        .await
        .expect(200);
    assert_eq!(got["workspace_id"], id);
    assert_eq!(got["project_id"], "1");
    assert!(got["branch_id"].is_null(), "{got}");
    let db_path = std::path::PathBuf::from(got["db_path"].as_str().unwrap());
    assert!(db_path.is_file(), "{got}");
    assert!(db_path.ends_with(format!("workspaces/project_1/{id}.duckdb")));
    let tables = got["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 1, "{got}");
    assert_eq!(tables[0]["bucket"], "b");
    assert_eq!(tables[0]["name"], "t");
    assert_eq!(tables[0]["rows"], 3);
    assert!(std::path::Path::new(tables[0]["path"].as_str().unwrap()).is_file());
    assert_eq!(got["memory_limit"], "1GB");
    assert_eq!(got["query_timeout_seconds"], 300);

    app.post(
        "/internal/pgwire/auth",
        TOKEN,
        login(&ws, "wrong", "10.0.0.1"),
    )
    .await
    .expect_code(401, "invalid_credentials");
    let mut ghost = ws.clone();
    ghost["id"] = json!("ws_doesnotexist0000");
    app.post(
        "/internal/pgwire/auth",
        TOKEN,
        login(&ghost, &password(&ws), "10.0.0.1"),
    )
    .await
    .expect_code(401, "invalid_credentials");
    app.post("/internal/pgwire/auth", TOKEN, login(&ws, "x", "not-an-ip"))
        .await
        .expect_code(422, "validation_error");
    app.post("/internal/pgwire/auth", TOKEN, json!({ "username": id }))
        .await
        .expect_code(422, "validation_error");
}

/// Wrong passwords sent through `/internal/pgwire/auth` count in the same per-address throttle
/// the built-in wire server uses: once 127.0.0.1 is blocked there, a psql-style login from
/// 127.0.0.1 is refused too, even with the right password; other addresses are not.
#[tokio::test]
async fn failed_passwords_are_throttled_with_the_wire_servers_own_throttle() {
    let (app, _, ws) = world(|c| {
        with_token(c);
        c.auth_failures_per_minute = 3;
        c.pgwire_port = free_port();
    })
    .await;
    let right = password(&ws);
    for _ in 0..3 {
        app.post(
            "/internal/pgwire/auth",
            TOKEN,
            login(&ws, "wrong", "127.0.0.1"),
        )
        .await
        .expect_code(401, "invalid_credentials");
    }
    let refused = app
        .post(
            "/internal/pgwire/auth",
            TOKEN,
            login(&ws, &right, "127.0.0.1"),
        )
        .await;
    assert!(
        refused.headers.contains_key("retry-after"),
        "{:?}",
        refused.headers
    );
    refused.expect_code(429, "rate_limited");
    // Another client of the external server is not affected.
    app.post(
        "/internal/pgwire/auth",
        TOKEN,
        login(&ws, &right, "10.9.9.9"),
    )
    .await
    .expect(200);

    let c = &ws["connection"];
    let config = format!(
        "host=127.0.0.1 port={} user={} password={right} dbname={}",
        c["port"],
        ws["id"].as_str().unwrap(),
        ws["id"].as_str().unwrap()
    );
    let err = match tokio_postgres::connect(&config, NoTls).await {
        Ok(_) => panic!("the wire server admitted an address the HTTP route had blocked"),
        Err(e) => e,
    };
    let message = err.as_db_error().map(|e| e.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("too many failed logins")),
        "{err:?}"
    );
}

async fn register(app: &TestApp, session: &str, ws: &str) -> Reply {
    app.post(
        "/internal/pgwire/sessions",
        TOKEN,
        json!({ "session_id": session, "workspace_id": ws, "client_ip": "10.0.0.7" }),
    )
    .await
}

/// Registered sessions take places in the workspace's session limit together with wire
/// connections and HTTP queries, give them back when closed or timed out, and are listed.
#[tokio::test]
async fn registered_sessions_count_against_the_workspace_limit_until_closed() {
    let (app, key, ws) = world(|c| {
        with_token(c);
        c.pgwire_max_connections_per_workspace = 2;
        c.pgwire_port = free_port();
    })
    .await;
    let id = ws["id"].as_str().unwrap().to_string();
    let first = register(&app, "s1", &id).await.expect(201);
    assert_eq!(first["session_id"], "s1");
    assert_eq!(first["workspace_id"], id.as_str());
    assert_eq!(first["client_ip"], "10.0.0.7");
    assert_eq!(first["status"], "active");
    assert_eq!(first["query_count"], 0);
    register(&app, "s1", &id)
        .await
        .expect_code(409, "session_exists");
    let detail = app
        .get(&format!("/projects/1/workspaces/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(detail["active_sessions"], 1);

    // A wire connection takes the second place; then nothing is left for anyone.
    let c = &ws["connection"];
    let config = format!(
        "host=127.0.0.1 port={} user={id} password={} dbname={id}",
        c["port"],
        password(&ws)
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls)
        .await
        .expect("wire session");
    let connection = tokio::spawn(connection);
    register(&app, "s2", &id)
        .await
        .expect_code(429, "connection_limit_reached");
    app.post(
        "/internal/pgwire/auth",
        TOKEN,
        login(&ws, &password(&ws), "10.0.0.1"),
    )
    .await
    .expect_code(429, "connection_limit_reached");
    app.post(
        &format!("/projects/1/workspaces/{id}/query"),
        &key,
        json!({ "sql": "SELECT 1" }),
    )
    .await
    .expect_code(429, "too_many_sessions");
    let err = match tokio_postgres::connect(&config, NoTls).await {
        Ok(_) => panic!("a third session was admitted"),
        Err(e) => e,
    };
    assert_eq!(err.code().map(|c| c.code()), Some("53300"), "{err}");
    drop(client);
    let _ = connection.await;

    // The wire connection's place comes back; an external session takes it.
    let mut status = 0;
    for _ in 0..100 {
        status = register(&app, "s2", &id).await.status.as_u16();
        if status == 201 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 201);

    let touched = app
        .call(
            Method::PATCH,
            "/internal/pgwire/sessions/s1/activity",
            Some(TOKEN),
            Some(json!({})),
        )
        .await
        .expect(200);
    assert_eq!(touched["query_count"], 1);
    let touched = app
        .call(
            Method::PATCH,
            "/internal/pgwire/sessions/s1/activity",
            Some(TOKEN),
            Some(json!({ "increment_queries": false })),
        )
        .await
        .expect(200);
    assert_eq!(touched["query_count"], 1);
    assert!(
        touched["last_activity_at"].as_str().unwrap()
            >= first["last_activity_at"].as_str().unwrap()
    );
    let listed = app
        .get(
            &format!("/internal/pgwire/sessions?workspace_id={id}&status=active"),
            TOKEN,
        )
        .await
        .expect(200);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s1", "s2"]);

    // Closing gives the place back: an HTTP query runs again.
    app.delete("/internal/pgwire/sessions/s1?reason=client_quit", TOKEN)
        .await
        .expect(204);
    let closed = app
        .get("/internal/pgwire/sessions/s1", TOKEN)
        .await
        .expect(200);
    assert_eq!(closed["status"], "client_quit");
    app.post(
        &format!("/projects/1/workspaces/{id}/query"),
        &key,
        json!({ "sql": "SELECT 1" }),
    )
    .await
    .expect(200);
    app.call(
        Method::PATCH,
        "/internal/pgwire/sessions/s1/activity",
        Some(TOKEN),
        Some(json!({})),
    )
    .await
    .expect_code(404, "session_not_found");
    app.delete("/internal/pgwire/sessions/nope", TOKEN)
        .await
        .expect_code(404, "session_not_found");
    app.get("/internal/pgwire/sessions/nope", TOKEN)
        .await
        .expect_code(404, "session_not_found");
    app.delete("/internal/pgwire/sessions/s2?reason=no%20spaces", TOKEN)
        .await
        .expect_code(422, "validation_error");

    // Cleanup times out sessions idle that long (0 s: every active one).
    let kept = app
        .post(
            "/internal/pgwire/sessions/cleanup?idle_timeout_seconds=3600",
            TOKEN,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(kept["cleaned"], 0);
    let cleaned = app
        .post(
            "/internal/pgwire/sessions/cleanup?idle_timeout_seconds=0",
            TOKEN,
            json!({}),
        )
        .await
        .expect(200);
    assert_eq!(cleaned["cleaned"], 1);
    let timed_out = app
        .get("/internal/pgwire/sessions?status=timeout", TOKEN)
        .await
        .expect(200);
    assert_eq!(timed_out.as_array().unwrap().len(), 1);
    assert_eq!(timed_out[0]["session_id"], "s2");
    let detail = app
        .get(&format!("/projects/1/workspaces/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(detail["active_sessions"], 0);

    register(&app, "s3", "ws_doesnotexist0000")
        .await
        .expect_code(404, "workspace_not_found");
    app.post(
        "/internal/pgwire/sessions",
        TOKEN,
        json!({ "session_id": "s4", "workspace_id": id, "client_ip": "nope" }),
    )
    .await
    .expect_code(422, "validation_error");
}
