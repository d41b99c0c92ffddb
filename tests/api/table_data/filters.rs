//! The filter grammar on previews, exports and deletes: what it accepts, hostile filters it
//! refuses naming the token, and preview order and filter forms.

use super::*;

/// Each hostile filter and a token the error message must name (any of them).
const HOSTILE_FILTERS: &[(&str, &[&str])] = &[
    ("1=1; DROP TABLE x", &[";"]),
    ("id = 1 -- x", &["--"]),
    ("id = 1 /* c */", &["/*"]),
    ("id IN (SELECT 1)", &["select"]),
    ("read_csv('/etc/passwd') IS NOT NULL", &["read_csv"]),
    ("other.col = 1", &["other", "'.'", "\".\"", "`.`"]),
    ("name = 'x' UNION SELECT 1", &["union"]),
    ("nosuch = 1", &["nosuch"]),
    ("status = 'a' OR 1=1) --", &["--", ")"]),
    ("name = 'unterminated", &["'", "unterminated", "quote"]),
    ("id = (SELECT max(id) FROM data)", &["select", "\"(\""]),
    ("length(name) > 1", &["length", "("]),
];

#[tokio::test]
async fn hostile_filters_are_refused_with_400_naming_the_token_and_change_nothing() {
    let (app, key) = setup_people().await;
    let before = snapshot(&app, &key, "p").await;
    for (filter, tokens) in HOSTILE_FILTERS {
        let mut errors = Vec::new();
        errors.push(
            delete_json(
                &app,
                &key,
                &format!("{T}/p/rows"),
                json!({"where_clause": filter}),
            )
            .await
            .expect_error(400),
        );
        errors.push(
            app.post(
                &format!("{T}/p/export"),
                &key,
                json!({"format": "csv", "where_filter": filter}),
            )
            .await
            .expect_error(400),
        );
        errors.push(
            app.get(&format!("{T}/p/preview?where_filter={}", enc(filter)), &key)
                .await
                .expect_error(400),
        );
        for err in errors {
            let msg = message(&err);
            assert!(
                tokens.iter().any(|t| msg.contains(&t.to_lowercase())),
                "{filter:?}: the message should name one of {tokens:?}: {err}"
            );
            assert!(!msg.contains("root:"), "{err}");
        }
        assert_eq!(snapshot(&app, &key, "p").await, before, "{filter}");
    }
    // The bucket still has exactly its table.
    let list = app.get(T, &key).await.expect(200);
    assert_eq!(list["total"], 1, "{list}");
}

#[tokio::test]
async fn the_filter_grammar_supports_comparisons_logic_in_between_like_and_null_tests() {
    let (app, key) = setup_people().await;
    let cases: &[(&str, &[i64])] = &[
        (
            "age BETWEEN 20 AND 35 AND NOT status IN ('deleted')",
            &[1, 4],
        ),
        ("name LIKE 'a%' OR name ILIKE 'B%'", &[1, 2]),
        ("age IS NULL", &[6]),
        (
            "age IS NOT NULL AND (status = 'a' OR status <> 'active') AND age >= 31",
            &[2, 3, 4],
        ),
        ("id != 1 AND id < 3", &[2]),
        ("age <= 19", &[5]),
        ("status = 'it''s'", &[]),
        ("status NOT IN ('a', 'b', 'deleted')", &[1, 6]),
        ("NOT (age > 20)", &[5]),
        ("name NOT LIKE '%a%'", &[2, 3, 5]),
        ("age > 30 AND status = 'deleted' OR id = 1", &[1, 2]),
    ];
    for (filter, expected) in cases {
        let got = preview_ids(
            &app,
            &key,
            "p",
            &format!("where_filter={}&order_by=id", enc(filter)),
        )
        .await;
        assert_eq!(got.as_slice(), *expected, "{filter}");
    }
}

