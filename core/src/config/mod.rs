//! The run configuration: TOML in, a validated [`Config`] out.
//!
//! Two stages, as in ripgrep's flag handling: serde reads the file into raw types that keep each
//! value's position; [`Config::parse`] then interpolates `${VAR}`, applies provider presets and
//! validates, so the runner can trust every field. Any error names the file, the line and the
//! field. This is the only module of the core that reads environment variables, and it reads
//! them through a function passed in, so tests choose the environment.

mod agent;
mod endpoint;
mod interpolate;
mod prices;
mod raw;
mod validate;
mod watch;

pub use interpolate::interpolate;
pub use watch::{NotifyKind, NotifySettings, WATCH_METRICS, WatchSettings};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use llmpulse_sim::SimProfile;
use sha2::{Digest, Sha256};

use crate::preset::{JsonMode, Protocol};
use crate::retry::RetryPolicy;
use crate::schedule::Campaign;
use crate::secret::Secret;
use crate::suite::line_col;
use raw::RawConfig;
use validate::Cx;

/// The built-in quickstart: four simulated targets, no keys, no network.
pub const BUILTIN_QUICKSTART: &str = include_str!("../../quickstart.toml");

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
    /// The most one run may spend, USD (`max_cost_usd`, `--max-cost-usd`).
    pub max_cost_usd: Option<f64>,
    pub targets: Vec<Target>,
    /// The campaign scheduled runs belong to, if any.
    pub campaign: Option<Campaign>,
    /// `[agent]`: what `llmpulse-agent` needs besides the run (absent: its defaults).
    pub agent: Option<AgentSettings>,
    /// `[load]`: the load profile, warm-up and SLO (absent: a closed loop, no SLO).
    pub load: crate::load::LoadSettings,
    /// `[watch]`: how `llmpulse watch` compares (absent: its defaults).
    pub watch: WatchSettings,
    /// `[[notify]]`: where `watch --notify` sends alerts.
    pub notify: Vec<NotifySettings>,
    /// sha256 of the configuration text as written (before `${VAR}` interpolation, so no secret
    /// that an interpolation brings in can be recovered from it).
    pub sha256: String,
}

/// `[agent]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// The host's name in records (`host_id`) and origins (`agent:ID`); the host name when unset.
    pub id: Option<String>,
    /// Where `llmpulse-agent serve` answers `/metrics` and `/health`.
    pub listen: std::net::SocketAddr,
    /// Telemetry samples per second.
    pub sample_hz: f64,
    /// Where runs are staged (relative paths against the config's directory).
    pub spool: Option<PathBuf>,
    /// What a kWh costs here: turns a local call's `energy_j` into its `cost_usd`.
    pub electricity_usd_per_kwh: Option<f64>,
    /// The hardware's cost per hour (amortisation), shared by the calls in flight.
    pub hardware_usd_per_hour: Option<f64>,
    /// The most of wall time the model server may be kept busy, in (0, 1] (`duty = 0.7`).
    pub duty: Option<f64>,
    /// The temperature guard: no new call starts while the hottest sensor is at `max_temp_c` or
    /// above, until it falls below `resume_temp_c` (default 10 °C lower).
    pub max_temp_c: Option<f64>,
    pub resume_temp_c: Option<f64>,
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
    /// The most bytes of a response body read; past it the call stops reading and fails with
    /// `answer_too_large`, keeping what came as a partial answer.
    pub max_answer_bytes: usize,
    /// Where the call's timestamps are taken: `kernel` (the default for http:// and https://
    /// targets on Linux, HTTP/1.1 and HTTP/2), `packet`, `socket`, or `client` (the simulator).
    pub clock: ClockSource,
    /// Which HTTP versions the target is asked in.
    pub http2: Http2,
    /// Roots trusted besides the system's, for an https target behind a private CA.
    pub ca_file: Option<CaFile>,
    /// The DNS servers asked through llmpulse's own resolver; empty: the system resolver.
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// What the target's tokens cost (`price`, or its row of the `prices` file).
    pub price: Option<crate::cost::Price>,
}

/// The default `max_answer_bytes`: 4 MiB, far above any real answer (a 32k-token answer is
/// about 128 KiB of text, a few times that with streaming's framing).
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

pub use crate::provider::ClockSource;

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
    /// Whether the server may answer a repeated prompt from its prefix cache.
    pub prompt_cache: PromptCache,
}

/// A target's extra trusted roots: the file named by `ca_file` and its certificates.
#[derive(Debug, Clone)]
pub struct CaFile {
    pub path: PathBuf,
    pub certs: std::sync::Arc<Vec<rustls_pki_types::CertificateDer<'static>>>,
}

/// Whether a target is asked over HTTP/2 (`http2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Http2 {
    /// HTTP/1.1 only, one request at a time per connection (the default: how llmpulse has
    /// always measured).
    #[default]
    Off,
    /// HTTP/2 where an https server offers it in the TLS handshake (ALPN), else HTTP/1.1.
    Auto,
    /// HTTP/2 only; over plain http without asking first (prior knowledge, h2c).
    On,
}

