//! What each operation of the route table answers: success statuses and bodies, request body,
//! query parameters and route-specific errors, keyed by (method, route template).
//! Long: one entry per operation of the whole API; splitting it by family would scatter the table.

use serde_json::{json, Value};

use super::schemas::{name, r};

mod internal;

/// The documentation of one operation. Built with the methods below; `mod.rs` turns it into the
/// OpenAPI operation object next to what the route table itself says (security, path params).
#[derive(Default)]
pub struct Doc {
    pub summary: &'static str,
    pub query: Vec<Value>,
    pub headers: Vec<Value>,
    pub body: Option<Value>,
    /// Success (and other non-error) statuses with their response objects.
    pub responses: Vec<(u16, Value)>,
    /// Error statuses this operation answers beyond the ones every operation can.
    pub errors: Vec<u16>,
}

fn doc(summary: &'static str) -> Doc {
    Doc {
        summary,
        ..Doc::default()
    }
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

impl Doc {
    /// `status` with a JSON body of `schema`.
    fn ok(mut self, status: u16, description: &str, schema: Value) -> Self {
        self.responses.push((
            status,
            json!({ "description": description, "content": json_content(schema) }),
        ));
        self
    }

    /// `status` with a body of another media type (files, streams, text).
    fn content(mut self, status: u16, description: &str, content: Value) -> Self {
        self.responses.push((
            status,
            json!({ "description": description, "content": content }),
        ));
        self
    }

    /// `status` without a body (204, 304).
    fn empty(mut self, status: u16, description: &str) -> Self {
        self.responses
            .push((status, json!({ "description": description })));
        self
    }

    fn no_content(self) -> Self {
        self.empty(204, "Done; no body.")
    }

    /// 202 with the queued job and a `Location` to poll (`?async=true`).
    fn queued(self) -> Self {
        self.ok(
            202,
            "Queued as a job (`?async=true`); poll the `Location` header's URL.",
            r("Job"),
        )
        .query("async", json!({ "type": "boolean" }))
    }

    /// A JSON request body of component `schema`; `required` when the handler needs one.
    fn body(mut self, schema: &str, required: bool) -> Self {
        self.body = Some(json!({ "required": required, "content": json_content(r(schema)) }));
        self
    }

    /// A request body of other media types (uploads).
    fn raw_body(mut self, content: Value) -> Self {
        self.body = Some(json!({ "required": true, "content": content }));
        self
    }

    fn query(mut self, name: &str, schema: Value) -> Self {
        self.query
            .push(json!({ "name": name, "in": "query", "required": false, "schema": schema }));
        self
    }

    fn header(mut self, name: &str, description: &str) -> Self {
        self.headers.push(json!({
            "name": name, "in": "header", "required": false, "description": description,
            "schema": { "type": "string" },
        }));
        self
    }

    fn errors(mut self, statuses: &[u16]) -> Self {
        self.errors.extend_from_slice(statuses);
        self
    }

    /// `?limit=` and `?offset=` of the paged lists.
    fn paged(self) -> Self {
        self.query(
            "limit",
            json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
        )
        .query("offset", json!({ "type": "integer", "minimum": 0 }))
    }

    /// The row selection of previews, streamed exports and row deletes (query form).
    fn filters(self) -> Self {
        let text = || json!({ "type": "string" });
        self.query("where_filter", text())
            .query("where_clause", text())
            .query("filters", text())
            .query("whereColumn", text())
            .query("whereValues", text())
            .query("whereOperator", text())
    }

    fn selection(self) -> Self {
        self.filters()
            .query("columns", json!({ "type": "string" }))
            .query("order_by", json!({ "type": "string" }))
    }

    /// A stored file's content, whole or in ranges, with its ETag.
    fn download(self) -> Self {
        let any = json!({ "*/*": { "schema": {} } });
        self.header(
            "Range",
            "`bytes=` ranges; several give multipart/byteranges.",
        )
        .header("If-None-Match", "The ETag (SHA-256) of the client's copy.")
        .header(
            "If-Range",
            "Honour Range only while the content has this ETag.",
        )
        .content(200, "The whole content.", any.clone())
        .content(206, "The asked range(s).", any)
        .empty(304, "The client's copy (If-None-Match) is current.")
        .errors(&[416])
    }
}

/// A file's bytes, as a raw body or one multipart `file` part.
fn upload_body() -> Value {
    json!({
        "application/octet-stream": { "schema": { "type": "string", "format": "binary" } },
        "multipart/form-data": { "schema": multipart_file() },
    })
}

fn multipart_file() -> Value {
    json!({
        "type": "object",
        "properties": { "file": { "type": "string", "format": "binary" } },
        "required": ["file"],
    })
}

/// The documentation of `method path`. Bucket and table routes are written once under
/// `/projects/{project_id}`: their branch-first twins (`…/branches/{branch_id}/buckets…`)
/// answer alike, so they are looked up under the short template when not listed themselves.
pub fn documented(method: &str, path: &str) -> Option<Doc> {
    entry(method, path).or_else(|| {
        let rest = path.strip_prefix("/projects/{project_id}/branches/{branch_id}")?;
        (rest.starts_with("/buckets")
            || rest.starts_with("/snapshots")
            || rest.starts_with("/workspaces"))
        .then(|| entry(method, &format!("/projects/{{project_id}}{rest}")))?
    })
}

/// `?skip_snapshot=true` and the refusals of a change that promises an auto-snapshot first.
fn snapshotted(d: Doc) -> Doc {
    d.query("skip_snapshot", json!({ "type": "boolean" }))
        .errors(&[503, 507])
}

const TABLE: &str = "/projects/{project_id}/buckets/{bucket_name}/tables/{table_name}";

fn entry(method: &str, path: &str) -> Option<Doc> {
    if let Some(suffix) = path.strip_prefix(TABLE) {
        return table_entry(method, suffix);
    }
    if let Some(suffix) = path.strip_prefix("/projects/{project_id}/workspaces") {
        return workspace_entry(method, suffix);
    }
    if let Some(suffix) = path.strip_prefix("/internal/pgwire") {
        return internal::entry(method, suffix);
    }
    let d = match (method, path) {
        ("GET", "/") => doc("Service name, version and links").ok(200, "Service info.", r("ServiceInfo")),
        ("GET", "/health") => doc("Health in the reference's shape")
            .ok(200, "Healthy.", r("HealthResponse"))
            .errors(&[503]),
        ("GET", "/healthz") => doc("Liveness").ok(200, "Alive.", r("Liveness")),
        ("GET", "/readyz") => doc("Readiness: data dir writable, enough free space")
            .ok(200, "Ready.", r("Readiness"))
            .errors(&[503]),
        ("GET", "/metrics") => doc("Prometheus metrics").content(
            200,
            "Prometheus text exposition format.",
            json!({ "text/plain": { "schema": { "type": "string" } } }),
        ),
        ("GET", "/openapi.json") => doc("This document")
            .ok(200, "The OpenAPI 3.1 document.", json!({ "type": "object" })),
        ("GET", "/docs") => doc("HTML page listing the operations").content(
            200,
            "A self-contained HTML page.",
            json!({ "text/html": { "schema": { "type": "string" } } }),
        ),
        ("POST", "/backend/init") => doc("Create the data dir layout (idempotent)")
            .ok(200, "Initialized.", r("InitBackendResponse")),
        ("POST", "/backend/remove") => doc("No-op, as in the reference")
            .ok(200, "Nothing removed.", r("InitBackendResponse")),
        ("GET", "/admin/quarantine") => doc("What start-up moved to the quarantine")
            .ok(200, "Quarantined paths.", r("Quarantine")),
        ("GET", "/admin/engine") => doc("Sizes of the engine's in-memory tables")
            .ok(200, "Counters.", r("EngineSizes")),
        ("GET", "/admin/audit") => audit("The whole audit trail, newest first")
            .query("project_id", json!({ "type": "string" })),
        ("GET", "/projects") => doc("List projects")
            .paged()
            .query("status", json!({ "enum": ["active", "deleted"] }))
            .ok(200, "A page of projects.", r("ProjectListResponse")),
        ("POST", "/projects") => doc("Create a project; its admin key is shown once")
            .body("ProjectCreate", true)
            .ok(201, "Created.", r("ProjectCreateResponse"))
            .errors(&[409]),
        ("GET", "/projects/{project_id}") => doc("Get a project").ok(200, "The project.", r("ProjectResponse")),
        ("PUT", "/projects/{project_id}") => doc("Update a project's name or settings")
            .body("ProjectUpdate", false)
            .ok(200, "The updated project.", r("ProjectResponse")),
        ("DELETE", "/projects/{project_id}") => doc("Delete a project and all its data").no_content(),
        ("GET", "/projects/{project_id}/stats") => doc("A project's sizes and counts")
            .ok(200, "Statistics.", r("ProjectStatsResponse")),
        ("GET", "/projects/{project_id}/audit") => audit("The project's audit trail, newest first"),
        ("GET", "/projects/{project_id}/api-keys") => doc("List the project's keys")
            .ok(200, "The keys (never their secrets).", r("ApiKeyListResponse")),
        ("POST", "/projects/{project_id}/api-keys") => doc("Issue a key; the key is shown once")
            .body("ApiKeyCreateRequest", true)
            .ok(201, "Issued.", r("ApiKeyCreateResponse")),
        ("GET", "/projects/{project_id}/api-keys/{key_id}") => doc("Get a key")
            .ok(200, "The key (never its secret).", r("ApiKeyResponse")),
        ("DELETE", "/projects/{project_id}/api-keys/{key_id}") => doc("Revoke a key").no_content(),
        ("POST", "/projects/{project_id}/api-keys/{key_id}/rotate") => {
            doc("Replace a key's secret; the new key is shown once")
                .ok(201, "Rotated.", r("ApiKeyCreateResponse"))
        }
        ("GET", "/projects/{project_id}/buckets") => doc("List buckets")
            .ok(200, "The buckets the key may see.", r("BucketListResponse")),
        ("POST", "/projects/{project_id}/buckets") => doc("Create a bucket")
            .body("BucketCreate", true)
            .ok(201, "Created.", r("BucketResponse"))
            .errors(&[409]),
        ("GET", "/projects/{project_id}/buckets/{bucket_name}") => doc("Get a bucket")
            .ok(200, "The bucket.", r("BucketResponse")),
        ("DELETE", "/projects/{project_id}/buckets/{bucket_name}") => {
            doc("Delete a bucket (a non-empty one only with cascade)")
                .query("force", json!({ "type": "boolean" }))
                .query("cascade", json!({ "type": "boolean" }))
                .no_content()
        }
        ("POST", "/projects/{project_id}/buckets/{bucket_name}/share") => {
            doc("Share a bucket with another project")
                .body("BucketShareRequest", true)
                .ok(200, "Who the bucket is shared with.", r("BucketShareInfo"))
        }
        ("DELETE", "/projects/{project_id}/buckets/{bucket_name}/share") => {
            doc("Stop sharing a bucket with a project")
                .query("target_project_id", name())
                .body("BucketShareRequest", false)
                .no_content()
        }
        ("POST", "/projects/{project_id}/buckets/{bucket_name}/link") => {
            doc("Link a bucket shared by another project")
                .body("BucketLinkRequest", true)
                .ok(201, "The link, a read-only bucket.", r("BucketResponse"))
        }
        ("DELETE", "/projects/{project_id}/buckets/{bucket_name}/link") => {
            doc("Remove a link").no_content()
        }
        ("POST", "/projects/{project_id}/buckets/{bucket_name}/grant-readonly") => {
            doc("Make a bucket's tables read-only").ok(200, "Granted.", r("ReadonlyGrant"))
        }
        ("DELETE", "/projects/{project_id}/buckets/{bucket_name}/grant-readonly") => {
            doc("Make a bucket's tables writable again (idempotent)").no_content()
        }
        ("GET", "/projects/{project_id}/buckets/{bucket_name}/tables") => doc("List tables")
            .ok(200, "The tables.", r("TableListResponse")),
        ("POST", "/projects/{project_id}/buckets/{bucket_name}/tables") => doc("Create a table")
            .body("TableCreate", true)
            .ok(201, "Created.", r("TableResponse"))
            .errors(&[409]),
        ("POST", "/projects/{project_id}/buckets/{bucket_name}/tables/from-file") => {
            doc("Create a table from a stored file, its columns read from the file")
                .body("CreateTableFromFile", true)
                .ok(201, "Created and loaded.", r("TableFromFile"))
                .errors(&[409])
        }
        ("GET", "/projects/{project_id}/settings/snapshots")
        | ("GET", "/projects/{project_id}/buckets/{bucket_name}/settings/snapshots") => {
            snapshot_settings_get()
        }
        ("PUT", "/projects/{project_id}/settings/snapshots")
        | ("PUT", "/projects/{project_id}/buckets/{bucket_name}/settings/snapshots") => {
            snapshot_settings_put()
        }
        ("DELETE", "/projects/{project_id}/settings/snapshots")
        | ("DELETE", "/projects/{project_id}/buckets/{bucket_name}/settings/snapshots") => {
            snapshot_settings_delete()
        }
        ("GET", "/projects/{project_id}/files") => doc("List files")
            .paged()
            .query("include_staged", json!({ "type": "boolean" }))
            .ok(200, "A page of files.", r("FileListResponse")),
        ("POST", "/projects/{project_id}/files") => doc("Register a prepared upload as a file")
            .body("FileRegisterRequest", true)
            .ok(201, "Registered.", r("FileResponse"))
            .errors(&[410, 507]),
        ("POST", "/projects/{project_id}/files/prepare") => doc("Prepare an upload")
            .body("FilePrepareRequest", true)
            .ok(200, "Where to upload.", r("FilePrepareResponse"))
            .errors(&[507]),
        ("POST", "/projects/{project_id}/files/upload/{upload_key}") => {
            doc("Upload the content of a prepared upload (multipart `file` part)")
                .raw_body(json!({ "multipart/form-data": { "schema": multipart_file() } }))
                .ok(200, "Stored; register it next.", r("FileUploadResponse"))
                .errors(&[410, 507])
        }
        ("POST", "/projects/{project_id}/files/content") => {
            doc("Store a file in one request (raw body or multipart)")
                .query("name", json!({ "type": "string" }))
                .query("content_type", json!({ "type": "string" }))
                .raw_body(upload_body())
                .ok(201, "Stored.", r("FileResponse"))
                .errors(&[507])
        }
        ("GET", "/projects/{project_id}/files/{file_id}") => doc("Get a file's record")
            .ok(200, "The file.", r("FileResponse")),
        ("DELETE", "/projects/{project_id}/files/{file_id}") => doc("Delete a file").no_content(),
        ("GET", "/projects/{project_id}/files/{file_id}/download") => {
            doc("Download a file's content").download()
        }
        ("POST", "/projects/{project_id}/uploads") => doc("Open a resumable upload session")
            .body("CreateUploadSession", true)
            .ok(201, "Opened.", r("UploadSession"))
            .errors(&[507]),
        ("GET", "/projects/{project_id}/uploads/{upload_id}") => doc("An upload session's progress")
            .ok(200, "The session.", r("UploadSession"))
            .errors(&[410]),
        ("DELETE", "/projects/{project_id}/uploads/{upload_id}") => {
            doc("Abort an upload session").no_content().errors(&[410])
        }
        ("PUT", "/projects/{project_id}/uploads/{upload_id}/chunks/{n}") => {
            doc("Store chunk `n` (idempotent for the same content)")
                .header("X-Chunk-SHA256", "The chunk's SHA-256, checked when given.")
                .raw_body(json!({ "application/octet-stream": { "schema": { "type": "string", "format": "binary" } } }))
                .ok(200, "Stored (or already stored).", r("StoredChunk"))
                .errors(&[410])
        }
        ("POST", "/projects/{project_id}/uploads/{upload_id}/complete") => {
            doc("Assemble the chunks into a file")
                .ok(201, "The file.", r("FileResponse"))
                .errors(&[410])
        }
        ("GET", "/projects/{project_id}/branches") => doc("List dev branches, newest first")
            .paged()
            .ok(200, "A page of branches.", r("BranchListResponse")),
        ("POST", "/projects/{project_id}/branches") => doc("Create a dev branch")
            .body("BranchCreateRequest", true)
            .ok(201, "Created.", r("BranchResponse"))
            .errors(&[409]),
        ("GET", "/projects/{project_id}/branches/{branch_id}") => doc("Get a dev branch")
            .ok(200, "The branch and the tables it copied.", r("BranchDetailResponse")),
        ("DELETE", "/projects/{project_id}/branches/{branch_id}") => {
            doc("Delete a dev branch with its tables and keys").no_content()
        }
        (
            "POST",
            "/projects/{project_id}/branches/{branch_id}/tables/{bucket_name}/{table_name}/pull",
        ) => doc("Drop the branch's copy of a table: it reads main's again")
            .ok(200, "Pulled.", r("PullTableResponse")),
        ("POST", "/projects/{project_id}/branches/{branch_id}/merge") => snapshotted(
            doc("Merge the branch's tables into main, atomically per table")
                .body("BranchMergeRequest", false)
                .query("force", json!({ "type": "boolean" }))
                .ok(200, "Merged.", r("BranchMergeResponse"))
                .errors(&[409]),
        ),
        ("GET", "/projects/{project_id}/branches/{branch_id}/diff") => {
            doc("What the branch changed, table by table")
                .ok(200, "The changes.", r("BranchDiffResponse"))
        }
        ("GET", "/projects/{project_id}/snapshots") => doc("List the path branch's snapshots, newest first (project paths: main's)")
            .query("bucket", json!({ "type": "string" }))
            .query("table", json!({ "type": "string" }))
            .query("type", json!({ "type": "string" }))
            .paged()
            .ok(200, "A page of snapshots.", r("SnapshotListResponse")),
        ("POST", "/projects/{project_id}/snapshots") => doc("Take a snapshot of a table")
            .body("SnapshotCreateRequest", true)
            .ok(201, "Taken.", r("SnapshotDetailResponse"))
            .errors(&[507]),
        ("GET", "/projects/{project_id}/snapshots/{snapshot_id}") => doc("Get a snapshot")
            .ok(200, "The snapshot with its table definition.", r("SnapshotDetailResponse")),
        ("DELETE", "/projects/{project_id}/snapshots/{snapshot_id}") => {
            doc("Delete a snapshot and its file").no_content()
        }
        ("POST", "/projects/{project_id}/snapshots/{snapshot_id}/restore") => snapshotted(
            doc("Restore a snapshot onto its table or into a new one")
                .body("SnapshotRestoreRequest", false)
                .ok(200, "Restored.", r("SnapshotRestoreResponse"))
                .errors(&[409]),
        ),
        ("GET", "/projects/{project_id}/jobs") => doc("The project's recent jobs")
            .query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 1000 }))
            .ok(200, "Jobs, newest first.", r("JobList")),
        ("GET", "/projects/{project_id}/jobs/{job_id}") => doc("A job's status and outcome")
            .ok(200, "The job.", r("Job")),
        ("POST", "/files") => doc("Store a file in the caller's project (raw body or multipart)")
            .query("name", json!({ "type": "string" }))
            .raw_body(upload_body())
            .ok(201, "Stored.", r("FileInfo"))
            .errors(&[507]),
        ("GET", "/files/{file_id}") => doc("Download a file by its SHA-256").download(),
        ("DELETE", "/files/{file_id}") => doc("Delete every file with this SHA-256").no_content(),
        ("GET", "/files/{file_id}/info") => doc("A file's record by its SHA-256")
            .ok(200, "The file.", r("FileInfo")),
        ("POST", "/v1/blobs") => doc("Store a small base64 blob under a client id")
            .body("CreateBlob", true)
            .ok(201, "Stored.", r("BlobCreated"))
            .errors(&[507]),
        ("POST", "/projects/{project_id}/s3-credentials") => doc(
            "Issue an S3 access key id and secret for one of the project's API keys; the secret is shown once",
        )
        .raw_body(json!({ "application/json": { "schema": {
            "type": "object", "required": ["api_key_id"],
            "properties": { "api_key_id": { "type": "string" } } } } }))
        .ok(201, "The credential.", json!({ "type": "object", "properties": {
            "access_key_id": { "type": "string" }, "secret_access_key": { "type": "string" },
            "api_key_id": { "type": "string" }, "project_id": { "type": "string" },
            "bucket": { "type": "string" }, "endpoint_path": { "type": "string" },
            "region": { "type": "string" }, "created_at": { "type": "string" } } })),
        (_, path) if path == "/s3" || path.starts_with("/s3/") => s3_entry(method, path)?,
        ("GET", "/v1/blobs/{id}") => doc("A blob and its content (base64)").ok(200, "The blob.", r("Blob")),
        _ => return None,
    };
    Some(d)
}

