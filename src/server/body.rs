//! Body wrappers: the request-body idle timeout (a body silent for BODY_IDLE_TIMEOUT_SECS fails
//! with 408) and `Observed`, the one body that forwards frames and reports them to an observer.

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

/// What an [`Observed`] body tells as its frames pass; every method defaults to nothing.
pub trait Observer {
    /// A data frame passed through.
    fn data(&mut self, _data: &Bytes) {}
    /// The body was read to its end (at most once; never after `error`).
    fn end(&mut self) {}
    /// The body failed (at most once; no `end` follows).
    fn error(&mut self) {}
}

/// A body that forwards its inner body's frames unchanged and reports them to `observer`:
/// the one wrapper for hashing, counting or holding something until a body is done.
pub struct Observed<B, O> {
    inner: B,
    observer: O,
    finished: bool,
}

impl<B: Body, O: Observer> Observed<B, O> {
    /// An inner body that is already at its end (an empty body) is reported ended at once.
    pub fn new(inner: B, observer: O) -> Self {
        let mut body = Self {
            inner,
            observer,
            finished: false,
        };
        if body.inner.is_end_stream() {
            body.finish(true);
        }
        body
    }

    fn finish(&mut self, ended: bool) {
        if !self.finished {
            self.finished = true;
            if ended {
                self.observer.end();
            } else {
                self.observer.error();
            }
        }
    }
}

impl<B, O> Body for Observed<B, O>
where
    B: Body<Data = Bytes> + Unpin,
    O: Observer + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.observer.data(data);
                }
                if this.inner.is_end_stream() {
                    this.finish(true);
                }
            }
            Poll::Ready(None) => this.finish(true),
            Poll::Ready(Some(Err(_))) => this.finish(false),
            Poll::Pending => {}
        }
        polled
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

    /// Records what an `Observed` body reported.
    #[derive(Default)]
    struct Log(Arc<parking_lot::Mutex<Vec<String>>>);

    impl Observer for Log {
        fn data(&mut self, data: &Bytes) {
            self.0.lock().push(format!("data {}", data.len()));
        }
        fn end(&mut self) {
            self.0.lock().push("end".into());
        }
        fn error(&mut self) {
            self.0.lock().push("error".into());
        }
    }

    #[tokio::test]
    async fn an_observed_body_reports_each_data_frame_then_its_end_once() {
        let log = Log::default();
        let seen = log.0.clone();
        let body = Observed::new(http_body_util::Full::new(Bytes::from_static(b"abcd")), log);
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"abcd");
        assert_eq!(*seen.lock(), ["data 4", "end"]);

        let log = Log::default();
        let seen = log.0.clone();
        let _unread = Observed::new(http_body_util::Empty::<Bytes>::new(), log);
        assert_eq!(*seen.lock(), ["end"], "an empty body needs no reading");
    }

    #[tokio::test]
    async fn an_observed_body_reports_a_failure_and_no_end() {
        let log = Log::default();
        let seen = log.0.clone();
        let stalled = Arc::new(AtomicBool::new(false));
        let inner = IdleBody::new(Silent, Duration::from_millis(10), stalled);
        let mut body = Observed::new(inner, log);
        assert!(body.frame().await.expect("a frame").is_err());
        assert_eq!(*seen.lock(), ["error"]);
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
