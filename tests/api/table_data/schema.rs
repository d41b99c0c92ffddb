//! Schema changes on tables with rows: add, rename, retype, constrain and drop columns, set
//! defaults, add and drop primary keys; failed changes leave the table unchanged.

use super::*;

fn column<'a>(table: &'a Value, name: &str) -> &'a Value {
    table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("column {name} missing: {table}"))
}

/// Table t keyed by `id BIGINT` with two VARCHAR columns, holding the rows of `csv`.
async fn keyed_text_table(text_columns: [&str; 2], csv: &str) -> (TestApp, String) {
    let (app, key) = setup().await;
    let [a, b] = text_columns;
    app.create_table_t(
        &key,
        &[("id", "BIGINT"), (a, "VARCHAR"), (b, "VARCHAR")],
        &["id"],
    )
    .await;
    seed(&app, &key, "t", csv).await;
    (app, key)
}

/// Changes column `column` of table t as `body` says.
async fn alter(app: &TestApp, key: &str, column: &str, body: Value) -> Reply {
    app.put(&format!("{T}/t/columns/{column}"), key, body).await
}

#[tokio::test]
async fn columns_can_be_added_renamed_retyped_constrained_and_dropped() {
    let (app, key) = keyed_text_table(["name", "code"], "id,name,code\n1,a,10\n2,b,20\n").await;
    let cols = format!("{T}/t/columns");

    let body = app
        .post(
            &cols,
            &key,
            json!({"name": "score", "type": "INTEGER", "nullable": true, "default": null}),
        )
        .await
        .expect(201);
    assert_eq!(
        column(&body, "score"),
        &json!({"name": "score", "type": "INTEGER", "nullable": true, "ordinal_position": 4})
    );
    let body = app
        .post(
            &cols,
            &key,
            json!({"name": "status", "type": "VARCHAR", "default": "'new'"}),
        )
        .await
        .expect(201);
    assert_eq!(column_types(&body).len(), 5);
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a|10|NULL|new", "2|b|20|NULL|new"])
    );
    app.post(&cols, &key, json!({"name": "name", "type": "INTEGER"}))
        .await
        .expect_error(409);

    // Type change with convertible data.
    let body = alter(&app, &key, "code", json!({"new_type": "INTEGER"}))
        .await
        .expect(200);
    assert_eq!(column(&body, "code")["type"], "INTEGER");
    // Rename.
    let body = alter(&app, &key, "name", json!({"new_name": "label"}))
        .await
        .expect(200);
    assert_eq!(
        column_types(&body),
        [
            "id BIGINT",
            "label VARCHAR",
            "code INTEGER",
            "score INTEGER",
            "status VARCHAR"
        ]
    );
    // Drop.
    let body = app.delete(&format!("{cols}/score"), &key).await.expect(200);
    assert_eq!(
        column_types(&body),
        [
            "id BIGINT",
            "label VARCHAR",
            "code INTEGER",
            "status VARCHAR"
        ]
    );
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a|10|new", "2|b|20|new"])
    );
    // The default fills a column missing from an import…
    upsert(&app, &key, "id,label,code\n3,c,30\n")
        .await
        .expect(200);
    // …until it is dropped.
    alter(&app, &key, "status", json!({"set_default": ""}))
        .await
        .expect(200);
    upsert(&app, &key, "id,label,code\n4,d,40\n")
        .await
        .expect(200);
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a|10|new", "2|b|20|new", "3|c|30|new", "4|d|40|NULL"])
    );
    // A new default applies to later imports.
    alter(&app, &key, "status", json!({"set_default": "'fresh'"}))
        .await
        .expect(200);
    upsert(&app, &key, "id,label,code\n5,e,50\n")
        .await
        .expect(200);
    assert!(table_rows(&app, &key, "t")
        .await
        .contains(&"5|e|50|fresh".to_string()));
    // NOT NULL when no NULLs are present.
    let body = alter(&app, &key, "label", json!({"set_not_null": true}))
        .await
        .expect(200);
    assert_eq!(column(&body, "label")["nullable"], false);
    let t = app.get(&format!("{T}/t"), &key).await.expect(200);
    assert_eq!(column(&t, "label")["nullable"], false);
    // The reference path style.
    let body = app
        .post(
            &format!("{BT}/t/columns"),
            &key,
            json!({"name": "extra", "type": "DOUBLE"}),
        )
        .await
        .expect(201);
    assert_eq!(column(&body, "extra")["type"], "DOUBLE");
    app.delete(&format!("{BT}/t/columns/extra"), &key)
        .await
        .expect(200);
}

