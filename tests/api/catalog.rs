//! What stays bounded however clients probe or load the server: lock entries for names that do
//! not exist, attached table files when a bucket is listed, and bulk work across projects.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::table_data::{seed, setup_configured, upload_to, T};

/// Runs `sql` on the file of table `table` (project 1, bucket b) with the server stopped, then
/// restarts it with one bulk thread, so every bulk operation queues for it.
async fn fill_with_one_bulk_thread(mut app: TestApp, table: &str, sql: &str) -> TestApp {
    app.stop().await;
    let path = app
        .data_dir
        .join(format!("duckdb/project_1/b/{table}.duckdb"));
    duckdb::Connection::open(&path)
        .expect("open table file")
        .execute_batch(sql)
        .expect("fill table file");
    app.restart_configured(|c| c.bulk_threads = 1).await
}

/// One bulk thread; table `big` (3 M rows) whose profile keeps it busy; an empty table `t` and
/// a small CSV file for it. Also how long one profile of `big` takes here, so tests wait in
/// fractions of it (fast machine or loaded one).
async fn busy_world() -> (TestApp, String, String, std::time::Duration) {
    let (app, key) = setup_configured(|_| {}).await;
    app.create_table(
        "1",
        &key,
        "b",
        "big",
        &[("id", "BIGINT"), ("name", "VARCHAR")],
        &[],
    )
    .await;
    let app = fill_with_one_bulk_thread(
        app,
        "big",
        "INSERT INTO main.data SELECT i, 'name ' || (i % 5000) FROM range(3000000) r(i)",
    )
    .await;
    app.create_table_t(&key, &[("id", "BIGINT")], &[]).await;
    let file = upload_to(&app, "1", &key, "rows.csv", b"id\n1\n2\n3\n").await;
    app.get(&format!("{T}/t/preview"), &key).await.expect(200);
    let timed = std::time::Instant::now();
    app.post(&format!("{T}/big/profile"), &key, json!({}))
        .await
        .expect(200);
    (app, key, file, timed.elapsed())
}

/// The engine's in-memory table sizes (admin only).
async fn engine(app: &TestApp) -> Value {
    app.get("/admin/engine", ADMIN_KEY).await.expect(200)
}

