//! The simulator over HTTP (`llmpulse sim`): `POST /v1/chat/completions`, `GET /v1/models`,
//! `GET /sim/log` (the request log, with send times) and `GET /health`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use futures_util::StreamExt;
use tokio::net::TcpListener;

use super::{FAULT_HEADER, Fault, SimState, Wire, play};

/// Builds the router over a shared simulator state.
pub fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route("/v1/messages", post(messages))
        .route("/api/chat", post(ollama_chat))
        .route("/api/ps", get(ollama_ps))
        .route("/v1/models", get(models))
        .route("/sim/log", get(log))
        .route("/health", get(|| async { "ok" }))
        .with_state(state)
}

/// Serves the simulator on `listener` until the task is dropped. Every connection gets
/// `TCP_NODELAY`: with Nagle's algorithm on, a small chunk written right after another waits for
/// the peer's delayed ACK (up to 40 ms), which would make the simulator's timings a lie.
pub async fn serve(listener: TcpListener, state: Arc<SimState>) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router(state)).await
}

/// Binds `addr` (port 0 for any free port) and serves in a background task. Returns the bound
/// address; the server stops when the runtime does.
pub async fn spawn(addr: SocketAddr, state: Arc<SimState>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, state));
    Ok(bound)
}

async fn chat(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(state, Wire::OpenAi, headers, body).await
}

async fn messages(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(state, Wire::Anthropic, headers, body).await
}

async fn ollama_chat(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(state, Wire::Ollama, headers, body).await
}

async fn answer(state: Arc<SimState>, wire: Wire, headers: HeaderMap, body: Bytes) -> Response {
    let forced = headers
        .get(FAULT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(Fault::from_header);
    let (reply, entry) = state.plan(wire, &body, forced);
    let received = entry
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .received
        .unwrap_or_else(std::time::Instant::now);
    let wait = reply.headers_at.saturating_sub(received.elapsed());
    if wait > Duration::ZERO {
        tokio::time::sleep(wait).await;
    }
    entry.lock().unwrap_or_else(|e| e.into_inner()).headers_ms =
        Some(received.elapsed().as_secs_f64() * 1000.0);
    let stream = play(reply.events, received, entry)
        .map(|r| r.map_err(|cut| std::io::Error::new(std::io::ErrorKind::ConnectionAborted, cut)));
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, reply.content_type)
        .header(header::CACHE_CONTROL, "no-cache");
    for (k, v) in reply.headers {
        builder = builder.header(k, v);
    }
    builder
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}

async fn ollama_ps(State(state): State<Arc<SimState>>) -> impl IntoResponse {
    axum::Json(state.ps())
}

async fn models(State(state): State<Arc<SimState>>) -> impl IntoResponse {
    let mut names = state.model_names();
    if names.is_empty() {
        names.push("sim".into());
    }
    let data: Vec<_> = names
        .into_iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "owned_by": "llmpulse-sim"}))
        .collect();
    axum::Json(serde_json::json!({"object": "list", "data": data}))
}

async fn log(State(state): State<Arc<SimState>>) -> impl IntoResponse {
    axum::Json(state.log())
}
