//! Cloud entry points over `llmpulse-core`: what a scheduled invocation asks for
//! ([`RunRequest`]), where the config comes from ([`load_config`]), secrets, and the one handler
//! both the Lambda and the Cloud Run binaries call ([`handle`]). The binaries only adapt their
//! platform's event, deadline and response to it.

pub mod logs;
pub mod oidc;

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use llmpulse_core::config::Config;
use llmpulse_core::job::{self, JobOutcome, JobRequest, SlotChoice};
use llmpulse_core::publish::Publication;
use llmpulse_core::runner::Stop;
use llmpulse_core::sink::Count;
use llmpulse_core::store;
use serde::{Deserialize, Serialize};

/// What one invocation asks for. Every field is optional: an empty payload runs the due slot
/// of the configured campaign (or a plain run without one).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunRequest {
    /// `"auto"` (default when the config has a campaign), a slot number, or `"none"`.
    pub slot: Option<serde_json::Value>,
    /// Re-run the slot if its claim is dead.
    pub reclaim: bool,
    /// Only these targets.
    pub targets: Vec<String>,
    /// `i/n`: run one shard.
    pub shard: Option<String>,
    /// Override the config's output location.
    pub output: Option<String>,
}

impl RunRequest {
    /// Reads an invocation payload: a request as above, or EventBridge's classic scheduled
    /// event envelope (`detail-type`, `detail`), whose `detail` is the request.
    pub fn from_event(event: &serde_json::Value) -> Result<RunRequest, String> {
        let body = match (event.get("detail-type"), event.get("detail")) {
            (Some(_), Some(detail)) => detail.clone(),
            (Some(_), None) => serde_json::Value::Object(Default::default()),
            _ => event.clone(),
        };
        let body = if body.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            body
        };
        serde_json::from_value(body).map_err(|e| format!("bad run request: {e}"))
    }

    fn slot_choice(&self, has_campaign: bool) -> Result<SlotChoice, String> {
        match &self.slot {
            None if has_campaign => Ok(SlotChoice::Auto),
            None => Ok(SlotChoice::None),
            Some(serde_json::Value::String(s)) if s == "auto" => Ok(SlotChoice::Auto),
            Some(serde_json::Value::String(s)) if s == "none" => Ok(SlotChoice::None),
            Some(serde_json::Value::String(s)) => s
                .parse()
                .map(SlotChoice::Index)
                .map_err(|_| format!("slot '{s}': give a number, \"auto\" or \"none\"")),
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .map(SlotChoice::Index)
                .ok_or_else(|| format!("slot {n}: not a slot number")),
            Some(other) => Err(format!("slot {other}: give a number, \"auto\" or \"none\"")),
        }
    }
}

/// What an invocation did, as the function's response and its last log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// `ran`, `already_claimed`, `nothing_due`.
    pub outcome: String,
    pub campaign: Option<String>,
    pub slot: Option<u64>,
    pub run_id: Option<String>,
    pub records: usize,
    pub successes: usize,
    /// Where the manifest is, or the spool directory when the store refused the run.
    pub location: Option<String>,
    pub spooled: bool,
    pub message: String,
    /// What `[campaign] watch_after_run` and `publish_report` did after the slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<llmpulse_report::after_run::AfterSlot>,
}

#[derive(Debug, thiserror::Error)]
pub enum FnError {
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Config(#[from] llmpulse_core::config::ConfigError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Job(#[from] job::JobError),
}

/// Where the function is, for every record's `origin`.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub origin: String,
    pub deadline: Option<Instant>,
    pub now: DateTime<Utc>,
    /// Environment variables plus secrets: what `${VAR}` and `api_key_env` resolve against.
    pub env: HashMap<String, String>,
    /// Asks the run to stop early (SIGTERM on Cloud Run), if anything can.
    pub stop: Option<Stop>,
}

/// A stop that SIGTERM requests. Cloud Run sends SIGTERM 10 s before it kills an instance: a
/// run in flight then starts no new call, gives the calls in flight 5 s, and is published as
/// partial (`complete = false`) with a record for every planned call.
pub fn stop_on_sigterm() -> Stop {
    let stop = Stop::new(std::time::Duration::from_secs(5));
    #[cfg(unix)]
    {
        let s = stop.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                term.recv().await;
                tracing::warn!("SIGTERM: stopping the run in flight, publishing it as partial");
                s.request();
            }
        });
    }
    stop
}

