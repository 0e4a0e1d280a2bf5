//! llmpulse beside its peers, against one `llmpulse sim` process whose request log says when
//! each event really left it. Each tool sends 2 × C streamed requests, C at a time (TTFT 200 ms,
//! 16 chunks 20 ms apart, no jitter, no role-only chunk); each tool's p50 and p99 of TTFT and
//! latency, from its own per-request output, are held against the same percentiles of the
//! simulator's truth for that tool's requests (told apart by model name): error = tool − truth,
//! in ms. Then 3,000 zero-delay requests at C = 100: requests per second of the whole process,
//! the median of 7 interleaved rounds. `llmpulse-rag` asks the bundled RAG suite instead of one
//! short prompt and scores every answer (coverage, grounding) as a scheduled run does;
//! `llm-bench-rag` sends llm-bench the same 20 prompts (context and question), unscored.
//!
//! `LLMPULSE_BENCH_PRESSURE=N` runs N busy loops beside the error table (the rates are measured
//! without them); `LLMPULSE_BENCH_BASE=path/to/llmpulse` adds another build as `base` and
//! `base-rag` in the same rounds.
//!
//! Peers are found in `$LLMPULSE_PEERS_DIR` (default `~/.cache/llmpulse-peers`), installed by
//! `benches/peers/install.sh`: llm-bench 0.3.1 (`bin/llm-bench`) and, with `--guidellm`,
//! GuideLLM (`guidellm-venv/bin/guidellm`; its prompts come from a JSONL file, so it needs no
//! tokenizer). A missing peer is skipped and named. Outside CI.
//!
//!   benches/peers/install.sh [--guidellm] && cargo bench -p llmpulse --bench peers
//!   cargo bench -p llmpulse --bench peers -- --quick      # C = 10 and 100

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use serde_json::Value;

#[path = "common/sim.rs"]
mod sim;

#[path = "common/pressure.rs"]
mod pressure;
use pressure::Pressure;

const LLMPULSE: &str = env!("CARGO_BIN_EXE_llmpulse");

/// `LLMPULSE_BENCH_BASE`: another build of `llmpulse` (an earlier commit's), run beside this one
/// in the same rounds as the tools named `base…`, so a change is judged as a ratio in one run.
fn base() -> Option<PathBuf> {
    std::env::var_os("LLMPULSE_BENCH_BASE").map(PathBuf::from)
}

/// The binary a tool named `model` runs: the base build for `base…`, else this one.
fn llmpulse_for(model: &str) -> PathBuf {
    match base() {
        Some(b) if model.starts_with("base") => b,
        _ => PathBuf::from(LLMPULSE),
    }
}

struct Sim {
    child: Child,
    url: String,
}

impl Sim {
    fn start(args: &[&str]) -> Sim {
        let (child, url) = sim::start(LLMPULSE, args);
        Sim { child, url }
    }

