//! Raw values → trusted ones: ranges, names, presets, keys, campaigns. Every error names the
//! file, the line and the field.

use std::time::Duration;

use chrono::{DateTime, Utc};
use toml::Spanned;

use super::interpolate::interpolate;
use super::raw::{RawCampaign, RawLoad, RawTarget};
use super::{ConfigError, Limits, Params, Target, Timeouts};
use crate::error_kind::ErrorKind;
use crate::layout;
use crate::preset;
use crate::retry::RetryPolicy;
use crate::schedule::{self, Campaign};
use crate::secret::Secret;
use crate::suite::line_col;

/// Validation context: the text (for line numbers), its name, and the environment.
pub(crate) struct Cx<'a> {
    pub(crate) text: &'a str,
    pub(crate) origin: &'a str,
    pub(crate) env: &'a dyn Fn(&str) -> Option<String>,
    /// Whether a hosted target without its key is an error (not for read-only commands).
    pub(crate) need_keys: bool,
    /// The config file's directory: relative paths in it (`ca_file`) start there.
    pub(crate) base_dir: &'a std::path::Path,
}

impl Cx<'_> {
    pub(crate) fn invalid(&self, pos: usize, field: String, message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            line: line_col(self.text, pos).0,
            field,
            message,
        }
    }

    pub(crate) fn interpolate(
        &self,
        value: &Spanned<String>,
        field: &str,
    ) -> Result<String, ConfigError> {
        interpolate(value.get_ref(), self.env)
            .map_err(|m| self.invalid(value.span().start, field.to_string(), m))
    }

    pub(crate) fn bounded(
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

    pub(crate) fn positive(&self, v: &Spanned<f64>, field: &str) -> Result<f64, ConfigError> {
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

    /// A duration such as `12h` or `51m`, longer than zero.
    /// An amount of money: USD above zero.
    pub(crate) fn usd(&self, v: &Spanned<f64>, field: &str) -> Result<f64, ConfigError> {
        let x = *v.get_ref();
        if !(x > 0.0 && x.is_finite()) {
            return Err(self.invalid(
                v.span().start,
                field.to_string(),
                format!("expected USD above 0, found {x}"),
            ));
        }
        Ok(x)
    }

    pub(crate) fn nonzero_duration(
        &self,
        v: &Spanned<String>,
        field: String,
    ) -> Result<Duration, ConfigError> {
        schedule::parse_duration(v.get_ref())
            .and_then(|d| {
                if d.is_zero() {
                    Err(format!("'{}' must be longer than zero", v.get_ref()))
                } else {
                    Ok(d)
                }
            })
            .map_err(|m| self.invalid(v.span().start, field, m))
    }

    pub(crate) fn in_range(
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

    /// `[load]`: the settings, and the concurrency a closed-loop profile sets.
    pub(crate) fn load(
        &self,
        l: &RawLoad,
    ) -> Result<(crate::load::LoadSettings, Option<u32>), ConfigError> {
        use crate::load::{LoadSettings, ProfileSpec, Slo};
        let mut out = LoadSettings::default();
        let mut concurrency = None;
        if let Some(p) = &l.profile {
            let spec = ProfileSpec::parse(p.get_ref())
                .map_err(|m| self.invalid(p.span().start, "load.profile".into(), m))?;
            out.profile = spec.profile;
            concurrency = spec.concurrency;
        }
        if let Some(s) = &l.slo {
            out.slo = Some(
                Slo::parse(s.get_ref())
                    .map_err(|m| self.invalid(s.span().start, "load.slo".into(), m))?,
            );
        }
        if let Some(seed) = &l.seed {
            out.seed = u64::try_from(*seed.get_ref()).map_err(|_| {
                self.invalid(seed.span().start, "load.seed".into(), "must be ≥ 0".into())
            })?;
        }
        out.warmup = self.bounded(l.warmup.as_ref(), "load.warmup", 0, 0, 1_000)?;
        Ok((out, concurrency))
    }

    pub(crate) fn campaign(&self, spanned: &Spanned<RawCampaign>) -> Result<Campaign, ConfigError> {
        let c = spanned.get_ref();
        let name = c.name.get_ref().trim().to_string();
        if !layout::is_safe_name(&name) {
            return Err(self.invalid(
                c.name.span().start,
                "campaign.name".into(),
                format!(
                    "'{name}' is not a valid campaign name: use letters, digits, '-', '_' or '.', not starting with '.'"
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
            self.nonzero_duration(v, format!("campaign.{field}"))
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
            per_origin: c.per_origin.unwrap_or(false),
            claim_timeout,
            watch_after_run: c.watch_after_run.unwrap_or(false),
            publish_report: c.publish_report.unwrap_or(false),
            budget_usd: c
                .budget_usd
                .as_ref()
                .map(|v| self.usd(v, "campaign.budget_usd"))
                .transpose()?,
            daily_budget_usd: c
                .daily_budget_usd
                .as_ref()
                .map(|v| self.usd(v, "campaign.daily_budget_usd"))
                .transpose()?,
        })
    }

    pub(crate) fn target(
        &self,
        i: usize,
        spanned: &Spanned<RawTarget>,
        default_timeout: f64,
    ) -> Result<Target, ConfigError> {
        let t = spanned.get_ref();
        let field = |f: &str| format!("targets[{i}].{f}");

        let name = t.name.get_ref().trim().to_string();
        if !layout::is_safe_name(&name) {
            return Err(self.invalid(
                t.name.span().start,
                field("name"),
                format!(
                    "'{name}' is not a valid target name: use letters, digits, '-', '_' or '.', not starting with '.'"
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

        let endpoint = self.endpoint(i, spanned, provider, preset)?;
        let api_key = self.api_key(i, spanned, preset, &name)?;
        let params = self.params(i, spanned, preset)?;
        let (timeouts, retry, limits) = self.timeouts_retry_limits(i, spanned, default_timeout)?;
        let (headers, extra) = self.headers_extra(i, spanned, preset)?;
        let max_answer_bytes = match &t.max_answer_bytes {
            Some(v) => {
                self.bounded(Some(v), &field("max_answer_bytes"), 0, 1024, 1 << 30)? as usize
            }
            None => super::DEFAULT_MAX_ANSWER_BYTES,
        };
        let http2 = t.http2.unwrap_or_default();
        let clock = self.clock(i, spanned, &endpoint)?;
        let ca_file = self.ca_file(i, spanned, &endpoint)?;
        let dns_servers = self.dns_servers(i, spanned, &endpoint)?;
        let price = match &t.price {
            Some(p) => {
                p.get_ref()
                    .check()
                    .map_err(|m| self.invalid(p.span().start, field("price"), m))?;
                Some(*p.get_ref())
            }
            None => None,
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
            max_answer_bytes,
            clock,
            http2,
            ca_file,
            dns_servers,
            price,
        })
    }

    /// The extra roots a target trusts (`ca_file`), read and parsed now so that a missing or
    /// broken file stops the run before its first call.
    fn ca_file(
        &self,
        i: usize,
        spanned: &Spanned<RawTarget>,
        endpoint: &super::Endpoint,
    ) -> Result<Option<super::CaFile>, ConfigError> {
        let Some(file) = &spanned.get_ref().ca_file else {
            return Ok(None);
        };
        let field = format!("targets[{i}].ca_file");
        let https = matches!(endpoint, super::Endpoint::Http { base_url } if base_url.starts_with("https://"));
        if !https {
            return Err(self.invalid(
                file.span().start,
                field,
                "trusted roots apply to an https:// base_url only".into(),
            ));
        }
        let path = self.base_dir.join(self.interpolate(file, &field)?);
        let certs = crate::provider::tls::load_pem(&path)
            .map_err(|m| self.invalid(file.span().start, field, m))?;
        Ok(Some(super::CaFile {
            path,
            certs: std::sync::Arc::new(certs),
        }))
    }

    /// The target's API key, from the variable it names (or its preset's).
    fn api_key(
        &self,
        i: usize,
        spanned: &Spanned<RawTarget>,
        preset: &preset::Preset,
        name: &str,
    ) -> Result<Option<Secret>, ConfigError> {
        let t = spanned.get_ref();
        let field = |f: &str| format!("targets[{i}].{f}");
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
        Ok(api_key)
    }

    /// Request parameters, each in its range.
    fn params(
        &self,
        i: usize,
        spanned: &Spanned<RawTarget>,
        preset: &preset::Preset,
    ) -> Result<Params, ConfigError> {
        let t = spanned.get_ref();
        let field = |f: &str| format!("targets[{i}].{f}");
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
            prompt_cache: t.prompt_cache.unwrap_or_default(),
        };
        Ok(params)
    }

    /// Time limits, the retry policy and the request budget.
    fn timeouts_retry_limits(
        &self,
        i: usize,
        spanned: &Spanned<RawTarget>,
        default_timeout: f64,
    ) -> Result<(Timeouts, RetryPolicy, Limits), ConfigError> {
        let t = spanned.get_ref();
        let field = |f: &str| format!("targets[{i}].{f}");
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
        Ok((timeouts, retry, limits))
    }

    /// Extra headers (the preset's, then the target's; values are secrets) and body fields.
    #[allow(clippy::type_complexity)]
    fn headers_extra(
        &self,
        i: usize,
        spanned: &Spanned<RawTarget>,
        preset: &preset::Preset,
    ) -> Result<
        (
            Vec<(String, Secret)>,
            serde_json::Map<String, serde_json::Value>,
        ),
        ConfigError,
    > {
        let t = spanned.get_ref();
        let field = |f: &str| format!("targets[{i}].{f}");
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
        Ok((headers, extra))
    }
}