/// Reads the config named by `LLMPULSE_CONFIG`: a file path, an `s3://`/`gs://` object, or the
/// TOML itself.
pub async fn load_config(spec: &str, env: &HashMap<String, String>) -> Result<Config, FnError> {
    let lookup = |k: &str| env.get(k).cloned();
    if spec.starts_with("s3://") || spec.starts_with("gs://") {
        let (bucket_part, key) = match spec.split_once("://").and_then(|(scheme, rest)| {
            rest.split_once('/')
                .map(|(b, k)| (format!("{scheme}://{b}"), k.to_string()))
        }) {
            Some(x) => x,
            None => {
                return Err(FnError::Request(format!(
                    "'{spec}': name an object, e.g. s3://bucket/llmpulse.toml"
                )));
            }
        };
        let s = store::open(&bucket_part, &lookup).await?;
        let bytes = s
            .get(&key)
            .await?
            .ok_or_else(|| FnError::Request(format!("{spec}: no such object")))?;
        let text = String::from_utf8_lossy(&bytes);
        return Ok(Config::parse(&text, spec, ".".into(), &lookup)?);
    }
    let path = std::path::Path::new(spec);
    if !spec.contains('\n') && path.is_file() {
        return Ok(Config::load(path, &lookup)?);
    }
    if spec.contains('=') {
        return Ok(Config::parse(spec, "LLMPULSE_CONFIG", ".".into(), &lookup)?);
    }
    Err(FnError::Request(format!(
        "LLMPULSE_CONFIG '{spec}' is neither a file, an s3:// or gs:// object, nor TOML"
    )))
}

/// Runs one invocation: the config, the request, the job. A provider's failures are records;
/// only a run that could not happen is an error.
pub async fn handle(
    config_spec: &str,
    req: RunRequest,
    inv: Invocation,
) -> Result<RunSummary, FnError> {
    let config = load_config(config_spec, &inv.env).await?;
    let slot = req
        .slot_choice(config.campaign.is_some())
        .map_err(FnError::Request)?;
    let campaign = config.campaign.as_ref().map(|c| c.name.clone());
    // Kept for what the campaign asks after the slot (watch, the dashboard).
    let after = llmpulse_report::after_run::wanted(&config).then(|| config.clone());
    let request = JobRequest {
        targets: req.targets.clone(),
        output: req.output.clone(),
        shard: req.shard.clone(),
        slot,
        reclaim: req.reclaim,
        deadline: inv.deadline,
        stop: inv.stop.clone(),
        ..JobRequest::new(
            inv.origin.clone(),
            std::env::temp_dir().join("llmpulse-spool"),
            inv.now,
        )
    };
    let job = request.prepare(config)?;
    let lookup = |k: &str| inv.env.get(k).cloned();
    // No progress display in a function: the summary and the logs say how it went.
    Ok(
        match job::run_job(job, &lookup, &mut Count::default()).await? {
            JobOutcome::Ran {
                manifest,
                publication,
                ..
            } => {
                let spooled = matches!(publication, Publication::Spooled { .. });
                let after = match (&after, &publication) {
                    (Some(config), Publication::Stored { location, .. }) => Some(
                        llmpulse_report::after_run::after_slot(config, location, &lookup, inv.now)
                            .await,
                    ),
                    _ => None,
                };
                let message = match &publication {
                    Publication::Stored { .. } => "run stored".to_string(),
                    Publication::Spooled { error, .. } => {
                        format!("the store refused the run ({error}); it is kept in the spool")
                    }
                };
                RunSummary {
                    outcome: "ran".into(),
                    campaign: manifest.campaign.clone(),
                    slot: manifest.slot,
                    run_id: Some(manifest.run_id.clone()),
                    records: manifest.records,
                    successes: manifest.successes,
                    location: Some(publication.describe()),
                    spooled,
                    message,
                    after,
                }
            }
            JobOutcome::AlreadyClaimed { slot, claim } => RunSummary {
                outcome: "already_claimed".into(),
                campaign,
                slot: Some(slot.index),
                run_id: claim.as_ref().map(|c| c.run_id.clone()),
                records: 0,
                successes: 0,
                location: None,
                spooled: false,
                message: format!("slot {} already claimed: nothing to do", slot.index),
                after: None,
            },
            JobOutcome::NothingDue { reason } => RunSummary {
                outcome: "nothing_due".into(),
                campaign,
                slot: None,
                run_id: None,
                records: 0,
                successes: 0,
                location: None,
                spooled: false,
                message: reason,
                after: None,
            },
        },
    )
}