    /// (TTFT, latency) in ms for each request of `model` after its first `skip` (warm-up), as
    /// the simulator sent them.
    fn truth(&self, model: &str, skip: usize) -> (Vec<f64>, Vec<f64>) {
        let out = Command::new("curl")
            .args(["-s", &self.url.replace("/v1", "/sim/log")])
            .output()
            .expect("curl the simulator's log");
        let log: Vec<Value> = serde_json::from_slice(&out.stdout).expect("the log is JSON");
        let mut ttft = Vec::new();
        let mut latency = Vec::new();
        let mut mine: Vec<&Value> = log.iter().filter(|e| e["model"] == model).collect();
        mine.sort_by_key(|e| e["seq"].as_u64());
        for e in mine.into_iter().skip(skip) {
            let events: Vec<f64> = e["events_ms"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            if let (Some(first), Some(last)) = (events.first(), events.last()) {
                ttft.push(*first);
                latency.push(*last);
            }
        }
        (ttft, latency)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pct(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// One tool's per-request TTFT and latency (ms), and the process's wall time (s).
struct Measured {
    ttft: Vec<f64>,
    latency: Vec<f64>,
    wall: f64,
}

/// Which questions llmpulse asks.
#[derive(Clone, Copy, PartialEq)]
enum Suite {
    /// One short prompt, "Say hi", as the peers send it.
    SayHi,
    /// The bundled RAG suite (20 questions, each with its retrieved context), every answer
    /// scored for coverage and grounding: the full per-call work of a scheduled run.
    Rag,
}

/// `llmpulse run` with `model` as the model name, timestamps from `clock`; `warmup` calls first
/// when given. `n` calls in all (with the RAG suite, `n` rounded up to a multiple of its 20
/// questions).
fn run_llmpulse(
    dir: &Path,
    url: &str,
    (model, clock): (&str, &str),
    (c, n): (usize, usize),
    warmup: usize,
    questions: Suite,
) -> Measured {
    let (suite, repetitions) = match questions {
        Suite::SayHi => {
            let suite = dir.join("suite.toml");
            std::fs::write(
                &suite,
                "name = \"one\"\n[[questions]]\nid = \"q\"\nindustry = \"x\"\nquestion = \"Say hi\"\n",
            )
            .expect("write the suite");
            (suite.display().to_string(), n)
        }
        Suite::Rag => ("builtin:rag-retail-finance".to_string(), n.div_ceil(20)),
    };
    let cfg = dir.join("llmpulse.toml");
    std::fs::write(
        &cfg,
        format!(
            "suite = \"{suite}\"\nrepetitions = {repetitions}\nconcurrency = {c}\n[load]\nwarmup = {warmup}\n\
             [[targets]]\nname = \"t\"\nprovider = \"openai-compatible\"\nbase_url = \"{url}\"\n\
             model = \"{model}\"\nclock = \"{clock}\"\nmax_tokens = 64\n",
        ),
    )
    .expect("write the config");
    let out = dir.join("llmpulse-out");
    let _ = std::fs::remove_dir_all(&out);
    let start = Instant::now();
    let status = Command::new(llmpulse_for(model))
        .args(["run", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--output")
        .arg(&out)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run llmpulse");
    let wall = start.elapsed().as_secs_f64();
    assert!(status.success(), "llmpulse run failed");
    let mut m = Measured {
        ttft: Vec::new(),
        latency: Vec::new(),
        wall,
    };
    for day in std::fs::read_dir(out.join("records")).expect("records") {
        for f in std::fs::read_dir(day.expect("day").path()).expect("files") {
            let p = f.expect("file").path();
            if p.extension().is_some_and(|e| e == "jsonl") {
                for line in std::fs::read_to_string(&p).expect("read").lines() {
                    let r: Value = serde_json::from_str(line).expect("a record");
                    if let Some(t) = r["ttft_sec"].as_f64() {
                        m.ttft.push(t * 1000.0);
                    }
                    if let Some(l) = r["latency_sec"].as_f64() {
                        m.latency.push(l * 1000.0);
                    }
                }
            }
        }
    }
    m
}

/// llm-bench at `c` streams for `n` requests of "Say hi", or with `questions = Suite::Rag` of
/// the RAG suite's 20 user prompts (context and question, one line each: `--prompt-file`), the
/// same bytes llmpulse sends but for its system prompt.
fn run_llm_bench(
    bin: &Path,
    dir: &Path,
    url: &str,
    (c, n): (usize, usize),
    questions: Suite,
) -> Measured {
    let out = dir.join("llm-bench.json");
    let (prompts, runs) = match questions {
        Suite::SayHi => (vec!["--prompts".to_string(), "Say hi".to_string()], n),
        Suite::Rag => {
            let file = dir.join("rag-prompts.txt");
            std::fs::write(&file, rag_prompts()).expect("write the prompts");
            let file = file.display().to_string();
            (vec!["--prompt-file".to_string(), file], n.div_ceil(20))
        }
    };
    let start = Instant::now();
    let status = Command::new(bin)
        .args([
            "run",
            "--openai-base-url",
            url,
            "--models",
            "openai:llm-bench",
        ])
        .args(prompts)
        .args(["--stream", "--max-tokens", "64"])
        .args(["--runs", &runs.to_string(), "--concurrency", &c.to_string()])
        .args(["--output", "json", "--output-file"])
        .arg(&out)
        .env("OPENAI_API_KEY", "not-needed")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run llm-bench");
    let wall = start.elapsed().as_secs_f64();
    assert!(status.success(), "llm-bench failed");
    let results: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&out).expect("llm-bench's output")).expect("JSON");
    Measured {
        ttft: results
            .iter()
            .filter_map(|r| r["ttft_ms"].as_f64())
            .collect(),
        latency: results
            .iter()
            .filter_map(|r| r["total_ms"].as_f64())
            .collect(),
        wall,
    }
}

/// The bundled RAG suite's user prompts as llmpulse renders them, one a line.
fn rag_prompts() -> String {
    let suite = llmpulse_core::suite::Suite::load("builtin:rag-retail-finance", Path::new("."))
        .expect("the bundled RAG suite");
    let mut lines = String::new();
    for q in &suite.questions {
        let prompt = suite.prompt(q);
        let user = prompt
            .messages
            .iter()
            .rfind(|m| m.role == "user")
            .expect("a user message");
        lines.push_str(&user.content.replace('\n', " "));
        lines.push('\n');
    }
    lines
}

/// GuideLLM's `concurrent` profile at `c` streams for `n` requests of one prompt, its requests
/// read back from its JSON output.
fn run_guidellm(bin: &Path, dir: &Path, url: &str, c: usize, n: usize) -> Measured {
    let prompts = dir.join("guidellm-prompts.jsonl");
    std::fs::write(&prompts, "{\"prompt\": \"Say hi\"}\n".repeat(n)).expect("write prompts");
    let out = dir.join("guidellm.json");
    let _ = std::fs::remove_file(&out);
    let start = Instant::now();
    let status = Command::new(bin)
        .arg("run")
        .arg("--backend")
        .arg(format!(
            "kind=openai_http,target={},model=guidellm",
            url.trim_end_matches("/v1")
        ))
        .arg("--profile")
        .arg(format!("kind=concurrent,streams={c}"))
        .arg("--constraint")
        .arg(format!("kind=max_requests,count={n}"))
        .arg("--data")
        .arg(format!("kind=json_file,path={}", prompts.display()))
        .arg("--output")
        .arg(format!("kind=json,path={}", out.display()))
        .arg("--disable-console")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run guidellm");
    let wall = start.elapsed().as_secs_f64();
    assert!(status.success(), "guidellm failed");
    let report: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("guidellm's output")).expect("JSON");
    let done = report["benchmarks"][0]["requests"]["successful"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Measured {
        ttft: done
            .iter()
            .filter_map(|r| r["time_to_first_token_ms"].as_f64())
            .collect(),
        latency: done
            .iter()
            .filter_map(|r| r["request_latency"].as_f64().map(|s| s * 1000.0))
            .collect(),
        wall,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let peers = std::env::var_os("LLMPULSE_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/llmpulse-peers")
        });
    let llm_bench = peers.join("bin/llm-bench");
    let have_llm_bench = llm_bench.is_file();
    if !have_llm_bench {
        println!(
            "llm-bench not found at {} (benches/peers/install.sh installs it): skipped",
            llm_bench.display()
        );
    }
    let guidellm = peers.join("guidellm-venv/bin/guidellm");
    let have_guidellm = guidellm.is_file();
    if !have_guidellm {
        println!(
            "GuideLLM not found at {} (benches/peers/install.sh --guidellm installs it): skipped",
            guidellm.display()
        );
    }
    let dir = std::env::temp_dir().join("llmpulse-bench-peers");
    let _ = std::fs::create_dir_all(&dir);

    let pressure = Pressure::from_env();
    println!(
        "error against the simulator's send log, ms (tool − truth), p50 / p99, median of {} \
         rounds, {} busy processes beside:",
        if quick { 1 } else { 3 },
        pressure.count()
    );
    println!(
        "{:>6}  {:<16} {:>20} {:>20} {:>9}",
        "C", "tool", "TTFT p50 / p99", "latency p50 / p99", "requests"
    );
    let cs: &[usize] = if quick { &[10, 100] } else { &[100, 1000] };
    // Each cell is the median over rounds: at C = 1000 one round in a few has a
    // half-second stall on connection set-up, whichever tool it hits.
    let rounds = if quick { 1 } else { 3 };
    for &c in cs {
        let mut cells: Vec<(&str, Vec<[f64; 4]>)> = Vec::new();
        for _ in 0..rounds {
            let sim = Sim::start(&[
                "--ttft-ms",
                "200",
                "--itl-ms",
                "20",
                "--output-tokens",
                "16",
                "--no-role-chunk",
            ]);
            let mut tools: Vec<(&str, usize, Measured)> = Vec::new();
            // The default (kernel receive timestamps), the same with `warmup = C` (every
            // connection open before the measured calls), then the two other clocks: stamped
            // at the socket read in user space, and where the reading task sees the bytes.
            // And the default with the RAG suite: every answer scored while others stream.
            let mut mine = vec![
                ("llmpulse", "kernel", 0, Suite::SayHi),
                ("llmpulse-warm", "kernel", c, Suite::SayHi),
                ("llmpulse-socket", "socket", 0, Suite::SayHi),
                ("llmpulse-client", "client", 0, Suite::SayHi),
                ("llmpulse-rag", "kernel", 0, Suite::Rag),
            ];
            if base().is_some() {
                mine.push(("base", "kernel", 0, Suite::SayHi));
                mine.push(("base-rag", "kernel", 0, Suite::Rag));
            }
            for (name, clock, warmup, questions) in mine {
                let m = run_llmpulse(&dir, &sim.url, (name, clock), (c, 2 * c), warmup, questions);
                tools.push((name, warmup, m));
            }
            if have_llm_bench {
                tools.push((
                    "llm-bench",
                    0,
                    run_llm_bench(&llm_bench, &dir, &sim.url, (c, 2 * c), Suite::SayHi),
                ));
            }
            if have_guidellm {
                tools.push((
                    "guidellm",
                    0,
                    run_guidellm(&guidellm, &dir, &sim.url, c, 2 * c),
                ));
            }
            for (name, skip, m) in &tools {
                let (tt, tl) = sim.truth(name, *skip);
                let e = |mine: &[f64], truth: &[f64], p: f64| pct(mine, p) - pct(truth, p);
                let row = [
                    e(&m.ttft, &tt, 50.0),
                    e(&m.ttft, &tt, 99.0),
                    e(&m.latency, &tl, 50.0),
                    e(&m.latency, &tl, 99.0),
                ];
                match cells.iter_mut().find(|(n, _)| n == name) {
                    Some((_, v)) => v.push(row),
                    None => cells.push((name, vec![row])),
                }
            }
        }
        for (name, rows) in &cells {
            let med = |k: usize| pct(&rows.iter().map(|r| r[k]).collect::<Vec<_>>(), 50.0);
            println!(
                "{c:>6}  {name:<16} {:>+9.1} / {:<+8.1} {:>+9.1} / {:<+8.1} {:>9}",
                med(0),
                med(1),
                med(2),
                med(3),
                2 * c
            );
        }
    }

    drop(pressure);
    let n = if quick { 1000 } else { 3000 };
    // One 3,000-request run lasts a third of a second, so a single sample is mostly noise: the
    // fast tools take turns, round after round, and each prints its median rate and range.
    let zero_rounds = if quick { 3 } else { 7 };
    println!(
        "\n{n} zero-delay requests (16 tokens) at C = 100, whole process, median (min..max) of \
         {zero_rounds} interleaved rounds:"
    );
    let sim = Sim::start(&[
        "--ttft-ms",
        "0",
        "--itl-ms",
        "0",
        "--output-tokens",
        "16",
        "--no-role-chunk",
    ]);
    let mut rates: Vec<(&str, Vec<f64>)> = vec![
        ("llmpulse", vec![]),
        ("llmpulse-client", vec![]),
        ("llmpulse-rag", vec![]),
    ];
    if base().is_some() {
        rates.push(("base", vec![]));
        rates.push(("base-rag", vec![]));
    }
    if have_llm_bench {
        rates.push(("llm-bench", vec![]));
        rates.push(("llm-bench-rag", vec![]));
    }
    for _ in 0..zero_rounds {
        for (name, rounds) in rates.iter_mut() {
            let wall = match *name {
                "llm-bench" => {
                    run_llm_bench(&llm_bench, &dir, &sim.url, (100, n), Suite::SayHi).wall
                }
                "llm-bench-rag" => {
                    run_llm_bench(&llm_bench, &dir, &sim.url, (100, n), Suite::Rag).wall
                }
                "llmpulse" | "base" => {
                    run_llmpulse(&dir, &sim.url, (name, "kernel"), (100, n), 0, Suite::SayHi).wall
                }
                "llmpulse-rag" | "base-rag" => {
                    run_llmpulse(&dir, &sim.url, (name, "kernel"), (100, n), 0, Suite::Rag).wall
                }
                _ => run_llmpulse(&dir, &sim.url, (name, "client"), (100, n), 0, Suite::SayHi).wall,
            };
            rounds.push(n as f64 / wall);
        }
    }
    for (name, rounds) in &rates {
        let (lo, hi) = rounds
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        println!(
            "  {name:<16} {:>8.0} requests/s ({lo:.0}..{hi:.0})",
            pct(rounds, 50.0)
        );
    }
    if have_guidellm {
        // GuideLLM takes tens of seconds a run, mostly starting up: one round.
        let m = run_guidellm(&guidellm, &dir, &sim.url, 100, n);
        println!(
            "  {:<16} {:>8.0} requests/s ({:.2} s, one round)",
            "guidellm",
            n as f64 / m.wall,
            m.wall
        );
    }
}
