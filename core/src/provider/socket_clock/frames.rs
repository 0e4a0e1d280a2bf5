//! HTTP/2 on a stamped connection: which stream each frame belongs to, and when it came. The
//! connection's plaintext passes through a [`FrameLog`] both ways: a request's HEADERS frame
//! written stamps that stream's "sent", and each frame read takes the stamp of the read that
//! completed it (the kernel's, or the packet capture's). A call then reads its own stream's
//! stamps: the response's headers, and each DATA frame in the order h2 hands them up, so streams
//! multiplexed on one connection keep their own times. A frame that waited in TCP behind another
//! stream's frames arrived when it arrived: that wait is the network's, and counts.
//!
//! It also reads the server's SETTINGS for how many streams the connection takes at once, so a
//! burst of calls opens more connections instead of waiting for a stream.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

#[cfg(test)]
use crate::provider::transport::ClockSource;
use crate::provider::transport::Stamp;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;

/// The client's connection preface, before its first frame.
const PREFACE: usize = 24;

/// Stamps a stream keeps for DATA frames its call has not read yet; a server sending endless
/// empty frames to a stalled reader cannot grow it further (the oldest go, and the bytes they
/// covered fall back to the time they are read).
const MAX_FRAMES: usize = 4096;

/// Streams a connection keeps stamps for; past it the oldest (lowest id) goes. Far above what
/// servers allow at once (100 to 250 concurrent streams).
const MAX_STREAMS: usize = 4096;

/// A frame's 9-byte header: payload length, type, flags and stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

/// The largest SETTINGS payload read for its values: 6 bytes a setting, and HTTP/2 defines
/// seven; a larger one (legal, with unknown settings) is read up to here.
const MAX_SETTINGS: usize = 6 * 64;

/// Something a [`Frames`] reader saw pass: a frame's header complete, or its payload (`data`:
/// the DATA bytes h2 hands up, padding left out), or a SETTINGS frame (not an ACK) and the
/// limit of concurrent streams it set, if it set one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Begun(Head),
    Ended { head: Head, data: usize },
    Settings { max_streams: Option<u32> },
}

/// Reads frame headers out of one direction of an HTTP/2 byte stream, however the stream is cut
/// into reads or writes.
#[derive(Debug, Default)]
struct Frames {
    /// Bytes still to skip before the first frame (the client's preface).
    skip: usize,
    head: [u8; 9],
    have: usize,
    /// The frame whose payload is passing, and how much of it is left.
    current: Option<(Head, usize)>,
    /// A padded DATA frame's pad length, once its first payload byte passed.
    pad: Option<usize>,
    /// The payload of a SETTINGS frame passing, up to [`MAX_SETTINGS`].
    settings: Vec<u8>,
}

impl Frames {
    fn after(skip: usize) -> Self {
        Frames {
            skip,
            ..Frames::default()
        }
    }

    fn feed(&mut self, mut bytes: &[u8], mut seen: impl FnMut(Seen)) {
        let skipped = self.skip.min(bytes.len());
        self.skip -= skipped;
        bytes = &bytes[skipped..];
        while !bytes.is_empty() || matches!(self.current, Some((_, 0))) {
            let Some((head, left)) = self.current else {
                let take = (9 - self.have).min(bytes.len());
                self.head[self.have..self.have + take].copy_from_slice(&bytes[..take]);
                self.have += take;
                bytes = &bytes[take..];
                if self.have == 9 {
                    let h = &self.head;
                    let head = Head {
                        len: usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]),
                        kind: h[3],
                        flags: h[4],
                        stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                    };
                    self.have = 0;
                    self.pad = None;
                    self.current = Some((head, head.len));
                    seen(Seen::Begun(head));
                }
                continue;
            };
            let take = left.min(bytes.len());
            if take > 0 && left == head.len && head.kind == DATA && head.flags & PADDED != 0 {
                self.pad = Some(usize::from(bytes[0]));
            }
            let settings = head.kind == SETTINGS && head.stream == 0 && head.flags & ACK == 0;
            if settings {
                let room = MAX_SETTINGS - self.settings.len().min(MAX_SETTINGS);
                self.settings.extend_from_slice(&bytes[..take.min(room)]);
            }
            bytes = &bytes[take..];
            let left = left - take;
            if left > 0 {
                self.current = Some((head, left));
                continue;
            }
            self.current = None;
            let data = match (head.kind, self.pad) {
                (DATA, Some(pad)) => head.len.saturating_sub(1 + pad),
                (DATA, None) => head.len,
                _ => 0,
            };
            if settings {
                let max_streams = self
                    .settings
                    .chunks_exact(6)
                    .filter(|s| u16::from_be_bytes([s[0], s[1]]) == SETTINGS_MAX_CONCURRENT_STREAMS)
                    .map(|s| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
                    .next_back();
                self.settings.clear();
                seen(Seen::Settings { max_streams });
            }
            seen(Seen::Ended { head, data });
        }
    }
}

