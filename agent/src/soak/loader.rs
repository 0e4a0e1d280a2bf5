//! Loading and unloading models through the server's own API when a soak rotates, where the
//! server has one: Ollama (`POST /api/generate` without a prompt loads a model, with
//! `keep_alive: 0` unloads it) and LM Studio (`POST /api/v1/models/load` and `/unload`). Other
//! servers load a model on its first call, which that call's latency shows.

use std::time::{Duration, Instant};

use llmpulse_core::config::{Endpoint, Target};

/// A server API that loads and unloads models.
#[derive(Debug, Clone, PartialEq)]
pub enum Loader {
    Ollama { root: String },
    LmStudio { root: String },
}

impl Loader {
    /// The loader for `target`'s server, from its preset (`ollama`, `ollama-native`, `lmstudio`).
    pub fn of(target: &Target) -> Option<Loader> {
        let Endpoint::Http { base_url } = &target.endpoint else {
            return None;
        };
        let root = crate::discover::root_of(base_url);
        match target.provider.as_str() {
            "ollama" | "ollama-native" => Some(Loader::Ollama { root }),
            "lmstudio" => Some(Loader::LmStudio { root }),
            _ => None,
        }
    }
}

fn client() -> reqwest::Client {
    llmpulse_core::provider::http::install_crypto();
    reqwest::Client::builder()
        // A large model can take minutes to load.
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap_or_default()
}

fn request(target: &Target, url: String, body: serde_json::Value) -> reqwest::RequestBuilder {
    let mut r = client().post(url).json(&body);
    if let Some(key) = &target.api_key {
        r = r.bearer_auth(key.expose());
    }
    r
}

/// The most of a load or unload answer read: the answers are a few hundred bytes, and a server
/// that keeps sending must not fill the agent's memory.
const MAX_ANSWER: usize = 1024 * 1024;

async fn send(r: reqwest::RequestBuilder) -> Result<serde_json::Value, String> {
    let mut resp = r.send().await.map_err(|e| e.without_url().to_string())?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER {
            return Err(format!(
                "HTTP {}: the answer passed {MAX_ANSWER} bytes; not read further",
                status.as_u16()
            ));
        }
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).to_string();
        return Err(format!("HTTP {}: {text}", status.as_u16()));
    }
    Ok(serde_json::from_slice(&body).unwrap_or_default())
}

/// Loads `target`'s model; the time it took, as the server reports it where it does, else as
/// measured here.
pub async fn load(loader: &Loader, target: &Target) -> Result<Duration, String> {
    let began = Instant::now();
    let reported = match loader {
        Loader::Ollama { root } => {
            let v = send(request(
                target,
                format!("{root}/api/generate"),
                serde_json::json!({ "model": target.model }),
            ))
            .await?;
            v["load_duration"].as_u64().map(Duration::from_nanos)
        }
        Loader::LmStudio { root } => {
            let v = send(request(
                target,
                format!("{root}/api/v1/models/load"),
                serde_json::json!({ "model": target.model }),
            ))
            .await?;
            v["load_time_seconds"]
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
        }
    };
    Ok(reported.unwrap_or_else(|| began.elapsed()))
}

/// Unloads `target`'s model, freeing its memory for the next one.
pub async fn unload(loader: &Loader, target: &Target) -> Result<(), String> {
    match loader {
        Loader::Ollama { root } => send(request(
            target,
            format!("{root}/api/generate"),
            serde_json::json!({ "model": target.model, "keep_alive": 0 }),
        ))
        .await
        .map(drop),
        Loader::LmStudio { root } => send(request(
            target,
            format!("{root}/api/v1/models/unload"),
            serde_json::json!({ "instance_id": target.model }),
        ))
        .await
        .map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers 200 and then sends bytes for ever.
    async fn endless() -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n";
                    if s.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = vec![b' '; 64 * 1024];
                    while s.write_all(&chunk).await.is_ok() {}
                });
            }
        });
        format!("http://{addr}/v1")
    }

    #[test]
    fn a_load_answer_that_never_ends_is_an_error_not_a_full_memory() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let config = llmpulse_core::config::Config::parse(
                &format!(
                    "[[targets]]\nname = \"m\"\nprovider = \"ollama\"\nmodel = \"m\"\nbase_url = \"{}\"\n",
                    endless().await
                ),
                "t",
                std::path::PathBuf::from("/tmp"),
                &|_| None,
            )
            .unwrap();
            let target = &config.targets[0];
            let loader = Loader::of(target).unwrap();
            let err = tokio::time::timeout(Duration::from_secs(20), load(&loader, target))
                .await
                .expect("ends without waiting for the server")
                .unwrap_err();
            assert!(err.contains("passed 1048576 bytes"), "{err}");
        });
    }
}
