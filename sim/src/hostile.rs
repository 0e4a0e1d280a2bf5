//! Replies of a hostile or broken server, for testing that a client survives them: a stream
//! that never ends, a body that never ends, a line that never ends. Each sends the same 64 KiB
//! again and again (every `itl_ms`, at least 1 ms apart) until the client hangs up.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use crate::profile::{Fault, SimProfile};
use crate::schedule::{Event, Reply};
use crate::wire::Wire;

/// The text repeated in every piece.
const PIECE_BYTES: usize = 64 * 1024;

/// The size of the header [`Fault::HugeHeaders`] adds.
pub const HUGE_HEADER_BYTES: usize = 1024 * 1024;

/// The header [`Fault::HugeHeaders`] adds to an otherwise normal reply.
pub(crate) fn huge_header() -> (&'static str, String) {
    ("x-sim-padding", "a".repeat(HUGE_HEADER_BYTES))
}

pub(crate) fn reply(
    wire: Wire,
    fault: Fault,
    stream: bool,
    p: &SimProfile,
    request_id: &str,
) -> Reply {
    let text = "a".repeat(PIECE_BYTES);
    let period = Duration::from_secs_f64(p.itl_ms.max(1.0) / 1000.0);
    let ttft = Duration::from_secs_f64(p.ttft_ms / 1000.0);
    let (content_type, opening, piece) = match (fault, stream, wire) {
        // One line, forever: no newline ever comes.
        (Fault::LineWithoutEnd, true, Wire::Ollama) => (
            "application/x-ndjson",
            r#"{"message":{"role":"assistant","content":""#.to_string(),
            text,
        ),
        (Fault::LineWithoutEnd, true, _) => (
            "text/event-stream",
            r#"data: {"choices":[{"index":0,"delta":{"content":""#.to_string(),
            text,
        ),
        // Whole, well-formed chunks, forever.
        (_, true, Wire::OpenAi) => (
            "text/event-stream",
            String::new(),
            format!(
                "data: {}\n\n",
                json!({"id": request_id, "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
            ),
        ),
        (_, true, Wire::Anthropic) => (
            "text/event-stream",
            format!(
                "event: message_start\ndata: {}\n\n",
                json!({"type": "message_start", "message": {"id": request_id, "type": "message",
                       "role": "assistant", "content": [], "usage": {"input_tokens": 1, "output_tokens": 0}}})
            ),
            format!(
                "event: content_block_delta\ndata: {}\n\n",
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": text}})
            ),
        ),
        (_, true, Wire::Ollama) => (
            "application/x-ndjson",
            String::new(),
            format!(
                "{}\n",
                json!({"message": {"role": "assistant", "content": text}, "done": false})
            ),
        ),
        // A plain request: a JSON body that never closes.
        (_, false, _) => (
            "application/json",
            format!(
                r#"{{"id":"{request_id}","choices":[{{"index":0,"message":{{"role":"assistant","content":""#
            ),
            text,
        ),
    };
    let mut events = Vec::with_capacity(2);
    if !opening.is_empty() {
        events.push((ttft, Event::Data(Bytes::from(opening))));
    }
    events.push((ttft, Event::Repeat(Bytes::from(piece), period)));
    Reply {
        status: 200,
        headers: vec![("x-request-id", request_id.to_string())],
        content_type,
        headers_at: Duration::ZERO,
        events,
    }
}
