//! Runtime settings: embedded defaults < `duckbank.toml` < `.env` < environment variables.
//! Accepts the reference service's variable names (ADMIN_API_KEY, DATA_DIR, …) and `DUCKBANK_*`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// A secret string whose `Debug`/`Display` never reveal it.
#[derive(Clone, Default, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

/// Environment values are typed by figment (`12345` becomes a number), so a secret accepts
/// any scalar and keeps its text.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Text(String),
            Int(i128),
            Float(f64),
            Bool(bool),
        }
        Ok(Secret(match Scalar::deserialize(d)? {
            Scalar::Text(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }))
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A setting with a fixed set of spellings. Read case-insensitively, so a bad value stops the
/// server at start (naming the allowed ones) instead of surfacing later as a runtime error.
trait Choice: Copy + PartialEq + 'static {
    /// Every value with its canonical (lowercase) spelling.
    const CHOICES: &'static [(&'static str, Self)];

    fn as_str(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |(name, _)| name)
    }
}

/// `#[serde(with = "choice")]` for `Choice` fields: written as the canonical name, read from
/// any case of one.
mod choice {
    use std::fmt;
    use std::marker::PhantomData;

    use super::Choice;

    pub fn serialize<T: Choice, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.as_str())
    }

    pub fn deserialize<'de, T: Choice, D: serde::Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        d.deserialize_str(Visitor(PhantomData))
    }

    fn allowed<T: Choice>() -> String {
        let names: Vec<&str> = T::CHOICES.iter().map(|(name, _)| *name).collect();
        names.join(", ")
    }

    struct Visitor<T>(PhantomData<T>);

    impl<T: Choice> serde::de::Visitor<'_> for Visitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "one of {}", allowed::<T>())
        }

        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<T, E> {
            T::CHOICES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(value.trim()))
                .map(|(_, v)| *v)
                // figment appends ` for key "VARIABLE" in <source>` to this message.
                .ok_or_else(|| {
                    E::custom(format!(
                        "unknown value {value:?} (allowed: {})",
                        allowed::<T>()
                    ))
                })
        }
    }
}

/// Where file contents live (`STORAGE_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBackend {
    /// Content-addressed files under `DATA_DIR/files/blobs`.
    Local,
    /// Inside metadata.duckdb, for small objects.
    Database,
    /// An S3-compatible bucket (the `S3_*` settings).
    S3,
}

impl Choice for StorageBackend {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("local", Self::Local),
        ("database", Self::Database),
        ("s3", Self::S3),
    ];
}

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Choice for LogFormat {
    const CHOICES: &'static [(&'static str, Self)] = &[("text", Self::Text), ("json", Self::Json)];
}