#[tokio::test]
async fn the_engine_figures_need_the_admin_key() {
    let (app, key) = spawn_app_with_project().await;
    app.get("/admin/engine", &key).await.expect_error(403);
    let figures = engine(&app).await;
    assert_eq!(figures["lock_entries"], 0, "{figures}");
    assert_eq!(figures["attached_tables"], 0, "{figures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_made_up_table_names_leave_the_lock_table_as_it_was() {
    let (app, key) = setup_configured(|_| {}).await;
    app.create_table_t(&key, &[("id", "INTEGER")], &[]).await;
    app.get(&format!("{T}/t/preview"), &key).await.expect(200);
    let before = engine(&app).await["lock_entries"].clone();
    assert_eq!(before, 0, "no lock outlives its request");

    // Every route that names a table, reads and writes, for names the catalog does not know.
    // (100 000 names through the lock table itself: the unit test in engine::locks.)
    let requests = 2_000;
    let statuses: Vec<u16> = stream::iter(0..requests)
        .map(|i| {
            let (app, key) = (&app, &key);
            async move {
                let t = format!("{T}/made_up_{i}");
                let reply = match i % 6 {
                    0 => app.get(&t, key).await,
                    1 => app.get(&format!("{t}/preview"), key).await,
                    2 => app.delete(&t, key).await,
                    3 => {
                        app.post(
                            &format!("{t}/columns"),
                            key,
                            json!({"name": "c", "type": "INTEGER"}),
                        )
                        .await
                    }
                    4 => app.post(&format!("{t}/profile"), key, json!({})).await,
                    _ => {
                        app.post(
                            &format!("{t}/import/file"),
                            key,
                            json!({"file_id": "nope", "format": "csv"}),
                        )
                        .await
                    }
                };
                reply.status.as_u16()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 404), "{:?}", &statuses[..10]);
    let after = engine(&app).await;
    assert_eq!(after["lock_entries"], before, "{after}");
}

#[tokio::test]
async fn listing_a_bucket_opens_no_table_file_and_the_cache_bound_holds() {
    let (app, key) = setup_configured(|c| c.table_cache_size = 4).await;
    for i in 0..12 {
        app.create_table(
            "1",
            &key,
            "b",
            &format!("t{i}"),
            &[("id", "BIGINT"), ("name", "VARCHAR")],
            &["id"],
        )
        .await;
    }
    seed(&app, &key, "t3", "id,name\n1,a\n2,b\n3,c\n").await;
    // Served from the real start-up path: nothing attached, and every table's figures still
    // match its file after the restart.
    let app = app.restart_configured(|c| c.table_cache_size = 4).await;
    let figures = engine(&app).await;
    assert_eq!(figures["attached_tables"], 0, "{figures}");
    assert_eq!(figures["tables_without_figures"], 0, "{figures}");

    let list = app.get(T, &key).await.expect(200);
    assert_eq!(list["total"], 12, "{list}");
    let t3 = list["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "t3")
        .unwrap();
    assert_eq!(t3["row_count"], 3, "{t3}");
    assert_eq!(t3["primary_key"], json!(["id"]), "{t3}");
    assert_eq!(t3["columns"][1]["name"], "name", "{t3}");
    assert!(t3["size_bytes"].as_u64().unwrap() > 0, "{t3}");
    let figures = engine(&app).await;
    assert_eq!(
        figures["attached_tables"], 0,
        "a list attaches nothing: {figures}"
    );

    // Reading every table still keeps at most TABLE_CACHE_SIZE of them attached.
    for i in 0..12 {
        app.get(&format!("{T}/t{i}/preview"), &key)
            .await
            .expect(200);
    }
    let figures = engine(&app).await;
    assert!(
        figures["attached_tables"].as_u64().unwrap() <= 4,
        "{figures}"
    );
    assert_eq!(figures["lock_entries"], 0, "{figures}");
}

#[tokio::test]
async fn a_list_shows_each_write_at_once() {
    let (app, key) = setup_configured(|_| {}).await;
    app.create_table_t(&key, &[("id", "BIGINT"), ("name", "VARCHAR")], &["id"])
        .await;
    let listed = |list: Value| list["tables"][0].clone();
    let created = listed(app.get(T, &key).await.expect(200));
    assert_eq!(created["row_count"], 0, "{created}");
    assert!(created["updated_at"].is_string(), "{created}");

    seed(&app, &key, "t", "id,name\n1,a\n2,b\n3,c\n").await;
    let loaded = listed(app.get(T, &key).await.expect(200));
    assert_eq!(loaded["row_count"], 3, "{loaded}");
    assert!(loaded["size_bytes"].as_u64().unwrap() > 0, "{loaded}");
    assert!(
        loaded["updated_at"].as_str().unwrap() > created["updated_at"].as_str().unwrap(),
        "{created} then {loaded}"
    );

    app.call(
        Method::DELETE,
        &format!("{T}/t/rows"),
        Some(&key),
        Some(json!({"where_clause": "id = 1"})),
    )
    .await
    .expect(200);
    assert_eq!(listed(app.get(T, &key).await.expect(200))["row_count"], 2);

    app.post(
        &format!("{T}/t/columns"),
        &key,
        json!({"name": "extra", "type": "INTEGER"}),
    )
    .await
    .expect(201);
    app.delete(&format!("{T}/t/primary-key"), &key)
        .await
        .expect(200);
    let changed = listed(app.get(T, &key).await.expect(200));
    assert_eq!(changed["columns"].as_array().unwrap().len(), 3, "{changed}");
    assert_eq!(changed["primary_key"], json!([]), "{changed}");
    assert_eq!(changed["row_count"], 2, "{changed}");
    let got = app.get(&format!("{T}/t"), &key).await.expect(200);
    assert_eq!(got, changed, "get and list agree");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_projects_queued_profiles_do_not_delay_another_projects_import() {
    let (app, key1) = setup_configured(|_| {}).await;
    app.create_table_t(&key1, &[("id", "BIGINT"), ("name", "VARCHAR")], &[])
        .await;
    let app = fill_with_one_bulk_thread(
        app,
        "t",
        "INSERT INTO main.data SELECT i, 'name ' || (i % 5000) FROM range(1000000) r(i)",
    )
    .await;
    let key2 = app.create_project("2").await;
    app.create_bucket("2", &key2, "b").await;
    app.create_table("2", &key2, "b", "t", &[("id", "BIGINT")], &[])
        .await;
    let file = upload_to(&app, "2", &key2, "rows.csv", b"id\n1\n2\n").await;
    // Keys verified once, so the flood below queues on the bulk pool, not on key checks.
    app.get(T, &key1).await.expect(200);

    let done = Arc::new(AtomicUsize::new(0));
    let profiles = 20;
    let flood = {
        let (app, key1, done) = (&app, &key1, done.clone());
        stream::iter(0..profiles)
            .map(move |_| {
                let done = done.clone();
                async move {
                    app.post(&format!("{T}/t/profile"), key1, json!({}))
                        .await
                        .expect(200);
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
            .buffer_unordered(profiles)
            .collect::<Vec<()>>()
    };
    let import = async {
        // Let the flood queue up first.
        while done.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let before = done.load(Ordering::SeqCst);
        app.post(
            "/projects/2/buckets/b/tables/t/import/file",
            &key2,
            json!({"file_id": file, "format": "csv"}),
        )
        .await
        .expect(200);
        done.load(Ordering::SeqCst) - before
    };
    let (_, profiles_in_between) = tokio::join!(flood, import);
    // First come first served, the import would wait for every profile queued before it (all
    // but the first); fairly, for the one running when it was queued. The bound leaves room for
    // a profile or two finishing while the import's request is still on its way to the queue
    // (its own steps compete for the same two cores).
    assert!(
        profiles_in_between < 5,
        "{profiles_in_between} of project 1's {profiles} profiles ran while project 2's import waited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_work_whose_client_has_gone_never_runs() {
    let (app, key, file, took) = busy_world().await;

    // The one bulk thread is busy with a profile; an import queues behind it, and its client
    // gives up while it waits. The waits are fractions of how long a profile takes here, so
    // the import is still queued when its client leaves, on a fast machine or a loaded one.
    let big = format!("{T}/big/profile");
    let profile = app.post(&big, &key, json!({}));
    let impatient = async {
        tokio::time::sleep(took / 8).await;
        let gave_up = app
            .client
            .post(app.url(&format!("{T}/t/import/file")))
            .bearer_auth(&key)
            .json(&json!({"file_id": file, "format": "csv"}))
            .timeout(took / 4)
            .send()
            .await;
        assert!(
            gave_up.is_err(),
            "the import should still be queued: {gave_up:?}"
        );
    };
    let (profiled, _) = tokio::join!(profile, impatient);
    profiled.expect(200);
    // The thread is free again: anything still queued would run now.
    app.post(&big, &key, json!({})).await.expect(200);
    let t = app.get(&format!("{T}/t"), &key).await.expect(200);
    assert_eq!(t["row_count"], 0, "the abandoned import ran: {t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_waiting_for_a_bulk_thread_does_not_hold_up_previews_of_its_table() {
    let (app, key, file, took) = busy_world().await;

    // The one bulk thread profiles `big`; an import into `t` queues for it. A preview of `t`
    // must not wait for that import: it is not running, so it must not hold `t`'s lock.
    let big = format!("{T}/big/profile");
    let import_done = Arc::new(AtomicUsize::new(0));
    let profile = app.post(&big, &key, json!({}));
    let import = async {
        tokio::time::sleep(took / 8).await;
        let r = app
            .post(
                &format!("{T}/t/import/file"),
                &key,
                json!({"file_id": file, "format": "csv"}),
            )
            .await;
        import_done.store(1, Ordering::SeqCst);
        r
    };
    let preview = async {
        tokio::time::sleep(took / 4).await;
        let r = app.get(&format!("{T}/t/preview"), &key).await;
        (r, import_done.load(Ordering::SeqCst))
    };
    let (profiled, imported, (previewed, import_finished_first)) =
        tokio::join!(profile, import, preview);
    profiled.expect(200);
    imported.expect(200);
    previewed.expect(200);
    assert_eq!(
        import_finished_first, 0,
        "the preview waited for the queued import to run"
    );
}
