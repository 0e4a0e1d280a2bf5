//! The HTTP transport: reqwest, one shared connection pool per run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use super::transport::{
    BodyError, Connected, HttpRequest, Peer, RawResponse, Transport, TransportError, version_name,
};

/// Sends requests to `{base_url}{path}`.
pub struct HttpTransport {
    http: reqwest::Client,
    base_url: String,
}

impl HttpTransport {
    pub fn new(http: reqwest::Client, base_url: String) -> Self {
        HttpTransport { http, base_url }
    }
}

/// The `user-agent` of every request llmpulse sends.
pub(crate) const USER_AGENT: &str = concat!("llmpulse/", env!("CARGO_PKG_VERSION"));

/// The HTTP client of one target: no overall timeout (each call sets its own deadlines), the
/// target's connect timeout, TCP_NODELAY, llmpulse's user agent, and the roots of its
/// `ca_file` trusted besides the system's, its names resolved by `resolver`.
pub fn build_client(
    connect_timeout: std::time::Duration,
    http2: crate::config::Http2,
    extra_roots: &[rustls_pki_types::CertificateDer<'static>],
    resolver: super::dns::Resolver,
) -> Result<reqwest::Client, reqwest::Error> {
    use crate::config::Http2;
    install_crypto();
    let builder = match http2 {
        Http2::Off => reqwest::Client::builder().http1_only(),
        // ALPN offers h2 and http/1.1 over https; plain http stays HTTP/1.1.
        Http2::Auto => reqwest::Client::builder(),
        Http2::On => reqwest::Client::builder().http2_prior_knowledge(),
    };
    let builder = extra_roots.iter().try_fold(builder, |b, der| {
        reqwest::Certificate::from_der(der).map(|c| b.add_root_certificate(c))
    })?;
    builder
        .user_agent(USER_AGENT)
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .connector_layer(TimeConnects)
        .dns_resolver(Arc::new(TimedResolver(resolver)))
        .build()
}

/// The target's resolver ([`super::dns`]), timed: the lookup's time goes to the request that
/// opened the connection (`dns_sec`).
struct TimedResolver(super::dns::Resolver);

impl reqwest::dns::Resolve for TimedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let slot = current_slot();
        let host = name.as_str().to_string();
        let resolver = self.0.clone();
        Box::pin(async move {
            let started = Instant::now();
            let addrs = resolver.lookup(&host, 0).await?;
            record_phase(slot.as_deref(), Phase::Dns, started.elapsed());
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

tokio::task_local! {
    /// The connection set-up of the request being sent on this task.
    static CONNECT: Arc<ConnectSlot>;
}

/// A new connection's times as they are taken (nanoseconds + 1; 0 while not taken).
#[derive(Default)]
pub(crate) struct ConnectSlot {
    total: AtomicU64,
    dns: AtomicU64,
    tcp: AtomicU64,
    tls: AtomicU64,
}

/// A phase of a connection's set-up, timed apart.
#[derive(Clone, Copy)]
pub(crate) enum Phase {
    Dns,
    Tcp,
    Tls,
}

/// The slot of the request being sent on this task, if any: taken where a connection starts
/// (a connector's `call`), since the connection may be driven from elsewhere.
pub(crate) fn current_slot() -> Option<Arc<ConnectSlot>> {
    CONNECT.try_with(Arc::clone).ok()
}

/// Notes how long a phase of a new connection took.
pub(crate) fn record_phase(slot: Option<&ConnectSlot>, phase: Phase, took: Duration) {
    if let Some(slot) = slot {
        let cell = match phase {
            Phase::Dns => &slot.dns,
            Phase::Tcp => &slot.tcp,
            Phase::Tls => &slot.tls,
        };
        cell.store(nanos(took), Ordering::Relaxed);
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX - 1)) as u64 + 1
}

fn read(cell: &AtomicU64) -> Option<Duration> {
    match cell.load(Ordering::Relaxed) {
        0 => None,
        n => Some(Duration::from_nanos(n - 1)),
    }
}

/// A connector layer that times each new connection and hands the time to the request that
/// asked for it (hyper opens a connection from within the request's own task).
#[derive(Clone)]
struct TimeConnects;

impl<S> tower_layer::Layer<S> for TimeConnects {
    type Service = Timed<S>;
    fn layer(&self, inner: S) -> Timed<S> {
        Timed(inner)
    }
}

#[derive(Clone)]
struct Timed<S>(S);

impl<S, R> tower_service::Service<R> for Timed<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        Box::pin(record_connect(Instant::now(), self.0.call(req)))
    }
}

