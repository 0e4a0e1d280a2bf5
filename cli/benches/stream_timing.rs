//! How exact is llmpulse's clock? The simulator logs when it hands each event to the socket;
//! the client stamps when the bytes arrive. Over real loopback HTTP, at 1, 100 and 1,000
//! concurrent streams, this prints the client's timing error per event (receive − send) for the
//! first token and for every chunk, the error of each measured chunk gap, and the streamed
//! requests per second sustained with zero delays.
//!
//! Run: `cargo bench -p llmpulse-core --bench stream_timing` (add `-- --quick` for a short run).
//! Server and client run on separate Tokio runtimes of one worker thread each, in one process,
//! so both read the same monotonic clock.

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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

struct Setup {
    _server_rt: tokio::runtime::Runtime,
    state: Arc<SimState>,
    client: Client,
}

fn setup(profile: SimProfile) -> Setup {
    let server_rt = runtime();
    let state = Arc::new(SimState::new(profile, HashMap::new(), true));
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bound = server_rt
        .block_on(server::spawn(addr, state.clone()))
        .expect("bind");
    let text = format!(
        "[[targets]]\nname = \"bench\"\nprovider = \"openai-compatible\"\nbase_url = \"http://{bound}/v1\"\nmodel = \"sim\"\ntimeout_sec = 60\n"
    );
    let config = Config::parse(&text, "bench", PathBuf::from("."), &|_| None).expect("config");
    let client = Client::new(config.targets[0].clone()).expect("http client");
    Setup {
        _server_rt: server_rt,
        state,
        client,
    }
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

fn timing_error(concurrency: usize, total: usize) {
    let s = setup(SimProfile {
        ttft_ms: 50.0,
        itl_ms: 10.0,
        output_tokens: 50,
        role_chunk: false,
        recall: 0.0,
        ..Default::default()
    });
    let rt = runtime();
    let (outcomes, _) = drive(&rt, &s.client, concurrency, total);
    let log: HashMap<String, LogEntry> = s
        .state
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
        let sent = entry.event_instants();
        let got: Vec<Instant> = o.chunk_offsets.iter().map(|d| o.sent + *d).collect();
        for (k, (g, s)) in got.iter().zip(&sent).enumerate() {
            let err = g.saturating_duration_since(*s).as_secs_f64();
            if k == 0 {
                first.push(err);
            }
            every.push(err);
            if k > 0 {
                let measured = g.saturating_duration_since(got[k - 1]).as_secs_f64();
                let actual = s.saturating_duration_since(sent[k - 1]).as_secs_f64();
                gaps.push((measured - actual).abs());
            }
        }
    }
    let p = |v: &[f64], q| percentile(v, q).map_or("-".into(), us);
    println!(
        "| {concurrency:>5} | {total:>5} | {failed:>3} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |",
        p(&first, 50.0),
        p(&first, 99.0),
        p(&every, 50.0),
        p(&every, 99.0),
        p(&gaps, 50.0),
        p(&gaps, 99.0),
    );
}

fn throughput(concurrency: usize, total: usize) {
    let s = setup(SimProfile {
        ttft_ms: 0.0,
        itl_ms: 0.0,
        output_tokens: 50,
        recall: 0.0,
        ..Default::default()
    });
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
    println!(
        "timing error: client receive time − simulator send time (ttft 50 ms, itl 10 ms, 50 tokens/stream)\n"
    );
    println!(
        "| concurrent streams | requests | failed | first token p50 | p99 | every chunk p50 | p99 | chunk-gap error p50 | p99 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    timing_error(1, 20 * scale);
    timing_error(100, 100 * scale);
    timing_error(1000, 1000);
    println!("\nstreamed requests/s with zero delays (50 tokens, one chunk each)\n");
    println!("| concurrent streams | requests | ok | requests/s |");
    println!("|---:|---:|---:|---:|");
    throughput(1, 500 * scale);
    throughput(100, 2000 * scale);
    throughput(1000, 2000 * scale);
}
