//! End to end: the Cloud Run service accepts only callers with a valid Google OIDC ID token
//! (signed by a key of the configured JWKS, issuer Google, this audience, not expired, the
//! allowed service account), and job mode splits one slot over its tasks. The JWKS is served on
//! loopback from a test key (tests/fixtures/oidc).

#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use support::{Scratch, free_port};

const CLOUDRUN: &str = env!("CARGO_BIN_EXE_cloudrun");
const AUDIENCE: &str = "https://llmpulse-abc123-ew.a.run.app";
const SCHEDULER: &str = "scheduler@llmpulse-test.iam.gserviceaccount.com";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc")
}

/// Serves the test JWKS on loopback, in a thread with its own runtime.
fn serve_jwks() -> String {
    // Bound here, before the thread starts: a port only chosen here could be taken by another
    // test's server before the thread binds it.
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let jwks = std::fs::read_to_string(fixtures().join("jwks.json")).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/certs",
                axum::routing::get(move || {
                    let body = jwks.clone();
                    async move { ([("content-type", "application/json")], body) }
                }),
            );
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    format!("http://127.0.0.1:{port}/certs")
}

fn token(aud: &str, email: &str, exp_in: i64, kid: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({
        "iss": "https://accounts.google.com", "aud": aud, "iat": now, "exp": now + exp_in,
        "email": email, "email_verified": true, "sub": "1234567890",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let key = std::fs::read(fixtures().join("test-signing-key.pem")).unwrap();
    encode(&header, &claims, &EncodingKey::from_rsa_pem(&key).unwrap()).unwrap()
}

fn write_config(dir: &Scratch) -> PathBuf {
    let start = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let end = (chrono::Utc::now() + chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    dir.write("suite.toml", support::ONE_QUESTION);
    dir.write(
        "llmpulse.toml",
        &format!(
            r#"suite = "suite.toml"
output = "{out}"
repetitions = 3
[campaign]
name = "cloudrun"
start = "{start}"
end = "{end}"
every = "1h"
[[targets]]
name = "a"
provider = "sim"
model = "a"
[targets.sim]
ttft_ms = 5
itl_ms = 1
[[targets]]
name = "b"
provider = "sim"
model = "b"
[targets.sim]
ttft_ms = 5
itl_ms = 1
"#,
            out = dir.0.join("out").display()
        ),
    )
}

struct Service {
    child: Child,
    url: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(config: &Path, jwks: &str) -> Service {
    let port = free_port();
    let child = Command::new(CLOUDRUN)
        .env("LLMPULSE_CONFIG", config)
        .env("LLMPULSE_OIDC_AUDIENCE", AUDIENCE)
        .env("LLMPULSE_OIDC_EMAIL", SCHEDULER)
        .env("LLMPULSE_OIDC_JWKS_URL", jwks)
        .env("LLMPULSE_HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env_remove("CLOUD_RUN_TASK_INDEX")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Service { child, url }
}

fn count(dir: &Path, prefix: &str) -> usize {
    if !dir.exists() {
        return 0;
    }
    support::walk(dir)
        .iter()
        .filter(|p| p.to_string_lossy().contains(prefix))
        .count()
}

#[test]
fn only_callers_with_a_valid_scheduler_token_get_a_run() {
    let dir = Scratch::new("cloudrun");
    let cfg = write_config(&dir);
    let svc = start_service(&cfg, &serve_jwks());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let post = |auth: Option<String>| {
        rt.block_on(async {
            let mut req = support::http()
                .post(format!("{}/run", svc.url))
                .json(&json!({}));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        })
    };
    let out = dir.0.join("out");

    // Rejected, and nothing runs: no token, wrong audience, expired, wrong caller, bad
    // signature, unknown key.
    let good = token(AUDIENCE, SCHEDULER, 600, "llmpulse-test-key");
    let mut forged = good.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for (why, auth) in [
        ("missing", None),
        ("not bearer", Some(format!("Basic {good}"))),
        (
            "wrong audience",
            Some(format!(
                "Bearer {}",
                token("https://other.run.app", SCHEDULER, 600, "llmpulse-test-key")
            )),
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                token(AUDIENCE, SCHEDULER, -3600, "llmpulse-test-key")
            )),
        ),
        (
            "wrong caller",
            Some(format!(
                "Bearer {}",
                token(AUDIENCE, "intruder@example.com", 600, "llmpulse-test-key")
            )),
        ),
        ("bad signature", Some(format!("Bearer {forged}"))),
        (
            "unknown key",
            Some(format!(
                "Bearer {}",
                token(AUDIENCE, SCHEDULER, 600, "other-key")
            )),
        ),
    ] {
        let (status, body) = post(auth);
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(count(&out, "claims/"), 0, "{why}: nothing may run");
    }

    // A valid token runs the due slot; a second one finds it claimed.
    let (status, body) = post(Some(format!("Bearer {good}")));
    assert_eq!(status, 200, "{body}");
    let summary: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary["outcome"], "ran");
    assert_eq!(summary["records"], 6);
    assert_eq!(summary["slot"], 0);
    assert!(summary["run_id"].is_string());
    let (status, body) = post(Some(format!("Bearer {good}")));
    assert_eq!(status, 200);
    let again: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(again["outcome"], "already_claimed");
    assert_eq!(again["run_id"], summary["run_id"]);
    assert_eq!(count(&out, "/manifest"), 1);
}

#[test]
fn job_tasks_make_one_complete_slot() {
    let dir = Scratch::new("cloudrun-job");
    let cfg = write_config(&dir);
    let outs: Vec<_> = (0..3)
        .map(|i| {
            Command::new(CLOUDRUN)
                .env("LLMPULSE_CONFIG", &cfg)
                .env("CLOUD_RUN_TASK_INDEX", i.to_string())
                .env("CLOUD_RUN_TASK_COUNT", "3")
                .env("CLOUD_RUN_JOB", "llmpulse-job")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outs {
        assert!(o.status.success());
    }
    // 1 question x 2 targets x 3 repetitions, split over 3 tasks: every record once.
    let mut seen = Vec::new();
    for p in support::walk(&dir.0.join("out")) {
        if p.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                let r: Value = serde_json::from_str(line).unwrap();
                assert!(r["origin"].as_str().unwrap().starts_with("cloudrun:"));
                seen.push(format!(
                    "{} {} {}",
                    r["question_id"], r["target"], r["repetition"]
                ));
            }
        }
    }
    seen.sort();
    let n = seen.len();
    seen.dedup();
    assert_eq!((n, seen.len()), (6, 6), "no record missing or doubled");
    assert_eq!(
        count(&dir.0.join("out"), "/manifest"),
        3,
        "a manifest per task"
    );
}