/// The S3 face (ADR 0032): AWS's own XML, documented by AWS; here only what each route is.
fn s3_entry(method: &str, path: &str) -> Option<Doc> {
    let xml = |summary, what| {
        doc(summary).content(
            200,
            what,
            json!({ "application/xml": { "schema": { "type": "string" } } }),
        )
    };
    let d = match (method, path) {
        ("GET", "/s3") => xml(
            "S3 ListBuckets (SigV4 or API key)",
            "ListAllMyBucketsResult.",
        ),
        ("GET", "/s3/{bucket}") => xml(
            "S3 ListObjectsV2 / ListObjects, GetBucketLocation, HeadBucket",
            "ListBucketResult.",
        ),
        ("PUT", "/s3/{bucket}") => xml("S3 CreateBucket (buckets are projects: 409)", "Never."),
        ("POST", "/s3/{bucket}") => xml("S3 DeleteObjects (`?delete`)", "DeleteResult."),
        ("POST", "/s3/{bucket}/presign") => doc("Presign a GET, PUT, DELETE or HEAD of one key")
            .ok(
                200,
                "The SigV4 presigned URL.",
                json!({ "type": "object", "properties": {
                "url": { "type": "string" }, "expires_at": { "type": "string" },
                "method": { "type": "string" } } }),
            ),
        ("GET", "/s3/{bucket}/{*key}") => doc("S3 GetObject / HeadObject / ListParts").download(),
        ("PUT", "/s3/{bucket}/{*key}") => xml(
            "S3 PutObject, CopyObject, UploadPart",
            "Stored (ETag header), or CopyObjectResult.",
        ),
        ("POST", "/s3/{bucket}/{*key}") => xml(
            "S3 CreateMultipartUpload (`?uploads`), CompleteMultipartUpload (`?uploadId`)",
            "The XML result.",
        ),
        ("DELETE", "/s3/{bucket}/{*key}") => {
            doc("S3 DeleteObject, AbortMultipartUpload").no_content()
        }
        _ => return None,
    };
    // S3's own statuses: conflicts, failed preconditions, ranges, unsupported operations.
    Some(d.errors(&[304, 405, 409, 412, 416, 501, 503, 507]))
}

