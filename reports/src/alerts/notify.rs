//! Sending one alert message: a signed webhook, a Slack incoming webhook, or a GitHub issue
//! (opened, commented, closed). URLs and tokens are read from the environment variables the
//! config names, and never appear in a log, an error or the store: an error says what failed
//! (a status, a time-out), never where. A hostile receiver cannot hold `watch`: every request
//! has a time limit, redirects are not followed, and at most 64 KiB of an answer is read.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::event::EventBody;
use llmpulse_core::config::{NotifyKind, NotifySettings};
use llmpulse_core::secret::{Secret, scrub};

/// The most of a receiver's answer that is read.
const MAX_ANSWER: usize = 64 * 1024;
/// One request's time limit, unless `[watch] delivery_timeout` says otherwise.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per message within one `watch` (then it stays pending for the next).
const ATTEMPTS: u32 = 3;

/// The header that carries a webhook body's HMAC-SHA256: `sha256=HEX`.
pub const SIGNATURE_HEADER: &str = "x-llmpulse-signature";

/// What is sent.
pub struct Message<'a> {
    pub event: &'a EventBody,
    /// The GitHub issue the episode opened, for its later events.
    pub issue: Option<u64>,
}

/// What a delivery left to remember.
#[derive(Debug, Default)]
pub struct Receipt {
    pub issue: Option<u64>,
}

/// Whether a notifier takes the daily `ongoing-…` events (a GitHub issue gets a comment; chat
/// and webhooks hear only of openings and recoveries).
pub fn wants_ongoing(n: &NotifySettings) -> bool {
    matches!(n.kind, NotifyKind::GithubIssue { .. })
}

/// Sends messages, all within one deadline.
pub struct Deliverer<'a> {
    client: reqwest::Client,
    deadline: Instant,
    env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// Where the dashboard is, for links in messages.
    pub dashboard: Option<String>,
    /// One request's time limit.
    pub timeout: Duration,
}

impl<'a> Deliverer<'a> {
    /// `budget`: how long all deliveries of one `watch` may take together; `env` reads the
    /// variables the notifiers name.
    pub fn new(
        budget: Duration,
        env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Deliverer<'a>, String> {
        llmpulse_core::provider::http::install_crypto();
        let client = reqwest::Client::builder()
            .user_agent(concat!("llmpulse/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", e.without_url()))?;
        Ok(Deliverer {
            client,
            deadline: Instant::now() + budget,
            env,
            dashboard: None,
            timeout: REQUEST_TIMEOUT,
        })
    }

    fn var(&self, name: &str) -> Result<Secret, String> {
        (self.env)(name)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| format!("the environment variable {name} is not set"))
    }

    /// Sends `m` through `n`, retrying a time-out, a 429 or a 5xx with backoff.
    pub async fn send(&self, n: &NotifySettings, m: &Message<'_>) -> Result<Receipt, String> {
        let mut secrets: Vec<Secret> = Vec::new();
        let result = self.send_inner(n, m, &mut secrets).await;
        let refs: Vec<&Secret> = secrets.iter().collect();
        result.map_err(|e| scrub(&e, &refs))
    }

    async fn send_inner(
        &self,
        n: &NotifySettings,
        m: &Message<'_>,
        secrets: &mut Vec<Secret>,
    ) -> Result<Receipt, String> {
        match &n.kind {
            NotifyKind::Webhook {
                url_env,
                secret_env,
            } => {
                let url = self.var(url_env)?;
                secrets.push(url.clone());
                let body = serde_json::to_vec(&json!({
                    "source": "llmpulse",
                    "event": event_kind(&m.event.event),
                    "alert": m.event.alert,
                    "episode": m.event.episode,
                    "at": m.event.at,
                    "text": m.event.text,
                    "finding": m.event.finding,
                    "dashboard": self.dashboard,
                }))
                .unwrap_or_default();
                let mut headers = vec![("content-type", "application/json".to_string())];
                if let Some(name) = secret_env {
                    let key = self.var(name)?;
                    headers.push((SIGNATURE_HEADER, signature(key.expose(), &body)));
                    secrets.push(key);
                }
                self.post(reqwest::Method::POST, url.expose(), headers, body)
                    .await?;
                Ok(Receipt::default())
            }
            NotifyKind::Slack { url_env } => {
                let url = self.var(url_env)?;
                secrets.push(url.clone());
                let body = serde_json::to_vec(
                    &json!({ "text": slack_text(m.event, self.dashboard.as_deref()) }),
                )
                .unwrap_or_default();
                let headers = vec![("content-type", "application/json".to_string())];
                self.post(reqwest::Method::POST, url.expose(), headers, body)
                    .await?;
                Ok(Receipt::default())
            }
            NotifyKind::GithubIssue { repo, token_env } => {
                let token = self.var(token_env)?;
                secrets.push(token.clone());
                let api =
                    (self.env)("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
                let api = api.trim_end_matches('/');
                let headers = vec![
                    ("authorization", format!("Bearer {}", token.expose())),
                    ("accept", "application/vnd.github+json".to_string()),
                    ("x-github-api-version", "2022-11-28".to_string()),
                    ("content-type", "application/json".to_string()),
                ];
                let ev = m.event;
                match (event_kind(&ev.event), m.issue) {
                    ("opened", _) => {
                        let body = json!({
                            "title": format!("llmpulse: {}", ev.text),
                            "body": issue_body(ev, self.dashboard.as_deref()),
                            "labels": ["llmpulse", "regression"],
                        });
                        let answer = self
                            .post(
                                reqwest::Method::POST,
                                &format!("{api}/repos/{repo}/issues"),
                                headers,
                                serde_json::to_vec(&body).unwrap_or_default(),
                            )
                            .await?;
                        let number = serde_json::from_slice::<serde_json::Value>(&answer)
                            .ok()
                            .and_then(|v| v["number"].as_u64())
                            .ok_or("GitHub's answer names no issue number")?;
                        Ok(Receipt {
                            issue: Some(number),
                        })
                    }
                    (kind, Some(issue)) => {
                        let comment = json!({ "body": issue_comment(ev, kind) });
                        self.post(
                            reqwest::Method::POST,
                            &format!("{api}/repos/{repo}/issues/{issue}/comments"),
                            headers.clone(),
                            serde_json::to_vec(&comment).unwrap_or_default(),
                        )
                        .await?;
                        if kind == "resolved" {
                            self.post(
                                reqwest::Method::PATCH,
                                &format!("{api}/repos/{repo}/issues/{issue}"),
                                headers,
                                serde_json::to_vec(
                                    &json!({ "state": "closed", "state_reason": "completed" }),
                                )
                                .unwrap_or_default(),
                            )
                            .await?;
                        }
                        Ok(Receipt { issue: Some(issue) })
                    }
                    (_, None) => Err("no issue was opened for this episode".into()),
                }
            }
        }
    }

    /// One request with retries; the answer's first 64 KiB on a 2xx.
    async fn post(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: Vec<(&str, String)>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let mut wait = Duration::from_millis(500);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("out of time for deliveries ({last})"));
            }
            let mut req = self
                .client
                .request(method.clone(), url)
                .timeout(self.timeout.min(left))
                .body(body.clone());
            for (k, v) in &headers {
                req = req.header(*k, v);
            }
            let retry = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let answer = read_capped(resp).await;
                    if status.is_success() {
                        return answer;
                    }
                    last = if status.is_redirection() {
                        format!(
                            "HTTP {status}: the receiver redirects, and redirects are not followed"
                        )
                    } else {
                        format!("HTTP {status}")
                    };
                    status.as_u16() == 429 || status.is_server_error()
                }
                Err(e) => {
                    last = if e.is_timeout() {
                        "timed out".to_string()
                    } else if e.is_connect() {
                        "could not connect".to_string()
                    } else {
                        e.without_url().to_string()
                    };
                    true
                }
            };
            if !retry || attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(wait.min(self.deadline.saturating_duration_since(Instant::now())))
                .await;
            wait *= 2;
        }
        Err(last)
    }
}

