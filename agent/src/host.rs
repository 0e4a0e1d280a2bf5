//! The host fingerprint stored in each agent run's manifest: OS and kernel, CPU, memory, GPUs
//! with driver and memory, each telemetry source (or why it is absent), and each server the
//! run's targets use as the server itself reports it (name, version, model file, quantization,
//! context).

use serde_json::{Value, json};
use sysinfo::System;

use crate::discover::Server;
use crate::telemetry::Telemetry;

/// The host's name, for `host_id` when the config sets no `[agent] id`.
pub fn host_name() -> String {
    System::host_name()
        .ok()
        .filter(|h| !h.is_empty())
        .map(|h| {
            h.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect()
        })
        .unwrap_or_else(|| "agent".into())
}

/// The fingerprint of this host, its telemetry and `servers`.
pub fn fingerprint(host_id: &str, telemetry: &Telemetry, servers: &[Server]) -> Value {
    let mut sys = System::new().ok();
    let (cpu, logical, ram_mb) = match sys.as_mut() {
        Some(s) => {
            s.refresh_cpu_all();
            s.refresh_memory();
            (
                s.cpus().first().map(|c| c.brand().trim().to_string()),
                Some(s.cpus().len()),
                Some(s.total_memory() as f64 / 1_048_576.0),
            )
        }
        None => (None, None, None),
    };
    let absent: Vec<Value> = telemetry
        .absent()
        .into_iter()
        .map(|a| json!({"source": a.source, "why": a.why}))
        .collect();
    let pids = telemetry.server_pids();
    let servers: Vec<Value> = servers
        .iter()
        .map(|s| {
            let port = crate::discover::port_of(&s.url);
            json!({
                "kind": s.kind,
                "url": s.url,
                "version": s.version,
                "pid": port.and_then(|p| pids.get(&p).copied().flatten()).or(s.pid),
                "process": s.process,
                "details": s.details,
                "models": s.models.iter().map(|m| json!({
                    "name": m.name, "size_bytes": m.size_bytes, "quantization": m.quantization,
                    "parameters": m.parameters, "context_length": m.context_length,
                    "loaded": m.loaded,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "host_id": host_id,
        "os": System::long_os_version().ok(),
        "kernel": System::kernel_version().ok(),
        "arch": std::env::consts::ARCH,
        "cpu": cpu,
        "cpu_cores_physical": System::physical_core_count().ok(),
        "cpu_cores_logical": logical,
        "ram_mb": ram_mb,
        "gpus": telemetry.gpus(),
        "telemetry_absent": absent,
        "servers": servers,
        "agent_version": env!("CARGO_PKG_VERSION"),
    })
}
