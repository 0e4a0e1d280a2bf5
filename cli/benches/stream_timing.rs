//! How exact is llmpulse's clock? The simulator logs when it hands each event to the socket;
//! the client stamps when the bytes arrive. Over real loopback HTTP, at 1, 100 and 1,000
//! concurrent streams, this prints the client's timing error per event (receive − send) for the
//! first token and for every chunk, the error of each measured chunk gap, and the streamed
//! requests per second sustained with zero delays.
//!
//! Run: `cargo bench -p llmpulse --bench stream_timing` (add `-- --quick` for a short run).
//! Each measurement first opens its connections with one untimed round of calls.
//! First in one process: server and client on separate Tokio runtimes of one worker thread each,
//! both reading the same monotonic clock. Then with the server in its own process (`llmpulse
//! sim`), as a user runs it: the two are compared on the wall clock, through the simulator's
//! request log (`received_unix_ms` + each event's offset) and each outcome's `sent_at`.
//! `LLMPULSE_BENCH_CLOCK=packet|socket|client` measures with that clock instead of the kernel's
//! (`packet` needs root or CAP_NET_RAW; the last column counts the calls per clock they said);
//! `LLMPULSE_BENCH_TLS=1` serves and measures over https (a CA of the bench's own, trusted
//! through the target's `ca_file`), where the kernel's stamps are taken beneath TLS;
//! `LLMPULSE_BENCH_PRESSURE=N` runs N busy loops beside the whole measurement.
//! `LLMPULSE_BENCH_HTTP2=1` asks over HTTP/2 (`http2 = "on"`): the streams of a measurement
//! share connections, 200 on each (the simulator's limit; h2c over http, ALPN h2 over https).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmpulse_core::config::Config;
use llmpulse_core::provider::{CallOutcome, Client};
use llmpulse_core::stats::percentile;
use llmpulse_core::suite::{Message, Prompt};
use llmpulse_sim::{LogEntry, SimProfile, SimState, server};

#[path = "common/sim.rs"]
mod sim;

#[path = "common/certs.rs"]
mod certs;

#[path = "common/pressure.rs"]
mod pressure;

/// Over https: the CA file the client trusts and the server's certificate, made once.
struct Pki {
    ca_file: PathBuf,
    cert: certs::ServerCert,
}

fn pki() -> Option<&'static Pki> {
    static PKI: std::sync::OnceLock<Option<Pki>> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        if std::env::var("LLMPULSE_BENCH_TLS").is_err() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!("llmpulse-bench-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the certificates");
        let ca = certs::TestCa::new("llmpulse bench CA");
        Some(Pki {
            ca_file: ca.write_pem(&dir.join("ca.pem")),
            cert: ca.issue(certs::Leaf::Good, &dir, "server"),
        })
    })
    .as_ref()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Where the simulator runs.
#[derive(Clone, Copy, PartialEq)]
enum Server {
    /// On its own runtime in this process.
    InProcess,
    /// As `llmpulse sim`, a process of its own.
    Process,
}

struct Setup {
    server: ServerHandle,
    client: Client,
}

enum ServerHandle {
    InProcess {
        _runtime: tokio::runtime::Runtime,
        state: Arc<SimState>,
    },
    Process(std::process::Child, String),
}

