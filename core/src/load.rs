//! Load profiles and service-level objectives: how calls are sent over time, and which calls
//! count as good enough.
//!
//! - `synchronous`: one call at a time (closed loop, concurrency 1).
//! - `concurrent:N`: N calls at a time (closed loop; the config's `concurrency` is N).
//! - `throughput`: every planned call at once (open loop, no schedule): the most the targets
//!   sustain, as GuideLLM's `throughput` profile.
//! - `constant:RATE`: open loop, call k sent at k ÷ RATE seconds after the start, whatever the
//!   others are doing.
//! - `poisson:RATE[,burstiness=B]`: open loop, gaps drawn from a gamma distribution of mean
//!   1 ÷ RATE and shape B (B = 1: exponential gaps, a Poisson process; B < 1 burstier, B > 1
//!   more even), as `vllm bench serve --burstiness` draws them. Seeded.
//!
//! In an open loop, a call that cannot go out at its time (a target's rate limit, the machine
//! being slow) goes out late, and its record says by how much (`schedule_lag_sec`): the
//! coordinated omission of closed-loop tools made visible.

use std::fmt;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How calls are sent over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Profile {
    /// Closed loop with the run's concurrency (`synchronous` sets it to 1, `concurrent:N` to N).
    Closed,
    /// Open loop, every call at once.
    Throughput,
    /// Open loop, evenly spaced.
    Constant { rate: f64 },
    /// Open loop, gamma-distributed gaps (Poisson when `burstiness` is 1).
    Poisson { rate: f64, burstiness: f64 },
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Profile::Closed => f.write_str("closed loop"),
            Profile::Throughput => f.write_str("throughput"),
            Profile::Constant { rate } => write!(f, "constant:{rate}"),
            Profile::Poisson { rate, burstiness } => {
                write!(f, "poisson:{rate},burstiness={burstiness}")
            }
        }
    }
}

/// A parsed `--profile`: the profile, and the concurrency it sets, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileSpec {
    pub profile: Profile,
    pub concurrency: Option<u32>,
}

fn positive(what: &str, v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{what} must be a number > 0, not '{v}'")),
    }
}

impl ProfileSpec {
    /// Parses `synchronous`, `concurrent:N`, `throughput`, `constant:RATE` or
    /// `poisson:RATE[,burstiness=B]` (RATE in calls per second).
    pub fn parse(s: &str) -> Result<ProfileSpec, String> {
        let s = s.trim();
        let (kind, arg) = s.split_once(':').unwrap_or((s, ""));
        let closed = |n: Option<u32>| ProfileSpec {
            profile: Profile::Closed,
            concurrency: n,
        };
        match kind {
            "synchronous" if arg.is_empty() => Ok(closed(Some(1))),
            "throughput" if arg.is_empty() => Ok(ProfileSpec {
                profile: Profile::Throughput,
                concurrency: None,
            }),
            "concurrent" => match arg.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Ok(closed(Some(n))),
                _ => Err(format!("concurrent:N needs N ≥ 1, not '{arg}'")),
            },
            "constant" => Ok(ProfileSpec {
                profile: Profile::Constant {
                    rate: positive("constant:RATE's rate", arg)?,
                },
                concurrency: None,
            }),
            "poisson" => {
                let mut parts = arg.split(',');
                let rate = positive("poisson:RATE's rate", parts.next().unwrap_or(""))?;
                let mut burstiness = 1.0;
                for p in parts {
                    match p.trim().split_once('=') {
                        Some(("burstiness", b)) => burstiness = positive("burstiness", b)?,
                        _ => return Err(format!("poisson: unknown option '{p}' (burstiness=B)")),
                    }
                }
                Ok(ProfileSpec {
                    profile: Profile::Poisson { rate, burstiness },
                    concurrency: None,
                })
            }
            _ => Err(format!(
                "unknown profile '{s}': synchronous, concurrent:N, throughput, constant:RATE \
                 or poisson:RATE[,burstiness=B]"
            )),
        }
    }
}

impl Profile {
    pub fn is_open(&self) -> bool {
        !matches!(self, Profile::Closed)
    }

    /// When each of `n` calls goes out, after the start; empty for a closed loop.
    pub fn schedule(&self, n: usize, seed: u64) -> Vec<Duration> {
        match *self {
            Profile::Closed => Vec::new(),
            Profile::Throughput => vec![Duration::ZERO; n],
            Profile::Constant { rate } => (0..n)
                .map(|k| Duration::from_secs_f64(k as f64 / rate))
                .collect(),
            Profile::Poisson { rate, burstiness } => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut at = 0.0;
                (0..n)
                    .map(|k| {
                        if k > 0 {
                            at += gamma(&mut rng, burstiness) / (rate * burstiness);
                        }
                        Duration::from_secs_f64(at)
                    })
                    .collect()
            }
        }
    }
}

/// A gamma(shape, 1) draw (Marsaglia and Tsang; shape < 1 boosted by U^(1/shape)).
fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random::<f64>();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Service-level objectives: a call meets them when it succeeded and every limit given holds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slo {
    /// Time to first token (a call without one, not streamed, does not meet it).
    pub ttft: Option<Duration>,
    /// Time per output token after the first.
    pub tpot: Option<Duration>,
    /// Request sent → last byte.
    pub e2e: Option<Duration>,
}

