//! The versioned schema of metadata.duckdb and its forward-only migrations.
//! Each migration runs once, in its own transaction, and records its version.

use duckdb::Connection;

use crate::error::{ApiError, ApiResult};

/// Ordered migrations; append only, never edit a released one.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        r#"
    CREATE TABLE projects (
        id VARCHAR PRIMARY KEY,
        name VARCHAR,
        settings JSON,
        status VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL
    );
    CREATE TABLE api_keys (
        id VARCHAR PRIMARY KEY,
        project_id VARCHAR NOT NULL,
        branch_id VARCHAR,
        scope VARCHAR NOT NULL,
        prefix VARCHAR NOT NULL,
        hash VARCHAR NOT NULL,
        description VARCHAR,
        created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP,
        revoked_at TIMESTAMP
    );
    CREATE TABLE buckets (
        project_id VARCHAR NOT NULL,
        branch_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        description VARCHAR,
        created_at TIMESTAMP NOT NULL,
        linked_project_id VARCHAR,
        linked_bucket VARCHAR,
        PRIMARY KEY (project_id, branch_id, name)
    );
    CREATE TABLE tables (
        project_id VARCHAR NOT NULL,
        branch_id VARCHAR NOT NULL,
        bucket VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        primary_key JSON NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (project_id, branch_id, bucket, name)
    );
    CREATE TABLE bucket_shares (
        project_id VARCHAR NOT NULL,
        bucket VARCHAR NOT NULL,
        target_project_id VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (project_id, bucket, target_project_id)
    );
    CREATE TABLE readonly_grants (
        project_id VARCHAR NOT NULL,
        bucket VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (project_id, bucket)
    );
    "#,
    ),
    (
        2,
        r#"
    -- Files: records per project pointing at content-addressed blobs (shared by content).
    CREATE TABLE files (
        id VARCHAR PRIMARY KEY,
        project_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        sha256 VARCHAR NOT NULL,
        size_bytes BIGINT NOT NULL,
        content_type VARCHAR,
        tags JSON,
        -- Set for blobs stored through the seed JSON blob API (`/v1/blobs`), unique per project.
        client_id VARCHAR,
        created_at TIMESTAMP NOT NULL
    );
    -- The reference's prepare -> upload -> register flow; sha256 is set once uploaded.
    CREATE TABLE file_uploads (
        upload_key VARCHAR PRIMARY KEY,
        project_id VARCHAR NOT NULL,
        filename VARCHAR NOT NULL,
        content_type VARCHAR,
        expected_size BIGINT,
        tags JSON,
        sha256 VARCHAR,
        size_bytes BIGINT,
        created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP NOT NULL
    );
    -- Resumable chunked uploads and the chunks received so far.
    CREATE TABLE upload_sessions (
        id VARCHAR PRIMARY KEY,
        project_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        content_type VARCHAR,
        total_size BIGINT NOT NULL,
        chunk_size BIGINT NOT NULL,
        expected_sha256 VARCHAR,
        created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP NOT NULL
    );
    CREATE TABLE upload_chunks (
        session_id VARCHAR NOT NULL,
        idx BIGINT NOT NULL,
        sha256 VARCHAR NOT NULL,
        size_bytes BIGINT NOT NULL,
        PRIMARY KEY (session_id, idx)
    );
    "#,
    ),
    (
        3,
        r#"
    -- Blob contents for STORAGE_BACKEND=database (small objects kept inside the catalog).
    CREATE TABLE blob_data (
        sha256 VARCHAR PRIMARY KEY,
        data BLOB NOT NULL
    );
    "#,
    ),
    (
        4,
        r#"
    -- Asynchronous imports and exports; unfinished ones are marked interrupted at start-up.
    CREATE TABLE jobs (
        id VARCHAR PRIMARY KEY,
        project_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        progress DOUBLE NOT NULL,
        request JSON,
        result JSON,
        error JSON,
        created_at TIMESTAMP NOT NULL,
        started_at TIMESTAMP,
        finished_at TIMESTAMP
    );
    "#,
    ),
    (
        5,
        r#"
    -- What a table list shows, kept beside each table so a list opens no table file (ADR 0022).
    -- NULL until first read from the file (tables created before this version).
    ALTER TABLE tables ADD COLUMN columns JSON;
    ALTER TABLE tables ADD COLUMN row_count BIGINT;
    ALTER TABLE tables ADD COLUMN size_bytes BIGINT;
    ALTER TABLE tables ADD COLUMN updated_at TIMESTAMP;
    -- Lengths and modification times of the table file and its WAL when the figures were read:
    -- a file changed behind the catalog's back (a crash before the record, an operator's tool)
    -- no longer matches and is read again.
    ALTER TABLE tables ADD COLUMN file_stamp VARCHAR;
    "#,
    ),
    (
        6,
        r#"
    -- Scoped keys (ADR 0025): when a key was last used (written in batches), and the optional
    -- narrowing of a key to some buckets ({"bucket": "read"|"write"}) and file rights
    -- (["upload", "read", "delete"]); NULL = no narrowing.
    ALTER TABLE api_keys ADD COLUMN last_used_at TIMESTAMP;
    ALTER TABLE api_keys ADD COLUMN bucket_permissions JSON;
    ALTER TABLE api_keys ADD COLUMN file_permissions JSON;
    "#,
    ),
    (
        7,
        r#"
    -- Stored responses of requests sent with an idempotency key (ADR 0026), per caller
    -- ("admin" or "key:<id>"). The body is sealed with a key derived from the caller's own
    -- secret, so the catalog alone cannot reveal it (a project's one-time key, say).
    CREATE TABLE idempotency_entries (
        caller VARCHAR NOT NULL,
        idem_key VARCHAR NOT NULL,
        method VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        fingerprint VARCHAR NOT NULL,
        status INTEGER NOT NULL,
        headers JSON NOT NULL,
        sealed_body BLOB NOT NULL,
        created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP NOT NULL,
        PRIMARY KEY (caller, idem_key)
    );
    "#,
    ),
    (
        8,
        r#"
    -- The audit trail (ADR 0028): one row per admin or changing request, refused ones too.
    -- project_id is the project the request targeted (NULL for service-wide actions);
    -- principal_project/key_id say whose key it was (NULL for the admin and anonymous callers).
    -- No index: ids are random UUIDs (unique by construction) and reads scan by time, which
    -- DuckDB's zone maps serve; an index would only cost memory on an append-mostly table.
    CREATE TABLE audit_entries (
        id VARCHAR NOT NULL,
        recorded_at TIMESTAMP NOT NULL,
        principal_type VARCHAR NOT NULL,
        principal_project VARCHAR,
        key_id VARCHAR,
        action VARCHAR NOT NULL,
        method VARCHAR NOT NULL,
        route VARCHAR NOT NULL,
        project_id VARCHAR,
        branch_id VARCHAR,
        target JSON NOT NULL,
        outcome INTEGER NOT NULL,
        request_id VARCHAR,
        client_address VARCHAR
    );
    "#,
    ),
    (
        9,
        r#"
    -- Snapshots (ADR 0029). Settings are stored per level; the key columns of a level that
    -- does not apply are '' (not NULL) so the primary key holds: project level has bucket ''
    -- and table '', bucket level has table ''. config is the local JSON as the client PUT it.
    CREATE TABLE snapshot_settings (
        project_id VARCHAR NOT NULL,
        level VARCHAR NOT NULL,
        bucket_name VARCHAR NOT NULL,
        table_name VARCHAR NOT NULL,
        config JSON NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        PRIMARY KEY (project_id, bucket_name, table_name)
    );
    -- One row per snapshot. id is a UUID v7 (time-ordered, random tail): unique per project
    -- and safe as a path part. file_path is relative to DATA_DIR/snapshots.
    CREATE TABLE snapshots (
        id VARCHAR NOT NULL,
        project_id VARCHAR NOT NULL,
        bucket_name VARCHAR NOT NULL,
        table_name VARCHAR NOT NULL,
        snapshot_type VARCHAR NOT NULL,
        row_count BIGINT NOT NULL,
        size_bytes BIGINT NOT NULL,
        created_at TIMESTAMP NOT NULL,
        created_by VARCHAR,
        expires_at TIMESTAMP,
        description VARCHAR,
        schema_columns JSON NOT NULL,
        primary_key JSON NOT NULL,
        file_path VARCHAR NOT NULL,
        PRIMARY KEY (project_id, id)
    );
    "#,
    ),
    (
        10,
        r#"
    -- Dev branches (ADR 0031). A branch holds only what differs from main: branch_tables has
    -- one row per table the branch copied (copy-on-write), created or deleted. base_version
    -- is main's tables.version when the branch copied or deleted it (merge conflicts).
    CREATE TABLE branches (
        project_id VARCHAR NOT NULL,
        id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        description VARCHAR,
        created_at TIMESTAMP NOT NULL,
        created_by VARCHAR,
        PRIMARY KEY (project_id, id)
    );
    CREATE TABLE branch_tables (
        project_id VARCHAR NOT NULL,
        branch_id VARCHAR NOT NULL,
        bucket VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        base_version BIGINT,
        changed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (project_id, branch_id, bucket, name)
    );
    -- Counts the writes to a main table; NULL (older rows) reads as 0.
    ALTER TABLE tables ADD COLUMN version BIGINT;
    "#,
    ),
    (
        11,
        r#"
    -- The S3 face (ADR 0032). Per-key S3 credentials: the secret is sealed with a key kept in
    -- DATA_DIR (never in this file), so SigV4 can be verified and a copy of the catalog alone
    -- does not give it away.
    CREATE TABLE s3_credentials (
        access_key_id VARCHAR PRIMARY KEY,
        project_id VARCHAR NOT NULL,
        api_key_id VARCHAR NOT NULL,
        sealed_secret BLOB NOT NULL,
        created_at TIMESTAMP NOT NULL
    );
    -- The quoted MD5 ETag of a file record written through S3 (records from the Files API
    -- have none and show their SHA-256 instead).
    CREATE TABLE s3_etags (
        file_id VARCHAR PRIMARY KEY,
        etag VARCHAR NOT NULL
    );
    -- Open multipart uploads; their parts are files under DATA_DIR/files/s3-parts/{upload_id}.
    CREATE TABLE s3_multipart (
        upload_id VARCHAR PRIMARY KEY,
        project_id VARCHAR NOT NULL,
        object_key VARCHAR NOT NULL,
        content_type VARCHAR,
        created_at TIMESTAMP NOT NULL
    );
    "#,
    ),
    (
        12,
        r#"
    -- Workspaces (ADR 0033): a sandboxed DuckDB file per workspace. The wire password is kept
    -- only as SCRAM-SHA-256 keys (salt, iterations, StoredKey, ServerKey), as PostgreSQL does.
    CREATE TABLE workspaces (
        id VARCHAR PRIMARY KEY,
        project_id VARCHAR NOT NULL,
        branch_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP,
        size_limit_gb INTEGER NOT NULL,
        scram_salt VARCHAR NOT NULL,
        scram_iterations INTEGER NOT NULL,
        scram_stored_key VARCHAR NOT NULL,
        scram_server_key VARCHAR NOT NULL
    );
    "#,
    ),
    (
        13,
        r#"
    -- Snapshots per dev branch (ADR 0031): the branch a snapshot was taken in; NULL for main
    -- (every snapshot taken before this version was main's or recorded as main's).
    ALTER TABLE snapshots ADD COLUMN branch_id VARCHAR;
    "#,
    ),
];

/// The schema version this build writes.
pub const CURRENT_VERSION: i32 = 13;

/// Brings the catalog to `CURRENT_VERSION`; refuses a catalog written by a newer build.
pub fn migrate(conn: &mut Connection) -> ApiResult<i32> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)",
    )?;
    let current: i32 = conn.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    if current > CURRENT_VERSION {
        return Err(ApiError::internal(format!(
            "catalog schema version {current} is newer than this build supports ({CURRENT_VERSION})"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version VALUES (?, make_timestamp(?))",
            duckdb::params![version, chrono::Utc::now().timestamp_micros()],
        )?;
        tx.commit()?;
        tracing::info!(version, "applied catalog migration");
    }
    Ok(CURRENT_VERSION)
}
