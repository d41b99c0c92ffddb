//! The HTTP surface: routes for both path styles, request ids, tracing, body limits and the
//! JSON 404/500 fallbacks. Handlers are thin: extract, call a service, shape JSON.

pub mod access;
pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod backend;
pub mod branches;
pub mod buckets;
pub mod databank;
pub mod download;
pub mod extract;
pub mod files;
pub mod health;
pub mod idempotency;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod pgwire;
pub mod projects;
pub mod query;
pub mod rate_limit;
pub mod responses;
pub mod root;
pub mod s3;
pub mod sharing;
pub mod snapshots;
pub mod tables;
pub mod uploads;
pub mod workspaces;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::scope::Need::*;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use access::{delete, get, post, put, Routes};

const REQUEST_ID: &str = "x-request-id";

/// Routes under a bucket-collection prefix, shared by both path styles.
fn bucket_routes(routes: Routes, prefix: &str) -> Routes {
    let at = |suffix: &str| format!("{prefix}/buckets{suffix}");
    let table = |suffix: &str| at(&format!("/{{bucket_name}}/tables/{{table_name}}{suffix}"));
    routes
        .at(
            &at(""),
            get(Read, buckets::list).post(Write, buckets::create),
        )
        .at(
            &at("/{bucket_name}"),
            get(Read, buckets::get).delete(Write, buckets::delete),
        )
        .at(
            &at("/{bucket_name}/share"),
            post(ProjectAdmin, sharing::share).delete(ProjectAdmin, sharing::unshare),
        )
        .at(
            &at("/{bucket_name}/link"),
            post(ProjectAdmin, sharing::link).delete(ProjectAdmin, sharing::unlink),
        )
        .at(
            &at("/{bucket_name}/grant-readonly"),
            post(ProjectAdmin, sharing::grant_readonly)
                .delete(ProjectAdmin, sharing::revoke_readonly),
        )
        .at(
            &at("/{bucket_name}/tables"),
            get(Read, tables::list).post(Write, tables::create),
        )
        .at(
            &at("/{bucket_name}/tables/from-file"),
            post(Write, tables::import::create_from_file),
        )
        .at(
            &table(""),
            get(Read, tables::get).delete(Write, tables::delete),
        )
        .at(&table("/preview"), get(Read, tables::preview))
        .at(
            &table("/import/file"),
            post(Write, tables::import::import_file),
        )
        // An export reads the table; the file it writes is its output, not a change.
        .at(
            &table("/export"),
            post(Read, tables::export::export).get(Read, tables::export::export_stream),
        )
        .at(&table("/columns"), post(Write, tables::schema::add_column))
        .at(
            &table("/columns/{column_name}"),
            put(Write, tables::schema::alter_column).delete(Write, tables::schema::drop_column),
        )
        .at(
            &table("/primary-key"),
            post(Write, tables::schema::add_primary_key)
                .delete(Write, tables::schema::drop_primary_key),
        )
        .at(&table("/rows"), delete(Write, tables::rows::delete_rows))
        .at(&table("/profile"), post(Read, tables::profile::profile))
        // Settings decide whether a drop can be undone: changing them is the project admin's.
        .at(
            &at("/{bucket_name}/settings/snapshots"),
            snapshot_settings(),
        )
        .at(&table("/settings/snapshots"), snapshot_settings())
}

/// Snapshots under a project prefix (both path styles, ADR 0029). Deleting one removes a way
/// back, so it is the project admin's, like the settings.
fn snapshot_routes(routes: Routes, prefix: &str) -> Routes {
    let at = |suffix: &str| format!("{prefix}/snapshots{suffix}");
    routes
        .at(
            &at(""),
            get(Read, snapshots::list).post(Write, snapshots::create),
        )
        .at(
            &at("/{snapshot_id}"),
            get(Read, snapshots::get).delete(ProjectAdmin, snapshots::delete),
        )
        .at(
            &at("/{snapshot_id}/restore"),
            post(Write, snapshots::restore),
        )
}

/// GET/PUT/DELETE of snapshot settings, the same at every level (ADR 0029).
fn snapshot_settings() -> access::Methods {
    get(Read, snapshots::get_settings)
        .put(ProjectAdmin, snapshots::put_settings)
        .delete(ProjectAdmin, snapshots::delete_settings)
}

