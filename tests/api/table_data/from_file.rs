//! Creating a table from a file: inferred or all-VARCHAR types from CSV, Parquet and JSONL,
//! and failures that leave no table behind; not imports into existing tables.

use super::*;

const INFER_CSV: &str = "id,amount,day,ts,name,flag\n\
1,1.5,2024-01-02,2024-01-02 03:04:05,alpha,true\n\
2,2.25,2024-02-03,2024-02-03 04:05:06,beta,false\n";

/// Creates a table in bucket b of project 1 from a file.
async fn from_file(app: &TestApp, key: &str, body: Value) -> Reply {
    app.post("/projects/1/buckets/b/tables/from-file", key, body)
        .await
}

/// Creates a table from a file, expecting 201.
async fn created(app: &TestApp, key: &str, body: Value) -> Value {
    from_file(app, key, body).await.expect(201)
}

#[tokio::test]
async fn a_table_created_from_a_csv_has_inferred_types_and_the_rows() {
    let (app, key) = setup().await;
    let id = upload(&app, &key, "infer.csv", INFER_CSV.as_bytes()).await;
    let body = created(
        &app,
        &key,
        json!({"name": "inferred", "file_id": id, "format": "csv", "primary_key": ["id"]}),
    )
    .await;
    assert_eq!(body["name"], "inferred", "{body}");
    assert_eq!(body["bucket"], "b", "{body}");
    assert_eq!(body["row_count"], 2, "{body}");
    assert_eq!(body["imported_rows"], 2, "{body}");
    assert_eq!(body["primary_key"], json!(["id"]), "{body}");
    assert!(body["warnings"].is_array(), "{body}");
    assert!(body["created_at"].is_string(), "{body}");
    assert!(body["size_bytes"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(
        column_types(&body),
        [
            "id BIGINT",
            "amount DOUBLE",
            "day DATE",
            "ts TIMESTAMP",
            "name VARCHAR",
            "flag BOOLEAN"
        ]
    );
    for (i, c) in body["columns"].as_array().unwrap().iter().enumerate() {
        assert_eq!(c["ordinal_position"], i + 1, "{c}");
    }
    assert_eq!(
        table_rows(&app, &key, "inferred").await,
        rows(&[
            "1|1.5|2024-01-02|2024-01-02T03:04:05|alpha|true",
            "2|2.25|2024-02-03|2024-02-03T04:05:06|beta|false"
        ])
    );
    // The table is an ordinary table.
    let t = app.get(&format!("{T}/inferred"), &key).await.expect(200);
    assert_eq!(column_types(&t), column_types(&body));
    // The name is taken now.
    from_file(&app, &key, json!({"name": "inferred", "file_id": id}))
        .await
        .expect_error(409);
    assert_eq!(
        table_rows(&app, &key, "inferred").await.len(),
        2,
        "the existing table is untouched"
    );
}

#[tokio::test]
async fn all_varchar_creates_text_columns_with_the_raw_values() {
    let (app, key) = setup().await;
    let id = upload(&app, &key, "infer.csv", INFER_CSV.as_bytes()).await;
    let body = app
        .post(
            &format!("{}/from-file", BT),
            &key,
            json!({"name": "raw", "file_id": id, "all_varchar": true}),
        )
        .await
        .expect(201);
    assert_eq!(
        column_types(&body),
        [
            "id VARCHAR",
            "amount VARCHAR",
            "day VARCHAR",
            "ts VARCHAR",
            "name VARCHAR",
            "flag VARCHAR"
        ]
    );
    assert_eq!(body["primary_key"], json!([]), "{body}");
    assert_eq!(
        table_rows(&app, &key, "raw").await,
        rows(&[
            "1|1.5|2024-01-02|2024-01-02 03:04:05|alpha|true",
            "2|2.25|2024-02-03|2024-02-03 04:05:06|beta|false"
        ])
    );
}

#[tokio::test]
async fn a_table_can_be_created_from_parquet_and_jsonl() {
    let (app, key) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.parquet");
    duck_exec(&format!(
        "COPY (SELECT i::INTEGER AS id, 'n' || i AS name, i / 2 AS half FROM range(1, 4) r(i)) \
         TO '{}' (FORMAT parquet)",
        sql_path(&path)
    ));
    let id = upload(&app, &key, "x.parquet", &std::fs::read(&path).unwrap()).await;
    let body = created(
        &app,
        &key,
        json!({"name": "pq", "file_id": id, "format": "parquet"}),
    )
    .await;
    assert_eq!(
        column_types(&body),
        ["id INTEGER", "name VARCHAR", "half DOUBLE"]
    );
    assert_eq!(body["imported_rows"], 3, "{body}");
    assert_eq!(
        table_rows(&app, &key, "pq").await,
        rows(&["1|n1|0.5", "2|n2|1.0", "3|n3|1.5"])
    );

    let id = upload(
        &app,
        &key,
        "x.jsonl",
        b"{\"id\": 1, \"tag\": \"a\"}\n{\"id\": 2, \"tag\": \"b\"}\n",
    )
    .await;
    let body = created(
        &app,
        &key,
        json!({"name": "js", "file_id": id, "format": "jsonl", "primary_key": ["id"]}),
    )
    .await;
    assert_eq!(column_types(&body), ["id BIGINT", "tag VARCHAR"]);
    assert_eq!(table_rows(&app, &key, "js").await, rows(&["1|a", "2|b"]));
}

#[tokio::test]
async fn create_from_file_failures_leave_no_table_behind() {
    let (app, key) = setup().await;
    let id = upload(&app, &key, "infer.csv", INFER_CSV.as_bytes()).await;
    let dup = upload(&app, &key, "dup.csv", b"id,v\n1,a\n2,b\n1,c\n").await;
    let err = refused_leaving_no_table(&app, &key, "t1", &id, "nope", 400).await;
    assert!(message(&err).contains("nope"), "{err}");

    let err = refused_leaving_no_table(&app, &key, "t2", &dup, "id", 409).await;
    assert!(err["details"].to_string().contains('1'), "{err}");
    assert!(!app.data_dir.join("duckdb/project_1/b/t2.duckdb").exists());
    // The name is free: the same file without a primary key works.
    let body = from_file(&app, &key, json!({"name": "t2", "file_id": dup}))
        .await
        .expect(201);
    assert_eq!(body["row_count"], 3, "{body}");

    from_file(&app, &key, json!({"name": "t3", "file_id": "no-such-file"}))
        .await
        .expect_error(404);
    from_file(&app, &key, json!({"name": "bad name!", "file_id": id}))
        .await
        .expect_error(400);
    app.post(
        "/projects/1/buckets/nope/tables/from-file",
        &key,
        json!({"name": "t4", "file_id": id}),
    )
    .await
    .expect_error(404);
    let list = app.get(T, &key).await.expect(200);
    assert_eq!(list["total"], 1, "{list}");
}

/// Creates table `name` from `file_id` with primary key `pk`, expects the refusal `status`, and
/// checks that no table of that name was left behind; the error body.
async fn refused_leaving_no_table(
    app: &TestApp,
    key: &str,
    name: &str,
    file_id: &str,
    pk: &str,
    status: u16,
) -> Value {
    let body = json!({"name": name, "file_id": file_id, "primary_key": [pk]});
    let err = from_file(app, key, body).await.expect_error(status);
    app.get(&format!("{T}/{name}"), key).await.expect_error(404);
    err
}