#[tokio::test]
async fn preview_accepts_order_by_and_every_filter_form() {
    let (app, key) = setup_people().await;
    assert_eq!(
        preview_ids(
            &app,
            &key,
            "p",
            &format!(
                "order_by={}&where_filter={}",
                enc("age DESC"),
                enc("age IS NOT NULL")
            )
        )
        .await,
        [3, 4, 2, 1, 5]
    );
    assert_eq!(
        preview_ids(
            &app,
            &key,
            "p",
            &format!("order_by={}&limit=2", enc("name DESC"))
        )
        .await,
        [6, 5]
    );
    assert_eq!(
        preview_ids(
            &app,
            &key,
            "p",
            "whereColumn=status&whereValues=a&whereValues=b&whereOperator=eq&order_by=id"
        )
        .await,
        [3, 4]
    );
    assert_eq!(
        preview_ids(
            &app,
            &key,
            "p",
            "whereColumn=status&whereValues=a&whereValues=b&whereOperator=ne&order_by=id"
        )
        .await,
        [1, 2, 5, 6]
    );
    let filters = json!([
        {"column": "age", "operator": "gt", "values": [30]},
        {"column": "status", "operator": "eq", "values": ["deleted"]}
    ]);
    assert_eq!(
        preview_ids(
            &app,
            &key,
            "p",
            &format!("filters={}&order_by=id", enc(&filters.to_string()))
        )
        .await,
        [2]
    );
    // The reference path style.
    let body = app
        .get(
            &format!(
                "{BT}/p/preview?where_filter={}&order_by=id",
                enc("status = 'active'")
            ),
            &key,
        )
        .await
        .expect(200);
    let got: Vec<i64> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [1, 6]);
    // Bad inputs.
    for query in [
        format!("order_by={}", enc("nope DESC")),
        format!("order_by={}", enc("id; DROP TABLE x")),
        format!("order_by={}", enc("id SIDEWAYS")),
        "filters=not-json".to_string(),
        format!(
            "filters={}",
            enc("[{\"column\":\"nope\",\"operator\":\"eq\",\"values\":[1]}]")
        ),
        "whereColumn=nope&whereValues=1".to_string(),
    ] {
        app.get(&format!("{T}/p/preview?{query}"), &key)
            .await
            .expect_error(400);
    }
}

#[tokio::test]
async fn an_injected_statement_in_a_preview_filter_is_an_invalid_where_clause() {
    let (app, key) = setup_people().await;
    let filter = enc("id = 1; DROP TABLE p");
    let err = app
        .get(&format!("{T}/p/preview?where_filter={filter}"), &key)
        .await
        .expect_code(400, "invalid_where_clause");
    assert!(message(&err).contains("\";\""), "{err}");
}

#[tokio::test]
async fn an_unknown_column_in_an_export_filter_is_an_invalid_where_clause() {
    let (app, key) = setup_people().await;
    let err = app
        .post(
            &format!("{T}/p/export"),
            &key,
            json!({"format": "csv", "where_filter": "nosuch = 1"}),
        )
        .await
        .expect_code(400, "invalid_where_clause");
    assert_eq!(err["details"]["column"], "nosuch", "{err}");
}

#[tokio::test]
async fn a_bad_where_operator_on_row_delete_is_an_invalid_where_clause() {
    let (app, key) = setup_people().await;
    let before = snapshot(&app, &key, "p").await;
    let body = json!({"whereColumn": "status", "whereValues": ["a"], "whereOperator": "like"});
    let err = delete_json(&app, &key, &format!("{T}/p/rows"), body)
        .await
        .expect_code(400, "invalid_where_clause");
    assert!(message(&err).contains("whereoperator"), "{err}");
    assert_eq!(snapshot(&app, &key, "p").await, before);
}

/// Filters that parse but whose values DuckDB cannot convert to the column's type.
const UNCONVERTIBLE_FILTERS: &[&str] = &[
    "age = 'abc'",
    "id > 123456789012345678901234567890123456789012345678901",
    "age IN ('1', 'x')",
    "age = '99999999999999999999'",
    "id BETWEEN 'a' AND 'z'",
];

#[tokio::test]
async fn filter_values_that_do_not_convert_are_400_on_preview_export_and_delete() {
    let (app, key) = setup_people().await;
    let before = snapshot(&app, &key, "p").await;
    // A number larger than the column's type can hold is a valid comparison: no rows match.
    let body = app
        .get(
            &format!(
                "{T}/p/preview?where_filter={}",
                enc("id = 99999999999999999999")
            ),
            &key,
        )
        .await
        .expect(200);
    assert_eq!(body["rows"], json!([]), "{body}");
    for filter in UNCONVERTIBLE_FILTERS {
        let replies = [
            app.get(&format!("{T}/p/preview?where_filter={}", enc(filter)), &key)
                .await,
            app.post(
                &format!("{T}/p/export"),
                &key,
                json!({"format": "csv", "where_filter": filter}),
            )
            .await,
            app.get(
                &format!("{T}/p/export?format=csv&where_filter={}", enc(filter)),
                &key,
            )
            .await,
            delete_json(
                &app,
                &key,
                &format!("{T}/p/rows"),
                json!({"where_clause": filter}),
            )
            .await,
        ];
        for reply in replies {
            assert_eq!(reply.status.as_u16(), 400, "{filter}: {}", reply.body);
            let body = reply.expect_code(400, "invalid_where_clause");
            assert!(
                !message(&body).contains("/tmp") && !message(&body).contains(".duckdb"),
                "{filter}: {body}"
            );
        }
    }
    assert_eq!(snapshot(&app, &key, "p").await, before);
}
