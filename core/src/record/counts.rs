//! A call's token counts (the provider's usage, else estimates from the text) and what the call
//! cost from them (see [`crate::cost::of_call`]).

use crate::provider::CallOutcome;
use crate::suite::Prompt;
use crate::tokens::{self, TokenSource};

/// What one attempt cost (see [`crate::cost::of_call`]): billed when the provider reported its
/// tokens, or when it succeeded (tokens estimated if the server reports none).
pub fn attempt_cost(
    target: &crate::config::Target,
    prompt: &Prompt,
    out: &CallOutcome,
) -> Option<(f64, crate::cost::CostSource)> {
    let usage = out.usage.unwrap_or_default();
    let tokens = TokenCounts::of(prompt, out, &usage);
    cost_of(target.price.as_ref(), &usage, &tokens, out.success())
}

pub(super) fn cost_of(
    price: Option<&crate::cost::Price>,
    usage: &crate::provider::Usage,
    tokens: &TokenCounts,
    success: bool,
) -> Option<(f64, crate::cost::CostSource)> {
    let billed =
        (success || tokens.source == Some(TokenSource::Usage)).then(|| crate::cost::Billed {
            prompt: tokens.prompt.unwrap_or(0),
            cached: usage.cached_prompt_tokens.unwrap_or(0),
            response: tokens.response.unwrap_or(0),
            reasoning: tokens.reasoning.unwrap_or(0),
        });
    crate::cost::of_call(usage.cost_usd, price, billed)
}

/// A call's token counts: the provider's usage when it gave both counts, else estimates from
/// the text (for a call that produced something or succeeded), else none.
pub(super) struct TokenCounts {
    pub(super) prompt: Option<u32>,
    pub(super) response: Option<u32>,
    pub(super) reasoning: Option<u32>,
    pub(super) source: Option<TokenSource>,
}

impl TokenCounts {
    pub(super) fn of(
        prompt: &Prompt,
        out: &CallOutcome,
        usage: &crate::provider::Usage,
    ) -> TokenCounts {
        if let (Some(p), Some(c)) = (usage.prompt_tokens, usage.completion_tokens) {
            return TokenCounts {
                prompt: Some(p),
                response: Some(c),
                reasoning: usage.reasoning_tokens,
                source: Some(TokenSource::Usage),
            };
        }
        let generated = !out.answer.is_empty() || !out.reasoning.is_empty();
        if !(generated || out.success()) {
            return TokenCounts {
                prompt: None,
                response: None,
                reasoning: None,
                source: None,
            };
        }
        let text: String = prompt
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let reasoning = tokens::estimate(&out.reasoning);
        TokenCounts {
            prompt: Some(tokens::estimate(&text)),
            response: Some(tokens::estimate(&out.answer) + reasoning),
            reasoning: (reasoning > 0).then_some(reasoning),
            source: Some(TokenSource::Estimated),
        }
    }
}
