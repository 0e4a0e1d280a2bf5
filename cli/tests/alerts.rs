//! Alerts over real HTTP: `watch --notify` against local receivers shaped like a signed
//! webhook, a Slack incoming webhook and GitHub's issues API. Each regression is announced once
//! however often `watch` runs (and when two race), its recovery once, an improvement never; a
//! receiver that was down gets the alert on the next run; a hostile one cannot hold `watch`;
//! no URL, token or signing key appears in any output or in the store.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, Scratch};

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// How a receiver answers.
#[derive(Clone, Copy)]
enum Behaviour {
    Ok,
    /// GitHub's issues API: 201 with an issue number on create, 200 otherwise.
    Github,
    /// Never answers.
    Silent,
    /// 302 to itself, forever.
    RedirectLoop,
    /// 200 with a body that never ends.
    EndlessBody,
}

/// A receiver on 127.0.0.1, recording every request.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(b: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Receiver::serve(listener, b)
    }

    fn serve(listener: TcpListener, b: Behaviour) -> Receiver {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&got);
        let issue = Arc::new(Mutex::new(100u64));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                let issue = Arc::clone(&issue);
                std::thread::spawn(move || {
                    let _ = handle(stream, b, &log, &issue);
                });
            }
        });
        Receiver { url, got }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}

fn handle(
    mut stream: TcpStream,
    b: Behaviour,
    log: &Mutex<Vec<Got>>,
    issue: &Mutex<u64>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let creates = method == "POST" && path.ends_with("/issues");
        log.lock().unwrap().push(Got {
            method,
            path,
            headers,
            body,
        });
        match b {
            Behaviour::Ok => {
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")?;
            }
            Behaviour::Github => {
                let answer = if creates {
                    let mut n = issue.lock().unwrap();
                    *n += 1;
                    format!("{{\"number\":{}}}", *n)
                } else {
                    "{}".to_string()
                };
                let status = if creates { "201 Created" } else { "200 OK" };
                write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                    answer.len()
                )?;
            }
            Behaviour::Silent => {
                std::thread::sleep(Duration::from_secs(120));
                return Ok(());
            }
            Behaviour::RedirectLoop => {
                stream.write_all(
                    b"HTTP/1.1 302 Found\r\nlocation: /again\r\ncontent-length: 0\r\n\r\n",
                )?;
            }
            Behaviour::EndlessBody => {
                stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n")?;
                let chunk = vec![b'x'; 64 * 1024];
                loop {
                    stream.write_all(&chunk)?;
                }
            }
        }
    }
}

const SECRET: &str = "hmac-key-3f9a2c71";
const TOKEN: &str = "ghp_tokenvalue1234567890";

