//! The run configuration: TOML in, a validated [`Config`] out.
//!
//! Two stages, as in ripgrep's flag handling: serde reads the file into raw types that keep each
//! value's position; [`Config::parse`] then interpolates `${VAR}`, applies provider presets and
//! validates, so the runner can trust every field. Any error names the file, the line and the
//! field. This is the only module of the core that reads environment variables, and it reads
//! them through a function passed in, so tests choose the environment.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::error_kind::ErrorKind;
use crate::provider::preset;
use crate::retry::RetryPolicy;
use crate::schedule::{self, Campaign};
use crate::secret::Secret;
use crate::sim::SimProfile;
use crate::suite::line_col;
use chrono::{DateTime, Utc};

/// The built-in quickstart: four simulated targets, no keys, no network.
pub const BUILTIN_QUICKSTART: &str = include_str!("../../examples/quickstart.toml");

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (a path, or `builtin:quickstart`).
    pub origin: String,
    /// The directory relative suite paths are resolved against.
    pub base_dir: PathBuf,
    /// `builtin:NAME` or a path relative to `base_dir`.
    pub suite: String,
    pub repetitions: u32,
    pub concurrency: u32,
    /// A directory (later also `s3://…`, `gs://…`).
    pub output: String,
    /// Keep answer texts in records; when false only their sha256 is kept.
    pub keep_answers: bool,
    pub targets: Vec<Target>,
    /// The campaign scheduled runs belong to, if any.
    pub campaign: Option<Campaign>,
    /// sha256 of the configuration text as written (before `${VAR}` interpolation, so no secret
    /// that an interpolation brings in can be recovered from it).
    pub sha256: String,
}

/// One thing to measure: a provider, a model and request parameters.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// The preset name (`groq`, `sim`, …): the record's `llm_provider`.
    pub provider: String,
    pub model: String,
    pub protocol: Protocol,
    pub endpoint: Endpoint,
    pub api_key: Option<Secret>,
    pub params: Params,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub limits: Limits,
    /// The target that answers when this one fails after its retries.
    pub fallback: Option<String>,
    /// Asked only as another target's fallback, never on its own.
    pub fallback_only: bool,
    /// Extra request headers. Values may come from `${VAR}` and are treated as secrets.
    pub headers: Vec<(String, Secret)>,
    /// Extra JSON fields merged into the request body.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Where a target's requests go.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// An HTTP server speaking the OpenAI chat API under this base URL.
    Http { base_url: String },
    /// The built-in simulator, in-process.
    Sim(Box<SimProfile>),
}

/// A target's time limits. Each gives its own `error_kind` when it fires.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// TCP (and TLS) connection.
    pub connect: Duration,
    /// Request sent → first generated token.
    pub first_token: Option<Duration>,
    /// Longest silence between two stream chunks.
    pub idle: Option<Duration>,
    /// Request sent → complete answer.
    pub total: Duration,
}

/// A target's request budget, enforced before a request is sent (waiting here is never
/// latency).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// Requests per minute, evenly paced.
    pub rpm: Option<u32>,
    /// Tokens per minute, each request weighted by its prompt estimate plus `max_tokens`.
    pub tpm: Option<u32>,
    /// Calls of this target in flight at once (besides the run's `concurrency`).
    pub max_concurrency: Option<u32>,
}

/// Request parameters sent with every call of a target.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub stream: bool,
    /// Ask for usage in the stream (`stream_options.include_usage`).
    pub stream_usage: bool,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    /// How a question's JSON Schema is sent.
    pub json_mode: JsonMode,
}

/// The wire protocol a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OpenAI chat completions (`/chat/completions`): most services and local servers.
    Openai,
    /// Anthropic Messages (`/messages`).
    Anthropic,
    /// Ollama's native chat API (`/chat` under `…/api`), which reports the server's own
    /// prefill and decode timings.
    Ollama,
}