/// Runs `connecting`, a connection being opened since `started`, and hands its set-up time to
/// the request being sent on this task ([`timing_connect`]), if any.
pub(crate) fn record_connect<F: std::future::Future>(
    started: Instant,
    connecting: F,
) -> impl std::future::Future<Output = F::Output> {
    let slot = current_slot();
    async move {
        let conn = connecting.await;
        if let Some(slot) = slot {
            slot.total
                .store(nanos(started.elapsed()), Ordering::Relaxed);
        }
        conn
    }
}

/// Sends a request (`sending`) and says how the connection it opened was set up: `None` when
/// it reused one.
pub(crate) async fn timing_connect<F: std::future::Future>(
    sending: F,
) -> (F::Output, Option<Connected>) {
    let slot = Arc::new(ConnectSlot::default());
    let out = CONNECT.scope(slot.clone(), sending).await;
    (out, slot.connected())
}

impl ConnectSlot {
    /// The set-up of the connection opened so far, if one was.
    pub(crate) fn connected(&self) -> Option<Connected> {
        read(&self.total).map(|total| Connected {
            total,
            dns: read(&self.dns),
            tcp: read(&self.tcp),
            tls: read(&self.tls),
        })
    }

    /// Takes on `set_up`: a connection opened by another call and handed to this one.
    pub(crate) fn record(&self, set_up: &Connected) {
        let phases = [
            (&self.dns, set_up.dns),
            (&self.tcp, set_up.tcp),
            (&self.tls, set_up.tls),
        ];
        for (cell, took) in phases {
            if let Some(took) = took {
                cell.store(nanos(took), Ordering::Relaxed);
            }
        }
        self.total.store(nanos(set_up.total), Ordering::Relaxed);
    }
}

/// Makes ring the process's TLS crypto provider, once, before any HTTPS client is built. A
/// build without the cloud stores links ring alone (quick to compile, no CMake); with them the
/// cloud SDKs bring aws-lc too, and rustls must be told which provider is the default.
pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when another provider was installed first: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Transport for HttpTransport {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<RawResponse, TransportError>> {
        Box::pin(async move {
            let url = format!("{}{}", self.base_url, req.path);
            let mut builder = self.http.request(req.method, url).headers(req.headers);
            if !req.body.is_empty() {
                builder = builder.body(req.body);
            }
            let (resp, connect) = timing_connect(builder.send()).await;
            let resp = resp.map_err(|e| {
                // Without the URL: a URL can carry a key in its query string.
                let e = e.without_url();
                if e.is_timeout() && e.is_connect() {
                    TransportError::ConnectTimeout
                } else if e.is_timeout() {
                    TransportError::Timeout
                } else if super::tls::is_tls_failure(&e) {
                    TransportError::Tls(chain(&e))
                } else if e.is_connect() || closed_before_answer(&e) {
                    TransportError::Connect(chain(&e))
                } else {
                    TransportError::Request(chain(&e))
                }
            })?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let http_version = version_name(resp.version());
            let peer = Some(Peer {
                remote_addr: resp.remote_addr(),
                tls_version: None,
            });
            let body = resp
                .bytes_stream()
                .map(|r| r.map_err(|e| BodyError(chain(&e.without_url()))));
            Ok(RawResponse {
                status,
                headers,
                body: Box::pin(body),
                connect: Some(connect),
                http_version,
                peer,
                clock: None,
            })
        })
    }
}

/// The server closed the connection before any byte of an answer: most often a kept-alive
/// connection the server closed just as the request went out (llama.cpp's server closes one
/// after a few requests). Nothing was answered, so it counts as a connection failure, which
/// the default retry policy retries.
fn closed_before_answer(e: &reqwest::Error) -> bool {
    chain(e).contains("connection closed before message completed")
}

/// The error and its sources, joined: reqwest's own message alone hides the cause.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
