//! https targets against the simulator serving TLS with certificates of the tests' own CA: the
//! kernel clock beneath TLS, the connection's set-up split into its phases, certificates that do
//! not check out refused as `error_kind = "tls"`, and HTTP/2 streams sharing one connection.
#![cfg(unix)]

mod support;

use support::{Scratch, Sim, by_target, run_records, target};

#[path = "../benches/common/certs.rs"]
mod certs;

use certs::{Leaf, TestCa};

/// The simulator over https with a certificate from `ca` made as `leaf`, and `more` flags.
fn tls_sim(ca: &TestCa, leaf: Leaf, dir: &Scratch, name: &str, more: &[&str]) -> Sim {
    let cert = ca.issue(leaf, &dir.0, name);
    let mut args: Vec<String> = cert.sim_args();
    args.extend(more.iter().map(|s| s.to_string()));
    Sim::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `https://localhost:PORT/v1` for a simulator that printed `https://127.0.0.1:PORT/v1`: the
/// name goes through the resolver and is the one the certificate is checked against.
fn by_name(sim: &Sim) -> String {
    assert!(sim.base_url.starts_with("https://"), "{}", sim.base_url);
    sim.base_url.replace("127.0.0.1", "localhost")
}

fn secs(r: &serde_json::Value, field: &str) -> f64 {
    r[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {r}"))
}

/// A scratch folder named `name` and the tests' CA, its PEM written there as `ca.pem`.
fn scratch_with_ca(name: &str) -> (Scratch, TestCa, std::path::PathBuf) {
    let dir = Scratch::new(name);
    let ca = TestCa::new("llmpulse test CA");
    let ca_file = ca.write_pem(&dir.0.join("ca.pem"));
    (dir, ca, ca_file)
}

/// The set-up of the record that opened a connection, seconds: (DNS, TCP, TLS), asserted to sum
/// to its `connect_sec`.
fn set_up_phases(r: &serde_json::Value) -> (f64, f64, f64) {
    let (dns, tcp, tls, total) = (
        secs(r, "dns_sec"),
        secs(r, "tcp_connect_sec"),
        secs(r, "tls_handshake_sec"),
        secs(r, "connect_sec"),
    );
    assert!(
        (total - (dns + tcp + tls)).abs() < 0.005,
        "connect_sec {total} is the phases' sum {dns} + {tcp} + {tls}"
    );
    (dns, tcp, tls)
}

/// A target trusting the tests' CA is measured over https on the kernel clock by default: each
/// record says TLS 1.3 over HTTP/1.1 and where it connected, the first call on a connection has
/// its set-up split into lookup, TCP and TLS (summing to `connect_sec`), and TTFT runs from the
/// request's first byte, so it holds the simulator's 150 ms and not the handshake.
#[test]
fn https_is_timed_beneath_tls_with_the_set_up_split() {
    let (dir, ca, ca_file) = scratch_with_ca("tls-split");
    let sim = tls_sim(
        &ca,
        Leaf::Good,
        &dir,
        "good",
        &[
            "--ttft-ms",
            "150",
            "--itl-ms",
            "2",
            "--tls-handshake-delay-ms",
            "300",
        ],
    );
    let url = by_name(&sim);
    let config = format!(
        "suite = \"suite.toml\"\nrepetitions = 3\nconcurrency = 1\n{}",
        target("tls", &url, &format!("ca_file = \"{}\"", ca_file.display())),
    );
    let rows = run_records(&dir, &config, &[]);
    assert_eq!(rows.len(), 3);
    let port = url.rsplit(':').next().unwrap().trim_end_matches("/v1");
    for r in &rows {
        assert_eq!(r["success"], true, "{r}");
        assert_eq!(r["clock_source"], "kernel", "{r}");
        assert_eq!(r["tls_version"], "TLSv1.3", "{r}");
        assert_eq!(r["http_version"], "HTTP/1.1", "{r}");
        let addr = r["remote_addr"].as_str().unwrap();
        assert!(
            addr == format!("127.0.0.1:{port}") || addr == format!("[::1]:{port}"),
            "{addr}"
        );
        let ttft = secs(r, "ttft_sec");
        assert!(
            (0.15..0.3).contains(&ttft),
            "TTFT runs from the request's first byte: the simulator's 150 ms, not the 300 ms \
             handshake ({ttft})"
        );
    }
    let opened: Vec<_> = rows
        .iter()
        .filter(|r| r["connection_reused"] == false)
        .collect();
    assert_eq!(opened.len(), 1, "one connection, kept alive");
    let (_, tcp, tls) = set_up_phases(opened[0]);
    assert!(
        tls >= 0.3,
        "the server waits 300 ms before its handshake: {tls}"
    );
    assert!(tcp < 0.1, "a loopback TCP handshake: {tcp}");
    for r in rows.iter().filter(|r| r["connection_reused"] == true) {
        for field in [
            "connect_sec",
            "dns_sec",
            "tcp_connect_sec",
            "tls_handshake_sec",
        ] {
            assert!(r[field].is_null(), "{field} on a reused connection: {r}");
        }
    }
}

/// Certificates are checked as reqwest checks them, on both clocks: an issuer nobody trusts, a
/// certificate for another host and an expired one are each refused with `error_kind = "tls"`
/// and a message that says why; the same server is fine once its CA is the target's `ca_file`.
#[test]
fn certificates_that_do_not_check_out_are_refused_as_tls() {
    let (dir, ca, ca_file) = scratch_with_ca("tls-refused");
    let stranger = TestCa::new("a CA nobody trusts");
    let fast = ["--ttft-ms", "5", "--itl-ms", "1"];
    let good = tls_sim(&ca, Leaf::Good, &dir, "good", &fast);
    let untrusted = tls_sim(&stranger, Leaf::Good, &dir, "untrusted", &fast);
    let expired = tls_sim(&ca, Leaf::Expired, &dir, "expired", &fast);
    let other_host = tls_sim(&ca, Leaf::OtherHost, &dir, "other-host", &fast);
    let trust = format!("ca_file = \"{}\"\nmax_attempts = 1", ca_file.display());
    let mut config = String::from("suite = \"suite.toml\"\nconcurrency = 4\n");
    for clock in ["kernel", "client"] {
        let extra = format!("{trust}\nclock = \"{clock}\"");
        for (name, sim) in [
            ("good", &good),
            ("untrusted", &untrusted),
            ("expired", &expired),
            ("other-host", &other_host),
        ] {
            config.push_str(&target(&format!("{name}-{clock}"), &by_name(sim), &extra));
        }
        config.push_str(&target(
            &format!("no-ca-file-{clock}"),
            &by_name(&good),
            &format!("max_attempts = 1\nclock = \"{clock}\""),
        ));
    }
    let rows = run_records(&dir, &config, &[]);
    for clock in ["kernel", "client"] {
        let ok = by_target(&rows, &format!("good-{clock}"));
        assert_eq!(ok["success"], true, "{ok}");
        for (name, why) in [
            ("untrusted", "UnknownIssuer"),
            ("no-ca-file", "UnknownIssuer"),
            ("expired", "certificate expired"),
            ("other-host", "certificate not valid for name \"localhost\""),
        ] {
            let r = by_target(&rows, &format!("{name}-{clock}"));
            assert_eq!(r["success"], false, "{r}");
            assert_eq!(r["error_kind"], "tls", "{name} on the {clock} clock: {r}");
            assert_eq!(
                r["clock_source"], clock,
                "the clock the call was made with: {r}"
            );
            let message = r["error_message"].as_str().unwrap();
            assert!(message.contains(why), "{name}: {message}");
        }
    }
}

/// With `http2 = "on"` over https, 100 calls at once share one connection, and so with
/// `"auto"` where the server offers h2 in its handshake (the simulator does): every record says
/// HTTP/2.0 on the kernel clock, one per target opened the connection and the rest reused it,
/// and each stream's TTFT, from its own request written to its own first frame's packet, is
/// what the simulator's log says that stream's first token took (200 ms, or later when the
/// machine is busy), however many streams share the connection and however long its 300 ms
/// handshake kept them waiting.
#[test]
fn http2_streams_share_one_tls_connection() {
    let (dir, ca, ca_file) = scratch_with_ca("tls-h2");
    let sim = tls_sim(
        &ca,
        Leaf::Good,
        &dir,
        "good",
        &[
            "--ttft-ms",
            "200",
            "--itl-ms",
            "2",
            "--tls-handshake-delay-ms",
            "300",
        ],
    );
    let h2 = |mode: &str| {
        target(
            &format!("h2-{mode}"),
            &by_name(&sim),
            &format!("ca_file = \"{}\"\nhttp2 = \"{mode}\"", ca_file.display()),
        )
    };
    let config = format!(
        "suite = \"suite.toml\"\nrepetitions = 100\nconcurrency = 200\n{}{}",
        h2("on"),
        h2("auto"),
    );
    let rows = run_records(&dir, &config, &[]);
    assert_eq!(rows.len(), 200);
    // Per request: when the simulator handed the first token (after the role-only chunk) to
    // its transport, seconds after the request arrived.
    let truth: std::collections::HashMap<String, f64> = sim
        .log()
        .iter()
        .map(|e| {
            let id = e["request_id"].as_str().unwrap().to_string();
            (id, e["events_ms"][1].as_f64().unwrap() / 1000.0)
        })
        .collect();
    // How much later than the simulator's send each record's first token reads: never earlier
    // (a stamp cannot precede the packet), and at the median far less than the 300 ms
    // handshake the streams waited for (their time runs from their own HEADERS written; a busy
    // machine delays frames in the server's one writer by up to tens of milliseconds).
    let mut late = Vec::new();
    for r in &rows {
        assert_eq!(r["success"], true, "{r}");
        assert_eq!(r["http_version"], "HTTP/2.0", "{r}");
        assert_eq!(r["clock_source"], "kernel", "{r}");
        assert_eq!(r["tls_version"], "TLSv1.3", "{r}");
        let sent = truth[r["provider_request_id"].as_str().unwrap()];
        assert!(sent >= 0.2, "the simulator's schedule: {sent}");
        late.push(secs(r, "ttft_sec") - sent);
    }
    late.sort_by(f64::total_cmp);
    assert!(
        late[0] > -0.001,
        "a first token read before it was sent: {late:?}"
    );
    assert!(late[100] < 0.05, "median {} s after the send", late[100]);
    for name in ["h2-on", "h2-auto"] {
        let opened: Vec<_> = rows
            .iter()
            .filter(|r| r["target"] == name && r["connection_reused"] == false)
            .collect();
        assert_eq!(opened.len(), 1, "{name}: 100 streams on one connection");
        let (tls, total) = (
            secs(opened[0], "tls_handshake_sec"),
            secs(opened[0], "connect_sec"),
        );
        assert!(
            tls >= 0.3 && total >= tls,
            "the opener timed the 300 ms handshake"
        );
    }
}

/// Hostile https servers end as records: one that answers the handshake with plain text is a
/// `tls` failure, one that accepts the connection and never says a word is a `connect_timeout`
/// within the target's connect timeout (the handshake is part of the connection).
#[test]
fn servers_that_do_not_speak_tls_end_as_records() {
    use std::io::{Read, Write};
    let serve = |answer: bool| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut hello = [0u8; 512];
                    let _ = conn.read(&mut hello);
                    if answer {
                        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nnot TLS\n");
                    } else {
                        std::thread::sleep(std::time::Duration::from_secs(10));
                    }
                });
            }
        });
        format!("https://127.0.0.1:{port}/v1")
    };
    let dir = Scratch::new("tls-hostile");
    let once = "max_attempts = 1\nconnect_timeout_sec = 1";
    let config = format!(
        "suite = \"suite.toml\"\nconcurrency = 2\n{}{}",
        target("plain-text", &serve(true), once),
        target("silent", &serve(false), once),
    );
    let started = std::time::Instant::now();
    let rows = run_records(&dir, &config, &[]);
    assert_eq!(by_target(&rows, "plain-text")["error_kind"], "tls");
    let silent = by_target(&rows, "silent");
    assert_eq!(silent["error_kind"], "connect_timeout", "{silent}");
    assert!(
        started.elapsed().as_secs() < 8,
        "bounded by the connect timeout"
    );
}

