//! Table imports, how a file's columns meet the table's: header names in any order and case,
//! defaults, unknown and missing columns, positional files and CSV options; not load modes.

use super::*;

#[tokio::test]
async fn the_csv_header_maps_columns_by_name_in_any_order_and_case() {
    let (app, key) = setup_three_col_table(true).await;
    let res = seed(&app, &key, "t", "AMOUNT,Name,id\n1.5,a,1\n2,b,2\n").await;
    assert_eq!(res["imported_rows"], 2, "{res}");
    assert_t_rows(&app, &key, &["1|a|1.50", "2|b|2.00"]).await;
}

#[tokio::test]
async fn missing_columns_get_their_default_or_null() {
    let (app, key) = setup().await;
    create_t(
        &app,
        &key,
        json!([
            {"name": "id", "type": "BIGINT", "nullable": false},
            {"name": "name", "type": "VARCHAR"},
            {"name": "amount", "type": "DECIMAL(12,2)", "default": "0"},
            {"name": "status", "type": "VARCHAR", "nullable": false, "default": "'new'"}
        ]),
    )
    .await;
    seed(&app, &key, "t", "id\n1\n2\n").await;
    assert_t_rows(&app, &key, &["1|NULL|0.00|new", "2|NULL|0.00|new"]).await;
}

#[tokio::test]
async fn unknown_file_columns_and_missing_required_columns_are_400() {
    let (app, key) = setup().await;
    create_t(
        &app,
        &key,
        json!([
            {"name": "id", "type": "BIGINT", "nullable": false},
            {"name": "req", "type": "VARCHAR", "nullable": false},
            {"name": "opt", "type": "VARCHAR"}
        ]),
    )
    .await;
    seed(&app, &key, "t", "id,req,opt\n1,r,o\n").await;
    let before = snapshot(&app, &key, "t").await;

    let err = load_csv(&app, &key, "t", "id,req,bogus\n2,r,x\n", json!({}))
        .await
        .expect_error(400);
    assert_eq!(err["details"]["unknown_columns"], json!(["bogus"]), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    let err = load_csv(&app, &key, "t", "id,opt\n2,o\n", json!({}))
        .await
        .expect_error(400);
    assert_eq!(err["details"]["missing_columns"], json!(["req"]), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);

    let err = upsert(&app, &key, "id,opt\n2,o\n").await.expect_error(400);
    assert_eq!(err["details"]["missing_columns"], json!(["req"]), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
}

#[tokio::test]
async fn import_options_columns_import_only_the_listed_file_columns() {
    let (app, key) = setup_three_col_table(true).await;
    let res = load_csv(
        &app,
        &key,
        "t",
        "id,name,amount,junk\n1,a,9.99,zzz\n2,b,8,yyy\n",
        json!({"incremental": false, "columns": ["id", "name"]}),
    )
    .await
    .expect(200);
    assert_eq!(res["imported_rows"], 2, "{res}");
    assert_t_rows(&app, &key, &["1|a|NULL", "2|b|NULL"]).await;
}

#[tokio::test]
async fn without_a_header_columns_are_positional_and_must_match_in_count() {
    let (app, key) = setup_three_col_table(false).await;
    let headerless = |csv: &str, columns: Value| {
        let csv = csv.to_string();
        let app = &app;
        let key = &key;
        async move {
            let id = upload(app, key, "h.csv", csv.as_bytes()).await;
            import(
                app,
                key,
                "t",
                json!({"file_id": id, "csv_options": {"header": false},
                       "import_options": {"incremental": true, "columns": columns}}),
            )
            .await
        }
    };
    let res = headerless("1,a,1.5\n2,b,2\n", Value::Null)
        .await
        .expect(200);
    assert_eq!(res["imported_rows"], 2, "{res}");
    let before = snapshot(&app, &key, "t").await;
    assert_eq!(before.1, rows(&["1|a|1.50", "2|b|2.00"]));

    headerless("3,c\n", Value::Null).await.expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);
    headerless("3,c,1,extra\n", Value::Null)
        .await
        .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    headerless("5,e,1\n6,f,2,extra\n7,g,3\n", Value::Null)
        .await
        .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    headerless("3,c\n", json!(["id", "name"])).await.expect(200);
    assert_t_rows(&app, &key, &["1|a|1.50", "2|b|2.00", "3|c|NULL"]).await;
    let before = snapshot(&app, &key, "t").await;
    headerless("4,d,9\n", json!(["id", "name"]))
        .await
        .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);
}

#[tokio::test]
async fn csv_options_set_delimiter_quote_escape_and_null_string() {
    let (app, key) = setup_three_col_table(true).await;
    let id = upload(
        &app,
        &key,
        "semi.csv",
        b"id;name;amount\n1;\"a;b\";NA\n2;\"x\\\"y\";3.5\n",
    )
    .await;
    import(
        &app,
        &key,
        "t",
        json!({"file_id": id, "format": "csv",
               "csv_options": {"delimiter": ";", "quote": "\"", "escape": "\\", "header": true, "null_string": "NA"}}),
    )
    .await
    .expect(200);
    assert_t_rows(&app, &key, &["1|a;b|NULL", "2|x\"y|3.50"]).await;
    let id = upload(&app, &key, "single.csv", b"id|name|amount\n3|'q|r'|1\n").await;
    import(
        &app,
        &key,
        "t",
        json!({"file_id": id, "csv_options": {"delimiter": "|", "quote": "'"},
               "import_options": {"incremental": true, "dedup_mode": "update_duplicates"}}),
    )
    .await
    .expect(200);
    assert_t_rows(&app, &key, &["1|a;b|NULL", "2|x\"y|3.50", "3|q|r|1.00"]).await;
}

#[tokio::test]
async fn a_csv_with_a_byte_order_mark_and_crlf_line_ends_imports_cleanly() {
    let (app, key) = setup_three_col_table(true).await;
    let id = upload(
        &app,
        &key,
        "win.csv",
        "\u{feff}id,name,amount\r\n1,\"a\r\nb\",1.5\r\n2,ü,2\r\n".as_bytes(),
    )
    .await;
    let res = import(&app, &key, "t", json!({"file_id": id}))
        .await
        .expect(200);
    assert_eq!(res["imported_rows"], 2, "{res}");
    assert_t_rows(&app, &key, &["1|a\r\nb|1.50", "2|ü|2.00"]).await;
}

/// Creates table `t` keyed by `id` with the given columns.
async fn create_t(app: &TestApp, key: &str, columns: Value) {
    app.post(
        T,
        key,
        json!({"name": "t", "primary_key": ["id"], "columns": columns}),
    )
    .await
    .expect(201);
}

/// Asserts the rows of table `t`.
async fn assert_t_rows(app: &TestApp, key: &str, expected: &[&str]) {
    assert_eq!(table_rows(app, key, "t").await, rows(expected));
}
