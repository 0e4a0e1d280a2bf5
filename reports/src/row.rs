//! [`Row`]: the projection of a `Record` that a report reads. Its fields keep the record's names
//! and types; a test below ties the two, so they cannot drift apart.

use serde::Deserialize;

/// The fields of a record a report reads; the rest of each line is skipped unparsed.
#[derive(Debug, Deserialize)]
pub struct Row<'a> {
    #[serde(borrow)]
    pub timestamp: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub industry: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub llm_provider: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub llm_model: std::borrow::Cow<'a, str>,
    pub latency_sec: f64,
    pub throughput_tps: Option<f64>,
    pub success: bool,
    pub coverage_score: Option<f64>,
    pub prompt_tokens: Option<u32>,
    pub response_tokens: Option<u32>,
    #[serde(borrow, default)]
    pub campaign: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub question_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub target: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub task: std::borrow::Cow<'a, str>,
    pub ttft_sec: Option<f64>,
    pub ttfb_sec: Option<f64>,
    #[serde(default)]
    pub connect_sec: Option<f64>,
    #[serde(default)]
    pub dns_sec: Option<f64>,
    #[serde(default)]
    pub tcp_connect_sec: Option<f64>,
    #[serde(default)]
    pub tls_handshake_sec: Option<f64>,
    #[serde(default)]
    pub connection_reused: Option<bool>,
    #[serde(default)]
    pub prompt_cached_tokens: Option<u32>,
    #[serde(default)]
    pub server_ttft_sec: Option<f64>,
    pub output_speed_tps: Option<f64>,
    #[serde(default)]
    pub rate_limited_count: u32,
    #[serde(borrow, default)]
    pub error_kind: Option<std::borrow::Cow<'a, str>>,
    pub grounding_score: Option<f64>,
    #[serde(default)]
    pub json_valid: Option<bool>,
    #[serde(default)]
    pub tool_call_valid: Option<bool>,
    #[serde(default)]
    pub answer_correct: Option<bool>,
    #[serde(default)]
    pub instructions_followed: Option<f64>,
    #[serde(default)]
    pub quality_score: Option<f64>,
    #[serde(default)]
    pub slo_met: Option<bool>,
    #[serde(borrow, default)]
    pub run_id: std::borrow::Cow<'a, str>,
    /// Open loops: when the call was due (RFC 3339).
    #[serde(borrow, default)]
    pub scheduled_at: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub schedule_lag_sec: Option<f64>,
    #[serde(default)]
    pub answer_chars: u32,
    #[serde(borrow, default)]
    pub answer_sha256: std::borrow::Cow<'a, str>,
    /// Kept only for the questions whose answers are compared with each other (creative and
    /// structured tasks: self-BLEU, structural consistency).
    #[serde(borrow, default)]
    pub answer: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub memory_mb: Option<f64>,
    #[serde(default)]
    pub gpu_util_pct: Option<f64>,
    #[serde(default)]
    pub gpu_temp_c: Option<f64>,
    #[serde(default)]
    pub cpu_temp_c: Option<f64>,
    #[serde(default)]
    pub throttled: Option<bool>,
    #[serde(default)]
    pub power_w: Option<f64>,
    #[serde(default)]
    pub energy_j: Option<f64>,
    #[serde(default)]
    pub energy_per_token_j: Option<f64>,
    #[serde(borrow, default)]
    pub host_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub server: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub quantization: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub flash_attn: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    pub kv_cache_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub ctx_size: Option<u32>,
    #[serde(default)]
    pub gpu_layers: Option<u32>,
    #[serde(default)]
    pub max_num_seqs: Option<u32>,
    #[serde(default)]
    pub load_time_sec: Option<f64>,
    #[serde(borrow, default)]
    pub origin: std::borrow::Cow<'a, str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmpulse_core::config::Config;
    use llmpulse_core::error_kind::ErrorKind;
    use llmpulse_core::provider::CallOutcome;
    use llmpulse_core::record::{AttemptStats, CallContext, Record};
    use llmpulse_core::suite::Suite;

    /// The field names a type asks its deserializer for: serde's derive passes them to
    /// `deserialize_struct`, where this deserializer notes them and stops.
    fn field_names<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
        struct Names(Vec<&'static str>);
        #[derive(Debug)]
        struct Stop;
        impl std::fmt::Display for Stop {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("names noted")
            }
        }
        impl std::error::Error for Stop {}
        impl serde::de::Error for Stop {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Stop
            }
        }
        impl<'de> serde::Deserializer<'de> for &mut Names {
            type Error = Stop;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
                Err(Stop)
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Stop> {
                self.0.extend_from_slice(fields);
                Err(Stop)
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let mut names = Names(Vec::new());
        let _ = T::deserialize(&mut names);
        names.0
    }

    #[test]
    fn every_field_a_report_reads_is_a_record_field() {
        let record = field_names::<Record>();
        let row = field_names::<Row<'_>>();
        assert!(row.len() > 20, "Row's fields were not found: {row:?}");
        let missing: Vec<_> = row.iter().filter(|f| !record.contains(f)).collect();
        assert!(
            missing.is_empty(),
            "the report reads fields that records do not have: {missing:?}"
        );
    }

    #[test]
    fn a_record_as_written_reads_back_as_a_row() {
        let config = Config::quickstart();
        let suite = Suite::load("builtin:rag-retail-finance", std::path::Path::new(".")).unwrap();
        let question = &suite.questions[0];
        let prompt = suite.prompt(question);
        let stats = AttemptStats::default();
        let cx = CallContext {
            run_id: "r1",
            campaign: Some("c"),
            slot: Some(3),
            origin: "test",
            config_hash: "h",
            keep_answers: true,
            target: &config.targets[0],
            question,
            prompt: &prompt,
            repetition: 0,
            stats: &stats,
            failover_from: None,
            failover_to: None,
            scheduled_at: None,
            slo: None,
            sources: None,
        };
        let record = Record::from_call(&cx, &CallOutcome::not_sent(ErrorKind::Timeout, "x".into()));
        let line = serde_json::to_string(&record).unwrap();
        let row: Row<'_> = serde_json::from_str(&line).unwrap();
        assert_eq!(row.target, record.target.as_str());
        assert_eq!(row.question_id, record.question_id.as_str());
        assert_eq!(row.campaign.as_deref(), Some("c"));
        assert_eq!(row.error_kind.as_deref(), Some("timeout"));
        assert!(!row.success);
    }
}
