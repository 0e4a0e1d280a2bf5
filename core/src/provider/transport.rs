//! The bytes layer: a [`Transport`] moves an [`HttpRequest`] to a target and hands back a
//! [`RawResponse`] whose body arrives as a stream. Implemented over HTTP (`http`) and by the
//! in-process simulator (`sim`).

use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use futures_util::future::BoxFuture;
use reqwest::header::HeaderMap;

/// A request ready to go: a method, a path under the target's base URL, headers (auth values
/// marked sensitive, so `Debug` hides them) and a JSON body (empty for a GET).
pub struct HttpRequest {
    pub method: ::http::Method,
    pub path: &'static str,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A body chunk could not be read (connection reset, cut, decode error).
#[derive(Debug, Clone)]
pub struct BodyError(pub String);

/// A response body as it arrives.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// Status, headers and a body stream.
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: BodyStream,
    /// Over HTTP: `Some(Some(d))` when the request opened a connection that took `d` to set
    /// up, `Some(None)` when it reused one; `None` where there are no connections (the
    /// in-process simulator).
    pub connect: Option<Option<std::time::Duration>>,
}

/// Why a request got no response at all.
#[derive(Debug, Clone)]
pub enum TransportError {
    Connect(String),
    ConnectTimeout,
    Timeout,
    Request(String),
}

/// Moves a request to a target and hands back the response as it arrives.
pub trait Transport: Send + Sync {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<RawResponse, TransportError>>;
}
