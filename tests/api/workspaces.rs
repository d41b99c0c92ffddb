//! Workspaces (ADR 0033) over HTTP and over the PostgreSQL wire protocol (tokio-postgres, and
//! psql once): the REST routes, the sandbox refusing every escape, the statement timeout, the
//! session and size limits, expiry, and typed results.

use duckbank::config::Config;
use serde_json::{json, Value};
use tokio_postgres::NoTls;

use crate::helpers::*;

const COLUMNS: &[(&str, &str)] = &[
    ("id", "INTEGER"),
    ("name", "VARCHAR"),
    ("amount", "DECIMAL(10,2)"),
    ("day", "DATE"),
    ("ts", "TIMESTAMP"),
    ("ok", "BOOLEAN"),
];

const ROWS: &str = "INSERT INTO data VALUES \
    (1, 'one', 12.50, DATE '2024-01-02', TIMESTAMP '2024-01-02 03:04:05', true), \
    (2, 'two', 0.25, DATE '2024-02-03', TIMESTAMP '2024-02-03 04:05:06', false), \
    (3, NULL, NULL, NULL, NULL, NULL)";

/// Project `1` with table `b.t` holding three rows (one all NULL); the server and the key.
async fn world(change: impl Fn(&mut Config)) -> (TestApp, String) {
    let mut app = spawn_app_configured(&change).await;
    let key = app.project_with_table(COLUMNS, &["id"]).await;
    app.stop().await;
    {
        let path = app.data_dir.join("duckdb/project_1/b/t.duckdb");
        let conn = duckdb::Connection::open(&path).expect("open table file");
        conn.execute_batch(ROWS).expect("fill table");
    }
    (app.restart_configured(&change).await, key)
}

/// A config with the wire server on a free port.
fn wire(c: &mut Config) {
    c.pgwire_port = free_port();
}

async fn create(app: &TestApp, key: &str, body: Value) -> Value {
    app.post("/projects/1/workspaces", key, body)
        .await
        .expect(201)
}

async fn sql(app: &TestApp, key: &str, ws: &str, text: &str) -> Reply {
    app.post(
        &format!("/projects/1/workspaces/{ws}/query"),
        key,
        json!({ "sql": text }),
    )
    .await
}

