//! `llmpulse sim`: the simulator as an HTTP server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use llmpulse_sim::{ServerKind, SimProfile, SimState, server};
use serde::Deserialize;

use crate::args::SimArgs;

/// A profile file: `[default]` and `[models.NAME]` tables of [`SimProfile`] settings.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    default: SimProfile,
    #[serde(default)]
    models: HashMap<String, SimProfile>,
}

pub fn sim(a: SimArgs) -> anyhow::Result<ExitCode> {
    let file = match &a.profile {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<ProfileFile>(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => ProfileFile::default(),
    };
    let mut default = file.default;
    apply_flags(&mut default, &a);
    default
        .validate()
        .map_err(|m| anyhow::anyhow!("sim profile: {m}"))?;
    for (name, p) in &file.models {
        p.validate()
            .map_err(|m| anyhow::anyhow!("sim profile for model '{name}': {m}"))?;
    }
    let addr: SocketAddr = format!("{}:{}", a.host, a.port)
        .parse()
        .with_context(|| format!("'{}:{}' is not an address", a.host, a.port))?;
    let kind = a.kind.as_deref().and_then(ServerKind::parse);
    let state = Arc::new(SimState::new(default, file.models, true).with_kind(kind));
    let tls = tls(&a)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("llmpulse sim listening on {scheme}://{bound}/v1");
        tracing::info!(%bound, scheme, "simulator ready");
        let serving = async {
            match tls {
                #[cfg(unix)]
                Some(tls) => server::serve_tls(listener, state, tls).await,
                #[cfg(not(unix))]
                Some(never) => match never {},
                None => server::serve(listener, state).await,
            }
        };
        tokio::select! {
            r = serving => r.context("simulator server failed"),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// How to serve https, from `--tls-cert` and `--tls-key`.
#[cfg(unix)]
fn tls(a: &SimArgs) -> anyhow::Result<Option<server::Tls>> {
    let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) else {
        return Ok(None);
    };
    let config = server::tls_config(cert, key).map_err(|m| anyhow::anyhow!("{m}"))?;
    Ok(Some(server::Tls {
        config,
        handshake_delay: std::time::Duration::from_millis(a.tls_handshake_delay_ms),
    }))
}

#[cfg(not(unix))]
fn tls(a: &SimArgs) -> anyhow::Result<Option<std::convert::Infallible>> {
    anyhow::ensure!(
        a.tls_cert.is_none(),
        "the simulator serves https on Unix only"
    );
    Ok(None)
}

fn apply_flags(p: &mut SimProfile, a: &SimArgs) {
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = a.$field { p.$field = v; } )* };
    }
    set!(
        ttft_ms,
        itl_ms,
        jitter,
        tokens_per_chunk,
        output_tokens,
        reasoning_tokens,
        recall,
        seed,
        fault_429,
        retry_after_sec,
        fault_500,
        fault_cut,
        fault_malformed,
        fault_error_event,
        fault_slow_first_byte,
        slow_first_byte_ms,
        fault_endless,
        fault_line_without_end,
        fault_huge_headers,
        cost_per_mtok,
        memory_mb
    );
    if let Some(f) = &a.tool_calls_in_text {
        p.tool_calls_in_text = f.clone();
    }
    if a.no_usage {
        p.usage = false;
    }
    if a.no_role_chunk {
        p.role_chunk = false;
    }
}
