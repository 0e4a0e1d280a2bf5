//! `[watch]` (how `llmpulse watch` compares a window of runs with its baseline) and
//! `[[notify]]` (where its alerts go). A notifier names the environment variables that hold its
//! URL and secrets, never the values: a config file is shared and committed, a secret is not.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::validate::Cx;

/// `[watch]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWatch {
    /// The recent runs compared: those of this long before now (default `3d`).
    pub(crate) window: Option<Spanned<String>>,
    /// Or the last N runs of each target.
    pub(crate) window_runs: Option<Spanned<i64>>,
    /// The runs before the window they are compared with (default `14d`).
    pub(crate) baseline: Option<Spanned<String>>,
    /// The false discovery rate over all tests (Benjamini–Hochberg; default 0.01).
    pub(crate) q: Option<Spanned<f64>>,
    /// Runs the window needs before a target is tested (default 5).
    pub(crate) min_runs: Option<Spanned<i64>>,
    /// Runs the baseline needs (default 10).
    pub(crate) min_baseline_runs: Option<Spanned<i64>>,
    /// The least change that counts, per metric: relative for times, speeds, cost, energy and
    /// memory, absolute for rates and grades (`latency_p50 = 0.20`).
    #[serde(default)]
    pub(crate) thresholds: BTreeMap<String, Spanned<f64>>,
    /// One alert request's time limit (default `10s`).
    pub(crate) delivery_timeout: Option<Spanned<String>>,
}

/// `[[notify]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    /// `webhook` (a JSON POST), `slack` (an incoming webhook) or `github_issue`.
    pub(crate) kind: Spanned<String>,
    /// A name for this destination in the alert state (default: its kind).
    pub(crate) name: Option<Spanned<String>>,
    /// The environment variable that holds the webhook URL (webhook, slack).
    pub(crate) url_env: Option<Spanned<String>>,
    /// The variable that holds the webhook secret: the body's HMAC-SHA256 goes in
    /// `x-llmpulse-signature`.
    pub(crate) secret_env: Option<Spanned<String>>,
    /// The repository issues are opened in (`owner/name`; github_issue).
    pub(crate) repo: Option<Spanned<String>>,
    /// The variable that holds the GitHub token (github_issue).
    pub(crate) token_env: Option<Spanned<String>>,
}

/// `[watch]`: each value unset keeps `watch`'s default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchSettings {
    pub window: Option<Duration>,
    pub window_runs: Option<u32>,
    pub baseline: Option<Duration>,
    pub q: Option<f64>,
    pub min_runs: Option<u32>,
    pub min_baseline_runs: Option<u32>,
    /// Metric name → threshold (relative for times, speeds, cost, energy and memory; absolute
    /// for rates and grades).
    pub thresholds: BTreeMap<String, f64>,
    /// One alert request's time limit (default 10 s; three attempts per `watch`).
    pub delivery_timeout: Option<Duration>,
}

/// Where an alert goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyKind {
    /// A JSON POST, signed with HMAC-SHA256 when a secret is given.
    Webhook {
        url_env: String,
        secret_env: Option<String>,
    },
    /// A Slack incoming webhook.
    Slack { url_env: String },
    /// One GitHub issue per regression: opened, commented while it lasts, closed on recovery.
    GithubIssue { repo: String, token_env: String },
}

/// One `[[notify]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySettings {
    /// Unique among the config's notifiers; names its delivery state in the store.
    pub name: String,
    pub kind: NotifyKind,
}

/// The metric names `[watch.thresholds]` accepts (those of `llmpulse_report::watch::Metric`).
pub const WATCH_METRICS: [&str; 16] = [
    "latency_p50",
    "latency_p95",
    "ttft_p50",
    "output_speed_p50",
    "success_rate",
    "rate_limited_rate",
    "coverage",
    "grounding",
    "quality_score",
    "answer_correct",
    "instructions_followed",
    "json_valid",
    "tool_call_valid",
    "cost_per_call",
    "energy_per_token",
    "memory_mb",
];

