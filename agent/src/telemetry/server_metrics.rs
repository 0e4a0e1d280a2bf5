//! The servers' own Prometheus counters (vLLM's and llama.cpp's `GET /metrics`) around a run:
//! a page read before the run and one after it give the deltas of every counter and histogram
//! over exactly the run's window ([`window`]), and the gauges (requests running and waiting,
//! KV-cache use) are kept at each read as a series ([`Page::gauges`]). The text is parsed by the
//! `nom-openmetrics` crate (it takes vLLM's `vllm:` names, which `prometheus-parse` refuses);
//! this module only groups histograms, subtracts and names.

use std::collections::BTreeMap;

use nom_openmetrics::{Family, MetricDescriptor, MetricType, Sample};
use serde::{Deserialize, Serialize};

/// One read of a `/metrics` page: every series by `name{labels}` (labels sorted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub counters: BTreeMap<String, f64>,
    pub gauges: BTreeMap<String, f64>,
    pub histograms: BTreeMap<String, Histogram>,
}

/// A histogram as exposed: cumulative counts per upper bound (`le`), its sum and count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `(le, cumulative count)`, ascending; the last bound is `+Inf`.
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

/// Why a page gave nothing to measure with.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PageError {
    #[error("the answer is not in the Prometheus text format (no metric in it)")]
    Empty,
    #[error("the Prometheus text stops parsing at line {line}")]
    Malformed { line: usize },
}

/// `name{labels}`, labels sorted and `le` left out (it is a histogram's bucket).
fn key(name: &str, sample: &Sample<'_>) -> String {
    let mut labels: Vec<(&str, &str)> = sample
        .labels()
        .iter()
        .filter(|l| l.name != "le")
        .map(|l| (l.name, l.value.as_str()))
        .collect();
    if labels.is_empty() {
        return name.to_string();
    }
    labels.sort_unstable();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

fn type_of<'a>(family: &'a Family<'a>) -> Option<(&'a str, &'a MetricType<'a>)> {
    family.descriptors.iter().find_map(|d| match d {
        MetricDescriptor::Type { metric, r#type } => Some((*metric, r#type)),
        _ => None,
    })
}

/// Reads a `/metrics` answer. Series a server adds for bookkeeping (`*_created`, `*_info`) are
/// left out.
pub fn parse(text: &str) -> Result<Page, PageError> {
    let (rest, families) =
        nom_openmetrics::parser::prometheus(text).map_err(|_| PageError::Empty)?;
    if !rest.trim().is_empty() {
        let line = text[..text.len() - rest.len()].lines().count() + 1;
        return Err(PageError::Malformed { line });
    }
    let mut page = Page::default();
    for family in &families {
        let (base, kind) = match type_of(family) {
            Some((m, t)) => (m, Some(t)),
            None => ("", None),
        };
        for s in &family.samples {
            let name = s.name();
            match kind {
                Some(MetricType::Counter) => {
                    page.counters.insert(key(name, s), s.number());
                }
                // nom-openmetrics 0.3 reads `histogram` as an unknown type's name.
                Some(MetricType::Histogram | MetricType::Unknown("histogram")) => {
                    let h = page.histograms.entry(key(base, s)).or_default();
                    if name.ends_with("_bucket") {
                        let le = s.labels().iter().find(|l| l.name == "le");
                        if let Some(le) = le.and_then(|l| parse_bound(&l.value)) {
                            h.buckets.push((le, s.number()));
                        }
                    } else if name.ends_with("_sum") {
                        h.sum = s.number();
                    } else if name.ends_with("_count") {
                        h.count = s.number();
                    }
                }
                Some(MetricType::Summary) => {}
                _ => {
                    if !(name.ends_with("_created") || name.ends_with("_info")) {
                        page.gauges.insert(key(name, s), s.number());
                    }
                }
            }
        }
    }
    for h in page.histograms.values_mut() {
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    if page.counters.is_empty() && page.gauges.is_empty() && page.histograms.is_empty() {
        return Err(PageError::Empty);
    }
    Ok(page)
}

fn parse_bound(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        _ => v.parse().ok(),
    }
}

impl Histogram {
    /// `self − before`, bucket by bucket; `None` when the bounds differ or a count went down
    /// (the server restarted: its counters began again).
    fn minus(&self, before: &Histogram) -> Option<Histogram> {
        if before.buckets.len() != self.buckets.len() {
            return None;
        }
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (a, b) in self.buckets.iter().zip(&before.buckets) {
            if a.0 != b.0 || a.1 < b.1 {
                return None;
            }
            buckets.push((a.0, a.1 - b.1));
        }
        (self.count >= before.count).then_some(Histogram {
            buckets,
            sum: self.sum - before.sum,
            count: self.count - before.count,
        })
    }

    /// Adds another histogram with the same bounds (the same family under other labels).
    fn add(&mut self, other: &Histogram) {
        if self.buckets.is_empty() {
            *self = other.clone();
            return;
        }
        if self.buckets.len() != other.buckets.len() {
            return;
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            a.1 += b.1;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// The `q` quantile as Prometheus's `histogram_quantile` estimates it: linear within the
    /// bucket it falls in (from 0 for the first), the highest finite bound when it falls in
    /// `+Inf`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, cum) in &self.buckets {
            if cum >= rank {
                if le.is_infinite() {
                    return Some(lower.0);
                }
                let inside = cum - lower.1;
                let frac = if inside > 0.0 {
                    (rank - lower.1) / inside
                } else {
                    1.0
                };
                return Some(lower.0 + (le - lower.0) * frac);
            }
            lower = (le, cum);
        }
        Some(lower.0)
    }
}

/// A distribution over the window, as the server measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dist {
    pub count: f64,
    pub mean: f64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl Dist {
    fn of(h: &Histogram) -> Option<Dist> {
        (h.count > 0.0).then(|| Dist {
            count: h.count,
            mean: h.sum / h.count,
            p50: h.quantile(0.5),
            p90: h.quantile(0.9),
            p99: h.quantile(0.99),
        })
    }
}

/// The figures people read off a server's page, named the same for every server. vLLM gives
/// distributions; llama.cpp gives totals, so its rates are totals over totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Named {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_prompt_tokens: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_tokens: Option<f64>,
    /// Prompt tokens per second of prefill (llama.cpp: prompt tokens / prompt seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill_tps: Option<f64>,
    /// Output tokens per second of decoding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_tps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_sec: Option<Dist>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_sec: Option<Dist>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill_sec: Option<Dist>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_sec: Option<Dist>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e_sec: Option<Dist>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inter_token_sec: Option<Dist>,
}