/// Routes below `…/tables/{table_name}`, by the rest of the template.
fn table_entry(method: &str, suffix: &str) -> Option<Doc> {
    let table = |summary| doc(summary).ok(200, "The table afterwards.", r("TableResponse"));
    let d = match (method, suffix) {
        ("GET", "") => doc("Get a table").ok(200, "The table.", r("TableResponse")),
        ("DELETE", "") => snapshotted(doc("Drop a table").no_content()),
        ("GET", "/preview") => doc("Up to `limit` rows")
            .query("limit", json!({ "type": "integer", "minimum": 1, "maximum": 10000 }))
            .query("snapshot", json!({ "type": "string" }))
            .selection()
            .ok(200, "The rows.", r("TablePreviewResponse")),
        ("POST", "/import/file") => snapshotted(
            doc("Load a stored file into the table")
                .body("ImportFromFileRequest", true)
                .ok(200, "Loaded.", r("ImportResponse"))
                .queued()
                .errors(&[409]),
        ),
        ("POST", "/export") => doc("Write the table's rows to a stored file")
            .query("snapshot", json!({ "type": "string" }))
            .body("ExportRequest", false)
            .ok(200, "Written.", r("ExportResponse"))
            .queued(),
        ("GET", "/export") => doc("Stream the table's rows as CSV or Parquet")
            .query("format", json!({ "enum": ["csv", "parquet"] }))
            .query("compression", json!({ "type": "string" }))
            .query("limit", json!({ "type": "integer", "minimum": 0 }))
            .query("snapshot", json!({ "type": "string" }))
            .selection()
            .content(
                200,
                "The rows.",
                json!({
                    "text/csv": { "schema": { "type": "string" } },
                    "application/vnd.apache.parquet": { "schema": { "type": "string", "format": "binary" } },
                }),
            ),
        ("POST", "/columns") => doc("Add a column")
            .body("ColumnDefinition", true)
            .ok(201, "The table afterwards.", r("TableResponse"))
            .errors(&[409]),
        ("PUT", "/columns/{column_name}") => table("Rename, retype or change a column")
            .body("AlterColumnRequest", true)
            .errors(&[409]),
        ("DELETE", "/columns/{column_name}") => snapshotted(table("Drop a column")),
        ("POST", "/primary-key") => doc("Add a primary key")
            .body("SetPrimaryKeyRequest", true)
            .ok(201, "The table afterwards.", r("TableResponse"))
            .errors(&[409]),
        ("DELETE", "/primary-key") => table("Drop the primary key"),
        ("DELETE", "/rows") => snapshotted(
            doc("Delete the rows a filter matches")
                .filters()
                .body("DeleteRowsRequest", false)
                .ok(200, "Deleted.", r("DeleteRowsResponse")),
        ),
        ("POST", "/profile") => doc("Per-column statistics").ok(200, "Statistics.", r("TableProfileResponse")),
        ("GET", "/settings/snapshots") => snapshot_settings_get(),
        ("PUT", "/settings/snapshots") => snapshot_settings_put(),
        ("DELETE", "/settings/snapshots") => snapshot_settings_delete(),
        _ => return None,
    };
    Some(d)
}

