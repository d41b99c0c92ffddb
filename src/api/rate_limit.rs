//! Per-key request rate limits: a token bucket per caller (RATE_LIMIT_PER_MINUTE, RATE_LIMIT_BURST),
//! checked inside the access gate; 429 with `Retry-After` and `RateLimit-*` headers (ADR 0026).

use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::auth::Principal;
use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// The configured limits; `None` inside when limiting is off.
pub struct RateLimits(Option<Active>);

struct Active {
    limiter: Limiter,
    clock: DefaultClock,
    burst: u32,
    /// Time to earn back one request.
    per_request: Duration,
    admin_limited: bool,
}

/// What one check decided, with the figures for the `RateLimit-*` headers.
enum Verdict {
    Unlimited,
    Allowed {
        limit: u32,
        remaining: u32,
        reset: Duration,
    },
    Refused {
        limit: u32,
        retry_after: Duration,
    },
}

impl RateLimits {
    pub fn from_config(config: &Config) -> Self {
        let Some(per_minute) = NonZeroU32::new(config.rate_limit_per_minute) else {
            return Self(None);
        };
        let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(per_minute);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self(Some(Active {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            clock: DefaultClock::default(),
            burst: burst.get(),
            per_request: quota.replenish_interval(),
            admin_limited: config.rate_limit_admin,
        }))
    }

    fn check(&self, principal: &Principal) -> Verdict {
        let Some(active) = &self.0 else {
            return Verdict::Unlimited;
        };
        if principal.is_admin() && !active.admin_limited {
            return Verdict::Unlimited;
        }
        match active.limiter.check_key(&principal.caller_id()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Verdict::Allowed {
                    limit: active.burst,
                    remaining,
                    reset: active.per_request * (active.burst - remaining),
                }
            }
            Err(not_until) => Verdict::Refused {
                limit: active.burst,
                retry_after: not_until.wait_time_from(active.clock.now()),
            },
        }
    }

    /// For routes that authenticate in their handler (the S3 face, ADR 0032): counts the
    /// request against the caller's bucket; the 429 error when it is empty.
    pub fn admit(&self, principal: &Principal) -> Result<(), ApiError> {
        match self.check(principal) {
            Verdict::Refused { retry_after, .. } => Err(refusal(retry_after)),
            Verdict::Unlimited | Verdict::Allowed { .. } => Ok(()),
        }
    }

    /// Forgets callers whose buckets are full again, so the map does not grow with every key
    /// ever seen.
    pub fn forget_idle(&self) {
        if let Some(active) = &self.0 {
            active.limiter.retain_recent();
            active.limiter.shrink_to_fit();
        }
    }
}

/// Counts the request against its caller's bucket (callers the gate authenticated; public
/// routes such as health and metrics are never limited).
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(principal) = req.extensions().get::<Principal>() else {
        return next.run(req).await;
    };
    match state.rate_limits.check(principal) {
        Verdict::Unlimited => next.run(req).await,
        Verdict::Allowed {
            limit,
            remaining,
            reset,
        } => {
            let mut response = next.run(req).await;
            set_headers(response.headers_mut(), limit, remaining, reset);
            response
        }
        Verdict::Refused { limit, retry_after } => {
            let mut response = refusal(retry_after).into_response();
            set_headers(response.headers_mut(), limit, 0, retry_after);
            response
        }
    }
}

/// 429 `rate_limited` for a caller whose bucket is empty for `retry_after`.
fn refusal(retry_after: Duration) -> ApiError {
    crate::telemetry::throttled("rate_limit");
    let secs = whole_seconds(retry_after);
    ApiError::retry_after(
        ErrorCode::RateLimited,
        format!("rate limit of this API key exceeded; retry in {secs} s"),
        secs,
    )
}

/// The draft IETF headers: the bucket size, what is left, and seconds until it is full.
fn set_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset: Duration) {
    for (name, value) in [
        ("ratelimit-limit", u64::from(limit)),
        ("ratelimit-remaining", u64::from(remaining)),
        ("ratelimit-reset", whole_seconds(reset)),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
}

/// Seconds rounded up, so a client that waits that long is not refused again.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_waits_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(0)), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
    }
}
