//! One client connection: HTTP/1.1 served by hyper, with the connection-level timeouts hyper
//! lacks (header read, keep-alive idle, stalled response writes) enforced by a watchdog.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::Router;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::body::{timed_out, IdleBody, Observed, Observer};

/// The connection timeouts, from the config; `None` = no limit (a setting of 0).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From accept (or the first byte of a later request) to the end of its headers.
    pub header_read: Option<Duration>,
    /// Between requests on a keep-alive connection.
    pub idle: Option<Duration>,
    /// A request body that sends nothing, or a response the client does not read.
    pub body_idle: Option<Duration>,
}

const NONE: u64 = u64::MAX;

/// What the connection did last, in milliseconds since it was accepted; written by the I/O
/// wrapper and the service, read by the watchdog.
struct Activity {
    born: Instant,
    /// Requests whose headers were read (the service was called).
    requests: AtomicU64,
    /// A response is being produced or sent.
    busy: AtomicBool,
    /// When the connection last became idle (accepted, or the last response was sent).
    idle_since: AtomicU64,
    /// The first byte read while idle: a new request's headers are arriving.
    head_started: AtomicU64,
    /// A write that could not proceed since then: the client is not reading.
    write_blocked: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            born: Instant::now(),
            requests: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            write_blocked: AtomicU64::new(NONE),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn read_some(&self) {
        if !self.busy.load(Ordering::Acquire) && self.head_started.load(Ordering::Acquire) == NONE {
            self.head_started.store(self.now(), Ordering::Release);
        }
    }

    fn begin_request(self: &Arc<Self>) -> BusyGuard {
        self.requests.fetch_add(1, Ordering::AcqRel);
        self.busy.store(true, Ordering::Release);
        self.head_started.store(NONE, Ordering::Release);
        BusyGuard(self.clone())
    }

    /// When the connection is to be closed if nothing changes (ms since accept).
    fn deadline(&self, t: &Timeouts) -> u64 {
        let at = |since: u64, limit: Option<Duration>| match limit {
            Some(d) => since.saturating_add(u64::try_from(d.as_millis()).unwrap_or(NONE)),
            None => NONE,
        };
        if self.busy.load(Ordering::Acquire) {
            let blocked = self.write_blocked.load(Ordering::Acquire);
            if blocked != NONE {
                return at(blocked, t.body_idle);
            }
            // Busy and making progress (or computing): look again in a while.
            return at(
                self.now(),
                t.body_idle.map(|d| d.min(Duration::from_secs(1))),
            );
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head != NONE {
            return at(head, t.header_read);
        }
        let idle_since = self.idle_since.load(Ordering::Acquire);
        if self.requests.load(Ordering::Acquire) == 0 {
            at(idle_since, t.header_read)
        } else {
            at(idle_since, t.idle)
        }
    }
}

/// Marks the connection busy until the response has been sent (or given up).
struct BusyGuard(Arc<Activity>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now(), Ordering::Release);
        a.write_blocked.store(NONE, Ordering::Release);
        a.busy.store(false, Ordering::Release);
    }
}

/// Completes when the connection has broken one of its timeouts.
async fn watchdog(activity: &Activity, timeouts: Timeouts) {
    loop {
        let deadline = activity.deadline(&timeouts);
        if deadline == NONE {
            // Nothing to enforce now: look again later (a setting may apply once state changes).
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let now = activity.now();
        if now >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(deadline - now)).await;
    }
}

/// Serves one accepted connection until it ends, breaks a timeout, or (after `shutdown`
/// fires) has finished its current request.
pub async fn serve(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: Timeouts,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = hyper_util::rt::TokioIo::new(Metered {
        inner: stream,
        activity: activity.clone(),
    });
    let service = ConnService {
        app,
        peer,
        activity: activity.clone(),
        body_idle: timeouts.body_idle,
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let dog = watchdog(&activity, timeouts);
    tokio::pin!(dog);
    let mut draining = *shutdown.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = dog.as_mut() => {
                tracing::debug!(%peer, "connection closed: it broke a timeout");
                return;
            }
            changed = shutdown.changed(), if !draining => {
                draining = true;
                if changed.is_err() || *shutdown.borrow() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The socket, noting reads and stalled writes for the watchdog.
struct Metered {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl Metered {
    fn wrote<T>(&self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        let blocked = &self.activity.write_blocked;
        match &result {
            Poll::Pending => {
                if blocked.load(Ordering::Acquire) == NONE {
                    blocked.store(self.activity.now(), Ordering::Release);
                }
            }
            Poll::Ready(_) => blocked.store(NONE, Ordering::Release),
        }
        result
    }
}

impl AsyncRead for Metered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        result
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as hyper sees it on this connection: it adds the client address
/// (`ConnectInfo<SocketAddr>`), the body idle timeout, and marks the connection busy until the
/// response body is done.
#[derive(Clone)]
struct ConnService {
    app: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    body_idle: Option<Duration>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let guard = self.activity.begin_request();
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let stalled = Arc::new(AtomicBool::new(false));
        let body = match self.body_idle {
            Some(limit) => Body::new(IdleBody::new(body, limit, stalled.clone())),
            None => Body::new(body),
        };
        let mut app = self.app.clone();
        let limit = self.body_idle;
        Box::pin(async move {
            let result =
                tower_service::Service::call(&mut app, Request::from_parts(parts, body)).await;
            let mut response = match result {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if let Some(limit) = limit.filter(|_| stalled.load(Ordering::Acquire)) {
                response = timed_out(limit, &response);
            }
            Ok(response.map(|inner| Observed::new(inner, guard)))
        })
    }
}

/// A response body that keeps the connection marked busy until hyper drops it (sent, or the
/// connection went away): the guard is its observer and is dropped with it.
type Tracked = Observed<Body, BusyGuard>;

impl Observer for BusyGuard {}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> Timeouts {
        Timeouts {
            header_read: Some(Duration::from_secs(10)),
            idle: Some(Duration::from_secs(60)),
            body_idle: Some(Duration::from_secs(30)),
        }
    }

    #[test]
    fn deadlines_follow_the_connection_state() {
        let a = Arc::new(Activity::new());
        let t = timeouts();
        assert_eq!(
            a.deadline(&t),
            10_000,
            "a fresh connection has the header timeout"
        );
        a.requests.store(1, Ordering::Release);
        a.idle_since.store(500, Ordering::Release);
        assert_eq!(a.deadline(&t), 60_500, "between requests: the idle timeout");
        a.head_started.store(2_000, Ordering::Release);
        assert_eq!(
            a.deadline(&t),
            12_000,
            "headers arriving: the header timeout"
        );
        let guard = a.begin_request();
        a.write_blocked.store(3_000, Ordering::Release);
        assert_eq!(
            a.deadline(&t),
            33_000,
            "a client not reading: the body idle timeout"
        );
        drop(guard);
        assert_eq!(a.write_blocked.load(Ordering::Acquire), NONE);
        assert!(!a.busy.load(Ordering::Acquire));
    }

    #[test]
    fn zero_settings_mean_no_limit() {
        let a = Activity::new();
        let t = Timeouts {
            header_read: None,
            idle: None,
            body_idle: None,
        };
        assert_eq!(a.deadline(&t), NONE);
    }
}
