//! Table imports, the load modes: full loads, incremental upserts, every dedup mode with and
//! without a primary key, and validate-only dry runs; not file formats or bad input.

use super::*;

#[tokio::test]
async fn a_full_load_replaces_every_row() {
    let (app, key) = setup_kv_table(true).await;
    seed(&app, &key, "t", &kv_csv(1..=10, "old")).await;
    let res = seed(&app, &key, "t", "id,v\n100,a\n101,b\n").await;
    assert_eq!(res["imported_rows"], 2, "{res}");
    assert_eq!(res["table_rows_after"], 2, "{res}");
    assert_eq!(table_rows(&app, &key, "t").await, rows(&["100|a", "101|b"]));
}

#[tokio::test]
async fn an_incremental_upsert_updates_overlapping_keys_and_appends_new_ones() {
    let (app, key) = setup_kv_table(true).await;
    let res = seed(&app, &key, "t", &kv_csv(1..=10, "old")).await;
    assert_eq!(res["imported_rows"], 10, "{res}");
    assert_eq!(res["table_rows_after"], 10, "{res}");
    let res = upsert(&app, &key, &kv_csv(6..=15, "new")).await.expect(200);
    assert_eq!(res["imported_rows"], 10, "{res}");
    assert_eq!(res["table_rows_after"], 15, "{res}");
    let mut expected = kv_rows(1..=5, "old");
    expected.extend(kv_rows(6..=15, "new"));
    assert_eq!(table_rows(&app, &key, "t").await, sorted(expected));
    assert_eq!(
        app.get(&format!("{T}/t"), &key).await.expect(200)["row_count"],
        15
    );
}

#[tokio::test]
async fn keys_repeated_within_a_file_keep_the_last_occurrence_with_a_warning() {
    let (app, key) = setup_kv_table(true).await;
    seed(&app, &key, "t", "id,v\n1,a0\n2,b0\n").await;
    let res = upsert(&app, &key, "id,v\n1,x\n3,y\n1,z\n3,w\n4,q\n")
        .await
        .expect(200);
    assert_eq!(res["table_rows_after"], 4, "{res}");
    let warnings = res["warnings"].as_array().expect("warnings list");
    let text = res["warnings"].to_string().to_lowercase();
    assert!(
        !warnings.is_empty() && (text.contains("repeat") || text.contains("duplicate")),
        "repeated keys in the file are reported: {res}"
    );
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|z", "2|b0", "3|w", "4|q"])
    );
}

