//! [`SimState`]: a simulator's shared state (profiles by model, seeds, the request log) and
//! [`SimState::plan`], which turns one request into a [`Reply`] with an exact event schedule.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::discovery::{Entry, ServerKind};
use crate::profile::{Fault, SimProfile, pick_fault};
use crate::reply::{build_reply, error_reply};
use crate::request::ChatRequest;
use crate::schedule::Reply;
use crate::wire::Wire;

/// A log line per request: what was decided and when each body event actually went out.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub request_id: String,
    /// A hash of the request body: a retry of the same call has the same fingerprint.
    pub fingerprint: String,
    pub model: String,
    pub fault: Fault,
    pub status: u16,
    pub stream: bool,
    /// When the request arrived, milliseconds since the Unix epoch.
    pub received_unix_ms: f64,
    /// When the headers and each body event were handed to the transport, ms after arrival.
    pub headers_ms: Option<f64>,
    pub events_ms: Vec<f64>,
    #[serde(skip)]
    pub received: Option<Instant>,
}

impl LogEntry {
    /// The instant each body event went out (for in-process comparisons such as the benchmark).
    pub fn event_instants(&self) -> Vec<Instant> {
        let Some(r) = self.received else {
            return Vec::new();
        };
        self.events_ms
            .iter()
            .map(|ms| r + Duration::from_secs_f64(ms / 1000.0))
            .collect()
    }
}

/// A simulator's shared state: profiles by model, request counts (for deterministic seeds) and
/// the request log.
#[derive(Debug)]
pub struct SimState {
    default: SimProfile,
    models: HashMap<String, SimProfile>,
    seen: Mutex<HashMap<u64, u32>>,
    seq: std::sync::atomic::AtomicU64,
    log: Mutex<Vec<Arc<Mutex<LogEntry>>>>,
    keep_log: bool,
    /// Models asked so far: "loaded", as Ollama's `/api/ps` lists them.
    loaded: Mutex<std::collections::BTreeSet<String>>,
    /// Models unloaded through the API (not loaded, whatever their profile says, until asked or
    /// loaded again).
    unloaded: Mutex<std::collections::BTreeSet<String>>,
    /// The server it pretends to be on discovery endpoints (`None`: only the chat protocols).
    kind: Option<ServerKind>,
    /// Scripted tool calls given so far, by (model, tool).
    scripted: Mutex<HashMap<(String, String), usize>>,
}

impl SimState {
    /// A simulator where every model behaves like `default`, except those in `models`.
    pub fn new(default: SimProfile, models: HashMap<String, SimProfile>, keep_log: bool) -> Self {
        SimState {
            default,
            models,
            seen: Mutex::new(HashMap::new()),
            seq: 0.into(),
            log: Mutex::new(Vec::new()),
            keep_log,
            loaded: Mutex::new(std::collections::BTreeSet::new()),
            unloaded: Mutex::new(std::collections::BTreeSet::new()),
            kind: None,
            scripted: Mutex::new(HashMap::new()),
        }
    }

    /// The same simulator, answering discovery requests as `kind` does.
    pub fn with_kind(mut self, kind: Option<ServerKind>) -> Self {
        self.kind = kind;
        self
    }

