//! Error-code tests for failures detected in api service.
//! Each test provokes one failure over HTTP and checks status, `error` and `detail.error`.
