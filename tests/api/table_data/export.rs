//! Table exports: CSV byte-for-byte round trips, Parquet types and codecs, columns, filters,
//! order and limits, streaming exports, both path styles; not imports' edge cases.

use super::*;

const TRICKY_CSV: &str = "id,name,amount,ts,flag,note\n\
1,\"Smith, John\",12.5,2024-01-02 03:04:05,true,plain\n\
2,\"He said \"\"hi\"\"\",0.1,2024-02-29 23:59:59,false,\"line1\nline2\"\n\
3,Žluťoučký kůň 🐎,,2024-12-31 00:00:00,,\n";

async fn tricky_table(app: &TestApp, key: &str) {
    app.create_table_t(
        key,
        &[
            ("id", "BIGINT"),
            ("name", "VARCHAR"),
            ("amount", "DECIMAL(12,2)"),
            ("ts", "TIMESTAMP"),
            ("flag", "BOOLEAN"),
            ("note", "VARCHAR"),
        ],
        &["id"],
    )
    .await;
}

/// GET returning status, content type and the body text (for streaming exports).
async fn get_text(app: &TestApp, key: &str, path: &str) -> (u16, String, String) {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ctype, res.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_tricky_csv_round_trips_through_import_and_csv_export_byte_for_byte() {
    let (app, key) = setup().await;
    tricky_table(&app, &key).await;
    let res = seed(&app, &key, "t", TRICKY_CSV).await;
    assert_eq!(res["imported_rows"], 3, "{res}");
    assert_eq!(res["table_rows_after"], 3, "{res}");
    assert!(res["table_size_bytes"].as_u64().unwrap() > 0, "{res}");
    assert_eq!(res["warnings"], json!([]), "{res}");
    assert_eq!(res["validate_only"], false, "{res}");
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&[
            "1|Smith, John|12.50|2024-01-02T03:04:05|true|plain",
            "2|He said \"hi\"|0.10|2024-02-29T23:59:59|false|line1\nline2",
            "3|Žluťoučký kůň 🐎|NULL|2024-12-31T00:00:00|NULL|NULL",
        ])
    );
    assert_eq!(
        app.get(&format!("{T}/t"), &key).await.expect(200)["row_count"],
        3
    );

    let expected = "id,name,amount,ts,flag,note\n\
1,\"Smith, John\",12.50,2024-01-02 03:04:05,true,plain\n\
2,\"He said \"\"hi\"\"\",0.10,2024-02-29 23:59:59,false,\"line1\nline2\"\n\
3,Žluťoučký kůň 🐎,,2024-12-31 00:00:00,,\n";
    let (out, bytes) = export_file(
        &app,
        &key,
        &format!("{T}/t"),
        json!({"format": "csv", "order_by": "id"}),
    )
    .await;
    assert_eq!(out["rows_exported"], 3, "{out}");
    assert_eq!(out["file_size_bytes"], expected.len(), "{out}");
    assert!(out["file_path"].is_string(), "{out}");
    assert_eq!(String::from_utf8_lossy(&bytes), expected);
    let id = out["file_id"].as_str().unwrap();

    // The export is an ordinary file: listed in the Files API and downloadable by range.
    let file = app
        .get(&format!("/projects/1/files/{id}"), &key)
        .await
        .expect(200);
    assert_eq!(file["size_bytes"], expected.len(), "{file}");
    let (status, part) = download_with(&app, &key, id, &[("Range", "bytes=0-6")]).await;
    assert_eq!(status, 206);
    assert_eq!(part, b"id,name");

    // Exporting the same rows again through the re-imported copy gives the same bytes.
    let again = upload(&app, &key, "again.csv", &bytes).await;
    import(&app, &key, "t", json!({"file_id": again}))
        .await
        .expect(200);
    let (_, bytes) = export_file(
        &app,
        &key,
        &format!("{T}/t"),
        json!({"format": "csv", "order_by": "id"}),
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&bytes), expected);
}

#[tokio::test]
async fn a_parquet_export_holds_the_same_rows_and_types_as_the_table() {
    let (app, key) = setup().await;
    tricky_table(&app, &key).await;
    seed(&app, &key, "t", TRICKY_CSV).await;
    let (out, bytes) =
        export_file(&app, &key, &format!("{T}/t"), json!({"format": "parquet"})).await;
    assert_eq!(out["rows_exported"], 3, "{out}");
    assert_eq!(out["file_size_bytes"], bytes.len(), "{out}");
    assert_eq!(&bytes[..4], b"PAR1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.parquet");
    std::fs::write(&path, &bytes).unwrap();
    let source = format!("read_parquet('{}')", sql_path(&path));
    assert_eq!(
        duck_types(&source),
        [
            "id BIGINT",
            "name VARCHAR",
            "amount DECIMAL(12,2)",
            "ts TIMESTAMP",
            "flag BOOLEAN",
            "note VARCHAR"
        ]
    );
    assert_eq!(
        duck_rows(&source, &["id", "name", "amount", "ts", "flag", "note"]),
        rows(&[
            "1|Smith, John|12.50|2024-01-02 03:04:05|true|plain",
            "2|He said \"hi\"|0.10|2024-02-29 23:59:59|false|line1\nline2",
            "3|Žluťoučký kůň 🐎|NULL|2024-12-31 00:00:00|NULL|NULL",
        ])
    );
}

