//! Load profiles and SLOs against the simulator, whose request log says when each request
//! really arrived: an open loop sends at its rate whatever is in flight, a Poisson schedule's
//! counts stay in their band, an SLO is met or not by each call as its figures say, and warm-up
//! calls are sent but not recorded.

mod support;

use serde_json::Value;
use support::{BIN, Scratch, Sim, ok, run_with, target};

/// Request arrival times at the simulator, ms since the epoch, in order.
fn arrivals(sim: &Sim) -> Vec<f64> {
    let mut t: Vec<f64> = sim
        .log()
        .iter()
        .map(|e| e["received_unix_ms"].as_f64().unwrap())
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

fn config(sim: &Sim, extra: &str) -> String {
    format!(
        "suite = \"builtin:rag-retail-finance\"\nconcurrency = 1\n{extra}\n{}",
        target("s", &sim.base_url, "")
    )
}

fn records(dir: &Scratch) -> Vec<Value> {
    support::records(&dir.0.join("out"))
}

#[test]
fn a_constant_rate_is_an_open_loop_whatever_is_in_flight() {
    // Each call takes at least 150 ms; one every 50 ms means three or four in flight at once,
    // though the config's concurrency is 1.
    let sim = Sim::start(&["--ttft-ms", "150", "--itl-ms", "2", "--output-tokens", "10"]);
    let dir = Scratch::new("load-constant");
    ok(&run_with(
        &dir,
        &config(&sim, ""),
        &[],
        &["--profile", "constant:20"],
    ));
    let t = arrivals(&sim);
    assert_eq!(t.len(), 20);
    let span = t[19] - t[0];
    // 19 gaps of 50 ms; a closed loop at concurrency 1 would need 20 × 150 ms.
    assert!(
        (span - 950.0).abs() < 100.0,
        "first to last request: {span} ms"
    );
    let mut gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    assert!(
        (median - 50.0).abs() < 5.0,
        "median gap {median} ms: {gaps:?}"
    );
    for r in records(&dir) {
        assert!(r["scheduled_at"].is_string(), "{r}");
        let lag = r["schedule_lag_sec"].as_f64().unwrap();
        assert!((0.0..0.5).contains(&lag), "lag {lag}");
    }
}

#[test]
fn a_poisson_schedule_gives_counts_within_their_band() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "0", "--output-tokens", "5"]);
    let dir = Scratch::new("load-poisson");
    // 300 calls at 100/s: 15 repetitions of the 20 questions.
    let cfg = config(
        &sim,
        "repetitions = 15\n[load]\nprofile = \"poisson:100\"\nseed = 11",
    );
    let out = run_with(&dir, &cfg, &[], &[]);
    ok(&out);
    let t = arrivals(&sim);
    assert_eq!(t.len(), 300);
    // Arrivals in the first 2 s: Poisson with mean 200, 99% band ± 2.576 × √200.
    let in_window = t.iter().filter(|x| **x - t[0] < 2000.0).count() as f64;
    assert!(
        (in_window - 200.0).abs() <= 2.576 * 200f64.sqrt(),
        "{in_window} in 2 s"
    );
    // Exponential gaps: the standard deviation is about the mean.
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
    assert!((mean - 10.0).abs() < 2.0, "mean gap {mean} ms");
    assert!(
        (0.75..1.25).contains(&(sd / mean)),
        "coefficient of variation {}",
        sd / mean
    );
}