fn audit(summary: &'static str) -> Doc {
    let text = || json!({ "type": "string" });
    doc(summary)
        .query("action", text())
        .query("since", json!({ "type": "string", "format": "date-time" }))
        .query("until", json!({ "type": "string", "format": "date-time" }))
        .query("key_id", text())
        .query(
            "limit",
            json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
        )
        .query("cursor", text())
        .ok(200, "A page of entries.", r("AuditPage"))
}

fn snapshot_settings_get() -> Doc {
    doc("Effective snapshot settings and where each comes from").ok(
        200,
        "The settings.",
        r("SnapshotSettingsResponse"),
    )
}

fn snapshot_settings_put() -> Doc {
    doc("Replace this level's snapshot settings")
        .body("SnapshotConfigRequest", false)
        .ok(
            200,
            "The settings afterwards.",
            r("SnapshotSettingsResponse"),
        )
}

fn snapshot_settings_delete() -> Doc {
    doc("Reset this level's snapshot settings (inherit everything)").no_content()
}

/// Workspace routes (ADR 0033), under `/projects/{project_id}/workspaces`.
fn workspace_entry(method: &str, suffix: &str) -> Option<Doc> {
    let object = || json!({ "type": "object" });
    let ws = |summary| doc(summary).errors(&[410]);
    let d = match (method, suffix) {
        ("GET", "") => doc("List workspaces").ok(
            200,
            "The workspaces.",
            json!({ "type": "object", "required": ["workspaces", "count"], "properties": {
                "workspaces": { "type": "array", "items": object() },
                "count": { "type": "integer" } } }),
        ),
        ("POST", "") => doc("Create a workspace; the password is shown only here")
            .raw_body(json_content(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "name": { "type": "string", "minLength": 1, "maxLength": 255 },
                    "ttl_hours": { "type": ["integer", "null"], "minimum": 1, "maximum": 168 },
                    "size_limit_gb": { "type": ["integer", "null"], "minimum": 1, "maximum": 100 },
                    "preload_tables": { "type": ["array", "null"], "items": { "type": "string" } },
                },
                "required": ["name"],
            })))
            .ok(201, "The workspace with its connection details.", object()),
        ("GET", "/{workspace_id}") => ws("Get a workspace with its sessions, tables and objects")
            .ok(200, "The workspace.", object()),
        ("DELETE", "/{workspace_id}") => doc("Delete a workspace and its database").no_content(),
        ("POST", "/{workspace_id}/clear") => {
            ws("Drop every table and view of the workspace").no_content()
        }
        ("DELETE", "/{workspace_id}/objects/{object_name}") => {
            ws("Drop one table or view of the workspace").no_content()
        }
        ("POST", "/{workspace_id}/load") => ws("Copy project tables into the workspace")
            .raw_body(json_content(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": { "tables": { "type": "array", "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "source": { "type": "string" },
                        "destination": { "type": ["string", "null"] },
                        "columns": { "type": ["array", "null"], "items": { "type": "string" } },
                        "where": { "type": ["string", "null"] },
                    },
                    "required": ["source"],
                } } },
                "required": ["tables"],
            })))
            .ok(200, "What was loaded.", object())
            .errors(&[507]),
        ("POST", "/{workspace_id}/credentials/reset") => ws("Issue a new wire password").ok(
            200,
            "The connection details with the new password.",
            object(),
        ),
        ("POST", "/{workspace_id}/query") => ws("Run SQL in the workspace's sandbox")
            .raw_body(json_content(json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "sql": { "type": "string" },
                    "limit": { "type": ["integer", "null"], "minimum": 0 },
                },
                "required": ["sql"],
            })))
            .ok(200, "The last statement's columns and rows.", object())
            .errors(&[408, 429, 507]),
        _ => return None,
    };
    Some(d)
}
