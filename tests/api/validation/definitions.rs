//! Bad table definitions: unknown or malicious types, duplicate columns, bad primary keys,
//! no columns, unsafe defaults — all 400 and no trace. The world and checks live in `mod.rs`.

use serde_json::json;

use super::{assert_reply_rejected, id_column, table_body, world};

// ---------------------------------------------------------------------------------------------
// Table definitions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_or_malicious_column_types_are_rejected_with_400() {
    let w = world().await;
    for ty in [
        "FOO",
        "DECIMAL(50,2)",
        "DECIMAL(5,6)",
        "INTEGER); DROP TABLE x; --",
        "VARCHAR DEFAULT 'x'",
        "STRUCT(a INT)",
        "INTEGER(",
        "",
        "VARCHAR(0)",
    ] {
        let case = format!("column type {ty:?}");
        let r = w
            .post_table(table_body("t_types", json!([{ "name": "id", "type": ty }])))
            .await;
        assert_reply_rejected(&r, 400, &case);
        assert_eq!(r.body["error"], "invalid_request", "{case}");
        w.assert_untouched(&case).await;
    }
}

#[tokio::test]
async fn duplicate_columns_are_rejected_with_400_even_when_case_differs() {
    let w = world().await;
    for (a, b) in [("id", "id"), ("id", "ID"), ("Amount", "aMOUNT")] {
        let case = format!("columns {a:?} and {b:?}");
        let r = w
            .post_table(table_body(
                "t_dup",
                json!([{ "name": a, "type": "INTEGER" }, { "name": b, "type": "VARCHAR" }]),
            ))
            .await;
        w.assert_rejected_untouched(&r, 400, &case).await;
    }
}

#[tokio::test]
async fn primary_key_must_name_existing_columns_once() {
    let w = world().await;
    for (label, pk) in [
        ("missing column", json!(["nope"])),
        ("listed twice", json!(["id", "id"])),
        ("injection", json!(["id\"); DROP TABLE x; --"])),
    ] {
        let case = format!("primary key {label}");
        let mut body = table_body("t_pk", id_column());
        body["primary_key"] = pk;
        let r = w.post_table(body).await;
        w.assert_rejected_untouched(&r, 400, &case).await;
    }
}

#[tokio::test]
async fn a_table_without_columns_is_rejected_with_400() {
    let w = world().await;
    let r = w.post_table(table_body("t_empty", json!([]))).await;
    assert_reply_rejected(&r, 400, "no columns");
    w.assert_untouched("no columns").await;
}

#[tokio::test]
async fn unsafe_column_defaults_are_rejected_with_400() {
    let w = world().await;
    for default in [
        "1; DROP TABLE x",
        "'a' || (SELECT 1)",
        "'unterminated",
        "random()",
        "0); DROP TABLE data; --",
    ] {
        let case = format!("default {default:?}");
        let r = w
            .post_table(table_body(
                "t_def",
                json!([{ "name": "id", "type": "INTEGER", "default": default }]),
            ))
            .await;
        w.assert_rejected_untouched(&r, 400, &case).await;
    }
}
