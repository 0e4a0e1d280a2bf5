//! The packet clock (`clock = "packet"`; Linux, run as root or with `CAP_NET_RAW`): every TCP
//! segment a connection receives keeps its own arrival time, however late a busy reader gets
//! to it.
//!
//! The kernel clock stamps a read with the receive time of the latest packet in it, and Linux
//! merges segments that wait together in a socket's queue (`tcp_try_coalesce`), keeping the
//! latest one's stamp. So when the reading task falls behind, several events take the last
//! one's time, and no way of reading the socket recovers the earlier ones. A packet socket sees
//! each segment as it came in, before TCP queues it. [`Capture`] reads the headers of incoming
//! TCP packets (at most 128 bytes of each, never a payload: a BPF filter cuts them in the
//! kernel) with their receive times. Per tracked connection, a [`Flow`] turns sequence numbers
//! into stream offsets (from the server's SYN-ACK) and keeps when the bytes up to each offset
//! were all in. The stamped connection then reads one segment's bytes at a time ([`Tracked`]),
//! so each read, and the event it completes, carries its own segment's time.
//!
//! Segments the capture missed (its queue overflowed, a SYN-ACK it did not see) leave those
//! reads on the kernel clock, and the record says `kernel` rather than `packet`.
//!
//! The capture is shared by the process's packet-clock transports and closed with the last
//! of them; while it is open it reads every TCP packet the machine receives (headers only).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// One end of a connection.
pub type Endpoint = (IpAddr, u16);

/// A connection as its packets name it: this machine's end and the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub local: Endpoint,
    pub remote: Endpoint,
}

/// What an incoming TCP packet's headers say, as far as the clock needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) key: FlowKey,
    pub(crate) seq: u32,
    /// Payload bytes.
    pub(crate) len: u32,
    /// SYN and ACK: `seq` is the server's initial sequence number.
    pub(crate) syn_ack: bool,
}

/// Reads an IPv4 or IPv6 packet's TCP headers (the packet cut after its headers is enough: the
/// payload's length comes from the IP header). `None` for anything else: another protocol, a
/// fragment, IPv6 extension headers, a packet too short to hold the headers.
pub(crate) fn parse(packet: &[u8]) -> Option<Segment> {
    let be16 = |b: &[u8], at: usize| -> Option<usize> {
        Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]) as usize)
    };
    let (ip_len, total, src, dst): (usize, usize, IpAddr, IpAddr) = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            // TCP only; not a fragment (more-fragments flag or an offset).
            if ihl < 20 || *packet.get(9)? != 6 || be16(packet, 6)? & 0x3fff != 0 {
                return None;
            }
            let addr = |at: usize| -> Option<IpAddr> {
                let b: [u8; 4] = packet.get(at..at + 4)?.try_into().ok()?;
                Some(IpAddr::from(b))
            };
            (ihl, be16(packet, 2)?, addr(12)?, addr(16)?)
        }
        6 => {
            if *packet.get(6)? != 6 {
                return None;
            }
            let addr = |at: usize| -> Option<IpAddr> {
                let b: [u8; 16] = packet.get(at..at + 16)?.try_into().ok()?;
                Some(IpAddr::from(b))
            };
            (40, 40 + be16(packet, 4)?, addr(8)?, addr(24)?)
        }
        _ => return None,
    };
    let tcp = packet.get(ip_len..)?;
    let data_offset = usize::from(*tcp.get(12)? >> 4) * 4;
    if data_offset < 20 {
        return None;
    }
    let seq = u32::from_be_bytes(tcp.get(4..8)?.try_into().ok()?);
    let flags = *tcp.get(13)?;
    Some(Segment {
        key: FlowKey {
            local: (dst, be16(tcp, 2)? as u16),
            remote: (src, be16(tcp, 0)? as u16),
        },
        seq,
        len: total.saturating_sub(ip_len + data_offset) as u32,
        syn_ack: flags & 0x12 == 0x12,
    })
}

/// Segments kept past a gap, and in-order marks kept unread, per connection at most: a reader
/// that stopped reading or a capture that lost a segment costs no more than this.
const MAX_AHEAD: usize = 4096;
const MAX_MARKS: usize = 65536;

