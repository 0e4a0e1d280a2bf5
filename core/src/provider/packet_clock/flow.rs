//! One connection's received stream as the packet clock maps it: the TCP headers read from a
//! captured packet ([`parse`]), and per connection the offsets in its stream with when the
//! bytes up to each were all in ([`Flow`]). Plain data and logic, tested without a socket.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
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
/// With 24 bytes a mark, a thousand connections of a server sending tiny segments to a stalled
/// reader hold about 100 MB at most (65,536 marks each would have been 1.5 GB).
const MAX_AHEAD: usize = 4096;
const MAX_MARKS: usize = 4096;

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
    /// Marks before this offset were dropped unread (more than [`MAX_MARKS`] waited): when
    /// those bytes came is unknown.
    dropped_to: u64,
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
        if self.marks.len() >= MAX_MARKS
            && let Some((dropped, _)) = self.marks.pop_front()
        {
            self.dropped_to = dropped;
        }
        self.marks.push_back((end, at));
    }

    /// The mark holding byte `offset`: `(end, at)`.
    pub(crate) fn mark(&self, offset: u64) -> Option<(u64, Instant)> {
        if offset < self.dropped_to {
            return None;
        }
        self.marks.iter().find(|&&(end, _)| end > offset).copied()
    }

    /// Where a read from `offset` may end: the end of the last mark, from the one holding it,
    /// that was in within `within` of that one (segments that came together are read together,
    /// each stamped at most `within` late).
    pub(crate) fn read_end(&self, offset: u64, within: Duration) -> Option<u64> {
        if offset < self.dropped_to {
            return None;
        }
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

    /// A server sending tiny segments to a reader that does not read: the map stays bounded,
    /// the oldest marks go (those reads fall back to the kernel's stamp), the newest stay.
    #[test]
    fn a_reader_that_stalls_keeps_a_bounded_map() {
        let base = t0();
        let mut flow = Flow::default();
        flow.syn_ack(0);
        for i in 0..100_000u32 {
            flow.segment(1 + i, 1, ms(base, u64::from(i)));
            flow.segment(1_000_000 + i, 1, ms(base, u64::from(i)));
        }
        assert!(flow.marks.len() <= super::MAX_MARKS, "{}", flow.marks.len());
        assert!(flow.ahead.len() <= super::MAX_AHEAD, "{}", flow.ahead.len());
        assert_eq!(flow.mark(0), None, "the oldest marks were dropped");
        assert_eq!(
            flow.read_end(0, Duration::ZERO),
            None,
            "so a read there is not cut"
        );
        assert_eq!(flow.mark(99_999), Some((100_000, ms(base, 99_999))));
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
