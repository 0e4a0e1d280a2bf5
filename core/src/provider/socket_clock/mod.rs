//! Timestamps taken at the socket, for targets over http and https: a hyper connector
//! whose connections stamp the instant each request's first byte is written and the instant the
//! latest bytes read arrived. On Linux the arrival is the kernel's own receive timestamp
//! (`SO_TIMESTAMPNS`), so it no longer depends on how soon a busy worker thread polls the
//! connection; elsewhere it is taken at the read itself. Either way it is taken before anything
//! parses the bytes, and the response carries its connection's [`SocketClock`] so the exchange
//! reads its stamps from there.
//!
//! Over https, TLS (rustls) runs over the stamped socket: each read of the socket is stamped
//! before rustls sees it, and rustls hands up a record's text only once the read that completed
//! the record is in, so a decrypted chunk carries the receive time of the packet that completed
//! its TLS record (or of a later one read with it). Only the HTTP layer's writes stamp "sent":
//! not the handshake, TLS alerts, or the close_notify a closing connection sends after the
//! response has begun.
//!
//! HTTP/1 sends one request at a time per connection, so "the first write since the last
//! response bytes read" is the start of the current request, and "the latest read" holds the
//! bytes just handed up. HTTP/2 (`h2`) multiplexes calls on one connection, so each stream
//! reads its own stamps from the frames that passed (`frames`).

mod connect;
mod frames;
mod h2;
mod stream;

