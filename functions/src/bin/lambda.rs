//! The AWS Lambda function: an EventBridge Scheduler (or classic scheduled-event) payload in,
//! one job run, a JSON summary out. The Lambda's own deadline bounds the run, and the slot
//! claim makes Lambda's at-least-once delivery harmless.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use llmpulse_functions::{Invocation, RunRequest, RunSummary, environment, handle, init_logs};
use serde_json::Value;

async fn invocation(event: LambdaEvent<Value>) -> Result<RunSummary, Error> {
    let env = environment().await?;
    let spec = env
        .get("LLMPULSE_CONFIG")
        .cloned()
        .ok_or("LLMPULSE_CONFIG is not set: a file path, an s3:// object, or the TOML itself")?;
    let req = RunRequest::from_event(&event.payload)?;
    // The context's deadline is in milliseconds since the epoch.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
    let region = env
        .get("AWS_REGION")
        .cloned()
        .unwrap_or_else(|| "unknown".into());
    let inv = Invocation {
        origin: format!("lambda:{region}"),
        deadline: Some(Instant::now() + left),
        now: chrono::Utc::now(),
        env,
        // The invocation's deadline bounds the run; Lambda sends no SIGTERM to a handler.
        stop: None,
    };
    tracing::info!(request_id = %event.context.request_id, left_ms = left.as_millis() as u64, ?req, "invocation");
    let summary = handle(&spec, req, inv).await.map_err(|e| {
        tracing::error!(error = %e, "the run could not happen");
        Error::from(e.to_string())
    })?;
    tracing::info!(outcome = %summary.outcome, run_id = ?summary.run_id, records = summary.records, "done");
    Ok(summary)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logs(false);
    lambda_runtime::run(service_fn(invocation)).await
}
