//! The heat section: per target, the hottest reading, the calls throttled and from when, output
//! speed by temperature band, and the sustained speed against the first minutes.

use std::fmt::Write;

use super::{escape, table_head, td, td_num};
use crate::figures::Report;
use crate::text::{bands_text, pct_ci};

/// Left out when no record has a temperature reading or a throttle flag.
pub(super) fn heat(h: &mut String, r: &Report) {
    let rows: Vec<_> = r
        .targets
        .iter()
        .filter_map(|t| Some((&t.target, t.heat.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Heat</h2><p class=\"note\">The hottest CPU or GPU sensor during each call (agent \
         records), the calls a source said were throttled (Wilson interval), output speed by \
         10 °C band, and the mean output speed of the last 30 minutes of calls against the \
         first 5 (<b>sustained</b>; at least 35 minutes of calls).</p>",
    );
    table_head(
        h,
        "heat",
        &[
            "target",
            "calls with a reading",
            "peak °C",
            "throttled",
            "first throttled after",
            "output speed by temperature",
            "first 5 min tok/s",
            "last 30 min tok/s",
            "sustained",
        ],
    );
    for (name, x) in rows {
        let _ = write!(
            h,
            "<tr><td>{}</td>{}{}{}{}<td class=\"l\">{}</td>{}{}{}</tr>",
            escape(name),
            td(
                Some(x.calls_with_reading as f64),
                &x.calls_with_reading.to_string()
            ),
            td_num(x.peak_c, 1),
            td(
                x.throttled.map(|t| t.rate.value),
                &x.throttled.map_or("n/a".into(), |t| pct_ci(&t.rate))
            ),
            td(
                x.first_throttled_after_sec,
                &x.first_throttled_after_sec
                    .map_or("never".into(), |v| format!("{v:.0} s"))
            ),
            escape(&bands_text(x)),
            td_num(x.first_5min_speed_tps, 1),
            td_num(x.last_30min_speed_tps, 1),
            td(
                x.sustained_ratio,
                &x.sustained_ratio
                    .map_or("n/a".into(), |v| format!("{:.0}%", v * 100.0))
            ),
        );
    }
    h.push_str("</tbody></table></div>");
}