fn id(ws: &Value) -> String {
    ws["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn a_workspace_is_created_listed_inspected_and_deleted() {
    let (app, key) = world(|_| {}).await;
    let ws = create(&app, &key, json!({ "name": "scratch", "ttl_hours": 2 })).await;
    let ws_id = id(&ws);
    assert!(ws_id.starts_with("ws_"), "{ws}");
    assert_eq!(ws["name"], "scratch");
    assert_eq!(ws["branch_id"], "default");
    assert_eq!(ws["size_limit_gb"], 10);
    assert_eq!(ws["status"], "active");
    assert!(ws["expires_at"].is_string());
    let conn = &ws["connection"];
    assert_eq!(conn["username"], ws_id.as_str());
    assert_eq!(conn["database"], ws_id.as_str());
    assert!(conn["password"].as_str().is_some_and(|p| p.len() >= 32));

    let list = app.get("/projects/1/workspaces", &key).await.expect(200);
    assert_eq!(list["count"], 1);
    assert_eq!(list["workspaces"][0]["id"], ws_id.as_str());
    // The password is shown on create and reset only.
    assert!(list["workspaces"][0]["connection"]["password"].is_null());

    let got = app
        .get(&format!("/projects/1/workspaces/{ws_id}"), &key)
        .await
        .expect(200);
    assert_eq!(got["active_sessions"], 0);
    assert_eq!(
        got["attached_tables"],
        json!([{ "schema": "b", "table": "t", "rows": 3 }])
    );
    assert_eq!(got["workspace_objects"], json!([]));
    assert!(got["connection"]["password"].is_null());

    app.delete(&format!("/projects/1/workspaces/{ws_id}"), &key)
        .await
        .expect(204);
    app.get(&format!("/projects/1/workspaces/{ws_id}"), &key)
        .await
        .expect_code(404, "workspace_not_found");
    assert!(!app
        .data_dir
        .join(format!("workspaces/project_1/{ws_id}.duckdb"))
        .exists());
}

#[tokio::test]
async fn create_refuses_out_of_range_settings() {
    let (app, key) = spawn_app_with_project().await;
    for body in [
        json!({ "name": "x", "ttl_hours": 0 }),
        json!({ "name": "x", "ttl_hours": 169 }),
        json!({ "name": "x", "size_limit_gb": 101 }),
        json!({ "name": "" }),
        json!({ "name": "x", "unknown": 1 }),
    ] {
        app.post("/projects/1/workspaces", &key, body.clone())
            .await
            .expect_error(422);
    }
}

#[tokio::test]
async fn branch_routes_create_workspaces_the_project_routes_reach() {
    let (app, key) = world(|_| {}).await;
    let ws = app
        .post(
            "/projects/1/branches/default/workspaces",
            &key,
            json!({ "name": "b" }),
        )
        .await
        .expect(201);
    assert_eq!(ws["branch_id"], "default");
    let ws_id = id(&ws);
    app.get(&format!("/projects/1/workspaces/{ws_id}"), &key)
        .await
        .expect(200);
    let listed = app
        .get("/projects/1/branches/main/workspaces", &key)
        .await
        .expect(200);
    assert_eq!(listed["count"], 1);
    app.post(
        "/projects/1/branches/nope/workspaces",
        &key,
        json!({ "name": "b" }),
    )
    .await
    .expect_code(404, "branch_not_found");
}

#[tokio::test]
async fn load_copies_chosen_columns_and_filtered_rows_then_objects_can_be_dropped_and_cleared() {
    let (app, key) = world(|_| {}).await;
    let ws_id = id(&create(&app, &key, json!({ "name": "w" })).await);
    let loaded = app
        .post(
            &format!("/projects/1/workspaces/{ws_id}/load"),
            &key,
            json!({ "tables": [
                { "source": "b.t", "destination": "small", "columns": ["id", "name"], "where": "id >= 2" },
                { "source": "b.t" },
            ] }),
        )
        .await
        .expect(200);
    assert_eq!(loaded["loaded"][0]["source"], "b.t");
    assert_eq!(loaded["loaded"][0]["destination"], "small");
    assert_eq!(loaded["loaded"][0]["rows"], 2);
    assert_eq!(loaded["loaded"][1]["destination"], "t");
    assert_eq!(loaded["loaded"][1]["rows"], 3);
    assert!(loaded["workspace_size_bytes"].as_u64().unwrap() > 0);

    let body = sql(&app, &key, &ws_id, "SELECT * FROM small ORDER BY id")
        .await
        .expect(200);
    assert_eq!(
        body["columns"],
        json!([{ "name": "id", "type": "INTEGER" }, { "name": "name", "type": "VARCHAR" }])
    );
    assert_eq!(body["rows"], json!([[2, "two"], [3, null]]));

    let got = app
        .get(&format!("/projects/1/workspaces/{ws_id}"), &key)
        .await
        .expect(200);
    assert_eq!(
        got["workspace_objects"],
        json!([{ "name": "small", "type": "table", "rows": 2 }, { "name": "t", "type": "table", "rows": 3 }])
    );

    // The filter is parsed by the preview grammar, never pasted.
    app.post(
        &format!("/projects/1/workspaces/{ws_id}/load"),
        &key,
        json!({ "tables": [{ "source": "b.t", "where": "id = 1; DROP TABLE small" }] }),
    )
    .await
    .expect_code(400, "invalid_where_clause");
    app.post(
        &format!("/projects/1/workspaces/{ws_id}/load"),
        &key,
        json!({ "tables": [{ "source": "b.nope" }] }),
    )
    .await
    .expect_code(404, "table_not_found");

    let object = format!("/projects/1/workspaces/{ws_id}/objects/small");
    app.delete(&object, &key).await.expect(204);
    app.delete(&object, &key)
        .await
        .expect_code(404, "object_not_found");
    app.post(
        &format!("/projects/1/workspaces/{ws_id}/clear"),
        &key,
        json!({}),
    )
    .await
    .expect(204);
    let got = app
        .get(&format!("/projects/1/workspaces/{ws_id}"), &key)
        .await
        .expect(200);
    assert_eq!(got["workspace_objects"], json!([]));
    // Sources stay: clearing drops only the workspace's own objects.
    assert_eq!(got["attached_tables"][0]["rows"], 3);
}

#[tokio::test]
async fn the_query_route_reads_sources_writes_the_workspace_and_types_its_results() {
    let (app, key) = world(|_| {}).await;
    let ws_id = id(&create(&app, &key, json!({ "name": "w" })).await);
    let body = sql(
        &app,
        &key,
        &ws_id,
        "CREATE TABLE mine AS SELECT id, amount, day, ts, ok FROM b_t; \
         SELECT * FROM mine ORDER BY id",
    )
    .await
    .expect(200);
    assert_eq!(body["row_count"], 3);
    let types: Vec<&str> = body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["INTEGER", "DECIMAL(10,2)", "DATE", "TIMESTAMP", "BOOLEAN"]
    );
    let first = &body["rows"][0];
    assert_eq!(first[0], 1);
    assert_eq!(first[1].to_string(), "12.50");
    assert_eq!(first[2], "2024-01-02");
    assert_eq!(first[3], "2024-01-02T03:04:05");
    assert_eq!(first[4], true);
    assert_eq!(body["rows"][2], json!([3, null, null, null, null]));

    let limited = app
        .post(
            &format!("/projects/1/workspaces/{ws_id}/query"),
            &key,
            json!({ "sql": "SELECT * FROM range(10)", "limit": 4 }),
        )
        .await
        .expect(200);
    assert_eq!(limited["row_count"], 4);
    assert_eq!(limited["truncated"], true);

    sql(&app, &key, &ws_id, "SELECT * FROM no_such_table")
        .await
        .expect_code(400, "query_failed");
}

