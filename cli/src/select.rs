//! `llmpulse select`: the recommended model for a task or agent type, as JSON on stdout. Exits 2
//! with a JSON refusal when the records are too few to choose.

use std::io::Write;
use std::process::ExitCode;

use llmpulse_report::aggregate::Plan;
use llmpulse_report::select::{self, Criteria, MIN_TASK_CALLS};

use crate::args::SelectArgs;
use crate::report::{filter, load};

pub fn select(a: SelectArgs) -> anyhow::Result<ExitCode> {
    let weights =
        select::weights(a.task.as_deref(), a.agent.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
    let criteria = Criteria {
        weights,
        max_memory_mb: a.max_memory,
        min_speed_tps: a.min_speed,
        max_p95_latency_sec: a.max_p95_latency,
        max_cost_usd: a.max_cost_per_call,
        max_cost_per_1k_usd: a.max_cost_per_1k,
        no_throttling: a.no_throttling,
        min_calls: a.min_calls,
        min_task_calls: MIN_TASK_CALLS,
    };
    // Selection reads no history of runs (that is watch's).
    let (agg, _) = load(&a.source, &filter(&a.source)?, |_| Plan {
        history_from: Some(chrono::DateTime::<chrono::Utc>::MAX_UTC),
        ..Plan::buckets(86_400)
    })?;
    match select::select(&agg, &criteria) {
        Ok(choice) => {
            writeln!(
                std::io::stdout(),
                "{}",
                serde_json::to_string_pretty(&choice)?
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            writeln!(
                std::io::stdout(),
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "error": refusal }))?
            )?;
            eprintln!("error: {refusal}");
            Ok(ExitCode::from(2))
        }
    }
}
