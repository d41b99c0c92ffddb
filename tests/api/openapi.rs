//! The served OpenAPI document and its HTML page: the document lists exactly the router's
//! (path, method) pairs, so no route is undocumented and no documented route is missing.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::*;

async fn served(app: &TestApp) -> Value {
    let res = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("GET /openapi.json");
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    serde_json::from_str(&res.text().await.unwrap()).expect("the document is JSON")
}

#[tokio::test]
async fn the_document_lists_exactly_the_routers_routes() {
    let app = spawn_app().await;
    let doc = served(&app).await;
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "{version}");
    let routes = duckbank::api::routes();
    let expected: BTreeSet<(String, String)> = routes
        .rules()
        .iter()
        .map(|r| (r.path.clone(), r.method.as_str().to_ascii_lowercase()))
        .collect();
    let mut documented = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            documented.insert((path.clone(), method.clone()));
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
            let keyed = op["security"].as_array().expect("security").len();
            let public = op["x-duckbank-need"] == "Public";
            assert_eq!(keyed == 0, public, "{method} {path}: security vs need");
            assert_eq!(
                op["responses"]["401"].is_object(),
                !public || path == "/metrics",
                "{method} {path}: 401 documented"
            );
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.as_str() < "400"),
                "{method} {path}: no documented success status"
            );
            let params: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for name in params.iter() {
                assert!(path.contains(&format!("{{{name}}}")), "{path}: {name}");
            }
            assert_eq!(params.len(), path.matches('{').count(), "{path}");
        }
    }
    assert_eq!(documented, expected);
    assert!(doc["components"]["schemas"]["Error"]["properties"]["detail"].is_object());
    for scheme in ["bearer", "apiKey", "storageApiToken"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
}

#[tokio::test]
async fn docs_answers_a_self_contained_html_page() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .expect("GET /docs");
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("/openapi.json"),
        "the page fetches the document"
    );
    assert!(!html.contains("https://"), "no assets from elsewhere");
}