/// Every way out of the sandbox the issue names, each refused with a clear error; afterwards
/// the source table is unchanged and the workspace still works.
#[tokio::test]
async fn every_sandbox_escape_is_refused() {
    let (app, key) = world(|_| {}).await;
    let ws_id = id(&create(&app, &key, json!({ "name": "w" })).await);
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path().display();
    let source = app.data_dir.join("duckdb/project_1/b/t.duckdb");
    let s = source.display();
    let escapes = [
        format!("ATTACH '{o}/x.duckdb' AS x"),
        format!("ATTACH '{s}' AS rw"),
        "DETACH src_0".to_string(),
        format!("SELECT 1; DETACH src_0; ATTACH '{s}' AS rw"),
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "SELECT * FROM read_text('/etc/passwd')".to_string(),
        "SELECT * FROM read_parquet('/etc/passwd')".to_string(),
        format!(
            "SELECT * FROM read_text('{}')",
            app.data_dir.join("metadata.duckdb").display()
        ),
        "SELECT * FROM glob('/etc/*')".to_string(),
        format!("COPY (SELECT 1) TO '{o}/out.csv'"),
        format!("COPY b_t TO '{o}/out.csv'"),
        "CREATE TABLE x AS SELECT * FROM read_csv('/etc/hostname')".to_string(),
        "INSTALL httpfs".to_string(),
        "LOAD httpfs".to_string(),
        "SET enable_external_access = true".to_string(),
        "SET threads = 64".to_string(),
        "SET memory_limit = '100GB'".to_string(),
        "RESET lock_configuration".to_string(),
        "PRAGMA threads = 64".to_string(),
        "SELECT set_config('threads', '64', false)".to_string(),
        format!("EXPORT DATABASE '{o}/dump'"),
        "INSERT INTO src_0.main.data VALUES (9, 'x', 1, NULL, NULL, NULL)".to_string(),
        "DELETE FROM src_0.main.data".to_string(),
        "DROP TABLE src_0.main.data".to_string(),
        "USE src_0".to_string(),
        "PREPARE p AS SELECT 1".to_string(),
        "CALL pragma_version()".to_string(),
    ];
    for escape in &escapes {
        let reply = sql(&app, &key, &ws_id, escape).await;
        assert_eq!(
            reply.status.as_u16(),
            400,
            "{escape} was not refused: {}",
            reply.body
        );
        let code = reply.body["error"].as_str().unwrap_or_default();
        assert!(
            code == "sql_refused" || code == "query_failed",
            "{escape}: {}",
            reply.body
        );
        assert!(
            !reply.body["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{escape}: no message"
        );
    }
    // The guard's and DuckDB's refusals name themselves.
    for (escape, code) in [
        ("ATTACH 'x.duckdb' AS x", "sql_refused"),
        ("SELECT * FROM read_csv('/etc/passwd')", "sql_refused"),
        (
            "INSERT INTO src_0.main.data VALUES (9, 'x', 1, NULL, NULL, NULL)",
            "sql_refused",
        ),
    ] {
        sql(&app, &key, &ws_id, escape).await.expect_code(400, code);
    }
    assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    let rows = sql(&app, &key, &ws_id, "SELECT count(*) AS n FROM b_t")
        .await
        .expect(200);
    assert_eq!(rows["rows"], json!([[3]]));
    let current = sql(&app, &key, &ws_id, "SELECT current_setting('threads') AS t")
        .await
        .expect(200);
    assert_ne!(current["rows"][0][0], 64);
}

#[tokio::test]
async fn a_statement_past_the_timeout_is_interrupted_and_the_workspace_stays_usable() {
    let (app, key) = world(|c| c.pgwire_query_timeout_secs = 1).await;
    let ws_id = id(&create(&app, &key, json!({ "name": "w" })).await);
    let started = std::time::Instant::now();
    let body = sql(
        &app,
        &key,
        &ws_id,
        "SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3",
    )
    .await
    .expect_code(408, "query_timeout");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("PGWIRE_QUERY_TIMEOUT_SECS"));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    sql(&app, &key, &ws_id, "SELECT 1").await.expect(200);
}