/// Behind a proxy (`HTTPS_PROXY`) the stamped sockets, which connect directly, step aside: the
/// call goes to the proxy through reqwest on the client clock (here a proxy that is not there, so
/// it fails as `connect`, said by the `client` clock), and a host in `NO_PROXY` is still reached
/// directly, on the kernel clock.
#[test]
fn a_proxy_in_the_environment_is_used_and_no_proxy_is_honoured() {
    let (dir, ca, ca_file) = scratch_with_ca("tls-proxy");
    let sim = tls_sim(
        &ca,
        Leaf::Good,
        &dir,
        "good",
        &["--ttft-ms", "5", "--itl-ms", "1"],
    );
    let config = format!(
        "suite = \"suite.toml\"\n{}",
        target(
            "t",
            &by_name(&sim),
            &format!("ca_file = \"{}\"\nmax_attempts = 1", ca_file.display())
        ),
    );
    // Port 9 (discard) on loopback: nothing listens there.
    let proxy = [("HTTPS_PROXY", "http://127.0.0.1:9"), ("NO_PROXY", "")];
    let rows = run_records(&dir, &config, &proxy);
    let r = by_target(&rows, "t");
    assert_eq!(r["error_kind"], "connect", "{r}");
    assert_eq!(r["clock_source"], "client", "{r}");

    let dir = Scratch::new("tls-no-proxy");
    let bypass = [
        ("HTTPS_PROXY", "http://127.0.0.1:9"),
        ("NO_PROXY", "localhost"),
    ];
    let rows = run_records(&dir, &config, &bypass);
    let r = by_target(&rows, "t");
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["clock_source"], "kernel", "{r}");
}