/// Every setting the server reads. `.env.example` documents each one.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Config {
    /// Interface to bind.
    pub host: String,
    /// TCP port; 0 picks a free one (tests).
    pub port: u16,
    /// Root of all persistent state: metadata.duckdb, duckdb/, files/, snapshots/, admin.key.
    pub data_dir: PathBuf,
    /// Master key for admin endpoints. When unset, one is generated into `DATA_DIR/admin.key`.
    pub admin_api_key: Option<Secret>,
    /// DuckDB worker threads for the whole process (0 = number of cores).
    pub duckdb_threads: u32,
    /// DuckDB memory limit for the whole process, e.g. "4GB".
    pub duckdb_memory_limit: String,
    /// `/readyz` answers 503 when the data dir has less free space than this.
    pub min_free_bytes: u64,
    /// Largest JSON request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// How long a verified project key stays cached in memory.
    pub key_cache_ttl_secs: u64,
    /// How many verified keys the cache holds at most.
    pub key_cache_capacity: u64,
    /// How many table files stay attached at once (least recently used are detached).
    pub table_cache_size: usize,
    /// Log output: text or json.
    #[serde(with = "choice")]
    pub log_format: LogFormat,
    /// Where file contents live: local, database or s3.
    #[serde(with = "choice")]
    pub storage_backend: StorageBackend,
    /// Largest object the "database" backend stores (413 above it).
    pub database_blob_max_bytes: u64,
    /// S3 backend: endpoint URL of an S3-compatible server (empty = AWS).
    pub s3_endpoint: Option<String>,
    /// S3 backend: bucket holding the blobs.
    pub s3_bucket: Option<String>,
    /// S3 backend: region.
    pub s3_region: String,
    /// S3 backend: access key id.
    pub s3_access_key_id: Option<Secret>,
    /// S3 backend: secret access key.
    pub s3_secret_access_key: Option<Secret>,
    /// S3 backend: key prefix under which blobs are stored.
    pub s3_prefix: String,
    /// Largest file accepted in bytes (413 above it); 0 = unlimited.
    pub max_file_bytes: u64,
    /// Per-project limit on the bytes of all its files and pending uploads; 0 = unlimited.
    pub project_quota_bytes: u64,
    /// Per-project limit on the number of files; 0 = unlimited.
    pub project_quota_files: u64,
    /// How long prepared uploads and resumable upload sessions stay valid.
    pub upload_ttl_secs: u64,
    /// How often expired uploads, stale temp and work files and unreferenced blobs are removed.
    pub cleanup_interval_secs: u64,
    /// Asynchronous jobs (imports, exports) that run at the same time.
    pub job_workers: usize,
    /// Threads for bulk table work (imports, exports, profiles, schema changes, row deletes);
    /// more such requests wait. They run at a lower CPU priority than request handling.
    pub bulk_threads: usize,
    /// Jobs waiting or running at most; further async submits get 429 with Retry-After.
    pub job_queue_capacity: usize,
    /// How long finished jobs stay visible before the cleaner removes them.
    pub job_retention_secs: u64,
    /// Argon2 key verifications running at once (0 = number of cores).
    pub key_verify_concurrency: usize,
    /// Key verifications waiting for a slot at most; more get 429 with Retry-After.
    pub key_verify_queue: usize,
    /// Failed key checks per minute allowed per client address and per claimed project;
    /// beyond it further unverified attempts get 429 with Retry-After. 0 = no throttling.
    pub auth_failures_per_minute: u32,
    /// A connection that has not sent its request headers within this many seconds is closed.
    pub header_read_timeout_secs: u64,
    /// A request body that sends nothing for this many seconds ends with 408.
    pub body_idle_timeout_secs: u64,
    /// Open client connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Idle keep-alive connections are closed after this many seconds.
    pub idle_connection_timeout_secs: u64,
    /// Largest preview response body in bytes; longer previews stop early with `truncated: true`.
    pub max_preview_bytes: u64,
    /// How often `/health` state (disk writable, free space, catalog) is refreshed, in seconds.
    pub health_check_interval_secs: u64,
    /// How long a response stored under an idempotency key is replayed, in seconds.
    pub idempotency_ttl_secs: u64,
    /// Requests per minute allowed per API key (token bucket); 0 = no rate limit.
    pub rate_limit_per_minute: u32,
    /// How many requests a key may send at once above the steady rate; 0 = one minute's worth.
    pub rate_limit_burst: u32,
    /// Whether the admin key is rate limited too (it is exempt by default).
    pub rate_limit_admin: bool,
    /// Whether `/metrics` is served and requests are measured (false: 404 and no recording).
    pub metrics_enabled: bool,
    /// When set, `/metrics` needs `Authorization: Bearer <token>`; unset, it is public.
    pub metrics_token: Option<Secret>,
    /// OTLP/HTTP base URL spans are exported to (`/v1/traces` is appended, e.g.
    /// `http://127.0.0.1:4318`); unset = no export.
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// Days audit entries are kept before the cleaner removes them; 0 = forever.
    pub audit_retention_days: u32,
    /// PostgreSQL wire server port for workspaces (0 = off). Advertised in connection info.
    pub pgwire_port: u16,
    /// Whether wire clients may log in with a cleartext password (SCRAM-SHA-256 only when false).
    pub pgwire_allow_cleartext: bool,
    /// A workspace statement running longer than this is interrupted (HTTP and wire).
    pub pgwire_query_timeout_secs: u64,
    /// Sessions (wire connections and running HTTP queries) per workspace at most.
    pub pgwire_max_connections_per_workspace: usize,
    /// DuckDB memory limit of one workspace's database, e.g. "1GB".
    pub workspace_memory_limit: String,
    /// DuckDB threads of one workspace's database.
    pub workspace_threads: u32,
    /// Bytes one unit of a workspace's `size_limit_gb` stands for (1 GiB; tests make it tiny).
    pub workspace_size_unit_bytes: u64,
    /// A bearer token for `/internal/pgwire/*` besides the admin key (unset or empty: the
    /// admin key only).
    pub pgwire_internal_token: Option<Secret>,
    /// PEM certificate chain of the wire server; with PGWIRE_TLS_KEY, clients may use TLS.
    pub pgwire_tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for PGWIRE_TLS_CERT.
    pub pgwire_tls_key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            data_dir: PathBuf::from("./data"),
            admin_api_key: None,
            duckdb_threads: 0,
            duckdb_memory_limit: "4GB".into(),
            min_free_bytes: 256 * 1024 * 1024,
            max_body_bytes: 1024 * 1024,
            key_cache_ttl_secs: 300,
            key_cache_capacity: 10_000,
            table_cache_size: 512,
            log_format: LogFormat::Text,
            storage_backend: StorageBackend::Local,
            database_blob_max_bytes: 16 * 1024 * 1024,
            s3_endpoint: None,
            s3_bucket: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_prefix: String::new(),
            max_file_bytes: 0,
            project_quota_bytes: 0,
            project_quota_files: 0,
            upload_ttl_secs: 24 * 3600,
            cleanup_interval_secs: 300,
            job_workers: 2,
            bulk_threads: 8,
            job_queue_capacity: 64,
            job_retention_secs: 7 * 24 * 3600,
            key_verify_concurrency: 0,
            key_verify_queue: 64,
            auth_failures_per_minute: 60,
            header_read_timeout_secs: 10,
            body_idle_timeout_secs: 30,
            max_connections: 4096,
            idle_connection_timeout_secs: 60,
            max_preview_bytes: 64 * 1024 * 1024,
            health_check_interval_secs: 5,
            idempotency_ttl_secs: 600,
            rate_limit_per_minute: 0,
            rate_limit_burst: 0,
            rate_limit_admin: false,
            metrics_enabled: true,
            metrics_token: None,
            otel_exporter_otlp_endpoint: None,
            audit_retention_days: 90,
            pgwire_port: 5433,
            pgwire_allow_cleartext: false,
            pgwire_query_timeout_secs: 300,
            pgwire_max_connections_per_workspace: 5,
            workspace_memory_limit: "1GB".into(),
            workspace_threads: 2,
            workspace_size_unit_bytes: 1 << 30,
            pgwire_internal_token: None,
            pgwire_tls_cert: None,
            pgwire_tls_key: None,
        }
    }
}