fn duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let (num, unit) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(format!("'{v}' needs a unit: ms or s (500ms, 2.5s)"));
    };
    match num.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(Duration::from_secs_f64(x * unit)),
        _ => Err(format!("'{v}' is not a positive duration")),
    }
}

impl Slo {
    /// Parses `ttft=500ms,tpot=50ms,e2e=10s` (any of the three, at least one).
    pub fn parse(s: &str) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}': write NAME=LIMIT, e.g. ttft=500ms"))?;
            let d = duration(v)?;
            match k.trim() {
                "ttft" => slo.ttft = Some(d),
                "tpot" => slo.tpot = Some(d),
                "e2e" => slo.e2e = Some(d),
                other => return Err(format!("unknown SLO '{other}': ttft, tpot or e2e")),
            }
        }
        if slo == Slo::default() {
            return Err("an SLO needs at least one of ttft, tpot, e2e".into());
        }
        Ok(slo)
    }

    /// Whether a call with these figures meets every limit.
    pub fn met(&self, success: bool, ttft: Option<f64>, tpot: Option<f64>, e2e: f64) -> bool {
        let within = |limit: Option<Duration>, v: Option<f64>| {
            limit.is_none_or(|l| v.is_some_and(|v| v <= l.as_secs_f64()))
        };
        success && within(self.ttft, ttft) && within(self.tpot, tpot) && within(self.e2e, Some(e2e))
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [("ttft", self.ttft), ("tpot", self.tpot), ("e2e", self.e2e)]
            .into_iter()
            .filter_map(|(k, d)| d.map(|d| format!("{k}={}ms", d.as_secs_f64() * 1000.0)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// A run's load settings (`[load]` in the config, or `--profile`, `--slo`, `--warmup`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSettings {
    pub profile: Profile,
    /// Seeds the Poisson gaps.
    pub seed: u64,
    /// Calls per target sent before the measured ones and left out of the records: they open
    /// connections and warm the server's caches.
    pub warmup: u32,
    pub slo: Option<Slo>,
    /// Shuffles the planned calls with this seed (A/B rounds: no side gains from drift in time).
    pub order_seed: Option<u64>,
}

impl Default for LoadSettings {
    fn default() -> Self {
        LoadSettings {
            profile: Profile::Closed,
            seed: 0,
            warmup: 0,
            slo: None,
            order_seed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_bad_ones_say_why() {
        let p = |s: &str| ProfileSpec::parse(s);
        assert_eq!(p("synchronous").unwrap().concurrency, Some(1));
        assert_eq!(p("concurrent:16").unwrap().concurrency, Some(16));
        let all = p("throughput").unwrap().profile;
        assert!(all.is_open());
        assert_eq!(all.schedule(3, 0), [Duration::ZERO; 3]);
        assert_eq!(
            p("constant:2.5").unwrap().profile,
            Profile::Constant { rate: 2.5 }
        );
        assert_eq!(
            p("poisson:10,burstiness=0.5").unwrap().profile,
            Profile::Poisson {
                rate: 10.0,
                burstiness: 0.5
            }
        );
        assert!(p("constant:0").unwrap_err().contains("> 0"));
        assert!(
            p("poisson:3,shape=2")
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(
            p("sweep")
                .unwrap_err()
                .starts_with("unknown profile 'sweep'")
        );
    }

    #[test]
    fn a_constant_rate_is_evenly_spaced() {
        let s = Profile::Constant { rate: 4.0 }.schedule(5, 0);
        let ms: Vec<u128> = s.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 250, 500, 750, 1000]);
    }

    #[test]
    fn poisson_gaps_have_the_rates_mean_and_burstiness_sets_their_spread() {
        let gaps = |b: f64| {
            let s = Profile::Poisson {
                rate: 10.0,
                burstiness: b,
            }
            .schedule(20_001, 7);
            let g: Vec<f64> = s.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
            let mean = g.iter().sum::<f64>() / g.len() as f64;
            let var = g.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / g.len() as f64;
            (mean, var.sqrt() / mean)
        };
        // Mean gap 1/rate; coefficient of variation 1/sqrt(B): 1 for Poisson.
        for (b, cv) in [(1.0, 1.0), (0.25, 2.0), (4.0, 0.5)] {
            let (mean, got) = gaps(b);
            assert!((mean - 0.1).abs() < 0.005, "B={b}: mean gap {mean}");
            assert!((got - cv).abs() < 0.08 * cv, "B={b}: cv {got}, want {cv}");
        }
        // Seeded: the same seed, the same schedule.
        let p = Profile::Poisson {
            rate: 3.0,
            burstiness: 1.0,
        };
        assert_eq!(p.schedule(50, 1), p.schedule(50, 1));
        assert_ne!(p.schedule(50, 1), p.schedule(50, 2));
    }

    #[test]
    fn a_call_meets_the_slo_only_when_every_limit_holds() {
        let slo = Slo::parse("ttft=500ms,e2e=2s").unwrap();
        assert!(slo.met(true, Some(0.4), None, 1.9));
        assert!(!slo.met(true, Some(0.6), None, 1.0));
        assert!(!slo.met(true, None, None, 1.0), "no first token: not met");
        assert!(
            !slo.met(false, Some(0.1), None, 0.2),
            "a failed call never meets it"
        );
        assert!(Slo::parse("ttft=500").unwrap_err().contains("unit"));
        assert!(Slo::parse("itl=5ms").unwrap_err().contains("unknown SLO"));
        assert_eq!(slo.to_string(), "ttft=500ms,e2e=2000ms");
    }
}
