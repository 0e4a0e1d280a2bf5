//! The bytes layer: a [`Transport`] moves an [`HttpRequest`] to a target and hands back a
//! [`RawResponse`] whose body arrives as a stream. Implemented over HTTP (`http`) and by the
//! in-process simulator (`sim`).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use futures_util::future::BoxFuture;
use reqwest::header::HeaderMap;

/// A request ready to go: a method, a path under the target's base URL, headers (auth values
/// marked sensitive, so `Debug` hides them) and a JSON body (empty for a GET).
pub struct HttpRequest {
    pub method: ::http::Method,
    pub path: &'static str,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A body chunk could not be read (connection reset, cut, decode error).
#[derive(Debug, Clone)]
pub struct BodyError(pub String);

/// A response body as it arrives.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// Status, headers and a body stream.
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: BodyStream,
    /// Over HTTP: `Some(Some(c))` when the request opened a connection (`c`: its set-up and
    /// phases), `Some(None)` when it reused one; `None` where there are no connections (the
    /// in-process simulator).
    pub connect: Option<Option<Connected>>,
    /// The HTTP version the response came in (`HTTP/1.1`, `HTTP/2.0`).
    pub http_version: Option<&'static str>,
    /// The connection's far end and TLS version, where known.
    pub peer: Option<Peer>,
    /// The connection's stamps, when they are taken at the socket (plain HTTP): when the
    /// request's first byte went out and when the latest bytes read arrived.
    pub clock: Option<SocketClock>,
}

/// A new connection's set-up: the whole of it, and the phases that were timed apart (the name
/// lookup where a host name was resolved; the TCP and TLS handshakes where llmpulse opened the
/// socket itself, the transports of the kernel and socket clocks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Connected {
    pub total: Duration,
    pub dns: Option<Duration>,
    pub tcp: Option<Duration>,
    pub tls: Option<Duration>,
}

/// What a response's connection is, whether it was opened for this call or reused: the address
/// it reached and, over https on the stamped connections, the TLS version agreed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peer {
    pub remote_addr: Option<std::net::SocketAddr>,
    pub tls_version: Option<&'static str>,
}

/// The name of an HTTP version as records write it.
pub fn version_name(v: ::http::Version) -> Option<&'static str> {
    Some(match v {
        ::http::Version::HTTP_09 => "HTTP/0.9",
        ::http::Version::HTTP_10 => "HTTP/1.0",
        ::http::Version::HTTP_11 => "HTTP/1.1",
        ::http::Version::HTTP_2 => "HTTP/2.0",
        ::http::Version::HTTP_3 => "HTTP/3.0",
        _ => return None,
    })
}

/// Why a request got no response at all.
#[derive(Debug, Clone)]
pub enum TransportError {
    Connect(String),
    /// The TLS handshake failed: a certificate refused (unknown issuer, wrong host name,
    /// expired) or a broken handshake.
    Tls(String),
    ConnectTimeout,
    Timeout,
    Request(String),
}

/// Moves a request to a target and hands back the response as it arrives.
pub trait Transport: Send + Sync {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<RawResponse, TransportError>>;

    /// Where this transport's times are taken, for a call that got no response to say (one that
    /// did says what its connection's stamps were).
    fn clock(&self) -> ClockSource {
        ClockSource::Client
    }
}

/// Where a call's timestamps were taken (the record's `clock_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockSource {
    /// A packet capture's receive time of the TCP segment that brought the bytes, each
    /// segment its own however late it is read (`clock = "packet"`; Linux, root or
    /// `CAP_NET_RAW`); sent = the request's first byte written to the socket.
    Packet,
    /// The kernel's receive timestamp of the packet that brought the bytes; sent = the
    /// request's first byte written to the socket.
    Kernel,
    /// Taken at the socket read and write, in user space.
    Socket,
    /// Taken where the reading task first sees the bytes (a proxy, `clock = "client"`,
    /// and the in-process simulator).
    Client,
}

impl ClockSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockSource::Packet => "packet",
            ClockSource::Kernel => "kernel",
            ClockSource::Socket => "socket",
            ClockSource::Client => "client",
        }
    }
}

/// Instants as nanoseconds since a process-wide origin, so they fit in an atomic (0 = none).
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(|| Instant::now() - Duration::from_secs(1))
}

