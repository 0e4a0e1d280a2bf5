//! The simulator: an OpenAI-compatible chat server with exact, seeded timings and injected
//! faults. It is a product feature (`llmpulse sim`, `provider = "sim"`) and the ground truth the
//! measurement code is tested and benchmarked against.
//!
//! [`SimProfile`] says how a model behaves; [`SimState::plan`] turns one request into a
//! [`Reply`]: a status, headers, and a schedule of body events at exact offsets. The schedule is
//! played out either over HTTP ([`server`]) or in-process ([`inprocess`]) by the same
//! [`play`] function, which logs when each event was actually handed to the transport.

mod answer;
pub mod discovery;
#[cfg(feature = "server")]
pub mod dns;
mod hostile;
mod play;
mod profile;
mod reply;
mod request;
#[cfg(unix)]
pub mod rx_stamp;
mod schedule;
#[cfg(feature = "server")]
pub mod server;
mod state;
mod wire;

pub use answer::tokenize;
pub use discovery::ServerKind;
pub use hostile::HUGE_HEADER_BYTES;
pub use play::{Cut, play};
pub use profile::{FAULT_HEADER, Fault, SimProfile};
pub use schedule::{Event, Reply};
pub use state::{LogEntry, SimState};
pub use wire::Wire;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;
    use std::time::Duration;

    fn state(p: SimProfile) -> SimState {
        SimState::new(p, HashMap::new(), true)
    }

    fn body(stream: bool) -> Vec<u8> {
        json!({
            "model": "m", "stream": stream, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Context:\n[1] Sales were 5 million. Costs were 3 million.\n\nQuestion: What were sales?"}],
        })
        .to_string()
        .into_bytes()
    }

    fn data(events: &[(Duration, Event)]) -> Vec<String> {
        events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Data(b) | Event::Repeat(b, _) => {
                    Some(String::from_utf8_lossy(b).into_owned())
                }
                Event::Cut => None,
            })
            .collect()
    }

    #[test]
    fn tokenize_round_trips() {
        let text = "Revenue rose 14% in extraordinary circumstances.";
        let toks = tokenize(text);
        assert_eq!(toks.concat(), text);
        assert_eq!(&toks[..3], ["Revenu", "e", " rose"]);
        assert!(toks.iter().all(|t| t.trim().chars().count() <= 6));
    }

    #[test]
    fn stream_schedule_follows_the_profile() {
        let p = SimProfile {
            ttft_ms: 100.0,
            itl_ms: 10.0,
            output_tokens: 20,
            tokens_per_chunk: 2,
            ..Default::default()
        };
        let (reply, _) = state(p).plan(Wire::OpenAi, &body(true), None);
        assert_eq!(reply.status, 200);
        let d = data(&reply.events);
        assert!(d[0].contains("\"role\":\"assistant\""));
        assert!(d.last().unwrap().contains("[DONE]"));
        assert!(d.iter().any(|c| c.contains("\"usage\"")));
        // role chunk at 0, first content chunk when its 2nd token is due: 100 + 10 ms
        assert_eq!(reply.events[1].0, Duration::from_millis(110));
        // 20 tokens: the last at 100 + 19 * 10 ms
        assert_eq!(reply.events.last().unwrap().0, Duration::from_millis(290));
        // 10 content chunks
        assert_eq!(
            d.iter()
                .filter(|c| c.contains("\"content\":\"") && !c.contains("\"role\""))
                .count(),
            10
        );
    }

    #[test]
    fn faults_can_be_forced() {
        let s = state(SimProfile::default());
        let (r, _) = s.plan(Wire::OpenAi, &body(true), Some(Fault::RateLimited));
        assert_eq!(r.status, 429);
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| *k == "retry-after" && v == "1")
        );
        let (r, _) = s.plan(Wire::OpenAi, &body(true), Some(Fault::Cut));
        assert!(matches!(r.events.last().unwrap().1, Event::Cut));
        let (r, _) = s.plan(Wire::OpenAi, &body(true), Some(Fault::ErrorEvent));
        assert!(data(&r.events).last().unwrap().contains("\"error\""));
    }

    #[test]
    fn same_requests_get_the_same_replies() {
        let p = SimProfile {
            jitter: 0.3,
            fault_cut: 0.5,
            seed: 7,
            ..Default::default()
        };
        let a = state(p.clone());
        let b = state(p);
        for _ in 0..10 {
            let (ra, _) = a.plan(Wire::OpenAi, &body(true), None);
            let (rb, _) = b.plan(Wire::OpenAi, &body(true), None);
            let times = |r: &Reply| r.events.iter().map(|(t, _)| *t).collect::<Vec<_>>();
            assert_eq!(times(&ra), times(&rb));
        }
    }

    #[test]
    fn streamed_or_not_the_same_question_gets_the_same_answer() {
        let p = SimProfile {
            recall: 0.5,
            seed: 9,
            ..Default::default()
        };
        for _ in 0..5 {
            let s = state(p.clone());
            let text = |r: &Reply| {
                data(&r.events)
                    .iter()
                    .map(|d| {
                        d.split("\"content\":\"")
                            .nth(1)
                            .and_then(|c| c.split('"').next())
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect::<String>()
            };
            let (streamed, _) = s.plan(Wire::OpenAi, &body(true), None);
            let (plain, _) = s.plan(Wire::OpenAi, &body(false), None);
            assert_eq!(text(&streamed), text(&plain));
        }
    }

    #[test]
    fn fault_rates_must_add_up_to_at_most_one() {
        let p = SimProfile {
            fault_429: 0.6,
            fault_cut: 0.6,
            ..Default::default()
        };
        assert!(p.validate().unwrap_err().contains("add up to"));
    }

    #[test]
    fn usage_counts_tokens_of_the_answer() {
        let p = SimProfile {
            output_tokens: 30,
            reasoning_tokens: 5,
            ..Default::default()
        };
        let (r, _) = state(p).plan(Wire::OpenAi, &body(false), None);
        let d = data(&r.events);
        let v: serde_json::Value = serde_json::from_str(&d[0]).unwrap();
        assert_eq!(v["usage"]["completion_tokens"], 35);
        assert_eq!(
            v["usage"]["completion_tokens_details"]["reasoning_tokens"],
            5
        );
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(tokenize(content).len(), 30);
    }

    #[test]
    fn tools_get_a_streamed_call_and_schemas_a_json_answer() {
        let mut b: serde_json::Value = serde_json::from_slice(&body(true)).unwrap();
        b["tools"] =
            json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]);
        let (r, _) =
            state(SimProfile::default()).plan(Wire::OpenAi, b.to_string().as_bytes(), None);
        let d = data(&r.events);
        assert!(d.iter().any(|c| c.contains("\"name\":\"lookup\"")));
        assert!(
            d.iter()
                .any(|c| c.contains("\"finish_reason\":\"tool_calls\""))
        );

        let mut b: serde_json::Value = serde_json::from_slice(&body(false)).unwrap();
        b["response_format"] = json!({"type": "json_object"});
        let (r, _) =
            state(SimProfile::default()).plan(Wire::OpenAi, b.to_string().as_bytes(), None);
        let v: serde_json::Value = serde_json::from_str(&data(&r.events)[0]).unwrap();
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        let parsed: serde_json::Value = serde_json::from_str(content).unwrap();
        assert!(parsed["answer"].is_string());
    }

    #[test]
    fn max_tokens_cuts_with_finish_reason_length() {
        let mut b: serde_json::Value = serde_json::from_slice(&body(false)).unwrap();
        b["max_tokens"] = json!(7);
        let (r, _) =
            state(SimProfile::default()).plan(Wire::OpenAi, b.to_string().as_bytes(), None);
        let v: serde_json::Value = serde_json::from_str(&data(&r.events)[0]).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], 7);
    }
}
