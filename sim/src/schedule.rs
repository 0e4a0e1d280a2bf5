//! What the simulator decides for one request, before anything is sent: a [`Reply`] (status,
//! headers, content type) and its body as [`Event`]s at exact offsets.

use std::time::Duration;

use bytes::Bytes;

/// One event of a reply body.
#[derive(Debug, Clone)]
pub enum Event {
    /// Bytes to send at the offset.
    Data(Bytes),
    /// Bytes to send at the offset and again every period after it, forever (a hostile server:
    /// the client has to stop reading).
    Repeat(Bytes, Duration),
    /// Drop the connection at the offset.
    Cut,
}

/// What the simulator answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    /// When the headers go out, after the request arrived.
    pub headers_at: Duration,
    /// Body events and their offsets after the request arrived, ascending.
    pub events: Vec<(Duration, Event)>,
}