    /// The server it pretends to be.
    pub fn kind(&self) -> Option<ServerKind> {
        self.kind
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.seq.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Calls `f` with the model catalogue discovery endpoints describe: the models with their
    /// own profiles (or one model, `sim`, when there are none), loaded if their profile says so
    /// or they were asked.
    pub fn with_catalog<R>(&self, f: impl FnOnce(&[Entry<'_>]) -> R) -> R {
        let asked = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let unloaded = self.unloaded.lock().unwrap_or_else(|e| e.into_inner());
        let mut names = self.model_names();
        if names.is_empty() {
            names.push("sim".into());
        }
        let entries: Vec<Entry<'_>> = names
            .iter()
            .map(|name| {
                let profile = self.models.get(name).unwrap_or(&self.default);
                Entry {
                    name,
                    profile,
                    loaded: (profile.loaded || asked.contains(name)) && !unloaded.contains(name),
                }
            })
            .collect();
        f(&entries)
    }

    /// Loads `name` (as a load request does): its profile's `load_ms` later, it is loaded.
    /// `None` for a model the server does not have.
    pub async fn load(&self, name: &str) -> Option<std::time::Duration> {
        if !self.has_model(name) {
            return None;
        }
        let took = std::time::Duration::from_secs_f64(self.profile(name).load_ms / 1e3);
        tokio::time::sleep(took).await;
        self.mark_loaded(name);
        Some(took)
    }

    /// Unloads `name`; false when it was not loaded.
    pub fn unload(&self, name: &str) -> bool {
        let was = self.with_catalog(|m| m.iter().any(|e| e.name == name && e.loaded));
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.unloaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
        was
    }

    fn mark_loaded(&self, name: &str) {
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string());
        self.unloaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Whether the catalogue has `name`.
    pub fn has_model(&self, name: &str) -> bool {
        self.with_catalog(|m| m.iter().any(|e| e.name == name))
    }

    fn profile(&self, name: &str) -> &SimProfile {
        self.models.get(name).unwrap_or(&self.default)
    }

    /// Names of the models loaded now.
    pub fn loaded_models(&self) -> Vec<String> {
        self.with_catalog(|m| {
            m.iter()
                .filter(|e| e.loaded)
                .map(|e| e.name.to_string())
                .collect()
        })
    }

    /// The model names with their own profiles.
    pub fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.models.keys().cloned().collect();
        names.sort();
        names
    }

    /// Ollama's `GET /api/ps` body: the models asked so far whose profile reports memory, with
    /// `size` (and `size_vram`, all of it) in bytes.
    pub fn ps(&self) -> serde_json::Value {
        let loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let models: Vec<serde_json::Value> = loaded
            .iter()
            .filter_map(|name| {
                let p = self.models.get(name).unwrap_or(&self.default);
                let bytes = (p.memory_mb * 1_048_576.0).round() as u64;
                (bytes > 0).then(|| {
                    serde_json::json!({
                        "name": name, "model": name, "size": bytes, "size_vram": bytes,
                        "digest": "sim", "expires_at": "2099-01-01T00:00:00Z",
                    })
                })
            })
            .collect();
        serde_json::json!({ "models": models })
    }

    /// A copy of the request log so far.
    pub fn log(&self) -> Vec<LogEntry> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .map(|e| e.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }

    /// Decides the reply to one request (`body` as sent, `forced` from [`FAULT_HEADER`]) and
    /// opens its log entry.
    pub fn plan(
        &self,
        wire: Wire,
        body: &[u8],
        forced: Option<Fault>,
    ) -> (Reply, Arc<Mutex<LogEntry>>) {
        self.plan_at(wire, body, forced, Instant::now())
    }

    /// [`SimState::plan`] for a request that arrived at `received` (its reply's offsets run
    /// from there).
    pub fn plan_at(
        &self,
        wire: Wire,
        body: &[u8],
        forced: Option<Fault>,
        received: Instant,
    ) -> (Reply, Arc<Mutex<LogEntry>>) {
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request_id = format!("sim-{seq}");
        let (reply, model, fault, stream) = match serde_json::from_slice::<ChatRequest>(body) {
            Ok(req) => {
                self.mark_loaded(&req.model);
                let profile = self.models.get(&req.model).unwrap_or(&self.default);
                let mut rng = self.rng(profile.seed, body);
                let fault = forced.unwrap_or_else(|| pick_fault(profile, &mut rng));
                let scripted = req.tool_to_call().and_then(|tool| {
                    let replies = profile.script.get(&tool).filter(|r| !r.is_empty())?;
                    let mut given = self.scripted.lock().unwrap_or_else(|e| e.into_inner());
                    let n = given.entry((req.model.clone(), tool)).or_insert(0);
                    let args = replies[(*n).min(replies.len() - 1)].clone();
                    *n += 1;
                    Some(args)
                });
                let reply = build_reply(
                    wire,
                    profile,
                    &req,
                    fault,
                    &request_id,
                    &mut rng,
                    scripted.as_deref(),
                );
                let stream = req.stream.unwrap_or(wire.streams_by_default());
                (reply, req.model, fault, stream)
            }
            Err(e) => (
                error_reply(400, &format!("invalid request body: {e}"), &request_id),
                String::new(),
                Fault::None,
                false,
            ),
        };
        let entry = Arc::new(Mutex::new(LogEntry {
            seq,
            request_id,
            fingerprint: format!("{:016x}", fnv1a(0, body)),
            model,
            fault,
            status: reply.status,
            stream,
            // The wall-clock moment of `received`, not of now: planning took some time since.
            received_unix_ms: (SystemTime::now() - received.elapsed())
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            headers_ms: None,
            events_ms: Vec::with_capacity(reply.events.len()),
            received: Some(received),
        }));
        if self.keep_log {
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(entry.clone());
        }
        (reply, entry)
    }

    /// A generator seeded by the profile seed, what the request asks (not how it wants it
    /// delivered: see [`content_key`]) and how many times this exact body was seen before: the
    /// same requests get the same replies, whatever their order, and the first streamed and the
    /// first plain request for a question get the same answer.
    fn rng(&self, seed: u64, body: &[u8]) -> ChaCha8Rng {
        let h = fnv1a(seed, &content_key(body));
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let n = seen.entry(fnv1a(seed, body)).or_insert(0);
        let occurrence = *n;
        *n += 1;
        ChaCha8Rng::seed_from_u64(h ^ u64::from(occurrence).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// The part of a request that decides its answer: everything but how it is delivered (`stream`,
/// `stream_options`). The same question gets the same answer, streamed or not.
pub(crate) fn content_key(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.remove("stream");
            map.remove("stream_options");
            serde_json::to_vec(&map).unwrap_or_else(|_| body.to_vec())
        }
        _ => body.to_vec(),
    }
}

pub(crate) fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
