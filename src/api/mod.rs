//! The HTTP surface: routes for both path styles, request ids, tracing, body limits and the
//! JSON 404/500 fallbacks. Handlers are thin: extract, call a service, shape JSON.

pub mod access;
pub mod admin;
pub mod backend;
pub mod buckets;
pub mod databank;
pub mod download;
pub mod extract;
pub mod files;
pub mod health;
pub mod jobs;
pub mod projects;
pub mod query;
pub mod responses;
pub mod root;
pub mod sharing;
pub mod tables;
pub mod uploads;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

const REQUEST_ID: &str = "x-request-id";

/// Routes under a bucket-collection prefix, shared by both path styles.
fn bucket_routes() -> Router<AppState> {
    Router::new()
        .route("/buckets", get(buckets::list).post(buckets::create))
        .route(
            "/buckets/{bucket_name}",
            get(buckets::get).delete(buckets::delete),
        )
        .route(
            "/buckets/{bucket_name}/share",
            post(sharing::share).delete(sharing::unshare),
        )
        .route(
            "/buckets/{bucket_name}/link",
            post(sharing::link).delete(sharing::unlink),
        )
        .route(
            "/buckets/{bucket_name}/grant-readonly",
            post(sharing::grant_readonly).delete(sharing::revoke_readonly),
        )
        .route(
            "/buckets/{bucket_name}/tables",
            get(tables::list).post(tables::create),
        )
        .route(
            "/buckets/{bucket_name}/tables/{table_name}",
            get(tables::get).delete(tables::delete),
        )
        .route(
            "/buckets/{bucket_name}/tables/{table_name}/preview",
            get(tables::preview),
        )
        .route(
            "/buckets/{bucket_name}/tables/from-file",
            post(tables::import::create_from_file),
        )
        .route(
            "/buckets/{bucket_name}/tables/{table_name}/import/file",
            post(tables::import::import_file),
        )
        .route(
            "/buckets/{bucket_name}/tables/{table_name}/export",
            post(tables::export::export).get(tables::export::export_stream),
        )
        .route(
            "/buckets/{bucket_name}/tables/{table_name}/columns",
            post(tables::schema::add_column),
        )
        .route(
            "/buckets/{bucket_name}/tables/{table_name}/columns/{column_name}",
            put(tables::schema::alter_column).delete(tables::schema::drop_column),
        )
        .route(
            "/buckets/{bucket_name}/tables/{table_name}/primary-key",
            post(tables::schema::add_primary_key).delete(tables::schema::drop_primary_key),
        )
        .route(
            "/buckets/{bucket_name}/tables/{table_name}/rows",
            axum::routing::delete(tables::rows::delete_rows),
        )
        .route(
            "/buckets/{bucket_name}/tables/{table_name}/profile",
            post(tables::profile::profile),
        )
}

/// File routes under `/projects/{project_id}`. Uploads stream with their own size limit
/// (MAX_FILE_BYTES), so the JSON body limit is lifted for them.
fn file_routes() -> Router<AppState> {
    let unlimited = || DefaultBodyLimit::disable();
    Router::new()
        .route("/files", get(files::list).post(files::register))
        .route("/files/prepare", post(files::prepare))
        .route(
            "/files/upload/{upload_key}",
            post(files::upload).layer(unlimited()),
        )
        .route(
            "/files/content",
            post(files::upload_content).layer(unlimited()),
        )
        .route("/files/{file_id}", get(files::get).delete(files::delete))
        .route(
            "/files/{file_id}/download",
            get(files::download).head(files::download),
        )
        .route("/uploads", post(uploads::create))
        .route(
            "/uploads/{upload_id}",
            get(uploads::status).delete(uploads::abort),
        )
        .route(
            "/uploads/{upload_id}/chunks/{n}",
            put(uploads::put_chunk).layer(unlimited()),
        )
        .route("/uploads/{upload_id}/complete", post(uploads::complete))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{job_id}", get(jobs::get))
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let request_id = HeaderName::from_static(REQUEST_ID);
    let public = Router::new()
        .route("/", get(root::root))
        .route("/health", get(health::health))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    let gated = Router::new()
        .route("/backend/init", post(backend::init))
        .route("/backend/remove", post(backend::remove))
        .route("/admin/quarantine", get(admin::quarantine))
        .route("/admin/engine", get(admin::engine))
        .route("/projects", get(projects::list).post(projects::create))
        .route(
            "/projects/{project_id}",
            get(projects::get).put(projects::update).delete(projects::delete),
        )
        .route("/projects/{project_id}/stats", get(projects::stats))
        .nest("/projects/{project_id}", bucket_routes())
        .nest("/projects/{project_id}", file_routes())
        .route(
            "/files",
            post(databank::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/files/{file_id}",
            get(databank::download)
                .head(databank::download)
                .delete(databank::delete),
        )
        .route("/files/{file_id}/info", get(databank::info))
        .route("/v1/blobs", post(databank::create_blob))
        .route("/v1/blobs/{id}", get(databank::get_blob))
        .nest("/projects/{project_id}/branches/{branch_id}", bucket_routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::gate,
        ));
    public
        .merge(gated)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<axum::body::Body>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::new(ErrorCode::NotFound, format!("no route for {}", uri.path())).into_response()
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
    .into_response()
}
