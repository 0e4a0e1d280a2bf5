//! HTTP/2 over the stamped connections: a target's calls share a connection as streams (the h2
//! crate), with each call's times read from the connection's [`FrameLog`] by its stream id:
//! "sent" when its HEADERS frame was written, the headers and every chunk when the read that
//! completed their frame arrived.
//!
//! A connection takes as many calls at once as the server allows streams (its
//! `SETTINGS_MAX_CONCURRENT_STREAMS`, 100 until it says); more calls open another connection, as
//! browsers and the SDKs' HTTP/2 clients do, rather than wait outside their own times.
//!
//! `http2 = "on"` speaks HTTP/2 on every connection (over plain http without asking first);
//! `"auto"` only where the server picks it in the TLS handshake (ALPN), and otherwise says so,
//! and the target's calls go over HTTP/1.1 from then on.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use futures_util::Stream;

use super::Connector;
use super::frames::FrameLog;
use crate::provider::http::chain;
use crate::provider::transport::{
    BodyError, ClockSource, HttpRequest, Peer, RawResponse, SocketClock, Stamp, TransportError,
    to_nanos,
};

/// Per-stream and connection receive windows, as hyper sets them: a stream's answer is never
/// held back waiting for the client to grant room.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// The most header bytes a response may have (decoded): a server flooding headers ends the
/// stream, not the client's memory.
const MAX_HEADER_LIST: u32 = 64 * 1024;

/// The streams a new connection is given before the server's SETTINGS say how many it takes, and
/// when they do not say: the number RFC 9113 asks servers to allow at least (and Go's client
/// assumes).
const STREAMS_BEFORE_SETTINGS: usize = 100;

/// How long a call waits for a new connection's SETTINGS before it takes the connection as
/// allowing [`STREAMS_BEFORE_SETTINGS`].
const SETTINGS_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A target's HTTP/2 connections: the first call opens one, and another opens whenever those
/// open are closed or carry as many streams as their server allows.
pub(super) struct H2 {
    connector: Connector,
    /// Where the connection goes: the target's base URL.
    base: http::Uri,
    /// Speak HTTP/2 whatever ALPN said (`http2 = "on"`).
    prior_knowledge: bool,
    /// `auto` found a server that does not offer HTTP/2.
    declined: AtomicBool,
    pool: tokio::sync::Mutex<Vec<Shared>>,
}

#[derive(Clone)]
struct Shared {
    send: h2::client::SendRequest<Bytes>,
    frames: Arc<FrameLog>,
    peer: Peer,
    /// The connection's task has ended (closed, broken, or the server went away).
    closed: Arc<AtomicBool>,
    /// Calls on it now (each holds a [`Lease`]).
    calls: Arc<AtomicUsize>,
}

impl Shared {
    /// Whether it can take another call now without waiting for a stream. A server allowing no
    /// streams at all is taken at one, so its calls end in their own timeouts.
    fn has_room(&self) -> bool {
        let max = self.frames.max_streams().unwrap_or(STREAMS_BEFORE_SETTINGS);
        !self.closed.load(Ordering::Acquire) && self.calls.load(Ordering::Acquire) < max.max(1)
    }

    fn lease(&self) -> Lease {
        self.calls.fetch_add(1, Ordering::AcqRel);
        Lease(self.calls.clone())
    }
}

