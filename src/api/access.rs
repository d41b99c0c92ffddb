//! The gate every authenticated route passes: the caller is authenticated once here and the
//! resulting `Principal` travels in the request extensions to the layers and handlers inside.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::state::AppState;

/// Authenticates the request (401 without a valid key) and hands the principal on.
pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match Principal::authenticate(&parts, &state).await {
        Ok(principal) => {
            parts.extensions.insert(principal);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(refused) => refused.into_response(),
    }
}
