//! Table imports of bad input: bad values, malformed CSV, long lines, empty files and unknown
//! files, formats or tables — each a clear 4xx that leaves the table exactly as it was.

use super::*;

async fn typed_table(app: &TestApp, key: &str) -> (Value, Vec<String>) {
    app.create_table_t(
        key,
        &[
            ("id", "BIGINT"),
            ("amount", "DECIMAL(12,2)"),
            ("day", "DATE"),
        ],
        &["id"],
    )
    .await;
    seed(app, key, "t", "id,amount,day\n1,1.00,2024-01-01\n").await;
    let snap = snapshot(app, key, "t").await;
    assert_eq!(snap.1, rows(&["1|1.00|2024-01-01"]));
    snap
}

#[tokio::test]
async fn a_bad_value_is_400_naming_line_column_value_and_type() {
    let (app, key) = setup().await;
    let before = typed_table(&app, &key).await;
    for options in [
        json!({"incremental": false}),
        incremental("update_duplicates"),
    ] {
        let err = load_csv(
            &app,
            &key,
            "t",
            "id,amount,day\n2,10.00,2024-01-02\n3,xx,2024-01-03\n4,5,2024-01-04\n",
            options.clone(),
        )
        .await
        .expect_error(400);
        let problems = err["details"]["problems"]
            .as_array()
            .unwrap_or_else(|| panic!("problems missing: {err}"));
        assert_eq!(problems.len(), 1, "{err}");
        let p = &problems[0];
        assert_eq!(p["line"], 3, "{err}");
        assert_eq!(p["column"], "amount", "{err}");
        assert_eq!(p["value"], "xx", "{err}");
        assert_eq!(p["expected_type"], "DECIMAL(12,2)", "{err}");
        assert!(p["error"].as_str().is_some_and(|e| !e.is_empty()), "{err}");
        assert_eq!(snapshot(&app, &key, "t").await, before, "{options}");
    }

    let err = load_csv(
        &app,
        &key,
        "t",
        "id,amount,day\n5,1,2024-13-45\n",
        json!({}),
    )
    .await
    .expect_error(400);
    let p = &err["details"]["problems"][0];
    assert_eq!(p["line"], 2, "{err}");
    assert_eq!(p["column"], "day", "{err}");
    assert_eq!(p["value"], "2024-13-45", "{err}");
    assert_eq!(p["expected_type"], "DATE", "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // Many bad values: at most ten are listed.
    let mut csv = String::from("id,amount,day\n");
    for i in 10..35 {
        csv.push_str(&format!("{i},bad{i},2024-01-01\n"));
    }
    let err = load_csv(&app, &key, "t", &csv, json!({}))
        .await
        .expect_error(400);
    let problems = err["details"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 10, "{err}");
    assert_eq!(problems[0]["line"], 2, "{err}");
    assert_eq!(problems[0]["value"], "bad10", "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
}

#[tokio::test]
async fn malformed_csv_is_400_and_changes_nothing() {
    let (app, key) = setup().await;
    let before = typed_table(&app, &key).await;

    // A line with too few fields.
    let err = load_csv(
        &app,
        &key,
        "t",
        "id,amount,day\n2,1,2024-01-01\n3,1\n4,1,2024-01-01\n",
        json!({}),
    )
    .await
    .expect_error(400);
    let problems = err["details"]["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("problems missing: {err}"));
    assert_eq!(problems[0]["line"], 3, "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // An unterminated quote.
    load_csv(
        &app,
        &key,
        "t",
        "id,amount,day\n2,\"1,2024-01-01\n3,1,2024-01-02\n",
        json!({}),
    )
    .await
    .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // A full load with a key repeated in the file keeps the last occurrence, with a warning.
    let res = load_csv(
        &app,
        &key,
        "t",
        "id,amount,day\n7,1,2024-01-01\n7,2,2024-01-02\n",
        json!({"incremental": false}),
    )
    .await
    .expect(200);
    assert_eq!(res["table_rows_after"], 1, "{res}");
    assert!(!res["warnings"].as_array().unwrap().is_empty(), "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["7|2.00|2024-01-02"])
    );
}

#[tokio::test]
async fn a_csv_line_with_too_many_fields_is_a_problem_on_its_line() {
    let (app, key) = setup().await;
    let before = typed_table(&app, &key).await;
    let mut wrong = Vec::new();
    for csv in [
        "id,amount,day\n2,1,2024-01-01\n3,1,2024-01-01,extra\n",
        "id,amount,day\n2,1,2024-01-01\n3,1,2024-01-01,extra\n4,1,2024-01-02\n",
        "id,amount,day\n2,1,2024-01-01\n3,1,2024-01-02\n4,1,2024-01-03\n5,1,2024-01-01,x,y\n",
    ] {
        let err = load_csv(&app, &key, "t", csv, json!({}))
            .await
            .expect_error(400);
        assert_eq!(snapshot(&app, &key, "t").await, before);
        let expected = csv
            .lines()
            .position(|l| l.matches(',').count() > 2)
            .unwrap()
            + 1;
        if err["details"]["problems"][0]["line"] != expected {
            wrong.push(format!(
                "{csv:?}: expected a problem on line {expected}, got {err}"
            ));
        }
    }
    // Positional (no header): one long line among good ones is that line's problem.
    let csv = "2,1,2024-01-01\n3,1,2024-01-01,extra\n";
    let id = upload(&app, &key, "h.csv", csv.as_bytes()).await;
    let reply = import(
        &app,
        &key,
        "t",
        json!({"file_id": id, "csv_options": {"header": false}}),
    )
    .await;
    assert_eq!(snapshot(&app, &key, "t").await, before, "{csv:?}");
    if reply.status != 400 || reply.body["details"]["problems"][0]["line"] != 2 {
        wrong.push(format!(
            "header:false {csv:?}: expected 400 with a problem on line 2, got {} {}",
            reply.status, reply.body
        ));
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn an_empty_csv_imports_zero_rows_and_a_full_load_of_it_empties_the_table() {
    let (app, key) = setup().await;
    let before = typed_table(&app, &key).await;
    let res = upsert(&app, &key, "id,amount,day\n").await.expect(200);
    assert_eq!(res["imported_rows"], 0, "{res}");
    assert_eq!(res["table_rows_after"], 1, "{res}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
    let res = seed(&app, &key, "t", "id,amount,day\n").await;
    assert_eq!(res["imported_rows"], 0, "{res}");
    assert_eq!(res["table_rows_after"], 0, "{res}");
    assert_eq!(table_rows(&app, &key, "t").await, Vec::<String>::new());
}

#[tokio::test]
async fn unknown_files_formats_and_tables_are_refused() {
    let (app, key) = setup().await;
    let before = typed_table(&app, &key).await;
    let key2 = app.create_project("2").await;
    let foreign = upload_to(
        &app,
        "2",
        &key2,
        "x.csv",
        b"id,amount,day\n9,1,2024-01-01\n",
    )
    .await;
    let mine = upload(&app, &key, "x.csv", b"id,amount,day\n9,1,2024-01-01\n").await;

    import(&app, &key, "t", json!({"file_id": "no-such-file"}))
        .await
        .expect_error(404);
    import(&app, &key, "t", json!({"file_id": foreign}))
        .await
        .expect_error(404);
    import(&app, &key, "t", json!({"file_id": mine, "format": "xml"}))
        .await
        .expect_error(400);
    // A missing field is the wrong shape (422); an unknown dedup mode is a bad value (400).
    import(&app, &key, "t", json!({})).await.expect_error(422);
    import(
        &app,
        &key,
        "t",
        json!({"file_id": mine, "import_options": {"incremental": true, "dedup_mode": "sometimes"}}),
    )
    .await
    .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);
    import(&app, &key, "nope", json!({"file_id": mine}))
        .await
        .expect_error(404);
    // Another project's key cannot import into this project's table.
    import(&app, &key2, "t", json!({"file_id": foreign}))
        .await
        .expect_error(403);
    assert_eq!(snapshot(&app, &key, "t").await, before);
}
