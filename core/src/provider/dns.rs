//! How a target's host name becomes addresses (the caller times it: `dns_sec`).
//!
//! By default the system resolver (`getaddrinfo` on a blocking thread, as reqwest does): what
//! the machine's other programs see, with whatever cache the system keeps, and no cache of
//! llmpulse's own. A target with `dns_servers` asks those servers instead, through llmpulse's
//! own resolver (hickory-resolver, UDP with TCP for long answers): its answers are cached for
//! the run (per target) for as long as each record's TTL says, so a lookup's time is the
//! network's and a repeat within the TTL costs nothing; `/etc/hosts` still applies first.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// A target's resolver.
#[derive(Clone)]
pub enum Resolver {
    /// `getaddrinfo`.
    System,
    /// llmpulse's own, asking `servers` (named in errors).
    Own {
        resolver: Arc<TokioResolver>,
        servers: Arc<str>,
        /// A lookup's time at most, all its tries together.
        limit: Duration,
    },
}

/// The resolver for `dns_servers` could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the resolver for dns_servers {servers}: {reason}")]
pub struct DnsError {
    servers: String,
    reason: String,
}

impl Resolver {
    /// The system's resolver when `servers` is empty, else one asking them in order, a lookup
    /// given up after `limit` (its tries a third of it each).
    pub fn new(servers: &[SocketAddr], limit: Duration) -> Result<Resolver, DnsError> {
        if servers.is_empty() {
            return Ok(Resolver::System);
        }
        let named = servers
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let name_servers = servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        let config = ResolverConfig::from_name_servers(name_servers);
        let mut builder =
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        builder.options_mut().timeout = limit / 3;
        builder.options_mut().attempts = 2;
        let resolver = builder.build().map_err(|e| DnsError {
            servers: named.clone(),
            reason: e.to_string(),
        })?;
        Ok(Resolver::Own {
            resolver: Arc::new(resolver),
            servers: named.into(),
            limit,
        })
    }

    /// The addresses of `host` with `port`; an IP address is returned as it is.
    pub async fn lookup(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        match self {
            Resolver::System => Ok(tokio::net::lookup_host((host, port)).await?.collect()),
            Resolver::Own {
                resolver,
                servers,
                limit,
            } => {
                let failed = |why: String| {
                    io::Error::other(format!("DNS lookup of {host} through {servers}: {why}"))
                };
                let found = tokio::time::timeout(*limit, resolver.lookup_ip(host))
                    .await
                    .map_err(|_| failed(format!("no answer within {} ms", limit.as_millis())))?
                    .map_err(|e| failed(e.to_string()))?;
                Ok(found.iter().map(|ip| SocketAddr::new(ip, port)).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmpulse_sim::dns::{DnsAnswer, DnsServer};
    use std::net::Ipv4Addr;
    use std::time::Instant;

    const TIMEOUT: Duration = Duration::from_secs(1);

    async fn server(delay_ms: u64, ttl: u32) -> DnsServer {
        start(DnsAnswer {
            address: Ipv4Addr::new(127, 0, 0, 7),
            delay: Duration::from_millis(delay_ms),
            ttl,
            garbage: false,
        })
        .await
    }

    async fn start(answer: DnsAnswer) -> DnsServer {
        DnsServer::start("127.0.0.1:0".parse().unwrap(), answer)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_lookup_takes_the_servers_delay_then_the_ttl_keeps_its_answer() {
        let dns = server(200, 2).await;
        let resolver = Resolver::new(&[dns.addr], TIMEOUT).unwrap();
        let started = Instant::now();
        let addrs = resolver.lookup("llm.test", 8443).await.unwrap();
        let first = started.elapsed();
        assert_eq!(addrs, vec!["127.0.0.7:8443".parse().unwrap()]);
        assert!(first >= Duration::from_millis(200), "{first:?}");
        assert_eq!(dns.a_questions(), 1);
        // Within the TTL: from the cache, no question asked.
        let started = Instant::now();
        resolver.lookup("llm.test", 443).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(50));
        assert_eq!(dns.a_questions(), 1);
        // Past it: asked again, and the delay paid again.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let started = Instant::now();
        resolver.lookup("llm.test", 443).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(dns.a_questions(), 2);
    }

    /// A server whose replies carry the question's ID and then noise: the lookup ends at the
    /// limit with an error naming the name and the server, as for a silent one, never a panic
    /// or a hang.
    #[tokio::test]
    async fn a_server_answering_garbage_is_an_error_naming_it() {
        let dns = start(DnsAnswer {
            address: Ipv4Addr::new(127, 0, 0, 7),
            delay: Duration::ZERO,
            ttl: 300,
            garbage: true,
        })
        .await;
        let resolver = Resolver::new(&[dns.addr], TIMEOUT).unwrap();
        let started = Instant::now();
        let err = resolver.lookup("llm.test", 80).await.unwrap_err();
        assert!(started.elapsed() < TIMEOUT + Duration::from_millis(200));
        assert!(dns.a_questions() >= 1, "the server was asked");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("DNS lookup of llm.test through {}: ", dns.addr)),
            "{message}"
        );
    }

    #[tokio::test]
    async fn an_ip_address_is_no_lookup_and_a_dead_server_is_an_error_naming_it() {
        let resolver = Resolver::new(&["127.0.0.1:9".parse().unwrap()], TIMEOUT).unwrap();
        assert_eq!(
            resolver.lookup("10.1.2.3", 80).await.unwrap(),
            vec!["10.1.2.3:80".parse().unwrap()]
        );
        let started = Instant::now();
        let err = resolver.lookup("llm.test", 80).await.unwrap_err();
        assert!(started.elapsed() < TIMEOUT + Duration::from_millis(200));
        assert_eq!(
            err.to_string(),
            "DNS lookup of llm.test through 127.0.0.1:9: no answer within 1000 ms"
        );
    }

    #[test]
    fn no_servers_is_the_system_resolver() {
        assert!(matches!(
            Resolver::new(&[], TIMEOUT).unwrap(),
            Resolver::System
        ));
    }
}