impl Cx<'_> {
    pub(crate) fn watch(&self, w: &RawWatch) -> Result<WatchSettings, ConfigError> {
        let duration = |v: &Option<Spanned<String>>, field: &str| {
            v.as_ref()
                .map(|v| self.nonzero_duration(v, format!("watch.{field}")))
                .transpose()
        };
        let count = |v: &Option<Spanned<i64>>, field: &str, min: i64| {
            v.as_ref()
                .map(|v| self.bounded(Some(v), &format!("watch.{field}"), 0, min, 100_000))
                .transpose()
        };
        let window = duration(&w.window, "window")?;
        let window_runs = count(&w.window_runs, "window_runs", 2)?;
        if let (Some(_), Some(runs)) = (&w.window, &w.window_runs) {
            return Err(self.invalid(
                runs.span().start,
                "watch.window_runs".into(),
                "give window or window_runs, not both".into(),
            ));
        }
        let q = self.in_range(&w.q, "watch.q".into(), 1e-9, 0.5)?;
        let mut thresholds = BTreeMap::new();
        for (name, v) in &w.thresholds {
            if !WATCH_METRICS.contains(&name.as_str()) {
                return Err(self.invalid(
                    v.span().start,
                    format!("watch.thresholds.{name}"),
                    format!(
                        "no metric '{name}': use one of {}",
                        WATCH_METRICS.join(", ")
                    ),
                ));
            }
            let x = *v.get_ref();
            if !(x > 0.0 && x.is_finite()) {
                return Err(self.invalid(
                    v.span().start,
                    format!("watch.thresholds.{name}"),
                    format!("expected a positive number, found {x}"),
                ));
            }
            thresholds.insert(name.clone(), x);
        }
        Ok(WatchSettings {
            window,
            window_runs,
            baseline: duration(&w.baseline, "baseline")?,
            q,
            min_runs: count(&w.min_runs, "min_runs", 2)?,
            min_baseline_runs: count(&w.min_baseline_runs, "min_baseline_runs", 2)?,
            thresholds,
            delivery_timeout: duration(&w.delivery_timeout, "delivery_timeout")?,
        })
    }

    pub(crate) fn notifiers(
        &self,
        raw: &[Spanned<RawNotify>],
    ) -> Result<Vec<NotifySettings>, ConfigError> {
        let mut out: Vec<NotifySettings> = Vec::new();
        for (i, spanned) in raw.iter().enumerate() {
            let n = spanned.get_ref();
            let at = spanned.span().start;
            let field = |f: &str| format!("notify[{i}].{f}");
            let env_name = |v: &Option<Spanned<String>>, f: &str| -> Result<String, ConfigError> {
                let Some(v) = v else {
                    return Err(self.invalid(
                        at,
                        field(f),
                        format!("a {} notifier needs {f}: the name of the environment variable that holds it", n.kind.get_ref()),
                    ));
                };
                let name = v.get_ref();
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                {
                    return Err(self.invalid(
                        v.span().start,
                        field(f),
                        format!(
                            "'{name}' is not an environment variable's name (A–Z, 0–9, _): \
                             the value itself belongs in the environment, not in the file"
                        ),
                    ));
                }
                Ok(name.clone())
            };
            let kind = match n.kind.get_ref().as_str() {
                "webhook" => NotifyKind::Webhook {
                    url_env: env_name(&n.url_env, "url_env")?,
                    secret_env: n
                        .secret_env
                        .as_ref()
                        .map(|_| env_name(&n.secret_env, "secret_env"))
                        .transpose()?,
                },
                "slack" => NotifyKind::Slack {
                    url_env: env_name(&n.url_env, "url_env")?,
                },
                "github_issue" => {
                    let Some(repo) = &n.repo else {
                        return Err(self.invalid(
                            at,
                            field("repo"),
                            "a github_issue notifier needs repo = \"OWNER/NAME\"".into(),
                        ));
                    };
                    let r = repo.get_ref();
                    let ok = r.split_once('/').is_some_and(|(o, n)| {
                        !o.is_empty()
                            && !n.is_empty()
                            && !n.contains('/')
                            && r.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
                    });
                    if !ok {
                        return Err(self.invalid(
                            repo.span().start,
                            field("repo"),
                            format!("'{r}' is not OWNER/NAME"),
                        ));
                    }
                    NotifyKind::GithubIssue {
                        repo: r.clone(),
                        token_env: match &n.token_env {
                            Some(_) => env_name(&n.token_env, "token_env")?,
                            None => "GITHUB_TOKEN".into(),
                        },
                    }
                }
                other => {
                    return Err(self.invalid(
                        n.kind.span().start,
                        field("kind"),
                        format!("no notifier kind '{other}': use webhook, slack or github_issue"),
                    ));
                }
            };
            let name = match &n.name {
                Some(v) => v.get_ref().clone(),
                None => format!("{}-{i}", n.kind.get_ref()),
            };
            if !crate::layout::is_safe_name(&name) {
                return Err(self.invalid(
                    n.name.as_ref().map_or(at, |v| v.span().start),
                    field("name"),
                    format!("'{name}' is not a valid name: letters, digits, '-', '_' or '.'"),
                ));
            }
            if out.iter().any(|o| o.name == name) {
                return Err(self.invalid(
                    n.name.as_ref().map_or(at, |v| v.span().start),
                    field("name"),
                    format!("two notifiers are named '{name}'"),
                ));
            }
            out.push(NotifySettings { name, kind });
        }
        Ok(out)
    }
}