/// The reference service's plain variable names, accepted without prefix.
const PLAIN_ENV: &[&str] = &[
    "HOST",
    "PORT",
    "DATA_DIR",
    "ADMIN_API_KEY",
    "DUCKDB_THREADS",
    "DUCKDB_MEMORY_LIMIT",
    "MIN_FREE_BYTES",
    "MAX_BODY_BYTES",
    "KEY_CACHE_TTL_SECS",
    "KEY_CACHE_CAPACITY",
    "TABLE_CACHE_SIZE",
    "LOG_FORMAT",
    "STORAGE_BACKEND",
    "DATABASE_BLOB_MAX_BYTES",
    "S3_ENDPOINT",
    "S3_BUCKET",
    "S3_REGION",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "S3_PREFIX",
    "MAX_FILE_BYTES",
    "PROJECT_QUOTA_BYTES",
    "PROJECT_QUOTA_FILES",
    "UPLOAD_TTL_SECS",
    "CLEANUP_INTERVAL_SECS",
    "JOB_WORKERS",
    "BULK_THREADS",
    "JOB_QUEUE_CAPACITY",
    "JOB_RETENTION_SECS",
    "KEY_VERIFY_CONCURRENCY",
    "KEY_VERIFY_QUEUE",
    "AUTH_FAILURES_PER_MINUTE",
    "HEADER_READ_TIMEOUT_SECS",
    "BODY_IDLE_TIMEOUT_SECS",
    "MAX_CONNECTIONS",
    "IDLE_CONNECTION_TIMEOUT_SECS",
    "MAX_PREVIEW_BYTES",
    "HEALTH_CHECK_INTERVAL_SECS",
    "IDEMPOTENCY_TTL_SECS",
    "RATE_LIMIT_PER_MINUTE",
    "RATE_LIMIT_BURST",
    "RATE_LIMIT_ADMIN",
    "METRICS_ENABLED",
    "METRICS_TOKEN",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "AUDIT_RETENTION_DAYS",
    "PGWIRE_PORT",
    "PGWIRE_ALLOW_CLEARTEXT",
    "PGWIRE_QUERY_TIMEOUT_SECS",
    "PGWIRE_MAX_CONNECTIONS_PER_WORKSPACE",
    "WORKSPACE_MEMORY_LIMIT",
    "WORKSPACE_THREADS",
    "PGWIRE_INTERNAL_TOKEN",
    "PGWIRE_TLS_CERT",
    "PGWIRE_TLS_KEY",
];

