//! Elsewhere than Linux there are no packet sockets: the packet clock says so, and its targets
//! keep the clock the platform has.

use std::io;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::flow::Segment;

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
