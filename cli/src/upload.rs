//! `llmpulse upload`: publish the runs that wait in the spool: runs whose store refused them,
//! and runs that died (killed, out of memory, a lost machine), recovered from their journals as
//! partial runs.

use std::process::ExitCode;

use llmpulse_core::{publish, store};

use crate::args::UploadArgs;
use crate::run::default_spool;

pub fn upload(a: UploadArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let spool = a.spool.unwrap_or_else(default_spool);
    let runs = publish::read_spool(&spool)?;
    if runs.is_empty() {
        println!("nothing to upload in {}", spool.display());
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let mut failed = 0;
    for spooled in runs {
        let m = spooled.run.manifest.clone();
        let destination =
            a.to.clone()
                .unwrap_or_else(|| spooled.run.destination.clone());
        let what = if spooled.recovered {
            format!(
                "{} (recovered: {} of {} planned calls, {} ok)",
                m.run_id,
                m.records,
                m.planned.map_or_else(|| "?".to_string(), |p| p.to_string()),
                m.successes
            )
        } else {
            format!("{} ({} records)", m.run_id, m.records)
        };
        let result = runtime.block_on(async {
            let store = store::open(&destination, &env).await?;
            anyhow::Ok(publish::publish(store.as_ref(), spooled.run).await)
        });
        match result {
            Ok(p @ publish::Publication::Stored { .. }) => {
                println!("uploaded {what} to {}", p.describe())
            }
            Ok(publish::Publication::Spooled { dir, error }) => {
                failed += 1;
                eprintln!("error: {what}: {error} (kept in {})", dir.display());
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {what}: {e:#} (kept in the spool)");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
