//! One integration-test binary (each file under tests/ links all of DuckDB): modules per
//! capability, all black-box over HTTP against the real server.

mod helpers;

mod health;
mod projects;
mod tables;
mod concurrency;
mod seed;
