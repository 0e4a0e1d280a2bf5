//! Opening a stamped connection: the name looked up, the TCP handshake and, for https, the TLS
//! one, each phase timed for the record; the packet clock starts tracking the connection here.
//! A connection `auto` opened to ask for HTTP/2 and got HTTP/1.1 on is kept ([`Parked`]) for
//! the next HTTP/1.1 connection the target needs.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::stream::{Conn, StampedStream, Stream};
use crate::provider::http::{Phase, record_connect, record_phase};
use crate::provider::packet_clock::Capture;
use crate::provider::tls::HandshakeFailed;
use crate::provider::transport::{Connected, Peer};

/// How long a parked connection waits to be used: the calls that turned to HTTP/1.1 ask for
/// connections at once, and a server may close one left idle.
const PARKED_FOR: Duration = Duration::from_secs(2);

/// A connection opened to ask for HTTP/2 (`auto`) that the server answered in HTTP/1.1, with
/// its set-up's times: the next HTTP/1.1 connection of the target, rather than a second
/// handshake.
#[derive(Default)]
pub(super) struct Parked(std::sync::Mutex<Option<Kept>>);

struct Kept {
    io: TokioIo<Conn>,
    set_up: Option<Connected>,
    at: Instant,
}

impl Parked {
    pub(super) fn put(&self, io: TokioIo<Conn>, set_up: Option<Connected>) {
        let at = Instant::now();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Kept { io, set_up, at });
    }

    fn take(&self) -> Option<(TokioIo<Conn>, Option<Connected>)> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        (kept.at.elapsed() < PARKED_FOR).then_some((kept.io, kept.set_up))
    }
}

/// Opens TCP connections (TCP_NODELAY, the target's connect timeout), and TLS over them for
/// https, each phase timed for `connect_sec`, with stamped reads and writes.
#[derive(Clone)]
pub struct Connector {
    pub(super) connect_timeout: Duration,
    pub(super) kernel: bool,
    /// The packet clock's capture, when the target asked for it and the process may open one.
    pub(super) capture: Option<Arc<Capture>>,
    pub(super) tls: Option<tokio_rustls::TlsConnector>,
    pub(super) resolver: crate::provider::dns::Resolver,
    /// Shared by the target's HTTP/1.1 and HTTP/2 connectors.
    pub(super) parked: Arc<Parked>,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Conn>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<TokioIo<Conn>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let slot = crate::provider::http::current_slot();
        if let Some((io, set_up)) = self.parked.take() {
            // The call that takes it is the one whose request opens the connection.
            if let (Some(slot), Some(set_up)) = (&slot, &set_up) {
                slot.record(set_up);
            }
            return Box::pin(std::future::ready(Ok(io)));
        }
        let (limit, kernel) = (self.connect_timeout, self.kernel);
        let capture = self.capture.clone();
        let tls = (uri.scheme() == Some(&http::uri::Scheme::HTTPS)).then(|| self.tls.clone());
        let started = Instant::now();
        let resolver = self.resolver.clone();
        let connecting = async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host in the URL"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri
                .port_u16()
                .unwrap_or(if tls.is_some() { 443 } else { 80 });
            let looking = Instant::now();
            let addrs = resolver.lookup(&host, port).await?;
            // An IP address is no lookup.
            if host.parse::<std::net::IpAddr>().is_err() {
                record_phase(slot.as_deref(), Phase::Dns, looking.elapsed());
            }
            let dialing = Instant::now();
            let (io, addr) = dial(&host, &addrs, limit).await?;
            record_phase(slot.as_deref(), Phase::Tcp, dialing.elapsed());
            io.set_nodelay(true)?;
            let packets = match &capture {
                Some(capture) => {
                    let local = io.local_addr()?;
                    Some(capture.track((local.ip(), local.port()), (addr.ip(), addr.port())))
                }
                None => None,
            };
            let stamped = StampedStream::new(io, kernel, packets);
            let mut peer = Peer {
                remote_addr: Some(addr),
                tls_version: None,
            };
            let stream = match tls {
                None => Stream::Plain(stamped),
                Some(tls) => {
                    let tls = tls.ok_or_else(|| {
                        io::Error::other(HandshakeFailed(
                            "no TLS configuration for an https target".into(),
                        ))
                    })?;
                    let shaking = Instant::now();
                    let stream = handshake(&tls, &host, stamped).await?;
                    record_phase(slot.as_deref(), Phase::Tls, shaking.elapsed());
                    peer.tls_version = stream
                        .get_ref()
                        .1
                        .protocol_version()
                        .and_then(crate::provider::tls::version_name);
                    Stream::Tls(Box::new(stream))
                }
            };
            Ok(TokioIo::new(Conn {
                stream,
                peer,
                frames: None,
            }))
        };
        Box::pin(record_connect(started, async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no connection within {limit:?}"),
                )),
            }
        }))
    }
}

/// Connects to the first of `addrs` that answers, in the resolver's order. Each address gets an
/// equal share of the connect timeout (at least a second), so an address that never answers (an
/// AAAA record where there is no IPv6 route) does not use up the time the next one needs. The
/// whole dial counts as the TCP handshake.
async fn dial(
    host: &str,
    addrs: &[SocketAddr],
    limit: Duration,
) -> io::Result<(TcpStream, SocketAddr)> {
    let share = (limit / addrs.len().max(1) as u32).max(Duration::from_secs(1));
    let mut last = None;
    for &addr in addrs {
        match tokio::time::timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(io)) => return Ok((io, addr)),
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{addr} did not answer within {share:?}"),
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
    }))
}

/// TLS over a stamped connection to `host` (its name checked against the certificate, and sent
/// as SNI; an IP address is checked as one). A refused certificate or a broken handshake comes
/// back as a [`HandshakeFailed`] naming the host.
async fn handshake(
    tls: &tokio_rustls::TlsConnector,
    host: &str,
    stamped: StampedStream,
) -> io::Result<tokio_rustls::client::TlsStream<StampedStream>> {
    let name = rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad host name '{host}': {e}"),
        )
    })?;
    tls.connect(name, stamped).await.map_err(|e| {
        let why = match e.get_ref() {
            Some(inner) => inner.to_string(),
            None => e.to_string(),
        };
        io::Error::other(HandshakeFailed(format!("TLS handshake with {host}: {why}")))
    })
}
