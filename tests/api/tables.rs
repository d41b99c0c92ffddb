//! Buckets and tables: create, list, get, delete, preview with JSON-faithful values.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn buckets_can_be_created_listed_fetched_and_deleted() {
    let (app, key) = spawn_app_with_project().await;
    let body = app
        .post(
            "/projects/1/buckets",
            &key,
            json!({"name": "in_c_sales", "description": "Sales"}),
        )
        .await
        .expect(201);
    assert_eq!(body["name"], "in_c_sales");
    assert_eq!(body["table_count"], 0);
    assert_eq!(body["description"], "Sales");
    assert!(app.data_dir.join("duckdb/project_1/in_c_sales").is_dir());
    let list = app.get("/projects/1/buckets", &key).await.expect(200);
    assert_eq!(list["total"], 1);
    assert_eq!(list["buckets"][0]["name"], "in_c_sales");
    app.get("/projects/1/buckets/in_c_sales", &key)
        .await
        .expect(200);
    app.post("/projects/1/buckets", &key, json!({"name": "in_c_sales"}))
        .await
        .expect_error(409);
    app.delete("/projects/1/buckets/in_c_sales", &key)
        .await
        .expect(204);
    app.get("/projects/1/buckets/in_c_sales", &key)
        .await
        .expect_error(404);
    assert!(!app.data_dir.join("duckdb/project_1/in_c_sales").exists());
}

#[tokio::test]
async fn a_table_is_one_duckdb_file_with_its_rows_in_main_data() {
    let mut app = spawn_app().await;
    let key = app.create_project("1").await;
    app.create_bucket("1", &key, "b").await;
    let body = app
        .post(
            "/projects/1/buckets/b/tables",
            &key,
            json!({
                "name": "orders",
                "columns": [
                    {"name": "id", "type": "INTEGER", "nullable": false},
                    {"name": "customer", "type": "VARCHAR"},
                    {"name": "amount", "type": "DECIMAL(10,2)", "default": "0"}
                ],
                "primary_key": ["id"]
            }),
        )
        .await
        .expect(201);
    assert_eq!(body["name"], "orders");
    assert_eq!(body["bucket"], "b");
    assert_eq!(body["row_count"], 0);
    assert_eq!(body["primary_key"], json!(["id"]));
    assert_eq!(body["source"], "main");
    assert!(body["created_at"].is_string());
    assert!(body["size_bytes"].as_u64().unwrap() > 0);
    let cols = body["columns"].as_array().unwrap();
    assert_eq!(cols.len(), 3);
    assert_eq!(
        cols[0],
        json!({"name": "id", "type": "INTEGER", "nullable": false, "ordinal_position": 1})
    );
    assert_eq!(cols[2]["type"], "DECIMAL(10,2)");
    assert_eq!(cols[2]["ordinal_position"], 3);

    app.stop().await;
    let path = app.data_dir.join("duckdb/project_1/b/orders.duckdb");
    let conn = duckdb::Connection::open(&path).unwrap();
    conn.execute_batch("INSERT INTO main.data (id, customer) VALUES (1, 'x')")
        .unwrap();
    let amount: String = conn
        .query_row("SELECT amount::VARCHAR FROM main.data", [], |r| r.get(0))
        .unwrap();
    assert_eq!(amount, "0.00");
    let dup = conn.execute_batch("INSERT INTO main.data VALUES (1, 'y', 1)");
    assert!(dup.is_err(), "the primary key is enforced in the file");
}

#[tokio::test]
async fn tables_are_listed_and_deleted_with_their_files() {
    let (app, key) = spawn_app_with_project().await;
    app.create_bucket("1", &key, "b").await;
    app.create_table("1", &key, "b", "t1", &[("id", "BIGINT")], &[])
        .await;
    app.create_table("1", &key, "b", "t2", &[("id", "BIGINT")], &[])
        .await;
    let list = app
        .get("/projects/1/buckets/b/tables", &key)
        .await
        .expect(200);
    assert_eq!(list["total"], 2);
    assert_eq!(list["tables"][1]["name"], "t2");
    assert_eq!(
        app.get("/projects/1/buckets/b", &key).await.expect(200)["table_count"],
        2
    );
    app.delete("/projects/1/buckets/b/tables/t1", &key)
        .await
        .expect(204);
    assert!(!app.data_dir.join("duckdb/project_1/b/t1.duckdb").exists());
    app.get("/projects/1/buckets/b/tables/t1", &key)
        .await
        .expect_error(404);
    app.delete("/projects/1/buckets/b/tables/t1", &key)
        .await
        .expect_error(404);
    // The name can be reused.
    app.create_table("1", &key, "b", "t1", &[("x", "VARCHAR")], &[])
        .await;
}