#[tokio::test]
async fn a_full_workspace_refuses_writes_but_reads_and_drops_still_work() {
    // One "GB" is 1 MiB here (DuckDB allocates in 256 KiB blocks).
    let (app, key) = world(|c| c.workspace_size_unit_bytes = 1024 * 1024).await;
    let ws_id = id(&create(&app, &key, json!({ "name": "w", "size_limit_gb": 1 })).await);
    sql(
        &app,
        &key,
        &ws_id,
        "CREATE TABLE big AS SELECT range AS i, md5(range::VARCHAR) AS h FROM range(200000); CHECKPOINT",
    )
    .await
    .expect(200);
    let body = sql(&app, &key, &ws_id, "CREATE TABLE more AS SELECT 1 AS x")
        .await
        .expect_code(507, "workspace_full");
    assert!(body["message"].as_str().unwrap().contains("size limit"));
    app.post(
        &format!("/projects/1/workspaces/{ws_id}/load"),
        &key,
        json!({ "tables": [{ "source": "b.t" }] }),
    )
    .await
    .expect_code(507, "workspace_full");
    sql(&app, &key, &ws_id, "SELECT count(*) FROM big")
        .await
        .expect(200);
    sql(&app, &key, &ws_id, "DROP TABLE big; CHECKPOINT")
        .await
        .expect(200);
    sql(&app, &key, &ws_id, "CREATE TABLE more AS SELECT 1 AS x")
        .await
        .expect(200);
}

#[tokio::test]
async fn a_key_limited_to_some_buckets_cannot_use_workspaces() {
    let (app, key) = world(|_| {}).await;
    let limited = app
        .post(
            "/projects/1/api-keys",
            &key,
            json!({ "description": "b only", "scope": "branch_admin", "branch_id": "default",
                    "bucket_permissions": { "b": "write" } }),
        )
        .await
        .expect(201);
    let limited = limited["api_key"].as_str().unwrap();
    app.post("/projects/1/workspaces", limited, json!({ "name": "w" }))
        .await
        .expect_code(403, "forbidden");
}

