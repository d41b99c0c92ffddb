//! The reference's presign route, `POST /s3/{bucket}/presign` `{key, method, expires_in,
//! content_type?}`: answers a real SigV4 presigned URL, signed with a per-key secret derived
//! from the server key in DATA_DIR (so it survives restarts and dies with the key).

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::sigv4::{self, uri_encode};
use super::xml::{S3Error, S3Result};
use super::{check_key, REGION};
use crate::auth::scope::Need;
use crate::auth::Principal;
use crate::service::s3::PRESIGN_PREFIX;
use crate::state::AppState;

#[derive(Deserialize)]
struct PresignBody {
    key: String,
    #[serde(default = "default_method")]
    method: String,
    #[serde(default = "default_expires")]
    expires_in: i64,
    content_type: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

fn default_expires() -> i64 {
    3600
}

pub async fn presign(
    state: AppState,
    bucket: String,
    request: Request,
    seen: &mut super::Seen,
) -> S3Result<Response> {
    let call = super::begin(state, bucket, request, seen).await?;
    let (call, body) = call.small_body().await?;
    let req: PresignBody = serde_json::from_slice(&body).map_err(|e| {
        S3Error::invalid_argument(format!(
            "body must be {{key, method, expires_in, content_type}}: {e}"
        ))
    })?;
    check_key(&req.key)?;
    let method = req.method.to_ascii_uppercase();
    let need = match method.as_str() {
        "GET" | "HEAD" => Need::FileRead,
        "PUT" => Need::FileUpload,
        "DELETE" => Need::FileDelete,
        _ => {
            return Err(S3Error::invalid_argument(
                "method must be GET, PUT, DELETE or HEAD",
            ))
        }
    };
    if !(1..=sigv4::MAX_EXPIRES_SECS).contains(&req.expires_in) {
        return Err(S3Error::invalid_argument(
            "expires_in must be between 1 and 604800 seconds",
        ));
    }
    call.require(need)?;
    let key_id = match &call.principal {
        Principal::Admin => "admin".to_string(),
        Principal::Key(k) => k.id.clone(),
    };
    let host = call.header("host").unwrap_or("localhost").to_string();
    let path = format!(
        "{}/{}/{}",
        super::PREFIX,
        uri_encode(call.bucket.as_bytes(), false),
        uri_encode(req.key.as_bytes(), true)
    );
    let now = crate::catalog::now();
    let query = sigv4::presign_query(
        &method,
        &path,
        &host,
        req.content_type.as_deref(),
        &format!("{PRESIGN_PREFIX}{key_id}"),
        &call.state.s3.presign_secret(&key_id),
        REGION,
        now,
        req.expires_in,
    );
    let expires_at = now + chrono::Duration::seconds(req.expires_in);
    Ok(Json(json!({
        "url": format!("http://{host}{path}?{query}"),
        "expires_at": expires_at.to_rfc3339(),
        "method": method,
    }))
    .into_response())
}
