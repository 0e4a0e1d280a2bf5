//! The packet socket on Linux: opened with a BPF filter that keeps the headers of incoming TCP
//! packets with data or a SYN, each stamped by the kernel, and read in batches.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::flow::{Segment, parse};

/// Bytes kept of each packet: IPv4's or IPv6's header and TCP's, options included.
const SNAP: u32 = 128;
const BATCH: usize = 64;

/// A packet socket that receives the network-layer headers of incoming TCP packets, each
/// stamped by the kernel when it came in.
pub(super) fn open() -> io::Result<OwnedFd> {
    // Turns the kernel's packet stamping on for the process and waits until it is.
    let _ = llmpulse_sim::rx_stamp::available();
    let protocol = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
    // SAFETY: plain socket(2); the descriptor is owned below.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor socket(2) just returned, owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    attach_filter(&fd)?;
    // Room for a burst while the capture thread waits for a core (a queued packet is
    // charged its full size); more than the system maximum needs CAP_NET_ADMIN.
    let room: libc::c_int = 32 << 20;
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        if setsockopt(&fd, option, room).is_ok() {
            break;
        }
    }
    llmpulse_sim::rx_stamp::set_stamping(fd.as_raw_fd())?;
    // Packets queued before the filter was attached may be anything: parse skips them.
    Ok(fd)
}

fn setsockopt(fd: &OwnedFd, option: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: a socket, a c_int value and its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Keeps incoming (not outgoing) IPv4 and IPv6 TCP packets that carry data or a SYN, cut
/// to [`SNAP`] bytes: pure ACKs and FINs never reach the socket. On a `SOCK_DGRAM` packet
/// socket the offsets count from the network header.
fn attach_filter(fd: &OwnedFd) -> io::Result<()> {
    let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    use libc::{
        BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_H, BPF_IMM, BPF_IND, BPF_JEQ, BPF_JMP,
        BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_MISC, BPF_MSH, BPF_RET, BPF_RSH, BPF_SUB, BPF_TAX,
        BPF_W, BPF_X,
    };
    let (jeq, jset) = (BPF_JMP | BPF_JEQ | BPF_K, BPF_JMP | BPF_JSET | BPF_K);
    let (ldb, ldh) = (BPF_LD | BPF_B | BPF_ABS, BPF_LD | BPF_H | BPF_ABS);
    // The TCP header starts at X: jump to ACCEPT on a SYN, else leave its length (data
    // offset × 4) in A.
    const SYN: u32 = 0x02;
    // Jump offsets count from the next instruction: ACCEPT is 31, DROP 32.
    let program = [
        /* 0 */
        op(
            BPF_LD | BPF_W | BPF_ABS,
            0,
            0,
            (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32,
        ),
        /* 1 */ op(jeq, 30, 0, libc::PACKET_OUTGOING as u32),
        /* 2 */ op(ldb, 0, 0, 0),
        /* 3 */ op(BPF_ALU | BPF_AND | BPF_K, 0, 0, 0xf0),
        /* 4 */ op(jeq, 13, 0, 0x40),
        /* 5 */ op(jeq, 0, 26, 0x60),
        // IPv6: next header TCP, a 40-byte header; data = payload length − TCP header.
        /* 6 */
        op(ldb, 0, 0, 6),
        /* 7 */ op(jeq, 0, 24, 6),
        /* 8 */ op(BPF_LDX | BPF_W | BPF_IMM, 0, 0, 40),
        /* 9 */ op(BPF_LD | BPF_B | BPF_IND, 0, 0, 13),
        /* 10 */ op(jset, 20, 0, SYN),
        /* 11 */ op(BPF_LD | BPF_B | BPF_IND, 0, 0, 12),
        /* 12 */ op(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 2),
        /* 13 */ op(BPF_ALU | BPF_AND | BPF_K, 0, 0, 0x3c),
        /* 14 */ op(BPF_MISC | BPF_TAX, 0, 0, 0),
        /* 15 */ op(ldh, 0, 0, 4),
        /* 16 */ op(BPF_ALU | BPF_SUB | BPF_X, 0, 0, 0),
        /* 17 */ op(jeq, 14, 13, 0),
        // IPv4: protocol TCP; data = total length − IP header − TCP header.
        /* 18 */
        op(ldb, 0, 0, 9),
        /* 19 */ op(jeq, 0, 12, 6),
        /* 20 */ op(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0),
        /* 21 */ op(BPF_LD | BPF_B | BPF_IND, 0, 0, 13),
        /* 22 */ op(jset, 8, 0, SYN),
        /* 23 */ op(BPF_LD | BPF_B | BPF_IND, 0, 0, 12),
        /* 24 */ op(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 2),
        /* 25 */ op(BPF_ALU | BPF_AND | BPF_K, 0, 0, 0x3c),
        /* 26 */ op(BPF_ALU | BPF_ADD | BPF_X, 0, 0, 0),
        /* 27 */ op(BPF_MISC | BPF_TAX, 0, 0, 0),
        /* 28 */ op(ldh, 0, 0, 2),
        /* 29 */ op(BPF_ALU | BPF_SUB | BPF_X, 0, 0, 0),
        /* 30 */ op(jeq, 1, 0, 0),
        /* 31: ACCEPT */ op(BPF_RET | BPF_K, 0, 0, SNAP),
        /* 32: DROP */ op(BPF_RET | BPF_K, 0, 0, 0),
    ];
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: a socket, and a filter program that outlives the call (the kernel copies it).
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&prog as *const libc::sock_fprog).cast(),
            size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Waits up to `limit` for packets; true when some are queued.
pub(super) fn wait_readable(fd: &OwnedFd, limit: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd that lives across the call.
    let r = unsafe { libc::poll(&mut pfd, 1, limit.as_millis() as libc::c_int) };
    if r < 0 {
        // Interrupted, or worse: wait rather than spin.
        std::thread::sleep(limit);
    }
    r > 0 && pfd.revents & libc::POLLIN != 0
}

/// Reads every packet queued now, in batches, handing each batch's TCP segments on.
pub(super) fn drain(fd: &OwnedFd, mut apply: impl FnMut(&[(Segment, Instant)])) {
    let mut bufs = [[0u8; SNAP as usize]; BATCH];
    let mut controls = [[0u64; 8]; BATCH];
    // SAFETY: iovec and mmsghdr are plain data; all-zero is valid, and each is set below.
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    let mut segments = Vec::with_capacity(BATCH);
    loop {
        for i in 0..BATCH {
            iovs[i] = libc::iovec {
                iov_base: bufs[i].as_mut_ptr().cast(),
                iov_len: bufs[i].len(),
            };
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = controls[i].as_mut_ptr().cast();
            hdr.msg_controllen = size_of_val(&controls[i]) as _;
            msgs[i].msg_len = 0;
        }
        // SAFETY: BATCH headers, each over its own live buffer and control space.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            return;
        }
        let n = n as usize;
        segments.clear();
        for i in 0..n {
            let len = (msgs[i].msg_len as usize).min(bufs[i].len());
            if let (Some(at), Some(segment)) = (
                llmpulse_sim::rx_stamp::stamp(&msgs[i].msg_hdr),
                parse(&bufs[i][..len]),
            ) {
                segments.push((segment, at));
            }
        }
        apply(&segments);
        if n < BATCH {
            return;
        }
    }
}
