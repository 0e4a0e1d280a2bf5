//! The stamped connection: a TCP socket whose reads carry when their bytes arrived (the
//! kernel's stamp, or the packet capture's per segment) and whose first write of each request
//! stamps "sent"; plain, or with TLS over it, handing up one TLS record per read.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use hyper_util::client::legacy::connect::{Connected, Connection};
use llmpulse_sim::rx_stamp;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::frames::FrameLog;
use crate::provider::packet_clock::Tracked;
use crate::provider::transport::{ClockSource, Peer, SocketClock, Stamp, to_nanos};

/// A TCP connection that stamps its reads and the start of each request's writes.
pub struct StampedStream {
    io: TcpStream,
    clock: SocketClock,
    /// True from the first write of a request until the first response bytes are handed up.
    writing: bool,
    /// True while the HTTP layer is writing or flushing a request: only those writes stamp
    /// (not TLS's handshake, alerts or close_notify, nor a shutdown after the response).
    request: bool,
    /// With the packet clock: the capture's map of this connection's segments.
    packets: Option<Tracked>,
    /// The latest read's stamp.
    last: Stamp,
}

impl StampedStream {
    pub(super) fn new(io: TcpStream, kernel: bool, packets: Option<Tracked>) -> Self {
        if kernel {
            // Without it the reads carry no kernel stamp and the clock says `socket`; the
            // transport asked `rx_stamp::available()` first, so stamps flow from the first packet.
            let _ = rx_stamp::enable(io.as_raw_fd());
        }
        StampedStream {
            io,
            clock: SocketClock::default(),
            writing: false,
            request: false,
            packets,
            last: Stamp {
                nanos: 0,
                source: ClockSource::Socket,
            },
        }
    }

    /// A write went out at `at` (taken just before the system call): the first of a request
    /// stamps the request's start.
    fn first_write(&mut self, at: Instant) {
        if self.request && !self.writing {
            self.writing = true;
            self.clock.begin_request(to_nanos(at));
        }
    }
}

impl AsyncRead for StampedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Got {
            n,
            kernel_at,
            packet_at,
        } = match &mut this.packets {
            None => {
                let (n, kernel_at) = ready!(rx_stamp::poll_read_buf(&this.io, cx, buf))?;
                Got {
                    n,
                    kernel_at,
                    packet_at: None,
                }
            }
            Some(tracked) => ready!(poll_read_segment(&this.io, tracked, cx, buf))?,
        };
        // The end of the stream brings no packet to stamp (a server closing a kept-alive
        // connection after its answer): it changes neither the time nor the clock's source.
        if n > 0 {
            let (source, at) = match (packet_at, kernel_at) {
                (Some(at), _) => (ClockSource::Packet, at),
                (None, Some(at)) => (ClockSource::Kernel, at),
                (None, None) => (ClockSource::Socket, Instant::now()),
            };
            this.last = Stamp {
                nanos: to_nanos(at),
                source,
            };
            this.clock.stamp(this.last);
        }
        Poll::Ready(Ok(()))
    }
}

/// What one read of the socket brought: how many bytes, and when they arrived as the kernel
/// stamped them and (with the packet clock) as the capture saw them.
struct Got {
    n: usize,
    kernel_at: Option<Instant>,
    packet_at: Option<Instant>,
}

/// Reads no further than the end of the segment that brought the next unread byte (as far as
/// the capture has seen it), so the read carries that segment's own time: the packet clock's
/// read.
fn poll_read_segment(
    io: &TcpStream,
    tracked: &mut Tracked,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<Got>> {
    loop {
        ready!(io.poll_read_ready(cx))?;
        let room = buf.remaining();
        let want = tracked.limit().map_or(room, |segment| segment.min(room));
        // SAFETY: `recv` writes at most `want` bytes of the unfilled part and reports how many;
        // exactly those are marked initialised and filled.
        let dst = unsafe { &mut buf.unfilled_mut()[..want] };
        match io.try_io(tokio::io::Interest::READABLE, || {
            rx_stamp::recv(io.as_raw_fd(), dst)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
            Ok((n, kernel_at)) => {
                // SAFETY: `recv` initialised the first `n` bytes of the unfilled part.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                return Poll::Ready(Ok(Got {
                    n,
                    kernel_at,
                    packet_at: tracked.read(n),
                }));
            }
        }
    }
}

