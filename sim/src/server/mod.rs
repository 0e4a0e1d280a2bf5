//! The simulator over HTTP (`llmpulse sim`): `POST /v1/chat/completions`, `GET /v1/models`,
//! `GET /sim/log` (the request log, with send times) and `GET /health`; with a [`ServerKind`],
//! that server's discovery endpoints too (bodies from [`crate::discovery`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
#[cfg(not(unix))]
use axum::serve::ListenerExt;
use futures_util::StreamExt;
use tokio::net::TcpListener;

use super::{FAULT_HEADER, Fault, ServerKind, SimState, Wire, discovery, play};

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
        .route("/health", get(health))
        .route("/api/version", get(discover))
        .route("/api/tags", get(discover))
        .route("/api/show", post(ollama_show))
        .route("/api/generate", post(ollama_generate))
        .route("/api/v1/models/load", post(lmstudio_load))
        .route("/api/v1/models/unload", post(lmstudio_unload))
        .route("/api/v0/models", get(discover))
        .route("/api/v1/models", get(discover))
        .route("/version", get(discover))
        .route("/props", get(discover))
        .route("/slots", get(discover))
        .route("/metrics", get(metrics))
        .route("/models", get(discover))
        .route("/state", get(discover))
        .with_state(state)
}

/// Serves the simulator on `listener` until the task is dropped. Every connection gets
/// `TCP_NODELAY`: with Nagle's algorithm on, a small chunk written right after another waits for
/// the peer's delayed ACK (up to 40 ms), which would make the simulator's timings a lie. On Unix
/// each connection's reads are stamped ([`arrival`]): a request's schedule and its log run from
/// when its bytes reached the machine (the kernel's receive time on Linux), however long the
/// handler took to get to it.
pub async fn serve(listener: TcpListener, state: Arc<SimState>) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        // Switches the kernel's stamping on before the first connection (see `rx_stamp`).
        let _ = tokio::task::spawn_blocking(crate::rx_stamp::available).await;
        let app = router(state).into_make_service_with_connect_info::<arrival::Arrivals>();
        axum::serve(arrival::StampedListener(listener), app).await
    }
    #[cfg(not(unix))]
    {
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!("cannot set TCP_NODELAY: {e}");
            }
        });
        axum::serve(listener, router(state)).await
    }
}

/// Serves the simulator over https on `listener`: TLS over the stamped connections, each
/// handshake in its own task after `tls.handshake_delay`.
#[cfg(unix)]
pub async fn serve_tls(
    listener: TcpListener,
    state: Arc<SimState>,
    tls: Tls,
) -> std::io::Result<()> {
    let _ = tokio::task::spawn_blocking(crate::rx_stamp::available).await;
    let app = router(state).into_make_service_with_connect_info::<arrival::Arrivals>();
    let listener = tls::TlsListener::new(arrival::StampedListener(listener), tls);
    axum::serve(listener, app).await
}

/// Binds `addr` and serves https in a background task, as [`spawn`] does http.
#[cfg(unix)]
pub async fn spawn_tls(
    addr: SocketAddr,
    state: Arc<SimState>,
    tls: Tls,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve_tls(listener, state, tls));
    Ok(bound)
}

/// Binds `addr` (port 0 for any free port) and serves in a background task. Returns the bound
/// address; the server stops when the runtime does.
pub async fn spawn(addr: SocketAddr, state: Arc<SimState>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(serve(listener, state));
    Ok(bound)
}

async fn chat(
    State(state): State<Arc<SimState>>,
    ext: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(state, Wire::OpenAi, &ext, headers, body).await
}

async fn messages(
    State(state): State<Arc<SimState>>,
    ext: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(state, Wire::Anthropic, &ext, headers, body).await
}

async fn ollama_chat(
    State(state): State<Arc<SimState>>,
    ext: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(state, Wire::Ollama, &ext, headers, body).await
}

/// When the request being handled reached the machine: its connection's latest read, now when
/// the connection is not stamped.
fn received(ext: &Extensions) -> std::time::Instant {
    let now = std::time::Instant::now();
    #[cfg(unix)]
    if let Some(axum::extract::ConnectInfo(a)) =
        ext.get::<axum::extract::ConnectInfo<arrival::Arrivals>>()
    {
        return a.latest().filter(|at| *at <= now).unwrap_or(now);
    }
    let _ = ext;
    now
}