/// The process environment, plus the key-value pairs of a JSON secret: read from AWS Secrets
/// Manager when `LLMPULSE_SECRET_ID` names one (the Lambda), or taken from `LLMPULSE_SECRETS`
/// (Cloud Run maps a Secret Manager secret to an environment variable). Secrets never override
/// an existing variable, and their values are never logged.
pub async fn environment() -> Result<HashMap<String, String>, String> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    let mut add = |json: &str, from: &str| -> Result<(), String> {
        match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::Object(map)) => {
                for (k, v) in map {
                    if let serde_json::Value::String(v) = v {
                        env.entry(k).or_insert(v);
                    }
                }
                Ok(())
            }
            _ => Err(format!("{from} is not a JSON object of names to values")),
        }
    };
    if let Some(json) = std::env::var("LLMPULSE_SECRETS")
        .ok()
        .filter(|s| !s.is_empty())
    {
        add(&json, "LLMPULSE_SECRETS")?;
    }
    if let Some(id) = std::env::var("LLMPULSE_SECRET_ID")
        .ok()
        .filter(|s| !s.is_empty())
    {
        let json = aws_secret(&id).await?;
        add(&json, &format!("secret {id}"))?;
    }
    Ok(env)
}

/// The region of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`); `None` for a plain
/// name or an ARN without one.
fn arn_region(id: &str) -> Option<&str> {
    let mut parts = id.strip_prefix("arn:")?.splitn(5, ':');
    let (_partition, _service, region) = (parts.next()?, parts.next()?, parts.next()?);
    (!region.is_empty() && parts.next().is_some()).then_some(region)
}

/// The string value of an AWS Secrets Manager secret, with the default credential chain
/// (`AWS_ENDPOINT_URL` points at another server).
async fn aws_secret(id: &str) -> Result<String, String> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let mut b = aws_sdk_secretsmanager::config::Builder::from(&sdk);
    // A secret named by its ARN is read in the ARN's region: the functions of every region
    // share the one secret of the stack's home region.
    if let Some(region) = arn_region(id) {
        b = b.region(aws_config::Region::new(region.to_string()));
    }
    if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
    {
        b = b.endpoint_url(url);
    }
    let client = aws_sdk_secretsmanager::Client::from_conf(b.build());
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read secret {id}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            )
        })?;
    out.secret_string()
        .map(str::to_string)
        .ok_or_else(|| format!("secret {id} has no string value"))
}

/// JSON log lines on stderr, in the shape the platform's log service reads (`severity` and
/// `message` for Cloud Logging when `cloud_logging` is set).
pub fn init_logs(cloud_logging: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config=error,aws_smithy_runtime=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .json()
        .flatten_event(true)
        .with_current_span(false);
    if cloud_logging {
        builder.event_format(logs::CloudLogging).init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The functions of every region read the home region's secret by its ARN.
    #[test]
    fn a_secret_arn_is_read_in_its_own_region() {
        assert_eq!(
            arn_region(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:llmpulse/api-keys-AbCdEf"
            ),
            Some("eu-west-1")
        );
        assert_eq!(
            arn_region("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:k"),
            Some("cn-north-1")
        );
        for plain in [
            "llmpulse/api-keys",
            "arn:aws:secretsmanager::123:secret:k",
            "arn:aws:s3",
        ] {
            assert_eq!(arn_region(plain), None, "{plain}");
        }
    }

    #[test]
    fn scheduler_payloads() {
        let r = RunRequest::from_event(&serde_json::json!({"slot": 3, "targets": ["a"]})).unwrap();
        assert_eq!(r.slot, Some(serde_json::json!(3)));
        assert_eq!(r.slot_choice(true), Ok(SlotChoice::Index(3)));
        // EventBridge's scheduled-event envelope: the detail is the request.
        let env = serde_json::json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
            "time": "2026-12-01T00:00:00Z", "region": "eu-west-1", "resources": [], "detail": {}
        });
        let r = RunRequest::from_event(&env).unwrap();
        assert_eq!(r, RunRequest::default());
        assert_eq!(r.slot_choice(true), Ok(SlotChoice::Auto));
        assert_eq!(r.slot_choice(false), Ok(SlotChoice::None));
        assert!(RunRequest::from_event(&serde_json::json!({"slto": 1})).is_err());
        assert!(
            RunRequest::from_event(&serde_json::json!({"slot": "soon"}))
                .unwrap()
                .slot_choice(true)
                .is_err()
        );
    }
}
