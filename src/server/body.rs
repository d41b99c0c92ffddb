//! The request-body idle timeout: a body that yields nothing for BODY_IDLE_TIMEOUT_SECS fails,
//! so the handler stops (its spool is removed) and the client gets 408 `request_timeout`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::{ApiError, ErrorCode};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a stalled body yields to whoever reads it.
#[derive(Debug, thiserror::Error)]
#[error("the client sent nothing for {0:?}")]
pub struct BodyStalled(Duration);

/// Wraps a request body; the clock runs only while someone waits for the next frame, so a
/// handler busy elsewhere (waiting for a lock, say) is never charged for it.
pub struct IdleBody<B> {
    inner: B,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    stalled: Arc<AtomicBool>,
}

impl<B> IdleBody<B> {
    /// `stalled` is set when the body gave up, so the response can be made a 408 whatever
    /// error the handler turned the failed read into.
    pub fn new(inner: B, limit: Duration, stalled: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            limit,
            timer: None,
            armed: false,
            stalled,
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = Instant::now() + this.limit;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !this.armed {
            timer.as_mut().reset(deadline);
            this.armed = true;
        }
        if timer.as_mut().poll(cx).is_ready() {
            this.armed = false;
            this.stalled.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(Box::new(BodyStalled(this.limit)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a request whose body stalled (the request id of the handler's answer kept).
pub fn timed_out(limit: Duration, handler_response: &Response) -> Response {
    let mut response = ApiError::new(
        ErrorCode::RequestTimeout,
        format!(
            "the request body sent nothing for {} seconds (BODY_IDLE_TIMEOUT_SECS)",
            limit.as_secs()
        ),
    )
    .into_response();
    if let Some(id) = handler_response.headers().get("x-request-id") {
        response.headers_mut().insert("x-request-id", id.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// A body that never yields a frame, like a client that stopped sending.
    struct Silent;

    impl Body for Silent {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_silent_body_fails_after_the_limit_and_says_so() {
        let stalled = Arc::new(AtomicBool::new(false));
        let mut body = IdleBody::new(Silent, Duration::from_millis(50), stalled.clone());
        let err = body.frame().await.expect("a frame").expect_err("stalled");
        assert!(err.is::<BodyStalled>(), "{err}");
        assert!(stalled.load(Ordering::Acquire));
    }

    #[tokio::test]
    async fn a_body_that_sends_passes_through() {
        let stalled = Arc::new(AtomicBool::new(false));
        let inner = http_body_util::Full::new(Bytes::from_static(b"abc"));
        let body = IdleBody::new(inner, Duration::from_secs(1), stalled.clone());
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"abc");
        assert!(!stalled.load(Ordering::Acquire));
    }
}
