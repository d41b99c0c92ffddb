//! The JSON Schemas of the OpenAPI document's `components.schemas`, written by hand after the
//! bodies the handlers really build (src/api/responses.rs and the handlers' `json!` shapes).
//! Long: one schema per body of the whole API, next to the shared helpers they are built from.

use serde_json::{json, Map, Value};

/// A `$ref` to the component schema `name`.
pub fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// An object with `properties`, of which `required` must be present. Extra fields are allowed,
/// so adding a field to a response never breaks a client that validates against the document.
pub fn object(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required })
}

/// An object schema whose every property is required.
fn all_required(properties: Value) -> Value {
    let required: Vec<&str> = properties
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    object(properties.clone(), &required)
}

fn string() -> Value {
    json!({ "type": "string" })
}
fn nullable_string() -> Value {
    json!({ "type": ["string", "null"] })
}
fn time() -> Value {
    json!({ "type": "string", "format": "date-time" })
}
fn nullable_time() -> Value {
    json!({ "type": ["string", "null"], "format": "date-time" })
}
fn count() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}
fn boolean() -> Value {
    json!({ "type": "boolean" })
}
fn strings() -> Value {
    json!({ "type": "array", "items": { "type": "string" } })
}
fn list_of(name: &str) -> Value {
    json!({ "type": "array", "items": r(name) })
}
/// Any JSON value (free-form settings, tags, job requests).
fn any() -> Value {
    json!({})
}

/// Names the server parses (projects, buckets, tables, columns): letters, digits, `_` (and `-`
/// for ids). The pattern guides generators towards valid names; the server checks the rest.
pub fn name() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$" })
}

