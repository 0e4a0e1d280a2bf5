//! Kernel receive timestamps on a TCP socket: `recvmsg` with `SO_TIMESTAMPNS` on Linux, the
//! instant the kernel received the latest packet a read returned. The simulator's server stamps
//! each request's arrival with it, so its schedule and its log run from when the request reached
//! the machine rather than from when a busy handler got to it; llmpulse's plain-HTTP transport
//! stamps response bytes the same way. On other Unix systems a read carries no stamp.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Whether reads on this system can carry the kernel's receive time.
pub const KERNEL_STAMPS: bool = cfg!(target_os = "linux");

/// Asks the kernel to stamp what `fd` receives.
pub fn enable(fd: RawFd) -> io::Result<()> {
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

#[cfg(target_os = "linux")]
fn stamp(msg: &libc::msghdr) -> Option<Instant> {
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
fn stamp(_: &libc::msghdr) -> Option<Instant> {
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

    /// Bytes that waited in the socket are stamped with when they arrived, not when read.
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