/// One stream's stamps, from the frames seen until its call has read them.
#[derive(Debug, Default)]
struct StreamTimes {
    /// When the request's HEADERS frame went out.
    written: Option<Stamp>,
    /// When the response's header block was complete.
    headers: Option<Stamp>,
    /// Per DATA frame: the stream offset its data ends at, and when its last byte came.
    data: VecDeque<(u64, Stamp)>,
    /// DATA bytes seen so far.
    arrived: u64,
    /// DATA bytes the call has read.
    read: u64,
    /// Offsets up to here lost their stamps to [`MAX_FRAMES`].
    dropped_to: u64,
}

#[derive(Debug)]
struct Log {
    incoming: Frames,
    outgoing: Frames,
    streams: BTreeMap<u32, StreamTimes>,
}

/// The frames of one HTTP/2 connection, both ways, the stamps of the streams on it, and how
/// many streams its server takes at once.
#[derive(Debug)]
pub(super) struct FrameLog {
    log: Mutex<Log>,
    /// `None` until the server's first SETTINGS; then its limit of concurrent streams, or
    /// `unsaid` while it has set none.
    max_streams: tokio::sync::watch::Sender<Option<usize>>,
    unsaid: usize,
}

impl FrameLog {
    /// `unsaid`: the streams the connection takes while its server has not set a limit (the
    /// number h2 was told to assume).
    pub(super) fn new(unsaid: usize) -> Self {
        FrameLog {
            log: Mutex::new(Log {
                incoming: Frames::default(),
                outgoing: Frames::after(PREFACE),
                streams: BTreeMap::new(),
            }),
            max_streams: tokio::sync::watch::Sender::new(None),
            unsaid,
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panic elsewhere while holding it leaves nothing half-written that matters here.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many streams the server takes at once; `None` before its first SETTINGS came.
    pub(super) fn max_streams(&self) -> Option<usize> {
        *self.max_streams.borrow()
    }

    /// Takes the server as having set no limit, as if its first SETTINGS had come without one
    /// (a server slow to send them is not waited on again).
    pub(super) fn settings_unsaid(&self) {
        self.max_streams.send_if_modified(|now| {
            let first = now.is_none();
            now.get_or_insert(self.unsaid);
            first
        });
    }

    /// Waits for the server's first SETTINGS.
    pub(super) async fn settings(&self) {
        let mut seen = self.max_streams.subscribe();
        let _ = seen.wait_for(Option::is_some).await;
    }

    /// The client wrote `bytes` at `at`: a request's HEADERS frame begun among them opens its
    /// stream's stamps.
    pub(super) fn wrote(&self, bytes: &[u8], at: Stamp) {
        let log = &mut *self.log();
        let streams = &mut log.streams;
        log.outgoing.feed(bytes, |seen| {
            if let Seen::Begun(head) = seen
                && head.kind == HEADERS
                && head.stream != 0
            {
                let times = open(streams, head.stream);
                times.written.get_or_insert(at);
            }
        });
    }

    /// The client read `bytes`, which the read stamped `at`: each frame they complete takes
    /// that time.
    pub(super) fn read(&self, bytes: &[u8], at: Stamp) {
        let log = &mut *self.log();
        let streams = &mut log.streams;
        log.incoming.feed(bytes, |seen| {
            if let Seen::Settings { max_streams } = seen {
                // A SETTINGS frame changes only the settings it names.
                self.max_streams.send_modify(|now| {
                    let said = max_streams.map(|n| n as usize);
                    *now = Some(said.or(*now).unwrap_or(self.unsaid));
                });
                return;
            }
            let Seen::Ended { head, data } = seen else {
                return;
            };
            let Some(times) = streams.get_mut(&head.stream) else {
                return;
            };
            match head.kind {
                HEADERS | CONTINUATION if head.flags & END_HEADERS != 0 => {
                    times.headers.get_or_insert(at);
                }
                DATA => {
                    times.arrived += data as u64;
                    if times.data.len() == MAX_FRAMES
                        && let Some((end, _)) = times.data.pop_front()
                    {
                        times.dropped_to = end;
                    }
                    times.data.push_back((times.arrived, at));
                }
                _ => {}
            }
        });
    }

    /// A call's stream: its stamps are kept from here until [`FrameLog::close`].
    pub(super) fn claim(&self, stream: u32) {
        open(&mut self.log().streams, stream);
    }

    pub(super) fn close(&self, stream: u32) {
        self.log().streams.remove(&stream);
    }

    /// When the stream's request went out and its response's headers came.
    pub(super) fn head(&self, stream: u32) -> (Option<Stamp>, Option<Stamp>) {
        self.log()
            .streams
            .get(&stream)
            .map_or((None, None), |t| (t.written, t.headers))
    }

    /// The call read the next `len` bytes of its stream's data: when the frame that brought the
    /// last of them came, if that is known.
    pub(super) fn take(&self, stream: u32, len: usize) -> Option<Stamp> {
        let mut log = self.log();
        let times = log.streams.get_mut(&stream)?;
        times.read += len as u64;
        let read = times.read;
        while times.data.front().is_some_and(|&(end, _)| end < read) {
            times.data.pop_front();
        }
        if read <= times.dropped_to {
            return None;
        }
        let &(end, at) = times.data.front()?;
        if end == read {
            times.data.pop_front();
        }
        Some(at)
    }
}

/// The stamps of `stream`, new if it had none; the oldest stream goes past [`MAX_STREAMS`].
fn open(streams: &mut BTreeMap<u32, StreamTimes>, stream: u32) -> &mut StreamTimes {
    if !streams.contains_key(&stream) && streams.len() >= MAX_STREAMS {
        streams.pop_first();
    }
    streams.entry(stream).or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn at(nanos: u64) -> Stamp {
        Stamp {
            nanos,
            source: ClockSource::Kernel,
        }
    }

    /// Frames cut anywhere between reads are seen whole, each once.
    #[test]
    fn frames_are_read_however_the_stream_is_cut() {
        let mut bytes = frame(HEADERS, END_HEADERS, 1, b"hpack");
        bytes.extend(frame(DATA, 0, 1, b"hello"));
        bytes.extend(frame(DATA, PADDED, 3, &[3, b'h', b'i', 0, 0, 0]));
        bytes.extend(frame(DATA, 0x1, 1, b""));
        for cut in [1, 2, 7, 9, 10, 64] {
            let mut frames = Frames::default();
            let mut ended = Vec::new();
            for piece in bytes.chunks(cut) {
                frames.feed(piece, |s| {
                    if let Seen::Ended { head, data } = s {
                        ended.push((head.kind, head.stream, data));
                    }
                });
            }
            assert_eq!(
                ended,
                [(HEADERS, 1, 0), (DATA, 1, 5), (DATA, 3, 2), (DATA, 1, 0)],
                "cut every {cut} bytes"
            );
        }
    }

    /// The server's SETTINGS say how many streams it takes: unknown before the first, the
    /// assumed number while none sets a limit, and a later frame's limit replaces the earlier.
    /// An ACK (the server agreeing to the client's settings) says nothing.
    #[test]
    fn settings_say_how_many_streams_the_server_takes() {
        let setting = |id: u16, value: u32| {
            let mut s = id.to_be_bytes().to_vec();
            s.extend(value.to_be_bytes());
            s
        };
        let log = FrameLog::new(100);
        assert_eq!(log.max_streams(), None);
        log.read(&frame(SETTINGS, ACK, 0, &[]), at(1));
        assert_eq!(
            log.max_streams(),
            None,
            "an ACK is not the server's settings"
        );
        // Initial window size only: no limit said.
        log.read(&frame(SETTINGS, 0, 0, &setting(0x4, 65535)), at(2));
        assert_eq!(log.max_streams(), Some(100));
        let mut both = setting(SETTINGS_MAX_CONCURRENT_STREAMS, 4);
        both.extend(setting(0x4, 65535));
        for cut in [1, 5, 9, 11] {
            let log = FrameLog::new(100);
            for piece in frame(SETTINGS, 0, 0, &both).chunks(cut) {
                log.read(piece, at(3));
            }
            assert_eq!(log.max_streams(), Some(4), "cut every {cut} bytes");
            log.read(&frame(SETTINGS, 0, 0, &setting(0x4, 1)), at(4));
            assert_eq!(
                log.max_streams(),
                Some(4),
                "unchanged by a frame without it"
            );
            log.read(
                &frame(SETTINGS, 0, 0, &setting(SETTINGS_MAX_CONCURRENT_STREAMS, 0)),
                at(5),
            );
            assert_eq!(log.max_streams(), Some(0));
        }
    }

    /// Two streams on one connection: each call gets the times of its own frames, in order,
    /// whichever stream's frames came between.
    #[test]
    fn each_stream_gets_its_own_frames_times() {
        let log = FrameLog::new(100);
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        out.extend(frame(0x4, 0, 0, &[])); // SETTINGS
        out.extend(frame(HEADERS, END_HEADERS, 1, b"request one"));
        log.wrote(&out, at(10));
        log.wrote(&frame(HEADERS, END_HEADERS, 3, b"request two"), at(11));
        log.claim(1);
        log.claim(3);
        log.read(&frame(0x4, 0, 0, &[]), at(20));
        log.read(&frame(HEADERS, END_HEADERS, 3, b"200"), at(30));
        let mut both = frame(HEADERS, END_HEADERS, 1, b"200");
        both.extend(frame(DATA, 0, 1, b"first"));
        log.read(&both, at(40));
        log.read(&frame(DATA, 0, 3, b"other"), at(50));
        log.read(&frame(DATA, 0, 1, b"second"), at(60));
        assert_eq!(log.head(1), (Some(at(10)), Some(at(40))));
        assert_eq!(log.head(3), (Some(at(11)), Some(at(30))));
        assert_eq!(log.take(1, 5), Some(at(40)));
        assert_eq!(log.take(3, 5), Some(at(50)));
        assert_eq!(log.take(1, 6), Some(at(60)));
        assert_eq!(log.take(1, 1), None, "nothing more came");
        log.close(1);
        assert_eq!(log.head(1), (None, None));
    }

    /// A header block split over CONTINUATION frames is complete with the last of them.
    #[test]
    fn headers_end_with_their_last_continuation() {
        let log = FrameLog::new(100);
        log.claim(1);
        log.read(&frame(HEADERS, 0, 1, b"part"), at(1));
        assert_eq!(log.head(1).1, None);
        log.read(&frame(CONTINUATION, END_HEADERS, 1, b"rest"), at(2));
        assert_eq!(log.head(1).1, Some(at(2)));
    }

    /// A stalled reader facing endless frames keeps at most MAX_FRAMES stamps; the bytes whose
    /// stamps went have none (never a later frame's), and the rest keep theirs.
    #[test]
    fn a_stalled_stream_keeps_a_bounded_list() {
        let log = FrameLog::new(100);
        log.claim(1);
        for i in 0..MAX_FRAMES as u64 + 10 {
            log.read(&frame(DATA, 0, 1, b"x"), at(i));
        }
        assert_eq!(log.log().streams[&1].data.len(), MAX_FRAMES);
        assert_eq!(log.take(1, 1), None, "its stamp was dropped");
        assert_eq!(log.take(1, 9), None);
        assert_eq!(log.take(1, 1), Some(at(10)));
    }

    /// Frames of a stream nobody claimed (a call that gave up) are not kept, and the streams
    /// kept are bounded.
    #[test]
    fn streams_are_kept_only_while_claimed_and_bounded() {
        let log = FrameLog::new(100);
        log.read(&frame(DATA, 0, 5, b"late"), at(1));
        assert!(log.log().streams.is_empty());
        for id in 0..MAX_STREAMS as u32 + 3 {
            log.claim(2 * id + 1);
        }
        let streams = &log.log().streams;
        assert_eq!(streams.len(), MAX_STREAMS);
        assert!(!streams.contains_key(&1), "the oldest went first");
    }
}