#[tokio::test]
async fn a_non_empty_bucket_is_deleted_only_when_forced_on_seed_paths() {
    let app = spawn_app().await;
    let key = app.project_with_table(&[("id", "INTEGER")], &[]).await;
    let err = app
        .delete("/projects/1/buckets/b", &key)
        .await
        .expect_error(409);
    assert_eq!(err["details"]["tables"], json!(["t"]));
    assert!(app.data_dir.join("duckdb/project_1/b/t.duckdb").exists());
    app.delete("/projects/1/buckets/b?force=true", &key)
        .await
        .expect(204);
    assert!(!app.data_dir.join("duckdb/project_1/b").exists());
}

#[tokio::test]
async fn branch_first_paths_address_the_same_buckets_and_cascade_like_the_reference() {
    let (app, key) = spawn_app_with_project().await;
    app.post(
        "/projects/1/branches/default/buckets",
        &key,
        json!({"name": "b"}),
    )
    .await
    .expect(201);
    app.create_table_t(&key, &[("id", "INTEGER")], &[]).await;
    let body = app
        .get("/projects/1/branches/default/buckets/b/tables/t", &key)
        .await
        .expect(200);
    assert_eq!(body["name"], "t");
    app.delete("/projects/1/branches/default/buckets/b?cascade=false", &key)
        .await
        .expect_error(409);
    app.delete("/projects/1/branches/default/buckets/b", &key)
        .await
        .expect(204);
    app.get("/projects/1/buckets/b", &key)
        .await
        .expect_error(404);
    app.get("/projects/1/branches/dev-1/buckets", &key)
        .await
        .expect_error(404);
}

