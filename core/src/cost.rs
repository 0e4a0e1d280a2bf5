//! What a call cost, in USD: the provider's own figure when it gives one, else its tokens at
//! the target's [`Price`], or (on an agent) its share of the energy at the electricity price;
//! and a call's worst case, which a budget reserves before the call is made.

use serde::{Deserialize, Serialize};

/// A model's price, USD per million tokens (and per call), as a provider's price page states it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Prompt tokens served from the provider's prompt cache; the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_mtok: Option<f64>,
    /// Reasoning tokens; billed as output when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_per_mtok: Option<f64>,
    /// A fee per billed call, on top of the tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_call: Option<f64>,
}

/// Where a record's `cost_usd` came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// The provider said what the call cost (OpenRouter's `usage.cost`).
    Provider,
    /// The call's tokens at the target's price.
    PriceTable,
    /// A local call's share of the measured energy at `[agent] electricity_usd_per_kwh`
    /// (plus the hardware's hourly cost, where set).
    Energy,
}

impl CostSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CostSource::Provider => "provider",
            CostSource::PriceTable => "price_table",
            CostSource::Energy => "energy",
        }
    }
}

/// The tokens a call was billed for. `response` includes `reasoning`, as providers count
/// `completion_tokens`; `cached` is part of `prompt`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Billed {
    pub prompt: u32,
    pub cached: u32,
    pub response: u32,
    pub reasoning: u32,
}

impl Price {
    /// The cost of a call billed for `b`, with the per-call fee.
    pub fn cost(&self, b: Billed) -> f64 {
        let cached = b.cached.min(b.prompt);
        let reasoning = b.reasoning.min(b.response);
        let cached_price = self.cached_input_per_mtok.unwrap_or(self.input_per_mtok);
        let reasoning_price = self.reasoning_per_mtok.unwrap_or(self.output_per_mtok);
        let tokens = f64::from(b.prompt - cached) * self.input_per_mtok
            + f64::from(cached) * cached_price
            + f64::from(b.response - reasoning) * self.output_per_mtok
            + f64::from(reasoning) * reasoning_price;
        tokens / 1e6 + self.per_call.unwrap_or(0.0)
    }

    /// The most a call can cost: every prompt token uncached and `max_tokens` of output at the
    /// dearer of the output and reasoning prices.
    pub fn worst_case(&self, prompt_tokens: u32, max_tokens: u32) -> f64 {
        let output = self
            .output_per_mtok
            .max(self.reasoning_per_mtok.unwrap_or(0.0));
        (f64::from(prompt_tokens)
            * self
                .input_per_mtok
                .max(self.cached_input_per_mtok.unwrap_or(0.0))
            + f64::from(max_tokens) * output)
            / 1e6
            + self.per_call.unwrap_or(0.0)
    }

    /// Every price a number at least zero, or the name of the one that is not.
    pub fn check(&self) -> Result<(), String> {
        let fields = [
            ("input_per_mtok", Some(self.input_per_mtok)),
            ("output_per_mtok", Some(self.output_per_mtok)),
            ("cached_input_per_mtok", self.cached_input_per_mtok),
            ("reasoning_per_mtok", self.reasoning_per_mtok),
            ("per_call", self.per_call),
        ];
        for (name, v) in fields {
            if let Some(x) = v
                && !(x >= 0.0 && x.is_finite())
            {
                return Err(format!("{name}: expected USD at least 0, found {x}"));
            }
        }
        Ok(())
    }
}

/// A call's cost and where it came from: the provider's figure first, else `billed` at
/// `price`; `None` when neither is known (no price, or a call nobody billed).
pub fn of_call(
    provider_usd: Option<f64>,
    price: Option<&Price>,
    billed: Option<Billed>,
) -> Option<(f64, CostSource)> {
    if let Some(c) = provider_usd.filter(|c| c.is_finite() && *c >= 0.0) {
        return Some((c, CostSource::Provider));
    }
    Some((price?.cost(billed?), CostSource::PriceTable))
}

