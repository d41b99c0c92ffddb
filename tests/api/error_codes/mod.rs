//! One test per error code duckbank can produce: each asserts the status, the top-level `error`
//! and the reference's `detail.error` together, so clients of either body shape are covered.

mod api_service;
mod catalog_engine;