async fn answer(
    state: Arc<SimState>,
    wire: Wire,
    ext: &Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let forced = headers
        .get(FAULT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(Fault::from_header);
    let (reply, entry) = state.plan_at(wire, &body, forced, received(ext));
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
    if state.kind() == Some(ServerKind::Ollama) {
        return axum::Json(state.with_catalog(discovery::ollama_ps));
    }
    axum::Json(state.ps())
}

async fn health(State(state): State<Arc<SimState>>) -> Response {
    match state.kind() {
        Some(ServerKind::LlamaCpp) => {
            axum::Json(serde_json::json!({"status": "ok"})).into_response()
        }
        _ => "ok".into_response(),
    }
}

/// A discovery endpoint: the body the simulated server kind gives for `uri`, or 404 when that
/// kind has no such endpoint (so probing tells the kinds apart, as with real servers).
async fn discover(State(state): State<Arc<SimState>>, uri: axum::http::Uri) -> Response {
    use ServerKind::*;
    let kind = state.kind();
    let body = state.with_catalog(|models| match (kind, uri.path()) {
        (Some(Ollama), "/api/version") => Some(serde_json::json!({"version": Ollama.version()})),
        (Some(Ollama), "/api/tags") => Some(discovery::ollama_tags(models)),
        (Some(LmStudio), "/api/v0/models") => Some(discovery::lmstudio_v0(models)),
        (Some(LmStudio), "/api/v1/models") => Some(discovery::lmstudio_v1(models)),
        (Some(Vllm), "/version") => Some(serde_json::json!({"version": Vllm.version()})),
        (Some(LlamaCpp), "/props") => Some(discovery::llamacpp_props(models)),
        (Some(LlamaCpp), "/slots") => Some(discovery::llamacpp_slots(models)),
        (Some(Exo), "/models") => Some(discovery::exo_models(models)),
        (Some(Exo), "/state") => Some(discovery::exo_state(models)),
        _ => None,
    });
    match body {
        Some(b) => axum::Json(b).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn ollama_show(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    if state.kind() != Some(ServerKind::Ollama) {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let name = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("model")
                .or_else(|| v.get("name"))
                .and_then(|n| n.as_str().map(str::to_string))
        })
        .unwrap_or_default();
    match state.with_catalog(|m| discovery::ollama_show(m, &name)) {
        Some(b) => axum::Json(b).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": format!("model '{name}' not found")})),
        )
            .into_response(),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

fn json_field(body: &[u8], field: &str) -> Option<serde_json::Value> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get(field)
        .cloned()
}

/// Ollama's `POST /api/generate` as model managers use it: without a prompt it loads the model,
/// with `keep_alive: 0` it unloads it. (Generation itself is asked through `/api/chat`.)
async fn ollama_generate(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    if !matches!(state.kind(), None | Some(ServerKind::Ollama)) {
        return not_found();
    }
    let model = json_field(&body, "model")
        .and_then(|m| m.as_str().map(str::to_string))
        .unwrap_or_default();
    let unload = match json_field(&body, "keep_alive") {
        Some(serde_json::Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(serde_json::Value::String(s)) => matches!(s.as_str(), "0" | "0s" | "0m"),
        _ => false,
    };
    let prompt = json_field(&body, "prompt")
        .and_then(|p| p.as_str().map(str::to_string))
        .unwrap_or_default();
    let error = |status: StatusCode, m: String| {
        (status, axum::Json(serde_json::json!({ "error": m }))).into_response()
    };
    if !state.has_model(&model) {
        return error(StatusCode::NOT_FOUND, format!("model '{model}' not found"));
    }
    let done = |reason: &str, load: Option<Duration>| {
        let mut v = serde_json::json!({
            "model": model, "created_at": "2026-01-01T00:00:00Z", "response": "",
            "done": true, "done_reason": reason,
        });
        if let Some(d) = load {
            v["load_duration"] = serde_json::json!(d.as_nanos() as u64);
        }
        axum::Json(v).into_response()
    };
    if unload {
        state.unload(&model);
        done("unload", None)
    } else if prompt.is_empty() {
        let took = state.load(&model).await;
        done("load", took)
    } else {
        error(
            StatusCode::BAD_REQUEST,
            "the simulator generates through /api/chat only".into(),
        )
    }
}

/// LM Studio's `POST /api/v1/models/load`.
async fn lmstudio_load(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    if state.kind() != Some(ServerKind::LmStudio) {
        return not_found();
    }
    let model = json_field(&body, "model")
        .and_then(|m| m.as_str().map(str::to_string))
        .unwrap_or_default();
    match state.load(&model).await {
        Some(took) => axum::Json(serde_json::json!({
            "type": "llm", "instance_id": model,
            "load_time_seconds": took.as_secs_f64(), "status": "loaded",
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": format!("model '{model}' not found")})),
        )
            .into_response(),
    }
}

/// LM Studio's `POST /api/v1/models/unload`.
async fn lmstudio_unload(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    if state.kind() != Some(ServerKind::LmStudio) {
        return not_found();
    }
    let id = json_field(&body, "instance_id")
        .and_then(|m| m.as_str().map(str::to_string))
        .unwrap_or_default();
    if state.unload(&id) {
        axum::Json(serde_json::json!({ "instance_id": id })).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": format!("no loaded instance '{id}'")})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<Arc<SimState>>) -> Response {
    match state.kind() {
        Some(k @ (ServerKind::Vllm | ServerKind::LlamaCpp)) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            discovery::metrics(k, state.requests()),
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn models(State(state): State<Arc<SimState>>) -> impl IntoResponse {
    match state.kind() {
        Some(ServerKind::Vllm) => return axum::Json(state.with_catalog(discovery::vllm_models)),
        Some(ServerKind::LlamaCpp) => {
            return axum::Json(state.with_catalog(discovery::llamacpp_models));
        }
        _ => {}
    }
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

#[cfg(unix)]
mod arrival;
#[cfg(unix)]
mod tls;
#[cfg(unix)]
pub use tls::{Tls, tls_config};