/// One connection's received stream, in offsets from its first byte: when the bytes up to each
/// offset were all in (a byte can be read only once those before it are).
#[derive(Debug, Default)]
pub(crate) struct Flow {
    /// The sequence number of offset 0 (the server's initial one plus one), from its SYN-ACK.
    base: Option<u32>,
    /// Bytes in order so far.
    delivered: u64,
    /// `(end, at)`: the bytes before `end` were all in at `at`. Ends and times increase.
    marks: VecDeque<(u64, Instant)>,
    /// Segments that came past a gap, by start: `(end, at)`.
    ahead: BTreeMap<u64, (u64, Instant)>,
}

impl Flow {
    pub(crate) fn syn_ack(&mut self, isn: u32) {
        self.base.get_or_insert(isn.wrapping_add(1));
    }

    /// A segment of `len` bytes from sequence number `seq` came in at `at`. Repeats of bytes
    /// already in (retransmissions) change nothing; a segment past a gap waits for it.
    pub(crate) fn segment(&mut self, seq: u32, len: u32, at: Instant) {
        let Some(base) = self.base else { return };
        if len == 0 {
            return;
        }
        // The offset nearest the bytes delivered so far with these low 32 bits (sequence
        // numbers wrap every 4 GiB).
        let from_delivered = seq.wrapping_sub(base).wrapping_sub(self.delivered as u32) as i32;
        let start = self.delivered as i64 + i64::from(from_delivered);
        let end = start + i64::from(len);
        if end <= self.delivered as i64 {
            return;
        }
        let (start, end) = (start.max(0) as u64, end as u64);
        if start > self.delivered {
            if self.ahead.len() < MAX_AHEAD {
                let kept = self.ahead.entry(start).or_insert((end, at));
                // A longer repeat: its extra bytes came with it (never say earlier than true).
                if end > kept.0 {
                    *kept = (end, kept.1.max(at));
                }
            }
            return;
        }
        self.advance(end, at);
        // Segments that waited behind the gap this one filled are in now.
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() > self.delivered {
                break;
            }
            let (end, waited) = entry.remove();
            if end > self.delivered {
                self.advance(end, waited);
            }
        }
    }

    fn advance(&mut self, end: u64, at: Instant) {
        let at = self.marks.back().map_or(at, |&(_, before)| before.max(at));
        self.delivered = end;
        if self.marks.len() >= MAX_MARKS {
            self.marks.pop_front();
        }
        self.marks.push_back((end, at));
    }

    /// The mark holding byte `offset`: `(end, at)`.
    pub(crate) fn mark(&self, offset: u64) -> Option<(u64, Instant)> {
        self.marks.iter().find(|&&(end, _)| end > offset).copied()
    }

    /// Where a read from `offset` may end: the end of the last mark, from the one holding it,
    /// that was in within `within` of that one (segments that came together are read together,
    /// each stamped at most `within` late).
    pub(crate) fn read_end(&self, offset: u64, within: Duration) -> Option<u64> {
        let mut marks = self.marks.iter().skip_while(|&&(end, _)| end <= offset);
        let &(mut read_end, first) = marks.next()?;
        for &(end, at) in marks {
            if at.saturating_duration_since(first) > within {
                break;
            }
            read_end = end;
        }
        Some(read_end)
    }

    /// The reader has read the bytes before `offset`. Past what the capture saw (it missed a
    /// segment), the gap counts as filled: what waited behind it is dropped, since when it
    /// could be read is unknown, and later segments map again.
    pub(crate) fn consumed(&mut self, offset: u64) {
        if offset > self.delivered {
            self.delivered = offset;
            self.marks.clear();
            self.ahead.clear();
            return;
        }
        while self.marks.front().is_some_and(|&(end, _)| end <= offset) {
            self.marks.pop_front();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The packet socket and the connections it maps.
pub struct Capture {
    fd: OwnedFd,
    /// Held while packets are taken off the socket and mapped: a reader that drains after the
    /// capture thread took its packet waits until the packet is mapped, not finding it gone.
    draining: Mutex<()>,
    flows: Mutex<Flows>,
}

#[derive(Default)]
struct Flows {
    open: HashMap<FlowKey, Arc<Mutex<Flow>>>,
    /// SYN-ACKs seen for connections not (yet) tracked: the server's initial sequence number
    /// and when it came. A connection is tracked once `connect` returns, after its SYN-ACK.
    handshakes: HashMap<FlowKey, (u32, Instant)>,
}

/// Handshakes kept at most, and for how long, waiting for their connection to be tracked.
const MAX_HANDSHAKES: usize = 4096;
const HANDSHAKE_TTL: Duration = Duration::from_secs(30);

impl Capture {
    /// The process's capture, opened when the first packet-clock transport asks and closed
    /// after the last one is gone. The error says why there is none (not Linux, no
    /// `CAP_NET_RAW`).
    pub fn shared() -> Result<Arc<Capture>, String> {
        static SHARED: Mutex<Weak<Capture>> = Mutex::new(Weak::new());
        let mut shared = lock(&SHARED);
        if let Some(capture) = shared.upgrade() {
            return Ok(capture);
        }
        let fd = sys::open().map_err(|e| {
            let why = if e.kind() == io::ErrorKind::PermissionDenied {
                " (it needs root or CAP_NET_RAW: `sudo setcap cap_net_raw+ep $(which llmpulse)`)"
            } else {
                ""
            };
            format!("no packet socket: {e}{why}")
        })?;
        let capture = Arc::new(Capture {
            fd,
            draining: Mutex::default(),
            flows: Mutex::default(),
        });
        let weak = Arc::downgrade(&capture);
        std::thread::Builder::new()
            .name("llmpulse-packets".into())
            .spawn(move || {
                // Holds the capture only while waiting a little, so it closes with its last user.
                // Readers map what they need themselves; this keeps the queue short when they
                // are idle (other connections' packets), a batch at most every 2 ms rather than
                // a wake-up per packet.
                while let Some(capture) = weak.upgrade() {
                    if sys::wait_readable(&capture.fd, Duration::from_millis(100)) {
                        capture.drain();
                        drop(capture);
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
            .map_err(|e| format!("no thread for the packet capture: {e}"))?;
        *shared = Arc::downgrade(&capture);
        Ok(capture)
    }

    /// Starts mapping a connection that has just connected from `local` to `remote`.
    pub fn track(self: &Arc<Self>, local: Endpoint, remote: Endpoint) -> Tracked {
        // Its SYN-ACK reached the packet socket before TCP saw it, so it is queued by now.
        self.drain();
        let key = FlowKey { local, remote };
        let mut flow = Flow::default();
        let mut flows = lock(&self.flows);
        if let Some((isn, _)) = flows.handshakes.remove(&key) {
            flow.syn_ack(isn);
        }
        let flow = Arc::new(Mutex::new(flow));
        flows.open.insert(key, flow.clone());
        Tracked {
            capture: self.clone(),
            key,
            flow,
            read: 0,
        }
    }

    /// Maps every packet queued on the socket now (without waiting for more).
    pub fn drain(&self) {
        let _draining = lock(&self.draining);
        sys::drain(&self.fd, |batch| self.apply(batch));
    }

    fn apply(&self, batch: &[(Segment, Instant)]) {
        let mut flows = lock(&self.flows);
        for &(segment, at) in batch {
            if segment.syn_ack {
                match flows.open.get(&segment.key) {
                    Some(flow) => lock(flow).syn_ack(segment.seq),
                    None => {
                        if flows.handshakes.len() >= MAX_HANDSHAKES {
                            flows.handshakes.retain(|_, (_, seen)| {
                                at.saturating_duration_since(*seen) < HANDSHAKE_TTL
                            });
                            if flows.handshakes.len() >= MAX_HANDSHAKES {
                                flows.handshakes.clear();
                            }
                        }
                        flows.handshakes.insert(segment.key, (segment.seq, at));
                    }
                }
            } else if segment.len > 0
                && let Some(flow) = flows.open.get(&segment.key)
            {
                lock(flow).segment(segment.seq, segment.len, at);
            }
        }
    }
}

/// Segments that came within this of each other are read together, each event stamped with the
/// last one's time: at most this late, and a system call per burst rather than per segment when
/// a server writes events back to back.
pub const TOGETHER: Duration = Duration::from_micros(50);

/// A tracked connection's reading side: how much to read next so a read holds one segment's
/// bytes, and when the bytes read arrived.
pub struct Tracked {
    capture: Arc<Capture>,
    key: FlowKey,
    flow: Arc<Mutex<Flow>>,
    /// Bytes read so far.
    read: u64,
}

impl Tracked {
    /// `look` at the flow; where it finds nothing, once more after mapping what the capture
    /// has queued.
    fn look<T>(&self, look: impl Fn(&Flow) -> Option<T>) -> Option<T> {
        if let Some(found) = look(&lock(&self.flow)) {
            return Some(found);
        }
        self.capture.drain();
        look(&lock(&self.flow))
    }

    /// The bytes from the next unread one to the end of the segment that brought it, or of the
    /// last that came within [`TOGETHER`] of it; `None` when the capture has not seen it (read
    /// what there is).
    pub fn limit(&self) -> Option<usize> {
        self.look(|flow| flow.read_end(self.read, TOGETHER))
            .map(|end| usize::try_from(end - self.read).unwrap_or(usize::MAX))
    }

    /// `n` more bytes were read: when the last of them (so all of them) had arrived, where the
    /// capture saw it.
    pub fn read(&mut self, n: usize) -> Option<Instant> {
        if n == 0 {
            return None;
        }
        let last = self.read + n as u64 - 1;
        let at = self.look(|flow| flow.mark(last)).map(|(_, at)| at);
        self.read += n as u64;
        lock(&self.flow).consumed(self.read);
        at
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        lock(&self.capture.flows).open.remove(&self.key);
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use super::{Segment, parse};

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
            BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_MISC, BPF_MSH, BPF_RET, BPF_RSH, BPF_SUB,
            BPF_TAX, BPF_W, BPF_X,
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
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::time::{Duration, Instant};

    use super::Segment;

    pub(super) fn open() -> io::Result<OwnedFd> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the packet clock needs Linux's packet sockets",
        ))
    }

    pub(super) fn wait_readable(_: &OwnedFd, _: Duration) -> bool {
        false
    }

    pub(super) fn drain(_: &OwnedFd, _: impl FnMut(&[(Segment, Instant)])) {}
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::time::{Duration, Instant};

    use super::{Flow, FlowKey, parse};

    /// An IPv4 TCP packet from `src` to `dst` with `payload` bytes (not included: the capture
    /// keeps only headers), sequence number `seq` and TCP `flags`.
    fn ipv4(
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        flags: u8,
        payload: u16,
    ) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(40 + payload).to_be_bytes());
        p[6] = 0x40; // don't fragment
        p[9] = 6;
        p[12..16].copy_from_slice(&src.0);
        p[16..20].copy_from_slice(&dst.0);
        p[20..22].copy_from_slice(&src.1.to_be_bytes());
        p[22..24].copy_from_slice(&dst.1.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p
    }

    #[test]
    fn tcp_headers_are_read_from_ipv4_and_ipv6() {
        let server = ([10, 0, 0, 1], 443);
        let me = ([10, 0, 0, 2], 50_000);
        let s = parse(&ipv4(server, me, 7, 0x18, 120)).unwrap();
        assert_eq!(
            s.key,
            FlowKey {
                local: (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 50_000),
                remote: (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 443),
            }
        );
        assert_eq!((s.seq, s.len, s.syn_ack), (7, 120, false));
        assert!(parse(&ipv4(server, me, 99, 0x12, 0)).unwrap().syn_ack);

        // TCP options count in the header, not the payload.
        let mut with_options = ipv4(server, me, 7, 0x18, 120);
        with_options[32] = 8 << 4;
        with_options.extend([0u8; 12]);
        assert_eq!(parse(&with_options).unwrap().len, 108);

        let mut v6 = vec![0u8; 60];
        v6[0] = 0x60;
        v6[4..6].copy_from_slice(&(20u16 + 5).to_be_bytes());
        v6[6] = 6;
        v6[23] = 1; // ::1 → ::1
        v6[39] = 1;
        v6[40..42].copy_from_slice(&8080u16.to_be_bytes());
        v6[42..44].copy_from_slice(&40_000u16.to_be_bytes());
        v6[44..48].copy_from_slice(&1234u32.to_be_bytes());
        v6[52] = 5 << 4;
        let s = parse(&v6).unwrap();
        assert_eq!(s.key.local, (IpAddr::V6(Ipv6Addr::LOCALHOST), 40_000));
        assert_eq!(s.key.remote, (IpAddr::V6(Ipv6Addr::LOCALHOST), 8080));
        assert_eq!((s.seq, s.len), (1234, 5));
    }

    #[test]
    fn what_is_not_a_whole_tcp_header_is_skipped() {
        let tcp = ipv4(([1, 1, 1, 1], 1), ([2, 2, 2, 2], 2), 0, 0x10, 0);
        let mut udp = tcp.clone();
        udp[9] = 17;
        let mut fragment = tcp.clone();
        fragment[6] = 0x20; // more fragments
        let mut bad_offset = tcp.clone();
        bad_offset[32] = 2 << 4;
        for (why, packet) in [
            ("udp", &udp[..]),
            ("fragment", &fragment[..]),
            ("data offset below 20", &bad_offset[..]),
            ("cut in the TCP header", &tcp[..30]),
            ("empty", &[][..]),
            ("ARP-ish", &[0x00, 0x01][..]),
        ] {
            assert_eq!(parse(packet), None, "{why}");
        }
    }

    fn t0() -> Instant {
        Instant::now()
    }

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn each_segment_keeps_its_own_arrival_and_a_read_is_cut_at_its_end() {
        let base = t0();
        let mut flow = Flow::default();
        flow.syn_ack(1_000);
        flow.segment(1_001, 100, ms(base, 10));
        flow.segment(1_101, 50, ms(base, 20));
        // Byte 0..100 came at 10 ms, 100..150 at 20 ms.
        assert_eq!(flow.mark(0), Some((100, ms(base, 10))));
        assert_eq!(flow.mark(99), Some((100, ms(base, 10))));
        assert_eq!(flow.mark(100), Some((150, ms(base, 20))));
        assert_eq!(flow.mark(150), None);
        // A retransmission of bytes already in changes nothing.
        flow.segment(1_001, 100, ms(base, 300));
        assert_eq!(flow.mark(0), Some((100, ms(base, 10))));
        flow.consumed(100);
        assert_eq!(
            flow.mark(0),
            Some((150, ms(base, 20))),
            "read marks are dropped"
        );
    }

    #[test]
    fn segments_that_came_together_are_read_together() {
        let base = t0();
        let us = |n: u64| base + Duration::from_micros(n);
        let mut flow = Flow::default();
        flow.syn_ack(0);
        flow.segment(1, 10, us(0));
        flow.segment(11, 10, us(30));
        flow.segment(21, 10, us(45));
        flow.segment(31, 10, us(200));
        let within = Duration::from_micros(50);
        assert_eq!(
            flow.read_end(0, within),
            Some(30),
            "0, 30 and 45 µs: one read"
        );
        assert_eq!(flow.read_end(25, within), Some(30));
        assert_eq!(
            flow.read_end(30, within),
            Some(40),
            "200 µs: a read of its own"
        );
        assert_eq!(flow.read_end(40, within), None);
        assert_eq!(
            flow.read_end(0, Duration::ZERO),
            Some(10),
            "one segment per read"
        );
    }

    #[test]
    fn a_segment_past_a_gap_is_readable_only_when_the_gap_fills() {
        let base = t0();
        let mut flow = Flow::default();
        flow.syn_ack(u32::MAX - 10); // sequence numbers wrap inside this stream
        let seq = |offset: u32| (u32::MAX - 9).wrapping_add(offset);
        flow.segment(seq(100), 100, ms(base, 10));
        assert_eq!(flow.mark(150), None, "bytes 0..100 are missing");
        flow.segment(seq(0), 100, ms(base, 30));
        assert_eq!(flow.mark(0), Some((100, ms(base, 30))));
        assert_eq!(
            flow.mark(150),
            Some((200, ms(base, 30))),
            "in at 10 ms, readable once the gap filled at 30 ms"
        );
    }

    #[test]
    fn without_its_syn_ack_a_connection_maps_nothing() {
        let mut flow = Flow::default();
        flow.segment(5, 100, t0());
        assert_eq!(flow.mark(0), None);
    }

    #[test]
    fn bytes_the_capture_missed_leave_only_those_reads_unmapped() {
        let base = t0();
        let mut flow = Flow::default();
        flow.syn_ack(0);
        flow.segment(1, 100, ms(base, 10));
        // The capture lost 100..200; 200..300 waits behind the gap.
        flow.segment(201, 100, ms(base, 30));
        flow.consumed(100);
        assert_eq!(flow.mark(100), None);
        // The reader read past the gap (the socket had the bytes): later segments map again.
        flow.consumed(300);
        flow.segment(301, 10, ms(base, 40));
        assert_eq!(flow.mark(300), Some((310, ms(base, 40))));
    }
}
