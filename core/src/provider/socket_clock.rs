//! Timestamps taken at the socket, for plain-HTTP targets: a hyper connector whose connections
//! stamp the instant each request's first byte is written and the instant the latest bytes read
//! arrived. On Linux the arrival is the kernel's own receive timestamp (`SO_TIMESTAMPNS`), so it
//! no longer depends on how soon a busy worker thread polls the connection; elsewhere it is taken
//! at the read itself. Either way it is taken before anything parses the bytes, and the response
//! carries its connection's [`SocketClock`] so the exchange reads its stamps from there.
//!
//! HTTP/1 sends one request at a time per connection, so "the first write since the last read"
//! is the start of the current request, and "the latest read" holds the bytes just handed up.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use http_body_util::{BodyDataStream, Full};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use llmpulse_sim::rx_stamp;
use tokio::net::TcpStream;

use super::http::{Phase, chain, record_connect, record_phase};
use super::transport::{
    BodyError, HttpRequest, RawResponse, SocketClock, Transport, TransportError, to_nanos,
};

/// A TCP connection that stamps its reads and the start of each request's writes.
pub struct StampedStream {
    io: TcpStream,
    clock: SocketClock,
    /// True from the first write of a request until the first read of its response.
    writing: bool,
}

impl StampedStream {
    fn new(io: TcpStream, kernel: bool) -> Self {
        if kernel {
            // Without it the reads carry no kernel stamp and the clock says `socket`; the
            // transport asked `rx_stamp::available()` first, so stamps flow from the first packet.
            let _ = rx_stamp::enable(io.as_raw_fd());
        }
        StampedStream {
            io,
            clock: SocketClock::default(),
            writing: false,
        }
    }
}

impl Read for StampedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // SAFETY: `recv` writes at most `dst.len()` bytes into `dst` and reports how many;
        // exactly those are marked filled (below).
        let dst = unsafe { buf.as_mut() };
        let (n, kernel_at) = ready!(rx_stamp::poll_recv(&this.io, cx, dst))?;
        let at = kernel_at.unwrap_or_else(Instant::now);
        let stamps = &this.clock.stamps;
        let flag = match kernel_at {
            Some(_) => &stamps.kernel,
            None => &stamps.unstamped,
        };
        flag.store(true, Ordering::Relaxed);
        stamps.arrived.store(to_nanos(at), Ordering::Release);
        this.writing = false;
        // SAFETY: `recv` initialised the first `n` bytes.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl Write for StampedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let now = Instant::now();
        let written = ready!(tokio::io::AsyncWrite::poll_write(
            Pin::new(&mut this.io),
            cx,
            buf
        ))?;
        this.first_write(now);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let now = Instant::now();
        let written = ready!(tokio::io::AsyncWrite::poll_write_vectored(
            Pin::new(&mut this.io),
            cx,
            bufs
        ))?;
        this.first_write(now);
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        tokio::io::AsyncWrite::is_write_vectored(&self.io)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().io), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut self.get_mut().io), cx)
    }
}

impl StampedStream {
    /// A write went out at `at` (taken just before the system call): the first of a request
    /// stamps the request's start.
    fn first_write(&mut self, at: Instant) {
        if !self.writing {
            self.writing = true;
            self.clock
                .stamps
                .written
                .store(to_nanos(at), Ordering::Release);
        }
    }
}

impl Connection for StampedStream {
    fn connected(&self) -> Connected {
        Connected::new().extra(self.clock.clone())
    }
}

