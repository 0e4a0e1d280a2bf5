//! The sweep section: one row per server configuration with its Pareto mark, and flash
//! attention's effect per pair of points.

use std::fmt::Write;

use super::{escape, table_head, td_num};
use crate::figures::Report;

/// Sweeps: one row per server configuration (with the Pareto front marked), and flash
/// attention's effect for each pair of points that differ only in it. Left out without sweeps.
pub(super) fn sweep(h: &mut String, r: &Report) {
    let points: Vec<&crate::figures::TargetFigures> = r
        .targets
        .iter()
        .filter(|t| t.server_config.is_some())
        .collect();
    if points.is_empty() {
        return;
    }
    h.push_str("<h2>Server configurations</h2>");
    h.push_str(
        "<p class=\"note\">One row per sweep point and temperature (<code>llmpulse-agent \
         sweep</code>). <b>front</b>: no other configuration is at least as fast, as small and as \
         accurate with one of them strictly better (output speed p50, memory, RAG coverage).</p>",
    );
    table_head(
        h,
        "sweep",
        &[
            "target",
            "quantization",
            "flash attn",
            "KV cache",
            "context",
            "GPU layers",
            "max seqs",
            "temperature",
            "load s",
            "output tok/s p50",
            "TTFT p50 s",
            "memory MB",
            "mJ / token",
            "success",
            "coverage",
            "Pareto",
        ],
    );
    for t in points {
        let Some(c) = &t.server_config else { continue };
        let text = |v: &Option<String>| escape(v.as_deref().unwrap_or("–"));
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>{}{}{}{}{}{}{}{}{}{}{}<td class=\"l\">{}</td></tr>",
            escape(&t.target),
            text(&c.quantization),
            text(&c.flash_attn),
            text(&c.kv_cache_type),
            td_num(c.ctx_size.map(f64::from), 0),
            td_num(c.gpu_layers.map(f64::from), 0),
            td_num(c.max_num_seqs.map(f64::from), 0),
            td_num(c.temperature, 2),
            td_num(t.load_time_sec.map(|m| m.mean), 2),
            td_num(t.output_speed_tps.as_ref().map(|q| q.p50.value), 1),
            td_num(t.ttft_sec.as_ref().map(|q| q.p50.value), 3),
            td_num(t.memory_mb.map(|m| m.mean), 0),
            td_num(t.energy_per_token_j.map(|m| m.mean * 1000.0), 2),
            td_num(Some(t.success.rate.value), 3),
            td_num(t.coverage.map(|m| m.mean), 3),
            if t.pareto { "front" } else { "" },
        );
    }
    h.push_str("</tbody></table></div>");
    if r.flash_attention.is_empty() {
        return;
    }
    h.push_str("<h3>Flash attention</h3><p class=\"note\">Each pair differs only in flash attention. \
        Difference = on − off, with its 95% bootstrap interval; p from the Mann–Whitney U test.</p>");
    table_head(
        h,
        "flash-attention",
        &[
            "on",
            "off",
            "output tok/s on",
            "off",
            "difference [95% CI]",
            "p",
            "TTFT s on",
            "off",
            "difference [95% CI]",
            "memory MB on",
            "off",
        ],
    );
    // Medians on and off, the difference with its interval, and (with `p`) the test's p.
    let diff = |d: &Option<crate::compare::MetricDiff>, digits: usize, p: bool| -> String {
        let Some(d) = d else {
            return "<td></td>".repeat(if p { 4 } else { 3 });
        };
        let mut cells = format!(
            "{}{}<td>{:+.digits$} [{:+.digits$}, {:+.digits$}]</td>",
            td_num(Some(d.median_b), digits),
            td_num(Some(d.median_a), digits),
            d.difference.value,
            d.difference.lo,
            d.difference.hi,
        );
        if p {
            cells.push_str(&td_num(Some(d.p_value), 3));
        }
        cells
    };
    for f in &r.flash_attention {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td>{}{}{}{}</tr>",
            escape(&f.on),
            escape(&f.off),
            diff(&f.output_speed, 1, true),
            diff(&f.ttft, 3, false),
            td_num(f.memory_mb_on, 0),
            td_num(f.memory_mb_off, 0),
        );
    }
    h.push_str("</tbody></table></div>");
}