/// Workspaces under a project prefix (both path styles, ADR 0033). Running SQL writes to the
/// workspace, so it needs a key that writes.
fn workspace_routes(routes: Routes, prefix: &str) -> Routes {
    let at = |suffix: &str| format!("{prefix}/workspaces{suffix}");
    let ws = |suffix: &str| at(&format!("/{{workspace_id}}{suffix}"));
    routes
        .at(
            &at(""),
            get(Read, workspaces::list).post(Write, workspaces::create),
        )
        .at(
            &ws(""),
            get(Read, workspaces::get).delete(Write, workspaces::delete),
        )
        .at(&ws("/clear"), post(Write, workspaces::clear))
        .at(
            &ws("/objects/{object_name}"),
            delete(Write, workspaces::drop_object),
        )
        .at(&ws("/load"), post(Write, workspaces::load))
        .at(
            &ws("/credentials/reset"),
            post(Write, workspaces::reset_credentials),
        )
        .at(&ws("/query"), post(Write, workspaces::query))
}

/// File routes under `/projects/{project_id}`. Uploads stream with their own size limit
/// (MAX_FILE_BYTES), so the JSON body limit is lifted for them.
fn file_routes(routes: Routes, prefix: &str) -> Routes {
    let at = |suffix: &str| format!("{prefix}{suffix}");
    routes
        .at(
            &at("/files"),
            get(FileRead, files::list).post(FileUpload, files::register),
        )
        .at(&at("/files/prepare"), post(FileUpload, files::prepare))
        .at(
            &at("/files/upload/{upload_key}"),
            post(FileUpload, files::upload).unlimited_body(),
        )
        .at(
            &at("/files/content"),
            post(FileUpload, files::upload_content).unlimited_body(),
        )
        .at(
            &at("/files/{file_id}"),
            get(FileRead, files::get).delete(FileDelete, files::delete),
        )
        .at(
            &at("/files/{file_id}/download"),
            get(FileRead, files::download),
        )
        // Upload sessions are part of uploading: only uploaders look at or abort them.
        .at(&at("/uploads"), post(FileUpload, uploads::create))
        .at(
            &at("/uploads/{upload_id}"),
            get(FileUpload, uploads::status).delete(FileUpload, uploads::abort),
        )
        .at(
            &at("/uploads/{upload_id}/chunks/{n}"),
            put(FileUpload, uploads::put_chunk).unlimited_body(),
        )
        .at(
            &at("/uploads/{upload_id}/complete"),
            post(FileUpload, uploads::complete),
        )
        .at(&at("/jobs"), get(Read, jobs::list))
        .at(&at("/jobs/{job_id}"), get(Read, jobs::get))
}

