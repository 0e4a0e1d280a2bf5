//! Kernel receive timestamps on a TCP socket: `recvmsg` with `SO_TIMESTAMPNS` on Linux, the
//! instant the kernel received the latest packet a read returned. The simulator's server stamps
//! each request's arrival with it, so its schedule and its log run from when the request reached
//! the machine rather than from when a busy handler got to it; llmpulse's plain-HTTP transport
//! stamps response bytes the same way. On other Unix systems a read carries no stamp.
//!
//! Linux turns packet stamping on for the whole system lazily: the first socket to ask schedules
//! the switch on a kernel work queue, and packets that arrive before it runs carry no stamp.
//! [`available`] therefore opens a stamped loopback pair, waits until a packet on it comes back
//! stamped, and keeps the pair open for the life of the process, so that every socket enabled
//! afterwards is stamped from its first packet.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Whether the kernel stamps what sockets receive. The first call turns stamping on for the
/// process and waits (a few milliseconds; one second at most) until packets come back stamped;
/// later calls answer at once.
pub fn available() -> bool {
    static PROBE: OnceLock<Option<Probe>> = OnceLock::new();
    PROBE
        .get_or_init(|| match Probe::open() {
            Ok(probe) => Some(probe),
            Err(e) => {
                tracing::debug!("kernel receive timestamps unavailable: {e}");
                None
            }
        })
        .is_some()
}

/// The loopback pair that keeps the kernel stamping while the process lives.
struct Probe {
    _sender: std::net::TcpStream,
    _receiver: std::net::TcpStream,
}

impl Probe {
    fn open() -> io::Result<Probe> {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut sender = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (receiver, _) = listener.accept()?;
        sender.set_nodelay(true)?;
        receiver.set_read_timeout(Some(Duration::from_secs(1)))?;
        set_stamping(receiver.as_raw_fd())?;
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut buf = [MaybeUninit::new(0u8); 16];
        loop {
            sender.write_all(b".")?;
            let (n, at) = recv(receiver.as_raw_fd(), &mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if at.is_some() {
                return Ok(Probe {
                    _sender: sender,
                    _receiver: receiver,
                });
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other("no packet came back stamped within 1 s"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Asks the kernel to stamp what `fd` receives, once [`available`] says it does; `Unsupported`
/// where it does not.
pub fn enable(fd: RawFd) -> io::Result<()> {
    if !available() {
        return Err(io::ErrorKind::Unsupported.into());
    }
    set_stamping(fd)
}

/// Sets `SO_TIMESTAMPNS` on any socket (a packet socket too), without [`available`]'s wait.
pub fn set_stamping(fd: RawFd) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let on: libc::c_int = 1;
        // SAFETY: a socket descriptor, a c_int option value and its size.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Reads from `fd` into `dst` (non-blocking sockets give `WouldBlock` as usual): the bytes read
/// and, when the kernel stamped them, the instant it received the latest packet among them.
pub fn recv(fd: RawFd, dst: &mut [MaybeUninit<u8>]) -> io::Result<(usize, Option<Instant>)> {
    let mut iov = libc::iovec {
        iov_base: dst.as_mut_ptr().cast(),
        iov_len: dst.len(),
    };
    // Room for one timespec control message, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: `msg` points at a live iovec over `dst` and a live control buffer; the kernel
    // writes at most `dst.len()` bytes.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, stamp(&msg)))
}

/// [`recv`] on a Tokio socket into `buf`'s unfilled part, once it is readable, marking what came
/// filled: what both ends' stamped streams call from their `AsyncRead::poll_read`. Gives how
/// many bytes came (0 at the end of the stream) and the kernel's receive time of them.
pub fn poll_read_buf(
    io: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut tokio::io::ReadBuf<'_>,
) -> Poll<io::Result<(usize, Option<Instant>)>> {
    // SAFETY: `recv` writes at most the unfilled part and reports how much; exactly that is
    // marked initialised and filled (below).
    let dst = unsafe { buf.unfilled_mut() };
    let (n, at) = ready!(poll_recv(io, cx, dst))?;
    // SAFETY: `recv` initialised the first `n` bytes of the unfilled part.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Poll::Ready(Ok((n, at)))
}

/// [`recv`] on a Tokio socket, once it is readable.
fn poll_recv(
    io: &TcpStream,
    cx: &mut Context<'_>,
    dst: &mut [MaybeUninit<u8>],
) -> Poll<io::Result<(usize, Option<Instant>)>> {
    use std::os::fd::AsRawFd;
    loop {
        ready!(io.poll_read_ready(cx))?;
        match io.try_io(Interest::READABLE, || recv(io.as_raw_fd(), dst)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            read => return Poll::Ready(read),
        }
    }
}

/// The kernel's receive time in a message `recvmsg` filled, when its control data carries one
/// (`SCM_TIMESTAMPNS`, on a socket with `SO_TIMESTAMPNS`: TCP here, packet sockets in
/// llmpulse's packet clock).
#[cfg(target_os = "linux")]
pub fn stamp(msg: &libc::msghdr) -> Option<Instant> {
    let mut stamp = None;
    // SAFETY: the CMSG_* walk stays within the control buffer the kernel filled.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                stamp = Some(realtime_to_instant(ts.tv_sec as i64, ts.tv_nsec as i64));
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    stamp
}

#[cfg(not(target_os = "linux"))]
pub fn stamp(_: &libc::msghdr) -> Option<Instant> {
    None
}

/// A kernel timestamp (`CLOCK_REALTIME`) as an `Instant`, by its age now.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn realtime_to_instant(secs: i64, nanos: i64) -> Instant {
    let stamped =
        UNIX_EPOCH + Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32);
    let (now, now_sys) = (Instant::now(), SystemTime::now());
    now - now_sys.duration_since(stamped).unwrap_or_default()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    /// Bytes that waited in the socket are stamped with when they arrived, not when read, from
    /// the first packet of a new socket on (Linux switches stamping on lazily; see the module).
    #[test]
    fn a_late_read_still_says_when_the_bytes_arrived() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        super::enable(server.as_raw_fd()).unwrap();
        let sent = Instant::now();
        client.write_all(b"hello").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut buf = [std::mem::MaybeUninit::new(0u8); 64];
        let (n, at) = super::recv(server.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(n, 5);
        let waited = at.expect("a kernel stamp").saturating_duration_since(sent);
        assert!(
            waited < Duration::from_millis(100),
            "stamped {waited:?} after sending"
        );
    }
}
