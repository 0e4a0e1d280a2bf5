//! Property tests of the stream readers and the config and suite parsers: any split of a valid
//! stream into network chunks reads the same; random bytes, and random edits of valid files,
//! never panic and always end as a record or an error that names a line.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use llmpulse_sim::{Event, SimProfile, SimState, Wire};
use proptest::prelude::*;
use reqwest::header::HeaderMap;

use super::exchange::{self, Dialect};
use super::outcome::CallOutcome;
use super::transport::{BodyError, HttpRequest, RawResponse, Transport, TransportError};
use crate::config::{Config, Target};
use crate::suite::{Message, Prompt, Suite};

/// A server that answers every request with these chunks, as they are.
struct Chunks(Vec<Vec<u8>>);

impl Transport for Chunks {
    fn send(&self, _: HttpRequest) -> BoxFuture<'_, Result<RawResponse, TransportError>> {
        let chunks: Vec<Result<bytes::Bytes, BodyError>> = self
            .0
            .iter()
            .map(|c| Ok(bytes::Bytes::from(c.clone())))
            .collect();
        Box::pin(async move {
            Ok(RawResponse {
                connect: None,
                http_version: None,
                peer: None,
                clock: None,
                status: 200,
                headers: HeaderMap::new(),
                body: Box::pin(futures_util::stream::iter(chunks)),
            })
        })
    }
}

fn target(provider: &str) -> Target {
    let text = format!(
        "[[targets]]\nname = \"t\"\nprovider = \"{provider}\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\n"
    );
    Config::parse(&text, "t.toml", ".".into(), &|_| None)
        .unwrap()
        .targets
        .remove(0)
}

fn prompt() -> Prompt {
    Prompt::messages(vec![Message {
        role: "user",
        content: "Context: Outerwear revenue was $18.4 million.\nQuestion: How much?".into(),
    }])
}

/// The whole body the simulator would send for one streamed request in `wire`.
fn valid_stream(wire: Wire) -> Vec<u8> {
    let profile = SimProfile {
        ttft_ms: 0.0,
        itl_ms: 0.0,
        output_tokens: 40,
        ..SimProfile::default()
    };
    let state = SimState::new(profile, HashMap::new(), false);
    let body = serde_json::json!({"model": "m", "stream": true,
        "messages": [{"role": "user", "content": "Outerwear revenue was $18.4 million."}]});
    let (reply, _) = state.plan(wire, body.to_string().as_bytes(), None);
    let mut out = Vec::new();
    for (_, e) in reply.events {
        if let Event::Data(b) = e {
            out.extend_from_slice(&b);
        }
    }
    out
}

fn read(target: &Target, dialect: &dyn Dialect, chunks: Vec<Vec<u8>>) -> CallOutcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(exchange::call(
        target,
        &Chunks(chunks),
        &prompt(),
        dialect,
        None,
        None,
    ))
}

/// Cuts `bytes` at the given fractions of its length.
fn split(bytes: &[u8], cuts: &[f64]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|f| (f * bytes.len() as f64) as usize)
        .collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

fn same_reading(wire: Wire, provider: &str, dialect: &dyn Dialect, cuts: &[f64]) {
    let t = target(provider);
    let whole = valid_stream(wire);
    let reference = read(&t, dialect, vec![whole.clone()]);
    assert!(reference.success(), "{:?}", reference.error);
    let pieces = read(&t, dialect, split(&whole, cuts));
    assert_eq!(pieces.error, None);
    assert_eq!(pieces.answer, reference.answer);
    assert_eq!(pieces.timings.chunk_count, reference.timings.chunk_count);
    assert_eq!(pieces.usage, reference.usage);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_split_of_an_sse_stream_reads_the_same(cuts in prop::collection::vec(0.0f64..1.0, 0..40)) {
        same_reading(Wire::OpenAi, "openai-compatible", &super::openai::OpenAi, &cuts);
    }

    #[test]
    fn any_split_of_an_ndjson_stream_reads_the_same(cuts in prop::collection::vec(0.0f64..1.0, 0..40)) {
        same_reading(Wire::Ollama, "ollama-native", &super::ollama::Ollama, &cuts);
    }

    #[test]
    fn random_bytes_end_as_a_failed_record_never_a_panic(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8),
        ndjson in any::<bool>(),
    ) {
        let out = if ndjson {
            read(&target("ollama-native"), &super::ollama::Ollama, chunks)
        } else {
            read(&target("openai-compatible"), &super::openai::OpenAi, chunks)
        };
        // Random bytes are not an answer: the call fails, with a kind a record can carry.
        prop_assert!(out.error.is_some(), "random bytes read as an answer: {:?}", out.answer);
    }

    #[test]
    fn edited_configs_parse_or_name_a_line(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let valid = crate::config::BUILTIN_QUICKSTART;
        let text = edit(valid, &edits);
        if let Err(e) = Config::parse(&text, "c.toml", ".".into(), &|_| None) {
            let m = e.to_string();
            prop_assert!(m.starts_with("c.toml:") && m[7..].starts_with(|c: char| c.is_ascii_digit()), "{m}");
        }
    }

    #[test]
    fn edited_suites_parse_or_name_a_line(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let valid = include_str!("../../suites/capabilities.toml");
        let text = edit(valid, &edits);
        if let Err(e) = Suite::parse(&text, "s.toml") {
            let m = e.to_string();
            prop_assert!(m.starts_with("s.toml:") && m[7..].starts_with(|c: char| c.is_ascii_digit()), "{m}");
        }
    }
}

/// Replaces bytes of `text` at random places with random printable ASCII (or a newline).
fn edit(text: &str, edits: &[(prop::sample::Index, u8)]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for (i, b) in edits {
        let at = i.index(bytes.len());
        bytes[at] = match b % 97 {
            96 => b'\n',
            x => b' ' + x,
        };
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
