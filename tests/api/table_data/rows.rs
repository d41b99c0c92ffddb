//! Row deletes: every filter form (SQL-like clause, structured filters, seed-style where
//! parameters), both path styles, and deletes without a filter refused.

use super::*;

#[tokio::test]
async fn rows_are_deleted_by_every_filter_form() {
    let (app, key) = setup_people().await;
    let rows_path = format!("{T}/p/rows");

    // (re-seed first, filter, (deleted, rows after), ids left), in order.
    let steps = [
        (
            false,
            json!({"where_clause": "status = 'deleted'"}),
            (2, 4),
            &[1, 3, 4, 6][..],
        ),
        (
            false,
            json!({"where_filters": [{"column": "age", "operator": "gt", "values": [30]}]}),
            (2, 2),
            &[1, 6],
        ),
        (
            true,
            json!({"whereColumn": "status", "whereValues": ["a", "b"], "whereOperator": "eq"}),
            (2, 4),
            &[1, 2, 5, 6],
        ),
        (
            false,
            json!({"whereColumn": "status", "whereValues": ["active"], "whereOperator": "ne"}),
            (2, 2),
            &[1, 6],
        ),
    ];
    for (reseed, body, counts, ids) in steps {
        if reseed {
            seed(&app, &key, "p", PEOPLE_CSV).await;
        }
        delete_and_check(&app, &key, &rows_path, body, counts, ids).await;
    }

    // Nothing matches: zero deleted.
    let res = delete_json(&app, &key, &rows_path, json!({"where_clause": "id > 100"}))
        .await
        .expect(200);
    assert_eq!(res, json!({"deleted_rows": 0, "table_rows_after": 2}));

    // Reference path style.
    let res = delete_json(
        &app,
        &key,
        &format!("{BT}/p/rows"),
        json!({"where_clause": "id = 1"}),
    )
    .await
    .expect(200);
    assert_eq!(res, json!({"deleted_rows": 1, "table_rows_after": 1}));
    assert_eq!(ids(&app, &key).await, [6]);
    assert_eq!(
        app.get(&format!("{T}/p"), &key).await.expect(200)["row_count"],
        1
    );
}

#[tokio::test]
async fn a_row_delete_without_a_filter_is_400() {
    let (app, key) = setup_people().await;
    let before = snapshot(&app, &key, "p").await;
    let rows_path = format!("{T}/p/rows");
    for body in [
        json!({}),
        json!({"where_clause": ""}),
        json!({"where_clause": "   "}),
        json!({"where_filters": []}),
        json!({"whereColumn": "status"}),
        json!({"whereColumn": "status", "whereValues": ["a"], "whereOperator": "like"}),
        json!({"where_filters": [{"column": "age", "operator": "drop", "values": [1]}]}),
        json!({"where_filters": [{"column": "nope", "operator": "eq", "values": [1]}]}),
    ] {
        delete_json(&app, &key, &rows_path, body.clone())
            .await
            .expect_error(400);
        assert_eq!(snapshot(&app, &key, "p").await, before, "{body}");
    }
    app.call(Method::DELETE, &rows_path, Some(&key), None)
        .await
        .expect_error(400);
    assert_eq!(snapshot(&app, &key, "p").await, before);
}

/// Deletes by `body` and checks the reply's `(deleted_rows, table_rows_after)` and the ids left.
async fn delete_and_check(
    app: &TestApp,
    key: &str,
    path: &str,
    body: Value,
    (deleted, after): (u64, u64),
    expected_ids: &[i64],
) {
    let res = delete_json(app, key, path, body).await.expect(200);
    assert_eq!(
        res,
        json!({"deleted_rows": deleted, "table_rows_after": after})
    );
    assert_eq!(ids(app, key).await, expected_ids);
}
