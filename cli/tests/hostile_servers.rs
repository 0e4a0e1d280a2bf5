//! Servers that never stop sending, or send what no protocol allows: every call still ends as a
//! record, and the run's memory stays bounded (`max_answer_bytes`, answer_too_large).

mod support;

use std::ffi::OsStr;

use support::{Scratch, Sim, by_target, records, run_measured, run_records, target};

/// A hand-written server on loopback: `handle` gets each connection on a thread of its own.
/// Returns the base URL (`http://127.0.0.1:PORT/v1`).
fn raw_server(handle: impl Fn(std::net::TcpStream) + Send + Sync + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::sync::Arc::new(handle);
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let handle = handle.clone();
            std::thread::spawn(move || handle(s));
        }
    });
    format!("http://127.0.0.1:{port}/v1")
}

/// Two targets on a server whose every reply never ends (one streamed, one a plain JSON body),
/// 20 questions × 3 repetitions: 120 records, each `answer_too_large` with the first
/// `max_answer_bytes` kept, in well under 200 MB of memory.
#[test]
fn endless_replies_end_as_answer_too_large_in_bounded_memory() {
    let sim = Sim::start(&["--fault-endless", "1", "--ttft-ms", "5", "--itl-ms", "1"]);
    let dir = Scratch::new("endless");
    let max = 256 * 1024;
    let extra = format!("max_attempts = 1\nmax_answer_bytes = {max}");
    let config = format!(
        "suite = \"builtin:rag-retail-finance\"\nrepetitions = 3\nconcurrency = 2\ntimeout_sec = 30\n{}\n{}",
        target("endless-stream", &sim.base_url, &extra),
        target(
            "endless-body",
            &sim.base_url,
            &format!("{extra}\nstream = false")
        ),
    );
    let cfg = dir.write("config.toml", &config);
    let out = dir.0.join("out");
    let (code, peak) = run_measured(
        &[
            OsStr::new("run"),
            OsStr::new("--quiet"),
            OsStr::new("--config"),
            cfg.as_os_str(),
            OsStr::new("--output"),
            out.as_os_str(),
        ],
        &[("XDG_CACHE_HOME", dir.0.join("cache").as_os_str())],
    );
    assert_eq!(code, 0, "a run whose calls all failed still exits 0");
    let rows = records(&out);
    assert_eq!(rows.len(), 120, "every call has a record");
    for r in &rows {
        assert_eq!(r["error_kind"], "answer_too_large", "{r}");
        assert_eq!(r["success"], false);
        let kept = r["answer"].as_str().unwrap_or_default().len();
        assert!(kept <= max, "kept {kept} bytes, more than max_answer_bytes");
    }
    let streamed = by_target(&rows, "endless-stream");
    assert!(
        streamed["answer"].as_str().unwrap().len() > max / 2,
        "the first part of the answer is kept: {}",
        streamed["answer"].as_str().unwrap().len()
    );
    assert!(
        peak < 200 * 1024 * 1024,
        "peak memory {} MiB",
        peak / 1024 / 1024
    );
}

/// A line that never ends and a 1 MiB header: records, not a hung or crashed run.
#[test]
fn a_line_without_end_and_huge_headers_end_as_records() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let dir = Scratch::new("no-newline");
    let config = format!(
        "suite = \"suite.toml\"\n{}\n{}",
        target(
            "no-newline",
            &sim.base_url,
            "max_attempts = 1\nmax_answer_bytes = 100000\nheaders = { \"x-sim-fault\" = \"line_without_end\" }",
        ),
        target(
            "huge-headers",
            &sim.base_url,
            "max_attempts = 1\nheaders = { \"x-sim-fault\" = \"huge_headers\" }",
        ),
    );
    let rows = run_records(&dir, &config, &[]);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        by_target(&rows, "no-newline")["error_kind"],
        "answer_too_large"
    );
    let huge = by_target(&rows, "huge-headers");
    assert_eq!(huge["success"], false);
    assert!(
        huge["error_message"]
            .as_str()
            .unwrap()
            .contains("too large"),
        "{huge}"
    );
}