#[tokio::test]
async fn exports_honour_columns_filter_order_limit_and_compression() {
    let (app, key) = setup_three_col_table(true).await;
    seed(
        &app,
        &key,
        "t",
        "id,name,amount\n1,a,1\n2,b,2\n3,c,3\n4,d,4\n5,e,5\n",
    )
    .await;
    let (out, bytes) = export_file(
        &app,
        &key,
        &format!("{T}/t"),
        json!({"format": "csv", "columns": ["id", "name"], "where_filter": "amount > 1",
                   "order_by": "id DESC", "limit": 3}),
    )
    .await;
    assert_eq!(out["rows_exported"], 3, "{out}");
    assert_eq!(String::from_utf8_lossy(&bytes), "id,name\n5,e\n4,d\n3,c\n");

    // Gzip CSV.
    let (out, bytes) = export_file(
        &app,
        &key,
        &format!("{T}/t"),
        json!({"format": "csv", "compression": "gzip", "order_by": "id"}),
    )
    .await;
    assert_eq!(out["rows_exported"], 5, "{out}");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv.gz");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        duck_rows(
            &format!(
                "read_csv('{}', header = true, all_varchar = true)",
                sql_path(&path)
            ),
            &["id", "name", "amount"]
        ),
        rows(&["1|a|1.00", "2|b|2.00", "3|c|3.00", "4|d|4.00", "5|e|5.00"])
    );

    // Every Parquet codec is readable.
    for codec in ["gzip", "zstd", "snappy", "none"] {
        let (out, bytes) = export_file(
            &app,
            &key,
            &format!("{T}/t"),
            json!({"format": "parquet", "compression": codec, "where_filter": "id <= 2"}),
        )
        .await;
        assert_eq!(out["rows_exported"], 2, "{codec}: {out}");
        let path = dir.path().join(format!("out-{codec}.parquet"));
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(
            duck_rows(
                &format!("read_parquet('{}')", sql_path(&path)),
                &["id", "name", "amount"]
            ),
            rows(&["1|a|1.00", "2|b|2.00"]),
            "{codec}"
        );
    }

    // Invalid options.
    let before = app.get("/projects/1/files", &key).await.expect(200)["total"].clone();
    for bad in [
        json!({"format": "csv", "compression": "zstd"}),
        json!({"format": "csv", "compression": "snappy"}),
        json!({"format": "parquet", "compression": "bogus"}),
        json!({"format": "xml"}),
        json!({"format": "csv", "columns": ["id", "nope"]}),
        json!({"format": "csv", "order_by": "nope"}),
        json!({"format": "csv", "where_filter": "nope = 1"}),
    ] {
        let err = app
            .post(&format!("{T}/t/export"), &key, bad.clone())
            .await
            .expect_error(400);
        if bad.get("columns").is_some() || bad["order_by"] == "nope" {
            assert!(message(&err).contains("nope"), "{bad}: {err}");
        }
    }
    assert_eq!(
        app.get("/projects/1/files", &key).await.expect(200)["total"],
        before,
        "failed exports leave no files"
    );
    app.post("/projects/1/buckets/b/tables/nope/export", &key, json!({}))
        .await
        .expect_error(404);
}

#[tokio::test]
async fn a_streaming_export_answers_csv_with_columns_filter_order_and_limit() {
    let (app, key) = setup_three_col_table(true).await;
    seed(
        &app,
        &key,
        "t",
        "id,name,amount\n1,a,1\n2,\"b, c\",2\n3,c,3\n4,d,\n5,e,5\n",
    )
    .await;
    let (status, ctype, body) =
        get_text(&app, &key, &format!("{T}/t/export?format=csv&order_by=id")).await;
    assert_eq!(status, 200, "{body}");
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    assert_eq!(
        body,
        "id,name,amount\n1,a,1.00\n2,\"b, c\",2.00\n3,c,3.00\n4,d,\n5,e,5.00\n"
    );
    let (status, _, body) = get_text(
        &app,
        &key,
        &format!(
            "{T}/t/export?format=csv&columns=id,name&where_filter={}&order_by={}&limit=2",
            enc("amount >= 2"),
            enc("id DESC")
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "id,name\n5,e\n3,c\n");
    // The reference path style streams too.
    let (status, _, body) = get_text(
        &app,
        &key,
        &format!(
            "{BT}/t/export?format=csv&columns=id&where_filter={}",
            enc("amount IS NULL")
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "id\n4\n");
    let (status, _, body) =
        get_text(&app, &key, &format!("{T}/t/export?format=csv&columns=nope")).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = get_text(
        &app,
        &key,
        &format!(
            "{T}/t/export?format=csv&where_filter={}",
            enc("1=1; DROP TABLE x")
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

/// Found by schemathesis: `?columns=` with no name made an empty select list and a 500.
#[tokio::test]
async fn an_empty_columns_parameter_exports_every_column() {
    let (app, key) = setup_three_col_table(true).await;
    seed(&app, &key, "t", "id,name,amount\n1,a,1\n").await;
    let (status, _, body) = get_text(
        &app,
        &key,
        &format!("{T}/t/export?format=csv&columns=&compression="),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "id,name,amount\n1,a,1.00\n");
}

#[tokio::test]
async fn imports_and_exports_work_on_the_reference_path_style() {
    let (app, key) = setup_kv_table(true).await;
    let id = upload(&app, &key, "a.csv", kv_csv(1..=3, "x").as_bytes()).await;
    let res = app
        .post(
            &format!("{BT}/t/import/file"),
            &key,
            json!({"file_id": id, "format": "csv"}),
        )
        .await
        .expect(200);
    assert_eq!(res["table_rows_after"], 3, "{res}");
    let (_, bytes) = export_file(
        &app,
        &key,
        &format!("{BT}/t"),
        json!({"format": "csv", "order_by": "id"}),
    )
    .await;
    assert_eq!(String::from_utf8_lossy(&bytes), kv_csv(1..=3, "x"));
}