/// The two ways servers take a JSON Schema for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonMode {
    /// `response_format = {type: "json_schema", json_schema: {name, schema, strict}}` (OpenAI).
    JsonSchema,
    /// `response_format = {type: "json_object", schema}` (llama.cpp, some local servers).
    JsonObject,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}:{line}:{column}: {message}")]
    Parse {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}:{line}: {field}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        field: String,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    suite: Option<Spanned<String>>,
    repetitions: Option<Spanned<i64>>,
    concurrency: Option<Spanned<i64>>,
    output: Option<Spanned<String>>,
    keep_answers: Option<bool>,
    timeout_sec: Option<Spanned<f64>>,
    #[serde(default)]
    targets: Vec<Spanned<RawTarget>>,
    campaign: Option<Spanned<RawCampaign>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCampaign {
    name: Spanned<String>,
    start: Spanned<toml::Value>,
    end: Spanned<toml::Value>,
    count: Option<Spanned<i64>>,
    per: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
    catch_up: Option<bool>,
    claim_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Spanned<String>,
    provider: Spanned<String>,
    model: Spanned<String>,
    base_url: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
    stream: Option<bool>,
    stream_usage: Option<bool>,
    temperature: Option<Spanned<f64>>,
    max_tokens: Option<Spanned<i64>>,
    top_p: Option<Spanned<f64>>,
    seed: Option<i64>,
    json_mode: Option<JsonMode>,
    protocol: Option<Protocol>,
    timeout_sec: Option<Spanned<f64>>,
    connect_timeout_sec: Option<Spanned<f64>>,
    first_token_timeout_sec: Option<Spanned<f64>>,
    idle_timeout_sec: Option<Spanned<f64>>,
    max_attempts: Option<Spanned<i64>>,
    retry_on: Option<Vec<Spanned<String>>>,
    retry_max_wait_sec: Option<Spanned<f64>>,
    rpm: Option<Spanned<i64>>,
    tpm: Option<Spanned<i64>>,
    max_concurrency: Option<Spanned<i64>>,
    fallback: Option<Spanned<String>>,
    fallback_only: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    extra: Option<Spanned<toml::Table>>,
    sim: Option<Spanned<SimProfile>>,
}

const DEFAULT_TIMEOUT_SEC: f64 = 120.0;