/// Every component schema by name.
pub fn components() -> Map<String, Value> {
    let mut c = Map::new();
    let mut add = |name: &str, schema: Value| {
        c.insert(name.to_string(), schema);
    };
    add("Error", error());
    add(
        "ServiceInfo",
        all_required(json!({
            "name": string(), "version": string(),
            "links": all_required(json!({ "health": string(), "healthz": string(), "readyz": string() })),
        })),
    );
    add(
        "HealthResponse",
        object(
            json!({
                "status": { "enum": ["healthy", "unhealthy"] }, "version": string(),
                "storage_available": boolean(), "details": { "type": "object" }, "checked_at": time(),
            }),
            &[
                "status",
                "version",
                "storage_available",
                "details",
                "checked_at",
            ],
        ),
    );
    add(
        "Liveness",
        all_required(json!({ "status": { "const": "ok" } })),
    );
    add(
        "Readiness",
        all_required(json!({
            "status": { "const": "ready" }, "free_bytes": count(), "min_free_bytes": count(), "checked_at": time(),
        })),
    );
    add(
        "EngineSizes",
        all_required(json!({
            "lock_entries": count(), "attached_tables": count(), "table_cache_size": count(),
            "tables_without_figures": count(),
        })),
    );
    add(
        "Quarantine",
        all_required(json!({
            "total": count(),
            "entries": { "type": "array", "items": all_required(json!({
                "quarantined_at": string(), "path": string(), "kind": { "enum": ["file", "dir"] },
                "size_bytes": count(),
            })) },
        })),
    );
    add(
        "AuditPage",
        all_required(json!({
            "entries": { "type": "array", "items": object(json!({
                "id": string(), "time": time(), "principal": { "type": "object" }, "action": string(),
                "method": string(), "route": string(), "project_id": nullable_string(),
                "branch_id": nullable_string(), "target": any(), "outcome": count(),
                "request_id": nullable_string(), "client_address": nullable_string(),
            }), &["id", "time", "principal", "action", "method", "route", "outcome"]) },
            "count": count(),
            "next_cursor": nullable_string(),
        })),
    );
    add(
        "InitBackendResponse",
        all_required(json!({
            "success": boolean(), "message": string(),
            "storage_paths": { "type": ["object", "null"], "additionalProperties": string() },
        })),
    );
    add("ProjectResponse", project());
    add(
        "ProjectCreateResponse",
        json!({ "allOf": [r("ProjectResponse"), all_required(json!({ "api_key": string() }))] }),
    );
    add(
        "ProjectListResponse",
        all_required(json!({ "projects": list_of("ProjectResponse"), "total": count() })),
    );
    add(
        "ProjectStatsResponse",
        all_required(json!({
            "id": string(), "size_bytes": count(), "table_count": count(), "bucket_count": count(),
        })),
    );
    add(
        "SnapshotSettingsResponse",
        all_required(json!({
            "effective_config": { "type": "object" }, "inheritance": any(), "local_config": any(),
        })),
    );
    let snapshot = json!({
        "id": string(), "project_id": string(), "bucket_name": string(), "table_name": string(),
        "snapshot_type": string(), "row_count": count(), "size_bytes": count(),
        "created_at": time(), "created_by": nullable_string(), "expires_at": nullable_time(),
        "description": nullable_string(), "branch_id": nullable_string(),
    });
    add("SnapshotResponse", all_required(snapshot.clone()));
    let mut detail = snapshot;
    detail["schema_columns"] = json!({ "type": "array", "items": all_required(json!({
        "name": string(), "type": string(), "nullable": boolean(),
    })) });
    detail["primary_key"] = strings();
    add("SnapshotDetailResponse", all_required(detail));
    add(
        "SnapshotListResponse",
        all_required(json!({ "snapshots": list_of("SnapshotResponse"), "total": count() })),
    );
    add(
        "SnapshotRestoreResponse",
        all_required(json!({
            "restored_to": all_required(json!({ "bucket": string(), "table": string() })),
            "row_count": count(),
        })),
    );
    let branch = json!({
        "id": string(), "project_id": string(), "name": string(), "created_at": time(),
        "created_by": nullable_string(), "description": nullable_string(),
        "table_count": count(), "size_bytes": count(),
    });
    add("BranchResponse", all_required(branch.clone()));
    let mut branch_detail = branch;
    branch_detail["copied_tables"] = json!({ "type": "array", "items": all_required(json!({
        "bucket_name": string(), "table_name": string(), "copied_at": time(),
    })) });
    add("BranchDetailResponse", all_required(branch_detail));
    add(
        "BranchListResponse",
        all_required(json!({ "branches": list_of("BranchResponse"), "count": count() })),
    );
    add(
        "PullTableResponse",
        all_required(json!({
            "bucket_name": string(), "table_name": string(), "message": string(),
            "was_local": boolean(),
        })),
    );
    add(
        "BranchMergeResponse",
        all_required(json!({
            "merged": { "type": "array", "items": all_required(json!({
                "bucket_name": string(), "table_name": string(), "action": string(),
                "row_count": count(),
            })) },
            "count": count(),
        })),
    );
    add(
        "BranchDiffResponse",
        all_required(json!({
            "tables": { "type": "array", "items": { "type": "object" } },
            "count": count(),
        })),
    );
    add("ApiKeyResponse", api_key());
    add(
        "ApiKeyCreateResponse",
        json!({ "allOf": [r("ApiKeyResponse"), all_required(json!({ "api_key": string() }))] }),
    );
    add(
        "ApiKeyListResponse",
        all_required(json!({ "count": count(), "api_keys": list_of("ApiKeyResponse") })),
    );
    add(
        "BucketResponse",
        all_required(json!({
            "name": string(), "table_count": count(), "description": nullable_string(),
            "created_at": time(), "is_linked": boolean(), "source_project_id": nullable_string(),
            "source_bucket_name": nullable_string(), "readonly": boolean(), "shared_with": strings(),
        })),
    );
    add(
        "BucketListResponse",
        all_required(json!({ "buckets": list_of("BucketResponse"), "total": count() })),
    );
    add(
        "BucketShareInfo",
        all_required(json!({
            "shared_with": strings(), "is_linked": boolean(), "source_project_id": { "type": "null" },
            "source_bucket_name": { "type": "null" },
        })),
    );
    add(
        "ReadonlyGrant",
        all_required(json!({
            "status": { "const": "success" }, "success": boolean(), "bucket_name": string(),
            "readonly": boolean(), "message": string(),
        })),
    );
    add(
        "ColumnInfo",
        all_required(json!({
            "name": string(), "type": string(), "nullable": boolean(), "ordinal_position": count(),
        })),
    );
    add(
        "TableResponse",
        all_required(json!({
            "name": string(), "bucket": string(), "columns": list_of("ColumnInfo"), "row_count": count(),
            "size_bytes": count(), "primary_key": strings(), "created_at": time(), "updated_at": time(),
            "source": { "const": "main" },
        })),
    );
    add(
        "TableListResponse",
        all_required(json!({ "tables": list_of("TableResponse"), "total": count() })),
    );
    add(
        "TableFromFile",
        json!({ "allOf": [r("TableResponse"), all_required(json!({
        "imported_rows": count(), "warnings": strings(),
    }))] }),
    );
    add(
        "TablePreviewResponse",
        all_required(json!({
            "columns": list_of("ColumnInfo"), "rows": { "type": "array" }, "total_row_count": count(),
            "preview_row_count": count(), "truncated": boolean(),
        })),
    );
    add(
        "ImportResponse",
        all_required(json!({
            "imported_rows": count(), "table_rows_after": count(), "table_size_bytes": count(),
            "warnings": strings(), "validate_only": boolean(),
        })),
    );
    add(
        "ExportResponse",
        all_required(json!({
            "file_id": string(), "file_path": string(), "rows_exported": count(),
            "file_size_bytes": count(), "file": r("FileResponse"),
        })),
    );
    add(
        "DeleteRowsResponse",
        all_required(json!({ "deleted_rows": count(), "table_rows_after": count() })),
    );
    add(
        "TableProfileResponse",
        all_required(json!({
            "table_name": string(), "bucket_name": string(), "row_count": count(),
            "column_count": count(),
            "statistics": { "type": "array", "items": object(
                json!({ "column_name": string(), "column_type": string() }),
                &["column_name", "column_type"],
            ) },
        })),
    );
    add(
        "Job",
        all_required(json!({
            "id": string(), "project_id": string(), "kind": string(),
            "status": { "type": "string" }, "progress": { "type": "number" }, "request": any(),
            "created_at": time(), "started_at": nullable_time(), "finished_at": nullable_time(),
            "result": any(), "error": any(),
        })),
    );
    add(
        "JobList",
        all_required(json!({ "jobs": list_of("Job"), "total": count() })),
    );
    add(
        "FileResponse",
        all_required(json!({
            "id": string(), "project_id": string(), "name": string(), "path": string(),
            "size_bytes": count(), "content_type": nullable_string(),
            "checksum_sha256": nullable_string(), "is_staged": boolean(), "created_at": time(),
            "expires_at": nullable_time(), "tags": any(),
        })),
    );
    add(
        "FileListResponse",
        all_required(json!({ "files": list_of("FileResponse"), "total": count() })),
    );
    add(
        "FilePrepareResponse",
        all_required(json!({
            "upload_key": string(), "upload_url": string(), "expires_at": time(),
        })),
    );
    add(
        "FileUploadResponse",
        all_required(json!({
            "upload_key": string(), "staging_path": string(), "size_bytes": count(),
            "checksum_sha256": string(),
        })),
    );
    add(
        "UploadSession",
        all_required(json!({
            "upload_id": string(), "project_id": string(), "name": string(),
            "content_type": nullable_string(), "total_size": count(), "chunk_size": count(),
            "chunk_count": count(), "sha256": nullable_string(),
            "received_chunks": { "type": "array", "items": count() },
            "missing_chunks": { "type": "array", "items": count() }, "received_bytes": count(),
            "is_complete": boolean(), "created_at": time(), "expires_at": time(),
        })),
    );
    add(
        "StoredChunk",
        all_required(json!({
            "upload_id": string(), "chunk": count(), "stored": boolean(), "message": string(),
        })),
    );
    add(
        "FileInfo",
        all_required(json!({
            "file_id": string(), "id": string(), "name": string(), "size": count(),
            "sha256": string(), "content_type": nullable_string(), "created_at": time(),
        })),
    );
    add(
        "BlobCreated",
        all_required(json!({
            "id": string(), "size": count(), "sha256": string(), "created_at": time(),
        })),
    );
    add(
        "Blob",
        all_required(json!({
            "id": string(), "data": { "type": "string", "contentEncoding": "base64" }, "size": count(),
            "sha256": string(), "created_at": time(),
        })),
    );
    requests(&mut add);
    c
}

