//! Bounds on request bodies and uploads in flight.
//!
//! Every request body goes through [`guard_body`]: a declared `Content-Length` over the
//! route's limit is answered 413 at once, and the body is wrapped in a [`GuardedBody`] that
//! counts its bytes (413 past the limit, whatever the transfer encoding), cuts it off when no
//! byte arrives for `BODY_IDLE_TIMEOUT_SECONDS` and when it falls under `BODY_MIN_RATE_KIB`
//! on average (408). Bodies of the upload routes stream on to the handler; every other body
//! is small (at most [`SMALL_BODY_LIMIT`]) and is read here, so its handler gets it whole.
//!
//! [`upload_gate`] caps the uploads one client (IPv4 address or IPv6 /64) and all clients
//! have in flight (429/503 with `Retry-After`); a slot is freed when the handler ends or the
//! connection dies. The progress route holds a [`ClientGate`] slot of its own for as long as
//! its event stream is open.

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::security::{ClientKey, client_key};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Routes whose bodies are multipart uploads streamed to disk (limit: `MAX_UPLOAD_MB` plus
/// [`FRAMING_SLACK`]).
pub const UPLOAD_ROUTES: &[&str] = &["/api/v2/master", "/api/v2/analyze"];

/// Largest body of every other route (JSON of a few hundred bytes; payment notifications
/// are a few KiB).
pub const SMALL_BODY_LIMIT: u64 = 64 * 1024;

/// Seconds a client is asked to wait when the upload slots are taken.
pub const UPLOAD_RETRY_AFTER: u64 = 10;

/// Why a [`GuardedBody`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More bytes than the limit.
    #[error("the request body is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// No byte for this many seconds.
    #[error("no data arrived for {0} s: the request body was cut off")]
    Idle(u64),
    /// Slower on average than this many KiB/s.
    #[error("the request body arrived slower than {0} KiB/s: it was cut off")]
    TooSlow(u64),
}

/// The time limits of a body, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeouts {
    /// No byte for this long: [`BodyError::Idle`].
    pub idle: Duration,
    /// Slowest average rate in bytes a second, counted after the first `idle` period.
    pub min_rate: u64,
}

impl BodyTimeouts {
    /// From `BODY_IDLE_TIMEOUT_SECONDS` and `BODY_MIN_RATE_KIB`.
    pub fn from_settings(settings: &shared::Settings) -> BodyTimeouts {
        BodyTimeouts {
            idle: Duration::from_secs(settings.body_idle_timeout_seconds),
            min_rate: settings.body_min_rate_kib.saturating_mul(1024),
        }
    }
}

/// A request body with a byte limit, an idle timeout and a minimum average rate. The clock
/// starts at the first read, so time the handler spends before reading is not counted.
pub struct GuardedBody {
    inner: Body,
    limit: u64,
    timeouts: BodyTimeouts,
    received: u64,
    /// When reading started and when the last byte arrived.
    clock: Option<(Instant, Instant)>,
    timer: Pin<Box<Sleep>>,
    done: bool,
}

impl GuardedBody {
    /// Wraps `inner`.
    pub fn new(inner: Body, limit: u64, timeouts: BodyTimeouts) -> GuardedBody {
        GuardedBody {
            inner,
            limit,
            timeouts,
            received: 0,
            clock: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            done: false,
        }
    }

    /// When the idle timeout and the minimum rate run out.
    fn deadlines(&self, started: Instant, last: Instant) -> (Instant, Instant) {
        let idle = last + self.timeouts.idle;
        let allowed = Duration::from_secs_f64(self.received as f64 / self.timeouts.min_rate as f64);
        let slow = started + self.timeouts.idle + allowed;
        (idle, slow)
    }

    fn arm(&mut self, started: Instant, last: Instant) {
        let (idle, slow) = self.deadlines(started, last);
        self.timer.as_mut().reset(idle.min(slow));
    }

    fn fail(&mut self, e: BodyError) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        self.done = true;
        Poll::Ready(Some(Err(Box::new(e))))
    }
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let (started, last) = match this.clock {
            Some(clock) => clock,
            None => {
                let now = Instant::now();
                this.clock = Some((now, now));
                this.arm(now, now);
                (now, now)
            }
        };
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && !data.is_empty()
                {
                    this.received += data.len() as u64;
                    if this.received > this.limit {
                        return this.fail(BodyError::TooLarge(this.limit));
                    }
                    let now = Instant::now();
                    this.clock = Some((started, now));
                    this.arm(started, now);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.timer.as_mut().poll(cx).is_ready() {
                    let (idle, _) = this.deadlines(started, last);
                    let e = if Instant::now() >= idle {
                        BodyError::Idle(this.timeouts.idle.as_secs())
                    } else {
                        BodyError::TooSlow(this.timeouts.min_rate / 1024)
                    };
                    return this.fail(e);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The [`BodyError`] somewhere in `e`'s chain of sources, if any.
pub fn find_body_error(e: &(dyn std::error::Error + 'static)) -> Option<BodyError> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<BodyError>() {
            return Some(*found);
        }
        next = e.source();
    }
    None
}

/// Slack allowed over the upload limit for the multipart framing and the small fields
/// (the whole body of an upload route may be this much larger than the file).
pub const FRAMING_SLACK: u64 = 64 * 1024;

/// The 413 answer for a limit in bytes.
pub fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!(
            "the upload is larger than the limit of {} MB",
            limit / (1024 * 1024)
        ),
    )
}