/// Whether a target's prompts may be served from the server's prefix cache (`prompt_cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptCache {
    /// As the server does: most reuse the prefix of a prompt they saw before.
    #[default]
    On,
    /// Every prompt cold: see `provider::prompt_cache` for how each server is asked.
    Off,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
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
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
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
            base_dir: &base_dir,
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
        let (load, load_concurrency) = match &raw.load {
            Some(l) => cx.load(l.get_ref())?,
            None => (crate::load::LoadSettings::default(), None),
        };
        let concurrency = load_concurrency.unwrap_or(concurrency);
        let agent = raw
            .agent
            .as_ref()
            .map(|a| cx.agent(a, &base_dir))
            .transpose()?;
        let watch = match &raw.watch {
            Some(w) => cx.watch(w.get_ref())?,
            None => WatchSettings::default(),
        };
        let notify = cx.notifiers(&raw.notify)?;
        if let Some(file) = &raw.prices {
            let path = base_dir.join(cx.interpolate(file, "prices")?);
            let table = prices::load(&path)
                .map_err(|m| cx.invalid(file.span().start, "prices".into(), m))?;
            for t in targets.iter_mut().filter(|t| t.price.is_none()) {
                t.price = table
                    .get(&t.provider)
                    .and_then(|m| m.get(&t.model))
                    .copied();
            }
        }
        let max_cost_usd = raw
            .max_cost_usd
            .as_ref()
            .map(|v| cx.usd(v, "max_cost_usd"))
            .transpose()?;
        Ok(Config {
            max_cost_usd,
            campaign,
            agent,
            load,
            watch,
            notify,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_kind::ErrorKind;

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
    fn the_agents_duty_and_temperature_guard_are_checked() {
        let target = "[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\n";
        let ok = parse(&format!("[agent]\nduty = 0.7\nmax_temp_c = 85\n{target}")).unwrap();
        let a = ok.agent.unwrap();
        assert_eq!(
            (a.duty, a.max_temp_c, a.resume_temp_c),
            (Some(0.7), Some(85.0), Some(75.0))
        );
        for (agent, says) in [
            (
                "duty = 70",
                "test.toml:2: agent.duty: expected a share of the time",
            ),
            (
                "max_temp_c = 85\nresume_temp_c = 90",
                "test.toml:3: agent.resume_temp_c: must be below",
            ),
            (
                "resume_temp_c = 60",
                "test.toml:2: agent.resume_temp_c: goes with max_temp_c",
            ),
            (
                "max_temp_c = 400",
                "test.toml:2: agent.max_temp_c: expected °C",
            ),
        ] {
            let err = parse(&format!("[agent]\n{agent}\n{target}"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(says), "{agent}: {err}");
        }
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
    fn the_clock_is_the_kernel_for_http_1_over_http_and_https_and_the_client_otherwise() {
        let target = |url: &str, more: &str| {
            format!(
                "[[targets]]\nname = \"a\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\n\
                 base_url = \"{url}\"\n{more}"
            )
        };
        let clock = |text: &str| parse(text).unwrap().targets[0].clock;
        assert_eq!(
            clock(&target("http://127.0.0.1:8080/v1", "")),
            ClockSource::Kernel
        );
        assert_eq!(
            clock(&target("https://api.example.com/v1", "")),
            ClockSource::Kernel
        );
        assert_eq!(
            clock(&target("https://api.example.com/v1", "http2 = \"auto\"")),
            ClockSource::Kernel,
            "HTTP/2 streams are stamped at the socket too"
        );
        assert_eq!(
            clock(&target("http://h/v1", "clock = \"socket\"")),
            ClockSource::Socket
        );
        assert_eq!(
            clock(&target(
                "https://api.example.com/v1",
                "http2 = \"on\"\nclock = \"packet\""
            )),
            ClockSource::Packet
        );
        let err = parse(&target("http://h/v1", "clock = \"tsc\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown clock 'tsc' (known: packet, kernel, socket, client)"),
            "{err}"
        );
        let sim = "[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\n";
        assert_eq!(clock(sim), ClockSource::Client);
        let err = parse(&format!("{sim}clock = \"kernel\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the in-process simulator has none"), "{err}");
    }

    #[test]
    fn dns_servers_are_ip_addresses_with_port_53_unless_named_and_bad_ones_are_named() {
        let target = |servers: &str| {
            format!(
                "[[targets]]\nname = \"a\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\n\
                 base_url = \"https://api.example.com/v1\"\ndns_servers = {servers}\n"
            )
        };
        let servers = parse(&target(r#"["10.0.0.2", "1.1.1.1:5353", "[::1]:53"]"#))
            .unwrap()
            .targets[0]
            .dns_servers
            .clone();
        let want: Vec<std::net::SocketAddr> = ["10.0.0.2:53", "1.1.1.1:5353", "[::1]:53"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(servers, want);
        let no_servers = "[[targets]]\nname = \"a\"\nprovider = \"sim\"\nmodel = \"m\"\n";
        assert!(parse(no_servers).unwrap().targets[0].dns_servers.is_empty());
        let err = parse(&target(r#"["1.1.1.1", "dns.google"]"#))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "test.toml:6: targets[0].dns_servers[1]: 'dns.google' is not an IP address"
            ),
            "{err}"
        );
        let err = parse(&target("[]")).unwrap_err().to_string();
        assert!(
            err.starts_with("test.toml:6: targets[0].dns_servers: is empty"),
            "the line of the key: {err}"
        );
        let err = parse(&format!("{no_servers}dns_servers = [\"1.1.1.1\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dns_servers needs a base_url"), "{err}");
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
