//! Snapshot settings over HTTP: system defaults, inheritance project → bucket → table key by
//! key, validation (unknown keys 422, retention bounds 400), DELETE resetting a level, access.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, JsonClient, TestApp};

const PROJECT: &str = "/projects/1/settings/snapshots";
const BUCKET: &str = "/projects/1/branches/default/buckets/b/settings/snapshots";
const TABLE: &str = "/projects/1/branches/default/buckets/b/tables/t/settings/snapshots";

async fn world() -> (TestApp, String) {
    let app = spawn_app().await;
    let key = app.project_with_table(&[("id", "INTEGER")], &["id"]).await;
    (app, key)
}

fn origin(reply: &Value, dotted: &str) -> String {
    reply["inheritance"][dotted]
        .as_str()
        .unwrap_or_else(|| panic!("no inheritance for {dotted}: {reply}"))
        .to_string()
}

#[tokio::test]
async fn every_level_starts_with_the_system_defaults() {
    let (app, key) = world().await;
    for path in [PROJECT, BUCKET, TABLE] {
        let got = app.get(path, &key).await.expect(200);
        assert_eq!(
            got["effective_config"],
            json!({
                "enabled": true,
                "auto_snapshot_triggers": {
                    "drop_table": true, "truncate_table": false,
                    "delete_all_rows": false, "drop_column": false
                },
                "retention": {"manual_days": 90, "auto_days": 7}
            }),
            "{path}"
        );
        assert_eq!(got["local_config"], json!({}), "{path}");
        let inheritance = got["inheritance"].as_object().expect("inheritance");
        assert_eq!(inheritance.len(), 7, "{got}");
        assert!(inheritance.values().all(|v| v == "system"), "{got}");
    }
    // The seed path style answers the same.
    app.get("/projects/1/buckets/b/tables/t/settings/snapshots", &key)
        .await
        .expect(200);
}

#[tokio::test]
async fn the_most_specific_level_wins_key_by_key() {
    let (app, key) = world().await;
    let project = json!({"enabled": false, "retention": {"manual_days": 30, "auto_days": 14}});
    let put = app.put(PROJECT, &key, project.clone()).await.expect(200);
    assert_eq!(put["local_config"], project);
    assert_eq!(origin(&put, "enabled"), "project");

    let bucket =
        json!({"auto_snapshot_triggers": {"drop_column": true}, "retention": {"manual_days": 60}});
    app.put(BUCKET, &key, bucket.clone()).await.expect(200);
    app.put(TABLE, &key, json!({"retention": {"auto_days": 3}}))
        .await
        .expect(200);

    let table = app.get(TABLE, &key).await.expect(200);
    let eff = &table["effective_config"];
    assert_eq!(eff["enabled"], false);
    assert_eq!(origin(&table, "enabled"), "project");
    assert_eq!(eff["retention"]["manual_days"], 60);
    assert_eq!(origin(&table, "retention.manual_days"), "bucket");
    assert_eq!(eff["retention"]["auto_days"], 3);
    assert_eq!(origin(&table, "retention.auto_days"), "table");
    assert_eq!(eff["auto_snapshot_triggers"]["drop_column"], true);
    assert_eq!(
        origin(&table, "auto_snapshot_triggers.drop_column"),
        "bucket"
    );
    assert_eq!(
        origin(&table, "auto_snapshot_triggers.drop_table"),
        "system"
    );
    assert_eq!(
        table["local_config"],
        json!({"retention": {"auto_days": 3}})
    );

    let got = app.get(BUCKET, &key).await.expect(200);
    assert_eq!(got["local_config"], bucket);
    assert_eq!(got["effective_config"]["retention"]["auto_days"], 14);
    assert_eq!(origin(&got, "retention.auto_days"), "project");

    // PUT replaces the level: what it no longer sets is inherited again.
    app.put(PROJECT, &key, json!({"retention": {"auto_days": 20}}))
        .await
        .expect(200);
    let table = app.get(TABLE, &key).await.expect(200);
    assert_eq!(table["effective_config"]["enabled"], true);
    assert_eq!(origin(&table, "enabled"), "system");
    assert_eq!(table["effective_config"]["retention"]["auto_days"], 3);
}

#[tokio::test]
async fn delete_resets_a_level_to_what_it_inherits() {
    let (app, key) = world().await;
    app.put(BUCKET, &key, json!({"enabled": false}))
        .await
        .expect(200);
    app.put(TABLE, &key, json!({"enabled": true}))
        .await
        .expect(200);
    assert_eq!(
        origin(&app.get(TABLE, &key).await.expect(200), "enabled"),
        "table"
    );

    app.delete(TABLE, &key).await.expect(204);
    let table = app.get(TABLE, &key).await.expect(200);
    assert_eq!(table["effective_config"]["enabled"], false);
    assert_eq!(origin(&table, "enabled"), "bucket");
    assert_eq!(table["local_config"], json!({}));

    app.delete(BUCKET, &key).await.expect(204);
    // Deleting a level with nothing set is fine too.
    app.delete(BUCKET, &key).await.expect(204);
    app.delete(PROJECT, &key).await.expect(204);
    let table = app.get(TABLE, &key).await.expect(200);
    assert_eq!(origin(&table, "enabled"), "system");
}

#[tokio::test]
async fn bad_configs_are_refused_and_change_nothing() {
    let (app, key) = world().await;
    for body in [
        json!({"enabeld": true}),
        json!({"retention": {"days": 3}}),
        json!({"auto_snapshot_triggers": {"drop_bucket": true}}),
        json!({"enabled": "yes"}),
    ] {
        app.put(PROJECT, &key, body.clone()).await.expect_error(422);
    }
    for days in [0, -5, 3651] {
        for field in ["manual_days", "auto_days"] {
            app.put(TABLE, &key, json!({"retention": {field: days}}))
                .await
                .expect_code(400, "invalid_config");
        }
    }
    app.put(
        TABLE,
        &key,
        json!({"retention": {"manual_days": 3650, "auto_days": 1}}),
    )
    .await
    .expect(200);
    let got = app.get(PROJECT, &key).await.expect(200);
    assert_eq!(got["local_config"], json!({}));
}

#[tokio::test]
async fn missing_buckets_and_tables_are_404() {
    let (app, key) = world().await;
    let nobucket = "/projects/1/branches/default/buckets/nope/settings/snapshots";
    let notable = "/projects/1/branches/default/buckets/b/tables/nope/settings/snapshots";
    app.get(nobucket, &key)
        .await
        .expect_code(404, "bucket_not_found");
    app.put(notable, &key, json!({}))
        .await
        .expect_code(404, "table_not_found");
    app.delete(notable, &key)
        .await
        .expect_code(404, "table_not_found");
}

#[tokio::test]
async fn a_branch_key_reads_settings_but_only_a_project_admin_changes_them() {
    let (app, key) = world().await;
    let issued = app
        .post(
            "/projects/1/api-keys",
            &key,
            json!({"description": "dev", "scope": "branch_admin", "branch_id": "default"}),
        )
        .await
        .expect(201);
    let dev = issued["api_key"].as_str().expect("api_key");
    app.get(TABLE, dev).await.expect(200);
    app.put(TABLE, dev, json!({"enabled": false}))
        .await
        .expect_code(403, "forbidden");
    app.delete(BUCKET, dev).await.expect_code(403, "forbidden");
}