/// What electricity and hardware cost a local call: its energy at `usd_per_kwh`, plus its
/// share of the hardware's hourly cost (its latency over the calls in flight beside it).
pub fn of_energy(
    energy_j: Option<f64>,
    usd_per_kwh: Option<f64>,
    hardware_usd_per_hour: Option<f64>,
    busy_sec: f64,
) -> Option<f64> {
    let energy = match (energy_j, usd_per_kwh) {
        (Some(j), Some(p)) => Some(j / 3.6e6 * p),
        _ => None,
    };
    let hardware = hardware_usd_per_hour.map(|h| h * busy_sec.max(0.0) / 3600.0);
    match (energy, hardware) {
        (None, None) => None,
        (e, h) => Some(e.unwrap_or(0.0) + h.unwrap_or(0.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    const GROQ_70B: Price = Price {
        input_per_mtok: 0.59,
        output_per_mtok: 0.79,
        cached_input_per_mtok: None,
        reasoning_per_mtok: None,
        per_call: None,
    };

    #[test]
    fn tokens_at_the_price() {
        // 1,200 prompt tokens × $0.59/M + 300 output × $0.79/M = 0.000708 + 0.000237.
        let b = Billed {
            prompt: 1200,
            response: 300,
            ..Billed::default()
        };
        assert!(close(GROQ_70B.cost(b), 0.000945));
    }

    #[test]
    fn cached_tokens_at_their_own_price_else_the_input_price() {
        let p = Price {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
            cached_input_per_mtok: Some(0.3),
            ..Price::default()
        };
        // 1,000 prompt tokens of which 800 cached: 200 × 3 + 800 × 0.3 = 840; 100 out × 15.
        let b = Billed {
            prompt: 1000,
            cached: 800,
            response: 100,
            reasoning: 0,
        };
        assert!(close(p.cost(b), (600.0 + 240.0 + 1500.0) / 1e6));
        let uncached = Price {
            cached_input_per_mtok: None,
            ..p
        };
        assert!(close(uncached.cost(b), (3000.0 + 1500.0) / 1e6));
    }

    #[test]
    fn reasoning_is_output_unless_priced_apart_and_fees_are_per_call() {
        let b = Billed {
            prompt: 100,
            cached: 0,
            response: 1000,
            reasoning: 600,
        };
        let p = Price {
            input_per_mtok: 1.0,
            output_per_mtok: 4.0,
            per_call: Some(0.002),
            ..Price::default()
        };
        assert!(close(p.cost(b), (100.0 + 4000.0) / 1e6 + 0.002));
        let apart = Price {
            reasoning_per_mtok: Some(2.0),
            ..p
        };
        assert!(close(
            apart.cost(b),
            (100.0 + 400.0 * 4.0 + 600.0 * 2.0) / 1e6 + 0.002
        ));
    }

    #[test]
    fn the_providers_figure_is_preferred() {
        let b = Some(Billed {
            prompt: 1200,
            response: 300,
            ..Billed::default()
        });
        assert_eq!(
            of_call(Some(0.0042), Some(&GROQ_70B), b),
            Some((0.0042, CostSource::Provider))
        );
        let (c, s) = of_call(None, Some(&GROQ_70B), b).unwrap();
        assert!(close(c, 0.000945) && s == CostSource::PriceTable);
        // No price, or nothing billed: unknown, not zero.
        assert_eq!(of_call(None, None, b), None);
        assert_eq!(of_call(None, Some(&GROQ_70B), None), None);
        // A garbage figure from the provider is not believed.
        assert_eq!(of_call(Some(f64::NAN), None, b), None);
    }

    #[test]
    fn the_worst_case_bounds_every_call_of_that_size() {
        let p = Price {
            input_per_mtok: 1.0,
            output_per_mtok: 4.0,
            cached_input_per_mtok: Some(0.1),
            reasoning_per_mtok: Some(8.0),
            per_call: Some(0.001),
        };
        let worst = p.worst_case(500, 256);
        assert!(close(worst, (500.0 + 256.0 * 8.0) / 1e6 + 0.001));
        for reasoning in [0, 100, 256] {
            for cached in [0, 250, 500] {
                let b = Billed {
                    prompt: 500,
                    cached,
                    response: 256,
                    reasoning,
                };
                assert!(p.cost(b) <= worst + 1e-15);
            }
        }
    }

    #[test]
    fn energy_at_the_electricity_price_plus_hardware_time() {
        // 36 kJ = 0.01 kWh at $0.30 = $0.003; 72 s of a $1.00/h machine = $0.02.
        assert!(close(
            of_energy(Some(36_000.0), Some(0.30), None, 72.0).unwrap(),
            0.003
        ));
        assert!(close(
            of_energy(Some(36_000.0), Some(0.30), Some(1.0), 72.0).unwrap(),
            0.023
        ));
        assert_eq!(of_energy(None, Some(0.30), None, 72.0), None);
        assert!(close(of_energy(None, None, Some(1.0), 72.0).unwrap(), 0.02));
    }

    #[test]
    fn a_negative_price_names_its_field() {
        let p = Price {
            output_per_mtok: -1.0,
            ..GROQ_70B
        };
        assert!(p.check().unwrap_err().starts_with("output_per_mtok:"));
    }
}
