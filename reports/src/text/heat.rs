//! The heat table of `summary.md`: how hot each target's machine got, how often it throttled,
//! and what that did to output speed.

use std::fmt::Write;

use comfy_table::Table;
use comfy_table::presets::ASCII_MARKDOWN;

use super::{num, pct_ci, right};
use crate::figures::Report;

/// One row of the heat table's text: the bands as `60–70 °C 55.2 tok/s (12)`.
pub fn bands_text(h: &crate::figures::heat::HeatFigures) -> String {
    h.speed_by_band
        .iter()
        .map(|b| {
            format!(
                "{:.0}–{:.0} °C {} tok/s ({})",
                b.from_c,
                b.to_c,
                num(b.output_speed_tps, 1),
                b.calls
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Heat per target (agent records with temperatures or throttle flags): how hot, how often
/// throttled and from when, speed by temperature band, sustained speed against the start.
pub(super) fn heat_table(s: &mut String, r: &Report) {
    let rows: Vec<_> = r
        .targets
        .iter()
        .filter_map(|t| Some((&t.target, t.heat.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let mut t = Table::new();
    t.load_preset(ASCII_MARKDOWN).set_header(vec![
        "target",
        "calls with a reading",
        "peak °C",
        "throttled [CI]",
        "first throttled after",
        "output speed by temperature",
        "first 5 min tok/s",
        "last 30 min tok/s",
        "sustained",
    ]);
    for (name, h) in rows {
        t.add_row(vec![
            name.clone(),
            h.calls_with_reading.to_string(),
            num(h.peak_c, 1),
            h.throttled
                .as_ref()
                .map_or("n/a".into(), |x| pct_ci(&x.rate)),
            h.first_throttled_after_sec
                .map_or("never".into(), |v| format!("{:.0} s", v)),
            bands_text(h),
            num(h.first_5min_speed_tps, 1),
            num(h.last_30min_speed_tps, 1),
            h.sustained_ratio
                .map_or("n/a".into(), |v| format!("{:.0}%", v * 100.0)),
        ]);
    }
    right(&mut t, 1);
    let _ = writeln!(
        s,
        "## Heat\n\nThe hottest CPU or GPU sensor during each call (agent records), the calls a \
         source said were throttled, output speed by 10 °C band, and the mean speed of the last \
         30 minutes of calls against the first 5 (**sustained**; at least 35 minutes of calls).\n\n{t}\n"
    );
}