/// Names made of dots could escape the storage layout: refused before anything is written.
#[test]
fn dot_names_are_refused_for_run_ids_campaigns_and_targets() {
    let sim = Sim::start(&[]);
    let dir = Scratch::new("dots");
    let out = support::run_with(
        &dir,
        &target("t", &sim.base_url, ""),
        &[],
        &["--run-id", ".."],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--run-id '..'"), "{err}");
    assert!(!dir.0.join("out").exists(), "nothing was written");

    let out = support::run(&dir, &target(".hidden", &sim.base_url, ""), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("targets[0].name"),
        "{err}"
    );

    let campaign = format!(
        "[campaign]\nname = \"..\"\nstart = 2026-12-01T00:00:00Z\nend = 2026-12-02T00:00:00Z\nevery = \"1h\"\n{}",
        target("t", &sim.base_url, "")
    );
    let out = support::run(&dir, &campaign, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("campaign.name"),
        "{err}"
    );
}

/// A missing suite is named once, with its cause once.
#[test]
fn a_missing_suite_is_one_clear_error() {
    let dir = Scratch::new("no-suite");
    let out = support::run(
        &dir,
        "suite = \"nowhere.toml\"\n[[targets]]\nname = \"s\"\nprovider = \"sim\"\nmodel = \"m\"",
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("nowhere.toml"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// A server that reads each request and hangs up without a word (as a kept-alive connection
/// closed under a request does): a `connect` failure, retried as one, with the cause kept.
#[test]
fn a_server_that_hangs_up_is_a_retried_connect_failure() {
    use std::io::Read;
    let url = raw_server(|mut s| {
        let _ = s.read(&mut [0u8; 65536]);
    });
    let dir = Scratch::new("hangs-up");
    dir.write("suite.toml", support::ONE_QUESTION);
    let config = format!(
        "suite = \"suite.toml\"\nrepetitions = 1\n{}",
        target("hangs-up", &url, "max_attempts = 2")
    );
    let rows = run_records(&dir, &config, &[]);
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["error_kind"], "connect", "{r}");
    assert_eq!(r["attempts"], 2, "retried: {r}");
    assert!(
        r["error_message"]
            .as_str()
            .unwrap()
            .contains("connection closed before message completed"),
        "{r}"
    );
}

/// A server from before keep-alive: HTTP/1.0, no `Content-Length`, the body ends when the server
/// closes the connection, and the reply goes out as soon as the request's first bytes are in.
/// Streamed or not, every call is a whole answer on a connection of its own.
#[test]
fn an_http_1_0_server_that_closes_after_each_answer_is_measured_call_by_call() {
    use std::io::{Read, Write};
    fn serve(reply: &'static str) -> String {
        raw_server(move |mut s| {
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply.as_bytes());
            // Whatever of the request is still unread, so that the close is a FIN, not a RST.
            let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(50)));
            let _ = s.shutdown(std::net::Shutdown::Write);
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        })
    }
    let streamed = serve(concat!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
        "data: {\"id\":\"a\",\"object\":\"chat.completion.chunk\",\"model\":\"old\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Outerwear \"}}]}\n\n",
        "data: {\"id\":\"a\",\"object\":\"chat.completion.chunk\",\"model\":\"old\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"earned the most.\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    ));
    let whole = serve(concat!(
        "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n",
        "{\"id\":\"b\",\"object\":\"chat.completion\",\"model\":\"old\",\"choices\":[{\"index\":0,",
        "\"message\":{\"role\":\"assistant\",\"content\":\"Outerwear earned the most.\"},",
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":5,\"total_tokens\":35}}",
    ));
    let dir = Scratch::new("http-1-0");
    dir.write("suite.toml", support::ONE_QUESTION);
    let config = format!(
        "suite = \"suite.toml\"\nrepetitions = 3\n{}\n{}",
        target("streamed", &streamed, "max_attempts = 1"),
        target("whole", &whole, "max_attempts = 1\nstream = false"),
    );
    let rows = run_records(&dir, &config, &[]);
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(r["success"], true, "{r}");
        assert_eq!(r["answer"], "Outerwear earned the most.", "{r}");
        assert_eq!(
            r["connection_reused"], false,
            "a closed connection was reused: {r}"
        );
        let (ttfb, latency) = (support::f(&r["ttfb_sec"]), support::f(&r["latency_sec"]));
        assert!(0.0 < ttfb && ttfb <= latency && latency < 5.0, "{r}");
    }
    let streamed_rows: Vec<_> = rows.iter().filter(|r| r["target"] == "streamed").collect();
    assert_eq!(streamed_rows.len(), 3);
    for r in streamed_rows {
        assert!(
            support::f(&r["ttft_sec"]) <= support::f(&r["latency_sec"]),
            "{r}"
        );
    }
}

/// A plain-HTTP address that sends everyone on to https (302 with a Location carrying a token):
/// one `redirect` record per call, not retried, naming where it points without the token and
/// saying what to change.
#[test]
fn a_redirect_is_one_clear_unretried_record() {
    use std::io::{Read, Write};
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = requests.clone();
    let url = raw_server(move |mut s| {
        let mut buf = [0u8; 65536];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = s.write_all(
                b"HTTP/1.1 302 Found\r\nLocation: https://api.example.com/v1/chat/completions?sig=TOKEN123\r\nContent-Length: 0\r\n\r\n",
            );
        }
    });
    let dir = Scratch::new("redirect");
    dir.write("suite.toml", support::ONE_QUESTION);
    let config = format!(
        "suite = \"suite.toml\"\nrepetitions = 2\n{}",
        target("moved", &url, "max_attempts = 3")
    );
    let rows = run_records(&dir, &config, &[]);
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["error_kind"], "redirect", "{r}");
        assert_eq!(r["http_status"], 302, "{r}");
        assert_eq!(r["attempts"], 1, "a redirect is not retried: {r}");
        let message = r["error_message"].as_str().unwrap();
        assert!(
            message.contains("redirects to https://api.example.com/v1/chat/completions")
                && message.contains("clock = \"client\""),
            "{message}"
        );
        assert!(!r.to_string().contains("TOKEN123"), "the token leaked: {r}");
    }
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
}