/// Opens TCP connections (TCP_NODELAY, the target's connect timeout), timed for
/// `connect_sec`, with stamped reads and writes.
#[derive(Clone)]
pub struct Connector {
    connect_timeout: Duration,
    kernel: bool,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = StampedStream;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<StampedStream>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let (limit, kernel) = (self.connect_timeout, self.kernel);
        let started = Instant::now();
        let slot = super::http::current_slot();
        let connecting = async move {
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host in the URL"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(80);
            let mut last = None;
            let looking = Instant::now();
            let addrs = tokio::net::lookup_host((host.as_str(), port)).await?;
            // An IP address is no lookup.
            if host.parse::<std::net::IpAddr>().is_err() {
                record_phase(slot.as_deref(), Phase::Dns, looking.elapsed());
            }
            for addr in addrs {
                let dialing = Instant::now();
                match TcpStream::connect(addr).await {
                    Ok(io) => {
                        record_phase(slot.as_deref(), Phase::Tcp, dialing.elapsed());
                        io.set_nodelay(true)?;
                        return Ok(StampedStream::new(io, kernel));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address"))
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

/// Sends requests to `{base_url}{path}` over stamped connections, one pool per target.
pub struct SocketTransport {
    client: Client<Connector, Full<Bytes>>,
    base_url: String,
}

impl SocketTransport {
    /// `kernel`: ask the kernel for receive timestamps (Linux); otherwise stamp at the read.
    pub fn new(base_url: String, connect_timeout: Duration, kernel: bool) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .pool_timer(TokioTimer::new())
            .build(Connector {
                connect_timeout,
                kernel: kernel && rx_stamp::available(),
            });
        SocketTransport { client, base_url }
    }
}

impl Transport for SocketTransport {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<RawResponse, TransportError>> {
        Box::pin(async move {
            let uri: http::Uri = format!("{}{}", self.base_url, req.path)
                .parse()
                .map_err(|e| TransportError::Request(format!("bad URL: {e}")))?;
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
                } else if e.is_connect()
                    || message.contains("connection closed before message completed")
                {
                    TransportError::Connect(message)
                } else {
                    TransportError::Request(message)
                }
            })?;
            let clock = resp.extensions().get::<SocketClock>().cloned();
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
    use std::io::{BufRead, BufReader, Read as _, Write as _};
    use std::net::TcpListener;
    use std::time::Duration;

    use crate::config::Config;
    use crate::provider::{Client, ClockSource};
    use crate::suite::{Message, Prompt};

    /// A server that answers one streamed chat completion per connection: headers and the
    /// first token `first_after` after the request, the rest at once. It says on `got` when it
    /// has read a request.
    fn server(first_after: Duration, got: std::sync::mpsc::Sender<()>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
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
                let _ = got.send(());
                std::thread::sleep(first_after);
                let chunk = |text: &str| {
                    format!(
                        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"
                    )
                };
                let events = format!(
                    "{}{}data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\ndata: [DONE]\n\n",
                    chunk("Hello"),
                    chunk(" there")
                );
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{events}",
                    events.len()
                );
            }
        });
        format!("http://{addr}/v1")
    }

    fn client(base_url: &str, clock: &str) -> Client {
        let text = format!(
            "[[targets]]\nname = \"t\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"m\"\nclock = \"{clock}\"\n"
        );
        let target = Config::parse(&text, "t.toml", ".".into(), &|_| None)
            .unwrap()
            .targets
            .remove(0);
        Client::new(target).unwrap()
    }

    /// TTFT (s) of one call whose client thread is busy for 500 ms from when the server has
    /// the request, while the first token arrives 150 ms after that.
    fn ttft_with_a_busy_client(clock: &str) -> (f64, ClockSource) {
        let (tx, got) = std::sync::mpsc::channel();
        let url = server(Duration::from_millis(150), tx);
        let client = client(&url, clock);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let prompt = Prompt::messages(vec![Message {
            role: "user",
            content: "hi".into(),
        }]);
        let out = rt.block_on(async {
            let busy = async {
                while got.try_recv().is_err() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // The only worker thread does something else for half a second.
                std::thread::sleep(Duration::from_millis(500));
            };
            tokio::join!(client.call(&prompt, None, None), busy).0
        });
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.answer, "Hello there");
        (out.timings.ttft_sec.unwrap(), out.clock)
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn kernel_stamps_do_not_wait_for_a_busy_client() {
        let (ttft, source) = ttft_with_a_busy_client("kernel");
        assert_eq!(source, ClockSource::Kernel);
        assert!(
            (0.14..0.4).contains(&ttft),
            "the token arrived at ~150 ms; measured {ttft}"
        );
    }

    #[test]
    fn stamps_taken_in_user_space_wait_for_the_busy_thread() {
        for clock in ["socket", "client"] {
            let (ttft, _) = ttft_with_a_busy_client(clock);
            assert!(
                ttft > 0.5,
                "{clock}: a user-space stamp waits for the thread; {ttft}"
            );
        }
    }
}