#[tokio::test]
async fn failed_schema_changes_leave_the_table_unchanged() {
    let (app, key) = keyed_text_table(["code", "note"], "id,code,note\n1,10,x\n2,abc,\n").await;
    let before = snapshot(&app, &key, "t").await;
    assert_eq!(before.1, rows(&["1|10|x", "2|abc|NULL"]));
    let cols = format!("{T}/t/columns");

    let err = alter(&app, &key, "code", json!({"new_type": "INTEGER"}))
        .await
        .expect_error(400);
    assert!(
        err["message"].as_str().unwrap().contains("abc"),
        "the message names the value: {err}"
    );
    assert_eq!(snapshot(&app, &key, "t").await, before);

    alter(&app, &key, "note", json!({"set_not_null": true}))
        .await
        .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // A rename combined with a failing type change changes neither.
    alter(
        &app,
        &key,
        "code",
        json!({"new_name": "renamed", "new_type": "INTEGER"}),
    )
    .await
    .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    app.delete(&format!("{cols}/id"), &key)
        .await
        .expect_error(400);
    app.delete(&format!("{cols}/nope"), &key)
        .await
        .expect_error(404);
    app.post(&cols, &key, json!({"name": "code", "type": "VARCHAR"}))
        .await
        .expect_error(409);
    app.post(&cols, &key, json!({"name": "y", "type": "NOT A TYPE"}))
        .await
        .expect_error(400);
    app.post(
        &cols,
        &key,
        json!({"name": "z", "type": "INTEGER", "default": "1; DROP TABLE x"}),
    )
    .await
    .expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    // The only column cannot be dropped.
    app.create_table("1", &key, "b", "solo", &[("only", "BIGINT")], &[])
        .await;
    app.delete(&format!("{T}/solo/columns/only"), &key)
        .await
        .expect_error(400);
    let solo = app.get(&format!("{T}/solo"), &key).await.expect(200);
    assert_eq!(column_types(&solo), ["only BIGINT"]);
}

#[tokio::test]
async fn a_primary_key_can_be_added_and_dropped() {
    let (app, key) = setup_kv_table(false).await;
    seed(&app, &key, "t", "id,v\n1,a\n2,b\n2,c\n").await;
    let before = snapshot(&app, &key, "t").await;
    let pk = format!("{T}/t/primary-key");

    let err = app
        .post(&pk, &key, json!({"columns": ["id"]}))
        .await
        .expect_error(409);
    let dups = duplicate_keys(&err);
    assert_eq!(dups.len(), 1, "{err}");
    assert!(dups[0].to_string().contains('2'), "{err}");
    assert_eq!(snapshot(&app, &key, "t").await, before);
    app.post(&pk, &key, json!({"columns": ["nope"]}))
        .await
        .expect_error(400);
    app.delete(&pk, &key).await.expect_error(400);
    assert_eq!(snapshot(&app, &key, "t").await, before);

    seed(&app, &key, "t", "id,v\n1,a\n2,b\n").await;
    let body = app
        .post(&pk, &key, json!({"columns": ["id"]}))
        .await
        .expect(201);
    assert_eq!(body["primary_key"], json!(["id"]), "{body}");
    assert_eq!(
        app.get(&format!("{T}/t"), &key).await.expect(200)["primary_key"],
        json!(["id"])
    );
    app.post(&pk, &key, json!({"columns": ["v"]}))
        .await
        .expect_error(409);
    // The key is real: an upsert updates, insert_duplicates is refused.
    upsert(&app, &key, "id,v\n2,z\n").await.expect(200);
    assert_eq!(table_rows(&app, &key, "t").await, rows(&["1|a", "2|z"]));
    insert_dup_y(&app, &key).await.expect_error(400);

    let body = app.delete(&pk, &key).await.expect(200);
    assert_eq!(body["primary_key"], json!([]), "{body}");
    app.delete(&pk, &key).await.expect_error(400);
    // Without the key, duplicates may be inserted.
    insert_dup_y(&app, &key).await.expect(200);
    assert_eq!(
        table_rows(&app, &key, "t").await,
        rows(&["1|a", "2|y", "2|z"])
    );
    // Reference path style.
    let body = app
        .post(
            &format!("{BT}/t/primary-key"),
            &key,
            json!({"columns": ["id", "v"]}),
        )
        .await
        .expect(201);
    assert_eq!(body["primary_key"], json!(["id", "v"]), "{body}");
}

/// Loads the row `2,y` into `t` with `insert_duplicates`.
async fn insert_dup_y(app: &TestApp, key: &str) -> Reply {
    load_csv(
        app,
        key,
        "t",
        "id,v\n2,y\n",
        incremental("insert_duplicates"),
    )
    .await
}
