//! The soak's scenarios: what kind of call comes next (drawn by weight) and the question each
//! call asks. Every draw is a pure function of the soak's seed and the call's index, so a soak
//! that is restarted asks the same calls again and a test can replay any of them.

use std::sync::OnceLock;

use llmpulse_core::score;
use llmpulse_core::suite::Question;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One kind of soak call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// A prompt from the bank (technical analysis, code generation, problem solving, DevOps,
    /// business logic).
    PromptVariety,
    /// A "summarise these notes" prompt of about 100 to 10,000 tokens.
    SimpleInference,
    /// A question with tools offered, asked explicitly ("use get_weather") or implicitly.
    ToolCalling,
    /// A long streamed answer: many chunks, for inter-token timing.
    Streaming,
    /// A burst of calls at once.
    ConcurrentLoad,
    /// 10,000 to 40,000 tokens of context (capped by the model's context length) with one fact
    /// to find in it.
    LargeContext,
    /// A call to a target that fails, answered by the model as its fallback.
    ProviderFailover,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::PromptVariety,
        Scenario::SimpleInference,
        Scenario::ToolCalling,
        Scenario::Streaming,
        Scenario::ConcurrentLoad,
        Scenario::LargeContext,
        Scenario::ProviderFailover,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::PromptVariety => "prompt_variety",
            Scenario::SimpleInference => "simple_inference",
            Scenario::ToolCalling => "tool_calling",
            Scenario::Streaming => "streaming",
            Scenario::ConcurrentLoad => "concurrent_load",
            Scenario::LargeContext => "large_context",
            Scenario::ProviderFailover => "provider_failover",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }

    /// The seed's weights.
    pub fn default_weight(self) -> f64 {
        match self {
            Scenario::PromptVariety | Scenario::SimpleInference => 3.0,
            Scenario::ToolCalling | Scenario::Streaming => 2.0,
            Scenario::ConcurrentLoad => 1.5,
            Scenario::LargeContext | Scenario::ProviderFailover => 0.5,
        }
    }
}

/// A weight per scenario (zero: never drawn).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights(pub [f64; 7]);

impl Default for Weights {
    fn default() -> Self {
        Weights(Scenario::ALL.map(Scenario::default_weight))
    }
}

impl Weights {
    pub fn total(&self) -> f64 {
        self.0.iter().sum()
    }

    /// The share of draws that `s` gets.
    pub fn share(&self, s: Scenario) -> f64 {
        self.0[s as usize] / self.total()
    }

    /// The scenario at `u` in [0, 1) of the cumulative weights.
    pub fn pick(&self, u: f64) -> Scenario {
        let mut left = u * self.total();
        for s in Scenario::ALL {
            let w = self.0[s as usize];
            if left < w {
                return s;
            }
            left -= w;
        }
        // Rounding at the top end: the last scenario with any weight.
        Scenario::ALL
            .into_iter()
            .rev()
            .find(|s| self.0[*s as usize] > 0.0)
            .unwrap_or(Scenario::PromptVariety)
    }
}

/// A random number generator for one purpose (`what`) and one index of a soak.
pub fn rng(seed: u64, what: u64, index: u64) -> ChaCha8Rng {
    let mixed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(what.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        .wrapping_add(index);
    ChaCha8Rng::seed_from_u64(mixed)
}

const DRAW: u64 = 1;
const CONTENT: u64 = 2;
const ROTATION: u64 = 3;

/// The scenario of call `index` under `weights`.
pub fn draw(seed: u64, index: u64, weights: &Weights) -> Scenario {
    weights.pick(rng(seed, DRAW, index).random::<f64>())
}

/// How many calls rotation `r` stays on its model: uniform in `min..=max`.
pub fn rotation_length(seed: u64, r: u64, min: u32, max: u32) -> u32 {
    rng(seed, ROTATION, r).random_range(min..=max.max(min))
}

/// One prompt of the bank.
#[derive(Debug, Clone, PartialEq)]
pub struct BankPrompt {
    pub category: &'static str,
    pub text: &'static str,
}

/// The prompt bank (`prompts.txt`, compiled in).
pub fn bank() -> &'static [BankPrompt] {
    static BANK: OnceLock<Vec<BankPrompt>> = OnceLock::new();
    BANK.get_or_init(|| {
        include_str!("prompts.txt")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let (c, t) = l.split_once('|')?;
                Some(BankPrompt {
                    category: c.trim(),
                    text: t.trim(),
                })
            })
            .collect()
    })
}

