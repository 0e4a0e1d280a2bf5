//! Discovery as the agent runs it: core's [`llmpulse_core::discover`] (which LLM servers answer,
//! what they are, which models they serve), plus which process listens on each server's port,
//! which only a tool on the host itself can tell.

pub use llmpulse_core::discover::*;

/// Core's discovery, each server found with the process on its port where this host can tell.
pub async fn discover(urls: &[String], local: bool) -> Discovery {
    let mut found = llmpulse_core::discover::discover(urls, local).await;
    for server in &mut found.servers {
        if let Some(port) = port_of(&server.url)
            && let Ok(p) = listeners::get_process_by_port(port, listeners::Protocol::TCP)
        {
            server.pid = Some(p.pid);
            server.process = Some(p.name);
        }
    }
    found
}
