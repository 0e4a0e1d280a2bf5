//! `llmpulse upload`: finish runs that wait in the spool because their store refused them.

use std::process::ExitCode;

use llmpulse_core::{output, store};

use crate::args::UploadArgs;
use crate::run::default_spool;

pub fn upload(a: UploadArgs) -> anyhow::Result<ExitCode> {
    let env = |k: &str| std::env::var(k).ok();
    let spool = a.spool.unwrap_or_else(default_spool);
    let runs = output::read_spool(&spool)?;
    if runs.is_empty() {
        println!("nothing to upload in {}", spool.display());
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let mut failed = 0;
    for r in &runs {
        let destination = a.to.clone().unwrap_or_else(|| r.destination.clone());
        let result = runtime.block_on(async {
            let store = store::open(&destination, &env).await?;
            anyhow::Ok(output::upload_spooled(store.as_ref(), r).await?)
        });
        match result {
            Ok(key) => println!(
                "uploaded {} ({} records) to {}/{key}",
                r.run.manifest.run_id,
                r.run.manifest.records,
                destination.trim_end_matches('/')
            ),
            Err(e) => {
                failed += 1;
                eprintln!(
                    "error: {}: {e:#} (kept in {})",
                    r.run.manifest.run_id,
                    r.dir.display()
                );
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
