//! Error-code tests for failures detected in catalog engine.
//! Each test provokes one failure over HTTP and checks status, `error` and `detail.error`.
