//! The served OpenAPI 3.1 document (`GET /openapi.json`) and its HTML page (`GET /docs`), built
//! from the route table itself, so no served route can be missing from the document.

use std::sync::OnceLock;

use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::access::Rule;
use crate::auth::scope::Need;

/// Where the document is served.
pub const PATH: &str = "/openapi.json";
/// Where the HTML page listing the operations is served.
pub const DOCS_PATH: &str = "/docs";

mod operations;
mod schemas;

/// Every error status the API answers, with its description. All share the error body.
const ERRORS: [(u16, &str); 15] = [
    (
        400,
        "The request is malformed (path, query, headers or body).",
    ),
    (401, "No valid API key was presented."),
    (403, "The key is valid but does not allow this operation."),
    (404, "The addressed resource does not exist."),
    (405, "The path exists but does not serve this method."),
    (
        408,
        "The request body stalled for longer than BODY_IDLE_TIMEOUT_SECS.",
    ),
    (
        409,
        "Conflict with the current state (exists, busy, or an Idempotency-Key reused).",
    ),
    (410, "The upload or upload session has expired."),
    (413, "The request body is larger than the limit."),
    (416, "The requested byte range is outside the content."),
    (
        422,
        "The request is well-formed but its content is invalid.",
    ),
    (
        429,
        "Too many requests: rate limit, key verification queue or job queue full.",
    ),
    (
        500,
        "Internal error; quote the x-request-id header when reporting it.",
    ),
    (503, "Storage is unavailable (a health check failed), or the auto-snapshot a change promises could not be taken (`snapshot_failed`; retry, or `?skip_snapshot=true`)."),
    (507, "Storage is full, or the project's quota is reached."),
];

/// The errors any operation can answer: the extractors' and layers' (400, 404, 413, 422, 500),
/// the gate's and rate limiter's on keyed routes (401, 403, 429).
const COMMON: [u16; 5] = [400, 404, 413, 422, 500];
const KEYED: [u16; 3] = [401, 403, 429];
/// Answered by any write: a reused Idempotency-Key (409) and a full disk (507).
const WRITES: [u16; 2] = [409, 507];

/// `GET /openapi.json`: built once from the route table, then served from memory.
pub async fn openapi() -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| document(super::routes().rules()).to_string());
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

/// `GET /docs`: a self-contained page (no CDN) that fetches the document and lists operations.
pub async fn docs() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DOCS_HTML,
    )
        .into_response()
}

/// The OpenAPI 3.1 document for `rules`: one operation per rule.
pub fn document(rules: &[Rule]) -> Value {
    let mut paths = Map::new();
    for rule in rules {
        let item = paths.entry(rule.path.clone()).or_insert_with(|| json!({}));
        if let Value::Object(item) = item {
            item.insert(rule.method.as_str().to_ascii_lowercase(), operation(rule));
        }
    }
    let responses: Map<String, Value> = ERRORS
        .iter()
        .map(|(status, description)| {
            (
                response_name(*status),
                json!({
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }),
            )
        })
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": env!("CARGO_PKG_NAME"),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "duckbank's HTTP API. Paths, methods and security come from the server's route table; bodies and statuses from its documentation table (src/api/openapi/operations.rs).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (or the admin key) as a bearer token."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "storageApiToken": {"type": "apiKey", "in": "header", "name": "X-StorageApi-Token"},
            },
            "schemas": schemas::components(),
            "responses": responses,
        },
    })
}

/// The (method, route template) pairs of `rules` that have no documented success status.
pub fn undocumented(rules: &[Rule]) -> Vec<String> {
    rules
        .iter()
        .filter(|rule| {
            operations::documented(rule.method.as_str(), &rule.path)
                .is_none_or(|doc| !doc.responses.iter().any(|(status, _)| *status < 400))
        })
        .map(|rule| format!("{} {}", rule.method, rule.path))
        .collect()
}