/// The request bodies, named after the handlers' body structs.
fn requests(add: &mut impl FnMut(&str, Value)) {
    let csv = object(
        json!({
            "delimiter": string(), "quote": string(), "escape": string(), "header": boolean(),
            "null_string": string(),
        }),
        &[],
    );
    let column = object(
        json!({
            "name": name(), "type": column_type(), "nullable": boolean(),
            "default": nullable_string(),
        }),
        &["name", "type"],
    );
    let filters = json!({
        "where_filter": nullable_string(),
        "where_filters": { "type": ["array", "null"], "items": { "type": "object" } },
        "whereColumn": nullable_string(),
        "whereValues": { "type": ["array", "null"] },
        "whereOperator": nullable_string(),
    });
    add(
        "ProjectCreate",
        object(
            json!({
                "id": { "oneOf": [name(), { "type": "integer", "minimum": 0 }] },
                "name": nullable_string(), "settings": { "type": ["object", "null"] },
            }),
            &["id"],
        ),
    );
    add(
        "ProjectUpdate",
        object(
            json!({ "name": nullable_string(), "settings": { "type": ["object", "null"] } }),
            &[],
        ),
    );
    add(
        "SnapshotConfigRequest",
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "enabled": boolean(),
                "auto_snapshot_triggers": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "drop_table": boolean(), "truncate_table": boolean(),
                        "delete_all_rows": boolean(), "drop_column": boolean(),
                    },
                },
                "retention": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": { "manual_days": { "type": "integer" }, "auto_days": { "type": "integer" } },
                },
            },
        }),
    );
    add(
        "BranchCreateRequest",
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "name": { "type": "string", "minLength": 1, "maxLength": 255 },
                "description": { "type": ["string", "null"], "maxLength": 1000 },
            },
            "required": ["name"],
        }),
    );
    add(
        "BranchMergeRequest",
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "tables": { "type": "array", "items": { "type": "string" } },
                "force": { "type": "boolean" },
            },
        }),
    );
    add(
        "SnapshotCreateRequest",
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "bucket": name(), "table": name(),
                "description": { "type": ["string", "null"], "maxLength": 1000 },
            },
            "required": ["bucket", "table"],
        }),
    );
    add(
        "SnapshotRestoreRequest",
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "target_bucket": { "anyOf": [name(), { "type": "null" }] },
                "target_table": { "anyOf": [name(), { "type": "null" }] },
            },
        }),
    );
    add(
        "ApiKeyCreateRequest",
        object(
            json!({
                "description": string(),
                "scope": string(),
                "branch_id": nullable_string(),
                "expires_in_days": { "type": ["integer", "null"] },
                "bucket_permissions": { "type": ["object", "null"], "additionalProperties": string() },
                "file_permissions": { "type": ["array", "null"], "items": string() },
            }),
            &["description"],
        ),
    );
    add(
        "BucketCreate",
        object(
            json!({ "name": name(), "description": nullable_string() }),
            &["name"],
        ),
    );
    add(
        "BucketShareRequest",
        object(
            json!({ "target_project_id": name() }),
            &["target_project_id"],
        ),
    );
    add(
        "BucketLinkRequest",
        object(
            json!({ "source_project_id": name(), "source_bucket_name": name() }),
            &["source_project_id", "source_bucket_name"],
        ),
    );
    add("ColumnDefinition", column.clone());
    add(
        "TableCreate",
        object(
            json!({
                "name": name(),
                "columns": { "type": "array", "minItems": 1, "items": r("ColumnDefinition") },
                "primary_key": { "type": ["array", "null"], "items": string() },
            }),
            &["name", "columns"],
        ),
    );
    add(
        "CreateTableFromFile",
        object(
            json!({
                "name": name(), "file_id": string(), "format": nullable_string(),
                "csv_options": csv.clone(),
                "primary_key": { "type": ["array", "null"], "items": string() },
                "all_varchar": boolean(),
            }),
            &["name", "file_id"],
        ),
    );
    add(
        "ImportFromFileRequest",
        object(
            json!({
                "file_id": string(), "format": nullable_string(), "csv_options": csv,
                "import_options": object(json!({
                    "incremental": boolean(), "dedup_mode": nullable_string(),
                    "columns": { "type": ["array", "null"], "items": string() },
                }), &[]),
                "validate_only": boolean(),
            }),
            &["file_id"],
        ),
    );
    let mut export = filters.clone();
    for (key, schema) in [
        ("format", nullable_string()),
        ("compression", nullable_string()),
        (
            "columns",
            json!({ "type": ["array", "null"], "items": string() }),
        ),
        ("order_by", nullable_string()),
        ("limit", json!({ "type": ["integer", "null"] })),
        ("snapshot", nullable_string()),
    ] {
        export[key] = schema;
    }
    add("ExportRequest", object(export, &[]));
    let mut delete_rows = filters;
    delete_rows["where_clause"] = nullable_string();
    add("DeleteRowsRequest", object(delete_rows, &[]));
    add(
        "AlterColumnRequest",
        object(
            json!({
                "new_name": nullable_string(), "new_type": { "anyOf": [column_type(), { "type": "null" }] },
                "set_not_null": { "type": ["boolean", "null"] }, "set_default": nullable_string(),
            }),
            &[],
        ),
    );
    add(
        "SetPrimaryKeyRequest",
        object(
            json!({ "columns": { "type": "array", "minItems": 1, "items": string() } }),
            &["columns"],
        ),
    );
    add(
        "FilePrepareRequest",
        object(
            json!({
                "filename": string(), "content_type": nullable_string(),
                "size_bytes": { "type": ["integer", "null"], "minimum": 0 },
                "tags": { "type": ["object", "null"] },
            }),
            &["filename"],
        ),
    );
    add(
        "FileRegisterRequest",
        object(
            json!({ "upload_key": string(), "name": nullable_string(), "tags": { "type": ["object", "null"] } }),
            &["upload_key"],
        ),
    );
    add(
        "CreateUploadSession",
        object(
            json!({
                "name": string(), "total_size": count(),
                "chunk_size": { "type": ["integer", "null"], "minimum": 0 },
                "sha256": nullable_string(), "content_type": nullable_string(),
            }),
            &["name", "total_size"],
        ),
    );
    add(
        "CreateBlob",
        object(
            json!({
                "id": { "type": "string", "pattern": "^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,254}$" },
                "data": {
                    "type": "string", "contentEncoding": "base64",
                    "pattern": "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
                },
            }),
            &["id", "data"],
        ),
    );
}