/// Every route duckbank serves, each with what it needs from its caller.
pub fn routes() -> Routes {
    let project = "/projects/{project_id}";
    let routes = Routes::default()
        .at("/", get(Public, root::root))
        .at("/health", get(Public, health::health))
        .at("/healthz", get(Public, health::healthz))
        .at("/readyz", get(Public, health::readyz))
        .at(metrics::PATH, get(Public, metrics::metrics))
        .at(openapi::PATH, get(Public, openapi::openapi))
        .at(openapi::DOCS_PATH, get(Public, openapi::docs))
        .at("/backend/init", post(Admin, backend::init))
        .at("/backend/remove", post(Admin, backend::remove))
        .at("/admin/quarantine", get(Admin, admin::quarantine))
        .at("/admin/engine", get(Admin, admin::engine))
        .at("/admin/audit", get(Admin, audit::admin_trail))
        // For an external wire server: the admin key or PGWIRE_INTERNAL_TOKEN (ADR 0033).
        .at("/internal/pgwire/auth", post(PgwireInternal, pgwire::auth))
        .at(
            "/internal/pgwire/sessions",
            get(PgwireInternal, pgwire::list_sessions).post(PgwireInternal, pgwire::create_session),
        )
        .at(
            "/internal/pgwire/sessions/cleanup",
            post(PgwireInternal, pgwire::cleanup),
        )
        .at(
            "/internal/pgwire/sessions/{session_id}",
            get(PgwireInternal, pgwire::get_session).delete(PgwireInternal, pgwire::close_session),
        )
        .at(
            "/internal/pgwire/sessions/{session_id}/activity",
            access::patch(PgwireInternal, pgwire::activity),
        )
        .at(
            "/projects",
            get(Admin, projects::list).post(Admin, projects::create),
        )
        .at(
            project,
            get(Read, projects::get)
                .put(ProjectAdmin, projects::update)
                .delete(ProjectAdmin, projects::delete),
        )
        .at(&format!("{project}/stats"), get(Read, projects::stats))
        .at(
            &format!("{project}/s3-credentials"),
            post(ProjectAdmin, s3::credentials::create),
        )
        .at(
            &format!("{project}/settings/snapshots"),
            snapshot_settings(),
        )
        .at(
            &format!("{project}/audit"),
            get(ProjectAdmin, audit::project_trail),
        )
        .at(
            &format!("{project}/api-keys"),
            get(ProjectAdmin, api_keys::list).post(ProjectAdmin, api_keys::create),
        )
        .at(
            &format!("{project}/api-keys/{{key_id}}"),
            get(ProjectAdmin, api_keys::get).delete(ProjectAdmin, api_keys::revoke),
        )
        .at(
            &format!("{project}/api-keys/{{key_id}}/rotate"),
            post(ProjectAdmin, api_keys::rotate),
        )
        .at(
            "/files",
            post(FileUpload, databank::upload).unlimited_body(),
        )
        .at(
            "/files/{file_id}",
            get(FileRead, databank::download).delete(FileDelete, databank::delete),
        )
        .at("/files/{file_id}/info", get(FileRead, databank::info))
        .at("/v1/blobs", post(FileUpload, databank::create_blob))
        .at("/v1/blobs/{id}", get(FileRead, databank::get_blob));
    let branch = format!("{project}/branches/{{branch_id}}");
    let routes = routes
        .at(
            &format!("{project}/branches"),
            get(Read, branches::list).post(ProjectAdmin, branches::create),
        )
        .at(
            &branch,
            get(Read, branches::get).delete(ProjectAdmin, branches::delete),
        )
        .at(
            &format!("{branch}/tables/{{bucket_name}}/{{table_name}}/pull"),
            post(Write, branches::pull),
        )
        // Merging changes main: the project's admins decide.
        .at(
            &format!("{branch}/merge"),
            post(ProjectAdmin, branches::merge),
        )
        .at(&format!("{branch}/diff"), get(Read, branches::diff));
    let routes = bucket_routes(routes, project);
    let routes = bucket_routes(routes, &branch);
    let routes = snapshot_routes(routes, project);
    let routes = snapshot_routes(routes, &branch);
    let routes = workspace_routes(routes, project);
    let routes = workspace_routes(routes, &branch);
    s3_routes(file_routes(routes, project))
}

/// The S3 face (ADR 0032): each handler authenticates and checks the file right its
/// operation needs; bodies stream with the Files API's own limits.
fn s3_routes(routes: Routes) -> Routes {
    let all = || {
        get(S3, s3::object)
            .put(S3, s3::object)
            .post(S3, s3::object)
            .delete(S3, s3::object)
            .unlimited_body()
    };
    routes
        .at(s3::PREFIX, get(S3, s3::service))
        .at(
            &format!("{}/{{bucket}}", s3::PREFIX),
            get(S3, s3::bucket)
                .put(S3, s3::bucket)
                .post(S3, s3::bucket)
                .unlimited_body(),
        )
        .at(
            &format!("{}/{{bucket}}/presign", s3::PREFIX),
            post(S3, s3::presign).unlimited_body(),
        )
        .at(&format!("{}/{{bucket}}/{{*key}}", s3::PREFIX), all())
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let request_id = HeaderName::from_static(REQUEST_ID);
    let routes = routes();
    let measured = metrics::RecordLayer::new(routes.rules().iter().map(|r| r.path.as_str()));
    // Outside the gate, so refusals are recorded too (ADR 0028).
    let audit = audit::Recorder::new(&state, routes.rules());
    let router = routes
        .into_router(&state)
        .route_layer(axum::middleware::from_fn_with_state(audit, audit::record))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit));
    // Off: not even the layer is there, so requests pay nothing for metrics.
    let router = if state.config.metrics_enabled {
        router.layer(measured)
    } else {
        router
    };
    router
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
                let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id);
                crate::telemetry::otlp::set_parent_from(&span, req.headers());
                span
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
