//! A listener whose connections stamp their reads with the kernel's receive time
//! ([`crate::rx_stamp`]), and the per-connection clock handlers read it from.

use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::rx_stamp;

/// When a connection's latest read arrived (nanoseconds after `origin`; 0: none yet).
#[derive(Debug, Clone)]
pub(super) struct Arrivals {
    origin: Instant,
    latest: Arc<AtomicU64>,
}

impl Arrivals {
    pub(super) fn latest(&self) -> Option<Instant> {
        match self.latest.load(Ordering::Acquire) {
            0 => None,
            n => Some(self.origin + Duration::from_nanos(n)),
        }
    }
}

impl Connected<IncomingStream<'_, StampedListener>> for Arrivals {
    fn connect_info(stream: IncomingStream<'_, StampedListener>) -> Self {
        stream.remote_addr().clone()
    }
}

pub(super) struct StampedListener(pub(super) TcpListener);

impl axum::serve::Listener for StampedListener {
    type Io = StampedStream;
    type Addr = Arrivals;

    async fn accept(&mut self) -> (StampedStream, Arrivals) {
        loop {
            match self.0.accept().await {
                Ok((io, _)) => {
                    if let Err(e) = io.set_nodelay(true) {
                        tracing::warn!("cannot set TCP_NODELAY: {e}");
                    }
                    // Without it reads are stamped when they happen.
                    let _ = rx_stamp::enable(io.as_raw_fd());
                    let arrivals = Arrivals {
                        // A little in the past, so that no stamp is before it.
                        origin: Instant::now() - Duration::from_secs(1),
                        latest: Arc::new(AtomicU64::new(0)),
                    };
                    let stream = StampedStream {
                        io,
                        arrivals: arrivals.clone(),
                    };
                    return (stream, arrivals);
                }
                // Out of descriptors and the like: wait a little, as axum's own listener does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Arrivals> {
        Ok(Arrivals {
            origin: Instant::now(),
            latest: Arc::new(AtomicU64::new(0)),
        })
    }
}

pub(super) struct StampedStream {
    io: TcpStream,
    arrivals: Arrivals,
}

impl AsyncRead for StampedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (_, at) = ready!(rx_stamp::poll_read_buf(&this.io, cx, buf))?;
        let at = at.unwrap_or_else(Instant::now);
        let since = at.saturating_duration_since(this.arrivals.origin);
        this.arrivals
            .latest
            .store(since.as_nanos().max(1) as u64, Ordering::Release);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for StampedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
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