#[tokio::test]
async fn preview_returns_json_faithful_values() {
    let app = spawn_app().await;
    let key = app
        .project_with_table(
            &[
                ("id", "BIGINT"),
                ("name", "VARCHAR"),
                ("amount", "DECIMAL(18,2)"),
                ("ratio", "DOUBLE"),
                ("ts", "TIMESTAMP"),
                ("day", "DATE"),
                ("flag", "BOOLEAN"),
                ("big", "HUGEINT"),
                ("tags", "VARCHAR[]"),
                ("uid", "UUID"),
            ],
            &["id"],
        )
        .await;
    let app = app.fill_table("INSERT INTO main.data VALUES \
             (1, 'a', 12345678901234.10, 0.5, '2024-01-15 10:30:00', '2024-01-15', true, \
              170141183460469231731687303715884105727, ['x','y'], '00000000-0000-0000-0000-000000000001'), \
             (2, NULL, NULL, NULL, '2024-01-15 10:30:00.123456', NULL, false, -1, [], NULL)").await;
    let res = app
        .call(
            reqwest::Method::GET,
            "/projects/1/buckets/b/tables/t/preview",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(res.status, 200);
    let body = res.body;
    assert_eq!(body["total_row_count"], 2);
    assert_eq!(body["preview_row_count"], 2);
    assert_eq!(body["columns"].as_array().unwrap().len(), 10);
    let r0 = &body["rows"][0];
    assert_eq!(r0["id"], 1);
    assert_eq!(r0["name"], "a");
    assert_eq!(r0["ratio"], 0.5);
    assert_eq!(r0["ts"], "2024-01-15T10:30:00");
    assert_eq!(r0["day"], "2024-01-15");
    assert_eq!(r0["flag"], true);
    assert_eq!(r0["tags"], json!(["x", "y"]));
    assert_eq!(r0["uid"], "00000000-0000-0000-0000-000000000001");
    let r1 = &body["rows"][1];
    assert_eq!(r1["name"], serde_json::Value::Null);
    assert_eq!(r1["amount"], serde_json::Value::Null);
    assert_eq!(r1["ts"], "2024-01-15T10:30:00.123456");

    // Exactness is checked on the raw text: no float drift in decimals or huge integers.
    let raw = app
        .client
        .get(app.url("/projects/1/buckets/b/tables/t/preview"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.contains("\"amount\":12345678901234.10"), "{raw}");
    assert!(
        raw.contains("\"big\":170141183460469231731687303715884105727"),
        "{raw}"
    );
}

#[tokio::test]
async fn preview_honours_limit_and_column_selection() {
    let app = spawn_app().await;
    let key = app
        .project_with_table(&[("id", "INTEGER"), ("v", "VARCHAR")], &[])
        .await;
    let app = app
        .fill_table("INSERT INTO main.data SELECT i, 'v' || i FROM range(250) r(i)")
        .await;
    let body = app
        .get("/projects/1/buckets/b/tables/t/preview", &key)
        .await
        .expect(200);
    assert_eq!(
        body["preview_row_count"], 100,
        "seed paths default to 100 rows"
    );
    assert_eq!(body["total_row_count"], 250);
    let body = app
        .get(
            "/projects/1/branches/default/buckets/b/tables/t/preview",
            &key,
        )
        .await
        .expect(200);
    assert_eq!(
        body["preview_row_count"], 250,
        "reference paths default to 1000 rows"
    );
    let body = app
        .get(
            "/projects/1/buckets/b/tables/t/preview?limit=3&columns=v",
            &key,
        )
        .await
        .expect(200);
    assert_eq!(body["preview_row_count"], 3);
    assert_eq!(body["rows"][2], json!({"v": "v2"}));
    assert_eq!(body["columns"].as_array().unwrap().len(), 1);
    app.get(
        "/projects/1/buckets/b/tables/t/preview?columns=id,nope",
        &key,
    )
    .await
    .expect_error(400);
    app.get("/projects/1/buckets/b/tables/t/preview?limit=10001", &key)
        .await
        .expect_error(422);
}

#[tokio::test]
async fn row_count_reflects_rows_written_to_the_file() {
    let app = spawn_app().await;
    let key = app.project_with_table(&[("id", "INTEGER")], &[]).await;
    let app = app
        .fill_table("INSERT INTO main.data SELECT * FROM range(42)")
        .await;
    let body = app
        .get("/projects/1/buckets/b/tables/t", &key)
        .await
        .expect(200);
    assert_eq!(body["row_count"], 42);
    let list = app
        .get("/projects/1/buckets/b/tables", &key)
        .await
        .expect(200);
    assert_eq!(list["tables"][0]["row_count"], 42);
}

#[tokio::test]
async fn a_default_that_does_not_convert_is_a_400_and_leaves_no_file() {
    let (app, key) = spawn_app_with_project().await;
    app.create_bucket("1", &key, "b").await;
    let err = app
        .post(
            "/projects/1/buckets/b/tables",
            &key,
            json!({"name": "t", "columns": [{"name": "n", "type": "INTEGER", "default": "'abc'"}]}),
        )
        .await
        .expect_error(400);
    assert!(
        err["message"].as_str().unwrap().contains("rejected"),
        "{err}"
    );
    assert!(!app.data_dir.join("duckdb/project_1/b/t.duckdb").exists());
    app.get("/projects/1/buckets/b/tables/t", &key)
        .await
        .expect_error(404);
}

#[tokio::test]
async fn tables_beyond_the_attach_cache_stay_usable() {
    let app = spawn_app_configured(|c| c.table_cache_size = 2).await;
    let key = app.create_project("1").await;
    app.create_bucket("1", &key, "b").await;
    for i in 0..6 {
        app.create_table("1", &key, "b", &format!("t{i}"), &[("id", "INTEGER")], &[])
            .await;
    }
    for round in 0..2 {
        for i in 0..6 {
            let body = app
                .get(&format!("/projects/1/buckets/b/tables/t{i}/preview"), &key)
                .await
                .expect(200);
            assert_eq!(body["total_row_count"], 0, "round {round}, table t{i}");
        }
    }
    let list = app
        .get("/projects/1/buckets/b/tables", &key)
        .await
        .expect(200);
    assert_eq!(list["total"], 6);
}

/// Query parameters of one preview request.
type Params<'a> = &'a [(&'a str, &'a str)];

/// GET the preview of `t` with `params` (URL-encoded here): status and body.
async fn preview_with(app: &TestApp, key: &str, params: Params<'_>) -> (u16, Value) {
    let url =
        reqwest::Url::parse_with_params(&app.url("/projects/1/buckets/b/tables/t/preview"), params)
            .expect("preview url");
    let res = app
        .client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json body"))
}

/// The ids of the preview rows matching `params`, sorted.
async fn preview_ids(app: &TestApp, key: &str, params: Params<'_>) -> Vec<i64> {
    let (status, body) = preview_with(app, key, params).await;
    assert_eq!(status, 200, "{params:?}: {body}");
    let mut ids: Vec<i64> = body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn json_columns_preview_as_json_values_and_filter_by_text_or_value() {
    let app = spawn_app().await;
    let key = app
        .project_with_table(&[("id", "INTEGER"), ("doc", "JSON")], &[])
        .await;
    let app = app.fill_table(r#"INSERT INTO data VALUES (1, '{"a": 1, "tags": ["x"]}'), (2, '"x"'), (3, '5'), (4, NULL)"#).await;

    // A JSON column comes back as the JSON value it holds, not as its text.
    let body = app
        .get("/projects/1/buckets/b/tables/t/preview?order_by=id", &key)
        .await
        .expect(200);
    assert_eq!(
        body["rows"][0]["doc"],
        json!({"a": 1, "tags": ["x"]}),
        "{body}"
    );
    assert_eq!(body["rows"][1]["doc"], "x", "{body}");
    assert_eq!(body["rows"][2]["doc"], 5, "{body}");
    assert_eq!(body["rows"][3]["doc"], Value::Null, "{body}");

    // Filters take the JSON text (spacing does not matter) or the value itself.
    let text = r#"{"a":1,"tags":["x"]}"#;
    let text_filter = format!("doc = '{text}'");
    let text_condition = json!([{ "column": "doc", "value": text }]).to_string();
    let value_condition =
        json!([{ "column": "doc", "value": {"a": 1, "tags": ["x"]} }]).to_string();
    let object_cases: [Params; 5] = [
        &[("where_filter", r#"doc = '{"a": 1,  "tags": ["x"]}'"#)],
        &[("where_filter", &text_filter)],
        &[("filters", &text_condition)],
        &[("filters", &value_condition)],
        &[("whereColumn", "doc"), ("whereValues", text)],
    ];
    for params in object_cases {
        assert_eq!(preview_ids(&app, &key, params).await, [1], "{params:?}");
    }
    // A JSON string: as JSON text ("x" with quotes) or as the plain value x.
    let string_cases: [Params; 4] = [
        &[("where_filter", r#"doc = '"x"'"#)],
        &[("where_filter", "doc = 'x'")],
        &[("filters", r#"[{"column":"doc","value":"x"}]"#)],
        &[("whereColumn", "doc"), ("whereValues", "x")],
    ];
    for params in string_cases {
        assert_eq!(preview_ids(&app, &key, params).await, [2], "{params:?}");
    }
    // Numbers, IN lists, negation and NULL.
    let other_cases: [(Params, &[i64]); 5] = [
        (&[("where_filter", "doc = 5")], &[3]),
        (&[("where_filter", "doc = '5'")], &[3]),
        (
            &[(
                "filters",
                r#"[{"column":"doc","operator":"in","values":[5,"x"]}]"#,
            )],
            &[2, 3],
        ),
        (&[("where_filter", "doc <> 5")], &[1, 2]),
        (&[("where_filter", "doc IS NULL")], &[4]),
    ];
    for (params, want) in other_cases {
        assert_eq!(preview_ids(&app, &key, params).await, want, "{params:?}");
    }

    // Arrays and objects compare only with JSON columns.
    let (status, body) = preview_with(
        &app,
        &key,
        &[("filters", r#"[{"column":"id","value":[1]}]"#)],
    )
    .await;
    assert_eq!(status, 400, "{body}");
}
