//! Asynchronous imports and exports: job status and results, isolation between projects,
//! jobs surviving restarts, the bounded queue (429 + Retry-After), a kill -9 of the server
//! binary in the middle of an import, and reads of other tables during a long import.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;
use crate::table_data::{
    download, kv_csv, kv_rows, kv_table, one_job_at_a_time, seed, setup, setup_configured,
    setup_kv_table, table_rows, upload, BT, T,
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// "id,v" CSV with `count` rows starting at `start`; about 28 bytes a row.
fn big_csv(start: u64, count: u64) -> Vec<u8> {
    let mut s = String::with_capacity(count as usize * 30 + 8);
    s.push_str("id,v\n");
    for i in start..start + count {
        writeln!(s, "{i},value-{i}-abcdefgh").unwrap();
    }
    s.into_bytes()
}

/// Checks the fields every job JSON carries.
#[track_caller]
fn check_job(job: &Value) {
    assert!(job["id"].is_string(), "{job}");
    assert_eq!(job["project_id"], "1", "{job}");
    assert!(
        matches!(job["kind"].as_str(), Some("import" | "export")),
        "{job}"
    );
    assert!(
        matches!(
            job["status"].as_str(),
            Some("waiting" | "processing" | "success" | "error")
        ),
        "{job}"
    );
    let progress = job["progress"]
        .as_f64()
        .unwrap_or_else(|| panic!("progress is a number: {job}"));
    assert!((0.0..=1.0).contains(&progress), "{job}");
    assert!(job["created_at"].is_string(), "{job}");
    for k in ["started_at", "finished_at", "result", "error"] {
        assert!(job.get(k).is_some(), "{k} missing: {job}");
    }
}

/// Checks a 202 answer: the job JSON (waiting or processing) and a Location header.
#[track_caller]
fn accepted(reply: Reply, kind: &str) -> String {
    let location = reply
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let job = reply.expect(202);
    check_job(&job);
    assert_eq!(job["kind"], kind, "{job}");
    assert!(
        matches!(job["status"].as_str(), Some("waiting" | "processing")),
        "{job}"
    );
    assert!(job["result"].is_null() && job["error"].is_null(), "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let location = location.unwrap_or_else(|| panic!("202 without Location: {job}"));
    assert!(
        location.ends_with(&format!("/projects/1/jobs/{id}")),
        "Location {location} names the job {id}"
    );
    id
}

async fn job(app: &TestApp, key: &str, id: &str) -> Value {
    let job = app
        .get(&format!("/projects/1/jobs/{id}"), key)
        .await
        .expect(200);
    check_job(&job);
    assert_eq!(job["id"], id, "{job}");
    job
}

/// Polls a job until it has finished (success or error).
async fn wait_job(app: &TestApp, key: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let job = job(app, key, id).await;
        if matches!(job["status"].as_str(), Some("success" | "error")) {
            assert!(job["finished_at"].is_string(), "{job}");
            assert!(job["started_at"].is_string(), "{job}");
            return job;
        }
        assert!(Instant::now() < deadline, "job did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls a job until it is processing; panics if it finishes first.
async fn wait_processing(app: &TestApp, key: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = job(app, key, id).await;
        match job["status"].as_str() {
            Some("processing") => return job,
            Some("waiting") => {}
            _ => panic!("the job finished before it was seen processing: {job}"),
        }
        assert!(Instant::now() < deadline, "job never started: {job}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn async_import_path(table: &str) -> String {
    format!("{T}/{table}/import/file?async=true")
}

// ---------------------------------------------------------------------------------------
// Async imports and exports
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_import_runs_as_a_job_that_reports_the_import_result() {
    let (app, key) = setup_kv_table(true).await;
    let file = upload(&app, &key, "a.csv", kv_csv(1..=1000, "v").as_bytes()).await;
    let id = accepted(
        app.post(
            &async_import_path("t"),
            &key,
            json!({"file_id": file, "format": "csv"}),
        )
        .await,
        "import",
    );
    let done = wait_job(&app, &key, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["kind"], "import", "{done}");
    assert_eq!(done["progress"].as_f64(), Some(1.0), "{done}");
    assert!(done["error"].is_null(), "{done}");
    assert_eq!(done["result"]["imported_rows"], 1000, "{done}");
    assert_eq!(done["result"]["table_rows_after"], 1000, "{done}");
    assert_eq!(done["result"]["validate_only"], false, "{done}");
    let mut expected = kv_rows(1..=1000, "v");
    expected.sort();
    assert_eq!(table_rows(&app, &key, "t").await, expected);

    // Incremental on the reference path style.
    let file = upload(&app, &key, "b.csv", kv_csv(990..=1010, "w").as_bytes()).await;
    let id2 = accepted(
        app.post(
            &format!("{BT}/t/import/file?async=true"),
            &key,
            json!({"file_id": file, "import_options": {"incremental": true, "dedup_mode": "update_duplicates"}}),
        )
        .await,
        "import",
    );
    let done2 = wait_job(&app, &key, &id2).await;
    assert_eq!(done2["status"], "success", "{done2}");
    assert_eq!(done2["result"]["table_rows_after"], 1010, "{done2}");

    // Jobs are private to their project.
    app.get("/projects/1/jobs/no-such-job", &key)
        .await
        .expect_error(404);
    let key2 = app.create_project("2").await;
    let (ours, theirs) = (
        format!("/projects/1/jobs/{id}"),
        format!("/projects/2/jobs/{id}"),
    );
    app.get(&theirs, &key2).await.expect_error(404);
    // Another project's key on this project's path is refused like any foreign key.
    app.get(&ours, &key2).await.expect_error(403);
    app.get_without_key(&ours).await.expect_error(401);

    // Finished jobs survive a restart with their results.
    let app = app.restart().await;
    let after = job(&app, &key, &id).await;
    assert_eq!(after["status"], "success", "{after}");
    assert_eq!(after["result"], done["result"], "{after}");
    assert_eq!(after["finished_at"], done["finished_at"], "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_async_import_ends_in_error_with_the_problems_and_changes_nothing() {
    let (app, key) = setup_kv_table(true).await;
    seed(&app, &key, "t", "id,v\n1,a\n").await;
    let before = table_rows(&app, &key, "t").await;
    let file = upload(&app, &key, "bad.csv", b"id,v\n2,b\nnot-a-number,c\n").await;
    let id = accepted(
        app.post(&async_import_path("t"), &key, json!({"file_id": file}))
            .await,
        "import",
    );
    let done = wait_job(&app, &key, &id).await;
    assert_eq!(done["status"], "error", "{done}");
    assert!(done["result"].is_null(), "{done}");
    let err = &done["error"];
    assert!(err["error"].is_string(), "{done}");
    assert!(err["message"].is_string(), "{done}");
    assert_eq!(err["details"]["problems"][0]["line"], 3, "{done}");
    assert_eq!(err["details"]["problems"][0]["column"], "id", "{done}");
    assert_eq!(table_rows(&app, &key, "t").await, before);

    // Request errors are answered at once or reported by the job, never half-applied.
    for (path, body) in [
        (async_import_path("t"), json!({"file_id": "no-such-file"})),
        (async_import_path("nope"), json!({"file_id": file})),
    ] {
        let reply = app.post(&path, &key, body.clone()).await;
        if reply.status == 202 {
            let id = accepted(reply, "import");
            let done = wait_job(&app, &key, &id).await;
            assert_eq!(done["status"], "error", "{body}: {done}");
            assert!(done["error"]["message"].is_string(), "{done}");
        } else {
            reply.expect_error(404);
        }
    }
    assert_eq!(table_rows(&app, &key, "t").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_export_produces_a_downloadable_file() {
    let (app, key) = setup_kv_table(true).await;
    seed(&app, &key, "t", &kv_csv(1..=50, "x")).await;
    let id = accepted(
        app.post(
            &format!("{T}/t/export?async=true"),
            &key,
            json!({"format": "csv", "order_by": "id"}),
        )
        .await,
        "export",
    );
    let done = wait_job(&app, &key, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["kind"], "export", "{done}");
    let result = &done["result"];
    assert_eq!(result["rows_exported"], 50, "{done}");
    let bytes = download(&app, &key, result["file_id"].as_str().unwrap()).await;
    assert_eq!(result["file_size_bytes"], bytes.len(), "{done}");
    assert_eq!(String::from_utf8_lossy(&bytes), kv_csv(1..=50, "x"));

    // An invalid export is refused at once.
    app.post(
        &format!("{T}/t/export?async=true"),
        &key,
        json!({"format": "csv", "compression": "zstd"}),
    )
    .await
    .expect_error(400);
}

// ---------------------------------------------------------------------------------------
// Queue limits
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_job_queue_answers_429_with_retry_after() {
    let (app, key) = setup_configured(one_job_at_a_time).await;
    kv_table(&app, &key, "t", true).await;
    let file = upload(&app, &key, "big.csv", &big_csv(1, 200_000)).await;

    let mut jobs = Vec::new();
    let mut refused = 0;
    for i in 0..6 {
        let reply = app
            .post(&async_import_path("t"), &key, json!({"file_id": file}))
            .await;
        match reply.status.as_u16() {
            202 => jobs.push(accepted(reply, "import")),
            429 => {
                assert!(i > 0, "the first submit fits the empty queue");
                let retry = reply
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .unwrap_or_else(|| panic!("429 without Retry-After: {}", reply.body));
                assert!(
                    retry.trim().parse::<u64>().is_ok(),
                    "Retry-After is delay-seconds: {retry}"
                );
                reply.expect_error(429);
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!(refused >= 1, "a queue of one refuses back-to-back submits");
    assert!(!jobs.is_empty());
    for id in &jobs {
        let done = wait_job(&app, &key, id).await;
        assert_eq!(done["status"], "success", "{done}");
        assert_eq!(done["result"]["table_rows_after"], 200_000, "{done}");
    }
    // Once drained, the queue accepts again.
    let id = accepted(
        app.post(&async_import_path("t"), &key, json!({"file_id": file}))
            .await,
        "import",
    );
    assert_eq!(wait_job(&app, &key, &id).await["status"], "success");
    assert_eq!(
        app.get(&format!("{T}/t"), &key).await.expect(200)["row_count"],
        200_000
    );
}

// ---------------------------------------------------------------------------------------
// Reads during a long import
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_tables_stay_readable_and_writable_during_a_long_import() {
    let (app, key) = setup().await;
    kv_table(&app, &key, "a", true).await;
    kv_table(&app, &key, "other", true).await;
    seed(&app, &key, "other", "id,v\n1,x\n2,y\n3,z\n").await;
    let file = upload(&app, &key, "big.csv", &big_csv(1, 1_500_000)).await;
    let id = accepted(
        app.post(&async_import_path("a"), &key, json!({"file_id": file}))
            .await,
        "import",
    );
    wait_processing(&app, &key, &id).await;

    let preview = tokio::time::timeout(
        Duration::from_secs(60),
        app.get(&format!("{T}/other/preview"), &key),
    )
    .await
    .expect("a preview of another table is not blocked by the import")
    .expect(200);
    assert_eq!(preview["total_row_count"], 3, "{preview}");
    let small = upload(&app, &key, "s.csv", b"id,v\n4,w\n").await;
    let res = tokio::time::timeout(
        Duration::from_secs(60),
        app.post(
            &format!("{T}/other/import/file"),
            &key,
            json!({"file_id": small, "import_options": {"incremental": true, "dedup_mode": "update_duplicates"}}),
        ),
    )
    .await
    .expect("an import into another table is not blocked")
    .expect(200);
    assert_eq!(res["table_rows_after"], 4, "{res}");
    tokio::time::timeout(Duration::from_secs(60), app.get(T, &key))
        .await
        .expect("the table list is not blocked")
        .expect(200);

    let done = wait_job(&app, &key, &id).await;
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["result"]["imported_rows"], 1_500_000, "{done}");
    assert_eq!(
        app.get(&format!("{T}/a"), &key).await.expect(200)["row_count"],
        1_500_000
    );
}

// ---------------------------------------------------------------------------------------
// kill -9 of the binary during an import
// ---------------------------------------------------------------------------------------

/// Test requests against a server binary.
trait BinaryRequests {
    async fn text(&self, path: &str, key: &str) -> String;
    async fn upload(&self, key: &str, name: &str, data: Vec<u8>) -> String;
    async fn job(&self, key: &str, id: &str) -> Value;
}

impl BinaryRequests for ServerProcess {
    async fn text(&self, path: &str, key: &str) -> String {
        let res = self
            .client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }

    async fn upload(&self, key: &str, name: &str, data: Vec<u8>) -> String {
        let res = self
            .client
            .post(self.url(&format!("/projects/1/files/content?name={name}")))
            .bearer_auth(key)
            .body(data)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.unwrap();
        body["id"].as_str().unwrap().to_string()
    }

    async fn job(&self, key: &str, id: &str) -> Value {
        let job = self
            .get(&format!("/projects/1/jobs/{id}"), key)
            .await
            .expect(200);
        check_job(&job);
        job
    }
}

/// The server binary with the test admin key and the test's DuckDB limits.
async fn start_binary() -> ServerProcess {
    ServerProcess::start(&[
        ("ADMIN_API_KEY", ADMIN_KEY),
        ("MIN_FREE_BYTES", "0"),
        ("DUCKDB_THREADS", "2"),
        ("DUCKDB_MEMORY_LIMIT", "1GB"),
        ("RUST_LOG", "warn"),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_during_an_import_keeps_the_old_rows_and_marks_the_job_interrupted() {
    let mut server = start_binary().await;
    let r = &server;
    let created = r
        .post("/projects", ADMIN_KEY, json!({"id": "1", "name": "One"}))
        .await
        .expect(201);
    let key = created["api_key"].as_str().unwrap().to_string();
    r.post("/projects/1/buckets", &key, json!({"name": "b"}))
        .await
        .expect(201);
    r.post(
        T,
        &key,
        json!({"name": "t", "columns": [{"name": "id", "type": "BIGINT"}, {"name": "v", "type": "VARCHAR"}],
               "primary_key": ["id"]}),
    )
    .await
    .expect(201);
    let small = r
        .upload(&key, "small.csv", kv_csv(1..=1000, "keep").into_bytes())
        .await;
    let res = r
        .post(
            &format!("{T}/t/import/file"),
            &key,
            json!({"file_id": small}),
        )
        .await
        .expect(200);
    assert_eq!(res["table_rows_after"], 1000, "{res}");
    let export_path = format!("{T}/t/export?format=csv&order_by=id");
    let before = r.text(&export_path, &key).await;
    assert_eq!(before, kv_csv(1..=1000, "keep"));

    let big = r
        .upload(&key, "big.csv", big_csv(1_000_000, 3_000_000))
        .await;
    let reply = r
        .post(
            &format!("{T}/t/import/file?async=true"),
            &key,
            json!({"file_id": big, "import_options": {"incremental": false}}),
        )
        .await;
    let id = reply.expect(202)["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = r.job(&key, &id).await;
        match job["status"].as_str() {
            Some("processing") => break,
            Some("waiting") => {}
            _ => panic!("the import finished before it was seen processing: {job}"),
        }
        assert!(Instant::now() < deadline, "job never started: {job}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let job = r.job(&key, &id).await;
    assert_eq!(
        job["status"], "processing",
        "the import must still run when the server is killed (make the file bigger): {job}"
    );
    server.kill();
    let server = server.restart().await;
    let r = &server;
    let t = r.get(&format!("{T}/t"), &key).await.expect(200);
    assert_eq!(t["row_count"], 1000, "{t}");
    assert_eq!(r.text(&export_path, &key).await, before);
    let job = r.job(&key, &id).await;
    assert_eq!(job["status"], "error", "{job}");
    let msg = job["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.to_lowercase().contains("interrupted"),
        "the job says it was interrupted: {job}"
    );

    // The table takes imports normally afterwards, sync and async.
    let more = r
        .upload(&key, "more.csv", kv_csv(1001..=1010, "after").into_bytes())
        .await;
    let res = r
        .post(
            &format!("{T}/t/import/file"),
            &key,
            json!({"file_id": more, "import_options": {"incremental": true, "dedup_mode": "update_duplicates"}}),
        )
        .await
        .expect(200);
    assert_eq!(res["table_rows_after"], 1010, "{res}");
    let reply = r
        .post(
            &format!("{T}/t/import/file?async=true"),
            &key,
            json!({"file_id": small}),
        )
        .await;
    let id = reply.expect(202)["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let job = r.job(&key, &id).await;
        if matches!(job["status"].as_str(), Some("success" | "error")) {
            break job;
        }
        assert!(Instant::now() < deadline, "job did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(r.text(&export_path, &key).await, before);
}

#[tokio::test]
async fn finished_jobs_are_removed_after_their_retention() {
    let (app, key) = setup_configured(|c| {
        c.job_retention_secs = 0;
        c.cleanup_interval_secs = 1;
    })
    .await;
    kv_table(&app, &key, "t", true).await;
    let file = upload(&app, &key, "a.csv", &big_csv(1, 10)).await;
    let id = accepted(
        app.post(&async_import_path("t"), &key, json!({"file_id": file}))
            .await,
        "import",
    );
    assert_eq!(wait_job(&app, &key, &id).await["status"], "success");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = app.get(&format!("/projects/1/jobs/{id}"), &key).await;
        if reply.status.as_u16() == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the finished job was never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The import itself stays.
    assert_eq!(
        app.get(&format!("{T}/t"), &key).await.expect(200)["row_count"],
        10
    );
}