fn operation(rule: &Rule) -> Value {
    let doc = operations::documented(rule.method.as_str(), &rule.path).unwrap_or_default();
    let keyed = rule.need != Need::Public;
    let mut errors: Vec<u16> = COMMON.to_vec();
    if keyed {
        errors.extend(KEYED);
    }
    // `/metrics` is public but checks its own token when METRICS_TOKEN is set.
    if rule.path == super::metrics::PATH {
        errors.push(401);
    }
    if rule.method != Method::GET {
        errors.extend(WRITES);
    }
    if doc.body.is_some() {
        errors.push(408);
    }
    errors.extend(&doc.errors);
    errors.sort_unstable();
    errors.dedup();
    let mut responses = Map::new();
    for (status, response) in doc.responses {
        responses.insert(status.to_string(), response);
    }
    for status in errors {
        responses.insert(
            status.to_string(),
            json!({"$ref": format!("#/components/responses/{}", response_name(status))}),
        );
    }
    let security = if keyed {
        json!([{"bearer": []}, {"apiKey": []}, {"storageApiToken": []}])
    } else {
        json!([])
    };
    let mut parameters: Vec<Value> = path_params(&rule.path)
        .map(|name| {
            let schema = if name == "n" {
                json!({"type": "integer", "minimum": 0})
            } else {
                json!({"type": "string"})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    parameters.extend(doc.query);
    parameters.extend(doc.headers);
    let mut op = json!({
        "operationId": operation_id(&rule.method, &rule.path),
        "summary": doc.summary,
        "security": security,
        "responses": responses,
        "x-duckbank-need": format!("{:?}", rule.need),
    });
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = doc.body {
        op["requestBody"] = body;
    }
    op
}

/// The names of a template's `{parameters}`, in order.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// `GET /projects/{project_id}/buckets` → `get_projects_by_project_id_buckets`; unique
/// because (method, path) is.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        id.push_str("_root");
    }
    for segment in segments {
        id.push('_');
        let segment = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => {
                id.push_str("by_");
                param
            }
            None => segment,
        };
        id.extend(
            segment
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

/// The name of the shared response of an error status (`#/components/responses/...`).
fn response_name(status: u16) -> String {
    let name = match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        408 => "RequestTimeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "PayloadTooLarge",
        416 => "RangeNotSatisfiable",
        422 => "Unprocessable",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        507 => "InsufficientStorage",
        _ => "InternalError",
    };
    name.to_string()
}

const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>duckbank API</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; }
table { border-collapse: collapse; }
td, th { padding: 0.2rem 0.8rem; border-bottom: 1px solid #ddd; text-align: left; }
code { font-size: 0.95em; }
.m { font-weight: bold; }
</style>
</head>
<body>
<h1 id="title">duckbank API</h1>
<p>The machine-readable contract is <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<table>
<thead><tr><th>Method</th><th>Path</th><th>Needs</th><th>Operation</th></tr></thead>
<tbody id="ops"></tbody>
</table>
<script>
fetch("/openapi.json").then(function (r) { return r.json(); }).then(function (doc) {
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  var body = document.getElementById("ops");
  Object.keys(doc.paths).forEach(function (path) {
    Object.keys(doc.paths[path]).forEach(function (method) {
      var op = doc.paths[path][method];
      var row = document.createElement("tr");
      [method.toUpperCase(), path, op["x-duckbank-need"], op.operationId].forEach(function (text, i) {
        var cell = document.createElement("td");
        var code = document.createElement("code");
        code.textContent = text;
        if (i === 0) { code.className = "m"; }
        cell.appendChild(code);
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
  });
});
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_name_the_method_and_path() {
        assert_eq!(operation_id(&Method::GET, "/"), "get_root");
        assert_eq!(
            operation_id(&Method::POST, "/projects/{project_id}/api-keys"),
            "post_projects_by_project_id_api_keys"
        );
    }

    /// A route added to the table without documentation fails here (and in the served
    /// document's integration test), so new routes cannot slip by undocumented.
    #[test]
    fn every_route_has_a_documented_success_status() {
        let missing = undocumented(crate::api::routes().rules());
        assert!(missing.is_empty(), "undocumented operations: {missing:#?}");
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document(crate::api::routes().rules());
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/").skip(1) {
            let target = &piece[..piece.find('"').unwrap_or(piece.len())];
            let (kind, name) = target.split_once('/').unwrap_or((target, ""));
            assert!(
                doc["components"][kind][name].is_object(),
                "dangling $ref {target}"
            );
        }
    }

    #[test]
    fn path_parameters_come_from_the_template() {
        let names: Vec<&str> =
            path_params("/projects/{project_id}/buckets/{bucket_name}").collect();
        assert_eq!(names, ["project_id", "bucket_name"]);
    }
}
