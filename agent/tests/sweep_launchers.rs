//! `llmpulse-agent sweep` through the CLIs of servers no reachable registry ships (Ollama's
//! `ollama`, LM Studio's `lms`): stand-in executables record every argument and variable they
//! are given, and the test serves each port they are handed with the simulator of that kind, so
//! each point's calls are real HTTP to "its" server.

mod common;
#[path = "../../cli/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{ONE_QUESTION, Scratch};

const AGENT: &str = env!("CARGO_BIN_EXE_llmpulse-agent");

/// A test's scratch folder for one stand-in CLI: the one-question suite, the log the stand-in
/// appends each call to, the `ports/` folder it names the ports it was handed in, and the
/// executable itself.
struct Standin {
    dir: Scratch,
    calls: PathBuf,
    ports: PathBuf,
    exe: PathBuf,
}

impl Standin {
    /// `script(log, ports)` is the stand-in's shell script.
    fn new(test: &str, exe: &str, script: impl Fn(&Path, &Path) -> String) -> Standin {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::new(test);
        dir.write("suite.toml", ONE_QUESTION);
        let calls = dir.0.join(format!("{exe}-calls.log"));
        let ports = dir.0.join("ports");
        std::fs::create_dir_all(&ports).unwrap();
        let exe = dir.write(exe, &script(&calls, &ports));
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        Standin {
            dir,
            calls,
            ports,
            exe,
        }
    }

    /// A sweep config: one `provider` target named `smol` (model `smol-sweep`), two repetitions
    /// of the suite, records under `out/`, and `[sweep]` with `sweep` plus the stand-in binary.
    fn config(&self, provider: &str, sweep: &str) -> PathBuf {
        self.dir.write(
            "sweep.toml",
            &format!(
                "suite = \"suite.toml\"\nrepetitions = 2\nconcurrency = 1\noutput = \"{}\"\n\
                 [[targets]]\nname = \"smol\"\nprovider = \"{provider}\"\nmodel = \"smol-sweep\"\n\
                 max_tokens = 16\n[sweep]\n{sweep}binary = \"{}\"\nstart_timeout = \"30s\"\n",
                self.dir.0.join("out").display(),
                self.exe.display()
            ),
        )
    }
}

/// The Ollama launcher through Ollama's CLI, with a stand-in `ollama` executable (Ollama ships
/// through no registry this machine reaches): each point's `ollama serve` gets the point's
/// flash attention and KV cache type in its environment and its own port, `ollama create` gets
/// a Modelfile with the point's context size, and the point's calls go to that server (here the
/// simulator as `--kind ollama`, started on the port the stand-in was given).
#[test]
fn sweeps_ollama_through_its_cli() {
    let s = Standin::new("sweep-ollama", "ollama", |log, ports| {
        format!(
            "#!/bin/sh\n\
                 case \"$1\" in\n\
                 serve) echo \"serve host=$OLLAMA_HOST fa=${{OLLAMA_FLASH_ATTENTION-unset}} kv=$OLLAMA_KV_CACHE_TYPE\" >>'{log}'\n\
                        echo \"$OLLAMA_HOST\" >'{ports}/'$$; exec sleep 600 ;;\n\
                 create) echo \"create $2 $3 host=$OLLAMA_HOST $(tr '\\n' ';' <\"$4\")\" >>'{log}'; exit 0 ;;\n\
                 *) echo \"unexpected: $*\" >>'{log}'; exit 2 ;;\n\
                 esac\n",
            log = log.display(),
            ports = ports.display()
        )
    });
    let cfg = s.config(
        "ollama",
        "name = \"ol\"\nlauncher = \"ollama\"\n\
         models = [{ file = \"qwen2.5:0.5b\", quantization = \"Q4_K_M\" }]\n\
         flash_attn = [\"on\", \"off\"]\nkv_cache_type = [\"f16\", \"q8_0\"]\nctx_size = [4096]\n",
    );
    let (dir, calls, ports, out) = (&s.dir, &s.calls, &s.ports, s.dir.0.join("out"));
    // Each `ollama serve` the stand-in is asked for becomes a simulated Ollama on its port.
    let run = sweep_with_standin(&cfg, dir, ports, llmpulse_sim::ServerKind::Ollama);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let log = std::fs::read_to_string(calls).unwrap_or_default();
    assert!(
        run.status.success() && stdout.contains("3 points run, 0 did not start, 1 skipped"),
        "{stdout}\n{}\n{log}",
        String::from_utf8_lossy(&run.stderr)
    );
    // What Ollama's CLI was asked, point by point (flash off with a quantized cache is skipped).
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 6, "{log}");
    for (i, (fa, kv)) in [("1", "f16"), ("1", "q8_0"), ("0", "f16")]
        .iter()
        .enumerate()
    {
        let serve = lines[2 * i];
        let create = lines[2 * i + 1];
        assert!(serve.starts_with("serve host=127.0.0.1:"), "{serve}");
        assert!(serve.ends_with(&format!("fa={fa} kv={kv}")), "{serve}");
        let host = serve.split_whitespace().nth(1).unwrap();
        assert!(
            create.starts_with("create smol-sweep -f ")
                && create.contains(host)
                && create.ends_with("FROM qwen2.5:0.5b;PARAMETER num_ctx 4096;"),
            "{create}"
        );
    }
    let mut records = Vec::new();
    for p in support::walk(&out) {
        let s = p.display().to_string();
        if s.contains("/records/") && s.ends_with(".jsonl") {
            records.extend(common::jsonl(&p));
        }
    }
    assert_eq!(records.len(), 6);
    for r in &records {
        assert_eq!(r["success"], true, "{r:#}");
        assert_eq!(r["server"], "ollama");
        assert_eq!(r["ctx_size"], 4096);
        assert_eq!(r["quantization"], "Q4_K_M");
        assert!(r["server_version"].is_string(), "{r:#}");
    }
}

