//! Discovery: which LLM servers run on this host, what they are and which models they serve
//! (`llmpulse run --local`, `llmpulse-agent discover`, a soak's `--discover`).
//! [`discover`] probes the local presets' ports and any given URL; [`kinds`] reads each
//! server's own endpoints; [`filter`] chooses the models a config measures; [`config`] writes
//! that config.

pub mod config;
pub mod filter;
pub mod kinds;

use std::time::Duration;

use serde::Serialize;

/// The servers discovery knows, by their own endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ollama,
    LmStudio,
    Vllm,
    LlamaCpp,
    Exo,
    /// Answers `/v1/models` and nothing more specific (llama-cpp-python, the simulator, …).
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
}

impl Kind {
    /// The llmpulse preset that talks to this server.
    pub fn preset(self) -> &'static str {
        match self {
            Kind::Ollama => "ollama-native",
            Kind::LmStudio => "lmstudio",
            Kind::Vllm => "vllm",
            Kind::LlamaCpp => "llamacpp",
            Kind::Exo => "exo",
            Kind::OpenAiCompatible => "openai-compatible",
        }
    }
}

/// One server found.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub kind: Kind,
    /// Its root URL (`http://127.0.0.1:11434`).
    pub url: String,
    /// The base URL of its OpenAI-compatible API (what a target's `base_url` is).
    pub api_base: String,
    pub version: Option<String>,
    /// The process listening on its port, when this host can tell (the agent fills these in).
    pub pid: Option<u32>,
    pub process: Option<String>,
    pub models: Vec<Model>,
    /// What the server said beyond its models (slots, model file, context), as it said it.
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// One model a server has.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Model {
    pub name: String,
    /// The model file's size.
    pub size_bytes: Option<u64>,
    pub quantization: Option<String>,
    /// Parameter count as the server writes it (`7B`, `135M`).
    pub parameters: Option<String>,
    pub family: Option<String>,
    pub context_length: Option<u64>,
    /// Loaded in memory now.
    pub loaded: Option<bool>,
    /// Memory the loaded model takes, as the server reports it (Ollama's `/api/ps`).
    pub memory_bytes: Option<u64>,
    /// `completion`, `tools`, `vision`, `thinking`, `embedding` (as far as the server says).
    pub capabilities: Vec<String>,
    /// Why a config would leave it out (`--max-size-gb`, an embedding model, a pattern).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded: Option<String>,
}

impl Model {
    /// Only embeddings: nothing to chat with.
    pub fn embedding_only(&self) -> bool {
        !self.capabilities.is_empty()
            && self
                .capabilities
                .iter()
                .all(|c| c == "embedding" || c == "embeddings")
    }
}

/// The ports of the local presets, with the kind each is known for.
pub const LOCAL_PORTS: [(u16, &str); 5] = [
    (11434, "ollama"),
    (1234, "lmstudio"),
    (8000, "vllm"),
    (8080, "llamacpp"),
    (52415, "exo"),
];

/// How long one discovery request may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes every local preset port and each of `urls` (a root or an API base), one server per
/// answering address, in the order given. Addresses that do not answer are left out; one that
/// answers but is no LLM server is reported as an error in `skipped`.
pub async fn discover(urls: &[String], local: bool) -> Discovery {
    let http = client();
    let mut roots: Vec<String> = Vec::new();
    if local {
        roots.extend(
            LOCAL_PORTS
                .iter()
                .map(|(p, _)| format!("http://127.0.0.1:{p}")),
        );
    }
    for u in urls {
        let root = root_of(u);
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    let probes = roots.iter().map(|root| kinds::probe(&http, root));
    let results = futures_util::future::join_all(probes).await;
    let mut found = Discovery::default();
    for (root, r) in roots.into_iter().zip(results) {
        match r {
            Ok(Some(server)) => found.servers.push(server),
            Ok(None) => {}
            Err(why) => found.skipped.push(Skipped { url: root, why }),
        }
    }
    found
}

/// What [`discover`] found.
#[derive(Debug, Default, Serialize)]
pub struct Discovery {
    pub servers: Vec<Server>,
    /// Addresses that answered but could not be read as an LLM server, and why.
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub url: String,
    pub why: String,
}

/// The HTTP client discovery uses: short timeouts, no proxy surprises for localhost.
pub fn client() -> reqwest::Client {
    crate::provider::http::install_crypto();
    reqwest::Client::builder()
        .user_agent(concat!("llmpulse/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_millis(500))
        .timeout(PROBE_TIMEOUT)
        .no_proxy()
        .build()
        .unwrap_or_default()
}

/// `http://h:p/v1/` → `http://h:p`: the server's root, from a root or an API base.
pub fn root_of(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    for suffix in ["/v1", "/api", "/api/v0", "/api/v1"] {
        if let Some(root) = url.strip_suffix(suffix) {
            return root.to_string();
        }
    }
    url
}

/// The port of a URL (the scheme's default when none is written).
pub fn port_of(url: &str) -> Option<u16> {
    let u = reqwest::Url::parse(url).ok()?;
    u.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_from_api_bases() {
        assert_eq!(root_of("http://127.0.0.1:8080/v1"), "http://127.0.0.1:8080");
        assert_eq!(
            root_of("http://127.0.0.1:11434/api/"),
            "http://127.0.0.1:11434"
        );
        assert_eq!(root_of("localhost:1234"), "http://localhost:1234");
        assert_eq!(port_of("http://localhost:1234"), Some(1234));
        assert_eq!(port_of("http://localhost"), Some(80));
    }

    #[test]
    fn embedding_only_models() {
        let m = |caps: &[&str]| Model {
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            ..Model::default()
        };
        assert!(m(&["embedding"]).embedding_only());
        assert!(!m(&["completion", "embedding"]).embedding_only());
        assert!(!m(&[]).embedding_only(), "unknown is not embedding-only");
    }
}