/// A history whose changes span runs 60–71 of 100 (6 h apart from 2026-11-01): watch until the
/// end of run 71 sees them, watch at the end sees them recovered.
fn history(dir: &std::path::Path) {
    let out = Command::new(BIN)
        .args([
            "synth",
            "--scenario",
            "changes",
            "--targets",
            "5",
            "--questions",
            "20",
        ])
        .args([
            "--every",
            "6h",
            "--records",
            "10000",
            "--start",
            "2026-11-01T00:00:00Z",
        ])
        .args([
            "--seed",
            "21",
            "--change-from",
            "60",
            "--change-runs",
            "12",
            "--out",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// While the changes last (run 71 started 2026-11-18T18:00Z).
const DURING: &str = "2026-11-19T00:00:00Z";
/// Four days later: every metric back to its baseline.
const AFTER: &str = "2026-11-26T00:00:00Z";

fn config(dir: &Scratch, notify: &str) -> std::path::PathBuf {
    dir.write(
        "watch.toml",
        &format!(
            "[[targets]]\nname = \"sim\"\nprovider = \"sim\"\nmodel = \"m\"\n\n\
             [watch]\ndelivery_timeout = \"2s\"\n\n{notify}"
        ),
    )
}

fn watch(dir: &Scratch, until: &str, cfg: &std::path::Path, env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(["watch", "--notify", "--until", until, "--config"])
        .arg(cfg)
        .arg("--from")
        .arg(dir.0.join("store"))
        .env_remove("GITHUB_ACTIONS")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under the store's alerts/ folder, as text.
fn alert_files(dir: &Scratch) -> String {
    support::walk(&dir.0.join("store").join("alerts"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn opened(got: &[Got]) -> Vec<Value> {
    got.iter()
        .map(Got::json)
        .filter(|v| v["event"] == "opened")
        .collect()
}

#[test]
fn each_regression_is_announced_once_then_resolved_once_and_no_secret_leaks() {
    let dir = Scratch::new("alerts-once");
    history(&dir.0.join("store"));
    let hook = Receiver::start(Behaviour::Ok);
    let slack = Receiver::start(Behaviour::Ok);
    let github = Receiver::start(Behaviour::Github);
    let cfg = config(
        &dir,
        "[[notify]]\nkind = \"webhook\"\nname = \"hook\"\nurl_env = \"HOOK_URL\"\nsecret_env = \"HOOK_SECRET\"\n\n\
         [[notify]]\nkind = \"slack\"\nname = \"chat\"\nurl_env = \"SLACK_URL\"\n\n\
         [[notify]]\nkind = \"github_issue\"\nname = \"gh\"\nrepo = \"acme/evals\"\ntoken_env = \"GH_TOKEN\"\n",
    );
    let hook_url = format!("{}/hooks/llmpulse?key=querysecret", hook.url);
    let env = [
        ("HOOK_URL", hook_url.as_str()),
        ("HOOK_SECRET", SECRET),
        ("SLACK_URL", slack.url.as_str()),
        ("GH_TOKEN", TOKEN),
        ("GITHUB_API_URL", github.url.as_str()),
    ];

    // Twice while the regressions last: announced on the first run only.
    let first = watch(&dir, DURING, &cfg, &env);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let announced = opened(&hook.got());
    assert!(!announced.is_empty(), "{}", text(&first));
    let second = watch(&dir, DURING, &cfg, &env);
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        opened(&hook.got()).len(),
        announced.len(),
        "a second watch announced again"
    );
    // One alert per (target, metric) regression, none for the improvement (synthetic-4).
    let mut keys: Vec<String> = announced
        .iter()
        .map(|v| v["alert"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), announced.len(), "{keys:?}");
    assert!(
        keys.iter().any(|k| k == "synthetic-2.success_rate"),
        "{keys:?}"
    );
    assert!(keys.iter().any(|k| k == "synthetic-3.coverage"), "{keys:?}");
    assert!(
        keys.iter().all(|k| !k.starts_with("synthetic-4")),
        "{keys:?}"
    );

    // The webhook body is signed with the key; the receiver can check it.
    for g in hook.got() {
        let sig = g.header("x-llmpulse-signature").expect("signed");
        let want = hmac_sha256_hex(SECRET.as_bytes(), &g.body);
        assert_eq!(sig, format!("sha256={want}"));
    }
    // Slack got one message per opening, each a short table.
    let chat: Vec<Value> = slack.got().iter().map(Got::json).collect();
    assert_eq!(chat.len(), announced.len());
    assert!(
        chat.iter()
            .all(|m| m["text"].as_str().unwrap().contains("regression"))
    );
    // GitHub: one issue per regression, with the token; a comment on the second run (a day's
    // note while it lasts), never a second issue.
    let gh = github.got();
    let created: Vec<&Got> = gh
        .iter()
        .filter(|g| g.method == "POST" && g.path == "/repos/acme/evals/issues")
        .collect();
    assert_eq!(created.len(), announced.len());
    assert!(
        created
            .iter()
            .all(|g| g.header("authorization") == Some(&*format!("Bearer {TOKEN}")))
    );
    let comments = gh.iter().filter(|g| g.path.ends_with("/comments")).count();
    assert_eq!(
        comments,
        announced.len(),
        "one 'still' comment per open issue"
    );

    // Recovered: each announced once as resolved, GitHub issues closed.
    let third = watch(&dir, AFTER, &cfg, &env);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    let resolved: Vec<Value> = hook
        .got()
        .iter()
        .map(Got::json)
        .filter(|v| v["event"] == "resolved")
        .collect();
    assert_eq!(resolved.len(), announced.len(), "{}", text(&third));
    let fourth = watch(&dir, AFTER, &cfg, &env);
    assert_eq!(fourth.status.code(), Some(0));
    let resolved_again = hook
        .got()
        .iter()
        .filter(|g| g.json()["event"] == "resolved")
        .count();
    assert_eq!(resolved_again, announced.len());
    let closed = github
        .got()
        .iter()
        .filter(|g| g.method == "PATCH" && g.json()["state"] == "closed")
        .count();
    assert_eq!(closed, announced.len());

    // The dashboard's summary lists them as resolved, with durations.
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("store/alerts/state.json")).unwrap())
            .unwrap();
    let alerts = state["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), announced.len());
    assert!(
        alerts
            .iter()
            .all(|a| a["open"] == false && a["duration_sec"].as_i64() > Some(0))
    );

    // No secret anywhere: output of every run, the store's alert state.
    let everything = [&first, &second, &third, &fourth]
        .iter()
        .map(|o| text(o))
        .collect::<String>()
        + &alert_files(&dir);
    for secret in [SECRET, TOKEN, "querysecret", hook_url.as_str()] {
        assert!(!everything.contains(secret), "'{secret}' leaked");
    }
}

#[test]
fn two_watches_racing_announce_once() {
    let dir = Scratch::new("alerts-race");
    history(&dir.0.join("store"));
    let hook = Receiver::start(Behaviour::Ok);
    let cfg = config(
        &dir,
        "[[notify]]\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\n",
    );
    let env = [("HOOK_URL", hook.url.as_str())];
    let spawn = || {
        Command::new(BIN)
            .args(["watch", "--notify", "--until", DURING, "--config"])
            .arg(&cfg)
            .arg("--from")
            .arg(dir.0.join("store"))
            .envs(env)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert_eq!(a.wait().unwrap().code(), Some(1));
    assert_eq!(b.wait().unwrap().code(), Some(1));
    let got = opened(&hook.got());
    let mut keys: Vec<&str> = got.iter().map(|v| v["alert"].as_str().unwrap()).collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert!(n > 0);
    assert_eq!(keys.len(), n, "an alert was sent twice: {keys:?}");
}

#[test]
fn a_receiver_that_was_down_gets_the_alert_on_the_next_watch() {
    let dir = Scratch::new("alerts-down");
    history(&dir.0.join("store"));
    // A port with nothing listening: connections are refused.
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let cfg = config(
        &dir,
        "[[notify]]\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\n",
    );
    let env = [("HOOK_URL", url.as_str())];
    let down = watch(&dir, DURING, &cfg, &env);
    assert_eq!(down.status.code(), Some(1));
    assert!(
        text(&down).contains("not delivered (will retry)"),
        "{}",
        text(&down)
    );
    // The receiver comes up on that port; the pending alerts go out, once.
    let hook = Receiver::serve(
        TcpListener::bind(("127.0.0.1", port)).unwrap(),
        Behaviour::Ok,
    );
    let up = watch(&dir, DURING, &cfg, &env);
    assert_eq!(up.status.code(), Some(1));
    let got = opened(&hook.got());
    assert!(!got.is_empty(), "{}", text(&up));
    let again = watch(&dir, DURING, &cfg, &env);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(opened(&hook.got()).len(), got.len());
}

#[test]
fn hostile_receivers_cannot_hold_watch() {
    let dir = Scratch::new("alerts-hostile");
    history(&dir.0.join("store"));
    for b in [
        Behaviour::Silent,
        Behaviour::RedirectLoop,
        Behaviour::EndlessBody,
    ] {
        let r = Receiver::start(b);
        let cfg = config(
            &dir,
            "[[notify]]\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\n",
        );
        let started = Instant::now();
        // Only one target's regression, so one alert goes to the hostile receiver.
        let out = Command::new(BIN)
            .args([
                "watch",
                "--notify",
                "--until",
                DURING,
                "--target",
                "synthetic-2",
            ])
            .arg("--config")
            .arg(&cfg)
            .arg("--from")
            .arg(dir.0.join("store"))
            .env("HOOK_URL", &r.url)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        // Three attempts of at most 2 s, with backoff: well under the 60 s delivery budget.
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        if let Behaviour::RedirectLoop = b {
            assert!(
                text(&out).contains("redirects are not followed"),
                "{}",
                text(&out)
            );
            assert_eq!(r.got().len(), 1, "a redirect was followed");
        }
    }
}

/// HMAC-SHA256 as the receiver computes it (RFC 2104 over SHA-256), from the sha2 crate.
fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(msg.iter().copied())
        .collect();
    let ih = Sha256::digest(&inner);
    let outer: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(ih.iter().copied())
        .collect();
    hex::encode(Sha256::digest(&outer))
}

#[test]
fn a_campaign_slot_watches_alerts_and_publishes_the_dashboard_after_it_runs() {
    let dir = Scratch::new("alerts-after-slot");
    let store = dir.0.join("store");
    // The campaign's history so far, ending now, with the changes in its last 12 runs.
    let out = Command::new(BIN)
        .args([
            "synth",
            "--scenario",
            "changes",
            "--targets",
            "5",
            "--questions",
            "20",
        ])
        .args([
            "--every",
            "6h",
            "--records",
            "8400",
            "--seed",
            "31",
            "--campaign",
            "nightly",
        ])
        .arg("--out")
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hook = Receiver::start(Behaviour::Ok);
    let start = (chrono::Utc::now() - chrono::Duration::minutes(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let end = (chrono::Utc::now() + chrono::Duration::hours(24))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    dir.write("suite.toml", support::ONE_QUESTION);
    let cfg = dir.write(
        "config.toml",
        &format!(
            "suite = \"suite.toml\"\noutput = \"{}\"\n\
             [campaign]\nname = \"nightly\"\nstart = \"{start}\"\nend = \"{end}\"\nevery = \"1h\"\n\
             watch_after_run = true\npublish_report = true\n\
             [[targets]]\nname = \"sim\"\nprovider = \"sim\"\nmodel = \"m\"\n\
             [[notify]]\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\n",
            store.display()
        ),
    );
    let run = Command::new(BIN)
        .args(["run", "--slot", "auto", "--quiet", "--config"])
        .arg(&cfg)
        .env("XDG_CACHE_HOME", dir.0.join("cache"))
        .env("HOOK_URL", &hook.url)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    assert!(
        text(&run).contains("watch after the slot: "),
        "{}",
        text(&run)
    );
    // The regressions went out once; the dashboard is in the store, its badge says so.
    let got = opened(&hook.got());
    assert!(
        got.iter().any(|v| v["alert"] == "synthetic-2.success_rate"),
        "{got:#?}"
    );
    for f in ["index.html", "summary.json", "summary.md", "status.json"] {
        assert!(
            store.join("dashboard").join(f).is_file(),
            "dashboard/{f} missing"
        );
    }
    let badge: Value =
        serde_json::from_slice(&std::fs::read(store.join("dashboard/status.json")).unwrap())
            .unwrap();
    assert_eq!(badge["schemaVersion"], 1);
    assert_eq!(badge["color"], "red");
    assert!(
        badge["message"].as_str().unwrap().contains("regressed"),
        "{badge}"
    );
    let page = std::fs::read_to_string(store.join("dashboard/index.html")).unwrap();
    assert!(page.contains("id=\"alerts\"") && page.contains("synthetic-2.success_rate"));
}

#[test]
fn a_slot_its_budget_stopped_is_an_alert_until_a_slot_runs_within_budget() {
    let dir = Scratch::new("alerts-budget");
    let store = dir.0.join("store");
    let sim = support::Sim::start(&["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "20"]);
    let hook = Receiver::start(Behaviour::Ok);
    dir.write("suite.toml", support::ONE_QUESTION);
    let start = (chrono::Utc::now() - chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let end = (chrono::Utc::now() + chrono::Duration::hours(24))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // $1,000 per million input tokens: each call costs about a dime, so $0.50 buys a few.
    let config = |budget: f64| {
        format!(
            "suite = \"suite.toml\"\nrepetitions = 10\nconcurrency = 2\noutput = \"{}\"\n\
             [campaign]\nname = \"priced\"\nstart = \"{start}\"\nend = \"{end}\"\nevery = \"1h\"\n\
             budget_usd = {budget}\nwatch_after_run = true\n{}\
             [[notify]]\nkind = \"webhook\"\nurl_env = \"HOOK_URL\"\n",
            store.display(),
            support::target(
                "priced",
                &sim.base_url,
                "max_tokens = 20\nprice = { input_per_mtok = 1000.0, output_per_mtok = 2000.0 }"
            ),
        )
    };
    let slot = |n: &str, budget: f64| {
        let cfg = dir.write("config.toml", &config(budget));
        let out = Command::new(BIN)
            .args(["run", "--quiet", "--slot", n, "--config"])
            .arg(&cfg)
            .env("XDG_CACHE_HOME", dir.0.join("cache"))
            .env("HOOK_URL", &hook.url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        cfg
    };
    let budget_events = |event: &str| -> Vec<Value> {
        hook.got()
            .iter()
            .map(Got::json)
            .filter(|v| v["event"] == event && v["alert"] == "budget.priced")
            .collect()
    };

    // Slot 0 runs out of money: the campaign's alert opens, once, and says why.
    let cfg = slot("0", 0.5);
    let opened = budget_events("opened");
    assert_eq!(opened.len(), 1, "{:#?}", hook.got());
    let said = opened[0]["text"].as_str().unwrap();
    assert!(
        said.contains("campaign priced") && said.contains("stopped for budget"),
        "{said}"
    );
    // `campaign status` names the slot, the calls not made and the stored account.
    let status = support::campaign_status(&cfg);
    let b = &status["budget"];
    assert_eq!(b["stopped_slots"], serde_json::json!([0]), "{status:#}");
    assert!(b["skipped_calls"].as_u64().unwrap() > 0, "{b:#}");
    assert!(support::f(&b["spent_usd"]) <= 0.5, "{b:#}");
    assert_eq!(b["budget_usd"], 0.5);

    // With a larger budget slot 1 runs whole: the alert resolves, once.
    slot("1", 100.0);
    assert_eq!(budget_events("opened").len(), 1);
    let resolved = budget_events("resolved");
    assert_eq!(resolved.len(), 1, "{:#?}", hook.got());
    assert!(
        resolved[0]["text"]
            .as_str()
            .unwrap()
            .contains("ran within its budget"),
        "{:#}",
        resolved[0]
    );
}