pub(super) fn to_nanos(at: Instant) -> u64 {
    at.saturating_duration_since(origin()).as_nanos() as u64
}

fn from_nanos(n: u64) -> Option<Instant> {
    (n != 0).then(|| origin() + Duration::from_nanos(n))
}

/// When some bytes arrived (or went out), as nanoseconds since the process-wide origin, and
/// which clock stamped them (`Packet`, `Kernel`, or `Socket` for a stamp taken at the read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) nanos: u64,
    pub(crate) source: ClockSource,
}

/// The stamps of one connection, shared by the connection (which writes them) and each response
/// read from it (which reads them).
#[derive(Debug, Clone, Default)]
pub struct SocketClock {
    pub(super) stamps: Arc<Stamps>,
}

#[derive(Debug, Default)]
pub(super) struct Stamps {
    pub(super) written: AtomicU64,
    pub(super) arrived: AtomicU64,
    /// Some read carried its segment's time from the packet capture.
    pub(super) packet: AtomicBool,
    /// Some read carried the kernel's stamp (and no capture's).
    pub(super) kernel: AtomicBool,
    /// Some read carried none and was stamped when it happened.
    pub(super) unstamped: AtomicBool,
}

impl SocketClock {
    /// When the current request's first byte was written to the socket.
    pub fn written(&self) -> Option<Instant> {
        from_nanos(self.stamps.written.load(Ordering::Acquire))
    }

    /// When the latest bytes read from the connection arrived.
    pub fn arrived(&self) -> Option<Instant> {
        from_nanos(self.stamps.arrived.load(Ordering::Acquire))
    }

    /// Bytes arrived at `at`: the latest arrival, and a read stamped by `at.source`.
    pub(crate) fn stamp(&self, at: Stamp) {
        let stamps = &self.stamps;
        let flag = match at.source {
            ClockSource::Packet => &stamps.packet,
            ClockSource::Kernel => &stamps.kernel,
            ClockSource::Socket | ClockSource::Client => &stamps.unstamped,
        };
        flag.store(true, Ordering::Relaxed);
        stamps.arrived.store(at.nanos, Ordering::Release);
    }

    /// A request on the connection began: its first byte went out at `nanos`, and the source
    /// its record names comes from the reads of its own response, not of the connection's
    /// earlier ones.
    pub(crate) fn begin_request(&self, nanos: u64) {
        let stamps = &self.stamps;
        for flag in [&stamps.packet, &stamps.kernel, &stamps.unstamped] {
            flag.store(false, Ordering::Relaxed);
        }
        stamps.written.store(nanos, Ordering::Release);
    }

    /// The request's first byte went out at `at`.
    pub(crate) fn set_written(&self, at: Stamp) {
        self.stamps.written.store(at.nanos, Ordering::Release);
    }

    /// `Packet` when the capture timed every read so far, `Kernel` when the kernel stamped
    /// every read the capture did not, `Socket` when any was stamped at the read itself.
    pub fn source(&self) -> ClockSource {
        let stamps = &self.stamps;
        if stamps.unstamped.load(Ordering::Relaxed) {
            ClockSource::Socket
        } else if stamps.kernel.load(Ordering::Relaxed) {
            ClockSource::Kernel
        } else if stamps.packet.load(Ordering::Relaxed) {
            ClockSource::Packet
        } else {
            ClockSource::Socket
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(nanos: u64, source: ClockSource) -> Stamp {
        Stamp { nanos, source }
    }

    /// Calls one after another on a kept-alive connection each name the clock of their own
    /// response's reads: one read without the kernel's stamp marks its call `socket`, not every
    /// call the connection carries after it.
    #[test]
    fn each_request_names_the_clock_of_its_own_reads() {
        let clock = SocketClock::default();
        clock.begin_request(1);
        clock.stamp(at(2, ClockSource::Kernel));
        clock.stamp(at(3, ClockSource::Socket));
        assert_eq!(clock.source(), ClockSource::Socket);
        clock.begin_request(4);
        clock.stamp(at(5, ClockSource::Kernel));
        assert_eq!(clock.source(), ClockSource::Kernel);
        assert_eq!(clock.stamps.written.load(Ordering::Acquire), 4);
        clock.begin_request(6);
        clock.stamp(at(7, ClockSource::Packet));
        assert_eq!(clock.source(), ClockSource::Packet);
    }
}