/// A target with `dns_servers` has its host looked up by llmpulse's own resolver, asking those
/// servers: against a DNS server that answers after 200 ms and a TLS handshake held 300 ms, the
/// first connection's set-up splits into a lookup of at least 200 ms, a quick TCP handshake and
/// a TLS handshake of at least 300 ms, and the certificate is checked against the name looked
/// up. A server that never answers fails the call as a connect error naming it.
#[test]
fn dns_servers_are_asked_by_llmpulses_own_resolver_and_timed() {
    use llmpulse_sim::dns::{DnsAnswer, DnsServer};
    let (dir, ca, ca_file) = scratch_with_ca("tls-dns");
    // The certificate is for other.example only: the name has to be looked up and checked.
    let sim = tls_sim(
        &ca,
        Leaf::OtherHost,
        &dir,
        "other",
        &["--ttft-ms", "50", "--tls-handshake-delay-ms", "300"],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dns = rt
        .block_on(DnsServer::start(
            "127.0.0.1:0".parse().unwrap(),
            DnsAnswer {
                address: std::net::Ipv4Addr::LOCALHOST,
                delay: std::time::Duration::from_millis(200),
                ttl: 300,
                garbage: false,
            },
        ))
        .unwrap();
    let url = sim.base_url.replace("127.0.0.1", "other.example");
    let config = format!(
        "suite = \"suite.toml\"\nrepetitions = 2\nconcurrency = 1\n{}{}",
        target(
            "named",
            &url,
            &format!(
                "ca_file = \"{}\"\ndns_servers = [\"{}\"]",
                ca_file.display(),
                dns.addr
            ),
        ),
        target(
            "deaf",
            &url,
            &format!(
                "ca_file = \"{}\"\ndns_servers = [\"127.0.0.1:9\"]\nmax_attempts = 1\n\
                 connect_timeout_sec = 1",
                ca_file.display()
            ),
        ),
    );
    let rows = run_records(&dir, &config, &[]);
    let named: Vec<_> = rows.iter().filter(|r| r["target"] == "named").collect();
    assert_eq!(named.len(), 2);
    assert!(named.iter().all(|r| r["success"] == true), "{named:?}");
    assert_eq!(dns.a_questions(), 1, "one lookup for one connection");
    let first = named
        .iter()
        .find(|r| r["connection_reused"] == false)
        .expect("a record that opened the connection");
    let (lookup, tcp, tls) = set_up_phases(first);
    assert!(
        (0.2..0.5).contains(&lookup),
        "the DNS server answers after 200 ms: {lookup}"
    );
    assert!(tcp < 0.1, "a loopback TCP handshake: {tcp}");
    assert!(tls >= 0.3, "the handshake is held 300 ms: {tls}");
    let deaf: Vec<_> = rows.iter().filter(|r| r["target"] == "deaf").collect();
    assert_eq!(deaf.len(), 2);
    for r in deaf {
        assert_eq!(r["success"], false, "{r}");
        assert_eq!(r["error_kind"], "connect", "{r}");
        let error = r["error_message"].as_str().unwrap_or_default();
        assert!(
            error.contains("DNS lookup of other.example through 127.0.0.1:9"),
            "the error says the lookup failed and where: {r}"
        );
    }
}

/// Whether this process (and so the `llmpulse` it starts) has CAP_NET_RAW, bit 13 of its
/// effective capabilities: root has it.
#[cfg(target_os = "linux")]
fn may_capture_packets() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 13) != 0)
}