/// The column types the server's allow-list accepts, in their canonical spelling (aliases
/// such as `INT` or `TEXT` and any case are accepted too).
fn column_type() -> Value {
    json!({ "anyOf": [
        { "enum": [
            "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
            "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "VARCHAR", "BLOB",
            "DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ", "INTERVAL", "UUID", "JSON",
        ] },
        { "type": "string", "pattern": "^(DECIMAL|NUMERIC)\\([1-9][0-9]?(,[0-9][0-9]?)?\\)$" },
    ] })
}

fn project() -> Value {
    all_required(json!({
        "id": string(), "name": nullable_string(), "db_path": string(), "created_at": time(),
        "updated_at": time(), "size_bytes": count(), "table_count": count(),
        "bucket_count": count(), "status": string(), "settings": any(),
    }))
}

fn api_key() -> Value {
    all_required(json!({
        "id": string(), "project_id": string(), "branch_id": nullable_string(),
        "key_prefix": string(), "scope": string(), "description": string(),
        "created_at": time(), "last_used_at": nullable_time(), "expires_at": nullable_time(),
        "is_revoked": boolean(), "revoked_at": nullable_time(), "bucket_permissions": any(),
        "file_permissions": any(),
    }))
}

/// The one error body (src/error.rs): top-level fields plus the reference's `detail` object.
fn error() -> Value {
    let fields = json!({
        "error": {"type": "string", "description": "Machine-readable error code (README error table)."},
        "message": {"type": "string"},
        "details": {"description": "Machine-readable details, or null."},
    });
    let mut properties = fields.clone();
    properties["detail"] = object(fields, &["error", "message"]);
    object(properties, &["error", "message", "details", "detail"])
}
