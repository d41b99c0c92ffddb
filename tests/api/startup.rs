//! Startup of the real binary with bad settings: it must refuse to serve, exit with code 2 (1 for
//! a wire TLS file it cannot use) and say which variable is wrong and what it accepts. Never
//! talks HTTP (the server must not start).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Long enough for a slow, shared machine; a server that does start would otherwise run forever.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the binary with `vars` on top of a temp DATA_DIR and port 0; returns its exit code and
/// stderr. Kills it (and fails) when it is still running after `TIMEOUT`.
fn run_server(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_duckbank"));
    // The temp dir as working directory: no `.env` or `duckbank.toml` of the checkout applies.
    command
        .current_dir(dir.path())
        .env("DATA_DIR", dir.path())
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, _) in vars {
        // The prefixed spelling wins over the plain one; make sure none is inherited.
        command.env_remove(format!("DUCKBANK_{name}"));
    }
    command.envs(vars.iter().copied());
    let mut child = command.spawn().expect("start the server binary");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the server") {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not exit within {TIMEOUT:?} with {vars:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("read stderr");
    }
    (status.code(), stderr)
}

#[test]
fn an_unknown_storage_backend_stops_the_server_with_exit_code_2() {
    assert_exit_2(
        &[("STORAGE_BACKEND", "floppy")],
        &["STORAGE_BACKEND", "floppy", "local, database, s3"],
    );
}

#[test]
fn an_unknown_log_format_stops_the_server_with_exit_code_2() {
    assert_exit_2(
        &[("LOG_FORMAT", "xml")],
        &["LOG_FORMAT", "xml", "text, json"],
    );
}

/// Runs the server with `env` and asserts it exits with code 2 naming each of `mentions`.
fn assert_exit_2(env: &[(&str, &str)], mentions: &[&str]) {
    let (code, stderr) = run_server(env);
    assert_eq!(code, Some(2), "stderr: {stderr}");
    for m in mentions {
        assert!(stderr.contains(m), "{stderr}");
    }
}

/// A wire TLS certificate that cannot be read or used stops start-up, naming the setting and
/// the file (the test-only key pair is in tests/fixtures).
#[test]
fn an_unusable_wire_tls_certificate_stops_the_server() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let key = fixtures.join("TEST-ONLY-wire-tls.key.pem");
    let key = key.to_str().expect("utf-8 path");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port().to_string())
        .expect("free port");
    let missing = "/nonexistent/duckbank-wire.crt";
    for (cert, mentions) in [
        (missing, vec!["PGWIRE_TLS_CERT", missing, "cannot read"]),
        // The key is no certificate.
        (key, vec!["PGWIRE_TLS_CERT", key, "no PEM certificate"]),
    ] {
        let (code, stderr) = run_server(&[
            ("PGWIRE_PORT", port.as_str()),
            ("PGWIRE_TLS_CERT", cert),
            ("PGWIRE_TLS_KEY", key),
        ]);
        assert_eq!(code, Some(1), "stderr: {stderr}");
        for m in mentions {
            assert!(stderr.contains(m), "{m} missing in: {stderr}");
        }
    }
    let (code, stderr) = run_server(&[("PGWIRE_PORT", port.as_str()), ("PGWIRE_TLS_KEY", key)]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(stderr.contains("must be set together"), "{stderr}");
}