/// The answer to a [`BodyError`]: 413 or 408; `too_large` words the 413.
pub fn body_error_response(e: BodyError, too_large: impl FnOnce() -> ApiError) -> ApiError {
    match e {
        BodyError::TooLarge(_) => too_large(),
        BodyError::Idle(_) => ApiError::Refused {
            code: ErrorCode::BodyTimeout,
            detail: e.to_string(),
        },
        BodyError::TooSlow(_) => ApiError::Refused {
            code: ErrorCode::BodyTooSlow,
            detail: e.to_string(),
        },
    }
}

fn small_body_too_large() -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!(
            "the request body is larger than the limit of {} KiB",
            SMALL_BODY_LIMIT / 1024
        ),
    )
}

/// Middleware on every route: the body limit and time limits described in the module docs.
pub async fn guard_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let upload = UPLOAD_ROUTES.contains(&req.uri().path());
    let upload_limit = state.settings.max_upload_bytes();
    let limit = if upload {
        upload_limit.saturating_add(FRAMING_SLACK)
    } else {
        SMALL_BODY_LIMIT
    };
    let too_large = move || {
        if upload {
            too_large(upload_limit)
        } else {
            small_body_too_large()
        }
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return too_large().into_response();
    }
    let timeouts = BodyTimeouts::from_settings(&state.settings);
    let (parts, body) = req.into_parts();
    let body = Body::new(GuardedBody::new(body, limit, timeouts));
    if upload {
        return next.run(Request::from_parts(parts, body)).await;
    }
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => match find_body_error(&e) {
            Some(e) => body_error_response(e, too_large).into_response(),
            None => ApiError::new(
                ErrorCode::InvalidBody,
                format!("the request body could not be read: {e}"),
            )
            .into_response(),
        },
    }
}

/// What a [`ClientGate`] counts, for its answers.
#[derive(Debug)]
pub struct GateKind {
    /// Plural noun for the detail text ("uploads").
    pub noun: &'static str,
    /// Code of the 429 when one client has its share open.
    pub per_client_code: ErrorCode,
    /// Code of the 503 when all places are taken.
    pub busy_code: ErrorCode,
}

/// Uploads (`/api/v2/master`, `/api/v2/analyze`) in flight.
pub const UPLOADS: GateKind = GateKind {
    noun: "uploads",
    per_client_code: ErrorCode::TooManyUploads,
    busy_code: ErrorCode::UploadsBusy,
};

/// Open progress streams (`/api/master/progress/{id}`, server-sent events).
pub const PROGRESS_STREAMS: GateKind = GateKind {
    noun: "progress streams",
    per_client_code: ErrorCode::TooManyStreams,
    busy_code: ErrorCode::StreamsBusy,
};

/// Counts long-lived requests (uploads, progress streams) in flight, per client (an IPv4
/// address or an IPv6 /64: [`client_key`]) and in total.
#[derive(Debug)]
pub struct ClientGate {
    kind: &'static GateKind,
    per_client: usize,
    max: usize,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    total: usize,
    /// Only clients with something in flight (at most `max` entries).
    by_client: HashMap<ClientKey, usize>,
}

/// One request's place; freed on drop.
#[derive(Debug)]
pub struct GateSlot {
    gate: Arc<ClientGate>,
    client: ClientKey,
}

impl ClientGate {
    /// At most `per_client` in flight per client and `max` in all.
    pub fn new(kind: &'static GateKind, per_client: usize, max: usize) -> Arc<ClientGate> {
        Arc::new(ClientGate {
            kind,
            per_client,
            max,
            state: Mutex::new(GateState::default()),
        })
    }

    /// Takes a slot for the client at `ip`: 429 when the client has `per_client` in flight,
    /// 503 when all `max` are taken; both with `Retry-After`.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<GateSlot, ApiError> {
        let client = client_key(ip);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mine = state.by_client.get(&client).copied().unwrap_or(0);
        if mine >= self.per_client {
            return Err(ApiError::retry_later(
                self.kind.per_client_code,
                format!(
                    "{mine} {} from your address are still open: wait until one ends (at \
                     most {} at a time)",
                    self.kind.noun, self.per_client
                ),
                UPLOAD_RETRY_AFTER,
            ));
        }
        if state.total >= self.max {
            return Err(ApiError::retry_later(
                self.kind.busy_code,
                format!(
                    "the server has as many {} open as it can: try again shortly",
                    self.kind.noun
                ),
                UPLOAD_RETRY_AFTER,
            ));
        }
        state.total += 1;
        *state.by_client.entry(client).or_insert(0) += 1;
        Ok(GateSlot {
            gate: self.clone(),
            client,
        })
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for GateSlot {
    fn drop(&mut self) {
        let mut state = self.gate.state.lock().unwrap_or_else(|p| p.into_inner());
        state.total = state.total.saturating_sub(1);
        if let Some(n) = state.by_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.by_client.remove(&self.client);
            }
        }
    }
}