#[tokio::test]
async fn fail_on_duplicates_is_409_listing_the_keys_and_changes_nothing() {
    let (app, key) = setup_kv_table(true).await;
    seed(&app, &key, "t", &kv_csv(1..=30, "v")).await;
    let before = snapshot(&app, &key, "t").await;

    // A key already in the table.
    let err = load_unique(&app, &key, "id,v\n31,new\n3,dup\n")
        .await
        .expect_error(409);
    let dups = duplicate_keys(&err);
    assert_eq!(dups.len(), 1, "{err}");
    assert!(dups[0].to_string().contains('3'), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // A key repeated within the file (not in the table).
    let err = load_unique(&app, &key, "id,v\n40,a\n41,b\n40,c\n")
        .await
        .expect_error(409);
    let dups = err["details"]["duplicate_keys"].as_array().unwrap();
    assert_eq!(dups.len(), 1, "{err}");
    assert!(dups[0].to_string().contains("40"), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // At most ten keys are listed.
    let err = load_unique(&app, &key, &kv_csv(1..=30, "again"))
        .await
        .expect_error(409);
    assert_eq!(
        err["details"]["duplicate_keys"].as_array().unwrap().len(),
        10,
        "{err}"
    );
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // Without duplicates the mode appends.
    let res = load_unique(&app, &key, "id,v\n31,x\n32,y\n")
        .await
        .expect(200);
    assert_eq!(res["table_rows_after"], 32, "{res}");
}

#[tokio::test]
async fn insert_duplicates_on_a_primary_key_table_is_400() {
    let (app, key) = setup_kv_table(true).await;
    seed(&app, &key, "t", "id,v\n1,a\n2,b\n").await;
    let before = snapshot(&app, &key, "t").await;
    for csv in ["id,v\n2,dup\n3,c\n", "id,v\n3,c\n"] {
        let err = load_csv(&app, &key, "t", csv, incremental("insert_duplicates"))
            .await
            .expect_error(400);
        assert!(message(&err).contains("primary key"), "{err}");
        assert_eq!(snapshot(&app, &key, "t").await, before);
    }
}

#[tokio::test]
async fn without_a_primary_key_every_dedup_mode_appends() {
    let (app, key) = setup_kv_table(false).await;
    seed(&app, &key, "t", "id,v\n1,a\n2,b\n").await;
    let mut count = 2;
    for mode in [
        "update_duplicates",
        "insert_duplicates",
        "fail_on_duplicates",
    ] {
        let res = load_csv(&app, &key, "t", "id,v\n2,b\n3,c\n", incremental(mode))
            .await
            .expect(200);
        count += 2;
        assert_eq!(res["imported_rows"], 2, "{mode}: {res}");
        assert_eq!(res["table_rows_after"], count, "{mode}: {res}");
    }
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a", "2|b", "2|b", "2|b", "2|b", "3|c", "3|c", "3|c"])
    );
}

#[tokio::test]
async fn validate_only_reports_would_be_counts_and_changes_nothing() {
    let (app, key) = setup_kv_table(true).await;
    seed(&app, &key, "t", &kv_csv(1..=10, "old")).await;
    let before = snapshot(&app, &key, "t").await;
    let files_before = app.get("/projects/1/files", &key).await.expect(200)["total"].clone();

    let id = upload(&app, &key, "up.csv", kv_csv(6..=15, "new").as_bytes()).await;
    let res = dry_run(&app, &key, &id, "update_duplicates")
        .await
        .expect(200);
    assert_eq!(res["validate_only"], true, "{res}");
    assert_eq!(res["imported_rows"], 10, "{res}");
    assert_eq!(res["table_rows_after"], 15, "{res}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    let res = import(
        &app,
        &key,
        "t",
        json!({"file_id": id, "import_options": {"incremental": false}, "validate_only": true}),
    )
    .await
    .expect(200);
    assert_eq!(res["validate_only"], true, "{res}");
    assert_eq!(res["imported_rows"], 10, "{res}");
    assert_eq!(res["table_rows_after"], 10, "{res}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // A bad file gives the same 400 as a real import.
    let bad = upload(&app, &key, "bad.csv", b"id,v\n1,a\nx,b\n").await;
    let real = import(&app, &key, "t", json!({"file_id": bad}))
        .await
        .expect_error(400);
    let dry = import(
        &app,
        &key,
        "t",
        json!({"file_id": bad, "validate_only": true}),
    )
    .await
    .expect_error(400);
    assert_eq!(dry["error"], real["error"]);
    assert_eq!(dry["details"], real["details"]);
    assert_eq!(real["details"]["problems"][0]["line"], 3, "{real}");
    assert_eq!(real["details"]["problems"][0]["column"], "id", "{real}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // fail_on_duplicates conflicts are found by a dry run too.
    let dup = dry_run(&app, &key, &id, "fail_on_duplicates")
        .await
        .expect_error(409);
    assert!(dup["details"]["duplicate_keys"].is_array(), "{dup}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        json!(files_before.as_u64().unwrap() + 2)
    );
}

/// A `validate_only` incremental import of file `id` into `t` with the given dedup mode.
async fn dry_run(app: &TestApp, key: &str, id: &str, mode: &str) -> Reply {
    import(
        app,
        key,
        "t",
        json!({"file_id": id, "import_options": incremental(mode), "validate_only": true}),
    )
    .await
}