pub use connect::Connector;
pub use stream::{Conn, StampedStream};

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http_body_util::{BodyDataStream, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use llmpulse_sim::rx_stamp;

use super::http::chain;
use super::packet_clock::Capture;
use super::transport::{
    BodyError, ClockSource, HttpRequest, Peer, RawResponse, SocketClock, Transport, TransportError,
};

/// Sends requests to `{base_url}{path}` over stamped connections: HTTP/1.1 from a pool per
/// target, or HTTP/2 streams on one connection.
pub struct SocketTransport {
    client: Client<Connector, Full<Bytes>>,
    /// With `http2 = "on"`, or `"auto"` over https.
    h2: Option<h2::H2>,
    base_url: String,
    /// The clock its reads are stamped by, as far as this process can have it.
    clock: ClockSource,
}

impl SocketTransport {
    /// `clock`: `packet` (a packet capture, where the process may open one; the kernel's
    /// stamps otherwise, with a warning), `kernel` (the kernel's receive timestamps, Linux) or
    /// `socket` (stamped at the read). `tls`: the client configuration for an https `base_url`.
    /// `http2`: whether calls go as HTTP/2 streams (`auto`: where an https server offers it).
    pub fn new(
        base_url: String,
        connect_timeout: Duration,
        clock: ClockSource,
        tls: Option<Arc<rustls::ClientConfig>>,
        resolver: super::dns::Resolver,
        http2: crate::config::Http2,
    ) -> Self {
        use crate::config::Http2;
        let capture = (clock == ClockSource::Packet)
            .then(|| {
                Capture::shared()
                    .map_err(|e| {
                        tracing::warn!(
                            "clock = \"packet\" for {base_url}: {e}; the kernel clock stamps its \
                             reads instead"
                        );
                    })
                    .ok()
            })
            .flatten();
        // The kernel's stamps also cover the packet clock's reads of segments it did not see.
        let kernel = clock != ClockSource::Socket && rx_stamp::available();
        let clock = match (&capture, kernel) {
            (Some(_), _) => ClockSource::Packet,
            (None, true) => ClockSource::Kernel,
            (None, false) => ClockSource::Socket,
        };
        let connector = Connector {
            connect_timeout,
            kernel,
            capture,
            tls: tls.clone().map(tokio_rustls::TlsConnector::from),
            resolver,
            parked: Default::default(),
        };
        let https = base_url.starts_with("https://");
        let alpn: &[&[u8]] = match http2 {
            Http2::Off => &[],
            Http2::Auto if !https => &[],
            Http2::Auto => &[b"h2", b"http/1.1"],
            Http2::On => &[b"h2"],
        };
        let h2 = (!alpn.is_empty())
            .then(|| base_url.parse::<http::Uri>().ok())
            .flatten()
            .map(|base| {
                let tls = tls.map(|config| {
                    let mut config = (*config).clone();
                    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
                    tokio_rustls::TlsConnector::from(Arc::new(config))
                });
                let connector = Connector {
                    tls,
                    ..connector.clone()
                };
                h2::H2::new(connector, base, http2 == Http2::On)
            });
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .pool_timer(TokioTimer::new())
            .build(connector);
        SocketTransport {
            client,
            h2,
            base_url,
            clock,
        }
    }
}

impl Transport for SocketTransport {
    fn clock(&self) -> ClockSource {
        self.clock
    }

    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<RawResponse, TransportError>> {
        Box::pin(async move {
            let uri: http::Uri = format!("{}{}", self.base_url, req.path)
                .parse()
                .map_err(|e| TransportError::Request(format!("bad URL: {e}")))?;
            let req = match &self.h2 {
                Some(h2) if !h2.declined() => {
                    let sending = super::http::timing_connect(h2.send(uri.clone(), req));
                    match sending.await {
                        (Ok(Ok(mut resp)), connect) => {
                            resp.connect = Some(connect);
                            return Ok(resp);
                        }
                        (Err(e), _) => return Err(e),
                        // The server speaks HTTP/1.1 only: so does the target from now on.
                        (Ok(Err(req)), _) => req,
                    }
                }
                _ => req,
            };
            let mut request = http::Request::builder()
                .method(req.method)
                .uri(uri)
                .body(Full::new(Bytes::from(req.body)))
                .map_err(|e| TransportError::Request(e.to_string()))?;
            let headers = request.headers_mut();
            headers.extend(req.headers);
            headers
                .entry(http::header::USER_AGENT)
                .or_insert(http::HeaderValue::from_static(super::http::USER_AGENT));
            let (resp, connect) = super::http::timing_connect(self.client.request(request)).await;
            let resp = resp.map_err(|e| {
                let message = chain(&e);
                if e.is_connect() && timed_out(&e) {
                    TransportError::ConnectTimeout
                } else if super::tls::is_tls_failure(&e) {
                    TransportError::Tls(message)
                } else if e.is_connect()
                    || message.contains("connection closed before message completed")
                {
                    TransportError::Connect(message)
                } else {
                    TransportError::Request(message)
                }
            })?;
            let clock = resp.extensions().get::<SocketClock>().cloned();
            let peer = resp.extensions().get::<Peer>().copied();
            let http_version = super::transport::version_name(resp.version());
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body =
                BodyDataStream::new(resp.into_body()).map(|r| r.map_err(|e| BodyError(chain(&e))));
            Ok(RawResponse {
                status,
                headers,
                body: Box::pin(body),
                connect: Some(connect),
                http_version,
                peer,
                clock,
            })
        })
    }
}

fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::config::Config;
    use crate::provider::{Client, ClockSource};
    use crate::suite::{Message, Prompt};

    /// When a test server sends its answer, from when it has read the request: the headers
    /// and the first token after `first`, the second token and the end after `second` (at once
    /// with the first when `None`).
    #[derive(Clone, Copy)]
    pub(super) struct Schedule {
        pub(super) first: Duration,
        pub(super) second: Option<Duration>,
    }

    /// Answers one streamed chat completion on `conn` on `schedule`. Says on `got` when it has
    /// read the request.
    fn answer(
        conn: &mut (impl Read + Write),
        schedule: Schedule,
        got: &std::sync::mpsc::Sender<()>,
    ) {
        let mut reader = BufReader::new(&mut *conn);
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        drop(reader);
        let read = std::time::Instant::now();
        let _ = got.send(());
        let chunk = |text: &str| {
            format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"
            )
        };
        let first = chunk("Hello");
        let rest = format!(
            "{}data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\ndata: [DONE]\n\n",
            chunk(" there")
        );
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            first.len() + rest.len()
        );
        let mut send_at = |after: Duration, text: &str| {
            std::thread::sleep(after.saturating_sub(read.elapsed()));
            let _ = conn.write_all(text.as_bytes());
            let _ = conn.flush();
        };
        match schedule.second {
            None => send_at(schedule.first, &format!("{head}{first}{rest}")),
            Some(second) => {
                send_at(schedule.first, &format!("{head}{first}"));
                send_at(second, &rest);
            }
        }
    }

    /// A server that answers each connection as [`answer`] does, over TLS when given a
    /// configuration. Returns its base URL.
    pub(super) fn server(
        schedule: Schedule,
        got: std::sync::mpsc::Sender<()>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                match &tls {
                    None => answer(&mut { conn }, schedule, &got),
                    Some(config) => {
                        let session = rustls::ServerConnection::new(config.clone()).unwrap();
                        answer(&mut rustls::StreamOwned::new(session, conn), schedule, &got);
                    }
                }
            }
        });
        format!("{scheme}://{addr}/v1")
    }

    /// A server configuration for 127.0.0.1, with a certificate from a CA of its own, and that
    /// CA's PEM written to a file (for the client's `ca_file`).
    pub(super) fn tls_config() -> (Arc<rustls::ServerConfig>, std::path::PathBuf) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .unwrap();
        let key_der = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key_der)
        .unwrap();
        let path = std::env::temp_dir().join(format!(
            "llmpulse-socket-clock-ca-{}-{:?}.pem",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, ca_pem).unwrap();
        (Arc::new(config), path)
    }

    /// A client of `base_url` on `clock`, trusting `ca_file`, with `more` lines of target.
    pub(super) fn client(
        base_url: &str,
        clock: &str,
        ca_file: Option<&std::path::Path>,
        more: &str,
    ) -> Client {
        let ca = ca_file.map_or(String::new(), |p| {
            format!("ca_file = \"{}\"\n", p.display())
        });
        let text = format!(
            "[[targets]]\nname = \"t\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"m\"\nclock = \"{clock}\"\n{ca}{more}"
        );
        let target = Config::parse(&text, "t.toml", ".".into(), &|_| None)
            .unwrap()
            .targets
            .remove(0);
        Client::new(target).unwrap()
    }

    /// With `tls`, a server configuration and the file of the CA the client is to trust.
    pub(super) fn tls_if(
        tls: bool,
    ) -> (
        Option<Arc<rustls::ServerConfig>>,
        Option<std::path::PathBuf>,
    ) {
        if !tls {
            return (None, None);
        }
        let (config, path) = tls_config();
        (Some(config), Some(path))
    }

    /// A runtime of one thread: the client whose only thread a test keeps busy.
    pub(super) fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// The prompt every call of these tests asks.
    pub(super) fn hi() -> Prompt {
        Prompt::messages(vec![Message {
            role: "user",
            content: "hi".into(),
        }])
    }

    /// One call whose client thread is busy for 500 ms from when the server has the request,
    /// while the first token arrives 150 ms after that (and the second at `second`, at once
    /// with it when `None`); over TLS with `tls`. Gives the TTFT and the second chunk's offset
    /// (s), and the clock the record would name.
    fn call_with_a_busy_client(
        clock: &str,
        tls: bool,
        second: Option<Duration>,
    ) -> (f64, f64, ClockSource) {
        let (tx, got) = std::sync::mpsc::channel();
        let (config, ca_file) = tls_if(tls);
        let schedule = Schedule {
            first: Duration::from_millis(150),
            second,
        };
        let url = server(schedule, tx, config);
        let client = client(&url, clock, ca_file.as_deref(), "");
        let (rt, prompt) = (runtime(), hi());
        let out = rt.block_on(async {
            let busy = async {
                // Until the server has the request (or is gone).
                while let Err(std::sync::mpsc::TryRecvError::Empty) = got.try_recv() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // The only worker thread does something else for half a second.
                std::thread::sleep(Duration::from_millis(500));
            };
            tokio::join!(client.call(&prompt, None, None), busy).0
        });
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.answer, "Hello there");
        let second_chunk = out
            .chunk_offsets
            .get(1)
            .map_or(f64::NAN, Duration::as_secs_f64);
        (out.timings.ttft_sec.unwrap(), second_chunk, out.clock)
    }

    fn ttft_with_a_busy_client(clock: &str, tls: bool) -> (f64, ClockSource) {
        let (ttft, _, source) = call_with_a_busy_client(clock, tls, None);
        (ttft, source)
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn kernel_stamps_do_not_wait_for_a_busy_client() {
        for tls in [false, true] {
            let (ttft, source) = ttft_with_a_busy_client("kernel", tls);
            assert_eq!(source, ClockSource::Kernel, "tls: {tls}");
            assert!(
                (0.14..0.4).contains(&ttft),
                "the token arrived at ~150 ms; measured {ttft} (tls: {tls})"
            );
        }
    }

    /// Two tokens 150 ms apart, both waiting for a busy reader: the kernel stamps a read with
    /// its latest packet, and Linux merges the two in the socket's queue, so the first token
    /// takes the second's time. The packet clock keeps each segment's own, over TLS too.
    /// Without CAP_NET_RAW (root has it), `packet` falls back to the kernel clock and says so.
    /// Whether this process may open a packet socket: CAP_NET_RAW (bit 13) among its
    /// effective capabilities (root has it).
    pub(super) fn may_capture() -> bool {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let effective = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap();
        effective & (1 << 13) != 0
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_packet_clock_gives_each_token_its_own_packets_time() {
        let second = Some(Duration::from_millis(300));
        let root = may_capture();
        for tls in [false, true] {
            let (ttft, chunk, source) = call_with_a_busy_client("packet", tls, second);
            if !root {
                assert_eq!(source, ClockSource::Kernel, "tls: {tls}");
                continue;
            }
            assert_eq!(source, ClockSource::Packet, "tls: {tls}");
            assert!(
                (0.14..0.25).contains(&ttft),
                "the first token arrived at ~150 ms; measured {ttft} (tls: {tls})"
            );
            assert!(
                (0.29..0.4).contains(&chunk),
                "the second token arrived at ~300 ms; measured {chunk} (tls: {tls})"
            );
            let (ttft, chunk, source) = call_with_a_busy_client("kernel", tls, second);
            assert_eq!(source, ClockSource::Kernel, "tls: {tls}");
            assert!(
                ttft > 0.29 && (0.29..0.4).contains(&chunk),
                "the kernel clock gives both tokens the second's time; {ttft}, {chunk} (tls: {tls})"
            );
        }
    }

    #[test]
    fn stamps_taken_in_user_space_wait_for_the_busy_thread() {
        for (clock, tls) in [
            ("socket", false),
            ("client", false),
            ("socket", true),
            ("client", true),
        ] {
            let (ttft, _) = ttft_with_a_busy_client(clock, tls);
            assert!(
                ttft > 0.5,
                "{clock} (tls: {tls}): a user-space stamp waits for the thread; {ttft}"
            );
        }
    }
}