/// Reads at most [`MAX_ANSWER`] bytes of an answer, within the request's time limit.
async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                let room = MAX_ANSWER - out.len();
                out.extend_from_slice(&c[..c.len().min(room)]);
                if out.len() >= MAX_ANSWER {
                    return Ok(out);
                }
            }
            Ok(None) => return Ok(out),
            // A body cut off or too slow: the status already said how it went.
            Err(_) => return Ok(out),
        }
    }
}

/// `opened`, `resolved` or `ongoing`.
fn event_kind(event: &str) -> &str {
    if event.starts_with("ongoing") {
        "ongoing"
    } else {
        event
    }
}

/// `sha256=HEX` of `body` under `key`: what a receiver recomputes to check the sender.
pub fn signature(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn figure_rows(ev: &EventBody) -> String {
    let Some(f) = &ev.finding else {
        return String::new();
    };
    let num = |v: &serde_json::Value| v.as_f64().map(|x| format!("{x:.4}")).unwrap_or_default();
    format!(
        "| | value | runs | 95% interval |\n|---|---|---|---|\n\
         | baseline | {} | {} | {} – {} |\n| now | {} | {} | {} – {} |\n\n\
         q = {}, since {}",
        num(&f["baseline"]["value"]),
        f["baseline"]["n"],
        num(&f["baseline"]["ci"][0]),
        num(&f["baseline"]["ci"][1]),
        num(&f["current"]["value"]),
        f["current"]["n"],
        num(&f["current"]["ci"][0]),
        num(&f["current"]["ci"][1]),
        f["q_value"]
            .as_f64()
            .map(|q| format!("{q:.2e}"))
            .unwrap_or_default(),
        f["since"].as_str().unwrap_or("?"),
    )
}

fn slack_text(ev: &EventBody, dashboard: Option<&str>) -> String {
    let head = match event_kind(&ev.event) {
        "opened" => ":red_circle: *llmpulse regression*",
        "resolved" => ":large_green_circle: *llmpulse: recovered*",
        _ => ":large_orange_circle: *llmpulse: still regressed*",
    };
    let mut s = format!("{head} {}\n", ev.text);
    let rows = figure_rows(ev);
    if !rows.is_empty() {
        s.push_str(&format!("```\n{rows}\n```\n"));
    }
    if let Some(d) = dashboard {
        s.push_str(&format!("<{d}|dashboard>\n"));
    }
    s
}

fn issue_body(ev: &EventBody, dashboard: Option<&str>) -> String {
    let mut s = format!(
        "`llmpulse watch` found a regression: **{}**\n\n{}\n\nThis issue is closed when the \
         metric recovers (alert `{}`, episode {}).\n",
        ev.text,
        figure_rows(ev),
        ev.alert,
        ev.episode
    );
    if let Some(d) = dashboard {
        s.push_str(&format!("\nDashboard: {d}\n"));
    }
    s
}

fn issue_comment(ev: &EventBody, kind: &str) -> String {
    match kind {
        "resolved" => format!("Recovered at {}: {}", ev.at.to_rfc3339(), ev.text),
        _ => format!(
            "Still regressed at {}: {}\n\n{}",
            ev.at.to_rfc3339(),
            ev.text,
            figure_rows(ev)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
