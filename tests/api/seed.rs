//! The seed README's curl examples, run verbatim with curl against the server, and the
//! binary started the way a user starts it.

use std::process::Command;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_readme_curl_walkthrough_works_verbatim() {
    let app = spawn_app_configured(|c| {
        c.admin_api_key = Some(duckbank::config::Secret::new("your_admin_key"))
    })
    .await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed_walkthrough.sh"
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .arg(script)
            .env("DUCKBANK_PORT", port)
            .output()
            .expect("bash and curl must be installed")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "walkthrough failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outputs: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l.trim_start_matches("create-project: ")).ok())
        .collect();
    assert_eq!(outputs.len(), 5, "{stdout}");
    assert!(outputs[0]["api_key"]
        .as_str()
        .unwrap()
        .starts_with("proj_123_admin_"));
    assert_eq!(outputs[1]["name"], "in_c_sales");
    assert_eq!(outputs[2]["name"], "orders");
    assert_eq!(outputs[3]["total_row_count"], 0);
    assert_eq!(outputs[4]["buckets"][0]["name"], "in_c_sales");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_generates_a_private_admin_key_when_none_is_configured() {
    let server = ServerProcess::start(&[]).await;
    let key_path = server.dir().join("data/admin.key");
    let key = std::fs::read_to_string(&key_path)
        .unwrap()
        .trim()
        .to_string();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    server.get("/projects", &key).await.expect(200);
    let logs = server.logs();
    assert!(
        logs.contains("admin.key"),
        "the log names the key file: {logs}"
    );
    assert!(!logs.contains(&key), "the key itself is never logged");
}
