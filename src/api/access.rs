//! The access policy: every route is registered with what it needs (`Routes`), and one gate
//! authenticates the caller and checks that need before any handler runs (ADR 0025).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{
    DefaultBodyLimit, FromRequestParts, MatchedPath, RawPathParams, Request, State,
};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;

use crate::auth::scope::{Need, Target};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// One route, one method, and what it needs from its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub method: Method,
    /// The route template, as axum matches it (`/projects/{project_id}/buckets`).
    pub path: String,
    pub need: Need,
    /// The route lifts the JSON body limit (uploads stream with their own, MAX_FILE_BYTES).
    pub unlimited_body: bool,
}

/// A router under construction together with the rule of every route it serves: a route can
/// only be added with its rules, so none can be served without one.
pub struct Routes {
    router: Router<AppState>,
    rules: Vec<Rule>,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            router: Router::new(),
            rules: Vec::new(),
        }
    }
}

impl Routes {
    /// Serves `methods` at `path`.
    pub fn at(mut self, path: &str, methods: Methods) -> Self {
        self.rules.extend(
            methods
                .needs
                .into_iter()
                .map(|(method, need, unlimited_body)| Rule {
                    method,
                    path: path.to_string(),
                    need,
                    unlimited_body,
                }),
        );
        self.router = self.router.route(path, methods.router);
        self
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The router with the gate in front of every route.
    pub fn into_router(self, state: &AppState) -> Router<AppState> {
        let policy = Policy::new(&self.rules);
        let gate = Gate {
            state: state.clone(),
            policy: Arc::new(policy),
        };
        let uploads = self
            .rules
            .iter()
            .filter(|r| r.unlimited_body)
            .map(|r| (r.method.clone(), r.path.clone()));
        let replays = super::idempotency::Replays::new(state, uploads);
        // Layers run outside-in: the gate admits (401/403), then the caller's rate limit,
        // then idempotent replay, so a replay is only ever served to an admitted caller.
        self.router
            .route_layer(axum::middleware::from_fn_with_state(
                replays,
                super::idempotency::idempotent,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                super::rate_limit::limit,
            ))
            .route_layer(axum::middleware::from_fn_with_state(gate, gate_request))
    }
}

/// The methods of one path, each with its handler and need.
pub struct Methods {
    router: MethodRouter<AppState>,
    /// Each method's need, and whether its body limit is lifted.
    needs: Vec<(Method, Need, bool)>,
}

macro_rules! method {
    ($name:ident, $method:ident, $chain:ident) => {
        /// Serves the method with `handler` for callers that have `need`.
        pub fn $name<H, T>(need: Need, handler: H) -> Methods
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            Methods {
                router: MethodRouter::new().$chain(handler),
                needs: vec![(Method::$method, need, false)],
            }
        }

        impl Methods {
            pub fn $name<H, T>(mut self, need: Need, handler: H) -> Self
            where
                H: Handler<T, AppState>,
                T: 'static,
            {
                self.router = self.router.$chain(handler);
                self.needs.push((Method::$method, need, false));
                self
            }
        }
    };
}

method!(get, GET, get);
method!(post, POST, post);
method!(put, PUT, put);
method!(delete, DELETE, delete);
method!(patch, PATCH, patch);

impl Methods {
    /// Lifts the JSON body limit for the methods added so far (uploads stream with their own
    /// limit).
    pub fn unlimited_body(mut self) -> Self {
        self.router = self.router.layer(DefaultBodyLimit::disable());
        for (_, _, unlimited) in &mut self.needs {
            *unlimited = true;
        }
        self
    }
}

/// Rules by method and route template.
struct Policy(HashMap<(Method, String), Need>);

impl Policy {
    fn new(rules: &[Rule]) -> Self {
        Self(
            rules
                .iter()
                .map(|r| ((r.method.clone(), r.path.clone()), r.need))
                .collect(),
        )
    }

    /// HEAD is served by GET handlers and needs what GET needs.
    fn need(&self, method: &Method, path: &str) -> Option<Need> {
        let method = if method == Method::HEAD {
            Method::GET
        } else {
            method.clone()
        };
        self.0.get(&(method, path.to_string())).copied()
    }
}

#[derive(Clone)]
struct Gate {
    state: AppState,
    policy: Arc<Policy>,
}

/// What the gate decided about one request, put into the response extensions for the audit
/// layer outside it: the route's need, the caller it authenticated (if any), and whether it
/// refused the request (401/403) before any handler ran.
#[derive(Debug, Clone)]
pub struct Admission {
    pub need: Need,
    pub principal: Option<Principal>,
    pub refused: bool,
    /// Admitted with PGWIRE_INTERNAL_TOKEN (no principal: the token is not a key).
    pub internal_token: bool,
}

/// Authenticates (401), checks the route's need against the key's grant (403), and hands
/// the principal to the layers and handler inside through the request extensions.
async fn gate_request(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let template = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    // A method the path does not serve: the router answers 405 whoever asks.
    let Some(need) = gate.policy.need(&parts.method, &template) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let mut principal = None;
    let internal_token = need == Need::PgwireInternal && presents_internal_token(&gate, &parts);
    let verdict = if internal_token {
        Ok(())
    } else {
        admit(&gate, &mut parts, need, &template, &mut principal).await
    };
    let refused = verdict.is_err();
    let mut response = match verdict {
        Ok(()) => {
            if let Some(principal) = &principal {
                parts.extensions.insert(principal.clone());
            }
            next.run(Request::from_parts(parts, body)).await
        }
        Err(refused) => refused.into_response(),
    };
    // Handlers that authenticate themselves (the S3 face) say who the caller was.
    let principal = principal.or_else(|| response.extensions().get::<Principal>().cloned());
    response.extensions_mut().insert(Admission {
        need,
        principal,
        refused,
        internal_token,
    });
    response
}

/// Whether the request presents PGWIRE_INTERNAL_TOKEN (set and not empty); compared as
/// SHA-256 digests in constant time.
fn presents_internal_token(gate: &Gate, parts: &axum::http::request::Parts) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let Some(token) = gate
        .state
        .config
        .pgwire_internal_token
        .as_ref()
        .filter(|t| !t.expose().is_empty())
    else {
        return false;
    };
    let Some(presented) = crate::auth::principal::presented_key(&parts.headers) else {
        return false;
    };
    let (a, b) = (
        Sha256::digest(presented.as_bytes()),
        Sha256::digest(token.expose().as_bytes()),
    );
    a.ct_eq(&b).into()
}

/// Sets `principal` once the caller is authenticated, so a 403 still says who was refused.
async fn admit(
    gate: &Gate,
    parts: &mut axum::http::request::Parts,
    need: Need,
    template: &str,
    principal: &mut Option<Principal>,
) -> ApiResult<()> {
    // The S3 face authenticates in its handler: SigV4 needs the whole request (ADR 0032).
    if matches!(need, Need::Public | Need::S3) {
        return Ok(());
    }
    let caller = principal.insert(Principal::authenticate(parts, &gate.state).await?);
    let params = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))?;
    let param = |name: &str| {
        params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
    };
    let target = Target {
        project: param("project_id"),
        branch: param("branch_id"),
        branched: template.contains("{branch_id}") || template.contains("/buckets"),
        bucket: param("bucket_name"),
    };
    caller.allows(need, &target)
}