/// Middleware of the upload routes: holds a [`GateSlot`] while the handler runs (it is
/// dropped with the handler when the client goes away).
pub async fn upload_gate(
    State((state, gate)): State<(AppState, Arc<ClientGate>)>,
    req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = crate::security::client_ip(peer, req.headers(), &state.security.trusted_proxies);
    let slot = match gate.acquire(ip) {
        Ok(slot) => slot,
        Err(e) => return e.into_response(),
    };
    let response = next.run(req).await;
    drop(slot);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn uploads_inside_one_ipv6_64_share_one_client_cap() {
        let gate = ClientGate::new(&UPLOADS, 1, 10);
        let first: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let rotated: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _held = gate.acquire(first).unwrap();
        let e = gate.acquire(rotated).unwrap_err();
        assert_eq!(
            e.status_and_code(),
            (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManyUploads
            )
        );
        assert!(gate.acquire(other_64).is_ok());
    }

    #[test]
    fn gate_caps_per_ip_and_in_total_and_frees_on_drop() {
        let gate = ClientGate::new(&UPLOADS, 2, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = gate.acquire(a).unwrap();
        let a2 = gate.acquire(a).unwrap();
        let e = gate.acquire(a).unwrap_err();
        assert_eq!(e.status_and_code().0.as_u16(), 429);
        let b1 = gate.acquire(b).unwrap();
        let e = gate.acquire(b).unwrap_err();
        assert_eq!(
            e.status_and_code(),
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::UploadsBusy
            )
        );
        drop(a1);
        assert_eq!(gate.in_flight(), 2);
        let b2 = gate.acquire(b).unwrap();
        drop((b1, b2, a2));
        assert_eq!(gate.in_flight(), 0);
        assert!(
            gate.state.lock().unwrap().by_client.is_empty(),
            "no entries left behind"
        );
    }

    fn timeouts(idle_ms: u64, min_rate: u64) -> BodyTimeouts {
        BodyTimeouts {
            idle: Duration::from_millis(idle_ms),
            min_rate,
        }
    }

    /// A body fed by the test: `(sender, body)`.
    fn channel_body() -> (
        tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
        Body,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let stream = tokio_stream_from(rx);
        (tx, Body::new(http_body_util::StreamBody::new(stream)))
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
    ) -> impl futures::Stream<Item = Result<Frame<Bytes>, std::io::Error>> {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }

    async fn collect(body: GuardedBody) -> Result<Bytes, BodyError> {
        Body::new(body)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| find_body_error(&e).expect("a BodyError"))
    }

    #[tokio::test]
    async fn body_over_the_limit_is_cut_at_the_limit() {
        let body = GuardedBody::new(Body::from(vec![0u8; 1001]), 1000, timeouts(1000, 1));
        assert_eq!(collect(body).await, Err(BodyError::TooLarge(1000)));
        let body = GuardedBody::new(Body::from(vec![0u8; 1000]), 1000, timeouts(1000, 1));
        assert_eq!(collect(body).await.unwrap().len(), 1000);
    }

    #[tokio::test]
    async fn silent_body_times_out_and_slow_body_is_cut() {
        let (tx, body) = channel_body();
        let guarded = GuardedBody::new(body, 1 << 20, timeouts(200, 1 << 20));
        let task = tokio::spawn(collect(guarded));
        tx.send(Ok(Frame::data(Bytes::from_static(b"x"))))
            .await
            .unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), task).await;
        assert_eq!(result.unwrap().unwrap(), Err(BodyError::Idle(0)));

        // A byte every 100 ms: never idle for 200 ms, but far under 2 KiB a second.
        let (tx, body) = channel_body();
        let guarded = GuardedBody::new(body, 1 << 20, timeouts(200, 2048));
        let task = tokio::spawn(collect(guarded));
        let start = Instant::now();
        while !task.is_finished() && start.elapsed() < Duration::from_secs(10) {
            let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"x")))).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(task.await.unwrap(), Err(BodyError::TooSlow(2)));
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn steady_body_at_the_rate_passes() {
        // 1,100 bytes a second against a minimum of 1,000, for 2 s (10 idle periods).
        let (tx, body) = channel_body();
        let guarded = GuardedBody::new(body, 1 << 20, timeouts(200, 1000));
        let task = tokio::spawn(collect(guarded));
        for _ in 0..20 {
            tx.send(Ok(Frame::data(Bytes::from(vec![0u8; 110]))))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(tx);
        assert_eq!(task.await.unwrap().unwrap().len(), 2200);
    }
}
