//! The hardware section: memory, GPU use and temperature, power and energy per target and over
//! time, from agent runs (and memory a server reported).

use std::fmt::Write;

use super::{escape, figure, table_head, td_num};
use crate::charts::{self, Bar, Line};
use crate::figures::{Report, bucket_label};

/// Memory, power and energy: the agent's hardware figures (and memory a server reported). Left
/// out when no record has any.
pub(super) fn hardware(h: &mut String, r: &Report) {
    let any = r
        .targets
        .iter()
        .any(|t| t.memory_mb.is_some() || t.power_w.is_some() || t.energy_j.is_some());
    if !any {
        return;
    }
    h.push_str("<h2>Hardware</h2>");
    h.push_str(
        "<p class=\"note\">Measured on the serving host by <code>llmpulse-agent</code>: memory is \
         the serving process tree's peak resident memory during each call (plus GPU memory in use \
         where a GPU is read), or the server's own report (Ollama's <code>/api/ps</code>); energy \
         is each call's share of the measured devices' energy counters (NVML, RAPL), shared by \
         overlap time between concurrent calls.</p>",
    );
    table_head(
        h,
        "hardware",
        &[
            "target",
            "memory MB",
            "GPU use %",
            "GPU peak °C",
            "power W",
            "energy J / call",
            "energy J / output token",
        ],
    );
    for f in &r.targets {
        let _ = write!(
            h,
            "<tr><td>{}</td>{}{}{}{}{}{}</tr>",
            escape(&f.target),
            td_num(f.memory_mb.map(|m| m.mean), 0),
            td_num(f.gpu_util_pct.map(|m| m.mean), 1),
            td_num(f.gpu_temp_c.map(|m| m.mean), 1),
            td_num(f.power_w.map(|m| m.mean), 1),
            td_num(f.energy_j.map(|m| m.mean), 2),
            td_num(f.energy_per_token_j.map(|m| m.mean), 4),
        );
    }
    h.push_str("</tbody></table></div><div class=\"grid\">");
    let bars = |f: fn(&crate::figures::TargetFigures) -> Option<crate::figures::MeanFigure>,
                scale: f64|
     -> Vec<Bar> {
        r.targets
            .iter()
            .filter_map(|t| {
                let m = f(t)?;
                Some(Bar {
                    name: t.target.clone(),
                    value: m.mean * scale,
                    lo: m.mean * scale,
                    hi: m.mean * scale,
                    n: m.n,
                })
            })
            .collect()
    };
    let memory = bars(|t| t.memory_mb, 1.0);
    if !memory.is_empty() {
        figure(
            h,
            "memory",
            charts::bars("Memory (MB)", "MB", &memory, None),
            "Mean over successful calls; targets without a figure are left out.",
        );
    }
    let energy = bars(|t| t.energy_per_token_j, 1000.0);
    if !energy.is_empty() {
        figure(
            h,
            "energy-per-token",
            charts::bars("Energy per output token (mJ)", "mJ", &energy, None),
            "The call's energy share divided by its response tokens, mean over successful calls.",
        );
    }
    let lines = |f: fn(&crate::figures::Point) -> Option<f64>| -> Vec<Line> {
        r.series
            .iter()
            .map(|s| Line {
                name: s.target.clone(),
                points: s
                    .points
                    .iter()
                    .filter_map(|p| Some((p.start, f(p)?)))
                    .collect(),
            })
            .filter(|l| l.points.len() >= 2)
            .collect()
    };
    let bucket = bucket_label(r.bucket_sec);
    let memory_lines = lines(|p| p.memory_mb);
    if !memory_lines.is_empty() {
        figure(
            h,
            "memory-over-time",
            charts::time_lines("Memory (MB)", "MB", &memory_lines, false),
            &format!("Mean memory per {bucket}."),
        );
    }
    let temp_lines = lines(|p| p.gpu_temp_c);
    if !temp_lines.is_empty() {
        figure(
            h,
            "temperature-over-time",
            charts::time_lines("GPU temperature (°C)", "°C", &temp_lines, false),
            &format!(
                "Mean of the calls' peak GPU temperatures per {bucket}: a model that runs hot \
                 for hours shows here."
            ),
        );
    }
    let power_lines = lines(|p| p.power_w);
    if !power_lines.is_empty() {
        figure(
            h,
            "power-over-time",
            charts::time_lines("Power (W)", "watts", &power_lines, false),
            &format!("Mean device power during calls per {bucket}."),
        );
    }
    h.push_str("</div>");
}
