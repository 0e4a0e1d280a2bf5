//! Body streams as the readers need them: split into NDJSON lines, and cut at a byte bound.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use futures_util::StreamExt;

use super::transport::BodyError;

/// Splits a body into its non-empty lines (NDJSON). A last line without a newline counts; a
/// body error ends the stream after it is passed on.
pub(crate) fn ndjson_lines(
    body: impl futures_util::Stream<Item = Result<bytes::Bytes, BodyError>> + Send + Unpin,
) -> impl futures_util::Stream<Item = Result<String, BodyError>> + Send {
    futures_util::stream::unfold(
        (body, BytesMut::new(), false),
        |(mut body, mut buf, mut ended)| async move {
            loop {
                if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line = buf.split_to(pos + 1);
                    let text = String::from_utf8_lossy(&line[..pos]).trim().to_string();
                    if !text.is_empty() {
                        return Some((Ok(text), (body, buf, ended)));
                    }
                    continue;
                }
                if ended {
                    if buf.is_empty() {
                        return None;
                    }
                    let text = String::from_utf8_lossy(&buf).trim().to_string();
                    buf.clear();
                    if text.is_empty() {
                        return None;
                    }
                    return Some((Ok(text), (body, buf, true)));
                }
                match body.next().await {
                    Some(Ok(b)) => buf.extend_from_slice(&b),
                    Some(Err(e)) => {
                        buf.clear();
                        return Some((Err(e), (body, buf, true)));
                    }
                    None => ended = true,
                }
            }
        },
    )
}

/// Passes a body on until `max` bytes have come, then the part of the chunk that fits, then
/// one error, then nothing: whatever the server sends beyond `max` is never read. Sets
/// `tripped` when it cut.
pub(crate) fn bounded(
    body: impl futures_util::Stream<Item = Result<bytes::Bytes, BodyError>> + Send + Unpin,
    max: usize,
    tripped: Arc<std::sync::atomic::AtomicBool>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, BodyError>> + Send + Unpin {
    Box::pin(futures_util::stream::unfold(
        (body, 0usize, false),
        move |(mut body, seen, cut)| {
            let tripped = tripped.clone();
            async move {
                if cut {
                    return None;
                }
                match body.next().await? {
                    Ok(b) if seen + b.len() > max => {
                        tripped.store(true, Ordering::Relaxed);
                        let _ = b;
                        Some((
                            Err(BodyError(format!("the response passed {max} bytes"))),
                            (body, max, true),
                        ))
                    }
                    Ok(b) => {
                        let n = b.len();
                        Some((Ok(b), (body, seen + n, false)))
                    }
                    Err(e) => Some((Err(e), (body, seen, true))),
                }
            }
        },
    ))
}