/// A call's place among its connection's streams, given back when the call is done.
struct Lease(Arc<AtomicUsize>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a call on a shared connection got no response.
enum Failed {
    /// The connection could not take the stream (closed since it was last used, or the server
    /// refused the stream): nothing was answered, and a new connection may be tried.
    Stale(String),
    Transport(TransportError),
}

impl H2 {
    /// `connector`: its TLS configuration offers h2 in ALPN.
    pub(super) fn new(connector: Connector, base: http::Uri, prior_knowledge: bool) -> Self {
        H2 {
            connector,
            base,
            prior_knowledge,
            declined: AtomicBool::new(false),
            pool: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// Whether `auto` found the server speaks HTTP/1.1 only.
    pub(super) fn declined(&self) -> bool {
        self.declined.load(Ordering::Relaxed)
    }

    /// Sends `req` to `uri` as a stream on a shared connection; hands it back when the server
    /// turned HTTP/2 down (`auto`). A connection found closed when the stream is opened is
    /// replaced once.
    pub(super) async fn send(
        &self,
        uri: http::Uri,
        req: HttpRequest,
    ) -> Result<Result<RawResponse, HttpRequest>, TransportError> {
        let mut retried = false;
        loop {
            let Some((shared, lease, opened)) = self.connection().await? else {
                return Ok(Err(req));
            };
            let body = Bytes::copy_from_slice(&req.body);
            match exchange(&shared, lease, &uri, &req.method, &req.headers, body).await {
                Ok(resp) => return Ok(Ok(resp)),
                Err(Failed::Stale(why)) => {
                    shared.closed.store(true, Ordering::Release);
                    if opened || retried {
                        return Err(TransportError::Connect(why));
                    }
                    retried = true;
                }
                Err(Failed::Transport(e)) => return Err(e),
            }
        }
    }

    /// A connection with room for a stream, the call's place on it, and whether this call
    /// opened it; `None` when the server does not offer HTTP/2 and `auto` asked. Calls wait
    /// while one of them opens a connection, so a burst of calls opens no more than it needs.
    async fn connection(&self) -> Result<Option<(Shared, Lease, bool)>, TransportError> {
        let mut pool = self.pool.lock().await;
        // Calls that waited while the first found the server speaks HTTP/1.1 only ask no more.
        if self.declined() {
            return Ok(None);
        }
        pool.retain(|s| !s.closed.load(Ordering::Acquire));
        // A connection whose server has not yet said how many streams it takes is waited on
        // (one round trip) before it is counted full: a burst would otherwise pile onto it.
        for s in pool.iter().filter(|s| s.frames.max_streams().is_none()) {
            if tokio::time::timeout(SETTINGS_WAIT, s.frames.settings())
                .await
                .is_err()
            {
                s.frames.settings_unsaid();
            }
        }
        if let Some(s) = pool.iter().find(|s| s.has_room()) {
            return Ok(Some((s.clone(), s.lease(), false)));
        }
        let io = tower_service::Service::call(&mut self.connector.clone(), self.base.clone())
            .await
            .map_err(connect_error)?;
        if !self.prior_knowledge && !io.inner().negotiated_h2() {
            self.declined.store(true, Ordering::Relaxed);
            // The HTTP/1.1 call that follows uses it, with its set-up's times.
            let set_up = crate::provider::http::current_slot().and_then(|s| s.connected());
            self.connector.parked.put(io, set_up);
            return Ok(None);
        }
        let mut conn = io.into_inner();
        let frames = Arc::new(FrameLog::new(STREAMS_BEFORE_SETTINGS));
        conn.frames = Some(frames.clone());
        let peer = conn.peer;
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(false)
            .max_header_list_size(MAX_HEADER_LIST)
            .initial_max_send_streams(STREAMS_BEFORE_SETTINGS)
            .handshake::<_, Bytes>(conn)
            .await
            .map_err(|e| TransportError::Connect(format!("HTTP/2 handshake: {}", chain(&e))))?;
        let closed = Arc::new(AtomicBool::new(false));
        let ended = Ended(closed.clone());
        let base = self.base.clone();
        tokio::spawn(async move {
            let _ended = ended;
            if let Err(e) = connection.await {
                tracing::debug!("HTTP/2 connection to {base} ended: {}", chain(&e));
            }
        });
        let shared = Shared {
            send,
            frames,
            peer,
            closed,
            calls: Arc::new(AtomicUsize::new(0)),
        };
        let lease = shared.lease();
        pool.push(shared.clone());
        Ok(Some((shared, lease, true)))
    }
}

/// Marks a connection closed when its task ends, however it ends (a runtime shutting down
/// drops it).
struct Ended(Arc<AtomicBool>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// One call as a stream on `shared`: the request, then the response's head, stamped.
async fn exchange(
    shared: &Shared,
    lease: Lease,
    uri: &http::Uri,
    method: &http::Method,
    headers: &http::HeaderMap,
    body: Bytes,
) -> Result<RawResponse, Failed> {
    let stale = |e: h2::Error| Failed::Stale(format!("HTTP/2 connection: {}", chain(&e)));
    // Waits while the server's limit of concurrent streams is reached.
    let mut send = shared.send.clone().ready().await.map_err(stale)?;
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .body(())
        .map_err(|e| Failed::Transport(TransportError::Request(e.to_string())))?;
    request.headers_mut().extend(headers.clone());
    request
        .headers_mut()
        .entry(http::header::USER_AGENT)
        .or_insert(http::HeaderValue::from_static(
            crate::provider::http::USER_AGENT,
        ));
    let (response, mut upload) = send.send_request(request, body.is_empty()).map_err(stale)?;
    let claim = Claim {
        frames: shared.frames.clone(),
        stream: response.stream_id().as_u32(),
        _lease: lease,
    };
    claim.frames.claim(claim.stream);
    if !body.is_empty() {
        upload.send_data(body, true).map_err(stale)?;
    }
    let resp = response.await.map_err(|e| {
        let mut why = format!("HTTP/2 stream: {}", chain(&e));
        if !e.is_remote() && e.reason() == Some(h2::Reason::PROTOCOL_ERROR) {
            why.push_str(&format!(
                " (the response broke HTTP/2's rules or passed llmpulse's limit of {} KiB of \
                 headers)",
                MAX_HEADER_LIST / 1024
            ));
        }
        // Refused, or above the last stream a closing server said it would answer: nothing of
        // it was processed, and another connection may take it.
        if e.reason() == Some(h2::Reason::REFUSED_STREAM) || e.is_go_away() {
            Failed::Stale(why)
        } else if e.is_io() || !e.is_reset() {
            // The connection failed (a server that does not speak HTTP/2 lands here).
            Failed::Transport(TransportError::Connect(why))
        } else {
            Failed::Transport(TransportError::Request(why))
        }
    })?;
    let clock = SocketClock::default();
    let (written, headers) = claim.frames.head(claim.stream);
    if let Some(written) = written {
        clock.set_written(written);
    }
    clock.stamp(headers.unwrap_or_else(now));
    let (parts, recv) = resp.into_parts();
    Ok(RawResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: Box::pin(Body {
            recv,
            claim,
            clock: clock.clone(),
        }),
        // Set by the transport: whether this call's task opened the connection.
        connect: None,
        http_version: crate::provider::transport::version_name(parts.version),
        peer: Some(shared.peer),
        clock: Some(clock),
    })
}

/// A stamp taken now, at the read: for bytes whose frame the log did not keep.
fn now() -> Stamp {
    Stamp {
        nanos: to_nanos(Instant::now()),
        source: ClockSource::Socket,
    }
}

/// A call's hold on its stream's stamps (the log keeps them until the call is done with them)
/// and on its place among the connection's streams.
struct Claim {
    frames: Arc<FrameLog>,
    stream: u32,
    _lease: Lease,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.frames.close(self.stream);
    }
}

/// A stream's data as it is read, each chunk stamping the call's clock with its frame's time
/// before the exchange sees it; the room it took is given back to the server at once.
struct Body {
    recv: h2::RecvStream,
    claim: Claim,
    clock: SocketClock,
}

impl Stream for Body {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let chunk = match ready!(this.recv.poll_data(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => {
                return Poll::Ready(Some(Err(BodyError(format!(
                    "HTTP/2 stream: {}",
                    chain(&e)
                )))));
            }
            Some(Ok(chunk)) => chunk,
        };
        let _ = this.recv.flow_control().release_capacity(chunk.len());
        let at = this.claim.frames.take(this.claim.stream, chunk.len());
        this.clock.stamp(at.unwrap_or_else(now));
        Poll::Ready(Some(Ok(chunk)))
    }
}

/// A failed connect as the HTTP/1.1 path reports it: timed out, TLS refused, or refused.
pub(super) fn connect_error(e: io::Error) -> TransportError {
    if e.kind() == io::ErrorKind::TimedOut {
        TransportError::ConnectTimeout
    } else if crate::provider::tls::is_tls_failure(&e) {
        TransportError::Tls(chain(&e))
    } else {
        TransportError::Connect(chain(&e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc::Sender;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use tokio::io::{AsyncRead, AsyncWrite};

    use super::super::tests::{Schedule, client, hi, may_capture, runtime, tls_config, tls_if};
    use crate::provider::ClockSource;

    /// A streamed chat answer, whole: "Hello there", its end and `[DONE]`.
    const ANSWER: &str = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello there\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n"
    );

    /// Sends a stream's whole answer ([`ANSWER`]) at once, ending the stream.
    fn answer_whole(respond: &mut h2::server::SendResponse<Bytes>) {
        let head = http::Response::builder()
            .header("content-type", "text/event-stream")
            .body(())
            .unwrap();
        let mut send = respond.send_response(head, false).unwrap();
        send.send_data(Bytes::from_static(ANSWER.as_bytes()), true)
            .unwrap();
    }

    /// Binds a port on 127.0.0.1 and runs `serve` on it in a thread with a runtime of its own.
    /// Returns `http://ADDR/v1`.
    fn spawn_server<F, Fut>(serve: F) -> String
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            runtime().block_on(async move {
                serve(tokio::net::TcpListener::from_std(listener).unwrap()).await
            });
        });
        url
    }

    /// An HTTP/2 server taking one connection: once it has two requests on it (said on `got`),
    /// it answers the first after 150 ms and the second after 300 ms, each whole at once. Over
    /// TLS with `tls` (ALPN h2). Returns its base URL.
    fn server(tls: Option<Arc<rustls::ServerConfig>>, got: Sender<()>) -> String {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = spawn_server(|listener| async move {
            let (tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            match tls {
                None => serve(tcp, got).await,
                Some(config) => {
                    let mut config = (*config).clone();
                    config.alpn_protocols = vec![b"h2".to_vec()];
                    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
                    serve(acceptor.accept(tcp).await.unwrap(), got).await
                }
            }
        });
        url.replacen("http", scheme, 1)
    }

    async fn serve(io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static, got: Sender<()>) {
        let mut conn = h2::server::handshake(io).await.unwrap();
        let mut streams = Vec::new();
        while streams.len() < 2 {
            let (request, respond) = conn.accept().await.unwrap().unwrap();
            streams.push((request.into_body(), respond));
        }
        // The connection goes on being driven while the streams are answered.
        let driver = tokio::spawn(async move { while conn.accept().await.is_some() {} });
        for (body, _) in &mut streams {
            while let Some(chunk) = body.data().await {
                let _ = body.flow_control().release_capacity(chunk.unwrap().len());
            }
        }
        let read = Instant::now();
        got.send(()).unwrap();
        for ((_, mut respond), after) in streams.into_iter().zip([150, 300]) {
            tokio::time::sleep(Duration::from_millis(after).saturating_sub(read.elapsed())).await;
            answer_whole(&mut respond);
        }
        let _ = driver.await;
    }

    /// Two calls as streams on one HTTP/2 connection whose client thread is busy for 500 ms
    /// from when the server has both requests; their answers come 150 and 300 ms after that.
    /// Gives both TTFTs (s), in order, and the clocks the records would name.
    fn two_streams_with_a_busy_client(clock: &str, tls: bool) -> ([f64; 2], [ClockSource; 2]) {
        let (tx, got) = std::sync::mpsc::channel();
        let (config, ca_file) = tls_if(tls);
        let url = server(config, tx);
        let client = client(&url, clock, ca_file.as_deref(), "http2 = \"on\"\n");
        let (rt, prompt) = (runtime(), hi());
        let (a, b) = rt.block_on(async {
            let busy = async {
                // Until the server has the requests (or is gone).
                while let Err(std::sync::mpsc::TryRecvError::Empty) = got.try_recv() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // The only worker thread does something else for half a second.
                std::thread::sleep(Duration::from_millis(500));
            };
            let (a, b, ()) = tokio::join!(
                client.call(&prompt, None, None),
                client.call(&prompt, None, None),
                busy
            );
            (a, b)
        });
        for out in [&a, &b] {
            assert!(out.error.is_none(), "{:?}", out.error);
            assert_eq!(out.answer, "Hello there");
            assert_eq!(out.http_version, Some("HTTP/2.0"));
        }
        let opened = [&a, &b]
            .iter()
            .filter(|o| matches!(o.connect, Some(Some(_))))
            .count();
        assert_eq!(opened, 1, "both streams on one connection");
        let mut ttfts = [a.timings.ttft_sec.unwrap(), b.timings.ttft_sec.unwrap()];
        ttfts.sort_by(f64::total_cmp);
        (ttfts, [a.clock, b.clock])
    }

    /// Streams sharing a connection keep their own times: with the packet clock the stream
    /// answered at 150 ms reads 150 ms though the connection's latest bytes, read with it, came
    /// at 300 ms. The kernel clock stamps a read with its latest packet, as over HTTP/1.1; a
    /// clock taken in user space waits for the busy thread.
    #[test]
    #[cfg(target_os = "linux")]
    fn streams_on_one_connection_keep_their_own_times() {
        for tls in [false, true] {
            let ([first, second], clocks) = two_streams_with_a_busy_client("packet", tls);
            if may_capture() {
                assert_eq!(clocks, [ClockSource::Packet; 2], "tls: {tls}");
                assert!(
                    (0.14..0.25).contains(&first) && (0.29..0.4).contains(&second),
                    "answers came at ~150 and ~300 ms; measured {first}, {second} (tls: {tls})"
                );
            } else {
                assert_eq!(clocks, [ClockSource::Kernel; 2], "tls: {tls}");
            }
            let ([first, second], clocks) = two_streams_with_a_busy_client("kernel", tls);
            assert_eq!(clocks, [ClockSource::Kernel; 2], "tls: {tls}");
            assert!(
                (0.14..0.4).contains(&first) && (0.29..0.4).contains(&second),
                "not the busy thread's 500 ms; measured {first}, {second} (tls: {tls})"
            );
            let ([first, _], clocks) = two_streams_with_a_busy_client("socket", tls);
            assert_eq!(clocks, [ClockSource::Socket; 2], "tls: {tls}");
            assert!(first > 0.5, "stamped at the read: {first} (tls: {tls})");
        }
    }

    /// An h2c server taking one connection and answering its first stream with `answer`.
    fn h2_server<F, Fut>(answer: F) -> String
    where
        F: FnOnce(h2::server::SendResponse<Bytes>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        spawn_server(|listener| async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut conn = h2::server::handshake(tcp).await.unwrap();
            let (_, respond) = conn.accept().await.unwrap().unwrap();
            let driver = tokio::spawn(async move { while conn.accept().await.is_some() {} });
            answer(respond).await;
            let _ = driver.await;
        })
    }

    fn one_call(client: &crate::provider::Client) -> crate::provider::CallOutcome {
        let (rt, prompt) = (runtime(), hi());
        rt.block_on(client.call(&prompt, None, None))
    }

    /// `http2 = "auto"` against an https server that offers no h2 in its handshake: the calls
    /// go over HTTP/1.1 on the kernel clock. Five calls at once ask for HTTP/2 once, not once
    /// each, and the connection that asked carries one of them: five connections in all, each
    /// with its opener's set-up times (the TLS handshake among them).
    #[test]
    #[cfg(target_os = "linux")]
    fn auto_speaks_http1_where_the_server_offers_no_h2() {
        let (tx, got) = std::sync::mpsc::channel();
        let (config, ca_file) = tls_config();
        let schedule = Schedule {
            first: Duration::from_millis(20),
            second: None,
        };
        // Answers one connection after another, each closed after its answer.
        let url = super::super::tests::server(schedule, tx, Some(config));
        let client = client(&url, "kernel", Some(&ca_file), "http2 = \"auto\"\n");
        let (rt, prompt) = (runtime(), hi());
        let outs = rt.block_on(futures_util::future::join_all(
            (0..5).map(|_| client.call(&prompt, None, None)),
        ));
        for out in &outs {
            assert!(out.error.is_none(), "{:?}", out.error);
            assert_eq!(out.answer, "Hello there");
            assert_eq!(out.http_version, Some("HTTP/1.1"));
            assert_eq!(out.clock, ClockSource::Kernel);
            assert!(out.timings.ttft_sec.unwrap() >= 0.02);
            let set_up = out
                .connect
                .expect("the socket clock says")
                .expect("one each");
            assert!(set_up.tls.is_some(), "{set_up:?}");
        }
        // The server says once per connection it has read.
        assert_eq!(got.try_iter().count(), 5, "the probe carried a call");
    }

    /// Hostile HTTP/2 servers end as records that say what went wrong: one that answers the
    /// HTTP/2 preface in HTTP/1.1, one that floods the response's headers, one that resets
    /// the stream after the first token, and one that never stops sending.
    #[test]
    fn hostile_http2_servers_end_as_records() {
        use crate::error_kind::ErrorKind;
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut preface = [0u8; 256];
                let _ = conn.read(&mut preface);
                let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            }
        });
        let garbled = client(&url, "kernel", None, "http2 = \"on\"\nmax_attempts = 1\n");
        let out = one_call(&garbled);
        let error = out.error.expect("no answer is a failure");
        assert!(
            matches!(error.kind, ErrorKind::Connect | ErrorKind::Request),
            "{error:?}"
        );
        assert!(error.message.contains("HTTP/2"), "{}", error.message);

        // A server that floods the response's headers (100 KB of them).
        let url = h2_server(|mut respond| async move {
            let head = http::Response::builder()
                .header("x-flood", "x".repeat(100 * 1024))
                .body(())
                .unwrap();
            let _ = respond.send_response(head, true);
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        let flooded = client(&url, "kernel", None, "http2 = \"on\"\nmax_attempts = 1\n");
        let out = one_call(&flooded);
        let error = out.error.expect("headers past the limit are a failure");
        assert_eq!(error.kind, ErrorKind::Request, "{error:?}");
        assert!(
            error.message.contains("64 KiB of headers"),
            "{}",
            error.message
        );

        // A server that sends the first token, then resets the stream.
        let url = h2_server(|mut respond| async move {
            let head = http::Response::builder()
                .header("content-type", "text/event-stream")
                .body(())
                .unwrap();
            let mut send = respond.send_response(head, false).unwrap();
            let first = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n";
            send.send_data(Bytes::from_static(first.as_bytes()), false)
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            send.send_reset(h2::Reason::INTERNAL_ERROR);
        });
        let reset = client(&url, "kernel", None, "http2 = \"on\"\nmax_attempts = 1\n");
        let out = one_call(&reset);
        let error = out.error.expect("a reset stream is a failure");
        assert_eq!(error.kind, ErrorKind::StreamBroken, "{error:?}");
        assert_eq!(out.answer, "Hello", "what came before the reset is kept");
        assert!(out.timings.ttft_sec.is_some());

        // A server that never stops sending: the call ends at max_answer_bytes, keeping what
        // came, and the stream is dropped (h2 resets it), not read for ever.
        let url = h2_server(|mut respond| async move {
            let head = http::Response::builder()
                .header("content-type", "text/event-stream")
                .body(())
                .unwrap();
            let mut send = respond.send_response(head, false).unwrap();
            let token = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"more \"}}]}\n\n";
            for _ in 0..1_000_000 {
                send.reserve_capacity(token.len());
                if std::future::poll_fn(|cx| send.poll_capacity(cx))
                    .await
                    .is_none()
                    || send
                        .send_data(Bytes::from_static(token.as_bytes()), false)
                        .is_err()
                {
                    return;
                }
            }
        });
        let endless = client(
            &url,
            "kernel",
            None,
            "http2 = \"on\"\nmax_attempts = 1\nmax_answer_bytes = 4096\n",
        );
        let out = one_call(&endless);
        let error = out.error.expect("an endless answer is a failure");
        assert_eq!(error.kind, ErrorKind::AnswerTooLarge, "{error:?}");
        assert!(
            out.answer.starts_with("more more") && out.answer.len() <= 4096,
            "{} bytes kept",
            out.answer.len()
        );
    }

    /// A server that takes four streams at once per connection, and ten calls at once: they
    /// go on three connections, all in flight together, instead of six waiting for a stream.
    /// The server answers once it has all ten, or after 5 s: on one connection the first four
    /// would wait those 5 s (their TTFT says so) and the rest would wait for them.
    #[test]
    fn calls_past_the_servers_stream_limit_open_more_connections() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        const CALLS: usize = 10;
        let (connections, in_flight) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (opened, seen) = (connections.clone(), in_flight.clone());
        let url = spawn_server(|listener| async move {
            let all_here = Arc::new(tokio::sync::Notify::new());
            while let Ok((tcp, _)) = listener.accept().await {
                opened.fetch_add(1, Ordering::SeqCst);
                let (seen, all_here) = (seen.clone(), all_here.clone());
                tokio::spawn(async move {
                    let mut conn = h2::server::Builder::new()
                        .max_concurrent_streams(4)
                        .handshake::<_, Bytes>(tcp)
                        .await
                        .unwrap();
                    while let Some(Ok((_, mut respond))) = conn.accept().await {
                        let (seen, all_here) = (seen.clone(), all_here.clone());
                        tokio::spawn(async move {
                            let waiting = all_here.notified();
                            if seen.fetch_add(1, Ordering::SeqCst) + 1 == CALLS {
                                all_here.notify_waiters();
                            } else {
                                let _ = tokio::time::timeout(Duration::from_secs(5), waiting).await;
                            }
                            answer_whole(&mut respond);
                        });
                    }
                });
            }
        });
        let client = client(&url, "kernel", None, "http2 = \"on\"\nmax_attempts = 1\n");
        let (rt, prompt) = (runtime(), hi());
        let outs = rt.block_on(futures_util::future::join_all(
            (0..CALLS).map(|_| client.call(&prompt, None, None)),
        ));
        for out in &outs {
            assert!(out.error.is_none(), "{:?}", out.error);
            assert_eq!(out.answer, "Hello there");
            assert_eq!(out.http_version, Some("HTTP/2.0"));
        }
        assert_eq!(
            connections.load(Ordering::SeqCst),
            3,
            "four streams a connection"
        );
        let openers = outs.iter().filter(|o| matches!(o.connect, Some(Some(_))));
        assert_eq!(openers.count(), 3, "each connection's opener timed it");
        let slowest = outs
            .iter()
            .filter_map(|o| o.timings.ttft_sec)
            .fold(0.0, f64::max);
        assert!(
            slowest < 4.0,
            "no call waited for the server to give up: {slowest}"
        );
    }

    /// A server that takes the connection and never says a word, not even its SETTINGS: five
    /// calls at once share one connection, all five requests go out (after a second without
    /// SETTINGS the server is taken as allowing 100 streams, once, not once a call), and each
    /// call ends at its first-token limit as a record, none waiting past it.
    #[test]
    fn a_server_that_never_sends_settings_ends_each_call_at_its_limit() {
        use crate::error_kind::ErrorKind;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::AsyncReadExt;
        let (connections, requests) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (opened, asked) = (connections.clone(), requests.clone());
        let url = spawn_server(|listener| async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                opened.fetch_add(1, Ordering::SeqCst);
                let asked = asked.clone();
                tokio::spawn(async move {
                    // Counts the HEADERS frames (type 1) after the 24-byte preface.
                    let (mut seen, mut at) = (Vec::new(), 24);
                    let mut chunk = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = tcp.read(&mut chunk).await {
                        seen.extend_from_slice(&chunk[..n]);
                        while let Some(head) = seen.get(at..at + 9) {
                            let len = usize::from(head[0]) << 16
                                | usize::from(head[1]) << 8
                                | usize::from(head[2]);
                            if head[3] == 1 {
                                asked.fetch_add(1, Ordering::SeqCst);
                            }
                            at += 9 + len;
                        }
                    }
                });
            }
        });
        let client = client(
            &url,
            "kernel",
            None,
            "http2 = \"on\"\nmax_attempts = 1\nfirst_token_timeout_sec = 1.5\n",
        );
        let (rt, prompt) = (runtime(), hi());
        let started = Instant::now();
        let outs = rt.block_on(futures_util::future::join_all(
            (0..5).map(|_| client.call(&prompt, None, None)),
        ));
        let took = started.elapsed();
        for out in &outs {
            let error = out.error.as_ref().expect("no answer is a failure");
            assert_eq!(error.kind, ErrorKind::FirstTokenTimeout, "{error:?}");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1, "one connection");
        assert_eq!(
            requests.load(Ordering::SeqCst),
            5,
            "every call's request went out"
        );
        assert!(
            took < Duration::from_secs(3),
            "calls waited past their limit: {took:?}"
        );
    }

    /// A server that closes each connection after one answer: the next call finds the shared
    /// connection gone and opens another, rather than failing.
    #[test]
    fn a_closed_connection_is_replaced() {
        let url = spawn_server(|listener| async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let mut conn = h2::server::handshake(tcp).await.unwrap();
                let (_, mut respond) = conn.accept().await.unwrap().unwrap();
                answer_whole(&mut respond);
                conn.graceful_shutdown();
                while conn.accept().await.is_some() {}
            }
        });
        let client = client(&url, "kernel", None, "http2 = \"on\"\nmax_attempts = 1\n");
        let (rt, prompt) = (runtime(), hi());
        for _ in 0..5 {
            let out = rt.block_on(client.call(&prompt, None, None));
            assert!(out.error.is_none(), "{:?}", out.error);
            assert_eq!(out.answer, "Hello there");
            assert!(matches!(out.connect, Some(Some(_))), "a new connection");
        }
    }
}