/// A CLI step that never ends (here the second point's `ollama create`, waiting on a
/// child of its own) stops that point at the sweep's `start_timeout`, with every process it
/// started, and the sweep goes on to the next point; the stopped point's planned calls are
/// records that say why.
#[test]
fn a_hanging_cli_step_stops_its_point_not_the_sweep() {
    let s = Standin::new("sweep-ollama-hang", "ollama", |log, ports| {
        format!(
            "#!/bin/sh\n\
             case \"$1\" in\n\
             serve) echo \"$OLLAMA_HOST\" >'{ports}/'$$; exec sleep 600 ;;\n\
             create) echo create >>'{log}'\n\
                     [ \"$(grep -c create '{log}')\" = 2 ] && {{ sleep 600; echo woke >>'{log}'; }}; exit 0 ;;\n\
             esac\n",
            log = log.display(),
            ports = ports.display()
        )
    });
    let cfg = s.config(
        "ollama",
        "name = \"ol\"\nlauncher = \"ollama\"\n\
         models = [{ file = \"qwen2.5:0.5b\" }]\n\
         flash_attn = [\"on\"]\nkv_cache_type = [\"f16\", \"q8_0\"]\nctx_size = [4096]\n",
    );
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("start_timeout = \"30s\"", "start_timeout = \"3s\""),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let run = sweep_with_standin(&cfg, &s.dir, &s.ports, llmpulse_sim::ServerKind::Ollama);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.contains("2 points run, 1 did not start, 0 skipped"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The hung step was stopped at its limit, not waited out.
    assert!(started.elapsed() < std::time::Duration::from_secs(300));
    let line = stdout
        .lines()
        .find(|l| l.contains("did not start ("))
        .unwrap();
    assert!(
        line.starts_with("ol-qwen2.5:0-faon-kvq8_0-c4096: "),
        "{line}"
    );
    assert!(line.contains("create smol-sweep -f"), "{line}");
    assert!(
        line.contains("did not finish within 3s; it was stopped"),
        "{line}"
    );
    let mut records = Vec::new();
    for p in support::walk(&s.dir.0.join("out")) {
        let p = p.display().to_string();
        if p.contains("/records/") && p.ends_with(".jsonl") {
            records.extend(common::jsonl(std::path::Path::new(&p)));
        }
    }
    let failed: Vec<_> = records.iter().filter(|r| r["success"] == false).collect();
    assert_eq!((records.len(), failed.len()), (4, 2), "{records:#?}");
    for r in failed {
        assert_eq!(r["error_kind"], "server_start_failed", "{r:#}");
        assert_eq!(r["kv_cache_type"], "q8_0", "{r:#}");
    }
    // The sleeper the step started was killed with it: it never woke to write.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = std::fs::read_to_string(&s.calls).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.starts_with("create")).count(),
        2,
        "{log}"
    );
    assert!(!log.contains("woke"), "{log}");
}