#[test]
fn each_call_meets_the_slo_or_not_and_the_summary_and_report_count_them() {
    // TTFT 200 ms exactly, so a 100 ms limit fails every call and a 400 ms one passes them.
    let sim = Sim::start(&["--ttft-ms", "200", "--itl-ms", "1", "--output-tokens", "10"]);
    for (limit, met) in [("100ms", false), ("400ms", true)] {
        let dir = Scratch::new(&format!("load-slo-{limit}"));
        let out = run_with(
            &dir,
            &config(&sim, ""),
            &[],
            &[
                "--slo",
                &format!("ttft={limit},e2e=5s"),
                "--concurrency",
                "4",
            ],
        );
        ok(&out);
        let n = if met { 20 } else { 0 };
        // Without --quiet, the summary says it under the table.
        let said = ok(&std::process::Command::new(BIN)
            .args(["run", "--config"])
            .arg(dir.0.join("config.toml"))
            .arg("--output")
            .arg(dir.0.join("again"))
            .args(["--slo", &format!("ttft={limit}"), "--concurrency", "4"])
            .env("XDG_CACHE_HOME", dir.0.join("cache"))
            .output()
            .unwrap());
        assert!(
            said.contains(&format!("s: SLO met by {n} of 20 calls")),
            "{said}"
        );
        for r in records(&dir) {
            assert_eq!(r["slo_met"], met, "{r}");
            assert!(
                r["scheduled_at"].is_null(),
                "a closed loop schedules nothing"
            );
        }
        let s = support::report_summary(&dir.0);
        let t = s["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == "s")
            .unwrap();
        assert_eq!(t["slo_attainment"]["k"], n, "{t}");
        assert_eq!(t["slo_attainment"]["n"], 20);
    }
}

#[test]
fn warm_up_calls_are_sent_and_left_out_of_the_records() {
    let sim = Sim::start(&["--ttft-ms", "1", "--itl-ms", "0", "--output-tokens", "5"]);
    let dir = Scratch::new("load-warmup");
    ok(&run_with(
        &dir,
        &config(&sim, "[load]\nwarmup = 3"),
        &[],
        &[],
    ));
    assert_eq!(sim.log().len(), 23);
    assert_eq!(records(&dir).len(), 20);
}

#[test]
fn a_bad_load_setting_names_its_line() {
    let sim = Sim::start(&[]);
    let dir = Scratch::new("load-bad");
    let out = run_with(
        &dir,
        &config(&sim, "[load]\nprofile = \"sweep:5\""),
        &[],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":4: load.profile: unknown profile 'sweep:5'"),
        "{err}"
    );
    let out = run_with(&dir, &config(&sim, ""), &[], &["--slo", "ttft=fast"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--slo: 'fast' needs a unit"));
}

#[test]
fn a_rate_sweep_runs_synchronous_throughput_and_the_rates_between() {
    let sim = Sim::start(&["--ttft-ms", "100", "--itl-ms", "1", "--output-tokens", "5"]);
    let dir = Scratch::new("load-sweep");
    let cfg = dir.write("config.toml", &config(&sim, ""));
    let out = std::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(dir.0.join("out"))
        .args(["--profile", "sweep:2", "--slo", "ttft=1s"])
        .env("XDG_CACHE_HOME", dir.0.join("cache"))
        .output()
        .unwrap();
    let said = ok(&out);
    let rows: Vec<&str> = said.lines().filter(|l| l.contains("┆ s ")).collect();
    let passes: Vec<&str> = rows
        .iter()
        .map(|l| l.trim_start_matches('│').split('┆').next().unwrap().trim())
        .collect();
    assert_eq!(passes.len(), 4, "{said}");
    assert_eq!(&passes[..2], ["synchronous", "throughput"]);
    // The constant rates lie evenly between the synchronous and throughput rates.
    let rate = |p: &str| p.strip_prefix("constant:").unwrap().parse::<f64>().unwrap();
    let (r1, r2) = (rate(passes[2]), rate(passes[3]));
    assert!(r1 > 0.0 && r2 > r1, "{said}");
    // Four ordinary runs of the 20 calls each.
    assert_eq!(records(&dir).len(), 80);
    // Every call meets a 1 s TTFT: the highest rate is the throughput pass's.
    assert!(
        said.contains("highest rate with SLO attainment ≥ 95% for every target"),
        "{said}"
    );
    assert!(said.contains("(throughput)"), "{said}");

    // The report draws latency and goodput against the offered rate: one point per open-loop
    // pass, at the rate its schedule asked for (the synchronous pass has no schedule).
    let summary = support::report_summary(&dir.0);
    let curves = summary["rate_curves"].as_array().unwrap();
    assert_eq!(curves.len(), 1, "{curves:?}");
    let points = curves[0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 3, "{points:?}");
    let offered: Vec<f64> = points[..2]
        .iter()
        .map(|p| p["offered_rps"].as_f64().unwrap())
        .collect();
    assert!((offered[0] - r1).abs() / r1 < 0.02, "{offered:?} vs {r1}");
    assert!((offered[1] - r2).abs() / r2 < 0.02, "{offered:?} vs {r2}");
    assert!(points[2]["offered_rps"].is_null(), "the throughput pass");
    for p in points {
        assert_eq!(p["slo_attainment"], 1.0, "{p}");
        assert!(p["goodput_rps"].as_f64().unwrap() > 0.0, "{p}");
    }
    let html = std::fs::read_to_string(dir.0.join("r/index.html")).unwrap();
    assert!(
        html.contains("id=\"rate-latency\""),
        "no latency-against-rate chart"
    );
    assert!(
        html.contains("id=\"rate-goodput\""),
        "no goodput-against-rate chart"
    );
}

/// Each record says whether its call opened a connection, and how long that took. At
/// concurrency 5 the first five calls must open one each (the pool is empty); later calls
/// mostly reuse them (hyper may still open one when an answer's connection is not back in its
/// pool yet). After `warmup = 5`, the first measured calls find open connections. The clock is
/// the kernel's (a plain-HTTP target on Linux), so the set-up is not part of TTFB.
#[test]
fn records_say_which_calls_opened_a_connection_and_warm_up_opens_them_first() {
    let sim = Sim::start(&["--ttft-ms", "20", "--itl-ms", "1", "--output-tokens", "5"]);
    for warmup in [0, 5] {
        let dir = Scratch::new(&format!("load-connections-{warmup}"));
        let cfg = config(&sim, &format!("concurrency = 5\n[load]\nwarmup = {warmup}"))
            .replace("concurrency = 1\n", "");
        ok(&run_with(&dir, &cfg, &[], &[]));
        let mut rows = records(&dir);
        assert_eq!(rows.len(), 20);
        rows.sort_by(|a, b| a["timestamp"].as_str().cmp(&b["timestamp"].as_str()));
        let first: Vec<&Value> = rows[..5].iter().collect();
        let opened = first
            .iter()
            .filter(|r| r["connection_reused"] == false)
            .count();
        assert_eq!(
            opened,
            if warmup == 0 { 5 } else { 0 },
            "warmup {warmup}: {first:?}"
        );
        for r in &rows {
            assert_eq!(r["http_version"], "HTTP/1.1", "{r}");
            match r["connection_reused"].as_bool().unwrap() {
                false => {
                    let c = r["connect_sec"].as_f64().unwrap();
                    assert!(c > 0.0 && c < 1.0, "{r}");
                    // The TCP handshake, timed apart, is part of the set-up; an IP address
                    // needs no lookup.
                    let tcp = r["tcp_connect_sec"].as_f64().unwrap();
                    assert!(tcp > 0.0 && tcp <= c, "{r}");
                    assert!(r["dns_sec"].is_null(), "{r}");
                }
                true => {
                    assert!(r["connect_sec"].is_null(), "{r}");
                    assert!(
                        r["tcp_connect_sec"].is_null() && r["dns_sec"].is_null(),
                        "{r}"
                    );
                }
            }
        }
        if cfg!(target_os = "linux") {
            assert!(
                rows.iter().all(|r| r["clock_source"] == "kernel"),
                "{rows:?}"
            );
        }
        let reused = rows
            .iter()
            .filter(|r| r["connection_reused"] == true)
            .count();
        assert!(
            reused >= 10,
            "warmup {warmup}: only {reused} of 20 calls reused a connection"
        );
    }
}

/// A host name is looked up when a connection opens: the lookup and the TCP handshake are
/// timed apart, and together they are no more than the whole set-up. With the client clock
/// (the HTTP client's own connector, as for https) the lookup is timed and the handshake is not.
#[test]
fn a_new_connection_to_a_host_name_is_split_into_lookup_and_handshake() {
    let sim = Sim::start(&["--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "5"]);
    let by_name = sim.base_url.replace("127.0.0.1", "localhost");
    for clock in ["socket", "client"] {
        let dir = Scratch::new(&format!("load-connection-phases-{clock}"));
        let cfg = format!(
            "suite = \"builtin:rag-retail-finance\"\nconcurrency = 1\n{}",
            target("s", &by_name, &format!("clock = \"{clock}\""))
        );
        ok(&run_with(&dir, &cfg, &[], &[]));
        let rows = records(&dir);
        let opened: Vec<&Value> = rows
            .iter()
            .filter(|r| r["connection_reused"] == false)
            .collect();
        assert!(!opened.is_empty(), "{rows:?}");
        for r in opened {
            assert_eq!(r["clock_source"], clock, "{r}");
            let connect = r["connect_sec"].as_f64().unwrap();
            let dns = r["dns_sec"]
                .as_f64()
                .unwrap_or_else(|| panic!("no dns_sec: {r}"));
            assert!(dns > 0.0, "{r}");
            let tcp = match clock {
                "socket" => r["tcp_connect_sec"]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{r}")),
                _ => {
                    assert!(r["tcp_connect_sec"].is_null(), "{r}");
                    0.0
                }
            };
            // Microsecond rounding of each figure.
            assert!(dns + tcp <= connect + 3e-6, "{r}");
        }
    }
}

/// With `http2 = "on"` concurrent calls go over HTTP/2 and share a connection (the simulator
/// answers h2c): at concurrency 20 nearly every call reuses the first connection, where
/// HTTP/1.1 opens one per call in flight. Each stream is timed by the kernel clock at
/// llmpulse's own socket, as HTTP/1.1 is; `clock = "client"` goes through reqwest's HTTP/2.
#[test]
fn http2_calls_share_one_connection() {
    let sim = Sim::start(&["--ttft-ms", "50", "--itl-ms", "2", "--output-tokens", "5"]);
    let dir = Scratch::new("load-http2");
    for clock in ["kernel", "client"] {
        let cfg = format!(
            "suite = \"builtin:rag-retail-finance\"\nconcurrency = 20\n{}",
            target(
                "s",
                &sim.base_url,
                &format!("http2 = \"on\"\nclock = \"{clock}\"")
            )
        );
        ok(&run_with(&dir, &cfg, &[], &[]));
        let rows = records(&dir);
        let rows: Vec<_> = rows.iter().filter(|r| r["clock_source"] == clock).collect();
        assert_eq!(rows.len(), 20, "{clock}");
        for r in &rows {
            assert_eq!(r["success"], true, "{r}");
            assert_eq!(r["http_version"], "HTTP/2.0", "{r}");
            let ttft = r["ttft_sec"].as_f64().unwrap();
            assert!((0.05..0.15).contains(&ttft), "{clock}: {ttft}");
        }
        let opened = rows
            .iter()
            .filter(|r| r["connection_reused"] == false)
            .count();
        assert!(
            opened <= 2,
            "{clock}: {opened} of 20 calls opened a connection"
        );
    }
}
