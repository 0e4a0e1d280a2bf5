//! `llmpulse-agent health`: asks a running agent's `/health` and exits 0 when it answers ok, 1
//! otherwise: the container image's HEALTHCHECK (its base has no curl), and a check for scripts.

use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct HealthArgs {
    /// The agent's health address.
    #[arg(long, default_value = "http://127.0.0.1:9464/health")]
    pub url: String,
    /// How long to wait for the answer.
    #[arg(long, default_value = "3s")]
    pub timeout: humantime::Duration,
}

pub fn health(a: HealthArgs) -> ExitCode {
    llmpulse_core::provider::http::install_crypto();
    let answer = reqwest::blocking::Client::builder()
        .timeout(Duration::from(a.timeout))
        .no_proxy()
        .build()
        .and_then(|c| c.get(&a.url).send());
    let why = match answer {
        Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>() {
            Ok(v) if v["status"] == "ok" => {
                println!("{v}");
                return ExitCode::SUCCESS;
            }
            Ok(v) => format!("it answered {v}"),
            Err(e) => format!("its answer is not the agent's health JSON: {e}"),
        },
        Ok(r) => format!("it answered HTTP {}", r.status()),
        Err(e) => format!("no answer: {e}"),
    };
    eprintln!("{}: unhealthy: {why}", a.url);
    ExitCode::FAILURE
}