impl AsyncWrite for StampedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let now = Instant::now();
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
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
        let written = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        this.first_write(now);
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A stamped connection as hyper and h2 see it: plain, or TLS over the stamped socket.
pub struct Conn {
    pub(super) stream: Stream,
    pub(super) peer: Peer,
    /// Over HTTP/2: the frames passing, both ways, and each stream's stamps.
    pub(super) frames: Option<std::sync::Arc<FrameLog>>,
}

pub(super) enum Stream {
    Plain(StampedStream),
    Tls(Box<tokio_rustls::client::TlsStream<StampedStream>>),
}

impl Conn {
    fn stamped(&mut self) -> &mut StampedStream {
        match &mut self.stream {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_mut().0,
        }
    }

    fn stamped_ref(&self) -> &StampedStream {
        match &self.stream {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    pub(super) fn clock(&self) -> &SocketClock {
        &self.stamped_ref().clock
    }

    /// Whether the server chose HTTP/2 in the TLS handshake (ALPN).
    pub(super) fn negotiated_h2(&self) -> bool {
        match &self.stream {
            Stream::Plain(_) => false,
            Stream::Tls(s) => s.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => poll_read_record(Pin::new(s.as_mut()), cx, buf),
        })?;
        // Response bytes handed up (not TLS's own records): the next write starts a request.
        if buf.filled().len() > before {
            this.stamped().writing = false;
            if let Some(frames) = &this.frames {
                frames.read(&buf.filled()[before..], this.stamped_ref().last);
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Hands up the plaintext of one TLS record (or what is left of it), so the stamp read with
/// it is its own record's. tokio-rustls's `poll_read` goes on reading and decrypting whatever
/// else has come in until the caller's buffer is full, and the events of several records would
/// take the last one's time.
fn poll_read_record(
    mut tls: Pin<&mut tokio_rustls::client::TlsStream<StampedStream>>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    use tokio::io::AsyncBufRead;
    let record = ready!(tls.as_mut().poll_fill_buf(cx))?;
    let n = record.len().min(buf.remaining());
    buf.put_slice(&record[..n]);
    tls.consume(n);
    Poll::Ready(Ok(()))
}

impl Conn {
    /// Runs a write or flush of the HTTP layer's (the request), whose socket writes stamp.
    fn request<T>(&mut self, write: impl FnOnce(&mut Stream) -> T) -> T {
        self.stamped().request = true;
        let out = write(&mut self.stream);
        self.stamped().request = false;
        out
    }

    /// Over HTTP/2, shows the frame log the `n` bytes of `bufs` a write took at `at`.
    fn wrote(&self, bufs: &[&[u8]], mut n: usize, at: Instant) {
        let Some(frames) = &self.frames else { return };
        let at = Stamp {
            nanos: to_nanos(at),
            source: ClockSource::Socket,
        };
        for buf in bufs {
            let take = n.min(buf.len());
            frames.wrote(&buf[..take], at);
            n -= take;
            if n == 0 {
                break;
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Over HTTP/2 only: HTTP/1.1's "sent" is stamped at the socket beneath.
        let at = this.frames.is_some().then(Instant::now);
        let n = ready!(this.request(|stream| match stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }))?;
        if let Some(at) = at {
            this.wrote(&[buf], n, at);
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let at = this.frames.is_some().then(Instant::now);
        let n = ready!(this.request(|stream| match stream {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }))?;
        if let Some(at) = at {
            let slices: Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
            this.wrote(&slices, n, at);
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().request(|stream| match stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        })
    }

    /// Closing writes (TLS's close_notify) after the response start no request.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new()
            .extra(self.clock().clone())
            .extra(self.peer)
    }
}
