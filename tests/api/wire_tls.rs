//! TLS on the wire server (ADR 0033): with PGWIRE_TLS_CERT/KEY set, psql with
//! `sslmode=require` gets a TLS session and runs queries; `sslmode=disable` and plain clients
//! still connect. The certificate is a test-only self-signed one (tests/fixtures/TEST-ONLY-*).

use std::path::PathBuf;

use duckbank::config::Config;
use serde_json::{json, Value};
use tokio_postgres::NoTls;

use crate::helpers::*;

/// The committed test-only certificate and key (self-signed, CN "duckbank TEST ONLY").
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn tls(c: &mut Config) {
    c.pgwire_port = free_port();
    c.pgwire_tls_cert = Some(fixture("TEST-ONLY-wire-tls.cert.pem"));
    c.pgwire_tls_key = Some(fixture("TEST-ONLY-wire-tls.key.pem"));
}

fn psql() -> Option<PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| std::path::Path::new(d).join("psql"))
        .find(|p| p.exists())
}

/// Runs psql on `url` with `args`; its exit status, stdout and stderr.
async fn run_psql(psql: PathBuf, url: String, args: &[&str]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(psql)
            .arg(url)
            .args(args)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .expect("run psql");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    })
    .await
    .expect("psql task")
}

async fn workspace(app: &TestApp, key: &str) -> Value {
    app.post("/projects/1/workspaces", key, json!({ "name": "w" }))
        .await
        .expect(201)
}

#[tokio::test]
async fn psql_with_sslmode_require_runs_queries_over_tls_and_plain_clients_still_connect() {
    let Some(psql) = psql() else {
        skip_outside_ci("psql is not installed (.ci/run installs postgresql-client)");
        return;
    };
    let app = spawn_app_configured(tls).await;
    let key = app.create_project("1").await;
    let ws = workspace(&app, &key).await;
    let conn = &ws["connection"];
    assert_eq!(conn["ssl_mode"], "require");
    let url = conn["connection_string"].as_str().unwrap().to_string();
    assert!(url.ends_with("?sslmode=require"), "{url}");

    let (ok, out, err) = run_psql(
        psql.clone(),
        url.clone(),
        &["-A", "-t", "-c", "SELECT 40 + 2", "-c", "\\conninfo"],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("42\n"), "{out}");
    assert!(out.contains("SSL connection"), "not over TLS: {out}");

    let plain = url.replace("sslmode=require", "sslmode=disable");
    let (ok, out, err) = run_psql(
        psql,
        plain,
        &["-A", "-t", "-c", "SELECT 7", "-c", "\\conninfo"],
    )
    .await;
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("7\n"), "{out}");
    assert!(!out.contains("SSL connection"), "{out}");

    // A client that never asks for TLS (tokio-postgres without a TLS connector).
    let id = ws["id"].as_str().unwrap();
    let config = format!(
        "host=127.0.0.1 port={} user={id} password={} dbname={id} sslmode=disable",
        conn["port"],
        conn["password"].as_str().unwrap()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls)
        .await
        .expect("plain connect");
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT 5::INTEGER", &[])
        .await
        .expect("query");
    assert_eq!(row.get::<_, i32>(0), 5);
}

#[tokio::test]
async fn without_a_certificate_the_server_refuses_tls_and_says_disable() {
    let Some(psql) = psql() else {
        skip_outside_ci("psql is not installed (.ci/run installs postgresql-client)");
        return;
    };
    let app = spawn_app_configured(|c| c.pgwire_port = free_port()).await;
    let key = app.create_project("1").await;
    let ws = workspace(&app, &key).await;
    assert_eq!(ws["connection"]["ssl_mode"], "disable");
    let url = format!(
        "{}?sslmode=require",
        ws["connection"]["connection_string"].as_str().unwrap()
    );
    let (ok, out, err) = run_psql(psql, url, &["-c", "SELECT 1"]).await;
    assert!(!ok, "{out}");
    assert!(err.contains("SSL"), "{err}");
}
