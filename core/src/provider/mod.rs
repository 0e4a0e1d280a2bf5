//! Talking to a target: a [`transport::Transport`] moves bytes (HTTP with reqwest, or the
//! in-process simulator) and a protocol dialect gives them meaning ([`openai`], [`anthropic`],
//! [`ollama`]); [`exchange`] runs one measured exchange. [`Client`] puts the two together for one
//! configured target and turns one question into one [`CallOutcome`].

pub mod anthropic;
mod body;
mod deadlines;
pub mod dns;
mod exchange;
pub mod http;
pub mod ollama;
pub mod openai;
pub mod outcome;
#[cfg(unix)]
pub mod packet_clock;
mod prompt_cache;
pub mod sim;
#[cfg(unix)]
pub mod socket_clock;
pub mod tls;
pub mod transport;

#[cfg(test)]
mod properties;

pub use outcome::{AttemptStats, CallError, CallOutcome, ServerTimings, ToolCall, Usage};
pub use transport::{
    BodyError, BodyStream, ClockSource, HttpRequest, Peer, RawResponse, SocketClock, Transport,
    TransportError,
};

use std::sync::Arc;
use std::time::Instant;

use crate::config::{Endpoint, Target};
use crate::preset::Protocol;
use crate::stop::Stop;
use crate::suite::Prompt;
use sim::InProcess;

/// One configured target, ready to be called.
#[derive(Clone)]
pub struct Client {
    target: Arc<Target>,
    transport: Arc<dyn Transport>,
}

/// A target's HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error("TLS settings: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
}

/// Whether requests to `base_url` go through a proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
/// less `NO_PROXY`, read as reqwest and curl read them).
fn proxied(proxies: &hyper_util::client::proxy::matcher::Matcher, base_url: &str) -> bool {
    base_url
        .parse::<::http::Uri>()
        .is_ok_and(|uri| proxies.intercept(&uri).is_some())
}

impl Client {
    /// Builds the client for `target`, with its own connection pool: llmpulse's stamped
    /// sockets (TLS over them for https) on the kernel and socket clocks, unless a proxy stands
    /// between (then reqwest's connections, which go through it, and the client clock); reqwest's
    /// connections on the client clock.
    pub fn new(target: Target) -> Result<Self, BuildError> {
        let roots = target
            .ca_file
            .as_ref()
            .map_or(&[][..], |f| f.certs.as_slice());
        // A silent server fails the lookup, named, before the connect timeout ends the call
        // without saying which phase took it.
        let resolver = dns::Resolver::new(&target.dns_servers, target.timeouts.connect * 2 / 3)?;
        let transport: Arc<dyn Transport> = match &target.endpoint {
            #[cfg(unix)]
            Endpoint::Http { base_url }
                if target.clock != ClockSource::Client
                    && !proxied(
                        &hyper_util::client::proxy::matcher::Matcher::from_system(),
                        base_url,
                    ) =>
            {
                let tls = base_url
                    .starts_with("https://")
                    .then(|| tls::client_config(roots))
                    .transpose()?;
                Arc::new(socket_clock::SocketTransport::new(
                    base_url.clone(),
                    target.timeouts.connect,
                    target.clock,
                    tls,
                    resolver,
                    target.http2,
                ))
            }
            Endpoint::Http { base_url } => {
                let http =
                    http::build_client(target.timeouts.connect, target.http2, roots, resolver)?;
                Arc::new(http::HttpTransport::new(http, base_url.clone()))
            }
            Endpoint::Sim(profile) => Arc::new(InProcess::new((**profile).clone())),
        };
        Ok(Client {
            target: Arc::new(target),
            transport,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Asks `prompt` once and measures the answer; `run_deadline` cancels the call.
    /// A `stop` request cancels the call once its grace is over.
    pub async fn call(
        &self,
        prompt: &Prompt,
        run_deadline: Option<Instant>,
        stop: Option<&Stop>,
    ) -> CallOutcome {
        let dialect: &dyn exchange::Dialect = match self.target.protocol {
            Protocol::Openai => &openai::OpenAi,
            Protocol::Anthropic => &anthropic::Anthropic,
            Protocol::Ollama => &ollama::Ollama,
        };
        let mut outcome = exchange::call(
            &self.target,
            self.transport.as_ref(),
            prompt,
            dialect,
            run_deadline,
            stop.cloned(),
        )
        .await;
        // Asked after the answer is complete, so it never adds to the call's timings.
        if self.target.protocol == Protocol::Ollama && outcome.success() {
            outcome.memory_mb =
                ollama::loaded_memory_mb(&self.target, self.transport.as_ref()).await;
        }
        outcome
    }

    /// One call outside a run (a judge, a generator, a validator, a narrator): the target's
    /// retry policy (backoff with jitter, the provider's Retry-After), without a run's limits
    /// or permits. Returns the last attempt's outcome and how the attempts went.
    pub async fn call_with_retries(&self, prompt: &Prompt) -> (CallOutcome, AttemptStats) {
        use rand::SeedableRng;
        let policy = &self.target.retry;
        let mut rng = rand_chacha::ChaCha8Rng::from_rng(&mut rand::rng());
        let mut stats = AttemptStats::default();
        loop {
            stats.attempts += 1;
            let outcome = self.call(prompt, None, None).await;
            let Some(error) = &outcome.error else {
                return (outcome, stats);
            };
            if error.kind == crate::error_kind::ErrorKind::RateLimited {
                stats.rate_limited += 1;
            }
            let retry_after = outcome.rate_limit.retry_after;
            match policy.next_wait(stats.attempts, error.kind, retry_after, &mut rng) {
                Some(w) => {
                    tokio::time::sleep(w).await;
                    stats.retry_wait += w;
                }
                None => return (outcome, stats),
            }
        }
    }
}