/// `clock = "packet"` over https to a host name (IPv4 or IPv6, as `localhost` resolves): with
/// CAP_NET_RAW every record says `packet` and holds the simulator's schedule, TTFT 150 ms after
/// a 300 ms handshake; without it the run goes on with the kernel clock, says `kernel` in each
/// record, and warns why.
#[test]
#[cfg(target_os = "linux")]
fn the_packet_clock_times_https_from_a_capture_or_says_why_not() {
    let (dir, ca, ca_file) = scratch_with_ca("tls-packet");
    let sim = tls_sim(
        &ca,
        Leaf::Good,
        &dir,
        "good",
        &[
            "--ttft-ms",
            "150",
            "--itl-ms",
            "20",
            "--output-tokens",
            "5",
            "--tls-handshake-delay-ms",
            "300",
        ],
    );
    let config = format!(
        "suite = \"suite.toml\"\nrepetitions = 3\nconcurrency = 1\n{}",
        target(
            "tls",
            &by_name(&sim),
            &format!("ca_file = \"{}\"\nclock = \"packet\"", ca_file.display())
        ),
    );
    let out = support::run(&dir, &config, &[]);
    support::ok(&out);
    let rows = support::records(&dir.0.join("out"));
    assert_eq!(rows.len(), 3);
    let capturing = may_capture_packets();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.contains("CAP_NET_RAW"),
        !capturing,
        "a warning says why there is no capture, only when there is none: {stderr}"
    );
    for r in &rows {
        assert_eq!(r["success"], true, "{r}");
        let expected = if capturing { "packet" } else { "kernel" };
        assert_eq!(r["clock_source"], expected, "{r}");
        let ttft = secs(r, "ttft_sec");
        assert!(
            (0.15..0.3).contains(&ttft),
            "the simulator's 150 ms, not the 300 ms handshake ({ttft})"
        );
        // 5 tokens 20 ms apart after the first: the last at 230 ms. The simulator keeps to
        // its schedule from the request, so a first token late under load does not move the
        // last (seen: TTFT 162 ms, latency 232 ms).
        let latency = secs(r, "latency_sec");
        assert!(
            (0.225..ttft + 0.2).contains(&latency),
            "TTFT {ttft}, latency {latency}"
        );
    }
}
