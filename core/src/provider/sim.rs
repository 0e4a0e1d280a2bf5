//! The simulator as a [`Transport`]: the reply is played straight into the client's stream
//! reader, with the same schedule and the same body bytes as over HTTP, but no socket.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use llmpulse_sim::{FAULT_HEADER, Fault, SimProfile, SimState, Wire, play};

use super::transport::{BodyError, HttpRequest, RawResponse, Transport, TransportError};

/// A simulated model, answering in-process.
#[derive(Debug, Clone)]
pub struct InProcess {
    state: Arc<SimState>,
}

impl InProcess {
    pub fn new(profile: SimProfile) -> Self {
        InProcess {
            state: Arc::new(SimState::new(profile, HashMap::new(), false)),
        }
    }
}

impl Transport for InProcess {
    fn send(&self, req: HttpRequest) -> BoxFuture<'_, Result<RawResponse, TransportError>> {
        Box::pin(async move {
            if req.method == http::Method::GET && req.path == "/ps" {
                let body = bytes::Bytes::from(self.state.ps().to_string());
                let mut headers = HeaderMap::new();
                headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                return Ok(RawResponse {
                    connect: None,
                    http_version: None,
                    peer: None,
                    clock: None,
                    status: 200,
                    headers,
                    body: Box::pin(futures_util::stream::once(async move { Ok(body) })),
                });
            }
            let forced = req
                .headers
                .get(FAULT_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(Fault::from_header);
            let wire = match req.path {
                "/messages" => Wire::Anthropic,
                "/chat" => Wire::Ollama,
                _ => Wire::OpenAi,
            };
            let (reply, entry) = self.state.plan(wire, &req.body, forced);
            let received = entry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .received
                .unwrap_or_else(std::time::Instant::now);
            tokio::time::sleep_until(tokio::time::Instant::from_std(received + reply.headers_at))
                .await;
            let mut headers = HeaderMap::new();
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static(reply.content_type),
            );
            for (k, v) in reply.headers {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    headers.insert(HeaderName::from_static(k), v);
                }
            }
            let body = play(reply.events, received, entry)
                .map(|r| r.map_err(|cut| BodyError(cut.to_string())));
            Ok(RawResponse {
                connect: None,
                http_version: None,
                peer: None,
                clock: None,
                status: reply.status,
                headers,
                body: Box::pin(body),
            })
        })
    }
}
