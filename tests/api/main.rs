//! One integration-test binary (each file under tests/ links all of DuckDB): modules per
//! capability, all black-box over HTTP against the real server.

mod helpers;

mod auth;
mod catalog;
mod concurrency;
mod disk_full;
mod error_codes;
mod files;
mod health;
mod jobs;
mod projects;
mod s3;
mod seed;
mod sharing;
mod startup;
mod table_access;
mod table_data;
mod tables;
mod validation;
