//! Where a target's requests go (the in-process simulator or an http(s) base URL) and where
//! its timestamps are taken: the part of a target's validation that concerns its endpoint.

use toml::Spanned;

use super::raw::RawTarget;
use super::validate::Cx;
use super::{ClockSource, ConfigError, Endpoint};
use crate::preset;

impl Cx<'_> {
    /// Where the target's timestamps are taken: at the socket, by the kernel where it can, for
    /// http and https targets alike, over HTTP/1.1 and HTTP/2 (TLS runs over llmpulse's own
    /// stamped socket); where the reading task sees the bytes for the in-process simulator.
    pub(super) fn clock(
        &self,
        i: usize,
        spanned: &Spanned<RawTarget>,
        endpoint: &Endpoint,
    ) -> Result<ClockSource, ConfigError> {
        let http = matches!(endpoint, Endpoint::Http { .. });
        let Some(asked) = &spanned.get_ref().clock else {
            return Ok(if http {
                ClockSource::Kernel
            } else {
                ClockSource::Client
            });
        };
        let clock = match asked.get_ref().as_str() {
            "packet" => ClockSource::Packet,
            "kernel" => ClockSource::Kernel,
            "socket" => ClockSource::Socket,
            "client" => ClockSource::Client,
            other => {
                return Err(self.invalid(
                    asked.span().start,
                    format!("targets[{i}].clock"),
                    format!("unknown clock '{other}' (known: packet, kernel, socket, client)"),
                ));
            }
        };
        if clock != ClockSource::Client && !http {
            return Err(self.invalid(
                asked.span().start,
                format!("targets[{i}].clock"),
                format!(
                    "clock '{}' stamps at a socket; the in-process simulator has none and takes \
                     clock = \"client\"",
                    clock.as_str()
                ),
            ));
        }
        Ok(clock)
    }

    /// The DNS servers a target's host is looked up with: each an IP address, with a port or
    /// 53; only for a base URL with a host name to look up.
    pub(super) fn dns_servers(
        &self,
        i: usize,
        spanned: &Spanned<RawTarget>,
        endpoint: &Endpoint,
    ) -> Result<Vec<std::net::SocketAddr>, ConfigError> {
        let Some(servers) = &spanned.get_ref().dns_servers else {
            return Ok(Vec::new());
        };
        let at = |k: usize| format!("targets[{i}].dns_servers[{k}]");
        let pos = servers.span().start;
        let servers = servers.get_ref();
        let mut out = Vec::with_capacity(servers.len());
        for (k, s) in servers.iter().enumerate() {
            let text = s.get_ref().trim();
            let addr = text
                .parse::<std::net::SocketAddr>()
                .or_else(|_| {
                    text.parse::<std::net::IpAddr>()
                        .map(|ip| std::net::SocketAddr::new(ip, 53))
                })
                .map_err(|_| {
                    self.invalid(
                        s.span().start,
                        at(k),
                        format!(
                            "'{text}' is not an IP address with an optional port (\"10.0.0.2\", \
                             \"1.1.1.1:53\", \"[2606:4700::1111]:53\")"
                        ),
                    )
                })?;
            out.push(addr);
        }
        let field = format!("targets[{i}].dns_servers");
        if out.is_empty() {
            return Err(self.invalid(
                pos,
                field,
                "is empty: name servers, or leave it out for the system resolver".into(),
            ));
        }
        if !matches!(endpoint, Endpoint::Http { .. }) {
            return Err(self.invalid(
                pos,
                field,
                "the in-process simulator looks nothing up; dns_servers needs a base_url".into(),
            ));
        }
        Ok(out)
    }

    /// Where a target's requests go: the in-process simulator or an http(s) base URL.
    pub(super) fn endpoint(
        &self,
        i: usize,
        spanned: &Spanned<RawTarget>,
        provider: &str,
        preset: &preset::Preset,
    ) -> Result<Endpoint, ConfigError> {
        let t = spanned.get_ref();
        let field = |f: &str| format!("targets[{i}].{f}");
        let endpoint = if provider == "sim" {
            if let Some(url) = &t.base_url {
                return Err(self.invalid(
                    url.span().start,
                    field("base_url"),
                    "a sim target runs in-process and takes no base_url (to measure a running \
                     `llmpulse sim` server use provider = \"openai-compatible\")"
                        .into(),
                ));
            }
            let profile = t
                .sim
                .as_ref()
                .map(|s| s.get_ref().clone())
                .unwrap_or_default();
            if let Err(m) = profile.validate() {
                let pos = t
                    .sim
                    .as_ref()
                    .map_or(spanned.span().start, |s| s.span().start);
                return Err(self.invalid(pos, field("sim"), m));
            }
            Endpoint::Sim(Box::new(profile))
        } else {
            if let Some(sim) = &t.sim {
                return Err(self.invalid(
                    sim.span().start,
                    field("sim"),
                    format!("[sim] settings apply only to provider = \"sim\", not '{provider}'"),
                ));
            }
            let base_url = match (&t.base_url, preset.base_url) {
                (Some(u), _) => self.interpolate(u, &field("base_url"))?,
                (None, Some(default)) => default.to_string(),
                (None, None) => {
                    return Err(self.invalid(
                        t.provider.span().start,
                        field("base_url"),
                        format!("provider '{provider}' needs a base_url, e.g. \"http://127.0.0.1:8080/v1\""),
                    ));
                }
            };
            let pos = t
                .base_url
                .as_ref()
                .map_or(t.provider.span().start, |u| u.span().start);
            match reqwest::Url::parse(&base_url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => {
                    return Err(self.invalid(
                        pos,
                        field("base_url"),
                        format!("'{base_url}' is not an http(s) URL"),
                    ));
                }
            }
            Endpoint::Http {
                base_url: base_url.trim_end_matches('/').to_string(),
            }
        };
        Ok(endpoint)
    }
}