/// What changed on a server's page between two reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Seconds between the two reads.
    pub seconds: f64,
    /// A counter went down: the server restarted in the window, and the deltas are left out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
    pub named: Named,
    /// Every counter that moved, by series.
    pub counters: BTreeMap<String, f64>,
    /// Every histogram that counted something, by series.
    pub histograms: BTreeMap<String, Histogram>,
}

/// The family name of a `name{labels}` key.
fn family(key: &str) -> &str {
    key.split('{').next().unwrap_or(key)
}

/// The window between two reads `seconds` apart.
pub fn window(before: &Page, after: &Page, seconds: f64) -> Window {
    let mut w = Window {
        seconds,
        ..Window::default()
    };
    for (k, a) in &after.counters {
        let b = before.counters.get(k).copied().unwrap_or(0.0);
        if *a < b {
            w.reset = true;
        } else if *a > b {
            w.counters.insert(k.clone(), a - b);
        }
    }
    for (k, a) in &after.histograms {
        let d = match before.histograms.get(k) {
            Some(b) => a.minus(b),
            None => Some(a.clone()),
        };
        match d {
            Some(d) if d.count > 0.0 => {
                w.histograms.insert(k.clone(), d);
            }
            Some(_) => {}
            None => w.reset = true,
        }
    }
    if w.reset {
        w.counters.clear();
        w.histograms.clear();
        return w;
    }
    w.named = named(&w);
    w
}