impl Config {
    /// Reads and validates the config file at `path`; `env` looks up environment variables.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::load_with(path, env, true)
    }

    /// Like [`Config::load`], for commands that read results and call no target (`plan`,
    /// `campaign status`): a missing API key is not an error there.
    pub fn load_for_reading(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::load_with(path, env, false)
    }

    fn load_with(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        need_keys: bool,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Config::parse_with(&text, &path.display().to_string(), base_dir, env, need_keys)
    }

    /// The built-in quickstart configuration.
    pub fn quickstart() -> Config {
        Config::parse(
            BUILTIN_QUICKSTART,
            "builtin:quickstart",
            PathBuf::from("."),
            &|_| None,
        )
        .expect("the built-in quickstart is valid (checked by a test)")
    }

    /// Parses and validates config text. `origin` names it in errors.
    pub fn parse(
        text: &str,
        origin: &str,
        base_dir: PathBuf,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::parse_with(text, origin, base_dir, env, true)
    }

    fn parse_with(
        text: &str,
        origin: &str,
        base_dir: PathBuf,
        env: &dyn Fn(&str) -> Option<String>,
        need_keys: bool,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            ConfigError::Parse {
                origin: origin.to_string(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        let cx = Cx {
            text,
            origin,
            env,
            need_keys,
        };

        let suite = match &raw.suite {
            Some(s) => cx.interpolate(s, "suite")?,
            None => "builtin:rag-retail-finance".to_string(),
        };
        let repetitions = cx.bounded(raw.repetitions.as_ref(), "repetitions", 1, 1, 100_000)?;
        let concurrency = cx.bounded(raw.concurrency.as_ref(), "concurrency", 8, 1, 10_000)?;
        let output = match &raw.output {
            Some(s) => cx.interpolate(s, "output")?,
            None => "results".to_string(),
        };
        let default_timeout = match &raw.timeout_sec {
            Some(t) => cx.positive(t, "timeout_sec")?,
            None => DEFAULT_TIMEOUT_SEC,
        };
        if raw.targets.is_empty() {
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                line: 1,
                field: "targets".into(),
                message: "no [[targets]]: add at least one target to measure".into(),
            });
        }
        let mut names = HashSet::new();
        let mut targets = Vec::with_capacity(raw.targets.len());
        for (i, t) in raw.targets.iter().enumerate() {
            let target = cx.target(i, t, default_timeout)?;
            if !names.insert(target.name.clone()) {
                return Err(cx.invalid(
                    t.get_ref().name.span().start,
                    format!("targets[{i}].name"),
                    format!("duplicate target name '{}'", target.name),
                ));
            }
            targets.push(target);
        }
        for (i, t) in raw.targets.iter().enumerate() {
            let Some(fb) = &t.get_ref().fallback else {
                continue;
            };
            let name = fb.get_ref();
            let field = format!("targets[{i}].fallback");
            if name == &targets[i].name {
                return Err(cx.invalid(
                    fb.span().start,
                    field,
                    "a target cannot be its own fallback".into(),
                ));
            }
            if !targets.iter().any(|t| &t.name == name) {
                return Err(cx.invalid(
                    fb.span().start,
                    field,
                    format!("no target named '{name}'"),
                ));
            }
        }
        let campaign = raw.campaign.as_ref().map(|c| cx.campaign(c)).transpose()?;
        Ok(Config {
            campaign,
            origin: origin.to_string(),
            base_dir,
            suite,
            repetitions,
            concurrency,
            output,
            keep_answers: raw.keep_answers.unwrap_or(true),
            targets,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// Keeps only the targets named in `names` (all when empty); an unknown name is an error.
    pub fn select_targets(&mut self, names: &[String]) -> Result<(), ConfigError> {
        if names.is_empty() {
            return Ok(());
        }
        for n in names {
            if !self.targets.iter().any(|t| &t.name == n) {
                let known: Vec<_> = self.targets.iter().map(|t| t.name.as_str()).collect();
                return Err(ConfigError::Invalid {
                    origin: self.origin.clone(),
                    line: 0,
                    field: "--targets".into(),
                    message: format!("no target named '{n}' (targets: {})", known.join(", ")),
                });
            }
        }
        self.targets.retain(|t| names.contains(&t.name));
        Ok(())
    }
}

/// Validation context: the text (for line numbers), its name, and the environment.
struct Cx<'a> {
    text: &'a str,
    origin: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Whether a hosted target without its key is an error (not for read-only commands).
    need_keys: bool,
}

impl Cx<'_> {
    fn invalid(&self, pos: usize, field: String, message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            line: line_col(self.text, pos).0,
            field,
            message,
        }
    }

    fn interpolate(&self, value: &Spanned<String>, field: &str) -> Result<String, ConfigError> {
        interpolate(value.get_ref(), self.env)
            .map_err(|m| self.invalid(value.span().start, field.to_string(), m))
    }

    fn bounded(
        &self,
        value: Option<&Spanned<i64>>,
        field: &str,
        default: u32,
        min: i64,
        max: i64,
    ) -> Result<u32, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let n = *v.get_ref();
        if !(min..=max).contains(&n) {
            return Err(self.invalid(
                v.span().start,
                field.to_string(),
                format!("expected a whole number from {min} to {max}, found {n}"),
            ));
        }
        Ok(n as u32)
    }

    fn positive(&self, v: &Spanned<f64>, field: &str) -> Result<f64, ConfigError> {
        let x = *v.get_ref();
        if !(x > 0.0 && x.is_finite()) {
            return Err(self.invalid(
                v.span().start,
                field.to_string(),
                format!("expected a positive number of seconds, found {x}"),
            ));
        }
        Ok(x)
    }

    fn in_range(
        &self,
        v: &Option<Spanned<f64>>,
        field: String,
        lo: f64,
        hi: f64,
    ) -> Result<Option<f64>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let x = *v.get_ref();
        if !(lo..=hi).contains(&x) {
            return Err(self.invalid(
                v.span().start,
                field,
                format!("expected a number from {lo} to {hi}, found {x}"),
            ));
        }
        Ok(Some(x))
    }

    fn campaign(&self, spanned: &Spanned<RawCampaign>) -> Result<Campaign, ConfigError> {
        let c = spanned.get_ref();
        let name = c.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        {
            return Err(self.invalid(
                c.name.span().start,
                "campaign.name".into(),
                format!(
                    "'{name}' is not a valid campaign name: use letters, digits, '-', '_' or '.'"
                ),
            ));
        }
        let time = |v: &Spanned<toml::Value>, field: &str| -> Result<DateTime<Utc>, ConfigError> {
            let text = match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Datetime(d) => d.to_string(),
                other => other.to_string(),
            };
            DateTime::parse_from_rfc3339(&text)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|e| {
                    self.invalid(
                        v.span().start,
                        format!("campaign.{field}"),
                        format!("'{text}' is not an RFC 3339 time with a zone ({e}), e.g. 2026-12-01T00:00:00Z"),
                    )
                })
        };
        let start = time(&c.start, "start")?;
        let end = time(&c.end, "end")?;
        if end <= start {
            return Err(self.invalid(
                c.end.span().start,
                "campaign.end".into(),
                "must be after start".into(),
            ));
        }
        let duration = |v: &Spanned<String>, field: &str| {
            schedule::parse_duration(v.get_ref())
                .and_then(|d| {
                    if d.is_zero() {
                        Err(format!("'{}' must be longer than zero", v.get_ref()))
                    } else {
                        Ok(d)
                    }
                })
                .map_err(|m| self.invalid(v.span().start, format!("campaign.{field}"), m))
        };
        let (per_window, window, cadence) = match (&c.count, &c.per, &c.every) {
            (Some(count), Some(per), None) => {
                let n = self.bounded(Some(count), "campaign.count", 1, 1, 1_000_000)?;
                (
                    n,
                    duration(per, "per")?,
                    format!("{n} per {}", per.get_ref()),
                )
            }
            (None, None, Some(every)) => (
                1,
                duration(every, "every")?,
                format!("every {}", every.get_ref()),
            ),
            _ => {
                return Err(self.invalid(
                    spanned.span().start,
                    "campaign".into(),
                    "give a cadence: count = 14 with per = \"12h\", or every = \"51m\"".into(),
                ));
            }
        };
        let claim_timeout = match &c.claim_timeout {
            Some(v) => duration(v, "claim_timeout")?,
            None => std::time::Duration::from_secs(3600),
        };
        Ok(Campaign {
            name,
            start,
            end,
            per_window,
            window,
            cadence,
            catch_up: c.catch_up.unwrap_or(false),
            claim_timeout,
        })
    }

    fn target(
        &self,
        i: usize,
        spanned: &Spanned<RawTarget>,
        default_timeout: f64,
    ) -> Result<Target, ConfigError> {
        let t = spanned.get_ref();
        let field = |f: &str| format!("targets[{i}].{f}");

        let name = t.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(self.invalid(
                t.name.span().start,
                field("name"),
                format!(
                    "'{name}' is not a valid target name: use letters, digits, '-', '_' or '.'"
                ),
            ));
        }
        let provider = t.provider.get_ref().as_str();
        let Some(preset) = preset::find(provider) else {
            return Err(self.invalid(
                t.provider.span().start,
                field("provider"),
                format!("unknown provider '{provider}' (known: {})", preset::names()),
            ));
        };
        let model = self.interpolate(&t.model, &field("model"))?;
        if model.trim().is_empty() {
            return Err(self.invalid(t.model.span().start, field("model"), "is empty".into()));
        }

        let endpoint = if provider == "sim" {
            if let Some(url) = &t.base_url {
                return Err(self.invalid(
                    url.span().start,
                    field("base_url"),
                    "a sim target runs in-process and takes no base_url (to measure a running \
                     `llmpulse sim` server use provider = \"openai-compatible\")"
                        .into(),
                ));
            }
            let profile = t
                .sim
                .as_ref()
                .map(|s| s.get_ref().clone())
                .unwrap_or_default();
            if let Err(m) = profile.validate() {
                let pos = t
                    .sim
                    .as_ref()
                    .map_or(spanned.span().start, |s| s.span().start);
                return Err(self.invalid(pos, field("sim"), m));
            }
            Endpoint::Sim(Box::new(profile))
        } else {
            if let Some(sim) = &t.sim {
                return Err(self.invalid(
                    sim.span().start,
                    field("sim"),
                    format!("[sim] settings apply only to provider = \"sim\", not '{provider}'"),
                ));
            }
            let base_url = match (&t.base_url, preset.base_url) {
                (Some(u), _) => self.interpolate(u, &field("base_url"))?,
                (None, Some(default)) => default.to_string(),
                (None, None) => {
                    return Err(self.invalid(
                        t.provider.span().start,
                        field("base_url"),
                        format!("provider '{provider}' needs a base_url, e.g. \"http://127.0.0.1:8080/v1\""),
                    ));
                }
            };
            let pos = t
                .base_url
                .as_ref()
                .map_or(t.provider.span().start, |u| u.span().start);
            match reqwest::Url::parse(&base_url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => {
                    return Err(self.invalid(
                        pos,
                        field("base_url"),
                        format!("'{base_url}' is not an http(s) URL"),
                    ));
                }
            }
            Endpoint::Http {
                base_url: base_url.trim_end_matches('/').to_string(),
            }
        };

        let key_env = match &t.api_key_env {
            Some(v) => Some(v.get_ref().clone()),
            None => preset.api_key_env.map(str::to_string),
        };
        let api_key = match &key_env {
            Some(var) => match (self.env)(var) {
                Some(v) if !v.trim().is_empty() => Some(Secret::new(v.trim())),
                _ if preset.key_required && self.need_keys => {
                    let pos = t
                        .api_key_env
                        .as_ref()
                        .map_or(t.provider.span().start, |v| v.span().start);
                    return Err(self.invalid(
                        pos,
                        field("api_key_env"),
                        format!(
                            "target '{name}' needs an API key: set the environment variable {var} \
                             (keys are never written in the config file)"
                        ),
                    ));
                }
                _ => None,
            },
            None => None,
        };

        let max_tokens = match &t.max_tokens {
            Some(v) if !(1..=1_000_000).contains(v.get_ref()) => {
                return Err(self.invalid(
                    v.span().start,
                    field("max_tokens"),
                    format!(
                        "expected a whole number from 1 to 1000000, found {}",
                        v.get_ref()
                    ),
                ));
            }
            Some(v) => Some(*v.get_ref() as u32),
            None => None,
        };
        let params = Params {
            stream: t.stream.unwrap_or(true),
            stream_usage: t.stream_usage.unwrap_or(preset.stream_usage),
            temperature: self.in_range(&t.temperature, field("temperature"), 0.0, 2.0)?,
            max_tokens,
            top_p: self.in_range(&t.top_p, field("top_p"), 0.0, 1.0)?,
            seed: t.seed,
            json_mode: t.json_mode.unwrap_or(preset.json_mode),
        };
        let secs =
            |v: &Option<Spanned<f64>>, name: &str| -> Result<Option<Duration>, ConfigError> {
                v.as_ref()
                    .map(|v| self.positive(v, &field(name)).map(Duration::from_secs_f64))
                    .transpose()
            };
        let timeouts = Timeouts {
            connect: secs(&t.connect_timeout_sec, "connect_timeout_sec")?
                .unwrap_or(Duration::from_secs(10)),
            first_token: secs(&t.first_token_timeout_sec, "first_token_timeout_sec")?,
            idle: secs(&t.idle_timeout_sec, "idle_timeout_sec")?,
            total: secs(&t.timeout_sec, "timeout_sec")?
                .unwrap_or(Duration::from_secs_f64(default_timeout)),
        };
        let mut retry = RetryPolicy {
            max_attempts: self.bounded(
                t.max_attempts.as_ref(),
                &field("max_attempts"),
                3,
                1,
                100,
            )?,
            ..RetryPolicy::default()
        };
        if let Some(w) = secs(&t.retry_max_wait_sec, "retry_max_wait_sec")? {
            retry.max_wait = w;
        }
        if let Some(kinds) = &t.retry_on {
            retry.retry_on = kinds
                .iter()
                .map(|k| {
                    ErrorKind::parse(k.get_ref()).ok_or_else(|| {
                        self.invalid(
                            k.span().start,
                            field("retry_on"),
                            format!("'{}' is not an error kind", k.get_ref()),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        let optional = |v: &Option<Spanned<i64>>, name: &str| -> Result<Option<u32>, ConfigError> {
            v.as_ref()
                .map(|v| self.bounded(Some(v), &field(name), 0, 1, 100_000_000))
                .transpose()
        };
        let limits = Limits {
            rpm: optional(&t.rpm, "rpm")?,
            tpm: optional(&t.tpm, "tpm")?,
            max_concurrency: optional(&t.max_concurrency, "max_concurrency")?,
        };

        let mut headers: Vec<(String, Secret)> = preset
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::new(*v)))
            .collect();
        for (k, v) in &t.headers {
            let value = self.interpolate(v, &field(&format!("headers.{k}")))?;
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(&value).is_err()
            {
                return Err(self.invalid(
                    v.span().start,
                    field(&format!("headers.{k}")),
                    "not a valid HTTP header name or value".into(),
                ));
            }
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            headers.push((k.clone(), Secret::new(value)));
        }
        let extra = match &t.extra {
            Some(table) => match serde_json::to_value(table.get_ref()) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => {
                    return Err(self.invalid(
                        table.span().start,
                        field("extra"),
                        "cannot be expressed as JSON".into(),
                    ));
                }
            },
            None => serde_json::Map::new(),
        };

        Ok(Target {
            name,
            provider: provider.to_string(),
            model,
            protocol: t.protocol.unwrap_or(preset.protocol),
            endpoint,
            api_key,
            params,
            timeouts,
            retry,
            limits,
            fallback: t.fallback.as_ref().map(|f| f.get_ref().clone()),
            fallback_only: t.fallback_only.unwrap_or(false),
            headers,
            extra,
        })
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` with values from `env`; `$$` is a literal `$`.
/// An unset variable without a default is an error naming it.
pub fn interpolate(input: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(format!("unclosed '${{' in \"{input}\""));
            };
            let expr = &body[..end];
            let (var, default) = match expr.split_once(":-") {
                Some((v, d)) => (v, Some(d)),
                None => (expr, None),
            };
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("'${{{expr}}}' is not a variable name"));
            }
            match (env(var), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {var} is not set (write ${{{var}:-default}} for a fallback)"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "test.toml", PathBuf::from("."), &env_of(&[]))
    }

    #[test]
    fn quickstart_is_valid_and_needs_no_key() {
        let c = Config::quickstart();
        assert_eq!(c.targets.len(), 4);
        assert!(c.targets.iter().all(|t| t.api_key.is_none()));
        assert!(
            c.targets
                .iter()
                .all(|t| matches!(t.endpoint, Endpoint::Sim(_)))
        );
    }

    #[test]
    fn preset_fills_base_url_and_key() {
        let text = r#"
[[targets]]
name = "g"
provider = "groq"
model = "llama3-70b-8192"
"#;
        let c = Config::parse(
            text,
            "t.toml",
            ".".into(),
            &env_of(&[("GROQ_API_KEY", "gsk_x1")]),
        )
        .unwrap();
        let t = &c.targets[0];
        assert!(
            matches!(&t.endpoint, Endpoint::Http { base_url } if base_url == "https://api.groq.com/openai/v1")
        );
        assert_eq!(t.api_key.as_ref().unwrap().expose(), "gsk_x1");
        assert!(t.params.stream);
        assert_eq!(c.suite, "builtin:rag-retail-finance");
    }

    #[test]
    fn missing_key_names_the_variable_and_line() {
        let text = "\n[[targets]]\nname = \"g\"\nprovider = \"groq\"\nmodel = \"m\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with("test.toml:4: targets[0].api_key_env:"),
            "{err}"
        );
        assert!(err.contains("GROQ_API_KEY"), "{err}");
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let text = "repetitions = 1\nconcurrency = = 3\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.starts_with("test.toml:2:"), "{err}");
    }

    #[test]
    fn unknown_field_names_its_line() {
        let text =
            "\n[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\ntemprature = 0.2\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.starts_with("test.toml:6:"), "{err}");
        assert!(err.contains("temprature"), "{err}");
    }

    #[test]
    fn out_of_range_value_names_field_and_line() {
        let text =
            "\n[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\ntemperature = 3.5\n";
        let err = parse(text).unwrap_err().to_string();
        assert_eq!(
            err,
            "test.toml:6: targets[0].temperature: expected a number from 0 to 2, found 3.5"
        );
    }

    #[test]
    fn unknown_provider_lists_known_ones() {
        let text = "[[targets]]\nname = \"a\"\nprovider = \"grok\"\nmodel = \"m\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains("targets[0].provider: unknown provider 'grok'"),
            "{err}"
        );
        assert!(err.contains("groq"), "{err}");
    }

    #[test]
    fn duplicate_target_names_are_rejected() {
        let text = "[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\n\
                    [[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"n\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with("test.toml:6: targets[1].name: duplicate"),
            "{err}"
        );
    }

    #[test]
    fn openai_compatible_needs_base_url() {
        let text = "[[targets]]\nname = \"a\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("needs a base_url"), "{err}");
    }

    #[test]
    fn interpolation_in_base_url_and_headers() {
        let text = r#"
output = "${OUT:-results}"
[[targets]]
name = "local"
provider = "openai-compatible"
base_url = "http://${HOST}:8081/v1/"
model = "smollm2"
headers = { "X-Token" = "${TOKEN}" }
"#;
        let c = Config::parse(
            text,
            "t.toml",
            ".".into(),
            &env_of(&[("HOST", "127.0.0.1"), ("TOKEN", "tok_secret")]),
        )
        .unwrap();
        assert_eq!(c.output, "results");
        assert!(
            matches!(&c.targets[0].endpoint, Endpoint::Http { base_url } if base_url == "http://127.0.0.1:8081/v1")
        );
        assert_eq!(c.targets[0].headers[0].1.expose(), "tok_secret");
        // The hash is of the text as written, so it does not depend on the secret's value.
        assert!(!format!("{c:?}").contains("tok_secret"));
    }

    #[test]
    fn unset_variable_is_an_error_with_line() {
        let text = "output = \"s3://${BUCKET}/x\"\n[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with("test.toml:1: output: environment variable BUCKET is not set"),
            "{err}"
        );
    }

    #[test]
    fn interpolate_rules() {
        let env = env_of(&[("A", "1")]);
        assert_eq!(interpolate("x${A}y", &env).unwrap(), "x1y");
        assert_eq!(interpolate("$${A}", &env).unwrap(), "${A}");
        assert_eq!(interpolate("${B:-two}", &env).unwrap(), "two");
        assert_eq!(interpolate("cost $5", &env).unwrap(), "cost $5");
        assert!(interpolate("${A", &env).is_err());
    }

    #[test]
    fn limits_retries_timeouts_and_fallback() {
        let text = r#"
[[targets]]
name = "a"
provider = "sim"
model = "m"
rpm = 60
tpm = 6000
max_concurrency = 2
max_attempts = 5
retry_on = ["rate_limited", "timeout"]
first_token_timeout_sec = 2.5
idle_timeout_sec = 1
fallback = "b"
[[targets]]
name = "b"
provider = "sim"
model = "m"
fallback_only = true
"#;
        let c = parse(text).unwrap();
        let a = &c.targets[0];
        assert_eq!(a.limits.rpm, Some(60));
        assert_eq!(a.limits.tpm, Some(6000));
        assert_eq!(a.retry.max_attempts, 5);
        assert_eq!(
            a.retry.retry_on,
            vec![ErrorKind::RateLimited, ErrorKind::Timeout]
        );
        assert_eq!(a.timeouts.first_token, Some(Duration::from_millis(2500)));
        assert_eq!(a.timeouts.total, Duration::from_secs(120));
        assert_eq!(a.fallback.as_deref(), Some("b"));
        assert!(c.targets[1].fallback_only);
    }

    #[test]
    fn bad_retry_kind_and_unknown_fallback_are_errors() {
        let text = "[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\nretry_on = [\"http_500\"]\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.starts_with("test.toml:5: targets[0].retry_on: 'http_500'"),
            "{err}"
        );
        let text =
            "[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\nfallback = \"z\"\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains("targets[0].fallback: no target named 'z'"),
            "{err}"
        );
    }

    #[test]
    fn campaign_of_the_seed() {
        let text = "[campaign]\nname = \"seed-4day\"\nstart = 2026-12-01T00:00:00Z\nend = \"2026-12-05T00:00:00Z\"\ncount = 14\nper = \"12h\"\n\
                    [[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\n";
        let c = parse(text).unwrap().campaign.unwrap();
        assert_eq!(c.slot_count(), 112);
        assert_eq!(c.cadence, "14 per 12h");
        let bad = "[campaign]\nname = \"x\"\nstart = \"2026-12-01\"\nend = \"2026-12-05T00:00:00Z\"\nevery = \"51m\"\n\
                   [[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\n";
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.starts_with("test.toml:3: campaign.start:"), "{err}");
        let none = "[campaign]\nname = \"x\"\nstart = \"2026-12-01T00:00:00Z\"\nend = \"2026-12-05T00:00:00Z\"\n\
                    [[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\n";
        assert!(
            parse(none)
                .unwrap_err()
                .to_string()
                .contains("give a cadence")
        );
    }

    #[test]
    fn sim_settings_are_checked() {
        let text = "[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\n[targets.sim]\nttft_ms = 100\nbogus = 1\n";
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
        let text = "[[targets]]\nname = \"a\"\nprovider = \"groq\"\nmodel = \"m\"\napi_key_env = \"K\"\n[targets.sim]\nttft_ms = 100\n";
        let err = Config::parse(text, "t.toml", ".".into(), &env_of(&[("K", "abcd")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("apply only to provider = \"sim\""), "{err}");
    }
}