impl ServerHandle {
    /// The simulator's request log.
    fn log(&self) -> Vec<LogEntry> {
        match self {
            ServerHandle::InProcess { state, .. } => state.log(),
            ServerHandle::Process(_, url) => {
                let mut curl = std::process::Command::new("curl");
                if let Some(pki) = pki() {
                    curl.arg("--cacert").arg(&pki.ca_file);
                }
                let out = curl
                    .args(["-s", &url.replace("/v1", "/sim/log")])
                    .output()
                    .expect("curl the simulator's log");
                serde_json::from_slice(&out.stdout).expect("the log is JSON")
            }
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let ServerHandle::Process(child, _) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn setup(profile: SimProfile, where_: Server) -> Setup {
    let (server, base_url) = match where_ {
        Server::InProcess => {
            let server_rt = runtime();
            let state = Arc::new(SimState::new(profile, HashMap::new(), true));
            let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let (bound, scheme) = match pki() {
                None => (
                    server_rt.block_on(server::spawn(addr, state.clone())),
                    "http",
                ),
                Some(pki) => {
                    let tls = server::Tls {
                        config: server::tls_config(&pki.cert.cert, &pki.cert.key)
                            .expect("the bench's certificate"),
                        handshake_delay: Duration::ZERO,
                    };
                    let spawned = server_rt.block_on(server::spawn_tls(addr, state.clone(), tls));
                    (spawned, "https")
                }
            };
            let bound = bound.expect("bind");
            (
                ServerHandle::InProcess {
                    _runtime: server_rt,
                    state,
                },
                format!("{scheme}://{bound}/v1"),
            )
        }
        Server::Process => {
            let ttft = profile.ttft_ms.to_string();
            let itl = profile.itl_ms.to_string();
            let tokens = profile.output_tokens.to_string();
            let mut args = vec![
                "--no-role-chunk".to_string(),
                "--recall".into(),
                "0".into(),
                "--ttft-ms".into(),
                ttft,
                "--itl-ms".into(),
                itl,
                "--output-tokens".into(),
                tokens,
            ];
            if let Some(pki) = pki() {
                args.extend(pki.cert.sim_args());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (child, url) = sim::start(env!("CARGO_BIN_EXE_llmpulse"), &args);
            (ServerHandle::Process(child, url.clone()), url)
        }
    };
    let ca_file = pki().map_or(String::new(), |p| {
        format!("ca_file = \"{}\"\n", p.ca_file.display())
    });
    let http2 = match std::env::var("LLMPULSE_BENCH_HTTP2") {
        Ok(_) => "http2 = \"on\"\n",
        Err(_) => "",
    };
    let text = format!(
        "[[targets]]\nname = \"bench\"\nprovider = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmodel = \"sim\"\ntimeout_sec = 60\nclock = \"{}\"\n{ca_file}{http2}",
        std::env::var("LLMPULSE_BENCH_CLOCK").unwrap_or("kernel".into())
    );
    let config = Config::parse(&text, "bench", PathBuf::from("."), &|_| None).expect("config");
    let client = Client::new(config.targets[0].clone()).expect("http client");
    Setup { server, client }
}

fn prompt() -> Prompt {
    Prompt::messages(vec![Message {
        role: "user",
        content: "Context:\n[1] Revenue was 5 million. Costs were 3 million.\n\nQuestion: Revenue?"
            .into(),
    }])
}

/// Runs `total` calls, `concurrency` at a time, on the client runtime.
fn drive(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    concurrency: usize,
    total: usize,
) -> (Vec<CallOutcome>, Duration) {
    let msgs = Arc::new(prompt());
    let started = Instant::now();
    let outcomes = rt.block_on(async {
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..total {
            let (client, msgs, permits) = (client.clone(), msgs.clone(), permits.clone());
            tasks.spawn(async move {
                let _p = permits.acquire_owned().await;
                client.call(&msgs, None, None).await
            });
        }
        let mut out = Vec::with_capacity(total);
        while let Some(r) = tasks.join_next().await {
            out.push(r.expect("task"));
        }
        out
    });
    (outcomes, started.elapsed())
}

fn us(d: f64) -> String {
    format!("{:.0} µs", d * 1e6)
}

fn timing_error(concurrency: usize, total: usize, where_: Server) {
    let s = setup(
        SimProfile {
            ttft_ms: 50.0,
            itl_ms: 10.0,
            output_tokens: 50,
            role_chunk: false,
            recall: 0.0,
            ..Default::default()
        },
        where_,
    );
    let rt = runtime();
    // Connections opened first (at 1,000 streams over https, a thousand handshakes would hold up
    // both ends' runtimes while the first events are due): the timed calls measure streams.
    drive(&rt, &s.client, concurrency, concurrency);
    let (outcomes, _) = drive(&rt, &s.client, concurrency, total);
    let log: HashMap<String, LogEntry> = s
        .server
        .log()
        .into_iter()
        .map(|e| (e.request_id.clone(), e))
        .collect();
    let (mut first, mut every, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    let mut failed = 0;
    for o in &outcomes {
        let Some(entry) = o.provider_request_id.as_ref().and_then(|id| log.get(id)) else {
            failed += 1;
            continue;
        };
        if !o.success() {
            failed += 1;
            continue;
        }
        // Seconds on one clock: the monotonic one in one process, the wall clock across two.
        let (sent, got): (Vec<f64>, Vec<f64>) = match where_ {
            Server::InProcess => {
                let origin = o.sent;
                let since = |t: Instant| {
                    t.saturating_duration_since(origin).as_secs_f64()
                        - origin.saturating_duration_since(t).as_secs_f64()
                };
                (
                    entry.event_instants().into_iter().map(since).collect(),
                    o.chunk_offsets.iter().map(|d| d.as_secs_f64()).collect(),
                )
            }
            Server::Process => {
                let sent_at = o.sent_at.timestamp_micros() as f64 / 1e6;
                (
                    entry
                        .events_ms
                        .iter()
                        .map(|ms| (entry.received_unix_ms + ms) / 1000.0)
                        .collect(),
                    o.chunk_offsets
                        .iter()
                        .map(|d| sent_at + d.as_secs_f64())
                        .collect(),
                )
            }
        };
        for (k, (g, s)) in got.iter().zip(&sent).enumerate() {
            let err = (g - s).max(0.0);
            if k == 0 {
                first.push(err);
            }
            every.push(err);
            if k > 0 {
                let measured = g - got[k - 1];
                let actual = s - sent[k - 1];
                gaps.push((measured - actual).abs());
            }
        }
    }
    let p = |v: &[f64], q| percentile(v, q).map_or("-".into(), us);
    // Which clock the calls' stamps came from (a packet-clock call that read any segment the
    // capture missed says `kernel`), and over which HTTP version.
    let mut clocks = std::collections::BTreeMap::new();
    for o in &outcomes {
        let version = o.http_version.unwrap_or("-");
        *clocks.entry((o.clock.as_str(), version)).or_insert(0) += 1;
    }
    let clocks: Vec<String> = clocks
        .iter()
        .map(|((c, v), n)| format!("{c} {v} {n}"))
        .collect();
    println!(
        "| {concurrency:>5} | {total:>5} | {failed:>3} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {} |",
        p(&first, 50.0),
        p(&first, 99.0),
        p(&every, 50.0),
        p(&every, 99.0),
        p(&gaps, 50.0),
        p(&gaps, 99.0),
        clocks.join(", "),
    );
}

fn throughput(concurrency: usize, total: usize, where_: Server) {
    let s = setup(
        SimProfile {
            ttft_ms: 0.0,
            itl_ms: 0.0,
            output_tokens: 50,
            recall: 0.0,
            ..Default::default()
        },
        where_,
    );
    let rt = runtime();
    // Warm the connection pool first.
    drive(&rt, &s.client, concurrency, concurrency.min(total));
    let (outcomes, took) = drive(&rt, &s.client, concurrency, total);
    let ok = outcomes.iter().filter(|o| o.success()).count();
    println!(
        "| {concurrency:>5} | {total:>6} | {ok:>6} | {:>8.0} |",
        ok as f64 / took.as_secs_f64()
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 1 } else { 3 };
    let pressure = pressure::Pressure::from_env();
    println!(
        "timing error: client receive time − simulator send time (ttft 50 ms, itl 10 ms, 50 tokens/stream), {} busy processes beside\n",
        pressure.count()
    );
    for (where_, title) in [
        (Server::InProcess, "server and client in one process"),
        (
            Server::Process,
            "the server in its own process (`llmpulse sim`)",
        ),
    ] {
        println!("{title}\n");
        println!(
            "| concurrent streams | requests | failed | first token p50 | p99 | every chunk p50 | p99 | chunk-gap error p50 | p99 | clock_source, HTTP |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        timing_error(1, 20 * scale, where_);
        timing_error(100, 100 * scale, where_);
        timing_error(1000, 1000, where_);
        println!("\nstreamed requests/s with zero delays (50 tokens, one chunk each)\n");
        println!("| concurrent streams | requests | ok | requests/s |");
        println!("|---:|---:|---:|---:|");
        throughput(1, 500 * scale, where_);
        throughput(100, 2000 * scale, where_);
        throughput(1000, 2000 * scale, where_);
        println!();
    }
}
