//! One target's lane in a run: its client and the limits its requests wait for (requests and
//! tokens per minute, its own concurrency cap), and what a request of it weighs in tokens and
//! may cost at worst.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use tokio::sync::Semaphore;

use super::RunError;
use crate::config::Target;
use crate::provider::Client;
use crate::suite::Prompt;
use crate::tokens;

type Limiter = governor::DefaultDirectRateLimiter;

/// A target with its client and its budget.
pub(super) struct Lane {
    pub(super) client: Client,
    rpm: Option<Limiter>,
    tpm: Option<(Limiter, u32)>,
    pub(super) permits: Option<Semaphore>,
}

impl Lane {
    pub(super) fn new(target: &Target) -> Result<Lane, RunError> {
        let client = Client::new(target.clone()).map_err(|source| RunError::HttpClient {
            target: target.name.clone(),
            source,
        })?;
        // Requests are paced evenly (burst 1), so no sliding minute ever holds more than `rpm`.
        let rpm = target.limits.rpm.and_then(|rpm| {
            Quota::with_period(Duration::from_secs_f64(60.0 / f64::from(rpm))).map(Limiter::direct)
        });
        // Tokens may burst up to a tenth of the minute's budget.
        let tpm = target.limits.tpm.and_then(|tpm| {
            let burst = NonZeroU32::new((tpm / 10).max(1))?;
            let quota = Quota::with_period(Duration::from_secs_f64(60.0 / f64::from(tpm)))?
                .allow_burst(burst);
            Some((Limiter::direct(quota), burst.get()))
        });
        Ok(Lane {
            client,
            rpm,
            tpm,
            permits: target
                .limits
                .max_concurrency
                .map(|n| Semaphore::new(n as usize)),
        })
    }

    /// Waits until the target's budget allows a request of `weight` tokens.
    pub(super) async fn admit(&self, weight: u32) {
        if let Some(rpm) = &self.rpm {
            rpm.until_ready().await;
        }
        if let Some((tpm, burst)) = &self.tpm
            && let Some(n) = NonZeroU32::new(weight.clamp(1, *burst))
        {
            let _ = tpm.until_n_ready(n).await;
        }
    }
}

/// The tokens a request is expected to use: its prompt estimate plus its output budget.
pub(super) fn weight(lane: &Lane, prompt: &Prompt) -> u32 {
    prompt_estimate(prompt) + lane.client.target().params.max_tokens.unwrap_or(512)
}

/// The prompt's tokens, estimated from its messages' text.
fn prompt_estimate(prompt: &Prompt) -> u32 {
    prompt
        .messages
        .iter()
        .map(|m| tokens::estimate(&m.content))
        .sum()
}

/// The most a request of `lane` may cost: the prompt's estimate with a quarter more (an
/// estimate, not the provider's tokenizer) and its whole output budget (`max_tokens`, else
/// 4,096), at the target's price; 0 for a target without one.
pub(super) fn worst_case(lane: &Lane, prompt: &Prompt) -> f64 {
    let target = lane.client.target();
    let Some(price) = &target.price else {
        return 0.0;
    };
    let input = prompt_estimate(prompt);
    let input = input.saturating_add(input / 4).saturating_add(16);
    price.worst_case(input, target.params.max_tokens.unwrap_or(4096))
}

/// How long a reservation outlives its writer: the request's whole timeout and a minute.
pub(super) fn hold_for(lane: &Lane) -> Duration {
    lane.client.target().timeouts.total + Duration::from_secs(60)
}