/// Tokens are counted as 4 characters, the usual rule of thumb for English text.
const CHARS_PER_TOKEN: usize = 4;

/// The question that call `index` of `scenario` asks. `context_tokens` caps the size of a
/// prompt (the model's context length less room for the answer).
pub fn question(seed: u64, index: u64, scenario: Scenario, context_tokens: u32) -> Question {
    let mut rng = rng(seed, CONTENT, index);
    let bank = bank();
    let id = |variant: &str| format!("c{index:07}-{}-{variant}", scenario.name());
    let mut q = Question::bare("", "soak", scenario.name(), "");
    match scenario {
        Scenario::PromptVariety | Scenario::ConcurrentLoad | Scenario::ProviderFailover => {
            let p = &bank[rng.random_range(0..bank.len())];
            q.id = id(p.category);
            q.industry = p.category.into();
            q.question = p.text.into();
        }
        Scenario::SimpleInference => {
            // Log-uniform from 100 to 10,000 tokens, within the model's context.
            let cap = context_tokens.clamp(100, 10_000) as f64;
            let tokens = (100f64.ln() + rng.random::<f64>() * (cap.ln() - 100f64.ln())).exp();
            let notes = filler(&mut rng, tokens as usize * CHARS_PER_TOKEN);
            q.id = id(&format!("{}t", tokens as u32));
            q.industry = "summarisation".into();
            q.question = format!("Summarise these notes in three sentences.\n\n{notes}");
        }
        Scenario::ToolCalling => {
            let city = CITIES[rng.random_range(0..CITIES.len())];
            let explicit = rng.random_bool(0.5);
            let variant = if explicit { "explicit" } else { "implicit" };
            q.id = id(variant);
            q.industry = format!("tools_{variant}");
            q.question = if explicit {
                format!("Use the get_weather tool to get the current weather in {city}.")
            } else {
                format!("Should I take an umbrella in {city} today?")
            };
            q.tools = tools();
            q.tool_choice = Some(serde_json::json!("auto"));
            q.tool_prompt = Some(variant.into());
            q.grading = score::grade::Spec {
                offered: ["get_weather", "calculate", "search_docs"]
                    .map(String::from)
                    .into(),
                expected_calls: vec![score::toolcall::Expected {
                    name: "get_weather".into(),
                    arguments: serde_json::json!({ "city": city })
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                }],
                ..Default::default()
            }
            .with_scorers(&[])
            .unwrap_or_default();
        }
        Scenario::Streaming => {
            let p = &bank[rng.random_range(0..bank.len())];
            q.id = id(p.category);
            q.industry = p.category.into();
            q.question = format!(
                "{} Answer at length, in about 400 words, with headings.",
                p.text
            );
        }
        Scenario::LargeContext => {
            let cap = context_tokens.clamp(1_000, 40_000);
            let low = 10_000.min(cap);
            let tokens = rng.random_range(low..=cap) as usize;
            let vault = rng.random_range(100..1000);
            let code: String = (0..6)
                .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
                .collect();
            let fact = format!("The access code of vault {vault} is {code}.");
            let mut text = filler(&mut rng, tokens * CHARS_PER_TOKEN);
            // The fact at a random sentence boundary.
            let cut = rng.random_range(0..=text.len());
            let at = text[..cut].rfind(". ").map_or(0, |i| i + 2);
            text.insert_str(at, &format!("{fact} "));
            q.id = id(&format!("{tokens}t"));
            q.industry = "long_context".into();
            q.question = format!("What is the access code of vault {vault}?");
            q.context = vec![text];
            q.key_facts = vec![code];
        }
    }
    q
}

const CITIES: [&str; 12] = [
    "Paris", "Berlin", "Lisbon", "Tokyo", "Nairobi", "Lima", "Oslo", "Toronto", "Sydney", "Madrid",
    "Seoul", "Cairo",
];

/// The tools offered in tool-calling calls.
fn tools() -> Vec<serde_json::Value> {
    let tool = |name: &str, description: &str, arg: &str| {
        serde_json::json!({
            "type": "function",
            "function": {
                "name": name,
                "description": description,
                "parameters": {
                    "type": "object",
                    "properties": { arg: { "type": "string" } },
                    "required": [arg],
                },
            },
        })
    };
    vec![
        tool(
            "get_weather",
            "The current weather and forecast for a city",
            "city",
        ),
        tool(
            "calculate",
            "Evaluates an arithmetic expression",
            "expression",
        ),
        tool(
            "search_docs",
            "Searches the internal documentation",
            "query",
        ),
    ]
}

