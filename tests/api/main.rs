//! One integration-test binary (each file under tests/ links all of DuckDB): modules per
//! capability, all black-box over HTTP against the real server.

mod helpers;

mod api_keys;
mod audit;
mod auth;
mod auth_limits;
mod auth_matrix;
mod branch_snapshots;
mod branches;
mod catalog;
mod concurrency;
mod disk_full;
mod error_codes;
mod files;
mod health;
mod idempotency;
mod jobs;
mod lifetimes;
mod metrics;
mod openapi;
mod pgwire_internal;
mod projects;
mod quarantine;
mod rate_limit;
mod s3;
mod s3_api;
mod s3_multipart;
mod seed;
mod sharing;
mod snapshot_data;
mod snapshots;
mod startup;
mod streams;
mod table_access;
mod table_data;
mod tables;
mod transport;
mod validation;
mod wire_tls;
mod workspaces;