impl Config {
    /// PGWIRE_TLS_CERT, unless unset or empty.
    pub fn wire_tls_cert(&self) -> Option<&std::path::Path> {
        self.pgwire_tls_cert
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// PGWIRE_TLS_KEY, unless unset or empty.
    pub fn wire_tls_key(&self) -> Option<&std::path::Path> {
        self.pgwire_tls_key
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// Loads the layered configuration. `file` overrides the default `duckbank.toml` location.
    pub fn load(file: Option<PathBuf>) -> Result<Self, Box<figment::Error>> {
        // `.env` fills the process environment without overriding what is already set.
        let _ = dotenvy::dotenv();
        let file = file.unwrap_or_else(|| PathBuf::from("duckbank.toml"));
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(file))
            .merge(Env::raw().only(PLAIN_ENV))
            .merge(Env::prefixed("DUCKBANK_"))
            .extract()
            .map_err(Box::new)
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        format!("{}:{}", self.host, self.port)
            .parse()
            .or_else(|_| {
                use std::net::ToSocketAddrs;
                (self.host.as_str(), self.port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or(())
            })
            .map_err(|_| format!("cannot resolve HOST {:?}", self.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("topsecret");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    /// Loads the configuration with exactly `env` set: figment's jail isolates the process
    /// environment and the working directory, so tests cannot see each other's variables.
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the closure's error type
    fn load_with(env: &[(&str, &str)]) -> Result<Config, String> {
        let mut loaded = None;
        figment::Jail::expect_with(|jail| {
            for (name, value) in env {
                jail.set_env(name, value);
            }
            loaded = Some(Config::load(None).map_err(|e| e.to_string()));
            Ok(())
        });
        loaded.expect("the jail runs its closure")
    }

    #[test]
    fn numeric_secrets_from_the_environment_are_accepted() {
        let c = load_with(&[("ADMIN_API_KEY", "12345"), ("DUCKBANK_PORT", "9000")])
            .expect("config loads");
        assert_eq!(c.admin_api_key.unwrap().expose(), "12345");
        assert_eq!(c.port, 9000);
    }

    #[test]
    fn choices_are_read_in_any_case() {
        let c = load_with(&[("STORAGE_BACKEND", "S3"), ("DUCKBANK_LOG_FORMAT", "Json")])
            .expect("config loads");
        assert_eq!(c.storage_backend, StorageBackend::S3);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn an_unknown_choice_names_the_variable_and_the_allowed_values() {
        let err = load_with(&[("STORAGE_BACKEND", "floppy")]).expect_err("floppy is no backend");
        assert!(err.contains("STORAGE_BACKEND"), "{err}");
        assert!(err.contains("\"floppy\""), "{err}");
        assert!(err.contains("local, database, s3"), "{err}");
        let err = load_with(&[("LOG_FORMAT", "xml")]).expect_err("xml is no log format");
        assert!(err.contains("LOG_FORMAT"), "{err}");
        assert!(err.contains("text, json"), "{err}");
    }

    #[test]
    fn defaults_serve_on_loopback_8000_with_local_data() {
        let c = Config::default();
        assert_eq!(c.bind_addr().unwrap().to_string(), "127.0.0.1:8000");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.storage_backend, StorageBackend::Local);
        assert_eq!(c.log_format, LogFormat::Text);
    }
}