/// Runs the sweep `cfg` while a simulated server of `kind` is started on every address a
/// stand-in CLI writes into a file under `ports` (the port the agent gave it).
fn sweep_with_standin(
    cfg: &std::path::Path,
    dir: &Scratch,
    ports: &std::path::Path,
    kind: llmpulse_sim::ServerKind,
) -> std::process::Output {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let servers = {
        let (done, ports) = (done.clone(), ports.to_path_buf());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            let mut served = std::collections::BTreeSet::new();
            while !done.load(Ordering::Relaxed) {
                for e in std::fs::read_dir(&ports).unwrap().flatten() {
                    let Ok(host) = std::fs::read_to_string(e.path()) else {
                        continue;
                    };
                    let host = host.trim().to_string();
                    if host.is_empty() || !served.insert(host.clone()) {
                        continue;
                    }
                    let state = std::sync::Arc::new(
                        llmpulse_sim::SimState::new(
                            llmpulse_sim::SimProfile::default(),
                            Default::default(),
                            false,
                        )
                        .with_kind(Some(kind)),
                    );
                    rt.block_on(llmpulse_sim::server::spawn(host.parse().unwrap(), state))
                        .unwrap();
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    let run = Command::new(AGENT)
        .args(["sweep", "--config"])
        .arg(cfg)
        .arg("--spool")
        .arg(dir.0.join("spool"))
        .output()
        .unwrap();
    done.store(true, Ordering::Relaxed);
    servers.join().unwrap();
    run
}

/// The LM Studio launcher through `lms`, with a stand-in executable: per point `lms server start
/// --port P`, `lms load` with the point's context length and GPU offload under the template
/// target's model name, the calls, then `lms unload` and `lms server stop`, in that order.
#[test]
fn sweeps_lm_studio_through_lms() {
    let s = Standin::new("sweep-lms", "lms", |log, ports| {
        format!(
            "#!/bin/sh\n\
             echo \"$*\" >>'{log}'\n\
             case \"$1 $2\" in\n\
             'server start') echo \"127.0.0.1:$4\" >'{ports}/'$4; exit 0 ;;\n\
             'server stop') exit 0 ;;\n\
             esac\n\
             case \"$1\" in load|unload) exit 0 ;; esac\n\
             exit 2\n",
            log = log.display(),
            ports = ports.display()
        )
    });
    let cfg = s.config(
        "lmstudio",
        "name = \"lm\"\nlauncher = \"lmstudio\"\n\
         models = [{ file = \"qwen2.5-0.5b-instruct\", quantization = \"Q4_K_M\" }]\n\
         ctx_size = [2048, 4096]\ngpu = [\"max\", \"off\"]\n",
    );
    let (dir, calls, ports, out) = (&s.dir, &s.calls, &s.ports, s.dir.0.join("out"));
    let run = sweep_with_standin(&cfg, dir, ports, llmpulse_sim::ServerKind::LmStudio);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let log = std::fs::read_to_string(calls).unwrap_or_default();
    assert!(
        run.status.success() && stdout.contains("4 points run, 0 did not start"),
        "{stdout}\n{}\n{log}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 16, "{log}");
    for (i, (ctx, gpu)) in [(2048, "max"), (2048, "off"), (4096, "max"), (4096, "off")]
        .iter()
        .enumerate()
    {
        let p = &lines[4 * i..4 * i + 4];
        assert!(p[0].starts_with("server start --port "), "{p:?}");
        assert_eq!(
            p[1],
            format!(
                "load qwen2.5-0.5b-instruct --context-length {ctx} --gpu {gpu} \
                 --identifier smol-sweep -y"
            ),
            "{p:?}"
        );
        assert_eq!(p[2..], ["unload smol-sweep", "server stop"], "{p:?}");
    }
    let mut records = Vec::new();
    for p in support::walk(&out) {
        let s = p.display().to_string();
        if s.contains("/records/") && s.ends_with(".jsonl") {
            records.extend(common::jsonl(&p));
        }
    }
    assert_eq!(records.len(), 8);
    for r in &records {
        assert_eq!(r["success"], true, "{r:#}");
        assert_eq!(r["server"], "lmstudio");
        // LM Studio is told no flash attention, cache type or layer count: the record says none.
        assert!(
            r["flash_attn"].is_null() && r["kv_cache_type"].is_null() && r["gpu_layers"].is_null(),
            "{r:#}"
        );
        assert!(r["target"].as_str().unwrap().contains("-gpu"), "{r:#}");
    }
}
