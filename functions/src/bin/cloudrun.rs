//! The Google Cloud Run entry point, in two modes from one image:
//!
//! * **service**: `POST /run` for Cloud Scheduler. Only callers with a valid Google OIDC ID
//!   token get a run (see `oidc`); anyone else gets 401 and nothing runs. `GET /healthz` for
//!   probes.
//! * **job** (when `CLOUD_RUN_TASK_INDEX` is set): runs shard `TASK_INDEX/TASK_COUNT` of the due
//!   slot and exits; the tasks of one execution make one run.
//!
//! Logs are JSON in Cloud Logging's shape.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use llmpulse_functions::oidc::Verifier;
use llmpulse_functions::{Invocation, RunRequest, environment, handle, init_logs, stop_on_sigterm};

struct App {
    verifier: Verifier,
    config: String,
    /// Requested by SIGTERM: the run in flight stops and is published as partial.
    stop: llmpulse_core::runner::Stop,
}

fn deadline(env: &std::collections::HashMap<String, String>) -> Option<Instant> {
    env.get("LLMPULSE_DEADLINE")
        .and_then(|d| humantime::parse_duration(d).ok())
        .map(|d| Instant::now() + d)
}

fn origin(env: &std::collections::HashMap<String, String>) -> String {
    let service = env
        .get("K_SERVICE")
        .or_else(|| env.get("CLOUD_RUN_JOB"))
        .cloned()
        .unwrap_or_else(|| "local".into());
    let region = env
        .get("LLMPULSE_REGION")
        .cloned()
        .unwrap_or_else(|| "unknown".into());
    format!("cloudrun:{region}:{service}")
}

async fn run(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = match app.verifier.verify(auth).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "rejected an unauthenticated call");
            return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
        }
    };
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body)
            .map_err(|e| e.to_string())
            .and_then(|v| RunRequest::from_event(&v))
        {
            Ok(r) => r,
            Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
        }
    };
    let env = match environment().await {
        Ok(e) => e,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    };
    tracing::info!(caller = ?claims.email, ?req, "run requested");
    let inv = Invocation {
        origin: origin(&env),
        deadline: deadline(&env),
        now: chrono::Utc::now(),
        env,
        stop: Some(app.stop.clone()),
    };
    match handle(&app.config, req, inv).await {
        Ok(summary) => {
            tracing::info!(outcome = %summary.outcome, run_id = ?summary.run_id, records = summary.records, "done");
            Json(summary).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "the run could not happen");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

async fn job(config: String, env: std::collections::HashMap<String, String>) -> ExitCode {
    let index: u32 = env
        .get("CLOUD_RUN_TASK_INDEX")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let count: u32 = env
        .get("CLOUD_RUN_TASK_COUNT")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let req = RunRequest {
        slot: env
            .get("LLMPULSE_SLOT")
            .map(|s| serde_json::Value::String(s.clone())),
        shard: (count > 1).then(|| format!("{index}/{count}")),
        ..RunRequest::default()
    };
    let inv = Invocation {
        origin: origin(&env),
        deadline: deadline(&env),
        now: chrono::Utc::now(),
        env,
        stop: Some(stop_on_sigterm()),
    };
    match handle(&config, req, inv).await {
        Ok(summary) => {
            tracing::info!(outcome = %summary.outcome, run_id = ?summary.run_id, records = summary.records, task = index, "done");
            println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, task = index, "the run could not happen");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logs(true);
    let env = match environment().await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the secrets");
            return ExitCode::FAILURE;
        }
    };
    let Some(config) = env.get("LLMPULSE_CONFIG").cloned() else {
        tracing::error!(
            "LLMPULSE_CONFIG is not set: a file path, a gs:// object, or the TOML itself"
        );
        return ExitCode::FAILURE;
    };
    if env.contains_key("CLOUD_RUN_TASK_INDEX") {
        return job(config, env).await;
    }
    let verifier = match Verifier::from_env(&env) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "refusing to start");
            return ExitCode::FAILURE;
        }
    };
    let port: u16 = env.get("PORT").and_then(|p| p.parse().ok()).unwrap_or(8080);
    let host = env
        .get("LLMPULSE_HOST")
        .cloned()
        .unwrap_or_else(|| "0.0.0.0".into());
    let addr: SocketAddr = match format!("{host}:{port}").parse() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "bad listen address");
            return ExitCode::FAILURE;
        }
    };
    let app = Arc::new(App {
        verifier,
        config,
        stop: stop_on_sigterm(),
    });
    let app_stop = app.stop.clone();
    let router = Router::new()
        .route("/run", post(run))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(app);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, %addr, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%addr, "llmpulse Cloud Run service ready");
    // SIGTERM: stop taking requests, let the run in flight stop and publish, then exit.
    let stop = app_stop;
    let shutdown = async move { stop.wait_requested().await };
    match axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
