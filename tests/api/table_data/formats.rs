//! Table imports of the other file formats: gzip CSV by sniffing, JSONL (good, bad and invalid
//! lines) and Parquet; not CSV options or load modes.

use super::*;

#[tokio::test]
async fn a_gzip_csv_without_a_gz_name_is_sniffed_and_imported() {
    let (app, key) = setup_kv_table(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.csv.gz");
    duck_exec(&format!(
        "COPY (SELECT i AS id, 'name ' || i AS v FROM range(1, 1001) r(i)) TO '{}' \
         (FORMAT csv, HEADER, COMPRESSION gzip)",
        sql_path(&path)
    ));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
    let id = upload(&app, &key, "plain-name.csv", &bytes).await;
    let res = import(&app, &key, "t", json!({"file_id": id, "format": "csv"}))
        .await
        .expect(200);
    assert_eq!(res["imported_rows"], 1000, "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        sorted(kv_rows(1..=1000, "name "))
    );
}

#[tokio::test]
async fn jsonl_is_imported_by_key_with_missing_keys_as_null() {
    let (app, key) = setup().await;
    app.create_table_t(
        &key,
        &[
            ("id", "BIGINT"),
            ("name", "VARCHAR"),
            ("amount", "DECIMAL(12,2)"),
            ("flag", "BOOLEAN"),
        ],
        &["id"],
    )
    .await;
    let data = "{\"id\": 1, \"name\": \"a\", \"amount\": 1.5, \"flag\": true}\n\
{\"name\": \"b \\\"q\\\" ü\", \"id\": 2}\n\
{\"id\": 3, \"amount\": 2.25, \"flag\": null, \"name\": null}\n";
    let id = upload(&app, &key, "data.jsonl", data.as_bytes()).await;
    import_three(
        &app,
        &key,
        &id,
        "jsonl",
        &["1|a|1.50|true", "2|b \"q\" ü|NULL|NULL", "3|NULL|2.25|NULL"],
    )
    .await;
}

#[tokio::test]
async fn bad_jsonl_is_400_with_the_line_and_changes_nothing() {
    let (app, key) = setup_kv_table(true).await;
    seed(&app, &key, "t", "id,v\n1,a\n").await;
    let before = snapshot(&app, &key, "t").await;
    for (data, line) in [("{\"id\": 2, \"v\": \"b\"}\n[1, 2]\n{\"id\": 3}\n", 2)] {
        let id = upload(&app, &key, "bad.jsonl", data.as_bytes()).await;
        let err = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"}))
            .await
            .expect_error(400);
        assert_eq!(
            err["details"]["problems"][0]["line"], line,
            "{data:?}: {err}"
        );
        assert_eq!(snapshot(&app, &key, "t").await, before);
    }
    // Unknown keys are unknown columns.
    let id = upload(&app, &key, "bad.jsonl", b"{\"id\": 2, \"bogus\": 1}\n").await;
    let err = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"}))
        .await
        .expect_error(400);
    assert_eq!(err["details"]["unknown_columns"], json!(["bogus"]), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
    // A value of the wrong type.
    let id = upload(&app, &key, "bad.jsonl", b"{\"id\": 2}\n{\"id\": \"abc\"}\n").await;
    let err = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"}))
        .await
        .expect_error(400);
    assert_eq!(err["details"]["problems"][0]["line"], 2, "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
    assert_eq!(err["details"]["problems"][0]["column"], "id", "{err}");
}

#[tokio::test]
async fn invalid_json_lines_are_reported_on_their_own_line() {
    let (app, key) = setup_kv_table(true).await;
    seed(&app, &key, "t", "id,v\n1,a\n").await;
    let before = snapshot(&app, &key, "t").await;
    let mut wrong = Vec::new();
    for (data, line) in [
        ("{\"id\": 2}\n{\"id\": 3}\n{\"id\":\n", 3),
        ("not json at all\n", 1),
        ("{\"id\": 2}\nnot json at all", 2),
        ("{\"id\": 2}\nnot json at all\n{\"id\": 3}\n", 2),
    ] {
        let id = upload(&app, &key, "bad.jsonl", data.as_bytes()).await;
        let reply = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"})).await;
        if reply.status != 400 {
            wrong.push(format!(
                "{data:?}: expected 400, got {} {}",
                reply.status, reply.body
            ));
            seed(&app, &key, "t", "id,v\n1,a\n").await;
            continue;
        }
        let err = reply.expect_error(400);
        assert_eq!(snapshot(&app, &key, "t").await, before);
        if err["details"]["problems"][0]["line"] != line {
            wrong.push(format!("{data:?}: expected line {line}, got {err}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // DuckDB's JSON parser tolerates a trailing comma inside an object; such a line is still
    // one object per line, so it is imported (README: JSONL).
    let id = upload(&app, &key, "lenient.jsonl", b"{\"id\": 2}\n{\"id\": 3,}\n").await;
    let done = import(&app, &key, "t", json!({"file_id": id, "format": "jsonl"}))
        .await
        .expect(200);
    assert_eq!(done["imported_rows"], 2, "{done}");
}

#[tokio::test]
async fn parquet_is_imported_by_column_name_and_uncastable_values_are_400() {
    let (app, key) = setup_three_col_table(true).await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    duck_exec(&format!(
        "COPY (SELECT 'p' || i AS name, i::INTEGER AS id, (i * 1.5)::DOUBLE AS amount \
         FROM range(1, 4) r(i)) TO '{}' (FORMAT parquet)",
        sql_path(&good)
    ));
    let id = upload(&app, &key, "good.parquet", &std::fs::read(&good).unwrap()).await;
    import_three(
        &app,
        &key,
        &id,
        "parquet",
        &["1|p1|1.50", "2|p2|3.00", "3|p3|4.50"],
    )
    .await;
    let before = snapshot(&app, &key, "t").await;

    let bad = dir.path().join("bad.parquet");
    duck_exec(&format!(
        "COPY (SELECT * FROM (VALUES ('10', 'x', '1'), ('abc', 'y', '2')) v(id, name, amount)) \
         TO '{}' (FORMAT parquet)",
        sql_path(&bad)
    ));
    let id = upload(&app, &key, "bad.parquet", &std::fs::read(&bad).unwrap()).await;
    for options in [
        json!({"incremental": false}),
        incremental("update_duplicates"),
    ] {
        import(
            &app,
            &key,
            "t",
            json!({"file_id": id, "format": "parquet", "import_options": options}),
        )
        .await
        .expect_error(400);
        assert_eq!(snapshot(&app, &key, "t").await, before);
    }
    // Not a Parquet file at all.
    let id = upload(&app, &key, "fake.parquet", b"id,name\n1,a\n").await;
    import(&app, &key, "t", json!({"file_id": id, "format": "parquet"}))
        .await
        .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);
}

/// Imports file `id` in `format` into `t`, expecting three rows that read `expected`.
async fn import_three(app: &TestApp, key: &str, id: &str, format: &str, expected: &[&str]) {
    let res = import(app, key, "t", json!({"file_id": id, "format": format}))
        .await
        .expect(200);
    assert_eq!(res["imported_rows"], 3, "{res}");
    assert_eq!(table_rows(app, key, "t").await, rows(expected));
}

#[tokio::test]
async fn infinite_dates_and_timestamps_import_preview_and_filter_without_overflow() {
    let (app, key) = setup().await;
    app.create_table(
        "1",
        &key,
        "b",
        "when",
        &[
            ("id", "BIGINT"),
            ("d", "DATE"),
            ("ts", "TIMESTAMP"),
            ("tz", "TIMESTAMPTZ"),
        ],
        &["id"],
    )
    .await;
    let csv = "id,d,ts,tz\n\
               1,infinity,infinity,infinity\n\
               2,-infinity,-infinity,-infinity\n\
               3,2024-02-29,2024-02-29 12:00:00,2024-02-29 12:00:00+00\n";
    load_csv(&app, &key, "when", csv, json!({}))
        .await
        .expect(200);
    let body = app
        .get(&format!("{T}/when/preview?order_by=id"), &key)
        .await
        .expect(200);
    let rows = &body["rows"];
    assert_eq!(rows[0]["d"], "infinity", "{body}");
    assert_eq!(rows[0]["ts"], "infinity", "{body}");
    assert_eq!(rows[0]["tz"], "infinity", "{body}");
    assert_eq!(rows[1]["d"], "-infinity", "{body}");
    assert_eq!(rows[1]["ts"], "-infinity", "{body}");
    assert_eq!(rows[2]["d"], "2024-02-29", "{body}");
    assert_eq!(rows[2]["ts"], "2024-02-29T12:00:00", "{body}");
    // Special values work as filter values too.
    let body = app
        .get(
            &format!("{T}/when/preview?where_filter={}", enc("d = 'infinity'")),
            &key,
        )
        .await
        .expect(200);
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["rows"][0]["id"], 1, "{body}");
}