#[tokio::test]
async fn expired_workspaces_are_removed_by_the_cleaner() {
    let (mut app, key) = world(|_| {}).await;
    let ws_id = id(&create(&app, &key, json!({ "name": "w", "ttl_hours": 1 })).await);
    app.stop().await;
    {
        let conn = duckdb::Connection::open(app.data_dir.join("metadata.duckdb")).unwrap();
        let changed = conn
            .execute(
                "UPDATE workspaces SET expires_at = now()::TIMESTAMP - INTERVAL 1 HOUR WHERE id = ?",
                [&ws_id],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    let app = app.restart().await;
    let path = format!("/projects/1/workspaces/{ws_id}");
    let mut last = 0;
    for _ in 0..100 {
        last = app.get(&path, &key).await.status.as_u16();
        if last == 404 {
            break;
        }
        // Until the cleaner's first pass, the workspace answers 410.
        assert_eq!(last, 410);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(last, 404);
    assert!(!app
        .data_dir
        .join(format!("workspaces/project_1/{ws_id}.duckdb"))
        .exists());
}

/// Connects with tokio-postgres (SCRAM-SHA-256 is its default).
async fn connect(
    ws: &Value,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let c = &ws["connection"];
    let config = format!(
        "host=127.0.0.1 port={} user={} password={} dbname={}",
        c["port"],
        ws["id"].as_str().unwrap(),
        password,
        ws["id"].as_str().unwrap()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn password(ws: &Value) -> String {
    ws["connection"]["password"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_wire_client_logs_in_with_scram_and_gets_typed_results() {
    let (app, key) = world(wire).await;
    let ws = create(&app, &key, json!({ "name": "w" })).await;
    let client = connect(&ws, &password(&ws)).await.expect("connect");

    // Simple protocol, several statements, a client-session SET answered and ignored.
    let messages = client
        .simple_query("SET extra_float_digits = 3; CREATE TABLE mine AS SELECT * FROM b_t; SELECT count(*) FROM mine")
        .await
        .expect("simple query");
    let rows: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
            _ => None,
        })
        .collect();
    assert_eq!(rows, [Some("3".to_string())]);

    // Extended protocol: binary, typed results and a text parameter.
    let rows = client
        .query(
            "SELECT id, name, amount, day, ts, ok FROM b_t WHERE id <= $1::INTEGER ORDER BY id",
            &[&"2"],
        )
        .await
        .expect("extended query");
    assert_eq!(rows.len(), 2);
    let r = &rows[0];
    assert_eq!(r.get::<_, i32>(0), 1);
    assert_eq!(r.get::<_, String>(1), "one");
    assert_eq!(r.get::<_, chrono::NaiveDate>(3).to_string(), "2024-01-02");
    assert_eq!(
        r.get::<_, chrono::NaiveDateTime>(4).to_string(),
        "2024-01-02 03:04:05"
    );
    assert!(r.get::<_, bool>(5));
    let amount = client
        .query_one(
            "SELECT amount::VARCHAR AS a, amount FROM b_t WHERE id = 1",
            &[],
        )
        .await
        .expect("decimal");
    assert_eq!(amount.get::<_, String>(0), "12.50");
    let nulls = client
        .query_one("SELECT name, amount, day, ok FROM b_t WHERE id = 3", &[])
        .await
        .expect("nulls");
    assert_eq!(nulls.get::<_, Option<String>>(0), None);
    assert_eq!(nulls.get::<_, Option<bool>>(3), None);
    // Typed parameters the client declares.
    let typed = client
        .query_typed(
            "SELECT $1::BIGINT + 1 AS n",
            &[(&41i64, tokio_postgres::types::Type::INT8)],
        )
        .await
        .expect("typed parameter");
    assert_eq!(typed[0].get::<_, i64>(0), 42);

    // The sandbox holds on the wire too.
    let err = client
        .simple_query("ATTACH '/tmp/x.duckdb' AS x")
        .await
        .expect_err("attach refused");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    let err = client
        .query("SELECT * FROM read_csv('/etc/passwd')", &[])
        .await
        .expect_err("read_csv refused");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    let err = client
        .simple_query("SET threads = 64")
        .await
        .expect_err("engine SET refused");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    // The connection survives refusals.
    client.simple_query("SELECT 1").await.expect("still usable");

    let got = app
        .get(&format!("/projects/1/workspaces/{}", id(&ws)), &key)
        .await
        .expect(200);
    assert_eq!(got["active_sessions"], 1);
}

#[tokio::test]
async fn wrong_passwords_and_unknown_workspaces_are_refused_and_reset_replaces_the_password() {
    let (app, key) = world(wire).await;
    let ws = create(&app, &key, json!({ "name": "w" })).await;
    let old = password(&ws);
    assert!(connect(&ws, "not-the-password").await.is_err());
    let mut ghost = ws.clone();
    ghost["id"] = json!("ws_doesnotexist0000");
    assert!(connect(&ghost, &old).await.is_err());

    let reset = app
        .post(
            &format!("/projects/1/workspaces/{}/credentials/reset", id(&ws)),
            &key,
            json!({}),
        )
        .await
        .expect(200);
    let new = reset["password"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(reset["connection_string"].as_str().unwrap().contains(&new));
    assert!(connect(&ws, &old).await.is_err());
    connect(&ws, &new).await.expect("new password works");
}

#[tokio::test]
async fn sessions_beyond_the_limit_are_refused_on_the_wire_and_over_http() {
    let (app, key) = world(|c| {
        wire(c);
        c.pgwire_max_connections_per_workspace = 1;
    })
    .await;
    let ws = create(&app, &key, json!({ "name": "w" })).await;
    let first = connect(&ws, &password(&ws)).await.expect("first session");
    let Err(err) = connect(&ws, &password(&ws)).await else {
        panic!("a second session was admitted");
    };
    assert_eq!(err.code().map(|c| c.code()), Some("53300"), "{err}");
    sql(&app, &key, &id(&ws), "SELECT 1")
        .await
        .expect_code(429, "too_many_sessions");
    drop(first);
    // The slot is given back when the connection ends.
    let mut status = 0;
    for _ in 0..100 {
        status = sql(&app, &key, &id(&ws), "SELECT 1").await.status.as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200);
}

/// psql from Debian's postgresql-client (installed by `.ci/run`).
fn psql() -> Option<std::path::PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| std::path::Path::new(d).join("psql"))
        .find(|p| p.exists())
}

#[tokio::test]
async fn psql_connects_lists_tables_and_runs_queries() {
    let Some(psql) = psql() else {
        skip_outside_ci("psql is not installed (.ci/run installs postgresql-client)");
        return;
    };
    let (app, key) = world(wire).await;
    let ws = create(&app, &key, json!({ "name": "w" })).await;
    app.post(
        &format!("/projects/1/workspaces/{}/load", id(&ws)),
        &key,
        json!({ "tables": [{ "source": "b.t", "destination": "loaded" }] }),
    )
    .await
    .expect(200);
    let url = ws["connection"]["connection_string"]
        .as_str()
        .unwrap()
        .to_string();
    let run = |args: Vec<String>| {
        let psql = psql.clone();
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(psql)
                    .arg(url)
                    .args(args)
                    .env("PGCONNECT_TIMEOUT", "10")
                    .output()
                    .expect("run psql")
            })
            .await
            .unwrap()
        }
    };
    let out = run(vec!["-c".into(), "\\dt".into()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("loaded"), "{text}");
    let out = run(vec![
        "-A".into(),
        "-t".into(),
        "-c".into(),
        "SELECT name FROM b_t WHERE id = 2".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "two");
    let out = run(vec!["-c".into(), "ATTACH '/tmp/x.duckdb' AS x".into()]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not allowed in a workspace"));
}