const SUBJECTS: [&str; 10] = [
    "The release",
    "Our team",
    "The customer",
    "The database",
    "The new service",
    "The quarterly plan",
    "The migration",
    "The supplier",
    "The audit",
    "The budget",
];
const VERBS: [&str; 8] = [
    "needs",
    "depends on",
    "delays",
    "improves",
    "replaces",
    "reviews",
    "reduces",
    "changes",
];
const OBJECTS: [&str; 10] = [
    "the deployment schedule",
    "two weeks of testing",
    "the storage costs",
    "the on-call rota",
    "the login flow",
    "the reporting pipeline",
    "the contract terms",
    "the error budget",
    "the hiring plan",
    "the backup policy",
];

/// Plausible meeting-note sentences, about `chars` characters of them.
fn filler(rng: &mut ChaCha8Rng, chars: usize) -> String {
    let mut s = String::with_capacity(chars + 64);
    while s.len() < chars {
        s.push_str(SUBJECTS[rng.random_range(0..SUBJECTS.len())]);
        s.push(' ');
        s.push_str(VERBS[rng.random_range(0..VERBS.len())]);
        s.push(' ');
        s.push_str(OBJECTS[rng.random_range(0..OBJECTS.len())]);
        s.push_str(". ");
    }
    s
}

/// The call index a soak question's id starts with (`c0000042-…` → 42).
pub fn index_of(question_id: &str) -> Option<u64> {
    question_id.strip_prefix('c')?.get(..7)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bank_has_over_a_hundred_prompts_in_five_categories() {
        let b = bank();
        assert!(b.len() >= 100, "{}", b.len());
        let mut cats: Vec<_> = b.iter().map(|p| p.category).collect();
        cats.sort();
        cats.dedup();
        assert_eq!(
            cats,
            [
                "business_logic",
                "code_generation",
                "devops",
                "problem_solving",
                "technical_analysis"
            ]
        );
    }

    #[test]
    fn draws_follow_the_weights() {
        let w = Weights::default();
        let n = 20_000;
        let mut counts = [0u32; 7];
        for i in 0..n {
            counts[draw(7, i, &w) as usize] += 1;
        }
        for s in Scenario::ALL {
            let p = w.share(s);
            let expected = p * n as f64;
            // 99% band of a binomial count: ±2.576 standard deviations.
            let band = 2.576 * (n as f64 * p * (1.0 - p)).sqrt();
            let got = counts[s as usize] as f64;
            assert!(
                (got - expected).abs() <= band,
                "{s:?}: {got} vs {expected}±{band}"
            );
        }
    }

    #[test]
    fn a_call_is_the_same_whenever_it_is_asked() {
        for s in Scenario::ALL {
            assert_eq!(question(3, 42, s, 8192), question(3, 42, s, 8192));
            assert_eq!(index_of(&question(3, 42, s, 8192).id), Some(42));
        }
        assert_ne!(
            question(3, 42, Scenario::PromptVariety, 8192).question,
            question(3, 43, Scenario::PromptVariety, 8192).question
        );
    }

    #[test]
    fn large_context_hides_one_fact_and_respects_the_context_length() {
        let q = question(1, 5, Scenario::LargeContext, 40_000);
        let text = &q.context[0];
        assert!(text.len() >= 10_000 * CHARS_PER_TOKEN, "{}", text.len());
        assert_eq!(text.matches(&q.key_facts[0]).count(), 1);
        let small = question(1, 5, Scenario::LargeContext, 4_096);
        assert!(small.context[0].len() <= 4_096 * CHARS_PER_TOKEN + 200);
        let sized = question(1, 6, Scenario::SimpleInference, 512);
        assert!(sized.question.len() <= 512 * CHARS_PER_TOKEN + 200);
    }

    #[test]
    fn tool_calls_are_explicit_or_implicit_with_the_tools_offered() {
        let kinds: Vec<String> = (0..40)
            .map(|i| question(9, i, Scenario::ToolCalling, 8192))
            .inspect(|q| assert_eq!(q.tools.len(), 3))
            .map(|q| q.industry)
            .collect();
        assert!(kinds.iter().any(|k| k == "tools_explicit"));
        assert!(kinds.iter().any(|k| k == "tools_implicit"));
    }
}
