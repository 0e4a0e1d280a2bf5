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

mod flow;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(not(target_os = "linux"))]
#[path = "unsupported.rs"]
mod sys;

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

pub use flow::{Endpoint, FlowKey};
use flow::{Flow, Segment};

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
