//! Table profiles: per-column statistics for every column type, on filled and empty tables,
//! on both path styles.

use super::*;

fn num(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a JSON number, got {v}"))
}

#[tokio::test]
async fn a_profile_describes_every_column() {
    let (app, key) = setup().await;
    app.create_table_t(
        &key,
        &[("id", "BIGINT"), ("amount", "INTEGER"), ("name", "VARCHAR")],
        &["id"],
    )
    .await;
    seed(
        &app,
        &key,
        "t",
        "id,amount,name\n1,1,a\n2,2,b\n3,3,a\n4,4,a\n5,,\n",
    )
    .await;
    let body = app
        .post(&format!("{T}/t/profile"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(body["table_name"], "t", "{body}");
    assert_eq!(body["bucket_name"], "b", "{body}");
    assert_eq!(body["row_count"], 5, "{body}");
    assert_eq!(body["column_count"], 3, "{body}");
    let stats = body["statistics"].as_array().expect("statistics");
    let names: Vec<&str> = stats
        .iter()
        .map(|s| s["column_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "amount", "name"]);

    let amount = &stats[1];
    assert_eq!(amount["column_type"], "INTEGER", "{amount}");
    assert_eq!(cell(&amount["min"]), "1", "{amount}");
    assert_eq!(cell(&amount["max"]), "4", "{amount}");
    assert_eq!(amount["count"], 4, "count of non-NULL values: {amount}");
    assert_eq!(amount["null_count"], 1, "{amount}");
    assert!((num(&amount["avg"]) - 2.5).abs() < 1e-9, "{amount}");
    let std = num(&amount["std"]);
    assert!((std - 1.290_994).abs() < 1e-3, "sample std: {amount}");
    let (q25, q50, q75) = (
        num(&amount["q25"]),
        num(&amount["q50"]),
        num(&amount["q75"]),
    );
    assert!((1.0..=2.0).contains(&q25), "{amount}");
    assert!((2.0..=3.0).contains(&q50), "{amount}");
    assert!((3.0..=4.0).contains(&q75), "{amount}");
    assert!(q25 <= q50 && q50 <= q75, "{amount}");
    let unique = num(&amount["approx_unique"]);
    assert!((3.0..=5.0).contains(&unique), "{amount}");
    let nulls = num(&amount["null_percentage"]);
    assert!(
        (nulls - 20.0).abs() < 0.01 || (nulls - 0.2).abs() < 1e-4,
        "{amount}"
    );

    let id = &stats[0];
    assert_eq!(id["null_count"], 0, "{id}");
    assert_eq!(id["count"], 5, "{id}");
    assert!((num(&id["avg"]) - 3.0).abs() < 1e-9, "{id}");
    assert_eq!(cell(&id["min"]), "1", "{id}");
    assert_eq!(cell(&id["max"]), "5", "{id}");

    let name = &stats[2];
    assert_eq!(name["column_type"], "VARCHAR", "{name}");
    assert_eq!(name["null_count"], 1, "{name}");
    assert_eq!(cell(&name["min"]), "a", "{name}");
    assert_eq!(cell(&name["max"]), "b", "{name}");
    for k in ["avg", "std", "q25", "q50", "q75"] {
        assert!(name[k].is_null(), "{k} is null for text: {name}");
    }
    let top = name["top_values"].as_array().expect("top_values list");
    assert!(!top.is_empty(), "{name}");
    let first = top[0].to_string();
    assert!(
        first.contains("\"a\"") && !first.contains("\"b\""),
        "the most frequent value comes first: {name}"
    );

    // Reference path style and an empty table.
    app.create_table("1", &key, "b", "empty", &[("x", "DOUBLE")], &[])
        .await;
    let body = app
        .post(&format!("{BT}/empty/profile"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(body["row_count"], 0, "{body}");
    assert_eq!(body["statistics"][0]["null_count"], 0, "{body}");
    app.post(&format!("{T}/nope/profile"), &key, json!({}))
        .await
        .expect_error(404);
}

#[tokio::test]
async fn profiles_cover_every_column_type_even_on_an_empty_table() {
    let (app, key) = setup().await;
    let columns = [
        ("i", "INTEGER"),
        ("d", "DECIMAL(10,2)"),
        ("s", "VARCHAR"),
        ("b", "BOOLEAN"),
        ("t", "TIMESTAMP"),
        ("day", "DATE"),
        ("u", "UUID"),
        ("l", "INTEGER[]"),
        ("j", "JSON"),
        ("raw", "BLOB"),
    ];
    app.create_table("1", &key, "b", "all", &columns, &[]).await;
    let empty = app
        .post(&format!("{T}/all/profile"), &key, json!({}))
        .await
        .expect(200);
    assert_eq!(empty["row_count"], 0);
    assert_eq!(empty["column_count"], columns.len());
    for stat in empty["statistics"].as_array().expect("statistics") {
        assert_eq!(stat["count"], 0, "{stat}");
        assert_eq!(stat["null_count"], 0, "{stat}");
    }
    let app = app
        .edit_table_file(
            "1",
            "b",
            "all",
            "INSERT INTO data VALUES \
             (1, 1.50, 'x', true, TIMESTAMP '2024-01-01 00:00:00', DATE '2024-01-01', uuid(), [1, 2], '{\"a\": 1}', 'ab'::BLOB), \
             (3, 2.50, 'x', false, TIMESTAMP '2024-01-03 00:00:00', DATE '2024-01-03', uuid(), [], '[]', 'cd'::BLOB), \
             (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
        )
        .await;
    let full = app
        .post(&format!("{T}/all/profile"), &key, json!({}))
        .await
        .expect(200);
    let stat = |name: &str| {
        full["statistics"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["column_name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no statistics for {name}: {full}"))
    };
    assert_eq!(full["row_count"], 3);
    let i = stat("i");
    assert_eq!(
        (i["count"].as_i64(), i["null_count"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        (i["min"].as_str(), i["max"].as_str()),
        (Some("1"), Some("3"))
    );
    assert_eq!(i["avg"].as_f64(), Some(2.0));
    let s = stat("s");
    assert_eq!(s["top_values"], json!(["x"]));
    assert!(s["avg"].is_null());
    let t = stat("t");
    assert_eq!(t["min"], "2024-01-01 00:00:00");
    assert!(t["q50"].is_string(), "{t}");
    let l = stat("l");
    assert_eq!(l["count"], 2);
    assert!(l["min"].is_null());
    assert!((stat("b")["null_percentage"].as_f64().unwrap_or(0.0) - 33.33).abs() < 0.01);
}