/// A family's counters summed over their labels (`vllm:request_success_total` by reason).
fn total(w: &Window, names: &[&str]) -> Option<f64> {
    let mut found = None;
    for (k, v) in &w.counters {
        if names.contains(&family(k)) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// A family's histograms summed over their labels.
fn dist(w: &Window, name: &str) -> Option<Dist> {
    let mut sum = Histogram::default();
    for (k, h) in &w.histograms {
        if family(k) == name {
            sum.add(h);
        }
    }
    Dist::of(&sum)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn named(w: &Window) -> Named {
    let vllm_decode = dist(w, "vllm:request_decode_time_seconds");
    let vllm_prefill = dist(w, "vllm:request_prefill_time_seconds");
    let generation_tokens = total(
        w,
        &[
            "vllm:generation_tokens_total",
            "llamacpp:tokens_predicted_total",
        ],
    );
    let prompt_tokens = total(
        w,
        &["vllm:prompt_tokens_total", "llamacpp:prompt_tokens_total"],
    );
    let llama_prefill_sec = total(w, &["llamacpp:prompt_seconds_total"]);
    let llama_decode_sec = total(w, &["llamacpp:tokens_predicted_seconds_total"]);
    // llama.cpp counts prompt tokens without the cached ones; vLLM counts them all.
    let computed_prompt = total(w, &["llamacpp:prompt_tokens_total"]);
    Named {
        requests: total(w, &["vllm:request_success_total"]),
        prompt_tokens,
        cached_prompt_tokens: total(
            w,
            &[
                "vllm:prompt_tokens_cached_total",
                "llamacpp:prompt_tokens_cached_total",
            ],
        ),
        generation_tokens,
        prefill_tps: ratio(computed_prompt, llama_prefill_sec),
        decode_tps: ratio(generation_tokens, llama_decode_sec).or_else(|| {
            ratio(
                generation_tokens,
                vllm_decode.as_ref().map(|d| d.mean * d.count),
            )
        }),
        ttft_sec: dist(w, "vllm:time_to_first_token_seconds"),
        queue_sec: dist(w, "vllm:request_queue_time_seconds"),
        prefill_sec: vllm_prefill,
        decode_sec: vllm_decode,
        e2e_sec: dist(w, "vllm:e2e_request_latency_seconds"),
        inter_token_sec: dist(w, "vllm:inter_token_latency_seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pages read from the real servers in CI (vLLM 0.x on CPU, llama.cpp's llama-server with
    // --metrics), before and after three chat calls of up to 16 tokens each.
    const VLLM_BEFORE: &str = include_str!("testdata/vllm-before.prom");
    const VLLM_AFTER: &str = include_str!("testdata/vllm-after.prom");
    const LLAMA_BEFORE: &str = include_str!("testdata/llamacpp-before.prom");
    const LLAMA_AFTER: &str = include_str!("testdata/llamacpp-after.prom");

    #[test]
    fn vllms_page_gives_the_runs_distributions() {
        let before = parse(VLLM_BEFORE).unwrap();
        let after = parse(VLLM_AFTER).unwrap();
        assert!(
            after
                .gauges
                .contains_key(r#"vllm:num_requests_running{engine="0",model_name="smollm2-vllm"}"#),
            "{:?}",
            after.gauges.keys()
        );
        assert!(!after.gauges.keys().any(|k| k.contains("_created")));
        let w = window(&before, &after, 2.0);
        assert!(!w.reset);
        let n = &w.named;
        assert_eq!(n.requests, Some(3.0));
        let ttft = n.ttft_sec.as_ref().unwrap();
        assert_eq!(ttft.count, 3.0);
        assert!(ttft.mean > 0.0 && ttft.mean < 5.0, "{ttft:?}");
        let p50 = ttft.p50.unwrap();
        assert!(p50 > 0.0 && p50 <= ttft.p99.unwrap(), "{ttft:?}");
        assert_eq!(n.queue_sec.as_ref().unwrap().count, 3.0);
        assert_eq!(n.e2e_sec.as_ref().unwrap().count, 3.0);
        // Three calls of at most 16 tokens each.
        let generated = n.generation_tokens.unwrap();
        assert!(generated > 0.0 && generated <= 48.0, "{generated}");
        assert!(n.decode_tps.unwrap() > 0.0);
        // Only what moved is kept.
        assert!(w.counters.values().all(|v| *v > 0.0));
    }

    #[test]
    fn llama_cpps_totals_become_rates() {
        let before = parse(LLAMA_BEFORE).unwrap();
        let after = parse(LLAMA_AFTER).unwrap();
        assert!(after.gauges.contains_key("llamacpp:requests_processing"));
        let w = window(&before, &after, 2.0);
        let n = &w.named;
        let (prompt, sec) = (
            w.counters["llamacpp:prompt_tokens_total"],
            w.counters["llamacpp:prompt_seconds_total"],
        );
        assert!((n.prefill_tps.unwrap() - prompt / sec).abs() < 1e-9);
        assert!(n.generation_tokens.unwrap() > 0.0 && n.generation_tokens.unwrap() <= 48.0);
        assert!(n.decode_tps.unwrap() > 0.0);
        assert!(n.ttft_sec.is_none(), "llama.cpp has no histograms");
    }

    #[test]
    fn a_restarted_server_gives_no_deltas() {
        let before = parse(VLLM_AFTER).unwrap();
        let after = parse(VLLM_BEFORE).unwrap();
        let w = window(&before, &after, 1.0);
        assert!(w.reset);
        assert!(w.counters.is_empty() && w.histograms.is_empty());
        assert_eq!(w.named, Named::default());
    }

    #[test]
    fn an_html_page_is_not_a_metrics_page() {
        assert_eq!(
            parse("<html><body>Not Found</body></html>"),
            Err(PageError::Empty)
        );
        assert_eq!(parse(""), Err(PageError::Empty));
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket_as_prometheus_does() {
        let h = Histogram {
            buckets: vec![(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (f64::INFINITY, 40.0)],
            sum: 12.0,
            count: 40.0,
        };
        // Rank 20 of 40 falls halfway through (0.1, 0.5].
        assert!((h.quantile(0.5).unwrap() - 0.3).abs() < 1e-12);
        // Rank 4 falls in the first bucket, from 0.
        assert!((h.quantile(0.1).unwrap() - 0.04).abs() < 1e-12);
        let tail = Histogram {
            buckets: vec![(0.1, 1.0), (f64::INFINITY, 2.0)],
            sum: 9.0,
            count: 2.0,
        };
        assert_eq!(
            tail.quantile(0.99),
            Some(0.1),
            "+Inf gives the last finite bound"
        );
        assert_eq!(Histogram::default().quantile(0.5), None);
    }
}
